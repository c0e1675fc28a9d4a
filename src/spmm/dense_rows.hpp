// dense_rows.hpp: the layer kernel for rows that have become dense (saturated survivors).
//
// Rows are kept in panels of kPanelRows rows, stored column by column: the kPanelRows values of
// neuron k of panel p are contiguous, so one layer is, for every output neuron j and each of its
// weights W(k,j), one SIMD multiply-add over the panel's rows (SIMD over a block of rows, no
// index per value). Sums are in double and rounded once (SPEC.md, 'Numerics'), exactly as in the
// sparse kernels, so every SIMD target gives the same bits; an output entry is structural when
// some present input reaches it, which for positive activations is "the sum of the inputs it
// reads is positive". Rows that die are dropped, so dead rows cost nothing in later layers.
//
// The kernel is written once with Google Highway and compiled for every SIMD target of the
// machine family (x86: AVX3 (AVX-512), AVX2, SSE4; ARM: NEON and SVE; a portable
// fallback everywhere); the best one the CPU supports is chosen at run time, so one binary built
// for a baseline CPU serves every node. The environment variable SDNN_SIMD=<target> (e.g. AVX2)
// restricts the choice to that target or lower ones. No MPI here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "huge_pages.hpp"
#include "layer.hpp"
#include "spmm.hpp"

