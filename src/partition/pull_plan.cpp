// pull_plan.cpp: see pull_plan.hpp.
#include "partition/pull_plan.hpp"

#include "partition/row_partition.hpp"

namespace sdnn {

PullPlan plan_pulls(const CscMatrix& weights, Index neurons, const Grid& grid, int row_group, int block) {
  PullPlan plan;
  std::vector<char> needed(neurons, 0);
  for (Offset p = 0; p < weights.nnz(); ++p) needed[weights.indices[p]] = 1;
  const RowRange own = shard_of(neurons, grid.columns, block);
  // Pulled columns in the order: peers by block, then increasing column; runs become ranges.
  std::vector<Index> pulled_position(neurons, 0);
  for (int b = 0; b < grid.columns; ++b) {
    if (b == block) continue;
    const RowRange theirs = shard_of(neurons, grid.columns, b);
    const int peer = row_group * grid.columns + b;
    for (Index k = theirs.first; k < theirs.last; ++k) {
      if (!needed[k]) continue;
      const Index local = k - theirs.first;
      if (!plan.ranges.empty() && plan.ranges.back().peer == peer && plan.ranges.back().last == local)
        ++plan.ranges.back().last;
      else
        plan.ranges.push_back({peer, local, local + 1});
      pulled_position[k] = plan.pulled_columns++;
    }
  }
  for (Index k = own.first; k < own.last; ++k) plan.local_columns += needed[k];
  // W split by where its rows' activations live.
  std::vector<Triplet> local, remote;
  for (Index j = 0; j < weights.cols(); ++j)
    for (Offset p = weights.begin(j); p < weights.end(j); ++p) {
      const Index k = weights.indices[p];
      if (k >= own.first && k < own.last)
        local.push_back({k - own.first, j, weights.values[p]});
      else
        remote.push_back({pulled_position[k], j, weights.values[p]});
    }
  plan.local_weights = from_triplets<ColMajor>(own.size(), weights.cols(), local);
  plan.remote_weights = from_triplets<ColMajor>(plan.pulled_columns, weights.cols(), remote);
  return plan;
}

}  // namespace sdnn
