// fuzz_archive.cpp: libFuzzer target for the binary archive readers (make fuzz). The fuzz input is
// the bytes of an archive file, read twice:
//   - as it is: almost every mutation breaks a checksum, which must be an InputError;
//   - with every checksum recomputed (the header's and each layer's or block's, following the
//     layout of io/archive.hpp) wherever the header's sizes fit the file, so that the structural
//     checks behind the checksums (offsets, indices, values, bias) meet the mutations too.
// Each is read as a network (NetworkArchiveReader layer by layer, read_network_layers with two
// threads) and as inputs (InputsArchiveReader block by block, read_input_blocks with two threads),
// with the sizes its header announces when they are small, and with a wrong size. What is read
// must be a valid matrix (offsets from 0, ascending, to nnz; indices in range and ascending in each
// row; values and bias finite). InputError is expected; any other exception, an invalid matrix or
// a sanitizer report is a crash. The readers take a path: the bytes go to a file in TMPDIR.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "io/archive.hpp"
#include "io/input_error.hpp"

namespace {

[[noreturn]] void crash(const std::string& what) {
  std::fprintf(stderr, "fuzz_archive: %s\n", what.c_str());
  std::abort();
}

const std::string& scratch_path() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/sdnn-fuzz-archive-" + std::to_string(::getpid()) + ".sdnn";
  }();
  return path;
}

void write_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) crash("cannot write " + path);
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) crash("cannot write " + path);
  std::fclose(f);
}

template <class T>
T load(const std::vector<std::uint8_t>& b, std::size_t at) {
  T x{};
  std::memcpy(&x, b.data() + at, sizeof x);
  return x;
}
template <class T>
void store(std::vector<std::uint8_t>& b, std::size_t at, T x) {
  std::memcpy(b.data() + at, &x, sizeof x);
}

// The checksums of io/archive.cpp: FNV-1a folds of checksum_bytes over each array.
constexpr std::uint64_t kBasis = 0xcbf29ce484222325ull, kPrime = 0x100000001b3ull;
std::uint64_t fold(std::uint64_t hash, std::uint64_t value) { return (hash ^ value) * kPrime; }
constexpr std::size_t kFixed = 32;  // magic (16), version, a, b, c

// Recomputes every checksum where the header's sizes fit the file; the bytes stay as they are
// where they do not (the reader then refuses the sizes).
void fix_checksums(std::vector<std::uint8_t>& b) {
  if (b.size() < kFixed) return;
  const bool network = std::memcmp(b.data(), "SDNN network", 12) == 0;
  const std::uint64_t n = load<std::uint32_t>(b, 20), count = load<std::uint32_t>(b, 24), block_rows = load<std::uint32_t>(b, 28);
  if (!network && block_rows == 0) return;
  const std::uint64_t entries = network ? count : (count + block_rows - 1) / block_rows;
  if (entries > (b.size() - kFixed) / 8 || kFixed + entries * 8 + 8 > b.size()) return;
  std::vector<std::uint64_t> table(entries);
  if (entries > 0) std::memcpy(table.data(), b.data() + kFixed, entries * 8);
  store(b, kFixed + entries * 8,
        fold(fold(kBasis, sdnn::checksum_bytes(b.data(), kFixed)), sdnn::checksum_bytes(table.data(), entries * 8)));
  std::uint64_t at = kFixed + entries * 8 + 8;
  for (std::uint64_t k = 0; k < entries; ++k) {
    const std::uint64_t majors = network ? n : std::min(block_rows, count - k * block_rows);
    const std::uint64_t nnz = table[k];
    if (nnz > (b.size() - at) / 8 || majors > (b.size() - at) / 8) return;
    const std::uint64_t sizes[4] = {(majors + 1) * 8, nnz * 4, nnz * 4, network ? n * 4 : 0};
    std::uint64_t sum = kBasis, end = at;
    for (int part = 0; part < (network ? 4 : 3); ++part) {  // offsets, indices, values (, bias)
      if (sizes[part] > b.size() - end) return;
      sum = fold(sum, sdnn::checksum_bytes(b.data() + end, sizes[part]));
      end += sizes[part];
    }
    if (end + 8 > b.size()) return;
    store(b, end, sum);
    at = end + 8;
  }
}

