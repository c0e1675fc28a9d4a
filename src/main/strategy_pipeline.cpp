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
#include <cstdio>
#include <exception>
#include <stdexcept>

#include "comm/mpi_library.hpp"
#include "comm/slot_ring.hpp"
#include "spmm/spmm.hpp"

namespace sdnn {
namespace {

constexpr int kSlots = 4;                                    // blocks in flight between two stages
constexpr std::size_t kLargestSlot = std::size_t{8} << 20;  // bytes, unless one row needs more

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

std::vector<std::uint32_t> balanced_starts(const std::vector<double>& layer_cost, int stages) {
  const std::size_t layers = layer_cost.size();
  if (stages < 1 || static_cast<std::size_t>(stages) > layers)
    throw std::invalid_argument("balanced_starts: needs 1 <= stages <= layers");
  double total = 0;
  for (double c : layer_cost) total += std::max(0.0, c);
  std::vector<std::uint32_t> starts;
  double running = 0;
  std::size_t l = 0;
  for (int s = 1; s < stages; ++s) {
    // At least one layer for this stage, and one for each stage after it.
    const std::size_t lowest = (starts.empty() ? 0 : starts.back()) + 1;
    const std::size_t highest = layers - static_cast<std::size_t>(stages - s);
    while (l < lowest) running += std::max(0.0, layer_cost[l++]);
    while (l < highest && running < total * s / stages) running += std::max(0.0, layer_cost[l++]);
    starts.push_back(static_cast<std::uint32_t>(l));
  }
  return starts;
}

PipelineResult run_pipeline(const MpiSession& mpi, const LoadedProblem& problem, const Grid& grid, LayerRange layers,
                            Index total_layers, const EngineOptions& engine, Index block_rows, bool keep_rows,
                            RankFigures& figures) {
  const int stages = grid.columns, stage = mpi.rank() % stages;
  const bool first_stage = stage == 0, last_stage = stage == stages - 1;
  const Index neurons = problem.input.cols(), group_rows = problem.rows.size();
  if (problem.network.size() != layers.size())
    throw std::logic_error("run_pipeline: the stage must hold exactly its layers");
  if (block_rows == 0) block_rows = std::clamp<Index>(group_rows / 16, 256, 1024 * static_cast<Index>(engine.threads));
  const std::size_t one_row = chunk_bytes(1, neurons);
  const std::size_t slot_bytes = std::max(one_row, std::min(kLargestSlot, chunk_bytes(block_rows, std::uint64_t{block_rows} * neurons)));
  SlotRing ring(MPI_COMM_WORLD, first_stage ? -1 : mpi.rank() - 1, last_stage ? -1 : mpi.rank() + 1, kSlots,
                slot_bytes);

  PipelineResult result;
  StageFigures& f = result.stage;
  EngineOptions inner = engine;
  inner.parallel = Parallelism::data;
  // A pipeline block is block_rows / threads engine rows per thread (docs/pipeline.md); left to the
  // engine, a default block of 1024 rows was cut into 256-row blocks, whose dense panels run 1.7x
  // slower (default problem, 1 rank: 10.5 s against 6.1 s for data x data).
  if (inner.block_rows == 0) inner.block_rows = std::max<Index>(1, block_rows / static_cast<Index>(engine.threads));
  inner.keep_activations = true;  // the survivors travel on (or are counted) after each block
  inner.progress = nullptr;
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
    auto start = mpi_seconds();
    InferenceResult out = infer(problem.network, rows, inner);
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
        const CsrMatrix part = slice_rows(problem.input, first, last);
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
  ring.free();
  std::sort(result.categories.begin(), result.categories.end());
  if (keep_rows && last_stage) result.final_rows = assemble_rows(group_rows, neurons, kept);
  figures.comm_s = f.input_wait_s + f.space_wait_s + f.transfer_s;
  figures.bytes_pulled = f.bytes_sent;  // passed downstream (puts) in this strategy
  figures.messages = f.blocks_sent;
  return result;
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
