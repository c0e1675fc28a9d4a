// report.hpp: the per-rank report of a run. Every rank fills its RankFigures; gather_figures
// brings them to rank 0, which prints the imbalance and writes --report FILE as JSON (FILE) and
// CSV (FILE with its extension replaced by .csv), per rank and, on request, per layer. Also what
// rank 0 prints of a run: the problem loaded (print_problem), the figures of --load-only
// (print_load_only), and the output block with its last line "summary key=value ..." for
// scripts (print_results).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/mpi_session.hpp"
#include "main/options.hpp"

namespace sdnn {

struct RankFigures {
  int rank = 0;
  std::uint64_t rows_owned = 0;       // input rows of this rank (its shard or row group)
  std::uint64_t columns_owned = 0;    // neurons of this rank (all of them in data x data)
  std::uint64_t active_nonzeros = 0;  // sum over layers of nnz(Y_{l-1}) this rank multiplied
  double compute_s = 0;               // inference, less communication
  double comm_s = 0;                  // in MPI_Get, flush and waits for peers' data
  double idle_s = 0;                  // waiting at the end for the slowest rank
  std::uint64_t bytes_pulled = 0;     // inference: bytes pulled from other ranks
  std::uint64_t messages = 0;         // inference: MPI_Get calls to other ranks
  std::uint64_t pulled_columns = 0;   // inference: activation columns pulled, over all layers
  std::uint64_t load_bytes_parsed = 0, load_bytes_pulled = 0;
  // --reuse: rows multiplied, over all layers and per layer (distinct rows; data x model counts a
  // row group's rows on its first rank only)
  std::uint64_t rows_computed = 0;
  // data x model: super-blocks' thin tails parked, parked tails taken in by a later piece of rows,
  // and pieces of parked tails run after the last super-block (strategy_model.cpp; this rank's
  // counts, not in the report)
  std::uint64_t tails_parked = 0, tails_taken_in = 0, tail_pieces_at_end = 0;
  std::vector<double> layer_compute_s, layer_comm_s;
  std::vector<std::uint64_t> layer_nonzeros, layer_bytes, layer_columns, layer_rows;
};

struct RunDescription {
  std::string strategy, format, parallel, hash, grid;
  std::uint32_t neurons = 0, layers = 0, inputs = 0;
  int ranks = 1, threads = 1;
  double read_s = 0, infer_s = 0, rate = 0;
  double prepare_s = 0;  // the slowest rank's weight preparation (formats, column groups), not in infer_s
  std::size_t categories = 0;
};

// Collective: every rank's figures on rank 0 (empty elsewhere). Per-layer vectors travel only
// when with_layers.
std::vector<RankFigures> gather_figures(const MpiSession& mpi, const RankFigures& mine, bool with_layers);

// Max over mean compute time (1 when perfectly balanced; 0 with no compute).
double imbalance(const std::vector<RankFigures>& ranks);
// Sum of communication over sum of compute time.
double comm_compute_ratio(const std::vector<RankFigures>& ranks);

// Writes FILE (JSON) and FILE's .csv sibling, atomically.
void write_report(const std::string& path, const RunDescription& run, const std::vector<RankFigures>& ranks,
                  bool with_layers);
std::string csv_path_of(const std::string& json_path);

// The loaded problem's figures: the same on every rank (maxima and sums over ranks) but for
// network_s, input_s and network_mb, which are this rank's (rank 0 prints them).
struct ProblemFigures {
  double read_s = 0;                  // the slowest rank's read (or generation) time
  double network_s = 0, input_s = 0;  // this rank's
  double read_mb = 0, read_mb_s = 0;  // file bytes parsed by all ranks, over read_s
  double network_mb = 0;              // this rank's network
  double largest_input_mb = 0;        // the largest rank's input
  std::uint64_t input_rows = 0;       // input rows holding any entry
};

// Rank 0: the first lines of a run: "sdnn: neurons=...", the read (or generate) figures, the
// strategy's network line and the input held. with_grid: the first line names the grid.
void print_problem(const Options& options, const RunDescription& run, bool with_grid, const ProblemFigures& problem,
                   const std::string& network_line);

// Rank 0, --load-only: the memory held, the window backend and the load-only summary line.
void print_load_only(const Options& options, const RunDescription& run, const ProblemFigures& problem, double peak_mb,
                     double estimate_mb);

// What rank 0 prints after inference.
struct RunResults {
  RunDescription run;            // names, sizes, read_s, infer_s, rate, categories
  ProblemFigures problem;
  bool between_ranks = false;    // the output shows the communication/compute ratio
  std::string simd;              // the dense-panel kernel's SIMD target
  std::string verdict = "skipped", challenge = "none";
  std::size_t truth_categories = 0;
  std::uint64_t connections = 0, active_nonzeros = 0, rows_computed = 0;  // summed over ranks
  double checksum = 0, peak_mb = 0, peak_all_mb = 0, estimate_mb = 0;
  std::string strategy_fields;   // the strategy's own summary fields (" key=value ...")
};

// Rank 0: inference time, SIMD target, rate, multiply-adds, reuse, imbalance, memory, categories,
// the Challenge verdict, the files written, the window backend, and the summary line.
void print_results(const Options& options, const RunResults& results, const std::vector<RankFigures>& ranks);

}  // namespace sdnn
