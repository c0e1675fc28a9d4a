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

struct Layer {
  CsrMatrix weights_csr;    // W by rows (left multiplication); empty when not needed
  CscMatrix weights_csc;    // W by columns (right multiplication); empty when not needed
  std::vector<Value> bias;  // one per neuron (output column)
};

using Network = std::vector<Layer>;

}  // namespace sdnn
