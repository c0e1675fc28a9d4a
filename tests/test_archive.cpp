// test_archive.cpp: the binary cache (io/archive.hpp). Round trips of networks (random weights of
// both signs, a bias per neuron, empty rows) and inputs (blocks of odd sizes, empty rows, the last
// block short); the file size the header announces; reading fewer layers; the same inference from
// the archive as from the TSV files. Every fault is an InputError, never a crash or a wrong answer:
// wrong magic or kind, wrong version, wrong size (--neurons, --layers, --inputs), truncation at
// every length, a flip of every single byte, trailing bytes, a missing file.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <random>
#include <string>

#include "io/archive.hpp"
#include "io/generate.hpp"
#include "io/input_error.hpp"
#include "io/output_file.hpp"
#include "io/tsv.hpp"
#include "spmm/engine.hpp"
#include "spmm/reference.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

using test::TempDirectory;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

using test::input_error_of;
bool is_input_error(const std::string& message) { return !message.empty() && message[0] != '<'; }

void expect_same(const CsrMatrix& a, const CsrMatrix& b) {
  ASSERT_EQ(a.rows(), b.rows());
  ASSERT_EQ(a.cols(), b.cols());
  ASSERT_EQ(a.nnz(), b.nnz());
  for (Index i = 0; i <= a.major_count(); ++i) ASSERT_EQ(a.offsets[i], b.offsets[i]);
  for (Offset p = 0; p < a.nnz(); ++p) {
    ASSERT_EQ(a.indices[p], b.indices[p]);
    ASSERT_EQ(a.values[p], b.values[p]);  // bit for bit: floats are stored, not printed
  }
}

Network small_network(Index neurons, Index layers, unsigned seed) {
  std::mt19937 rng(seed);
  Network network = test::random_network(neurons, layers, rng);
  network[0].weights_csr = test::random_csr(neurons, neurons, 0.1, -1.0f, 1.0f, rng, 3);  // empty rows too
  return network;
}

class Archives : public ::testing::Test {
 protected:
  TempDirectory dir;
  std::string network_path = dir.file("net.sdnn"), inputs_path = dir.file("inputs.sdnn");
};

TEST_F(Archives, NetworkRoundTripBitForBit) {
  const Network network = small_network(40, 5, 1);
  write_network_archive(network_path, network);
  EXPECT_EQ(archive_kind(network_path), ArchiveKind::network);
  EXPECT_TRUE(is_archive_path(network_path));
  const Network back = read_network_archive(network_path, 40, 5);
  ASSERT_EQ(back.size(), 5u);
  for (Index l = 0; l < 5; ++l) {
    expect_same(network[l].weights_csr, back[l].weights_csr);
    EXPECT_EQ(network[l].bias, back[l].bias);
  }
  // The file is exactly what the header announces: 32 + 8 L + 8, then per layer
  // 8 (N + 1) + 8 nnz + 4 N + 8.
  std::uint64_t expected = 32 + 8 * 5 + 8;
  for (const Layer& layer : network) expected += 8 * 41 + 8 * layer.weights_csr.nnz() + 4 * 40 + 8;
  EXPECT_EQ(file_size(network_path), expected);
  // Fewer layers than the file holds: the first ones.
  const Network first = read_network_archive(network_path, 40, 2);
  ASSERT_EQ(first.size(), 2u);
  expect_same(network[1].weights_csr, first[1].weights_csr);
  NetworkArchiveReader reader(network_path, 40, 1);
  EXPECT_EQ(reader.layers(), 5u);
  EXPECT_EQ(reader.nonzeros(3), network[3].weights_csr.nnz());
}

TEST_F(Archives, InputsRoundTripInBlocksOfEverySize) {
  std::mt19937 rng(2);
  const CsrMatrix inputs = test::random_inputs(103, 50, 0.3, 0.5f, 2.0f, rng, 4);
  for (Index block_rows : {1u, 7u, 50u, 103u, 4096u}) {
    write_inputs_archive(inputs_path, inputs, block_rows);
    EXPECT_EQ(archive_kind(inputs_path), ArchiveKind::inputs);
    expect_same(inputs, read_inputs_archive(inputs_path, 50, 103));
    InputsArchiveReader reader(inputs_path, 50, 103);
    EXPECT_EQ(reader.blocks(), (103 + block_rows - 1) / block_rows);
    const Index last = reader.blocks() - 1;
    const CsrMatrix tail = reader.read_block(last);
    EXPECT_EQ(tail.rows(), 103 - reader.block_first_row(last));
    EXPECT_EQ(tail.nnz(), inputs.offsets[103] - inputs.offsets[reader.block_first_row(last)]);
  }
  // No entries at all, and a single row.
  write_inputs_archive(inputs_path, CsrMatrix(10, 8), 4);
  EXPECT_EQ(read_inputs_archive(inputs_path, 8, 10).nnz(), 0u);
  const CsrMatrix one = test::random_inputs(1, 8, 1.0, 1.0f, 1.5f, rng);
  write_inputs_archive(inputs_path, one);
  expect_same(one, read_inputs_archive(inputs_path, 8, 1));
}

