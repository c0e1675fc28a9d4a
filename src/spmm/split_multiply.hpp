// split_multiply.hpp: one layer of right multiplication (CSC) split in two parts, so that the
// first can run while the input of the second is still arriving:
//   Z(:,j) = A1 * W1(:,j) + A2 * W2(:,j),   Y = activate(Z + b)
// partial() computes A1 * W1 and keeps its sums in double with their pattern (no rounding, no
// activation); finish() adds A2 * W2 to them and applies the layer (bias on structural entries,
// rounding once, ReLU, cap), exactly as RightMultiplier does for the whole sum. Threads split the
// output columns (model parallelism). No MPI here: the data x model strategy uses it with A1 the
// rank's own activation columns and A2 the columns pulled from other ranks.
#pragma once

#include <vector>

#include "layer.hpp"
#include "sparse_matrix.hpp"

namespace sdnn {

struct PartialColumns {
  Index rows = 0;
  std::vector<Offset> offsets;  // columns + 1
  std::vector<Index> row_indices;
  std::vector<double> sums;
};

class SplitRightMultiplier {
 public:
  explicit SplitRightMultiplier(int threads) : threads_(threads) {}
  // partial = A1 * W1 in double (A1: rows x K1, W1: K1 x C).
  void partial(const CscMatrix& a1, const CscMatrix& w1, PartialColumns& partial);
  // out = activate(partial + A2 * W2 + bias) (A2: rows x K2, W2: K2 x C, bias: C values).
  void finish(const PartialColumns& partial, const CscMatrix& a2, const CscMatrix& w2, const Value* bias,
              CscMatrix& out);

 private:
  int threads_;
  std::vector<Offset> sizes_, bound_start_, kept_;
  CscMatrix staging_;
};

}  // namespace sdnn
