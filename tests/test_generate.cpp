// test_generate.cpp: the RadiX-Net generator against SPEC.md ('RadiX-Net structure'): the number of
// base layers, the exact formula of the base layers, 32 nonzeros of 1/16 per row and column, seeded and
// independent row and column permutations of later layers; random_permutation; generate_inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "io/generate.hpp"
#include "spmm/engine.hpp"
#include "spmm/reference.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

TEST(Generate, BaseLayerCount) {
  EXPECT_EQ(radixnet_base_layers(32), 1u);
  EXPECT_EQ(radixnet_base_layers(64), 2u);
  EXPECT_EQ(radixnet_base_layers(1024), 6u);
  EXPECT_EQ(radixnet_base_layers(4096), 8u);
  EXPECT_EQ(radixnet_base_layers(16384), 10u);
  EXPECT_EQ(radixnet_base_layers(65536), 12u);
  for (Index bad : {0u, 1u, 16u, 48u, 96u, 1000u, 1023u, 1040u})
    EXPECT_THROW(radixnet_base_layers(bad), std::invalid_argument) << bad;
  EXPECT_THROW(radixnet_layer(64, 0, 1), std::invalid_argument);
  EXPECT_THROW(radixnet_layer(48, 1, 1), std::invalid_argument);
}

TEST(Generate, DefaultBias) {
  EXPECT_EQ(default_bias(1024), -0.3f);
  EXPECT_EQ(default_bias(4096), -0.35f);
  EXPECT_EQ(default_bias(16384), -0.4f);
  EXPECT_EQ(default_bias(65536), -0.45f);
  EXPECT_FLOAT_EQ(default_bias(256), -0.25f);
  const Network network = generate_network(64, 3, 1);
  for (const Layer& layer : network) EXPECT_EQ(layer.bias, std::vector<Value>(64, default_bias(64)));
  const Network custom = generate_network(64, 2, 1, -0.125f);
  EXPECT_EQ(custom[1].bias, std::vector<Value>(64, -0.125f));
}

TEST(Generate, BaseLayersFollowTheFormula) {
  for (Index n : {32u, 64u, 256u, 1024u}) {
    const Index m = n / 16, r = radixnet_base_layers(n);
    for (Index k = 1; k <= r; ++k) {
      SCOPED_TRACE("N " + std::to_string(n) + " layer " + std::to_string(k));
      const CsrMatrix w = radixnet_layer(n, k, 12345);
      ASSERT_EQ(w.rows(), n);
      ASSERT_EQ(w.cols(), n);
      const auto dense = test::dense_of(w);
      Offset mismatches = 0;
      for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < n; ++j) {
          const Index difference = ((i % m) + m - (j % m)) % m;
          const bool nonzero = difference == 0 || difference == (Index{1} << (k - 1));
          mismatches += dense[i][j] != (nonzero ? 1.0f / 16.0f : 0.0f);
        }
      EXPECT_EQ(mismatches, 0u);
      // Base layers do not depend on the seed.
      EXPECT_EQ(first_difference(radixnet_layer(n, k, 999), w), "");
    }
  }
}

TEST(Generate, EveryLayerHas32PerRowAndColumnAndItsBaseStructure) {
  for (Index n : {32u, 64u, 256u, 1024u}) {
    const Index r = radixnet_base_layers(n), layers = 2 * r + 3;
    const Network network = generate_network(n, layers, 77);
    ASSERT_EQ(network.size(), layers);
    for (Index l = 0; l < layers; ++l) {
      SCOPED_TRACE("N " + std::to_string(n) + " layer " + std::to_string(l + 1));
      const CsrMatrix& w = network[l].weights_csr;
      EXPECT_EQ(w.nnz(), Offset{32} * n);
      EXPECT_EQ(test::radixnet_structure_problem(w, n, l % r + 1), "");
      if (r > 1) {
        EXPECT_NE(test::radixnet_structure_problem(w, n, (l + 1) % r + 1), "") << "structure of another base";
      }
      // generate_network (parallel over layers) gives what radixnet_layer gives alone.
      EXPECT_EQ(first_difference(w, radixnet_layer(n, l + 1, 77)), "");
    }
  }
}

// The set of index patterns of the slices (rows of a CSR matrix, columns of a CSC one).
template <class Layout>
std::set<std::vector<Index>> slice_patterns(const CompressedMatrix<Layout>& m) {
  std::set<std::vector<Index>> patterns;
  for (Index k = 0; k < m.major_count(); ++k)
    patterns.emplace(m.indices.begin() + m.begin(k), m.indices.begin() + m.end(k));
  return patterns;
}

