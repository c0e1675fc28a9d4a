// strategy_pipeline.cpp: the layer-pipeline strategy (see strategy_pipeline.hpp).
//
// A message between stages is one chunk of a block's survivors, laid out for reading in place:
// [rows u64][nonzeros u64][row offsets (rows + 1) u64][row numbers rows u32][columns nnz u32]
// [values nnz f32]. A block whose survivors do not fit one slot goes as several chunks (rows are
// independent, so a chunk is a block of its own downstream); a slot holds at least one full row.
// The end of the stream is an empty message marked last.
#include "main/strategy_pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <memory>
#include <stdexcept>

#include "comm/mpi_library.hpp"
#include "comm/slot_ring.hpp"
#include "spmm/spmm.hpp"

namespace sdnn {
namespace {

constexpr int kSlots = 4;                                    // blocks in flight between two stages
constexpr std::size_t kLargestSlot = std::size_t{8} << 20;  // bytes, unless one row needs more
// What a block costs each layer besides its rows, in rows: on the 4096 x 120 problem (docs/pipeline.md,
// "Blocks of a small row group") one more block of a 94-row group cost a stage as much as about 30 rows.
constexpr double kBlockFixedRows = 32;

// The MPI library's clock (comm/mpi_library.hpp): under SMPI the simulated one.
double seconds_since(double start) { return mpi_seconds_since(start); }

std::size_t chunk_bytes(std::uint64_t rows, std::uint64_t nonzeros) {
  return 2 * sizeof(std::uint64_t) + (rows + 1) * sizeof(Offset) + rows * sizeof(Index) +
         nonzeros * (sizeof(Index) + sizeof(Value));
}

// The surviving (nonempty) rows of `y` in [first, last): their offsets rebased to the first
// entry of `first`, and their row numbers ids[r].
struct Survivors {
  std::vector<Offset> offsets{0};
  std::vector<Index> ids;
  Offset first_entry = 0;
  void take(const CsrMatrix& y, const Index* row_ids, Index first, Index last) {
    offsets.assign(1, 0);
    ids.clear();
    first_entry = y.begin(first);
    for (Index r = first; r < last; ++r)
      if (y.end(r) > y.begin(r)) {
        ids.push_back(row_ids[r]);
        offsets.push_back(y.end(r) - first_entry);
      }
  }
  Offset nonzeros() const { return offsets.back(); }
};

}  // namespace

Index default_block_rows(Index group_rows, int stages, int threads) {
  const auto p = static_cast<Index>(std::max(1, stages));
  const Index rows = std::clamp<Index>(group_rows / 16, std::max<Index>(64, 512 / p), 1024 * static_cast<Index>(threads));
  if ((group_rows + rows - 1) / rows >= 2 * p) return rows;
  // A small group: B blocks through P stages take (B + P - 1) block times, and a block costs what
  // kBlockFixedRows rows cost besides its own rows, so (B + P - 1) x (kBlockFixedRows + rows / B) is
  // least at B = sqrt((P - 1) x rows / kBlockFixedRows); at most 2 blocks per stage.
  const double best = std::sqrt(static_cast<double>(p - 1) * static_cast<double>(group_rows) / kBlockFixedRows);
  const Index blocks = std::clamp<Index>(static_cast<Index>(std::lround(best)), 1, 2 * p);
  return std::max<Index>(1, (group_rows + blocks - 1) / blocks);
}

LayerRange stage_layers(Index layers, int stages, int stage, const std::vector<std::uint32_t>& starts) {
  if (stages < 1 || stage < 0 || stage >= stages) throw std::invalid_argument("stage_layers: bad stage");
  if (static_cast<Index>(stages) > layers)
    throw std::invalid_argument("--grid asks for " + std::to_string(stages) + " pipeline stages but the network has " +
                                std::to_string(layers) + " layer(s): a stage would hold no layer (use at most " +
                                std::to_string(layers) + " stages)");
  if (starts.empty()) {
    const RowRange r = shard_of(layers, stages, stage);
    return LayerRange{r.first, r.last};
  }
  if (starts.size() != static_cast<std::size_t>(stages - 1))
    throw std::invalid_argument("--stage-layers needs " + std::to_string(stages - 1) + " layer number(s) for " +
                                std::to_string(stages) + " stages, not " + std::to_string(starts.size()));
  for (std::size_t s = 0; s < starts.size(); ++s)
    if (starts[s] >= layers || (s > 0 && starts[s] <= starts[s - 1]))
      throw std::invalid_argument("--stage-layers needs increasing layer numbers in [1, " + std::to_string(layers - 1) +
                                  "] (every stage holds a layer)");
  return LayerRange{stage == 0 ? 0 : starts[stage - 1], stage + 1 == stages ? layers : starts[stage]};
}

Index automatic_stage_cap(Index layers, int stages) {
  const auto p = static_cast<Index>(std::max(1, stages));
  return std::min<Index>(layers - std::min(layers, p) + 1, 2 * ((layers + p - 1) / p));
}

std::vector<std::uint32_t> balanced_starts(const std::vector<double>& layer_cost, int stages, Index most_layers,
                                           const CutCost& cuts) {
  const std::size_t layers = layer_cost.size();
  if (stages < 1 || static_cast<std::size_t>(stages) > layers)
    throw std::invalid_argument("balanced_starts: needs 1 <= stages <= layers");
  const std::size_t cap = most_layers == 0 ? layers : std::max<std::size_t>(1, most_layers);
  if (cap * static_cast<std::size_t>(stages) < layers)
    throw std::invalid_argument("balanced_starts: stages of at most " + std::to_string(cap) + " layers cannot hold " +
                                std::to_string(layers));
  std::vector<double> prefix(layers + 1, 0.0);
  for (std::size_t l = 0; l < layers; ++l) prefix[l + 1] = prefix[l] + std::max(0.0, layer_cost[l]);
  // A stage [j, l): its layers, the cut it enters by (j > 0) and the cut it leaves by (l < L).
  auto stage = [&](std::size_t j, std::size_t l) {
    return prefix[l] - prefix[j] + (j > 0 ? std::max(0.0, cuts.at(cuts.enter, j)) : 0.0) +
           (l < layers ? std::max(0.0, cuts.at(cuts.leave, l)) : 0.0);
  };
  // worst[s][l]: the least cost of the costliest stage when stages 0..s hold layers [0, l);
  // from[s][l]: where stage s starts in that split. Stages of 1 to cap layers each.
  const double none = std::numeric_limits<double>::infinity();
  const auto P = static_cast<std::size_t>(stages);
  std::vector<std::vector<double>> worst(P, std::vector<double>(layers + 1, none));
  std::vector<std::vector<std::size_t>> from(P, std::vector<std::size_t>(layers + 1, 0));
  for (std::size_t l = 1; l <= std::min(cap, layers); ++l) worst[0][l] = stage(0, l);
  for (std::size_t s = 1; s < P; ++s)
    for (std::size_t l = s + 1; l <= layers; ++l)
      for (std::size_t j = l - std::min(l - s, cap); j < l; ++j) {  // stage s holds [j, l), j >= s
        if (worst[s - 1][j] == none) continue;
        const double cost = std::max(worst[s - 1][j], stage(j, l));
        if (cost < worst[s][l]) worst[s][l] = cost, from[s][l] = j;  // ties: the earliest start
      }
  std::vector<std::uint32_t> starts(P - 1);
  std::size_t l = layers;
  for (std::size_t s = P - 1; s >= 1; --s) {
    l = from[s][l];
    starts[s - 1] = static_cast<std::uint32_t>(l);
  }
  return starts;
}

std::vector<double> stage_costs(const std::vector<double>& layer_cost, const std::vector<std::uint32_t>& starts,
                                const CutCost& cuts) {
  const std::size_t layers = layer_cost.size();
  std::vector<double> cost(starts.size() + 1, 0.0);
  for (std::size_t s = 0; s < cost.size(); ++s) {
    const std::size_t first = s == 0 ? 0 : starts[s - 1], last = s == starts.size() ? layers : starts[s];
    for (std::size_t l = first; l < last && l < layers; ++l) cost[s] += std::max(0.0, layer_cost[l]);
    if (first > 0) cost[s] += std::max(0.0, cuts.at(cuts.enter, first));
    if (last < layers) cost[s] += std::max(0.0, cuts.at(cuts.leave, last));
  }
  return cost;
}

ProbedCost probed_cost(const LayerProbe& probe, const std::vector<std::uint32_t>& loaded) {
  const std::size_t layers = probe.alone_s.size();
  if (probe.nonzeros.size() != layers || probe.inner_s.size() != layers || probe.together_s.size() != loaded.size() + 1)
    throw std::invalid_argument("probed_cost: the probe's figures do not match the split");
  auto first_of = [&](std::size_t s) -> std::size_t { return s == 0 ? 0 : loaded[s - 1]; };
  auto last_of = [&](std::size_t s) -> std::size_t { return s == loaded.size() ? layers : loaded[s]; };
  // Inner cuts of the stages as loaded: every cut b in [1, L) that no stage starts at.
  double excess = 0, inner_nonzeros = 0;
  for (std::size_t s = 0; s <= loaded.size(); ++s) {
    double alone = 0;
    for (std::size_t l = first_of(s); l < last_of(s); ++l) alone += probe.alone_s[l];
    excess += alone - probe.together_s[s];
    for (std::size_t b = first_of(s) + 1; b < last_of(s); ++b) inner_nonzeros += probe.nonzeros[b];
  }
  ProbedCost out;
  out.seconds_per_nonzero = inner_nonzeros > 0 ? std::max(0.0, excess / inner_nonzeros) : 0.0;
  const double half = out.seconds_per_nonzero / 2;
  out.layer.assign(layers, 0.0);
  out.cuts.leave.assign(layers, 0.0);
  out.cuts.enter.assign(layers, 0.0);
  for (std::size_t b = 1; b < layers; ++b) out.cuts.enter[b] = out.cuts.leave[b] = half * probe.nonzeros[b];
  // Each stage's time in one call less the halves of the cuts at its ends is its layers' own cost:
  // own_s = rate x (the engine's times of its layers) + per_layer x (its layers), rate and
  // per_layer the same for every stage (least squares; the engine's clock may run at another rate
  // than the MPI one, and a layer costs the stage a little outside the engine's timing). Each layer
  // gets rate x its engine time + per_layer, scaled so that its stage's layers sum to own_s.
  const std::size_t stages = loaded.size() + 1;
  std::vector<double> own(stages), engine(stages, 0.0), count(stages);
  for (std::size_t s = 0; s < stages; ++s) {
    const std::size_t first = first_of(s), last = last_of(s);
    own[s] = std::max(0.0, probe.together_s[s] - (first > 0 ? out.cuts.enter[first] : 0.0) -
                               (last < layers ? out.cuts.leave[last] : 0.0));
    for (std::size_t l = first; l < last; ++l) engine[s] += std::max(0.0, probe.inner_s[l]);
    count[s] = static_cast<double>(last - first);
  }
  double ee = 0, en = 0, nn = 0, eo = 0, no = 0, total_own = 0;
  for (std::size_t s = 0; s < stages; ++s) {
    ee += engine[s] * engine[s], en += engine[s] * count[s], nn += count[s] * count[s];
    eo += engine[s] * own[s], no += count[s] * own[s], total_own += own[s];
  }
  const double det = ee * nn - en * en;
  double rate = det > 1e-12 * ee * nn ? (eo * nn - no * en) / det : -1.0;
  double per_layer = det > 1e-12 * ee * nn ? (ee * no - en * eo) / det : -1.0;
  double total_engine = 0;
  for (double e : engine) total_engine += e;
  if (rate < 0 || per_layer < 0) {  // no fit, or one that needs a negative part: one part alone
    rate = per_layer = 0;
    if (total_engine > 0) rate = total_own / total_engine;
    else per_layer = total_own / static_cast<double>(layers);
  }
  for (std::size_t s = 0; s < stages; ++s) {
    double modelled = 0;
    for (std::size_t l = first_of(s); l < last_of(s); ++l) modelled += rate * std::max(0.0, probe.inner_s[l]) + per_layer;
    for (std::size_t l = first_of(s); l < last_of(s); ++l) {
      const double layer = rate * std::max(0.0, probe.inner_s[l]) + per_layer;
      out.layer[l] = modelled > 0 ? own[s] * layer / modelled : own[s] / count[s];
    }
  }
  return out;
}

namespace {

// The engine's options for a stage's blocks of `block_rows` rows (not 0).
EngineOptions stage_engine(const EngineOptions& engine, Index block_rows, bool last_stage, bool keep_rows) {
  EngineOptions inner = engine;
  inner.parallel = Parallelism::data;
  // A pipeline block is block_rows / threads engine rows per thread (docs/pipeline.md); left to the
  // engine, a default block of 1024 rows was cut into 256-row blocks, whose dense panels run 1.7x
  // slower (default problem, 1 rank: 10.5 s against 6.1 s for data x data).
  if (inner.block_rows == 0) inner.block_rows = std::max<Index>(1, block_rows / static_cast<Index>(engine.threads));
  // The survivors travel on after each block; the last stage keeps them only for the verifier,
  // and only the last stage takes categories and checksums (the exact sum of a first stage's
  // dense output cost as much as its layer: default problem, layer 0 alone on stage 0).
  inner.keep_activations = !last_stage || keep_rows;
  inner.final_results = last_stage;
  inner.progress = nullptr;
  return inner;
}

// One stage over its row group's blocks (run_pipeline): `network` holds the stage's layers,
// `input` the group's `group_rows` rows on stage 0; `ring` (make_stage_ring) passes them on.
// `session`: an engine session over `network` with stage_engine's options to run the blocks in
// (the probe's runs share one), or null for one of the run's own. `kept_blocks`: when given, gets a
// copy of every block this stage ran (the probe times them again).
PipelineResult run_stage(int rank, const Network& network, const CsrMatrix& input, Index group_rows, const Grid& grid,
                         LayerRange layers, Index total_layers, const EngineOptions& engine, Index block_rows,
                         bool keep_rows, SlotRing& ring, RankFigures& figures, InferenceSession* session = nullptr,
                         std::vector<CsrMatrix>* kept_blocks = nullptr) {
  const int stages = grid.columns, stage = rank % stages;
  const bool first_stage = stage == 0, last_stage = stage == stages - 1;
  const Index neurons = input.cols();
  if (network.size() != layers.size())
    throw std::logic_error("run_pipeline: the stage must hold exactly its layers");
  if (block_rows == 0) block_rows = default_block_rows(group_rows, stages, engine.threads);
  ring.restart();

  PipelineResult result;
  StageFigures& f = result.stage;
  // One engine session for every block of the stage: its threads' buffers and each layer's column
  // groups for the dense kernel live across blocks, as blocks inside one call keep them (at 128
  // ranks a stage of 60 layers ran only 4 blocks, and computing the groups cost as much as a block;
  // fresh buffers in every block made a given split's stage 0 1.3x slower: docs/pipeline.md).
  std::unique_ptr<InferenceSession> own;
  if (!session) {
    own = std::make_unique<InferenceSession>(network, stage_engine(engine, block_rows, last_stage, keep_rows));
    session = own.get();
  }
  figures.layer_compute_s.assign(total_layers, 0.0);
  figures.layer_comm_s.assign(total_layers, 0.0);
  figures.layer_nonzeros.assign(total_layers, 0);
  figures.layer_bytes.assign(total_layers, 0);
  figures.layer_columns.assign(total_layers, 0);
  std::vector<ActiveRows> kept;
  Survivors survivors;

  // One block through this stage's layers: its rows (part-local numbering) and their row numbers.
  auto process = [&](const CsrMatrix& rows, const Index* ids) {
    if (rows.rows() == 0) return;
    if (kept_blocks) kept_blocks->push_back(rows.clone());
    auto start = mpi_seconds();
    InferenceResult out = session->run(rows);
    figures.active_nonzeros += out.active_nonzeros;
    for (Index l = 0; l < layers.size(); ++l) {
      figures.layer_nonzeros[layers.first + l] += out.layer_nonzeros[l];
      figures.layer_compute_s[layers.first + l] += out.layer_seconds[l];
      if (l < out.layer_rows.size()) figures.rows_computed += out.layer_rows[l];  // filled with --reuse only
    }
    const CsrMatrix& y = out.activations;
    if (last_stage) {
      result.exact_sum += out.exact_sum;
      for (Index r : out.categories) result.categories.push_back(ids[r]);
      if (keep_rows && !out.categories.empty()) {
        survivors.take(y, ids, 0, y.rows());
        ActiveRows block;
        block.rows = CsrMatrix(static_cast<Index>(survivors.ids.size()), neurons);
        std::copy(survivors.offsets.begin(), survivors.offsets.end(), block.rows.offsets.begin());
        block.rows.indices.assign(y.indices.begin() + static_cast<std::ptrdiff_t>(survivors.first_entry),
                                  y.indices.begin() + static_cast<std::ptrdiff_t>(y.nnz()));
        block.rows.values.assign(y.values.begin() + static_cast<std::ptrdiff_t>(survivors.first_entry),
                                 y.values.begin() + static_cast<std::ptrdiff_t>(y.nnz()));
        block.ids = survivors.ids;
        kept.push_back(std::move(block));
      }
      f.busy_s += seconds_since(start);
      return;
    }
    // Survivors downstream, in chunks that fit a slot; dead rows never travel.
    Index first = 0;
    while (first < y.rows()) {
      Index last = first;
      std::uint64_t alive = 0;
      while (last < y.rows()) {
        const std::uint64_t add = y.end(last) > y.begin(last) ? 1 : 0;
        if (chunk_bytes(alive + add, y.end(last) - y.begin(first)) > ring.slot_bytes()) break;
        alive += add;
        ++last;
      }
      survivors.take(y, ids, first, last);
      first = last;
      if (survivors.ids.empty()) continue;
      f.busy_s += seconds_since(start);
      const auto send_start = mpi_seconds();
      const std::uint64_t header[2] = {survivors.ids.size(), survivors.nonzeros()};
      const Offset nnz = survivors.nonzeros();
      const double waited = ring.send({{header, sizeof header},
                                       {survivors.offsets.data(), survivors.offsets.size() * sizeof(Offset)},
                                       {survivors.ids.data(), survivors.ids.size() * sizeof(Index)},
                                       {y.indices.data() + survivors.first_entry, nnz * sizeof(Index)},
                                       {y.values.data() + survivors.first_entry, nnz * sizeof(Value)}});
      f.space_wait_s += waited;
      f.transfer_s += seconds_since(send_start) - waited;
      f.bytes_sent += chunk_bytes(survivors.ids.size(), nnz);
      f.rows_sent += survivors.ids.size();
      ++f.blocks_sent;
      start = mpi_seconds();
    }
    f.busy_s += seconds_since(start);
  };

  try {
    if (first_stage) {
      const Index blocks = (group_rows + block_rows - 1) / block_rows;
      std::vector<Index> ids;
      for (Index b = 0; b < blocks; ++b) {
        const Index first = b * block_rows, last = std::min(group_rows, first + block_rows);
        const CsrMatrix part = slice_rows(input, first, last);
        ids.resize(last - first);
        for (Index r = first; r < last; ++r) ids[r - first] = r;
        process(part, ids.data());
        if (engine.progress) engine.progress(static_cast<double>(b + 1) / blocks, "row blocks into the pipeline");
      }
    } else {
      for (;;) {
        double waited = 0;
        const SlotRing::Message m = ring.receive(waited);
        f.input_wait_s += waited;
        if (m.last) {
          ring.release();
          break;
        }
        ++f.blocks_received;
        // Read in place (the layout above); the slot is released once the block has run.
        const auto* header = reinterpret_cast<const std::uint64_t*>(m.data);
        const auto rows = static_cast<Index>(header[0]);
        const Offset nnz = header[1];
        const auto* offsets = reinterpret_cast<const Offset*>(m.data + 2 * sizeof(std::uint64_t));
        const auto* ids = reinterpret_cast<const Index*>(offsets + rows + 1);
        const Index* indices = ids + rows;
        const auto* values = reinterpret_cast<const Value*>(indices + nnz);
        if (chunk_bytes(rows, nnz) != m.bytes) throw std::logic_error("run_pipeline: a malformed block arrived");
        const CsrMatrix part = CsrMatrix::view(rows, neurons, offsets, indices, values);
        process(part, ids);
        const auto release_start = mpi_seconds();
        ring.release();
        f.transfer_s += seconds_since(release_start);
      }
    }
    if (!last_stage) {
      const auto start = mpi_seconds();
      f.space_wait_s += ring.send({}, true);
      f.transfer_s += seconds_since(start);
    }
  } catch (...) {
    ring.abort();  // every wait of the row group's other stages ends
    throw;
  }
  std::sort(result.categories.begin(), result.categories.end());
  if (keep_rows && last_stage) result.final_rows = assemble_rows(group_rows, neurons, kept);
  figures.comm_s = f.input_wait_s + f.space_wait_s + f.transfer_s;
  figures.bytes_pulled = f.bytes_sent;  // passed downstream (puts) in this strategy
  figures.messages = f.blocks_sent;
  return result;
}

}  // namespace

SlotRing make_stage_ring(int rank, const Grid& grid, Index neurons, Index block_rows) {
  const int stages = grid.columns, stage = rank % stages;
  const std::size_t one_row = chunk_bytes(1, neurons);
  const std::size_t slot_bytes =
      std::max(one_row, std::min(kLargestSlot, chunk_bytes(block_rows, std::uint64_t{block_rows} * neurons)));
  return SlotRing(MPI_COMM_WORLD, stage == 0 ? -1 : rank - 1, stage == stages - 1 ? -1 : rank + 1, kSlots, slot_bytes);
}

PipelineResult run_pipeline(const MpiSession& mpi, const LoadedProblem& problem, const Grid& grid, LayerRange layers,
                            Index total_layers, const EngineOptions& engine, Index block_rows, bool keep_rows,
                            SlotRing& ring, RankFigures& figures) {
  return run_stage(mpi.rank(), problem.network, problem.input, problem.rows.size(), grid, layers, total_layers, engine,
                   block_rows, keep_rows, ring, figures);
}

namespace {

// Stage of `layer` under the split `starts` (the first layer of stages 1..P-1).
int stage_of(Index layer, const std::vector<std::uint32_t>& starts) {
  return static_cast<int>(std::upper_bound(starts.begin(), starts.end(), layer) - starts.begin());
}

// Every k-th row of `input`, k = rows / sample (at least 1), `sample` rows at most.
CsrMatrix strided_rows(const CsrMatrix& input, Index sample) {
  const Index rows = input.rows(), step = std::max<Index>(1, rows / std::max<Index>(1, sample));
  const Index taken = std::min(sample, (rows + step - 1) / step);
  CsrMatrix out(taken, input.cols());
  Offset nnz = 0;
  for (Index r = 0; r < taken; ++r) nnz += input.end(r * step) - input.begin(r * step);
  out.reserve_nonzeros(nnz);
  Offset at = 0;
  for (Index r = 0; r < taken; ++r) {
    for (Offset e = input.begin(r * step); e < input.end(r * step); ++e, ++at) {
      out.indices[at] = input.indices[e];
      out.values[at] = input.values[e];
    }
    out.offsets[r + 1] = at;
  }
  return out;
}

// Collective: rethrows `failure` on its rank and throws PeerFailure on the others when any rank
// failed, so that every rank leaves before the next collective.
void agree_on(const std::exception_ptr& failure) {
  int failed = failure ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
  if (failure) std::rethrow_exception(failure);
  if (failed) throw PeerFailure();
}

// Collective: this rank's part of the probe (balance_stages), summed over row groups on rank 0
// (other ranks return zeros). One block of `sample` rows (every k-th row of stage 0's `input`) goes
// through the stages as loaded, which warms each stage's session and gives every stage its rows;
// each stage keeps what it got. Then each stage runs them, on its own, through its layers in one
// call and through each layer alone (a session of its own per layer, one at a time, rows passed on
// as sparse rows): once to warm up, then 3 times, keeping the least time of each (a run the system
// interrupted once, on a loaded machine or a simulator sharing its cores, would look far
// costlier). Times are on the MPI library's clock: under SimGrid the simulated one, which is what
// the simulated inference takes. The layers move out of `network` while their sessions run and
// come back in order.
LayerProbe probe_layer_costs(int rank, const Grid& grid, Network& network, const CsrMatrix& input, Index sample,
                             LayerRange layers, Index total_layers, const EngineOptions& engine, SlotRing& ring) {
  constexpr int kTimedRuns = 3;
  const int stages = grid.columns, stage = rank % stages;
  const bool first_stage = stage == 0, last_stage = stage == stages - 1;
  const CsrMatrix probe_rows = first_stage ? strided_rows(input, sample) : CsrMatrix(0, input.cols());
  EngineOptions probe_engine = engine;
  probe_engine.progress = nullptr;
  const double unset = std::numeric_limits<double>::infinity();
  std::vector<double> alone(total_layers, 0.0), inner(total_layers, 0.0), nonzeros(total_layers, 0.0),
      together(stages, 0.0);
  std::exception_ptr failure;  // a failure in one row group's probe ends every rank's
  try {
    std::vector<CsrMatrix> blocks;
    {
      InferenceSession session(network, stage_engine(probe_engine, sample, last_stage, false));
      RankFigures figures;
      run_stage(rank, network, probe_rows, sample, grid, layers, total_layers, probe_engine, sample, false, ring, figures,
                &session, &blocks);
      // The stage in one call, as the inference runs it; warm from the run above. The engine's own
      // time of each layer in it (on the host's clock) too.
      double best = unset;
      std::vector<double> best_inner(layers.size(), unset);
      for (int run = 0; run < kTimedRuns; ++run) {
        std::vector<double> took_inner(layers.size(), 0.0);
        const double start = mpi_seconds();
        for (const CsrMatrix& block : blocks) {
          const InferenceResult result = session.run(block);
          for (Index l = 0; l < layers.size(); ++l) took_inner[l] += result.layer_seconds[l];
        }
        best = std::min(best, mpi_seconds_since(start));
        for (Index l = 0; l < layers.size(); ++l) best_inner[l] = std::min(best_inner[l], took_inner[l]);
      }
      together[stage] = blocks.empty() ? 0.0 : best;
      for (Index l = 0; l < layers.size(); ++l) inner[layers.first + l] = blocks.empty() ? 0.0 : best_inner[l];
    }
    // Each layer alone, one after the other: the layer moves into a network of its own for a
    // session of its own (one at a time: a session per layer at once held 60 sets of engine
    // buffers per rank), and back after; its output is the next layer's input.
    std::vector<double> best(layers.size(), unset);
    std::vector<CsrMatrix> rows = std::move(blocks);
    for (Index l = 0; l < layers.size(); ++l) {
      Network single;
      single.push_back(std::move(network[l]));
      struct GiveBack {
        Layer& home;
        Network& single;
        ~GiveBack() { home = std::move(single[0]); }
      } give_back{network[l], single};
      const bool network_output = last_stage && l + 1 == layers.size();
      EngineOptions one = stage_engine(probe_engine, sample, network_output, false);
      one.keep_activations = !network_output;  // passed on to the next layer
      InferenceSession session(single, one);
      std::vector<CsrMatrix> out(rows.size());
      for (int run = 0; run <= kTimedRuns; ++run) {  // run 0 warms up
        double took = 0;
        for (std::size_t b = 0; b < rows.size(); ++b) {
          const double start = mpi_seconds();
          InferenceResult result = session.run(rows[b]);
          took += mpi_seconds_since(start);
          if (run == 0) nonzeros[layers.first + l] += static_cast<double>(result.layer_nonzeros[0]);
          if (run == kTimedRuns) out[b] = std::move(result.activations);
        }
        if (run > 0) best[l] = std::min(best[l], took);
      }
      rows = std::move(out);
    }
    for (Index l = 0; l < layers.size(); ++l) alone[layers.first + l] = rows.empty() ? 0.0 : best[l];
  } catch (...) {
    failure = std::current_exception();
  }
  agree_on(failure);
  // To rank 0, summed over row groups: [alone L][inner L][nonzeros L][together P].
  std::vector<double> figures;
  figures.insert(figures.end(), alone.begin(), alone.end());
  figures.insert(figures.end(), inner.begin(), inner.end());
  figures.insert(figures.end(), nonzeros.begin(), nonzeros.end());
  figures.insert(figures.end(), together.begin(), together.end());
  MPI_Reduce(rank == 0 ? MPI_IN_PLACE : figures.data(), figures.data(), static_cast<int>(figures.size()), MPI_DOUBLE,
             MPI_SUM, 0, MPI_COMM_WORLD);
  LayerProbe probe;
  const auto L = static_cast<std::ptrdiff_t>(total_layers);
  probe.alone_s.assign(figures.begin(), figures.begin() + L);
  probe.inner_s.assign(figures.begin() + L, figures.begin() + 2 * L);
  probe.nonzeros.assign(figures.begin() + 2 * L, figures.begin() + 3 * L);
  probe.together_s.assign(figures.begin() + 3 * L, figures.begin() + 3 * L + stages);
  return probe;
}

}  // namespace

// (strategy_pipeline.hpp) A layer travels as its four arrays (offsets, columns, values, bias),
// received straight into the new layer once every rank has made room for what it receives.
Index move_layers(int rank, int stages, Network& network, Index neurons, Index total_layers,
                  const std::vector<std::uint32_t>& from, const std::vector<std::uint32_t>& to) {
  const int stage = rank % stages, group_first = rank - stage;
  const LayerRange had = stage_layers(total_layers, stages, stage, from), gets = stage_layers(total_layers, stages, stage, to);
  auto holds = [](LayerRange r, Index l) { return l >= r.first && l < r.last; };
  std::vector<std::uint64_t> nonzeros(total_layers, 0);
  for (Index l = had.first; l < had.last; ++l) nonzeros[l] = network[l - had.first].weights_csr.nnz();
  MPI_Allreduce(MPI_IN_PLACE, nonzeros.data(), static_cast<int>(nonzeros.size()), MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  Network moved(gets.size());
  std::exception_ptr failure;
  try {
    for (Index l = gets.first; l < gets.last; ++l) {
      Layer& layer = moved[l - gets.first];
      if (holds(had, l)) {
        layer = std::move(network[l - had.first]);
        continue;
      }
      if (nonzeros[l] * sizeof(Value) > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
        throw std::invalid_argument("a layer of " + std::to_string(nonzeros[l]) +
                                    " connections is too large to move between stages (give --stage-layers)");
      layer.weights_csr.reset(neurons, neurons);
      layer.weights_csr.reserve_nonzeros(nonzeros[l]);
      layer.bias.resize(neurons);
    }
  } catch (...) {
    failure = std::current_exception();
  }
  agree_on(failure);  // every rank has room for its layers, or every rank stops
  // Per layer, its offsets, columns, values and bias, with tags 0 to 3 (MPI keeps the order of the
  // messages between two ranks, so the layers match in layer order).
  std::vector<MPI_Request> requests;
  auto transfer = [&](Layer& layer, Offset nnz, int peer, bool send) {
    CsrMatrix& w = layer.weights_csr;
    const std::pair<void*, std::size_t> parts[4] = {{w.offsets.data(), (std::size_t{neurons} + 1) * sizeof(Offset)},
                                                    {w.indices.data(), nnz * sizeof(Index)},
                                                    {w.values.data(), nnz * sizeof(Value)},
                                                    {layer.bias.data(), std::size_t{neurons} * sizeof(Value)}};
    for (int tag = 0; tag < 4; ++tag) {
      requests.emplace_back();
      if (send)
        MPI_Isend(parts[tag].first, static_cast<int>(parts[tag].second), MPI_BYTE, peer, tag, MPI_COMM_WORLD, &requests.back());
      else
        MPI_Irecv(parts[tag].first, static_cast<int>(parts[tag].second), MPI_BYTE, peer, tag, MPI_COMM_WORLD, &requests.back());
    }
  };
  Index received = 0;
  for (Index l = had.first; l < had.last; ++l)
    if (!holds(gets, l)) transfer(network[l - had.first], nonzeros[l], group_first + stage_of(l, to), true);
  for (Index l = gets.first; l < gets.last; ++l)
    if (!holds(had, l)) transfer(moved[l - gets.first], nonzeros[l], group_first + stage_of(l, from), false), ++received;
  MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE);
  network = std::move(moved);
  return received;
}

StageSplit balance_stages(int rank, const Grid& grid, Network& network, const CsrMatrix& input, Index group_rows,
                          LayerRange layers, Index total_layers, const EngineOptions& engine, Index block_rows,
                          SlotRing& ring) {
  const int stages = grid.columns, stage = rank % stages;
  StageSplit split;
  split.layers = layers;
  if (stages == 1) return split;
  const double start = mpi_seconds();
  std::vector<std::uint32_t> loaded;  // the split as loaded: by count, about L/P layers per stage
  for (int s = 1; s < stages; ++s) loaded.push_back(stage_layers(total_layers, stages, s).first);
  const LayerRange as_loaded = stage_layers(total_layers, stages, stage, loaded);
  if (layers.first != as_loaded.first || layers.last != as_loaded.last || network.size() != layers.size())
    throw std::logic_error("balance_stages: the stage must hold the layers of the count split");
  // The probe's block has the run's size, so that what a layer costs per block whatever its rows
  // weighs as much as in the run.
  split.probe_rows = std::min(group_rows, block_rows);
  const LayerProbe probe =
      probe_layer_costs(rank, grid, network, input, split.probe_rows, layers, total_layers, engine, ring);
  split.cap = automatic_stage_cap(total_layers, stages);
  // Rank 0 decides from the sums and broadcasts [starts P - 1][shares P][seconds per nonzero]: every
  // rank takes the same split, whatever its own figures.
  std::vector<double> decided(2 * static_cast<std::size_t>(stages), 0.0);
  std::exception_ptr failure;
  if (rank == 0) try {
      const ProbedCost cost = probed_cost(probe, loaded);
      const std::vector<std::uint32_t> starts = balanced_starts(cost.layer, stages, split.cap, cost.cuts);
      const std::vector<double> shares = stage_costs(cost.layer, starts, cost.cuts);
      double total = 0;
      for (double c : shares) total += c;
      for (int s = 0; s + 1 < stages; ++s) decided[s] = starts[s];
      for (int s = 0; s < stages; ++s) decided[stages - 1 + s] = total > 0 ? shares[s] / total : 0.0;
      decided.back() = cost.seconds_per_nonzero;
    } catch (...) {
      failure = std::current_exception();
    }
  agree_on(failure);
  MPI_Bcast(decided.data(), static_cast<int>(decided.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  split.starts.clear();
  for (int s = 0; s + 1 < stages; ++s) split.starts.push_back(static_cast<std::uint32_t>(decided[s]));
  split.stage_cost.assign(decided.begin() + (stages - 1), decided.begin() + (2 * stages - 1));
  split.seconds_per_nonzero = decided.back();
  split.layers = stage_layers(total_layers, stages, stage, split.starts);
  split.layers_received = move_layers(rank, stages, network, input.cols(), total_layers, loaded, split.starts);
  split.seconds = mpi_seconds_since(start);
  MPI_Allreduce(MPI_IN_PLACE, &split.seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return split;
}

std::string split_line(const StageSplit& split, int stages, Index total_layers) {
  if (stages <= 1) return "";
  if (split.starts.empty()) return "";  // --stage-layers: the user's split, printed with the stages' figures
  std::string starts, shares;
  char text[64];
  for (std::size_t s = 0; s < split.starts.size(); ++s) starts += (s ? "," : "") + std::to_string(split.starts[s]);
  for (std::size_t s = 0; s < split.stage_cost.size(); ++s) {
    std::snprintf(text, sizeof text, "%s%.0f%%", s ? ", " : "", 100 * split.stage_cost[s]);
    shares += text;
  }
  std::snprintf(text, sizeof text, "%.3f", split.seconds);
  const std::string probe_s = text;
  std::snprintf(text, sizeof text, "%.2f", split.seconds_per_nonzero * 1e9);
  return "stages: --stage-layers " + starts + " of " + std::to_string(total_layers) +
         " layers, balanced by the cost of each layer and of each cut (" + text +
         " ns per nonzero passed) measured on a probe of " + std::to_string(split.probe_rows) +
         " rows per row group (at most " + std::to_string(split.cap) + " layer(s) per stage; probe and moves " +
         probe_s + " s, not in the inference time); share of the cost per stage: " + shares + "\n";
}

std::string report_stages(const MpiSession& mpi, const Grid& grid, const StageFigures& mine,
                          const std::vector<double>& layer_seconds) {
  std::vector<double> cost = layer_seconds;
  MPI_Allreduce(MPI_IN_PLACE, cost.data(), static_cast<int>(cost.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  const int stages = grid.columns;
  std::vector<double> times(4 * static_cast<std::size_t>(stages), 0.0), volumes(3 * static_cast<std::size_t>(stages), 0.0);
  const int s = mpi.rank() % stages;
  times[4 * s] = mine.busy_s;
  times[4 * s + 1] = mine.input_wait_s;
  times[4 * s + 2] = mine.space_wait_s;
  times[4 * s + 3] = mine.transfer_s;
  volumes[3 * s] = static_cast<double>(mine.bytes_sent);
  volumes[3 * s + 1] = static_cast<double>(mine.blocks_sent);
  volumes[3 * s + 2] = static_cast<double>(mine.rows_sent);
  MPI_Allreduce(MPI_IN_PLACE, times.data(), static_cast<int>(times.size()), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, volumes.data(), static_cast<int>(volumes.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  if (!mpi.is_root()) return "";
  std::string busy, bubble, space, mb, blocks;
  char text[64];
  for (int t = 0; t < stages; ++t) {
    std::printf("stage %d: busy %.3f s, waiting for input %.3f s, waiting for space %.3f s, passing %.3f s, "
                "passed %.1f MB in %.0f blocks (%.0f rows)\n",
                t, times[4 * t], times[4 * t + 1], times[4 * t + 2], times[4 * t + 3], volumes[3 * t] / 1e6,
                volumes[3 * t + 1], volumes[3 * t + 2]);
    const char* sep = t == 0 ? "" : ",";
    std::snprintf(text, sizeof text, "%s%.4f", sep, times[4 * t]);
    busy += text;
    std::snprintf(text, sizeof text, "%s%.4f", sep, times[4 * t + 1]);
    bubble += text;
    std::snprintf(text, sizeof text, "%s%.4f", sep, times[4 * t + 2]);
    space += text;
    std::snprintf(text, sizeof text, "%s%.3f", sep, volumes[3 * t] / 1e6);
    mb += text;
    std::snprintf(text, sizeof text, "%s%.0f", sep, volumes[3 * t + 1]);
    blocks += text;
  }
  if (static_cast<std::size_t>(stages) <= cost.size() && stages > 1) {
    std::string split;
    for (std::uint32_t start : balanced_starts(cost, stages)) split += (split.empty() ? "" : ",") + std::to_string(start);
    std::printf("stages balanced by this run's measured layer times: --stage-layers %s\n", split.c_str());
  }
  return " stage_busy_s=" + busy + " stage_bubble_s=" + bubble + " stage_space_wait_s=" + space +
         " stage_mb=" + mb + " stage_blocks=" + blocks;
}

}  // namespace sdnn
