// pull_plan.hpp: for the data x model strategy, who owns which neurons and which activation
// columns a rank must pull for a layer. Rank (d, m) of a D x M grid owns column block m of the
// neurons; for a layer whose column block of W is `weights` (N x C, CSC, rows in global neuron
// ids) it needs the columns of Y_{l-1} that are nonzero rows of `weights`: those in its own block
// are local, the others are pulled from the ranks (d, m') that own them. Computed once per layer
// before the layer loop, from W alone (the split of W for sparse rows when a layer first needs
// it). No MPI here.
#pragma once

#include <vector>

#include "spmm/sparse_matrix.hpp"

namespace sdnn {

struct Grid {
  int rows = 1, columns = 1;  // D row groups x M column blocks
};

// Which columns of Y_{l-1} one rank pulls for one layer, from whom: computed once, before the
// layer loop, from W alone.
struct PullPlan {
  struct Range {
    int peer;           // rank in MPI_COMM_WORLD
    Index first, last;  // the peer's local columns [first, last)
  };
  std::vector<Range> ranges;   // in the order of the pulled matrix's columns
  Index pulled_columns = 0;    // sum of range lengths
  Index local_columns = 0;     // needed columns this rank owns
  bool weights_split = false;  // local_weights and remote_weights are filled (split_weights)
  CscMatrix local_weights;     // rows: this rank's own columns (local numbering)
  CscMatrix remote_weights;    // rows: the pulled columns, in plan order
};

// The plan of one layer for the rank at (row group, column block `block`): `weights` is the
// rank's column block of W (N x C, CSC, rows in global neuron ids). With split: its weights split
// too (split_weights); without, only the ranges and counts (what dense rows need).
PullPlan plan_pulls(const CscMatrix& weights, Index neurons, const Grid& grid, int row_group, int block,
                    bool split = true);
// Fills plan.local_weights and plan.remote_weights (W split by where its rows' activations live:
// sparse rows multiply the two parts, SplitRightMultiplier) for the plan_pulls that made `plan`.
void split_weights(const CscMatrix& weights, Index neurons, const Grid& grid, int block, PullPlan& plan);

}  // namespace sdnn
