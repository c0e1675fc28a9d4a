// test_output_file.cpp: the safe writer and the output checks (io/output_file.hpp). Links placed
// at the temporary names the old writers used (PATH.tmp.PID) are never followed by any writer
// (categories, any file, both archives, a streamed file): the file they point to and the links
// stay as they were, the target gets the new content. A new file has the mode of any new file
// (0666 less the umask). A write that fails or is dropped leaves the target untouched and no
// temporary behind. Devices (a node like /dev/null made here where mknod is allowed), pipes,
// sockets and directories are refused as outputs and never replaced; an output that is the same
// file as an input (the path itself, a hard link, a symbolic link, a path through '..') is refused,
// and so are two outputs of one run that are one file (by name, new or existing, or through links).
// Everything here holds as root too: nothing relies on permissions.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "io/archive.hpp"
#include "io/input_error.hpp"
#include "io/output_file.hpp"
#include "io/tsv.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

using test::read_text;

using test::write_text;

using test::names_in;

using test::input_error_of;

using test::contains;

// Every writer of sdnn, writing something to `path`.
struct Writer {
  const char* name;
  std::function<void(const std::string&)> write;
};
std::vector<Writer> writers() {
  return {
      {"categories", [](const std::string& p) { write_categories(p, {0, 4, 7}); }},
      {"write_file_atomically", [](const std::string& p) { write_file_atomically(p, "report\n"); }},
      {"network archive",
       [](const std::string& p) {
         Network network(2);
         for (Layer& layer : network) {
           layer.weights_csr = from_triplets<RowMajor>(8, 8, {{0, 1, 0.5f}, {3, 2, 0.25f}});
           layer.bias.assign(8, -0.3f);
         }
         write_network_archive(p, network);
       }},
      {"inputs archive",
       [](const std::string& p) { write_inputs_archive(p, from_triplets<RowMajor>(5, 8, {{0, 1, 1.0f}, {4, 7, 1.0f}}), 2); }},
      {"streamed file (sdnn generate)",
       [](const std::string& p) {
         OutputFile file(p);
         for (int k = 0; k < 1000; ++k) file.append("1\t2\t1\n");
         file.append(std::string(3 << 20, 'x'));  // larger than the buffer: written straight through
         file.commit();
       }},
  };
}

TEST(OutputFile, LinksAtTheOldPredictableNamesAreNeverFollowed) {
  for (const Writer& writer : writers()) {
    SCOPED_TRACE(writer.name);
    test::TempDirectory dir, elsewhere;
    const std::string victim = elsewhere.file("victim.txt"), target = dir.file("out.tsv");
    write_text(victim, "precious\n");
    // The names the old writers used (PATH.tmp.PID), for this process and its neighbours.
    std::vector<std::string> links;
    for (int pid = std::max(1, ::getpid() - 20); pid <= ::getpid() + 20; ++pid) {
      links.push_back(target + ".tmp." + std::to_string(pid));
      ASSERT_EQ(::symlink(victim.c_str(), links.back().c_str()), 0);
    }
    ASSERT_NO_THROW(writer.write(target));
    EXPECT_EQ(read_text(victim), "precious\n") << "a file outside the target changed";
    struct stat info {};
    ASSERT_EQ(::lstat(target.c_str(), &info), 0);
    EXPECT_TRUE(S_ISREG(info.st_mode)) << "the target is a regular file";
    EXPECT_GT(info.st_size, 0);
    for (const std::string& link : links) {
      ASSERT_EQ(::lstat(link.c_str(), &info), 0) << link << " still exists";
      EXPECT_TRUE(S_ISLNK(info.st_mode)) << link << " is still a link";
      EXPECT_EQ(std::filesystem::read_symlink(link).string(), victim);
    }
    EXPECT_EQ(names_in(dir.path()).size(), links.size() + 1) << "no temporary left behind";
    EXPECT_EQ(names_in(elsewhere.path()), std::vector<std::string>{"victim.txt"});
  }
}

