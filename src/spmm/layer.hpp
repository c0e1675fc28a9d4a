// layer.hpp: one layer of a sparse DNN (weights W and a bias per neuron) and the activation rule.
//
// A layer maps activations Y (inputs x N) to min(32, max(0, Y*W + b)), with the bias added to the
// structural nonzeros of Y*W only. Every output entry is the sum of its products in double plus
// the bias in double, rounded once to float (SPEC.md, 'Numerics'), so no split of the work can
// change it.
#pragma once

#include <algorithm>
#include <vector>

#include "sparse_matrix.hpp"

namespace sdnn {

inline constexpr Value kActivationCap = 32.0f;  // YMAX of the challenge

// The activation of one structural entry whose products sum to `sum`. Returns 0 for an entry
// that is pruned (non-positive), else the capped value.
inline Value activate(double sum, Value bias) {
  const Value z = static_cast<Value>(sum + static_cast<double>(bias));
  return z > 0.0f ? std::min(z, kActivationCap) : 0.0f;
}

// Output neurons whose columns of W read the same inputs in the same order (a RadiX-Net layer
// has groups of 16) are computed together, so that the dense kernel loads each input's panel
// column once for several neurons (the loads, not the multiply-adds, bound it otherwise). `order`
// lists every output neuron group by group, ascending within a group; group g is
// order[start[g], start[g + 1]). A layer whose groups would average fewer than 2 neurons is not
// grouped: order is 0, 1, ..., neurons - 1 and start is empty. Not computed: order is empty.
struct ColumnGroups {
  std::vector<Index> order, start;
  Index count() const { return start.empty() ? 0 : static_cast<Index>(start.size() - 1); }
};

struct Layer {
  CsrMatrix weights_csr;    // W by rows (left multiplication); empty when not needed
  CscMatrix weights_csc;    // W by columns (right multiplication); empty when not needed
  std::vector<Value> bias;  // one per neuron (output column)
  // weights_csc's column groups (group_columns, dense_rows.hpp), computed with the weights'
  // formats by prepare_weights, before the timed inference, as the CSC conversion is; whoever
  // changes weights_csc afterwards empties them (engines compute them again when empty).
  ColumnGroups column_groups;
  bool has_column_groups() const {
    return weights_csc.cols() > 0 && column_groups.order.size() == static_cast<std::size_t>(weights_csc.cols());
  }
  // The prepared groups for a kernel call, null when there are none (the kernel computes them).
  const ColumnGroups* prepared_column_groups() const { return has_column_groups() ? &column_groups : nullptr; }
};

using Network = std::vector<Layer>;

}  // namespace sdnn
