// output_file.hpp: the one way sdnn writes a file (categories, the report and its CSV, archives,
// `sdnn generate`'s layers and inputs), and the checks made on an output path before any work.
//
// OutputFile writes to a new temporary file in the target's folder, created with
// O_CREAT|O_EXCL|O_NOFOLLOW under a random name (never an existing file, never through a link,
// mode 0666 less the umask as any new file), then on commit() fsyncs it, renames it over the
// target and fsyncs the folder: the target holds either its old content or the whole new one,
// also after a crash. On any failure, or when dropped uncommitted, the temporary is removed and
// the target is untouched. Errors are InputError("path: cannot write: why").
//
// check_output_path refuses, before any work, an output that is not a new name or an existing
// regular file (a device such as /dev/null or /dev/full, a pipe, a socket, a directory) or whose
// folder is missing; check_not_an_input refuses one that is the same file (device and inode, so
// links and '..' do not hide it) as any file the run reads; check_distinct_outputs refuses two
// outputs of one run that are the same file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sdnn {

class OutputFile {
 public:
  // Checks `path` (check_output_path) and creates the temporary beside it.
  explicit OutputFile(std::string path);
  ~OutputFile();  // uncommitted: the temporary is removed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void append(std::string_view bytes);
  void append(const void* data, std::size_t size) { append(std::string_view(static_cast<const char*>(data), size)); }
  // Writes what is buffered, fsyncs, renames the temporary over the target, fsyncs the folder.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temporary_path() const { return temporary_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  void flush();
  [[noreturn]] void fail(const std::string& what, int error);

  std::string path_, folder_, temporary_;
  int fd_ = -1;
  std::string buffer_;
  std::uint64_t bytes_ = 0;
  bool committed_ = false;
};

// Writes `text` to `path` through an OutputFile.
void write_file_atomically(const std::string& path, std::string_view text);

// InputError("path: cannot write: ...") unless `path` is a new name in an existing folder or an
// existing regular file (links followed).
void check_output_path(const std::string& path);

// A file the run reads, with the option that names it (for the message).
struct ReadFile {
  std::string path;
  std::string option;  // e.g. "--input"
};
// InputError("output: cannot write: it is the same file as PATH (OPTION), which the run reads")
// when `output` exists and is the same file (st_dev and st_ino) as one of `inputs` that exists.
void check_not_an_input(const std::string& output, const std::vector<ReadFile>& inputs);

// A file the run writes, with the option that names it (for the message).
struct WrittenFile {
  std::string path;
  std::string option;  // e.g. "--out"
};
// InputError("second: cannot write: OPTION1 and OPTION2 name the same file ...") when two of
// `outputs` are the same file: the same device and inode when both exist, else the same name in
// the same folder (links and '..' in the folder resolved). Empty paths are skipped; each path
// must have passed check_output_path.
void check_distinct_outputs(const std::vector<WrittenFile>& outputs);

}  // namespace sdnn
