// output_file.cpp: the safe writer and the output path checks (see output_file.hpp).
#include "io/output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include "io/input_error.hpp"

namespace sdnn {
namespace {

constexpr std::size_t kBufferBytes = std::size_t{1} << 20;  // small appends gathered up to this

std::string folder_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

// What a file that is not regular is, for a message.
std::string kind_of(mode_t mode) {
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a named pipe";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// What makes a path the file it is: device and inode when it exists, else its folder's real path
// and its name.
std::string identity_of(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0)
    return "inode " + std::to_string(info.st_dev) + ":" + std::to_string(info.st_ino);
  const std::string folder = folder_of(path);
  char* real = ::realpath(folder.c_str(), nullptr);
  const std::string resolved = real != nullptr ? real : folder;
  std::free(real);
  const auto slash = path.find_last_of('/');
  return "name " + resolved + "/" + (slash == std::string::npos ? path : path.substr(slash + 1));
}

// 12 random letters and digits.
std::string random_suffix() {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::random_device random;
  std::string suffix;
  for (int k = 0; k < 12; ++k) suffix += kAlphabet[random() % (sizeof kAlphabet - 1)];
  return suffix;
}

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

void check_output_path(const std::string& path) {
  if (path.empty()) throw InputError(path, "cannot write: an empty file name");
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) {
    if (S_ISDIR(info.st_mode)) throw InputError(path, "cannot write: is a directory (give a file name)");
    if (!S_ISREG(info.st_mode))
      throw InputError(path, "cannot write: " + kind_of(info.st_mode) +
                                 ", not a regular file (an output must be a new name or an existing regular file, "
                                 "which sdnn replaces whole)");
  } else if (errno != ENOENT && errno != ENOTDIR) {
    throw InputError(path, std::string("cannot write: ") + std::strerror(errno));
  }
  const std::string folder = folder_of(path);
  if (::stat(folder.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
    throw InputError(path, "cannot write: folder '" + folder + "' does not exist");
  if (::access(folder.c_str(), W_OK) != 0) throw InputError(path, "cannot write: folder '" + folder + "' is not writable");
}

void check_not_an_input(const std::string& output, const std::vector<ReadFile>& inputs) {
  struct stat out {};
  if (output.empty() || ::stat(output.c_str(), &out) != 0) return;  // a new name is no input
  for (const ReadFile& input : inputs) {
    struct stat in {};
    if (input.path.empty() || ::stat(input.path.c_str(), &in) != 0) continue;
    if (in.st_dev == out.st_dev && in.st_ino == out.st_ino)
      throw InputError(output, "cannot write: it is the same file as " + input.path + " (" + input.option +
                                   "), which the run reads");
  }
}

void check_distinct_outputs(const std::vector<WrittenFile>& outputs) {
  std::vector<std::string> identities(outputs.size());
  for (std::size_t b = 0; b < outputs.size(); ++b) {
    if (outputs[b].path.empty()) continue;
    identities[b] = identity_of(outputs[b].path);
    for (std::size_t a = 0; a < b; ++a)
      if (!outputs[a].path.empty() && identities[a] == identities[b])
        throw InputError(outputs[b].path, "cannot write: " + outputs[a].option + " and " + outputs[b].option +
                                              " name the same file (each output needs a file of its own)");
  }
}

OutputFile::OutputFile(std::string path) : path_(std::move(path)) {
  check_output_path(path_);
  folder_ = folder_of(path_);
  // A new file under a random name: O_EXCL never opens an existing file, O_NOFOLLOW never a link
  // (a link placed at the name makes open fail, and another name is tried).
  for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
    const std::string name = path_ + ".tmp." + random_suffix();
    fd_ = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd_ >= 0) temporary_ = name;
    else if (errno != EEXIST && errno != ELOOP) break;
  }
  if (fd_ < 0) throw InputError(path_, std::string("cannot write: ") + std::strerror(errno));
  buffer_.reserve(kBufferBytes);
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temporary_.empty()) ::unlink(temporary_.c_str());
}

void OutputFile::fail(const std::string& what, int error) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temporary_.empty()) ::unlink(temporary_.c_str());
  temporary_.clear();
  throw InputError(path_, "cannot write: " + what + std::strerror(error));
}

void OutputFile::flush() {
  if (fd_ < 0) throw InputError(path_, "cannot write: the file is closed");
  if (!write_all(fd_, buffer_.data(), buffer_.size())) fail("", errno);
  buffer_.clear();
}

void OutputFile::append(std::string_view bytes) {
  if (buffer_.size() + bytes.size() > kBufferBytes) flush();
  if (bytes.size() >= kBufferBytes) {
    if (fd_ < 0) throw InputError(path_, "cannot write: the file is closed");
    if (!write_all(fd_, bytes.data(), bytes.size())) fail("", errno);
  } else {
    buffer_.append(bytes);
  }
  bytes_ += bytes.size();
}

void OutputFile::commit() {
  flush();
  if (::fsync(fd_) != 0) fail("fsync: ", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close: ", errno);
  // The target may have changed since it was checked: never replace anything but a regular file.
  struct stat info {};
  if (::stat(path_.c_str(), &info) == 0 && !S_ISREG(info.st_mode))
    fail("", S_ISDIR(info.st_mode) ? EISDIR : EEXIST);
  if (::rename(temporary_.c_str(), path_.c_str()) != 0) fail("", errno);
  committed_ = true;
  // The rename is durable once the folder is: best effort (some filesystems cannot fsync a folder).
  const int folder = ::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder >= 0) {
    ::fsync(folder);
    ::close(folder);
  }
}

void write_file_atomically(const std::string& path, std::string_view text) {
  OutputFile file(path);
  file.append(text);
  file.commit();
}

}  // namespace sdnn
