// test_io.cpp: the TSV readers and writers: read_triplet_matrix on good files (CRLF, no final newline,
// values like 6.250000e-02) and on bad ones (each an InputError naming the path, the line and the fault),
// read_network's missing layer, read_categories, and the atomic writers (no temporary file left).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "io/input_error.hpp"
#include "io/output_file.hpp"
#include "io/tsv.hpp"
#include "spmm/reference.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

using test::write_text;

using test::read_text;

using test::names_in;

using test::input_error_of;

using test::contains;

class TsvFiles : public ::testing::Test {
 protected:
  test::TempDirectory dir;
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir.file(name);
    write_text(path, text);
    return path;
  }
};

// 3 x 4 with entries (1,2)=0.0625, (3,1)=2.5, (3,4)=-1, (1,1)=1.
const std::string kGoodLines[] = {"1\t2\t6.250000e-02", "3\t1\t2.5", "3\t4\t-1", "1\t1\t1"};
std::string join(const std::string& end, bool final_end) {
  std::string text;
  for (std::size_t i = 0; i < 4; ++i) text += kGoodLines[i] + (i + 1 < 4 || final_end ? end : "");
  return text;
}
CsrMatrix good_matrix() {
  return from_triplets<RowMajor>(3, 4, {{0, 1, 0.0625f}, {2, 0, 2.5f}, {2, 3, -1.0f}, {0, 0, 1.0f}});
}

TEST_F(TsvFiles, GoodFiles) {
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"lf.tsv", join("\n", true)},
           {"crlf.tsv", join("\r\n", true)},
           {"no_final_newline.tsv", join("\n", false)},
           {"crlf_no_final_newline.tsv", join("\r\n", false)}}) {
    SCOPED_TRACE(name);
    const std::string path = write(name, text);
    for (int threads : {1, 2}) {
      const CsrMatrix m = read_triplet_matrix(path, 3, 4, threads);
      EXPECT_EQ(m.rows(), 3u);
      EXPECT_EQ(m.cols(), 4u);
      EXPECT_EQ(first_difference(m, good_matrix()), "");
    }
  }
  // The shape comes from the caller: a file with only row 1 is still a 5 x 9 matrix.
  const CsrMatrix wide = read_triplet_matrix(write("wide.tsv", "1\t1\t1\n"), 5, 9, 1);
  EXPECT_EQ(wide.rows(), 5u);
  EXPECT_EQ(wide.cols(), 9u);
  EXPECT_EQ(wide.nnz(), 1u);
  // The official value format parses to exactly 1/16.
  EXPECT_EQ(read_triplet_matrix(write("w.tsv", "2\t2\t6.250000e-02\n"), 2, 2, 1).values[0], 1.0f / 16.0f);
}

// The TSV lines of `m` ("row<TAB>col<TAB>value", 1-based, values exact in float), row by row; the
// first entry of row `long_line_row` (0-based) is followed by a 5000-character line of that row.
std::string tsv_lines_of(const CsrMatrix& m, Index long_line_row = ~Index{0}) {
  std::string text;
  char buffer[96];
  for (Index i = 0; i < m.rows(); ++i)
    for (Offset p = m.begin(i); p < m.end(i); ++p) {
      std::snprintf(buffer, sizeof buffer, "%u\t%u\t%.9g\n", i + 1, m.indices[p] + 1, m.values[p]);
      text += buffer;
      if (i == long_line_row && p == m.begin(i))
        text += std::to_string(i + 1) + "\t" + std::to_string(m.cols()) + "\t" + std::string(5000, '1') + "e-5000\n";
    }
  return text;
}

TEST_F(TsvFiles, LargeFileParsedInParallelChunks) {
  // Big enough for several parse chunks (64 KiB each): the result does not depend on the threads.
  std::mt19937 rng(3);
  const CsrMatrix expected = test::random_csr(600, 300, 0.1, -5.0f, 5.0f, rng);
  std::string text = tsv_lines_of(expected);
  ASSERT_GT(text.size(), 4u * 65536);
  const std::string path = write("big.tsv", text);
  for (int threads : {1, 2, 3, 8}) EXPECT_EQ(first_difference(read_triplet_matrix(path, 600, 300, threads), expected), "");
  // Two faults, in the middle and at the end: the first in the file is reported at its line,
  // whichever chunk finds it.
  std::size_t middle = text.size() / 2;
  while (text[middle - 1] != '\n') ++middle;
  const std::uint64_t line = line_of(text, middle);
  const std::string bad = write("big_bad.tsv", text.substr(0, middle) + "1\t1\tx\n" + text.substr(middle) + "1\t1\ty\n");
  for (int threads : {1, 2, 8}) {
    const std::string what = input_error_of([&] { read_triplet_matrix(bad, 600, 300, threads); });
    EXPECT_TRUE(contains(what, bad + ":" + std::to_string(line) + ": expected a value")) << what;
  }
  // A duplicate far apart from its first occurrence, across chunks.
  const std::string dup = write("big_dup.tsv", text + text.substr(0, text.find('\n') + 1));
  const std::string what = input_error_of([&] { read_triplet_matrix(dup, 600, 300, 2); });
  EXPECT_TRUE(contains(what, dup + ":" + std::to_string(expected.nnz() + 1) + ": duplicate entry")) << what;
}