namespace sdnn {

inline constexpr Index kPanelRows = 8;

// A block's panel storage (huge_pages.hpp: large buffers on transparent huge pages).
using PanelValues = std::vector<Value, WorkingAllocator<Value>>;

struct DenseRows {
  Index neurons = 0;
  std::vector<Index> ids;    // the id of each row, in order
  PanelValues panel;  // panels x neurons x kPanelRows; padding rows hold 0
  Index rows() const { return static_cast<Index>(ids.size()); }
  Index panels() const { return (rows() + kPanelRows - 1) / kPanelRows; }
  Value at(Index row, Index neuron) const { return row_start(row)[std::size_t{neuron} * kPanelRows]; }
  // Row r's first entry in its panel; its entry k is kPanelRows x k further on.
  const Value* row_start(Index r) const {
    return panel.data() + static_cast<std::size_t>(r / kPanelRows) * neurons * kPanelRows + r % kPanelRows;
  }
  Value* row_start(Index r) { return const_cast<Value*>(std::as_const(*this).row_start(r)); }
  // Row r's nonzero entries, counted.
  Index row_nonzeros(Index r) const {
    const Value* row = row_start(r);
    Index count = 0;
    for (Index k = 0; k < neurons; ++k) count += row[std::size_t{k} * kPanelRows] != 0.0f;
    return count;
  }
};

// Copies one row of `neurons` entries between panels (from row_start to row_start).
inline void copy_panel_row(const Value* from, Value* to, Index neurons) {
  for (Index k = 0; k < neurons; ++k) to[std::size_t{k} * kPanelRows] = from[std::size_t{k} * kPanelRows];
}
// Sets one row of `neurons` entries in its panel (from row_start) to +0.
inline void clear_panel_row(Value* row, Index neurons) {
  for (Index k = 0; k < neurons; ++k) row[std::size_t{k} * kPanelRows] = 0.0f;
}

// Sparse rows to dense panels and back (values must be positive for the dense kernel).
void to_dense(const ActiveRows& in, Index neurons, DenseRows& out);
void to_sparse(const DenseRows& in, ActiveRows& out);

// Doubles on 64-byte boundaries (a panel column of 8 doubles is one cache line), reused across
// layers: the kernel's operands converted to double once per layer, not once per use.
class DoubleBuffer {
 public:
  void resize(std::size_t size);  // keeps the storage when it is large enough; contents undefined
  double* data() { return data_.get(); }
  const double* data() const { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(double* p) const noexcept { free_working(p); }
  };
  std::unique_ptr<double[], Free> data_;
  std::size_t size_ = 0, capacity_ = 0;
};

// W's column groups (ColumnGroups, layer.hpp), computed once per layer by prepare_weights
// (engine.hpp) and reusable for every call with the same weights.
void group_columns(const CscMatrix& weights, ColumnGroups& groups);

// One layer's operands as the kernel reads them: the input panels and W's values in double, and
// W's column groups.
struct WideOperands {
  DoubleBuffer panels;   // DenseRows::panel in double, same layout
  DoubleBuffer weights;  // CscMatrix::values in double, same order
  ColumnGroups groups;
};
// `groups`: the weights' column groups when the caller holds them (Layer::column_groups;
// copied), else computed here.
void widen_operands(const DenseRows& in, const CscMatrix& weights, WideOperands& wide,
                    const ColumnGroups* groups = nullptr);
// Only the panels, for new panels under weights that `wide` already holds (widen_operands of
// other panels and the same weights): the kernel reads the floats of grouped layers as they are.
void widen_panels(const DenseRows& in, WideOperands& wide);

// The pieces of one layer, for callers that split the output columns between threads:
// prepare_panel_output sizes `out` like `in`; multiply_panel_columns computes output neurons
// [first, last) of every panel into `out` from `wide` (widen_operands of `in` and the weights)
// and adds to row_nonzeros[r] the entries row r kept; multiply_panel_share does the same for the
// output neurons at positions [begin, end) of wide.groups.order (shares of the kernel's order keep a
// group's neurons together: split [0, neurons) this way between threads); keep_alive_rows moves
// the rows that kept any entry into `kept` (taking `computed`'s panels when none died) and
// returns their nonzeros.
void prepare_panel_output(const DenseRows& in, DenseRows& out);
void multiply_panel_columns(const DenseRows& in, const WideOperands& wide, const CscMatrix& weights,
                            const Value* bias, Index first, Index last, DenseRows& out, std::uint32_t* row_nonzeros);
void multiply_panel_share(const DenseRows& in, const WideOperands& wide, const CscMatrix& weights,
                          const Value* bias, Index begin, Index end, DenseRows& out, std::uint32_t* row_nonzeros);
// multiply_panel_span: every output neuron of W (its columns may be fewer than in.neurons: a column
// block) for panels [first_panel, first_panel + panels) of `in`, read where they are, under the
// weights and groups that `wide` holds (widen_operands of any panels; a layer with no column
// groups has the span's panels widened into `wide` here, unless its weights read each input
// fewer than kFloatReads times); the span's output panel q goes to
// out + q x out_stride (output neuron j at + j x kPanelRows), the kept entries of the span's row r
// are added to row_nonzeros[r].
// Weights that read each input fewer times than this on average (nnz(W) < kFloatReads x
// in.neurons; not grouped) are multiplied from the float panels, each vector converted as it is
// loaded, instead of the panels widened to double first.
inline constexpr double kFloatReads = 4.0;
void multiply_panel_span(const DenseRows& in, Index first_panel, Index panels, WideOperands& wide,
                         const CscMatrix& weights, const Value* bias, Value* out, std::size_t out_stride,
                         std::uint32_t* row_nonzeros);
Offset keep_alive_rows(DenseRows& computed, const std::uint32_t* row_nonzeros, DenseRows& kept);
// The same in place: drops from `rows` the rows r with row_nonzeros[r] == 0 and returns the
// nonzeros of those kept. The kept rows are not kept in order (each dead row takes the last kept
// row's place, and its count with it: row_nonzeros[r] is then kept row r's); the padding rows
// after the last are zero.
Offset drop_dead_rows(DenseRows& rows, std::uint32_t* row_nonzeros);

// Whether rows are worth dense panels: at least `threshold` of their entries set, all positive
// (so that "reached" is "the sum of the inputs read is positive").
bool worth_dense(const CsrMatrix& rows, Index neurons, double threshold);

// The SIMD target the kernel runs on ("AVX3", "AVX2", "SSE4", "NEON", ...). The first call applies
// SDNN_SIMD; throws std::invalid_argument when it names no target this build has for this CPU.
std::string simd_target();
// Every target this build compiled that this CPU supports, best first.
std::vector<std::string> simd_targets_available();

class DenseMultiplier {
 public:
  // out = activate(in * W + bias) with W by columns (out is not in); rows that die are left
  // out, and the order of those kept changes (drop_dead_rows). `groups`: group_columns(weights),
  // when the caller keeps them (else computed here).
  void multiply(const DenseRows& in, const CscMatrix& weights, const Value* bias, DenseRows& out,
                const ColumnGroups* groups = nullptr);
  // Nonzeros of the last output (to decide when to go back to sparse rows), and of its row r
  // (r < the rows of that output).
  Offset last_nonzeros() const { return nonzeros_; }
  std::uint32_t last_row_nonzeros(Index r) const { return row_nonzeros_[r]; }

 private:
  WideOperands wide_;  // the weights, and a few panels at a time
  std::vector<std::uint32_t> row_nonzeros_;
  Offset nonzeros_ = 0;
};

}  // namespace sdnn