void check_matrix(const sdnn::CsrMatrix& m, std::uint64_t rows, std::uint64_t cols) {
  if (m.rows() != rows || m.cols() != cols) crash("a matrix of the wrong shape");
  if (m.offsets[0] != 0 || m.offsets[rows] != m.indices.size() || m.values.size() != m.indices.size())
    crash("offsets do not span the nonzeros");
  for (std::uint64_t i = 0; i < rows; ++i) {
    if (m.offsets[i + 1] < m.offsets[i]) crash("offsets not ascending");
    for (sdnn::Offset p = m.offsets[i]; p < m.offsets[i + 1]; ++p) {
      if (m.indices[p] >= cols || (p > m.offsets[i] && m.indices[p] <= m.indices[p - 1])) crash("bad column index");
      if (!std::isfinite(m.values[p])) crash("value not finite");
    }
  }
}

template <class Read>
void expect_input_error_only(Read&& read) {
  try {
    read();
  } catch (const sdnn::InputError&) {
  }
}

void read_as_network(const std::string& path, std::uint32_t n, std::uint32_t layers) {
  expect_input_error_only([&] {
    sdnn::NetworkArchiveReader reader(path, n, layers);
    sdnn::CsrMatrix weights;
    std::vector<sdnn::Value> bias;
    for (sdnn::Index l = 0; l < layers; ++l) {
      reader.read_layer(l, weights, bias);
      check_matrix(weights, n, n);
      if (bias.size() != n) crash("bias of the wrong size");
      for (sdnn::Value v : bias)
        if (!std::isfinite(v)) crash("bias not finite");
    }
  });
  expect_input_error_only([&] {
    sdnn::read_network_layers(path, n, layers, 2, [&](sdnn::Index, sdnn::CsrMatrix& w, std::vector<sdnn::Value>& bias) {
      check_matrix(w, n, n);
      if (bias.size() != n) crash("bias of the wrong size");
    });
  });
}

void read_as_inputs(const std::string& path, std::uint32_t n, std::uint32_t rows) {
  expect_input_error_only([&] {
    sdnn::InputsArchiveReader reader(path, n, rows);
    for (sdnn::Index b = 0; b < reader.blocks(); ++b) {
      const sdnn::CsrMatrix block = reader.read_block(b);
      check_matrix(block, std::min<std::uint64_t>(reader.block_rows(), rows - std::uint64_t{b} * reader.block_rows()), n);
    }
  });
  expect_input_error_only([&] {
    std::uint64_t seen = 0;
    sdnn::read_input_blocks(
        path, n, rows, 2, [](sdnn::Index, sdnn::Index) { return true; },
        [&](sdnn::Index first, sdnn::CsrMatrix& block) {
          if (first != seen) crash("blocks out of order");
          check_matrix(block, block.rows(), n);
          seen += block.rows();
        });
  });
}

void read_every_way(const std::vector<std::uint8_t>& bytes) {
  const std::string& path = scratch_path();
  write_file(path, bytes);
  std::uint32_t n = 32, count = 3;
  if (bytes.size() >= kFixed) {
    n = load<std::uint32_t>(bytes, 20);
    count = load<std::uint32_t>(bytes, 24);
  }
  // The announced sizes when small (larger ones are refused by size, not read), then wrong ones.
  if (n >= 1 && n <= 256 && count >= 1 && count <= 64) read_as_network(path, n, count);
  if (n >= 1 && n <= 256 && count >= 1 && count <= 20000) read_as_inputs(path, n, count);
  read_as_network(path, 16, 1);
  read_as_inputs(path, 16, 5);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes(data, data + size);
  read_every_way(bytes);
  fix_checksums(bytes);
  read_every_way(bytes);
  std::remove(scratch_path().c_str());
  return 0;
}
