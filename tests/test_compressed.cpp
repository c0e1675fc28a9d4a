// test_compressed.cpp: the official downloads read as shipped (io/compressed.hpp): a gzip file
// (by its .gz name or by its magic alone) gives the same triplets as the plain file, parsed whole
// or by 1-3 ranks' shares in pieces of 1 byte to 1 GB; every file of the bad-input corpus gives
// the same result gzipped as plain; a truncated or corrupt gzip file is an InputError naming the
// file and the line reached; a tar.gz of layer files (members in any order, in a folder, with
// other members) gives the network of the folder, and a bad line in a member names
// "archive[member]:line".
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>

#include "io/compressed.hpp"
#include "io/input_error.hpp"
#include "io/tsv.hpp"
#include "spmm/reference.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

using test::write_text;

using test::read_text;

void write_gzip(const std::string& path, const std::string& text) {
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr) << path;
  if (!text.empty()) {
    ASSERT_EQ(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  }
  ASSERT_EQ(gzclose(gz), Z_OK);
}

// A gzip tar archive of (member name, text) in the order given.
void write_tar_gz(const std::string& path, const std::vector<std::pair<std::string, std::string>>& members) {
  archive* tar = archive_write_new();
  archive_write_add_filter_gzip(tar);
  archive_write_set_format_pax_restricted(tar);
  ASSERT_EQ(archive_write_open_filename(tar, path.c_str()), ARCHIVE_OK);
  for (const auto& [name, text] : members) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, name.c_str());
    archive_entry_set_size(entry, static_cast<la_int64_t>(text.size()));
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    ASSERT_EQ(archive_write_header(tar, entry), ARCHIVE_OK);
    ASSERT_EQ(archive_write_data(tar, text.data(), text.size()), static_cast<la_ssize_t>(text.size()));
    archive_entry_free(entry);
  }
  ASSERT_EQ(archive_write_close(tar), ARCHIVE_OK);
  archive_write_free(tar);
}

using test::input_error_of;

using test::contains;

std::string tsv_lines_of(const CsrMatrix& m) {
  std::string text;
  char buffer[96];
  for (Index i = 0; i < m.rows(); ++i)
    for (Offset p = m.begin(i); p < m.end(i); ++p) {
      std::snprintf(buffer, sizeof buffer, "%u\t%u\t%.9g\n", i + 1, m.indices[p] + 1, m.values[p]);
      text += buffer;
    }
  return text;
}

std::vector<std::tuple<Index, Index, Value>> sorted(const std::vector<Triplet>& triplets) {
  std::vector<std::tuple<Index, Index, Value>> out;
  for (const Triplet& t : triplets) out.emplace_back(t.row, t.col, t.value);
  std::sort(out.begin(), out.end());
  return out;
}

class CompressedFiles : public ::testing::Test {
 protected:
  test::TempDirectory dir;
};

TEST_F(CompressedFiles, GzipGivesThePlainFilesTriplets) {
  std::mt19937 rng(11);
  const CsrMatrix m = test::random_csr(600, 300, 0.1, -5.0f, 5.0f, rng);
  const std::string text = tsv_lines_of(m);
  ASSERT_GT(text.size(), 4u * 65536);
  const std::string named = dir.file("m.tsv.gz"), magic_only = dir.file("m.tsv");
  write_gzip(named, text);
  write_gzip(magic_only, text);
  EXPECT_TRUE(is_gzip_file(named));
  EXPECT_TRUE(is_gzip_file(magic_only));
  EXPECT_FALSE(is_gzip_file(dir.path()));
  for (int threads : {1, 2, 3}) {
    EXPECT_EQ(first_difference(read_triplet_matrix(named, 600, 300, threads), m), "") << threads;
    EXPECT_EQ(first_difference(read_triplet_matrix(magic_only, 600, 300, threads), m), "") << threads;
  }
  // By ranks' shares, in pieces of 1 byte to more than the file, any first rank: every line once.
  const auto whole = sorted(parse_triplets(named, text, 600, 300, 1));
  for (std::uint64_t piece : {1ull, 7ull, 4096ull, 1ull << 30})
    for (int ranks : {1, 2, 3})
      for (int first = 0; first < ranks; ++first) {
        std::vector<Triplet> joined;
        std::uint64_t bytes = 0;
        for (int r = 0; r < ranks; ++r)
          for (const Triplet& t : parse_file_share(named, 600, 300, r, ranks, 2, bytes, piece, first)) joined.push_back(t);
        EXPECT_EQ(sorted(joined), whole) << "piece " << piece << ", " << ranks << " rank(s), first " << first;
        EXPECT_EQ(bytes, text.size());
      }
  // A fault is named at its line, by the rank whose piece holds it, whatever the piece size.
  std::size_t middle = text.size() * 2 / 3;
  while (text[middle - 1] != '\n') ++middle;
  const std::string bad = dir.file("bad.tsv.gz");
  write_gzip(bad, text.substr(0, middle) + "1\t1\tx\n" + text.substr(middle));
  const std::string expected = bad + ":" + std::to_string(line_of(text, middle)) + ": expected a value";
  for (std::uint64_t piece : {7ull, 1000ull, 1ull << 30}) {
    int faults = 0;
    for (int r = 0; r < 3; ++r) {
      const std::string what = input_error_of([&] {
        std::uint64_t bytes = 0;
        parse_file_share(bad, 600, 300, r, 3, 2, bytes, piece);
      });
      if (what == "<no exception>") continue;
      ++faults;
      EXPECT_TRUE(contains(what, expected)) << what;
    }
    EXPECT_EQ(faults, 1) << "piece " << piece;
  }
}