TEST(OutputFile, ANewFileHasTheModeOfAnyNewFile) {
  test::TempDirectory dir;
  for (const mode_t mask : {mode_t{022}, mode_t{077}, mode_t{002}}) {
    const mode_t old = ::umask(mask);
    const std::string path = dir.file("mode-" + std::to_string(mask));
    write_file_atomically(path, "x\n");
    ::umask(old);
    struct stat info {};
    ASSERT_EQ(::stat(path.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0666 & ~mask) << "umask " << mask;
  }
}

TEST(OutputFile, ReplacingAFileKeepsTheTargetWholeOrUntouched) {
  test::TempDirectory dir;
  const std::string target = dir.file("out.tsv");
  write_text(target, "old\n");
  {
    OutputFile file(target);
    file.append("new, never committed\n");
    EXPECT_NE(file.temporary_path(), target + ".tmp." + std::to_string(::getpid())) << "not the predictable name";
    EXPECT_EQ(file.temporary_path().rfind(target + ".tmp.", 0), 0u) << "beside the target";
  }
  EXPECT_EQ(read_text(target), "old\n") << "dropped before commit: untouched";
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"out.tsv"}) << "and no temporary left";
  write_file_atomically(target, "new\n");
  EXPECT_EQ(read_text(target), "new\n");
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"out.tsv"});
}

TEST(OutputFile, ACommitThatFailsRemovesTheTemporary) {
  test::TempDirectory dir;
  const std::string target = dir.file("out.tsv");
  OutputFile file(target);
  file.append("data\n");
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);  // the target became a directory meanwhile
  const std::string what = input_error_of([&] { file.commit(); });
  EXPECT_TRUE(contains(what, target + ": cannot write")) << what;
  EXPECT_TRUE(std::filesystem::is_directory(target));
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"out.tsv"}) << "no temporary left";
}

// A UNIX socket bound at `path` (kept until the test ends).
int bind_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  path.copy(address.sun_path, sizeof address.sun_path - 1);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) return -1;
  return fd;
}

