// strategy_model.cpp: data x model over MPI ranks (see strategy_model.hpp).
//
// Windows: every rank exposes one MPI window with two slots (layer parity), each holding its
// block of Y as CSC: column offsets (C + 1 uint64), then row indices (cap uint32), then values
// (cap float). Created once; grown (collectively) only when a block outgrows `cap`.
//
// Synchronisation, the least that is correct: per layer l, a rank pulls Y_{l-1} from its peers'
// slot (l-1)%2 (offsets first, then the index and value ranges: sizes before data), computes
// Y_l, stores it in its own slot l%2 and enters one collective (an allreduce of the largest
// block, MPI_Win_sync around it). Slot l%2 was last read during layer l-1, which every peer
// finished before that layer's collective, so the store cannot overwrite what a peer still
// reads; and nobody reads slot l%2 before the collective that follows the store. One collective
// per layer, no extra barrier. When a block does not fit, every rank has already finished its
// reads of layer l (it is past its compute), so the window is recreated bigger and the blocks
// stored again, followed by a barrier.
//
// Overlap: after the offsets arrive, the index and value gets are issued, the part of the sums
// that needs only the rank's own columns is computed (SplitRightMultiplier::partial), then the
// gets are completed and the rest is added (finish).
#include "main/strategy_model.hpp"

#include <algorithm>
#include <cstring>
#include <memory>

#include "comm/mpi_library.hpp"
#include "comm/window.hpp"
#include "partition/row_partition.hpp"
#include "spmm/reuse.hpp"
#include "spmm/split_multiply.hpp"

namespace sdnn {
namespace {

// Byte layout of one rank's window: two slots of [offsets | indices | values].
struct SlotLayout {
  Index columns;
  std::uint64_t capacity;
  std::size_t offsets_bytes() const { return (static_cast<std::size_t>(columns) + 1) * sizeof(Offset); }
  std::size_t slot_bytes() const {
    return offsets_bytes() + capacity * (sizeof(Index) + sizeof(Value));
  }
  std::size_t offsets_at(int slot) const { return slot * slot_bytes(); }
  std::size_t indices_at(int slot) const { return offsets_at(slot) + offsets_bytes(); }
  std::size_t values_at(int slot) const { return indices_at(slot) + capacity * sizeof(Index); }
};

// Exact reuse across a row group: every rank holds some columns of each row, so the signatures
// are summed over the group, each candidate pair is compared on every rank's columns and the
// verdicts combined; every rank of the group then drops the same rows.
class GroupReuse {
 public:
  GroupReuse(int row_group, int block) : group_(row_group, block) {}
  // Drops repeated rows from y (when the schedule says so) and returns the rows left alive in
  // the group.
  std::uint64_t before_store(CscMatrix& y, Index column_base, std::size_t layers_left) {
    const bool look = schedule_.due();
    signatures_of(y, column_base, signatures_);
    group_.sum_in_place(signatures_.count);
    Index dropped = 0;
    if (look) {
      group_.sum_in_place(signatures_.hash);
      const std::vector<std::pair<Index, Index>> pairs = candidate_pairs(signatures_);
      if (!pairs.empty()) {
        const CsrMatrix by_rows = to_csr(y);
        std::vector<std::uint8_t> equal(pairs.size());
        for (std::size_t p = 0; p < pairs.size(); ++p)
          equal[p] = comparer_.same(by_rows, pairs[p].second, pairs[p].first);
        group_.min_in_place(equal);
        std::vector<Index> representative(y.rows());
        for (Index r = 0; r < y.rows(); ++r) representative[r] = r;
        for (std::size_t p = 0; p < pairs.size(); ++p)
          if (equal[p]) representative[pairs[p].first] = pairs[p].second;
        dropped = drop_repeats(y, representative, nullptr, log_);
      }
    }
    std::uint64_t alive = 0;
    for (std::uint64_t c : signatures_.count) alive += c > 0;
    if (look) schedule_.found(dropped, alive, layers_left);
    return alive - dropped;
  }
  void expand(CsrMatrix& final_rows) const { expand_matrix(log_, final_rows); }

