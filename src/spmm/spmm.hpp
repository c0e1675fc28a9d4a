// spmm.hpp: the local SpMM kernels of one layer, Y_out = activate(Y_in * W + b). No MPI here.
//
// LeftMultiplier (CSR): the output row by row, C(i,:) = A(i,:) * W, accumulated in a sparse
// accumulator (SPA) over the N output columns. Rows that die are dropped from the output along
// with their ids, so dead rows cost nothing in later layers.
//
// RightMultiplier (CSC): the output column by column, C(:,j) = A * W(:,j), accumulated in a SPA
// over the rows of the block. A range of output columns can be computed on its own, which is
// what model parallelism splits between threads.
//
// Both run a symbolic pass (the exact number of structural nonzeros of each output row or
// column, an upper bound on what survives the ReLU) and a numeric pass that writes the surviving
// entries compactly into the preallocated output. The two passes share one traversal
// (for_each_product), so they cannot drift apart; where W's rows are short bitmaps (N <= 4096) and
// a block reads them often, the left symbolic pass ORs the bitmaps of the rows of W that an input
// row reads instead, and counts the bits: the same exact counts, a few vector ORs per input entry
// instead of 32 marks. Output buffers only grow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "layer.hpp"
#include "sparse_matrix.hpp"

namespace sdnn {

// Sparse accumulator over `size` slots: a double per slot, a stamp that says whether the slot
// is in the current pattern, and the pattern in first-touch order.
class SparseAccumulator {
 public:
  explicit SparseAccumulator(Index size = 0) { resize(size); }
  void resize(Index size) {
    if (sums_.size() < size) {
      sums_.resize(size);
      stamps_.resize(size, 0);
      pattern_.reserve(size);
    }
  }
  void start() {
    pattern_.clear();
    if (++stamp_ == 0) {  // wrapped: clear every stamp once
      std::fill(stamps_.begin(), stamps_.end(), 0);
      stamp_ = 1;
    }
  }
  // Symbolic: records slot i in the pattern.
  void touch(Index i) {
    if (stamps_[i] != stamp_) {
      stamps_[i] = stamp_;
      pattern_.push_back(i);
    }
  }
  // Numeric: adds a product to slot i.
  void add(Index i, double product) {
    if (stamps_[i] != stamp_) {
      stamps_[i] = stamp_;
      sums_[i] = product;
      pattern_.push_back(i);
    } else {
      sums_[i] += product;
    }
  }
  const std::vector<Index>& pattern() const { return pattern_; }
  double sum(Index i) const { return sums_[i]; }

 private:
  std::vector<double> sums_;
  std::vector<Index> stamps_;
  std::vector<Index> pattern_;
  Index stamp_ = 0;
};

// Rows of activations that are still alive: a CSR matrix of those rows and, for each, its id in
// the caller's numbering (a global row number).
struct ActiveRows {
  CsrMatrix rows;
  std::vector<Index> ids;
};

class LeftMultiplier {
 public:
  explicit LeftMultiplier(Index neurons) : spa_(neurons) {}
  // out = activate(in * W + bias); rows that die are left out. out's buffers are reused.
  void multiply(const ActiveRows& in, const CsrMatrix& weights, const Value* bias, ActiveRows& out);
  // The numeric pass alone: out = activate(in * W + bias), given `bound` >= the structural
  // nonzeros of in * W (the total that symbolic() returns for in and W).
  void numeric(const ActiveRows& in, const CsrMatrix& weights, const Value* bias, Offset bound, ActiveRows& out);
  // The exact structural nonzeros of each row of in * W; returns their total.
  Offset symbolic(const CsrMatrix& in, const CsrMatrix& weights, std::vector<Offset>& row_sizes);
  // Whether symbolic() counts by OR-ing bitmaps of W's rows (N <= 4096 and the block's products at
  // least twice W's nonzeros) rather than by marks in the accumulator; both are exact.
  static bool symbolic_uses_bitmaps(const CsrMatrix& in, const CsrMatrix& weights);
  const std::vector<Offset>& last_row_sizes() const { return row_sizes_; }

 private:
  Offset symbolic_by_bitmaps(const CsrMatrix& in, const CsrMatrix& weights, std::size_t words,
                             std::vector<Offset>& row_sizes);

  void numeric_by_bitmaps(const ActiveRows& in, const CsrMatrix& weights, const Value* bias, Offset bound,
                          ActiveRows& out);

  SparseAccumulator spa_;
  std::vector<Offset> row_sizes_;
  std::vector<std::uint64_t> row_bits_;    // symbolic_by_bitmaps: W's rows as column bitmaps,
  const CsrMatrix* bitmaps_of_ = nullptr;  // made for this W by the last symbolic(), or none
  std::vector<std::uint64_t> union_bits_;  // the union of one output row's
  std::vector<double> dense_sums_;         // numeric_by_bitmaps: one row's sums by column
};

class RightMultiplier {
 public:
  explicit RightMultiplier(Index rows) : spa_(rows) {}
  // Symbolic pass for output columns [first, last): column_sizes[j] = structural nonzeros of
  // in * W(:,j). Returns their total.
  Offset symbolic(const CscMatrix& in, const CscMatrix& weights, Index first, Index last, Offset* column_sizes);
  // Numeric pass for output columns [first, last): writes the surviving entries of each column
  // compactly from position `start` of out_indices / out_values, and its kept count into
  // column_kept[j]. Returns the number written.
  Offset numeric(const CscMatrix& in, const CscMatrix& weights, const Value* bias, Index first, Index last,
                 Offset start, Index* out_indices, Value* out_values, Offset* column_kept);
  // The whole layer on one thread: out = activate(in * W + bias), out's buffers reused.
  void multiply(const CscMatrix& in, const CscMatrix& weights, const Value* bias, CscMatrix& out);

 private:
  SparseAccumulator spa_;
  std::vector<Offset> sizes_;
};

}  // namespace sdnn
