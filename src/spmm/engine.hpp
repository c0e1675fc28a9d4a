// engine.hpp: inference of a whole network on one process, with OpenMP threads. No MPI here.
//
// Inputs: the network (layers with weights in the format the engine needs) and the input
// activations Y0 (a CSR matrix, one row per input, N columns). Output: the final activations
// Y_L (same shape, sorted column indices), from which the categories follow.
//
// Two ways to split the work between threads:
// - data parallelism: blocks of input rows, dynamically scheduled; a thread takes its block
//   through all the layers with its own buffers (CSR: left multiplication; CSC: right).
// - model parallelism: all rows together in CSC; the threads split each layer's output columns.
// CSR with model parallelism is not offered (its rows would have to be split by columns).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layer.hpp"
#include "reference.hpp"
#include "sparse_matrix.hpp"
#include "spmm.hpp"

namespace sdnn {

enum class Format { csr, csc };
enum class Parallelism { data, model };

std::string to_string(Format f);
std::string to_string(Parallelism p);
Format parse_format(const std::string& s);            // throws std::invalid_argument
Parallelism parse_parallelism(const std::string& s);  // throws std::invalid_argument
// Throws std::invalid_argument with a clear message for a combination the engine refuses.
void check_combination(Format f, Parallelism p);

struct EngineOptions {
  Format format = Format::csr;
  Parallelism parallel = Parallelism::data;
  int threads = 1;
  Index block_rows = 0;  // rows per block in data parallelism; 0: rows / (8 x threads) within [256, 2048]
  // CSR data parallelism: a block whose alive rows hold at least this share of their N
  // entries moves to dense panels (dense_rows.hpp), and back below a quarter of it. Above 1:
  // never. Needs the weights by columns too. 1/16: with the SIMD panel kernel (AVX2 and AVX3 at
  // 15 to 18 G multiply-adds/s on a Zen 4 core, against about 0.7 G for the sparse accumulator),
  // rows pay off in panels from about 5% of their entries on; 1/8, the figure of the first
  // panel kernel (an AVX-512 loop), left the default problem 20% and N = 16384 60% slower
  // (docs/results.md, "The dense threshold, re-measured").
  double dense_threshold = 0.0625;
  // Data parallelism: false drops each block's final rows once its categories and checksum are
  // taken (InferenceResult::activations is then empty), so that saturated survivors are never
  // held all at once (60,000 Fashion-MNIST inputs at N = 65536 would hold 12.6 GB of them).
  bool keep_activations = true;
  // Data parallelism: false for rows that go on through more layers elsewhere (a pipeline stage
  // before the last): no categories and no checksum (InferenceResult::categories empty, exact_sum
  // 0; with reuse they are taken all the same), and the activations' column indices are left in
  // the order the last layer made them, as the engine passes them from layer to layer (sorting
  // and summing a first stage's dense output cost as much as its layer: docs/pipeline.md).
  bool final_results = true;
  // Exact computation reuse (reuse.hpp): rows with identical entries are computed once, and
  // every row's result is its representative's. The answer is the same as without it.
  bool reuse = false;
  // Called now and then with the fraction of the work done (0..1) and a short label.
  std::function<void(double fraction, const std::string& label)> progress;
};

struct InferenceResult {
  CsrMatrix activations;                // Y_L: input rows x N, sorted column indices (empty when
                                        // data parallelism was told not to keep it)
  std::vector<Index> categories;        // the rows of Y_L that hold any nonzero, ascending (0-based)
  ExactSum exact_sum = 0;               // exact_sum_of(Y_L) (reference.hpp)
  std::uint64_t active_nonzeros = 0;    // sum over layers of nnz(Y_{l-1}) actually multiplied
  std::vector<std::uint64_t> layer_nonzeros;  // nnz(Y_{l-1}) multiplied in layer l
  std::vector<double> layer_seconds;          // time in layer l (data: summed over threads)
  std::vector<std::uint64_t> layer_rows;      // rows multiplied in layer l (filled with reuse only)
  std::uint64_t panel_handoffs = 0;           // data: dense rows given to idle threads (PanelHandoff)
  std::uint64_t panel_parks = 0;              // data: thin blocks' rows parked for a later block
};

// Makes sure every layer holds its weights in the format(s) asked for (converting as needed), and
// every layer holding CSC weights its column groups (Layer::column_groups), layers in parallel.
void prepare_weights(Network& network, bool need_csr, bool need_csc);

// Inference of one network in several calls (the pipeline runs each block of rows through its
// stage's layers in a call of its own): each thread's buffers (in data parallelism: its block's
// sparse rows, accumulators and dense panels) and each layer's column groups for the dense kernel
// live in the session, so that a call's blocks reuse them as blocks inside one call do, grown
// only when needed. Each call's result is what infer() gives for the same input and options.
// The network must outlive the session and stay unchanged.
class InferenceSession {
 public:
  // Throws std::invalid_argument for options the engine refuses.
  InferenceSession(const Network& network, const EngineOptions& options);
  ~InferenceSession();
  InferenceSession(const InferenceSession&) = delete;
  InferenceSession& operator=(const InferenceSession&) = delete;

  InferenceResult run(const CsrMatrix& input);

  struct State;  // engine.cpp

 private:
  std::unique_ptr<State> state_;
};

// One call of a session of its own.
InferenceResult infer(const Network& network, const CsrMatrix& input, const EngineOptions& options);

// The rows per block of data parallelism when EngineOptions::block_rows is 0.
Index automatic_block_rows(Index rows, int threads);

// The rows of every block (rows.rows[r] is row ids[r]) as one rows x cols matrix, sorted column
// indices unless `sort` is false; rows in no block are empty.
CsrMatrix assemble_rows(Index rows, Index cols, const std::vector<ActiveRows>& blocks, bool sort = true);

// The rows of `a` in [first, last) that hold any entry, with their ids (ids[i], or i itself when
// ids is null).
void gather_nonempty_rows(const CsrMatrix& a, Index first, Index last, const Index* ids, ActiveRows& out);

// Rows [first, last) of a CSR matrix as a matrix of their own.
CsrMatrix slice_rows(const CsrMatrix& a, Index first, Index last);

}  // namespace sdnn
