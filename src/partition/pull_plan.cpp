// pull_plan.cpp: see pull_plan.hpp.
#include "partition/pull_plan.hpp"

#include "partition/row_partition.hpp"

namespace sdnn {

PullPlan plan_pulls(const CscMatrix& weights, Index neurons, const Grid& grid, int row_group, int block, bool split) {
  PullPlan plan;
  std::vector<char> needed(neurons, 0);
  for (Offset p = 0; p < weights.nnz(); ++p) needed[weights.indices[p]] = 1;
  const RowRange own = shard_of(neurons, grid.columns, block);
  // Pulled columns in the order: peers by block, then increasing column; runs become ranges.
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
      ++plan.pulled_columns;
    }
  }
  for (Index k = own.first; k < own.last; ++k) plan.local_columns += needed[k];
  if (split) split_weights(weights, neurons, grid, block, plan);
  return plan;
}

void split_weights(const CscMatrix& weights, Index neurons, const Grid& grid, int block, PullPlan& plan) {
  const RowRange own = shard_of(neurons, grid.columns, block);
  // Each pulled neuron's column in the pulled matrix: the ranges' columns, back to back.
  std::vector<Index> pulled_position(neurons, 0);
  Index position = 0;
  for (const PullPlan::Range& range : plan.ranges) {
    const RowRange theirs = shard_of(neurons, grid.columns, range.peer % grid.columns);
    for (Index local = range.first; local < range.last; ++local) pulled_position[theirs.first + local] = position++;
  }
  // W split by where its rows' activations live, column by column: a column's rows stay in order
  // in both parts (pulled positions grow with the neuron id), so no sort is needed.
  plan.local_weights.reset(own.size(), weights.cols());
  plan.remote_weights.reset(plan.pulled_columns, weights.cols());
  for (Index j = 0; j < weights.cols(); ++j) {
    Offset local = 0;
    for (Offset p = weights.begin(j); p < weights.end(j); ++p)
      local += weights.indices[p] >= own.first && weights.indices[p] < own.last;
    plan.local_weights.offsets[j + 1] = plan.local_weights.offsets[j] + local;
    plan.remote_weights.offsets[j + 1] = plan.remote_weights.offsets[j] + (weights.end(j) - weights.begin(j) - local);
  }
  plan.local_weights.indices.resize(plan.local_weights.nnz());
  plan.local_weights.values.resize(plan.local_weights.nnz());
  plan.remote_weights.indices.resize(plan.remote_weights.nnz());
  plan.remote_weights.values.resize(plan.remote_weights.nnz());
  Offset local_at = 0, remote_at = 0;
  for (Index j = 0; j < weights.cols(); ++j)
    for (Offset p = weights.begin(j); p < weights.end(j); ++p) {
      const Index k = weights.indices[p];
      if (k >= own.first && k < own.last) {
        plan.local_weights.indices[local_at] = k - own.first;
        plan.local_weights.values[local_at++] = weights.values[p];
      } else {
        plan.remote_weights.indices[remote_at] = pulled_position[k];
        plan.remote_weights.values[remote_at++] = weights.values[p];
      }
    }
  plan.weights_split = true;
}

}  // namespace sdnn