// A file parsed in pieces (of 1 byte to more than the file), by several ranks' shares and
// threads: the same triplets in the same order as parsed whole, every line once (a line longer
// than a piece included), and a fault at its line whichever piece holds it.
TEST_F(TsvFiles, FileSharesInPiecesAgreeWithTheWholeFile) {
  std::mt19937 rng(5);
  const CsrMatrix m = test::random_csr(200, 100, 0.1, -5.0f, 5.0f, rng);
  const std::string text = tsv_lines_of(m, 100);
  const std::string path = write("shares.tsv", text);
  const std::vector<Triplet> whole = parse_triplets(path, text, 200, 100, 1);
  for (std::uint64_t piece : {1ull, 7ull, 100ull, 4096ull, 1ull << 30}) {
    for (int ranks : {1, 2, 3}) {
      std::vector<Triplet> joined;
      std::uint64_t bytes = 0;
      for (int r = 0; r < ranks; ++r)
        for (const Triplet& t : parse_file_share(path, 200, 100, r, ranks, 2, bytes, piece)) joined.push_back(t);
      ASSERT_EQ(joined.size(), whole.size()) << "piece " << piece << ", " << ranks << " rank(s)";
      for (std::size_t k = 0; k < whole.size(); ++k)
        ASSERT_TRUE(joined[k].row == whole[k].row && joined[k].col == whole[k].col && joined[k].value == whole[k].value)
            << "triplet " << k << ", piece " << piece << ", " << ranks << " rank(s)";
      EXPECT_EQ(bytes, text.size());
    }
  }
  std::size_t middle = text.size() * 2 / 3;
  while (text[middle - 1] != '\n') ++middle;
  const std::string bad = write("shares_bad.tsv", text.substr(0, middle) + "1\t1\tx\n" + text.substr(middle));
  for (std::uint64_t piece : {7ull, 1000ull}) {
    const std::string what = input_error_of([&] {
      std::uint64_t bytes = 0;
      parse_file_share(bad, 200, 100, 0, 1, 2, bytes, piece);
    });
    EXPECT_TRUE(contains(what, bad + ":" + std::to_string(line_of(text, middle)) + ": expected a value")) << what;
  }
}

struct BadCase {
  std::string name;
  std::string third_line;  // lines 1 and 2 are good
  std::string key;         // a word the message must hold
};

TEST_F(TsvFiles, BadLinesNamePathLineAndFault) {
  const std::vector<BadCase> cases = {
      {"text_for_row", "abc\t1\t1", "expected a row index"},
      {"text_for_col", "2\tx\t1", "expected a column index"},
      {"text_for_value", "2\t2\tone", "expected a value"},
      {"missing_value", "2\t2", "expected a tab after the column"},
      {"space_separated", "2 2 1", "expected a tab after the row"},
      {"empty_line", "", "expected a row index"},
      {"row_zero", "0\t1\t1", "row index 0 out of range"},
      {"col_zero", "1\t0\t1", "column index 0 out of range"},
      {"negative_row", "-1\t1\t1", "negative row index"},
      {"negative_col", "1\t-2\t1", "negative column index"},
      {"row_too_large", "4\t1\t1", "row index 4 out of range 1..3"},
      {"col_too_large", "1\t5\t1", "column index 5 out of range 1..4"},
      {"row_overflow", "99999999999999999999999\t1\t1", "row index too large"},
      {"nan", "1\t3\tnan", "not finite"},
      {"inf", "1\t3\tinf", "not finite"},
      {"minus_inf", "1\t3\t-inf", "not finite"},
      {"beyond_float", "1\t3\t1e39", "out of the range of float"},
      {"trailing_tab", "1\t3\t1\t", "unexpected text after the value"},
      {"trailing_space", "1\t3\t1 ", "unexpected text after the value"},
      {"fourth_field", "1\t3\t1\t7", "unexpected text after the value"},
      {"duplicate", "1\t2\t0.5", "duplicate entry (1, 2)"},
  };
  for (const BadCase& c : cases)
    for (const std::string& end : {std::string("\n"), std::string("\r\n")}) {
      SCOPED_TRACE(c.name + (end == "\n" ? " (LF)" : " (CRLF)"));
      const std::string path = write(c.name + ".tsv", "1\t2\t1" + end + "3\t3\t2" + end + c.third_line + end + "2\t1\t1" + end);
      const std::string what = input_error_of([&] { read_triplet_matrix(path, 3, 4, 2); });
      EXPECT_TRUE(contains(what, path + ":3: ")) << what;
      EXPECT_TRUE(contains(what, c.key)) << what;
    }
}