TEST(OutputFile, DevicesPipesSocketsAndDirectoriesAreRefusedAndNeverReplaced) {
  test::TempDirectory dir;
  const std::string fifo = dir.file("fifo"), socket = dir.file("socket"), folder = dir.file("folder"),
                    device = dir.file("null");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const int socket_fd = bind_socket(socket);
  ASSERT_GE(socket_fd, 0);
  ASSERT_EQ(::mkdir(folder.c_str(), 0755), 0);
  // A device node like /dev/null, here where writing over it harms nothing (needs CAP_MKNOD).
  const bool have_device = ::mknod(device.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0;
  std::vector<std::pair<std::string, std::string>> cases = {
      {fifo, "a named pipe, not a regular file"},
      {socket, "a socket, not a regular file"},
      {folder, "is a directory"},
      {"/dev/null", "a character device, not a regular file"},
      {"/dev/full", "a character device, not a regular file"}};
  if (have_device) cases.push_back({device, "a character device, not a regular file"});
  for (const auto& test_case : cases) {
    const std::string& path = test_case.first;  // a named variable: clang 14 (make tsan) cannot
    const std::string& expected = test_case.second;  // capture a structured binding in a lambda
    SCOPED_TRACE(path);
    const std::string what = input_error_of([&] { check_output_path(path); });
    EXPECT_TRUE(contains(what, path + ": cannot write: " + expected)) << what;
    if (path.rfind("/dev/", 0) == 0) continue;  // the writers are tried on the nodes made here only
    for (const Writer& writer : writers()) {
      SCOPED_TRACE(writer.name);
      EXPECT_TRUE(contains(input_error_of([&] { writer.write(path); }), path + ": cannot write")) << writer.name;
      struct stat info {};
      ASSERT_EQ(::lstat(path.c_str(), &info), 0);
      EXPECT_FALSE(S_ISREG(info.st_mode)) << "replaced by a regular file";
    }
  }
  ::close(socket_fd);
  std::vector<std::string> expected = {"fifo", "folder", "socket"};
  if (have_device) expected.insert(expected.begin() + 2, "null");
  EXPECT_EQ(names_in(dir.path()), expected) << "no temporary left";
  if (!have_device) GTEST_SKIP() << "mknod is not allowed here: the writers were tried on a pipe, a socket and a folder";
}

TEST(OutputFile, AnOutputThatIsAnInputIsRefusedWhateverItsName) {
  test::TempDirectory dir;
  const std::string input = dir.file("in.tsv"), truth = dir.file("truth.tsv");
  write_text(input, "1\t1\t1\n");
  write_text(truth, "1\n");
  ASSERT_EQ(::mkdir(dir.file("sub").c_str(), 0755), 0);
  ASSERT_EQ(::link(input.c_str(), dir.file("hard.tsv").c_str()), 0);
  ASSERT_EQ(::symlink(input.c_str(), dir.file("soft.tsv").c_str()), 0);
  const std::vector<ReadFile> reads = {{input, "--input"}, {truth, "--truth"}, {dir.file("absent.tsv"), "--network"}};
  for (const std::string& output :
       {input, dir.file("hard.tsv"), dir.file("soft.tsv"), dir.file("sub/../in.tsv"), dir.path() + "/./in.tsv"}) {
    const std::string what = input_error_of([&] { check_not_an_input(output, reads); });
    EXPECT_TRUE(contains(what, output + ": cannot write: it is the same file as " + input + " (--input)")) << what;
  }
  EXPECT_TRUE(contains(input_error_of([&] { check_not_an_input(truth, reads); }), "(--truth)"));
  EXPECT_NO_THROW(check_not_an_input(dir.file("new.tsv"), reads));
  write_text(dir.file("other.tsv"), "x\n");
  EXPECT_NO_THROW(check_not_an_input(dir.file("other.tsv"), reads));
  EXPECT_EQ(read_text(input), "1\t1\t1\n");
}

TEST(OutputFile, TwoOutputsThatAreOneFileAreRefused) {
  test::TempDirectory dir;
  ASSERT_EQ(::mkdir(dir.file("sub").c_str(), 0755), 0);
  write_text(dir.file("old.tsv"), "x\n");
  ASSERT_EQ(::link(dir.file("old.tsv").c_str(), dir.file("hard.tsv").c_str()), 0);
  ASSERT_EQ(::symlink(dir.file("old.tsv").c_str(), dir.file("soft.tsv").c_str()), 0);
  ASSERT_EQ(::symlink(dir.file("sub").c_str(), dir.file("into-sub").c_str()), 0);
  const std::string new_name = dir.file("new.json");
  // A new name spelt twice (the same, through '.', '..' or a linked folder), an existing file
  // through a hard or a symbolic link.
  const std::vector<std::pair<std::string, std::string>> same = {
      {new_name, new_name},
      {new_name, dir.path() + "/./new.json"},
      {new_name, dir.file("sub/../new.json")},
      {dir.file("sub/a.csv"), dir.file("into-sub/a.csv")},
      {dir.file("old.tsv"), dir.file("hard.tsv")},
      {dir.file("soft.tsv"), dir.file("old.tsv")}};
  for (const auto& outputs : same) {  // no structured binding: clang 14 lets no lambda capture one
    const std::string &first = outputs.first, &second = outputs.second;
    const std::string what = input_error_of([&] {
      check_distinct_outputs({{first, "--out"}, {"", "--out-activations"}, {second, "--report"}});
    });
    EXPECT_EQ(what, second + ": cannot write: --out and --report name the same file (each output needs a file of its own)")
        << first << " and " << second;
  }
  EXPECT_NO_THROW(check_distinct_outputs({{new_name, "--out"}, {dir.file("new.csv"), "--report's CSV"},
                                          {dir.file("sub/new.json"), "--report"}, {dir.file("old.tsv"), "--x"}}));
  EXPECT_NO_THROW(check_distinct_outputs({{"", "--out"}, {"", "--report"}}));  // absent outputs
  EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"hard.tsv", "into-sub", "old.tsv", "soft.tsv", "sub"}))
      << "nothing written";
}

TEST(OutputFile, AMissingFolderOrAPathThroughAFileIsRefused) {
  test::TempDirectory dir;
  write_text(dir.file("file"), "x\n");
  EXPECT_TRUE(contains(input_error_of([&] { check_output_path(dir.file("no/out.tsv")); }), "folder '" + dir.file("no") + "' does not exist"));
  EXPECT_TRUE(contains(input_error_of([&] { check_output_path(dir.file("file/out.tsv")); }), "does not exist"));
  EXPECT_TRUE(contains(input_error_of([&] { check_output_path(""); }), "cannot write"));
  EXPECT_NO_THROW(check_output_path(dir.file("new.tsv")));
  EXPECT_NO_THROW(check_output_path(dir.file("file")));
}

}  // namespace
}  // namespace sdnn
