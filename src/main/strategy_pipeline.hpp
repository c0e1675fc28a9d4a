// strategy_pipeline.hpp: the layer-pipeline strategy. A grid of D x P ranks: rank (d, s) = d*P + s
// holds layers [first, last) of stage s (stage_layers) and, for s = 0, the input rows of row
// group d. Stage 0 cuts its rows into blocks; every stage takes a block through its layers with
// its threads (the data-parallel engine, spmm/engine.hpp, dense panels included) and hands the
// surviving rows, with their row numbers, to stage s + 1 through a slot ring (comm/slot_ring.hpp:
// one-sided puts into a window created once, completion flags, several slots so that stages
// overlap). Dead rows never travel; a block that dies inside a stage sends nothing. The last
// stage takes the categories and the exact checksum of every block it finishes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/mpi_session.hpp"
#include "main/load.hpp"
#include "main/report.hpp"
#include "partition/pull_plan.hpp"
#include "spmm/engine.hpp"

namespace sdnn {

// Layers [first, last) of stage `stage` of `stages`: contiguous; stage s > 0 starts at
// starts[s - 1] when `starts` is given (P - 1 increasing layers in [1, layers)), else the layers
// are balanced by count (RadiX-Net layers all hold the same number of connections). Throws
// std::invalid_argument with a clear message when stages > layers (a stage would hold no layer)
// or `starts` is not such a list.
struct LayerRange {
  Index first = 0, last = 0;
  Index size() const { return last - first; }
};
LayerRange stage_layers(Index layers, int stages, int stage, const std::vector<std::uint32_t>& starts = {});

// The first layer of stages 1..stages-1 that balances the stages' summed `layer_cost` (each
// stage at least one layer): stage s ends where the running cost first reaches s/stages of the
// total. Needs stages <= layer_cost.size().
std::vector<std::uint32_t> balanced_starts(const std::vector<double>& layer_cost, int stages);

// One stage's figures (this rank).
struct StageFigures {
  double busy_s = 0;         // running its layers
  double input_wait_s = 0;   // waiting for a block from upstream (the pipeline bubble)
  double space_wait_s = 0;   // waiting for a free slot downstream
  double transfer_s = 0;     // putting blocks downstream and releasing slots upstream
  std::uint64_t bytes_sent = 0, blocks_sent = 0, rows_sent = 0, blocks_received = 0;
};

struct PipelineResult {
  CsrMatrix final_rows;             // the last stage's survivors (group rows x N) when kept; else empty
  std::vector<Index> categories;    // last stage: local rows that survive every layer, ascending
  ExactSum exact_sum = 0;           // last stage: exact checksum of its survivors
  StageFigures stage;
};

// Runs this rank's stage over its row group's blocks of `block_rows` rows (0: chosen).
// `problem.network` holds the stage's layers only; `problem.input` the group's rows on stage 0.
// `keep_rows`: the last stage keeps its survivors (for the verifier). Fills figures' layer
// vectors (total_layers long, this stage's layers set). Collective over MPI_COMM_WORLD. A failure
// on any stage ends the waits of every stage of its row group (PeerFailure there).
PipelineResult run_pipeline(const MpiSession& mpi, const LoadedProblem& problem, const Grid& grid, LayerRange layers,
                            Index total_layers, const EngineOptions& engine, Index block_rows, bool keep_rows,
                            RankFigures& figures);

// Collective: rank 0 prints one line per stage (busy, bubble, space wait, MB and blocks passed:
// times as the largest over row groups, volumes summed), then the split that the measured time
// of every layer (layer_seconds, summed over ranks) balances, as a --stage-layers option, and
// returns the summary's fields ("stage_busy_s=a,b,... ..."); other ranks return "".
std::string report_stages(const MpiSession& mpi, const Grid& grid, const StageFigures& mine,
                          const std::vector<double>& layer_seconds);

}  // namespace sdnn