TEST_F(Archives, SameInferenceAsFromTheTsvFiles) {
  // A generated network and inputs written as official TSV files, read back both ways.
  const Index n = 64, layers = 12, m = 300;
  const std::string net_dir = dir.file("neuron64");
  std::filesystem::create_directories(net_dir);
  for (Index l = 1; l <= layers; ++l) {
    const CsrMatrix w = radixnet_layer(n, l, 3);
    std::string text;
    for (Index i = 0; i < n; ++i)
      for (Offset p = w.begin(i); p < w.end(i); ++p)
        text += std::to_string(i + 1) + "\t" + std::to_string(w.indices[p] + 1) + "\t6.250000e-02\n";
    write_file_atomically(layer_path(net_dir, n, l), text);
  }
  const CsrMatrix generated = generate_inputs(m, n, 3);
  std::string text;
  for (Index i = 0; i < m; ++i)
    for (Offset p = generated.begin(i); p < generated.end(i); ++p)
      text += std::to_string(i + 1) + "\t" + std::to_string(generated.indices[p] + 1) + "\t1\n";
  write_file_atomically(dir.file("inputs.tsv"), text);

  const Network from_tsv = read_network(net_dir, n, layers, default_bias(n), 2);
  const CsrMatrix inputs_tsv = read_triplet_matrix(dir.file("inputs.tsv"), m, n, 2);
  write_network_archive(network_path, from_tsv);
  write_inputs_archive(inputs_path, inputs_tsv, 64);
  Network from_archive = read_network_archive(network_path, n, layers);
  const CsrMatrix inputs_archive = read_inputs_archive(inputs_path, n, m);
  expect_same(inputs_tsv, inputs_archive);
  Network tsv_network = test::clone_network(from_tsv);
  prepare_weights(tsv_network, true, true);
  prepare_weights(from_archive, true, true);
  EngineOptions engine;
  engine.threads = 2;
  const CsrMatrix a = infer(tsv_network, inputs_tsv, engine).activations;
  const CsrMatrix b = infer(from_archive, inputs_archive, engine).activations;
  EXPECT_EQ(first_difference(a, b), "");
  EXPECT_EQ(first_difference(reference_inference(from_archive, inputs_archive), b), "");
  EXPECT_GT(categories_of(b).size(), 0u);
}

TEST_F(Archives, WrongMagicKindVersionAndSize) {
  write_network_archive(network_path, small_network(32, 3, 4));
  std::mt19937 rng(4);
  write_inputs_archive(inputs_path, test::random_inputs(20, 32, 0.5, 1.0f, 1.0f, rng), 8);

  EXPECT_EQ(input_error_of([&] { read_network_archive(network_path, 64, 3); }),
            network_path + ": the archive holds a 32-neuron network, not 64 (--neurons)");
  EXPECT_EQ(input_error_of([&] { read_network_archive(network_path, 32, 4); }),
            network_path + ": the archive holds 3 layers, fewer than the 4 asked for (--layers)");
  EXPECT_EQ(input_error_of([&] { read_inputs_archive(inputs_path, 16, 20); }),
            inputs_path + ": the archive holds inputs of 32 neurons, not 16 (--neurons)");
  EXPECT_EQ(input_error_of([&] { read_inputs_archive(inputs_path, 32, 60000); }),
            inputs_path + ": the archive holds 20 inputs, not 60000 (--inputs)");
  EXPECT_EQ(input_error_of([&] { read_network_archive(inputs_path, 32, 3); }),
            inputs_path + ": an sdnn inputs archive where a network archive is expected");
  EXPECT_EQ(input_error_of([&] { read_inputs_archive(network_path, 32, 20); }),
            network_path + ": an sdnn network archive where an inputs archive is expected");

  // Another version: the version field (bytes 16..19) says 2.
  std::string bytes = read_bytes(network_path);
  bytes[16] = 2;
  write_bytes(dir.file("v2.sdnn"), bytes);
  EXPECT_EQ(input_error_of([&] { read_network_archive(dir.file("v2.sdnn"), 32, 3); }),
            dir.file("v2.sdnn") + ": archive format version 2, this sdnn reads version 1 (run sdnn convert again)");

  // A TSV file named .sdnn, an empty file, a missing file, a folder.
  write_bytes(dir.file("text.sdnn"), "1\t1\t1\n");
  EXPECT_TRUE(is_archive_path(dir.file("text.sdnn")));
  EXPECT_EQ(archive_kind(dir.file("text.sdnn")), ArchiveKind::none);
  EXPECT_EQ(input_error_of([&] { read_network_archive(dir.file("text.sdnn"), 32, 3); }),
            dir.file("text.sdnn") + ": not an sdnn network archive (bad magic)");
  write_bytes(dir.file("empty.sdnn"), "");
  EXPECT_EQ(input_error_of([&] { read_inputs_archive(dir.file("empty.sdnn"), 32, 20); }),
            dir.file("empty.sdnn") + ": not an sdnn inputs archive (bad magic)");
  EXPECT_TRUE(is_input_error(input_error_of([&] { read_network_archive(dir.file("missing.sdnn"), 32, 3); })));
  EXPECT_TRUE(is_input_error(input_error_of([&] { read_network_archive(dir.path(), 32, 3); })));
  EXPECT_FALSE(is_archive_path(dir.path()));
  EXPECT_FALSE(is_archive_path(dir.file("missing.tsv")));
}

