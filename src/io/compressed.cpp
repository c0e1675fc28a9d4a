// compressed.cpp: gzip files through zlib, tar archives of layer files through libarchive.
#include "io/compressed.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <vector>

#include "io/archive.hpp"
#include "io/input_error.hpp"
#include "io/tsv.hpp"

namespace sdnn {
namespace {

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

// A file descriptor closed when it goes out of scope.
struct FileDescriptor {
  int fd;
  explicit FileDescriptor(int f) : fd(f) {}
  ~FileDescriptor() { ::close(fd); }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
};

// K when `member`'s last path component is "nN-lK.tsv" (K a positive number), else 0.
Index layer_of_member(const std::string& member, Index neurons) {
  const std::size_t slash = member.find_last_of('/');
  const std::string base = slash == std::string::npos ? member : member.substr(slash + 1);
  const std::string head = "n" + std::to_string(neurons) + "-l";
  if (base.compare(0, head.size(), head) != 0 || !ends_with(base, ".tsv")) return 0;
  const std::string digits = base.substr(head.size(), base.size() - head.size() - 4);
  if (digits.empty() || digits.size() > 9 || digits[0] == '0' ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return 0;
  return static_cast<Index>(std::stoul(digits));
}

}  // namespace

bool is_gzip_file(const std::string& path) {
  if (ends_with(path, ".gz")) return true;
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return false;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  unsigned char magic[2] = {0, 0};
  const bool read = std::fread(magic, 1, 2, f) == 2;
  std::fclose(f);
  return read && magic[0] == 0x1f && magic[1] == 0x8b;
}

void read_gzip_file(const std::string& path, const std::function<void(const TextReader&)>& consume) {
  struct stat info {};
  const int fd = open_regular_file(path, info);
  gzFile gz = ::gzdopen(fd, "rb");
  if (gz == nullptr) {
    ::close(fd);
    throw InputError(path, "cannot open as gzip (out of memory)");
  }
  std::unique_ptr<gzFile_s, int (*)(gzFile)> closer(gz, ::gzclose_r);  // closes fd too
  ::gzbuffer(gz, 1 << 18);
  const TextReader reader = [&](char* buffer, std::size_t size) -> std::size_t {
    const int n = ::gzread(gz, buffer, static_cast<unsigned>(std::min<std::size_t>(size, INT_MAX)));
    int code = Z_OK;
    const char* message = ::gzerror(gz, &code);
    if (n < 0 || (n == 0 && code != Z_OK)) {
      std::string why = message ? message : "";
      why = why.substr(why.find(": ") == std::string::npos ? 0 : why.find(": ") + 2);  // "<fd:N>: " first
      if (code == Z_BUF_ERROR) throw StreamFault("gzip data ends early (a truncated file)");
      if (code == Z_ERRNO) throw StreamFault(std::string("cannot read: ") + std::strerror(errno));
      throw StreamFault("corrupt gzip data (" + why + ")");
    }
    return static_cast<std::size_t>(n);
  };
  consume(reader);
}

std::uint64_t estimate_gzip_lines(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return 0;
  gzFile gz = ::gzopen(path.c_str(), "rb");
  if (gz == nullptr) return 0;
  constexpr unsigned kSample = 4 << 20;
  std::vector<char> text(kSample);
  const int n = ::gzread(gz, text.data(), kSample);
  const bool whole = n >= 0 && static_cast<unsigned>(n) < kSample;
  const double compressed = static_cast<double>(::gzoffset(gz));
  ::gzclose_r(gz);
  if (n <= 0) return 0;
  const auto lines = static_cast<std::uint64_t>(std::count(text.begin(), text.begin() + n, '\n'));
  if (whole || compressed <= 0) return lines + 1;
  return static_cast<std::uint64_t>(static_cast<double>(lines) * static_cast<double>(info.st_size) / compressed) + 1;
}

bool is_tar_network(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && !is_archive_path(path);
}

std::string member_name(const std::string& archive, const std::string& member) {
  return archive + "[" + member + "]";
}

namespace {
const char* const kNotTar =
    "cannot read as a tar archive of nN-lK.tsv files (--network takes their folder, a tar of them or an .sdnn "
    "archive)";
}  // namespace

void read_tar_layers(const std::string& path, Index neurons, Index layers,
                     const std::function<void(Index layer, const std::string& name, const TextReader&)>& consume) {
  struct stat info {};
  const FileDescriptor file(open_regular_file(path, info));
  std::unique_ptr<archive, int (*)(archive*)> tar(::archive_read_new(), ::archive_read_free);
  if (!tar) throw InputError(path, "cannot read as a tar archive (out of memory)");
  ::archive_read_support_filter_all(tar.get());
  ::archive_read_support_format_tar(tar.get());
  auto fault = [&](const std::string& name, const std::string& what) {
    const char* why = ::archive_error_string(tar.get());
    return InputError(name, what + (why ? std::string(": ") + why : std::string()));
  };
  if (::archive_read_open_fd(tar.get(), file.fd, 1 << 20) != ARCHIVE_OK)
    throw fault(path, kNotTar);
  std::vector<bool> seen(layers, false);
  Index found = 0;
  while (found < layers) {
    archive_entry* entry = nullptr;
    const int status = ::archive_read_next_header(tar.get(), &entry);
    if (status == ARCHIVE_EOF) break;
    if (status < ARCHIVE_WARN) throw fault(path, found == 0 ? kNotTar : "cannot read the archive");
    const std::string member = ::archive_entry_pathname(entry) ? ::archive_entry_pathname(entry) : "";
    const Index k = ::archive_entry_filetype(entry) == AE_IFREG ? layer_of_member(member, neurons) : 0;
    if (k == 0 || k > layers) continue;  // libarchive skips the member's data at the next header
    const std::string name = member_name(path, member);
    if (seen[k - 1]) throw InputError(name, "layer " + std::to_string(k) + " is in the archive twice");
    seen[k - 1] = true;
    ++found;
    const TextReader reader = [&](char* buffer, std::size_t size) -> std::size_t {
      const la_ssize_t n = ::archive_read_data(tar.get(), buffer, size);
      if (n < 0) {
        const char* why = ::archive_error_string(tar.get());
        throw StreamFault(std::string("cannot read the member") + (why ? std::string(": ") + why : std::string()));
      }
      return static_cast<std::size_t>(n);
    };
    consume(k - 1, name, reader);
  }
  for (Index l = 0; l < layers; ++l)
    if (!seen[l])
      throw InputError(path, "no member n" + std::to_string(neurons) + "-l" + std::to_string(l + 1) + ".tsv (layer " +
                                 std::to_string(l + 1) + " of " + std::to_string(layers) + ")");
}

}  // namespace sdnn
