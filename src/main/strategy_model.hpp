// strategy_model.hpp: the data x model strategy. A grid of D x M ranks: rank (d, m) = d*M + m
// holds, for every layer, the columns of W in column block m, and computes by right
// multiplication (CSC) its column block of Y_l for the rows of row group d. The columns of
// Y_{l-1} that its W columns need (the nonzero rows of its W block) and that other ranks of its
// row group own are pulled with MPI_Get from a window that exposes every rank's block, or read in
// place when the peer is on the same node (the window lies in each node's shared segment). With
// one column block (D x 1) each rank runs its row group through the data strategy's engine loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "comm/mpi_session.hpp"
#include "main/load.hpp"
#include "main/report.hpp"
#include "main/strategy.hpp"
#include "partition/pull_plan.hpp"
#include "spmm/engine.hpp"

namespace sdnn {

// How data x model communicates. The defaults are the fastest; each switch undoes one of issue
// 15's changes, so that bench/model_sync_sim.sh can measure what each one gains on its own.
struct ModelComm {
  bool overlap = true;        // the gets overlap the local part of the layer (sdnn --no-overlap: false)
  bool world_sync = false;    // every layer also ends in a barrier over every rank, as when the
                              // per-layer collective covered all ranks, not the row group
  bool merged_gets = true;    // one get per peer: its column offsets (sparse rows), its panels' ranges (dense); false: one per range
  bool panel_blocks = false;  // dense rows: a peer's whole block too is fetched as one block per stored panel,
                              // merged by Window::get_blocks, instead of one plain get of the range
  std::size_t panels_per_part = 16;  // dense rows, with overlap: a layer's gets in parts of this many stored panels
                                     // (at most 4 parts), each part's rows computed while the next part arrives;
                                     // 0: one get per peer for the layer
  bool node_shared = true;    // the ranks of a node hold their slots in one node segment (MPI_Win_allocate_shared) and
                              // read each other's in place, the window made over it for the other nodes' gets;
                              // false: every peer's bytes come through the window's gets
  std::size_t super_rows = kAutomatic;  // a row group's rows go through the layers in super-blocks of at most this
                                        // many rows, one after the other (0: the whole group at once; kAutomatic:
                                        // kSuperRowsPerThread x the engine's threads)
  static constexpr std::size_t kAutomatic = ~std::size_t{0};
  static constexpr std::size_t kSuperRowsPerThread = 2048;
  bool join_tails = true;      // a super-block thinned to a quarter of the largest one's rows parks them, and a later one
                               // takes them in (run_column_blocks); false: every super-block runs its own tail
  bool cyclic_columns = true;  // column block m holds the neurons j with j mod M = m (a deal, hash.hpp, applied when
                               // loading, when M divides N and the network is not hashed); false: contiguous blocks
};
// The switches named in the environment variable SDNN_MODEL_COMM, a comma-separated list of
// world-sync, per-range-gets, panel-blocks, whole-gets, window-gets, super-rows=N, separate-tails and block-columns (unset or empty:
// the defaults); other words throw std::invalid_argument naming the accepted ones. `overlap` is passed through.
ModelComm model_comm_from_environment(bool overlap);

// Runs every layer of this rank's share; the one place that decides how a grid runs: on a grid of
// one column block (D x 1: nothing to exchange between column blocks) the row group goes through
// the data strategy's engine loop (infer_rows, main/row_engine.hpp; CSR with dense panels, data
// parallelism, whatever engine's format; figures without communication; final rows kept only
// when keep_final_rows), else through the column-block loop of strategy_model.cpp, which always
// keeps its final rows.
// The result's final rows: this rank's block (group rows x block columns, CSR, local numbering),
// with their categories and exact sum; figures: compute and communication time, bytes,
// messages, per layer. Collective over MPI_COMM_WORLD. keep_session: with one column block (the
// data strategy's engine loop), where the engine's work buffers go, for the caller to free once
// the run is timed (infer_rows); null: freed before returning.
RankResult run_data_model(const MpiSession& mpi, const LoadedProblem& problem, const Grid& grid,
                          const EngineOptions& engine, const ModelComm& comm, bool keep_final_rows,
                          RankFigures& figures, std::unique_ptr<InferenceSession>* keep_session = nullptr);
// The same for the rank `rank` of MPI_COMM_WORLD, where no MpiSession exists (the MPI tests).
RankResult run_data_model(int rank, const LoadedProblem& problem, const Grid& grid, const EngineOptions& engine,
                          const ModelComm& comm, bool keep_final_rows, RankFigures& figures,
                          std::unique_ptr<InferenceSession>* keep_session = nullptr);

}  // namespace sdnn
