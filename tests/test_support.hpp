// test_support.hpp: helpers shared by the tests: seeded random sparse matrices, layers, networks
// and inputs (float weights of both signs, a bias per neuron), dense copies for brute-force
// checks, and a temporary directory that removes itself.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "io/input_error.hpp"
#include "spmm/layer.hpp"
#include "spmm/sparse_matrix.hpp"

namespace sdnn::test {

// The message of the InputError that `work` throws; a note in <> when it throws something else or
// nothing (the readers' and writers' tests compare messages).
template <class Work>
std::string input_error_of(Work&& work) {
  try {
    work();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not an InputError: ") + e.what() + ">";
  }
  return "<no exception>";
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A file's bytes written whole (the test fails when it cannot be), and read back.
inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The names in a folder, sorted.
inline std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A rows x cols matrix: each entry present with probability `density`, value uniform in [lo, hi)
// (never exactly 0). `rows_empty` / `cols_empty`: every k-th row / column left empty (0: none).
inline std::vector<Triplet> random_triplets(Index rows, Index cols, double density, float lo, float hi,
                                            std::mt19937& rng, Index rows_empty = 0, Index cols_empty = 0) {
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::uniform_real_distribution<float> value(lo, hi);
  std::vector<Triplet> t;
  for (Index i = 0; i < rows; ++i) {
    if (rows_empty != 0 && i % rows_empty == rows_empty - 1) continue;
    for (Index j = 0; j < cols; ++j) {
      if (cols_empty != 0 && j % cols_empty == cols_empty - 1) continue;
      if (coin(rng) >= density) continue;
      float v = value(rng);
      if (v == 0.0f) v = hi;
      t.push_back({i, j, v});
    }
  }
  return t;
}

inline CsrMatrix random_csr(Index rows, Index cols, double density, float lo, float hi, std::mt19937& rng,
                            Index rows_empty = 0, Index cols_empty = 0) {
  return from_triplets<RowMajor>(rows, cols, random_triplets(rows, cols, density, lo, hi, rng, rows_empty, cols_empty));
}

// Inputs whose rows have varied densities (0 to max_density) and positive values in [lo, hi).
// Every `empty_every`-th row (empty_every - 1, 2 * empty_every - 1, ...) is empty (0: none).
inline CsrMatrix random_inputs(Index rows, Index neurons, double max_density, float lo, float hi, std::mt19937& rng,
                               Index empty_every = 0) {
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::uniform_real_distribution<float> value(lo, hi);
  std::vector<Triplet> t;
  for (Index i = 0; i < rows; ++i) {
    if (empty_every != 0 && i % empty_every == empty_every - 1) continue;
    const double density = coin(rng) * max_density;
    for (Index j = 0; j < neurons; ++j)
      if (coin(rng) < density) t.push_back({i, j, value(rng)});
  }
  return from_triplets<RowMajor>(rows, neurons, t);
}

// A layer with weights in CSR only and a random bias per neuron in [bias_lo, bias_hi).
inline Layer random_layer(Index neurons, double density, float weight_lo, float weight_hi, float bias_lo,
                          float bias_hi, std::mt19937& rng) {
  Layer layer;
  layer.weights_csr = random_csr(neurons, neurons, density, weight_lo, weight_hi, rng);
  std::uniform_real_distribution<float> b(bias_lo, bias_hi);
  layer.bias.resize(neurons);
  for (Value& x : layer.bias) x = b(rng);
  return layer;
}

// A network in which rows die gradually over the layers (many survive 30 layers), with every
// tenth layer's weights (layers 5, 15, ...) four times larger so that some values reach the cap.
inline Network random_network(Index neurons, Index layers, std::mt19937& rng) {
  Network network;
  for (Index l = 0; l < layers; ++l) {
    const float scale = l % 10 == 4 ? 4.0f : 1.0f;
    network.push_back(random_layer(neurons, 0.08, -1.0f * scale, 1.1f * scale, -0.3f, 0.0f, rng));
  }
  return network;
}

// A copy of a network (layers are move-only).
inline Network clone_network(const Network& network) {
  Network copy;
  for (const Layer& layer : network)
    copy.push_back(Layer{layer.weights_csr.clone(), layer.weights_csc.clone(), layer.bias, {}});
  return copy;
}

// Dense copy of a CSR matrix (absent entries 0), and whether each entry is present.
inline std::vector<std::vector<Value>> dense_of(const CsrMatrix& a) {
  std::vector<std::vector<Value>> d(a.rows(), std::vector<Value>(a.cols(), 0.0f));
  for (Index i = 0; i < a.rows(); ++i)
    for (Offset p = a.begin(i); p < a.end(i); ++p) d[i][a.indices[p]] = a.values[p];
  return d;
}
inline std::vector<std::vector<char>> pattern_of(const CsrMatrix& a) {
  std::vector<std::vector<char>> d(a.rows(), std::vector<char>(a.cols(), 0));
  for (Index i = 0; i < a.rows(); ++i)
    for (Offset p = a.begin(i); p < a.end(i); ++p) d[i][a.indices[p]] = 1;
  return d;
}

// The number of stored entries equal to `value`.
inline Offset count_equal(const CsrMatrix& a, Value value) {
  Offset n = 0;
  for (Offset p = 0; p < a.nnz(); ++p) n += a.values[p] == value;
  return n;
}

// "" when `w` has the structure of RadiX-Net base layer `base` (SPEC.md) up to a permutation of
// its rows and one of its columns, else what is wrong. Checked: N x N, 32 nonzeros of value 1/16 in
// every row and column; M = N/16 distinct row patterns and M distinct column patterns, each shared
// by 16 rows (columns), or M/2 shared by 32 for the last base layer (shift M/2: rows a and a + M/2
// then have the same pattern); and 2^(base-1) connected components (rows and columns linked by nonzeros),
// each of N / 2^(base-1) rows and as many columns. These are invariant under the permutations and
// differ from one base layer to another.
inline std::string radixnet_structure_problem(const CsrMatrix& w, Index neurons, Index base) {
  const Index m = neurons / 16, shift = Index{1} << (base - 1);
  if (w.rows() != neurons || w.cols() != neurons) return "shape";
  const CscMatrix c = to_csc(w);
  for (Index i = 0; i < neurons; ++i) {
    if (w.end(i) - w.begin(i) != 32) return "row " + std::to_string(i) + " has " + std::to_string(w.end(i) - w.begin(i));
    if (c.end(i) - c.begin(i) != 32) return "column " + std::to_string(i) + " has " + std::to_string(c.end(i) - c.begin(i));
  }
  for (Offset p = 0; p < w.nnz(); ++p)
    if (w.values[p] != 1.0f / 16.0f) return "a value is not 1/16";
  for (int side = 0; side < 2; ++side) {
    std::map<std::vector<Index>, Index> patterns;
    for (Index k = 0; k < neurons; ++k) {
      const auto& idx = side == 0 ? w.indices : c.indices;
      const Offset b = side == 0 ? w.begin(k) : c.begin(k), e = side == 0 ? w.end(k) : c.end(k);
      ++patterns[std::vector<Index>(idx.begin() + b, idx.begin() + e)];
    }
    const Index distinct = 2 * shift == m ? m / 2 : m;
    if (patterns.size() != distinct)
      return std::to_string(patterns.size()) + " distinct patterns, not " + std::to_string(distinct);
    for (const auto& entry : patterns)
      if (entry.second != neurons / distinct)
        return "a pattern shared by " + std::to_string(entry.second) + ", not " + std::to_string(neurons / distinct);
  }
  // Components: union-find over rows 0..N-1 and columns N..2N-1.
  std::vector<Index> parent(2 * neurons);
  for (Index k = 0; k < 2 * neurons; ++k) parent[k] = k;
  auto find = [&](Index k) {
    while (parent[k] != k) k = parent[k] = parent[parent[k]];
    return k;
  };
  for (Index i = 0; i < neurons; ++i)
    for (Offset p = w.begin(i); p < w.end(i); ++p) parent[find(i)] = find(neurons + w.indices[p]);
  std::map<Index, std::pair<Index, Index>> sizes;  // root -> (rows, columns)
  for (Index k = 0; k < 2 * neurons; ++k) (k < neurons ? sizes[find(k)].first : sizes[find(k)].second)++;
  if (sizes.size() != shift) return std::to_string(sizes.size()) + " components, not " + std::to_string(shift);
  for (const auto& entry : sizes)
    if (entry.second.first != neurons / shift || entry.second.second != neurons / shift) return "uneven components";
  return "";
}

// A fresh directory under testing::TempDir(), removed with its content at the end of the scope.
class TempDirectory {
 public:
  TempDirectory() {
    std::string pattern = ::testing::TempDir() + "sdnn_test_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace sdnn::test
