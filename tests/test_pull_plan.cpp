// test_pull_plan.cpp: the data x model pull plan pulls exactly the activation columns a rank
// needs (checked against a brute-force count), from the rank that owns each, in coalesced
// disjoint ranges, and its split of W puts every weight exactly once, at the row of its neuron
// (own or pulled, in plan order), in its column, with its value.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "io/generate.hpp"
#include "partition/pull_plan.hpp"
#include "partition/row_partition.hpp"
#include "spmm/reference.hpp"

namespace sdnn {
namespace {

CscMatrix column_block(const CsrMatrix& w, Index first, Index last) {
  std::vector<Triplet> t;
  for (Index i = 0; i < w.rows(); ++i)
    for (Offset p = w.begin(i); p < w.end(i); ++p)
      if (w.indices[p] >= first && w.indices[p] < last) t.push_back({i, w.indices[p] - first, w.values[p]});
  return from_triplets<ColMajor>(w.rows(), last - first, t);
}

CsrMatrix random_weights(Index n, Offset nonzeros, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::set<std::pair<Index, Index>> seen;
  std::vector<Triplet> t;
  while (t.size() < nonzeros) {
    const Index i = static_cast<Index>(rng() % n), j = static_cast<Index>(rng() % n);
    if (seen.insert({i, j}).second) t.push_back({i, j, static_cast<Value>(rng() % 100) / 10.0f - 5.0f});
  }
  return from_triplets<RowMajor>(n, n, t);
}

void check_plan(const CsrMatrix& w, const Grid& grid) {
  const Index n = w.rows();
  for (int d = 0; d < grid.rows; ++d)
    for (int m = 0; m < grid.columns; ++m) {
      SCOPED_TRACE("grid " + std::to_string(grid.rows) + "x" + std::to_string(grid.columns) + " rank (" +
                   std::to_string(d) + "," + std::to_string(m) + ")");
      const RowRange own = shard_of(n, grid.columns, m);
      const CscMatrix block = column_block(w, own.first, own.last);
      const PullPlan plan = plan_pulls(block, n, grid, d, m);
      // Brute force: every neuron k with a weight into the block, split into own and remote.
      std::set<Index> needed_remote;
      Index needed_local = 0;
      for (Index k = 0; k < n; ++k) {
        bool needed = false;
        for (Offset p = w.begin(k); p < w.end(k); ++p) needed = needed || (w.indices[p] >= own.first && w.indices[p] < own.last);
        if (!needed) continue;
        if (k >= own.first && k < own.last) ++needed_local;
        else needed_remote.insert(k);
      }
      EXPECT_EQ(plan.local_columns, needed_local);
      EXPECT_EQ(plan.pulled_columns, needed_remote.size());
      // The ranges name exactly those columns, each from its owner in row group d, coalesced.
      std::set<Index> pulled;
      Index total = 0;
      for (std::size_t r = 0; r < plan.ranges.size(); ++r) {
        const PullPlan::Range& range = plan.ranges[r];
        ASSERT_LT(range.first, range.last);
        const int owner_block = range.peer % grid.columns;
        EXPECT_EQ(range.peer / grid.columns, d);
        EXPECT_NE(owner_block, m);
        const RowRange theirs = shard_of(n, grid.columns, owner_block);
        for (Index c = range.first; c < range.last; ++c) {
          EXPECT_TRUE(pulled.insert(theirs.first + c).second);
          EXPECT_LT(theirs.first + c, theirs.last);
        }
        total += range.last - range.first;
        if (r > 0 && plan.ranges[r - 1].peer == range.peer) {
          EXPECT_LT(plan.ranges[r - 1].last, range.first);  // coalesced: no two touching ranges
        }
      }
      EXPECT_EQ(total, plan.pulled_columns);
      EXPECT_EQ(pulled, needed_remote);
      // Every weight of the block is in exactly one of the two parts.
      EXPECT_EQ(plan.local_weights.nnz() + plan.remote_weights.nnz(), block.nnz());
      EXPECT_EQ(plan.local_weights.rows(), own.size());
      EXPECT_EQ(plan.remote_weights.rows(), plan.pulled_columns);
      // And where it lands: weight (k, j) of the block is row k - own.first of the local part when
      // this rank owns neuron k, else the row of the remote part at k's place in the pulled
      // columns (the ranges in order), same column, same value.
      std::vector<Index> pulled_position(n, n);
      Index position = 0;
      for (const PullPlan::Range& range : plan.ranges) {
        const RowRange theirs = shard_of(n, grid.columns, range.peer % grid.columns);
        for (Index c = range.first; c < range.last; ++c) pulled_position[theirs.first + c] = position++;
      }
      std::vector<Triplet> local, remote;
      for (Index j = 0; j < block.cols(); ++j)
        for (Offset p = block.begin(j); p < block.end(j); ++p) {
          const Index k = block.indices[p];
          if (k >= own.first && k < own.last) local.push_back({k - own.first, j, block.values[p]});
          else remote.push_back({pulled_position[k], j, block.values[p]});
        }
      ASSERT_EQ(plan.local_weights.cols(), block.cols());
      ASSERT_EQ(plan.remote_weights.cols(), block.cols());
      for (const Triplet& t : remote) ASSERT_LT(t.row, plan.pulled_columns) << "a weight from a neuron never pulled";
      EXPECT_EQ(first_difference(to_csr(plan.local_weights),
                                 to_csr(from_triplets<ColMajor>(own.size(), block.cols(), local))),
                "");
      EXPECT_EQ(first_difference(to_csr(plan.remote_weights),
                                 to_csr(from_triplets<ColMajor>(plan.pulled_columns, block.cols(), remote))), "");
    }
}

TEST(PullPlan, PullsExactlyTheNeededColumnsOnEveryGrid) {
  const CsrMatrix random = random_weights(97, 600, 3);
  const CsrMatrix radixnet = radixnet_layer(256, 9, 5);
  for (const Grid& grid : {Grid{1, 1}, Grid{1, 2}, Grid{2, 1}, Grid{1, 3}, Grid{3, 1}, Grid{1, 4}, Grid{2, 2}, Grid{4, 1}}) {
    check_plan(random, grid);
    check_plan(radixnet, grid);
  }
}

TEST(PullPlan, OneBlockPullsNothing) {
  const CsrMatrix w = radixnet_layer(64, 2, 1);
  const PullPlan plan = plan_pulls(column_block(w, 0, 64), 64, Grid{1, 1}, 0, 0);
  EXPECT_TRUE(plan.ranges.empty());
  EXPECT_EQ(plan.pulled_columns, 0u);
  EXPECT_EQ(plan.local_columns, 64u);
}

}  // namespace
}  // namespace sdnn
