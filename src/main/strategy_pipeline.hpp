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
#include "comm/slot_ring.hpp"
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

// The most layers a stage of the automatic split may hold: twice the even share (and at most
// layers - stages + 1), so that a rank holds at most about 2/P of the network.
Index automatic_stage_cap(Index layers, int stages);

// What cutting the layers between two stages costs, per cut b in [1, L) (between layers b - 1 and
// b): `leave[b]` the stage that ends there pays (its rows leave as sparse rows and are put to the
// next stage), `enter[b]` the stage that starts there (they enter its first layer). Inside one
// stage the engine passes rows from layer to layer as they are (dense panels stay panels), so a
// cut is a cost only where it is made. Empty vectors: cuts cost nothing; otherwise L long.
struct CutCost {
  std::vector<double> leave, enter;
  double at(const std::vector<double>& side, std::size_t cut) const { return cut < side.size() ? side[cut] : 0.0; }
};

// The first layer of stages 1..stages-1 of the split of layer_cost.size() layers into `stages`
// contiguous stages of 1 to `most_layers` layers each (0: no limit) whose costliest stage costs
// least: a stage [j, l) costs the sum of its layer_cost, plus cuts.enter[j] when j > 0 and
// cuts.leave[l] when l < L. Needs 1 <= stages <= layers <= stages x most_layers.
std::vector<std::uint32_t> balanced_starts(const std::vector<double>& layer_cost, int stages, Index most_layers = 0,
                                           const CutCost& cuts = {});

// What each stage of the split `starts` costs (the sums balanced_starts compares).
std::vector<double> stage_costs(const std::vector<double>& layer_cost, const std::vector<std::uint32_t>& starts,
                                const CutCost& cuts = {});

// The probe's measurements (probe_layer_costs), summed over row groups, on the stages as loaded
// (`loaded`: the first layer of stages 1..P-1):
//   together_s[s]  stage s's layers in one engine call (rows pass from layer to layer as they are);
//   inner_s[l]     the engine's own time of layer l in that call (on the host's clock: under
//                  SimGrid not the simulated one, so only its shares count);
//   alone_s[l]     layer l run by itself: its rows enter as sparse rows and leave as sparse rows;
//   nonzeros[l]    the nonzeros that enter layer l (what a cut before l would pass).
struct LayerProbe {
  std::vector<double> alone_s, inner_s, together_s, nonzeros;
};
// A layer's own cost, and what each cut costs, from the probe. Every cut inside a loaded stage was
// made in the layers run alone and not in the stage's one call, so the layers alone exceed the
// stage by what its inner cuts cost; a cut is taken to cost in proportion to the nonzeros it passes
// (seconds per nonzero fitted over every inner cut of every stage), half to the stage it leaves
// (its rows made into sparse rows) and half to the one it enters (sparse rows made into what its
// first layer multiplies). A stage's time in one call, less the halves of the cuts at its two ends,
// is its layers' own cost: rate x inner_s + per_layer for each layer, with rate (the engine's clock
// against the MPI one) and per_layer (what a layer costs outside the engine's timing) fitted over
// the stages by least squares, then scaled to the stage's time. (A layer's time alone less its cuts
// is the small difference of two large figures where the cuts cost most: on the 4096 problem a
// cut cost 5 to 20 times a later layer. Shares of inner_s alone, without per_layer, made the 118
// cheap layers of the default problem look 1.5 times cheaper than they ran.) The put of a cut's bytes to the next stage is not
// counted: on one probe block it was mostly waiting for a busy peer on this shared machine (1000
// times a block's put), and on the simulated Omni-Path it is a few percent of a block's time.
struct ProbedCost {
  std::vector<double> layer;  // L long
  CutCost cuts;               // L long each
  double seconds_per_nonzero = 0;
};
ProbedCost probed_cost(const LayerProbe& probe, const std::vector<std::uint32_t>& loaded);

// The pipeline's default block: a row group of `group_rows` cut into 16 blocks, within [max(64, 512 /
// stages), 1024 x threads] rows. Smaller blocks fill the pipeline sooner (it takes stages - 1 blocks'
// time to fill and as long to drain), but every block costs each layer a fixed part whatever its rows
// (about 14 us per 1024-neuron layer, 0.1 ms per 4096-neuron one: reading its weights): the floor
// falls with the stages (256 rows at 2, 128 at 4, 64 from 8). Where that leaves fewer than 2 blocks
// per stage, the group is cut into the number of blocks B (1 to 2 x stages) that makes the fill, the
// drain and the blocks' fixed parts least: B = sqrt((stages - 1) x group_rows / 32), a block's fixed
// part counted as 32 rows (94 rows and 2 stages: 2 blocks of 47 rows; 188 rows and 4 stages: 4 of 47).
Index default_block_rows(Index group_rows, int stages, int threads);

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