TEST(Generate, LaterLayersArePermutedBySeededIndependentPermutations) {
  for (Index n : {64u, 256u, 1024u}) {
    const Index r = radixnet_base_layers(n);
    for (Index k = r + 1; k <= 3 * r; ++k) {
      SCOPED_TRACE("N " + std::to_string(n) + " layer " + std::to_string(k));
      const CsrMatrix w = radixnet_layer(n, k, 5);
      EXPECT_EQ(first_difference(radixnet_layer(n, k, 5), w), "") << "reproducible";
      EXPECT_NE(first_difference(radixnet_layer(n, k, 6), w), "") << "another seed, another layer";
      EXPECT_NE(first_difference(radixnet_layer(n, k - r, 5), w), "") << "not the base layer";
      if (k + r <= 3 * r) {
        EXPECT_NE(first_difference(radixnet_layer(n, k + r, 5), w), "") << "fresh for every layer";
      }
      // Every base layer has its whole diagonal (difference 0). The same permutation on rows and
      // columns would keep a whole diagonal; independent ones leave about 32 of N.
      Offset diagonal = 0;
      for (Index i = 0; i < n; ++i)
        for (Offset p = w.begin(i); p < w.end(i); ++p) diagonal += w.indices[p] == i;
      EXPECT_LT(diagonal, n);
      if (n >= 256) {
        EXPECT_LT(diagonal, n / 4);
      }
      // Both sides are permuted. Permuting only the rows keeps the set of row patterns (the column
      // sets of the rows) of the base layer; permuting only the columns keeps its set of column
      // patterns. Independent permutations of both change both sets.
      const CsrMatrix base = radixnet_layer(n, (k - 1) % r + 1, 5);
      EXPECT_NE(slice_patterns(w), slice_patterns(base)) << "columns permuted";
      EXPECT_NE(slice_patterns(to_csc(w)), slice_patterns(to_csc(base))) << "rows permuted";
    }
  }
}

TEST(Generate, RandomPermutationIsASeededBijection) {
  for (Index n : {0u, 1u, 2u, 17u, 1000u, 4096u}) {
    std::vector<Index> p = random_permutation(n, 3);
    ASSERT_EQ(p.size(), n);
    EXPECT_EQ(random_permutation(n, 3), p);
    std::vector<Index> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    std::vector<Index> identity(n);
    std::iota(identity.begin(), identity.end(), 0u);
    EXPECT_EQ(sorted, identity) << "n " << n;
    if (n >= 1000) {
      EXPECT_NE(p, identity);
      EXPECT_NE(random_permutation(n, 4), p);
      Offset fixed = 0;
      for (Index i = 0; i < n; ++i) fixed += p[i] == i;
      EXPECT_LT(fixed, 10u);
    }
  }
}

TEST(Generate, InputsAreSeededOnesOfVariedDensity) {
  const Index rows = 3000, n = 1024;
  const CsrMatrix y = generate_inputs(rows, n, 42);
  EXPECT_EQ(y.rows(), rows);
  EXPECT_EQ(y.cols(), n);
  EXPECT_EQ(first_difference(generate_inputs(rows, n, 42), y), "") << "reproducible";
  EXPECT_NE(first_difference(generate_inputs(rows, n, 43), y), "") << "seeded";
  EXPECT_EQ(test::count_equal(y, 1.0f), y.nnz()) << "values 1";
  // The first rows do not depend on how many rows are asked for.
  EXPECT_EQ(first_difference(generate_inputs(100, n, 42), slice_rows(y, 0, 100)), "");
  Offset heavy = 0;
  for (Index i = 0; i < rows; ++i) {
    const Offset count = y.end(i) - y.begin(i);
    EXPECT_GE(count, n * 2 / 100 - 1) << "row " << i;
    EXPECT_LE(count, n / 2) << "row " << i;
    EXPECT_TRUE(std::is_sorted(y.indices.begin() + y.begin(i), y.indices.begin() + y.end(i)));
    EXPECT_TRUE(std::adjacent_find(y.indices.begin() + y.begin(i), y.indices.begin() + y.end(i)) ==
                y.indices.begin() + y.end(i));
    heavy += count >= n * 35 / 100;
  }
  EXPECT_GT(heavy, rows / 100);  // about 3%
  EXPECT_LT(heavy, rows * 6 / 100);
}

TEST(Generate, AFewPercentOfGeneratedInputsSurvive120Layers) {
  Network network = generate_network(1024, 120, 42);
  const CsrMatrix input = generate_inputs(3000, 1024, 42);
  EngineOptions options;
  options.format = Format::csr;
  options.parallel = Parallelism::data;
  options.threads = 2;
  const InferenceResult result = infer(network, input, options);
  const std::size_t alive = categories_of(result.activations).size();
  RecordProperty("survivors", static_cast<int>(alive));
  EXPECT_GE(alive, 15u);   // 0.5%
  EXPECT_LE(alive, 300u);  // 10%
  // Survivors saturate: most of their values are at the cap.
  EXPECT_GT(test::count_equal(result.activations, kActivationCap), result.activations.nnz() / 2);
}

}  // namespace
}  // namespace sdnn