TEST_F(CompressedFiles, TruncatedCorruptAndEmptyGzipAreNamedErrors) {
  std::mt19937 rng(12);
  const std::string text = tsv_lines_of(test::random_csr(2000, 500, 0.1, -5.0f, 5.0f, rng));
  const std::string good = dir.file("good.tsv.gz");
  write_gzip(good, text);
  const std::string packed = read_text(good);
  // Cut in the middle, and just before the 8-byte trailer (all text there, the check missing).
  for (std::size_t keep : {packed.size() / 2, packed.size() - 4}) {
    const std::string cut = dir.file("cut.tsv.gz");
    write_text(cut, packed.substr(0, keep));
    const std::string what = input_error_of([&] { read_triplet_matrix(cut, 2000, 500, 2); });
    EXPECT_TRUE(contains(what, cut + ":")) << what;
    EXPECT_TRUE(contains(what, "gzip data ends early (a truncated file)")) << what;
  }
  // Bytes flipped inside the compressed data: a corrupt stream (or, rarely, a bad line), never a success.
  std::string flipped = packed;
  for (std::size_t k = 0; k < 16; ++k) flipped[packed.size() / 2 + k] = static_cast<char>(~flipped[packed.size() / 2 + k]);
  const std::string corrupt = dir.file("corrupt.tsv");  // found by its magic
  write_text(corrupt, flipped);
  const std::string what = input_error_of([&] { read_triplet_matrix(corrupt, 2000, 500, 2); });
  EXPECT_TRUE(contains(what, corrupt + ":")) << what;
  EXPECT_TRUE(contains(what, "corrupt gzip data")) << what;
  const std::string empty = dir.file("empty.tsv.gz");
  write_gzip(empty, "");
  EXPECT_EQ(input_error_of([&] { read_triplet_matrix(empty, 3, 3, 1); }), empty + ": empty file: no entries");
}

// Every input and layer file of the bad-input corpus reads the same gzipped as plain: the same
// matrix, or the same message after the file's name.
TEST_F(CompressedFiles, CorpusFilesGzippedReadAsPlain) {
  const std::string corpus = "tests/corpus";
  if (!std::filesystem::is_directory(corpus)) GTEST_SKIP() << "run from the repository root: no " << corpus;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    const std::string name = entry.path().filename().string();
    const bool input = name.rfind("input-", 0) == 0 || name.rfind("late-input", 0) == 0;
    const bool layer = name.rfind("layer-", 0) == 0 || name.rfind("late-layer", 0) == 0;
    if ((!input && !layer) || entry.path().extension() != ".tsv") continue;
    ++files;
    const Index rows = input ? 6 : 32;
    const std::string plain = entry.path().string(), packed = dir.file(name + ".gz");
    write_gzip(packed, read_text(plain));
    std::string plain_result, packed_result;
    try {
      plain_result = tsv_lines_of(read_triplet_matrix(plain, rows, 32, 2));
    } catch (const std::exception& e) {
      plain_result = std::string("error") + (std::string(e.what()).substr(plain.size()));
    }
    try {
      packed_result = tsv_lines_of(read_triplet_matrix(packed, rows, 32, 2));
    } catch (const std::exception& e) {
      packed_result = std::string("error") + (std::string(e.what()).substr(packed.size()));
    }
    EXPECT_EQ(packed_result, plain_result) << name;
  }
  EXPECT_GT(files, 20);
}