// Every prefix of a good archive and every single-byte flip in it are InputErrors; so are
// trailing bytes.
void expect_every_fault_caught(const std::string& good_path, const std::string& bad_path,
                               const std::function<void(const std::string&)>& read) {
  const std::string good = read_bytes(good_path);
  ASSERT_GT(good.size(), 100u);
  read(good_path);  // the good one reads
  for (std::size_t length = 0; length < good.size(); ++length) {
    write_bytes(bad_path, good.substr(0, length));
    const std::string message = input_error_of([&] { read(bad_path); });
    ASSERT_TRUE(is_input_error(message)) << "truncated to " << length << " bytes: " << message;
    ASSERT_EQ(message.rfind(bad_path + ": ", 0), 0u) << message;
  }
  for (std::size_t at = 0; at < good.size(); ++at)
    for (unsigned char mask : {0x01, 0x80}) {
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ mask);
      write_bytes(bad_path, bad);
      const std::string message = input_error_of([&] { read(bad_path); });
      ASSERT_TRUE(is_input_error(message)) << "byte " << at << " ^ " << int(mask) << ": " << message;
    }
  write_bytes(bad_path, good + std::string(8, '\0'));
  EXPECT_EQ(input_error_of([&] { read(bad_path); }), bad_path + ": corrupt: 8 unexpected bytes after the data");
}

TEST_F(Archives, EveryTruncationAndEveryByteFlipOfANetworkIsAnInputError) {
  write_network_archive(network_path, small_network(16, 3, 5));
  expect_every_fault_caught(network_path, dir.file("bad.sdnn"),
                            [](const std::string& path) { read_network_archive(path, 16, 3); });
  // The messages name what is wrong.
  std::string bytes = read_bytes(network_path);
  bytes[bytes.size() - 20] ^= 1;  // in the last layer's bias
  write_bytes(dir.file("bad.sdnn"), bytes);
  EXPECT_EQ(input_error_of([&] { read_network_archive(dir.file("bad.sdnn"), 16, 3); }),
            dir.file("bad.sdnn") + ": corrupt layer 3 (checksum mismatch)");
  bytes = read_bytes(network_path);
  bytes[33] ^= 1;  // in the table of nonzeros
  write_bytes(dir.file("bad.sdnn"), bytes);
  EXPECT_EQ(input_error_of([&] { read_network_archive(dir.file("bad.sdnn"), 16, 3); }),
            dir.file("bad.sdnn") + ": corrupt header (checksum mismatch)");
  bytes = read_bytes(network_path);
  write_bytes(dir.file("bad.sdnn"), bytes.substr(0, bytes.size() - 1));
  EXPECT_EQ(input_error_of([&] { read_network_archive(dir.file("bad.sdnn"), 16, 3); }),
            dir.file("bad.sdnn") + ": truncated: " + std::to_string(bytes.size() - 1) +
                " bytes, the header announces " + std::to_string(bytes.size()));
}

TEST_F(Archives, EveryTruncationAndEveryByteFlipOfInputsIsAnInputError) {
  std::mt19937 rng(6);
  write_inputs_archive(inputs_path, test::random_inputs(20, 16, 0.4, 1.0f, 1.0f, rng, 5), 8);
  expect_every_fault_caught(inputs_path, dir.file("bad.sdnn"),
                            [](const std::string& path) { read_inputs_archive(path, 16, 20); });
}

TEST(Checksum, EverySingleBitFlipChangesIt) {
  std::string bytes(75, '\0');
  for (std::size_t k = 0; k < bytes.size(); ++k) bytes[k] = static_cast<char>(k * 37 + 11);
  const std::uint64_t good = checksum_bytes(bytes.data(), bytes.size());
  for (std::size_t k = 0; k < bytes.size(); ++k)
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = bytes;
      bad[k] = static_cast<char>(bad[k] ^ (1 << bit));
      ASSERT_NE(checksum_bytes(bad.data(), bad.size()), good) << k << " " << bit;
    }
  EXPECT_NE(checksum_bytes(bytes.data(), 74), good);  // the length counts
  EXPECT_EQ(checksum_bytes(bytes.data(), bytes.size()), good);
}

}  // namespace
}  // namespace sdnn
