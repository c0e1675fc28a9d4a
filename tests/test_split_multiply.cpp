// test_split_multiply.cpp: SplitRightMultiplier (the data x model strategy's layer, split into
// the rank's own columns and the pulled ones) against reference_inference, entry by entry, with
// 1 to 3 threads: every column block of the output, local parts that are empty, whole or in the
// middle, pulled columns in a scrambled order (as a pull plan orders them), dying rows, the cap,
// and one multiplier reused across layers and shapes (its buffers grow and shrink).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "spmm/layer.hpp"
#include "spmm/reference.hpp"
#include "spmm/split_multiply.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

// Columns `ks` of y, in that order: a rows x ks.size() CSC matrix.
CscMatrix columns_in_order(const CsrMatrix& y, const std::vector<Index>& ks) {
  constexpr Index kAbsent = ~Index{0};
  std::vector<Index> position(y.cols(), kAbsent);
  for (Index i = 0; i < ks.size(); ++i) position[ks[i]] = i;
  std::vector<Triplet> t;
  for (Index i = 0; i < y.rows(); ++i)
    for (Offset p = y.begin(i); p < y.end(i); ++p)
      if (position[y.indices[p]] != kAbsent) t.push_back({i, position[y.indices[p]], y.values[p]});
  return from_triplets<ColMajor>(y.rows(), static_cast<Index>(ks.size()), t);
}

// Rows `ks` of w (in that order) and its columns [first, last): a ks.size() x (last - first) CSC matrix.
CscMatrix weights_block(const CsrMatrix& w, const std::vector<Index>& ks, Index first, Index last) {
  std::vector<Triplet> t;
  for (Index i = 0; i < ks.size(); ++i)
    for (Offset p = w.begin(ks[i]); p < w.end(ks[i]); ++p)
      if (w.indices[p] >= first && w.indices[p] < last) t.push_back({i, w.indices[p] - first, w.values[p]});
  return from_triplets<ColMajor>(static_cast<Index>(ks.size()), last - first, t);
}

// Columns [first, last) of a CSR matrix, renumbered from 0.
CsrMatrix columns_of(const CsrMatrix& a, Index first, Index last) {
  std::vector<Triplet> t;
  for (Index i = 0; i < a.rows(); ++i)
    for (Offset p = a.begin(i); p < a.end(i); ++p)
      if (a.indices[p] >= first && a.indices[p] < last) t.push_back({i, a.indices[p] - first, a.values[p]});
  return from_triplets<RowMajor>(a.rows(), last - first, t);
}

CsrMatrix reference_one_layer(const Layer& layer, const CsrMatrix& y) {
  Network one;
  one.push_back(Layer{layer.weights_csr.clone(), CscMatrix(), layer.bias, {}});
  return reference_inference(one, y);
}

struct Split {
  Index local_first, local_last;  // the rank's own neurons (columns of Y), the rest pulled
  Index out_first, out_last;      // the output column block
};

// out = the split multiplier's layer over `split`, as CSR rows x (out_last - out_first).
CsrMatrix split_layer(SplitRightMultiplier& multiplier, const Layer& layer, const CsrMatrix& y, const Split& s,
                      std::mt19937& rng) {
  std::vector<Index> local(s.local_last - s.local_first), remote;
  std::iota(local.begin(), local.end(), s.local_first);
  for (Index k = 0; k < y.cols(); ++k)
    if (k < s.local_first || k >= s.local_last) remote.push_back(k);
  std::shuffle(remote.begin(), remote.end(), rng);  // the plan's order is not the neurons' order
  PartialColumns partial_sums;
  multiplier.partial(columns_in_order(y, local), weights_block(layer.weights_csr, local, s.out_first, s.out_last),
                     partial_sums);
  CscMatrix out;
  multiplier.finish(partial_sums, columns_in_order(y, remote),
                    weights_block(layer.weights_csr, remote, s.out_first, s.out_last), layer.bias.data() + s.out_first,
                    out);
  return to_csr(out);
}

TEST(SplitMultiply, EqualsTheReferenceForEverySplitAndThreadCount) {
  Offset checked = 0, capped = 0, died = 0;
  for (int threads = 1; threads <= 3; ++threads) {
    SplitRightMultiplier multiplier(threads);  // reused across every problem below
    for (std::uint32_t seed = 1; seed <= 4; ++seed) {
      std::mt19937 rng(seed * 7 + threads);
      const Index n = seed == 4 ? 37 : 64, rows = 10 + 15 * seed;
      const CsrMatrix y = test::random_inputs(rows, n, 0.6, 0.1f, 3.0f, rng, 6);
      const float scale = seed == 3 ? 12.0f : 1.0f;  // seed 3: values reach the cap
      const Layer layer = test::random_layer(n, 0.15, -1.0f * scale, 1.2f * scale, -2.5f, 0.1f, rng);
      const CsrMatrix expected = reference_one_layer(layer, y);
      const Index third = n / 3;
      for (const Split& s : {Split{0, n, 0, n}, Split{0, 0, 0, n}, Split{third, 2 * third, 0, n},
                             Split{third, 2 * third, third, 2 * third}, Split{0, third, 2 * third, n},
                             Split{2 * third, n, 0, 1}, Split{5, 6, n - 1, n}}) {
        SCOPED_TRACE(std::to_string(threads) + " thread(s), seed " + std::to_string(seed) + ", local [" +
                     std::to_string(s.local_first) + ", " + std::to_string(s.local_last) + "), output [" +
                     std::to_string(s.out_first) + ", " + std::to_string(s.out_last) + ")");
        const CsrMatrix want = columns_of(expected, s.out_first, s.out_last);
        EXPECT_EQ(first_difference(split_layer(multiplier, layer, y, s, rng), want), "");
        checked += want.nnz();
      }
      capped += test::count_equal(expected, kActivationCap);
      died += categories_of(y).size() - categories_of(expected).size();
    }
  }
  // Not trivial: entries compared, some at the cap, some rows dead in the layer.
  EXPECT_GT(checked, 1000u);
  EXPECT_GT(capped, 0u);
  EXPECT_GT(died, 0u);
}

TEST(SplitMultiply, EmptyInputGivesAnEmptyBlock) {
  std::mt19937 rng(5);
  const Layer layer = test::random_layer(16, 0.3, -1.0f, 1.0f, -0.2f, 0.5f, rng);
  const CsrMatrix y(9, 16);
  for (int threads = 1; threads <= 3; ++threads) {
    SplitRightMultiplier multiplier(threads);
    const CsrMatrix out = split_layer(multiplier, layer, y, Split{4, 8, 2, 12}, rng);
    EXPECT_EQ(out.rows(), 9u);
    EXPECT_EQ(out.cols(), 10u);
    EXPECT_EQ(out.nnz(), 0u);  // bias only on structural entries: nothing to add it to
  }
}

}  // namespace
}  // namespace sdnn