class TarNetwork : public CompressedFiles {
 protected:
  static constexpr Index kNeurons = 32, kLayers = 3;
  std::vector<std::string> layer_texts;
  std::string folder;
  void SetUp() override {
    std::mt19937 rng(13);
    folder = dir.file("neuron32");
    std::filesystem::create_directory(folder);
    for (Index l = 1; l <= kLayers + 1; ++l) {
      layer_texts.push_back(tsv_lines_of(test::random_csr(kNeurons, kNeurons, 0.2, -1.0f, 1.0f, rng)));
      write_text(layer_path(folder, kNeurons, l), layer_texts.back());
    }
  }
  // The layers in the archive: the official folder, out of order, a file that is not a layer, a
  // layer beyond --layers.
  std::string tar_with(const std::string& name, const std::string& layer2) {
    const std::string path = dir.file(name);
    write_tar_gz(path, {{"neuron32/README", "not a layer\n"},
                        {"neuron32/n32-l3.tsv", layer_texts[2]},
                        {"neuron32/n32-l4.tsv", layer_texts[3]},
                        {"neuron32/n32-l1.tsv", layer_texts[0]},
                        {"neuron32/n32-l2.tsv", layer2}});
    return path;
  }
};

TEST_F(TarNetwork, TarGzGivesTheFoldersNetwork) {
  const std::string tar = tar_with("neuron32.tar.gz", layer_texts[1]);
  EXPECT_TRUE(is_tar_network(tar));
  EXPECT_FALSE(is_tar_network(folder));
  const Network expected = read_network(folder, kNeurons, kLayers, -0.3f, 2);
  for (int threads : {1, 2}) {
    const Network got = read_network(tar, kNeurons, kLayers, -0.3f, threads);
    ASSERT_EQ(got.size(), expected.size());
    for (Index l = 0; l < kLayers; ++l) {
      EXPECT_EQ(first_difference(got[l].weights_csr, expected[l].weights_csr), "") << "layer " << l + 1;
      EXPECT_EQ(got[l].bias, expected[l].bias);
    }
  }
  // Layer files gzipped in the folder read the same.
  write_gzip(layer_path(folder, kNeurons, 2) + ".gz", layer_texts[1]);
  std::filesystem::remove(layer_path(folder, kNeurons, 2));
  EXPECT_EQ(layer_file(folder, kNeurons, 2), layer_path(folder, kNeurons, 2) + ".gz");
  const Network gzipped = read_network(folder, kNeurons, kLayers, -0.3f, 2);
  EXPECT_EQ(first_difference(gzipped[1].weights_csr, expected[1].weights_csr), "");
}

TEST_F(TarNetwork, FaultsNameTheMemberAndLine) {
  // A bad line, a repeated entry.
  std::string tar = tar_with("bad.tar.gz", "1\t1\t0.5\n9\t40\t1\n");
  EXPECT_EQ(input_error_of([&] { read_network(tar, kNeurons, kLayers, -0.3f, 1); }),
            tar + "[neuron32/n32-l2.tsv]:2: column index 40 out of range 1..32");
  tar = tar_with("repeat.tar.gz", "1\t1\t0.5\n2\t2\t1\n1\t1\t1\n");
  EXPECT_EQ(input_error_of([&] { read_network(tar, kNeurons, kLayers, -0.3f, 1); }),
            tar + "[neuron32/n32-l2.tsv]:3: duplicate entry (1, 1)");
  tar = tar_with("empty.tar.gz", "");
  EXPECT_EQ(input_error_of([&] { read_network(tar, kNeurons, kLayers, -0.3f, 1); }),
            tar + "[neuron32/n32-l2.tsv]: empty file: no entries");
  // A missing layer, a layer twice.
  tar = tar_with("ok.tar.gz", layer_texts[1]);
  EXPECT_EQ(input_error_of([&] { read_network(tar, kNeurons, 5, -0.3f, 1); }), tar + ": no member n32-l5.tsv (layer 5 of 5)");
  const std::string twice = dir.file("twice.tar.gz");
  write_tar_gz(twice, {{"a/n32-l1.tsv", layer_texts[0]}, {"b/n32-l1.tsv", layer_texts[0]}});
  EXPECT_EQ(input_error_of([&] { read_network(twice, kNeurons, 2, -0.3f, 1); }),
            twice + "[b/n32-l1.tsv]: layer 1 is in the archive twice");
  // Truncated: named, never a success.
  const std::string packed = read_text(tar);
  const std::string cut = dir.file("cut.tar.gz");
  write_text(cut, packed.substr(0, packed.size() / 2));
  std::string what = input_error_of([&] { read_network(cut, kNeurons, kLayers, -0.3f, 1); });
  EXPECT_TRUE(contains(what, cut)) << what;
  EXPECT_FALSE(contains(what, "<")) << what;
  // Not a tar archive.
  const std::string text = dir.file("plain.tsv");
  write_text(text, layer_texts[0]);
  what = input_error_of([&] { read_network(text, kNeurons, kLayers, -0.3f, 1); });
  EXPECT_TRUE(contains(what, text + ": cannot read as a tar archive of nN-lK.tsv files")) << what;
}

}  // namespace
}  // namespace sdnn