 private:
  SubCommunicator group_;
  ReuseSchedule schedule_;
  RowSignatures signatures_;
  RowComparer comparer_;
  ReuseLog log_;
};

}  // namespace

CsrMatrix run_data_model(const MpiSession& mpi, const LoadedProblem& problem, const Grid& grid,
                         const EngineOptions& engine, bool overlap, RankFigures& figures) {
  const Index neurons = problem.input.cols(), rows = problem.input.rows();
  const int row_group = mpi.rank() / grid.columns, block = mpi.rank() % grid.columns;
  const RowRange own = problem.columns;
  const Index columns = own.size();
  const std::size_t layers = problem.network.size();

  // The communication plan of every layer, before the loop.
  std::vector<PullPlan> plans;
  plans.reserve(layers);
  for (const Layer& layer : problem.network)
    plans.push_back(plan_pulls(layer.weights_csc, neurons, grid, row_group, block));

  // Y_0's block: the group's rows, this rank's columns.
  CscMatrix current;
  {
    std::vector<Triplet> mine;
    for (Index i = 0; i < rows; ++i)
      for (Offset p = problem.input.begin(i); p < problem.input.end(i); ++p)
        if (problem.input.indices[p] >= own.first && problem.input.indices[p] < own.last)
          mine.push_back({i, problem.input.indices[p] - own.first, problem.input.values[p]});
    current = from_triplets<ColMajor>(rows, columns, mine);
  }

  // Windows: every rank's capacity is the same (the largest need), column counts differ.
  std::uint64_t capacity = std::max<std::uint64_t>(current.nnz(), 1);
  MPI_Allreduce(MPI_IN_PLACE, &capacity, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  capacity = capacity + capacity / 2 + 1024;
  auto layout_of = [&](int rank) {
    return SlotLayout{shard_of(neurons, grid.columns, rank % grid.columns).size(), capacity};
  };
  Window window(MPI_COMM_WORLD, 2 * layout_of(mpi.rank()).slot_bytes());
  auto store = [&](const CscMatrix& y, int slot) {
    const SlotLayout me = layout_of(mpi.rank());
    std::memcpy(window.data() + me.offsets_at(slot), y.offsets.data(), me.offsets_bytes());
    if (y.nnz() > 0) {
      std::memcpy(window.data() + me.indices_at(slot), y.indices.data(), y.nnz() * sizeof(Index));
      std::memcpy(window.data() + me.values_at(slot), y.values.data(), y.nnz() * sizeof(Value));
    }
  };
  figures.layer_rows.assign(layers, 0);
  std::unique_ptr<GroupReuse> reuse;
  // Rows are counted once per group, on its first rank.
  auto count_rows = [&](std::size_t l, std::uint64_t alive) {
    if (l < layers && block == 0) figures.layer_rows[l] = alive, figures.rows_computed += alive;
  };
  if (engine.reuse) {
    reuse = std::make_unique<GroupReuse>(row_group, block);
    count_rows(0, reuse->before_store(current, own.first, layers));
  }
  store(current, 0);
  window.barrier();

  figures.layer_compute_s.assign(layers, 0.0);
  figures.layer_comm_s.assign(layers, 0.0);
  figures.layer_nonzeros.assign(layers, 0);
  figures.layer_bytes.assign(layers, 0);
  figures.layer_columns.assign(layers, 0);
  SplitRightMultiplier multiplier(engine.threads);
  PartialColumns partial;
  CscMatrix pulled, next;
  std::vector<Offset> peer_offsets;
  std::vector<std::size_t> range_offset_at;  // where each range's offsets start in peer_offsets

  for (std::size_t l = 0; l < layers; ++l) {
    const PullPlan& plan = plans[l];
    const Layer& layer = problem.network[l];
    const int read_slot = static_cast<int>(l % 2), write_slot = static_cast<int>((l + 1) % 2);
    double comm = 0;
    auto timed = [&](auto&& step) {
      const double start = mpi_seconds();
      step();
      comm += mpi_seconds_since(start);
    };
    const double layer_start = mpi_seconds();
    figures.layer_nonzeros[l] = current.nnz();
    figures.active_nonzeros += current.nnz();

    // Sizes first: the column offsets of every pulled range (one get per range, lengths + 1).
    peer_offsets.resize(plan.ranges.size() + plan.pulled_columns);
    range_offset_at.resize(plan.ranges.size());
    std::uint64_t bytes = 0, messages = 0;
    timed([&] {
      std::size_t at = 0;
      for (std::size_t r = 0; r < plan.ranges.size(); ++r) {
        const PullPlan::Range& range = plan.ranges[r];
        const SlotLayout theirs = layout_of(range.peer);
        range_offset_at[r] = at;
        const std::size_t count = range.last - range.first + 1;
        window.get(peer_offsets.data() + at, count * sizeof(Offset), range.peer,
                   theirs.offsets_at(read_slot) + range.first * sizeof(Offset));
        at += count;
        bytes += count * sizeof(Offset);
        ++messages;
      }
      window.flush_all();
    });
    // Then the data: the pulled matrix's columns are the ranges' columns, back to back.
    pulled.reset(rows, plan.pulled_columns);
    {
      Index column = 0;
      for (std::size_t r = 0; r < plan.ranges.size(); ++r) {
        const PullPlan::Range& range = plan.ranges[r];
        const Offset* offsets = peer_offsets.data() + range_offset_at[r];
        for (Index c = 0; c < range.last - range.first; ++c, ++column)
          pulled.offsets[column + 1] = pulled.offsets[column] + (offsets[c + 1] - offsets[c]);
      }
    }
    pulled.reserve_nonzeros(pulled.nnz());
    timed([&] {
      Offset at = 0;
      for (std::size_t r = 0; r < plan.ranges.size(); ++r) {
        const PullPlan::Range& range = plan.ranges[r];
        const SlotLayout theirs = layout_of(range.peer);
        const Offset* offsets = peer_offsets.data() + range_offset_at[r];
        const Offset first = offsets[0], count = offsets[range.last - range.first] - first;
        if (count == 0) continue;
        window.get(pulled.indices.data() + at, count * sizeof(Index), range.peer,
                   theirs.indices_at(read_slot) + first * sizeof(Index));
        window.get(pulled.values.data() + at, count * sizeof(Value), range.peer,
                   theirs.values_at(read_slot) + first * sizeof(Value));
        at += count;
        bytes += count * (sizeof(Index) + sizeof(Value));
        messages += 2;
      }
      if (!overlap) window.flush_all();
    });
    multiplier.partial(current, plan.local_weights, partial);  // overlaps the gets in flight
    if (overlap) timed([&] { window.flush_all(); });
    multiplier.finish(partial, pulled, plan.remote_weights, layer.bias.data(), next);
    std::swap(current, next);

    // Store Y_l in the other slot; one collective per layer (see the top of this file).
    if (reuse) count_rows(l + 1, reuse->before_store(current, own.first, layers - l - 1));
    std::uint64_t need = current.nnz();
    if (need <= capacity) store(current, write_slot);
    timed([&] {
      window.sync();
      MPI_Allreduce(MPI_IN_PLACE, &need, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
      window.sync();
      if (need > capacity) {  // rare: grow every window, store again
        capacity = need + need / 2;
        window = Window();  // frees the old window (collective) before the bigger one
        window = Window(MPI_COMM_WORLD, 2 * layout_of(mpi.rank()).slot_bytes());
        store(current, write_slot);
        window.barrier();
      }
    });
    figures.layer_comm_s[l] = comm;
    figures.layer_compute_s[l] = mpi_seconds_since(layer_start) - comm;
    figures.layer_bytes[l] = bytes;
    figures.layer_columns[l] = plan.pulled_columns;
    figures.pulled_columns += plan.pulled_columns;
    figures.comm_s += comm;
    figures.bytes_pulled += bytes;
    figures.messages += messages;
    if (engine.progress) engine.progress(static_cast<double>(l + 1) / static_cast<double>(layers), "layers");
  }
  window.free();
  CsrMatrix result = to_csr(current);
  if (reuse) reuse->expand(result);
  return result;
}

}  // namespace sdnn
