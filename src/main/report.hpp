// report.hpp: the per-rank report of a run. Every rank fills its RankFigures; gather_figures
// brings them to rank 0, which prints the imbalance and writes --report FILE as JSON (FILE) and
// CSV (FILE with its extension replaced by .csv), per rank and, on request, per layer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/mpi_session.hpp"

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
  std::vector<double> layer_compute_s, layer_comm_s;
  std::vector<std::uint64_t> layer_nonzeros, layer_bytes, layer_columns, layer_rows;
};

struct RunDescription {
  std::string strategy, format, parallel, hash, grid;
  std::uint32_t neurons = 0, layers = 0, inputs = 0;
  int ranks = 1, threads = 1;
  double read_s = 0, infer_s = 0, rate = 0;
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

}  // namespace sdnn