TEST_F(TsvFiles, DuplicateReportsTheSecondOccurrence) {
  const std::string path = write("dup.tsv", "1\t1\t1\n2\t2\t1\n3\t1\t1\n1\t3\t1\n2\t2\t5\n");
  const std::string what = input_error_of([&] { read_triplet_matrix(path, 3, 3, 1); });
  EXPECT_TRUE(contains(what, path + ":5: duplicate entry (2, 2)")) << what;
}

TEST_F(TsvFiles, EmptyMissingAndDirectory) {
  const std::string empty = write("empty.tsv", "");
  std::string what = input_error_of([&] { read_triplet_matrix(empty, 3, 3, 1); });
  EXPECT_TRUE(contains(what, empty + ":")) << what;
  EXPECT_TRUE(contains(what, "empty")) << what;

  const std::string missing = dir.file("no_such_file.tsv");
  what = input_error_of([&] { read_triplet_matrix(missing, 3, 3, 1); });
  EXPECT_TRUE(contains(what, missing + ":")) << what;
  EXPECT_TRUE(contains(what, "cannot open")) << what;

  what = input_error_of([&] { read_triplet_matrix(dir.path(), 3, 3, 1); });
  EXPECT_TRUE(contains(what, dir.path() + ":")) << what;
  EXPECT_TRUE(contains(what, "directory")) << what;
}

// Regression (tests/corpus, input-fifo): opening a named pipe waited for a writer, so every rank
// hung; it is refused at once, as is any file that is not a regular file.
TEST_F(TsvFiles, NamedPipeIsRefusedWithoutWaiting) {
  const std::string fifo = dir.file("pipe.tsv");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string what = input_error_of([&] { read_triplet_matrix(fifo, 3, 3, 1); });
  EXPECT_TRUE(contains(what, fifo + ": not a regular file")) << what;
  what = input_error_of([&] { file_size(fifo); });
  EXPECT_TRUE(contains(what, fifo + ": not a regular file")) << what;
  what = input_error_of([&] { read_categories(fifo, 3); });
  EXPECT_TRUE(contains(what, fifo + ": not a regular file")) << what;
}

TEST(LineOf, CountsNewlines) {
  const std::string text = "a\nbb\n\nc";
  EXPECT_EQ(line_of(text, 0), 1u);
  EXPECT_EQ(line_of(text, 1), 1u);  // the newline itself belongs to its line
  EXPECT_EQ(line_of(text, 2), 2u);
  EXPECT_EQ(line_of(text, 5), 3u);
  EXPECT_EQ(line_of(text, 6), 4u);
  EXPECT_EQ(line_of(text, 1000), 4u);
}

TEST(InputErrorMessage, Format) {
  EXPECT_STREQ(InputError("a/b.tsv", 12, "bad").what(), "a/b.tsv:12: bad");
  EXPECT_STREQ(InputError("a/b.tsv", "bad").what(), "a/b.tsv: bad");
}