// The slot ring that passes a row group's blocks from this rank's stage to the next (and brings
// them from the one before), with slots for blocks of `block_rows` rows (of `neurons` columns;
// 8 MiB at most unless one row needs more). Collective over MPI_COMM_WORLD: made once, before the
// inference (an MPI window: its creation took 5 to 200 ms of a real run on this shared machine,
// 40 us simulated), and used by the probe and the inference.
SlotRing make_stage_ring(int rank, const Grid& grid, Index neurons, Index block_rows);

// Runs this rank's stage over its row group's blocks of `block_rows` rows (0: chosen), through
// `ring` (make_stage_ring, for blocks of at least block_rows rows; a new stream each call).
// `problem.network` holds the stage's layers only; `problem.input` the group's rows on stage 0.
// `keep_rows`: the last stage keeps its survivors (for the verifier). Fills figures' layer
// vectors (total_layers long, this stage's layers set). Collective over the row group. A failure
// on any stage ends the waits of every stage of its row group (PeerFailure there).
PipelineResult run_pipeline(const MpiSession& mpi, const LoadedProblem& problem, const Grid& grid, LayerRange layers,
                            Index total_layers, const EngineOptions& engine, Index block_rows, bool keep_rows,
                            SlotRing& ring, RankFigures& figures);

// The automatic split (balance_stages).
struct StageSplit {
  LayerRange layers;                  // this rank's stage's layers
  std::vector<std::uint32_t> starts;  // the first layer of stages 1..P-1 (empty: nothing balanced, P = 1)
  std::vector<double> stage_cost;     // each stage's share of the probe's cost, its cuts included
  double seconds_per_nonzero = 0;     // what a cut costs per nonzero passed (probed_cost)
  Index probe_rows = 0;               // rows of each row group that the probe ran
  Index cap = 0;                      // the most layers a stage could get (automatic_stage_cap)
  Index layers_received = 0;          // layers this rank received from other stages
  double seconds = 0;                 // probe, split and moves (the slowest rank)
};

// Collective: the automatic split, made after loading. A probe sends one block of each row group's
// rows (every k-th row of stage 0's `input`, as many as the run's blocks of `block_rows` rows
// hold) through the stages as loaded, passed on by `ring` (make_stage_ring) (`layers`: about L/P
// layers each, `network` this stage's layers in CSR and CSC). Each stage keeps the block it got
// and, after a warm-up, times it 3 times on the MPI clock (under SimGrid the simulated one) through
// its layers in one call and through each layer alone, keeping the least of each time
// (LayerProbe). Rank 0 sums them over row groups, turns them into layer and cut costs
// (probed_cost), chooses the split whose costliest stage costs least (balanced_starts with the cut
// costs, at most automatic_stage_cap layers per stage) and broadcasts it, so every rank takes the
// same split. The layers then move between the stages of each row group (point-to-point, each layer
// once) so that `network` holds this rank's new stage's layers, in CSR only (prepare them again).
// The probe's rows are run again by the inference itself: nothing of the answer comes from the probe.
// Collective over MPI_COMM_WORLD; `rank`: this rank's (d x P + stage).
StageSplit balance_stages(int rank, const Grid& grid, Network& network, const CsrMatrix& input, Index group_rows,
                          LayerRange layers, Index total_layers, const EngineOptions& engine, Index block_rows,
                          SlotRing& ring);

// Collective: inside each row group, every layer whose stage changes goes once, point to point,
// from its stage under the split `from` to its stage under `to` (each the first layers of stages
// 1..P-1, as for stage_layers); `network` holds this rank's layers under `from` in CSR, and on
// return its layers under `to`, in CSR only for the layers received (prepare them again). Every
// rank learns every layer's size first and makes room for what it receives; if that fails
// anywhere, every rank stops (PeerFailure on the others). Returns the layers received.
Index move_layers(int rank, int stages, Network& network, Index neurons, Index total_layers,
                  const std::vector<std::uint32_t>& from, const std::vector<std::uint32_t>& to);

// The line that describes the automatic split ("" when there was none).
std::string split_line(const StageSplit& split, int stages, Index total_layers);

// Collective: rank 0 prints one line per stage (busy, bubble, space wait, MB and blocks passed:
// times as the largest over row groups, volumes summed), then the split that the measured time
// of every layer (layer_seconds, summed over ranks) balances, as a --stage-layers option, and
// returns the summary's fields ("stage_busy_s=a,b,... ..."); other ranks return "".
std::string report_stages(const MpiSession& mpi, const Grid& grid, const StageFigures& mine,
                          const std::vector<double>& layer_seconds);

}  // namespace sdnn