TEST_F(TsvFiles, ReadNetwork) {
  const std::string net = dir.file("net");
  ASSERT_EQ(::mkdir(net.c_str(), 0755), 0);
  std::mt19937 rng(4);
  std::vector<CsrMatrix> layers;
  for (Index l = 1; l <= 3; ++l) {
    layers.push_back(test::random_csr(8, 8, 0.3, 0.5f, 1.5f, rng));
    std::string text;
    for (Index i = 0; i < 8; ++i)
      for (Offset p = layers.back().begin(i); p < layers.back().end(i); ++p)
        text += std::to_string(i + 1) + "\t" + std::to_string(layers.back().indices[p] + 1) + "\t" + "0.5\n";
    write_text(layer_path(net, 8, l), text);
  }
  EXPECT_EQ(layer_path(net, 8, 3), net + "/n8-l3.tsv");
  const Network network = read_network(net, 8, 3, -0.25f, 2);
  ASSERT_EQ(network.size(), 3u);
  for (Index l = 0; l < 3; ++l) {
    EXPECT_EQ(network[l].weights_csr.rows(), 8u);
    EXPECT_EQ(network[l].weights_csr.offsets, layers[l].offsets);
    EXPECT_EQ(test::count_equal(network[l].weights_csr, 0.5f), layers[l].nnz());
    EXPECT_EQ(network[l].bias, std::vector<Value>(8, -0.25f));
  }
  // A missing layer in the middle is named, before any parsing.
  std::filesystem::remove(layer_path(net, 8, 2));
  std::string what = input_error_of([&] { read_network(net, 8, 3, -0.25f, 2); });
  EXPECT_TRUE(contains(what, layer_path(net, 8, 2))) << what;
  EXPECT_TRUE(contains(what, "missing layer")) << what;
  EXPECT_FALSE(contains(what, "n8-l1.tsv") || contains(what, "n8-l3.tsv")) << what;
  // A bad layer is named with its line.
  write_text(layer_path(net, 8, 2), "1\t1\t1\n9\t1\t1\n");
  what = input_error_of([&] { read_network(net, 8, 3, -0.25f, 2); });
  EXPECT_TRUE(contains(what, layer_path(net, 8, 2) + ":2: row index 9")) << what;
  // Not a directory, or no directory.
  what = input_error_of([&] { read_network(layer_path(net, 8, 1), 8, 3, -0.25f, 1); });
  EXPECT_TRUE(contains(what, "cannot read as a tar archive of nN-lK.tsv files")) << what;
  what = input_error_of([&] { read_network(dir.file("nowhere"), 8, 3, -0.25f, 1); });
  EXPECT_TRUE(contains(what, dir.file("nowhere"))) << what;
}

TEST_F(TsvFiles, ReadCategoriesGood) {
  EXPECT_EQ(read_categories(write("c.tsv", "1\n5\n17\n"), 17), (std::vector<Index>{0, 4, 16}));
  EXPECT_EQ(read_categories(write("crlf.tsv", "2\r\n3\r\n"), 17), (std::vector<Index>{1, 2}));
  EXPECT_EQ(read_categories(write("nofinal.tsv", "2\n30"), 30), (std::vector<Index>{1, 29}));
  EXPECT_TRUE(read_categories(write("none.tsv", ""), 10).empty()) << "no row survives: an empty file";
}

TEST_F(TsvFiles, ReadCategoriesBad) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"3\n7\n5\n", "ascending"},      {"3\n7\n7\n", "repeated row 7"}, {"3\n7\n21\n", "out of range 1..20"},
      {"3\n7\n0\n", "out of range"},   {"3\n7\nx\n", "expected a row"}, {"3\n7\n9\t1\n", "unexpected text"},
      {"3\n7\n-9\n", "negative"},
  };
  int k = 0;
  for (const auto& [text, key] : cases) {
    const std::string path = write("bad" + std::to_string(k++) + ".tsv", text);
    const std::string what = input_error_of([&] { read_categories(path, 20); });
    EXPECT_TRUE(contains(what, path + ":3: ")) << what;
    EXPECT_TRUE(contains(what, key)) << what;
  }
  const std::string missing = dir.file("missing.tsv");
  EXPECT_TRUE(contains(input_error_of([&] { read_categories(missing, 20); }), missing)) << "missing file";
}

TEST_F(TsvFiles, WriteCategories) {
  const std::string path = dir.file("out.tsv");
  write_categories(path, {0, 4, 16, 59999});
  EXPECT_EQ(read_text(path), "1\n5\n17\n60000\n");
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"out.tsv"}) << "no temporary file left";
  EXPECT_EQ(read_categories(path, 60000), (std::vector<Index>{0, 4, 16, 59999}));
  // Overwriting replaces the whole content.
  write_categories(path, {2});
  EXPECT_EQ(read_text(path), "3\n");
  write_categories(path, {});
  EXPECT_EQ(read_text(path), "");
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"out.tsv"});
}

TEST_F(TsvFiles, WritingIntoAMissingFolderFails) {
  const std::string path = dir.file("missing_folder/out.tsv");
  const std::string what = input_error_of([&] { write_categories(path, {1, 2}); });
  EXPECT_TRUE(contains(what, path)) << what;
  EXPECT_TRUE(contains(what, "cannot write")) << what;
  EXPECT_TRUE(names_in(dir.path()).empty()) << "nothing left behind";
  EXPECT_FALSE(std::filesystem::exists(dir.file("missing_folder")));
  // Into a path that is a directory: refused, the directory untouched.
  const std::string sub = dir.file("sub");
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  EXPECT_TRUE(contains(input_error_of([&] { write_file_atomically(sub, "x\n"); }), sub));
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"sub"});
  EXPECT_TRUE(std::filesystem::is_directory(sub));
}

}  // namespace
}  // namespace sdnn
