// strategy_model.cpp: data x model over MPI ranks (see strategy_model.hpp).
//
// One column block (grid D x 1): a rank's row group needs no column of any other rank, so it runs
// through the data strategy's engine loop (infer_rows: blocks of rows taken through every layer
// while they stay in cache, CSR with dense panels, the weights in CSR and CSC), not through the
// loop below, which streams all the group's rows through each layer in turn and was bound by
// that memory traffic (1x1 1.25x to 1.38x data's time; docs/strategies.md, issue 10). Everything
// below is for M >= 2.
//
// Every rank of row group d exchanges data with the M ranks of its group only, and the per-layer
// collective covers the group (its communicator), so row groups never wait for each other.
//
// Super-blocks: the group's rows go through the layers in consecutive ranges of at most
// ModelComm::super_rows rows (2048 per thread), each range through every layer before the next,
// as data x data's blocks go. Every super-block uses the one window below, sized for the
// largest, so that its slots are touched once and stay in cache: the whole group at once (the
// default problem's 60,000 rows, dense from the input) had 250 MB of dense slots per rank at 1x2,
// first touched at 2 to 5 us a page and streamed through memory by every layer. Smaller
// super-blocks repeat the group's per-layer synchronisation more often (docs/strategies.md,
// issue 10, eighth pass). Every row group runs as many super-blocks (agreed over all ranks), of
// near-equal sizes. A super-block dense from its input (the default problem's) goes from its
// CSR rows straight into the dense slots (DensePanels::enter_rows), with no CSC copy first.
//
// Thin tails (ModelComm::join_tails; ninth pass): once most rows have died, each super-block
// would take a few dozen rows through every remaining layer, paying the group's synchronisation,
// the weights' widening and the per-layer set-up each time (the default problem's 1,771
// survivors in 30 super-blocks of about 59 rows through layers 6-120). A super-block in panels
// whose rows thinned to a quarter of the largest super-block's rows or fewer, while super-blocks
// not yet started remain, parks them at its next layer (this rank's columns of them, as panels);
// the first piece of rows in panels that reaches that layer with room in the slots (and within the
// rows the sparse slots are sized for) appends them after its stored rows (DensePanels::absorb,
// whole panels, one barrier) and goes on with them, parking them again with its own while as
// thin; what no piece took runs after the last super-block, earliest layer first. The pieces'
// final rows are assembled by their rows' ids. Every rank of the group parks and takes in the
// same rows: the decisions follow the group's figures (its rows alive, its stored rows). Off with
// --reuse (its log is per super-block) and world-sync (row groups would run different layer counts).
//
// Cyclic column blocks (ModelComm::cyclic_columns, applied when loading: strategy.cpp): column
// block m holds the neurons j = m mod M, renumbered to be contiguous, so that on RadiX-Net each
// block holds whole groups of neurons that share their inputs.
//
// The window: one over every rank (MPI_COMM_WORLD), created once and never grown, so that no
// collective outside the group is ever needed (a window per row group would be created on
// sibling communicators, which collide under Open MPI 4.1: comm/window.hpp). Each rank's segment
// holds two sparse slots (layer parity), each its block of Y as CSC: column offsets (C + 1
// uint64), then row indices (cap uint32), then values (cap float); then two dense slots. A row
// that died stays dead, so the rows alive in a super-block's input (R, the largest super-block's
// for the slots) bound every layer: a block
// that stays sparse holds less than dense_threshold x R x N entries (else its group would go
// dense), which is cap (R x C when dense panels are off); a dense slot holds R x C floats.
// The segments of the ranks of a node lie in one node segment (SharedWindow,
// MPI_Win_allocate_shared; rank r's part at its node rank x the largest segment) and the window
// is MPI_Win_create over the node segments, each exposed whole by its node's leader: a rank reads
// the slots of the peers on its node in place (sparse: a memcpy of the same ranges a get would
// bring; dense: the gather reads them where they are) and gets only those of the peers on other
// nodes, from their leader at their node rank x stride, so that a dense layer fetched in one part
// takes one indexed get per other node instead of one per peer. The same parity and the group's
// collective per layer guard both, with MPI_Win_sync on both windows around it. With
// SDNN_MODEL_COMM=window-gets, or a window backend chosen by hand (--window-backend), every
// segment is the backend's and every peer's bytes come through gets. Bytes and messages in the
// figures are the window's.
//
// Sparse rows. Per layer l, a rank pulls Y_{l-1} from its peers' slot (l-1)%2 (offsets first,
// one get per peer for the span of its ranges, then the index and value ranges: sizes before
// data), computes Y_l, stores it in its own slot l%2 and enters the group's collective (an
// allreduce of four counts: whether a block did not fit, the group's nonzeros, its non-positive
// entries and its rows alive, MPI_Win_sync around it). Slot l%2 was last read during layer l-1,
// which every peer finished before that layer's collective, so the store cannot overwrite what a
// peer still reads; and nobody reads slot l%2 before the collective that follows the store.
// Overlap: after the offsets arrive, the index and value gets are issued, the part of the sums
// that needs only the rank's own columns is computed (SplitRightMultiplier::partial), then the
// gets are completed and the rest is added (finish).
//
// Dense rows. When the group's alive rows hold at least dense_threshold of their entries (all
// positive), the group moves them to dense panels together (the engine's rule; back to sparse
// below a quarter of it): each rank holds its C columns of the alive rows as panels and exposes
// them in its dense slots as they are (panels x C x kPanelRows, no transpose). Per layer a rank
// pulls, with one get per peer (a plain get of the slot's range when it reads the peer's whole
// block, as every rank does on RadiX-Net up to 16 column blocks; an indexed one when it needs part of it), the
// neurons its W block reads from its peers, builds full-width panels a few panels at a time (its
// own columns from its own slot and the pulled ones, a memcpy per range where a panel's rows are
// one stored panel) and computes its C output columns with the panel kernel
// (multiply_panel_span) into a compact chunk of C columns, copied into its slot in one memcpy
// (each chunk is gathered before it is computed; no second set of panels): the slot is where the
// next layer reads its own columns (enter writes the first panels there directly), and its panels
// keep only the rows' ids (their values are copied out of the slot only for --reuse and on the
// way back to sparse rows). (A row group of one rank never gets here: see above.)
// A peer on this rank's node (see the window above) is not pulled: the gather reads its columns
// straight from its slot, with no get and no pulled copy. Full-width slots read in place by the
// kernel were tried and measured slower (docs/strategies.md, issue 10, sixth pass). The
// weights are widened while the gets are in flight. Layers that still hold many rows get their
// peers' panels in up to 4 parts (ModelComm::panels_per_part), each issued when the one before it
// has arrived, and compute the panels whose rows have all arrived while the next part is in
// flight. It stores its output columns (every row of the layer's input, dead or not) and the
// group's collective sums each row's kept entries over the group, so that every rank drops the
// same rows; the next layer reads its own and its peers' rows through that list. Sums in double,
// rounded once: the same bits as every other strategy.
// With --reuse, repeated rows are dropped by GroupReuse: from the sparse block before it is stored, and from
// the panels on the layers its schedule looks (signatures summed and pairs compared over the
// group, as for sparse rows; the next layer reads the peers' stored rows of those kept).
// Why one collective per layer and not point-to-point completion (a flag or message per peer read):
// on RadiX-Net every rank of a group reads every peer each layer, so a rank would wait for the
// same slowest peer through M - 1 notifications instead of one allreduce, which costs fewer
// messages (measured in the simulation: docs/strategies.md), and the allreduce also agrees on the
// rows that died.
// SDNN_MODEL_COMM (strategy_model.hpp) undoes one of these changes at a time, for measuring.
#include "main/strategy_model.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <memory>
#include <utility>

#include <omp.h>

#include "comm/mpi_library.hpp"
#include "comm/window.hpp"
#include "main/row_engine.hpp"
#include "partition/row_partition.hpp"
#include "spmm/dense_rows.hpp"
#include "spmm/engine.hpp"
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
    return drop_repeated(y, column_base, layers_left, schedule_.due());
  }
  // Dense panels: whether this layer looks for repeated rows (the same schedule as before_store,
  // which it advances); when it does, the caller calls drop_from_panels.
  bool due() { return schedule_.due(); }
  // Drops repeated rows from the group's panels (every rank of the group holds the same rows, in
  // the same order, its own columns of them): representative[r] is r for a row kept, else the
  // row that stands for it. Returns the rows dropped.
  Index drop_from_panels(DenseRows& rows, Index column_base, std::size_t layers_left,
                         std::vector<Index>& representative) {
    signatures_of(rows, signatures_, column_base);
    group_.sum_in_place(signatures_.count);
    group_.sum_in_place(signatures_.hash);
    representative.resize(rows.rows());
    for (Index r = 0; r < rows.rows(); ++r) representative[r] = r;
    const std::vector<std::pair<Index, Index>> pairs = candidate_pairs(signatures_);
    std::vector<std::uint8_t> equal(pairs.size());
    for (std::size_t p = 0; p < pairs.size(); ++p) equal[p] = same_dense_rows(rows, pairs[p].second, pairs[p].first);
    group_.min_in_place(equal);
    for (std::size_t p = 0; p < pairs.size(); ++p)
      if (equal[p]) representative[pairs[p].first] = pairs[p].second;
    const Index alive = rows.rows();
    const Index dropped = drop_repeats(rows, representative, log_);
    schedule_.found(dropped, alive, layers_left);
    return dropped;
  }
  void expand(CsrMatrix& final_rows) const { expand_matrix(log_, final_rows); }
  // Before the next super-block of rows (run_column_blocks): its own log and schedule.
  void restart() {
    schedule_ = ReuseSchedule();
    log_.clear();
  }

 private:
  std::uint64_t drop_repeated(CscMatrix& y, Index column_base, std::size_t layers_left, bool look) {
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
    std::uint64_t alive_rows = 0;
    for (std::uint64_t c : signatures_.count) alive_rows += c > 0;
    if (look) schedule_.found(dropped, alive_rows, layers_left);
    return alive_rows - dropped;
  }

  SubCommunicator group_;
  ReuseSchedule schedule_;
  RowSignatures signatures_;
  RowComparer comparer_;
  ReuseLog log_;
};

// Where the segment of each column block b of the group is (see the window at the top of this
// file): on this rank's node, read in place (on_node[b]; this rank's own always), and in the
// window, at byte target_offset[b] of rank target_rank[b]'s segment (the node's leader, which
// exposes the whole node segment, or b's own rank with the window's gets alone).
struct SegmentMap {
  std::vector<std::byte*> on_node;  // null: on another node
  std::vector<int> target_rank;
  std::vector<std::size_t> target_offset;
};

// Rows a thin super-block parked at the input of layer `layer` (run_column_blocks): this rank's
// columns of them as panels (panels.ids: their rows in the super-block), `ids` their rows in the
// group; their nonzeros on this rank.
struct ParkedRows {
  std::size_t layer = 0;
  DenseRows panels;
  std::vector<Index> ids;
  Offset local_nonzeros = 0;
};
// A super-block parks its rows when they are at most 1 / kParkShare of the largest super-block's.
constexpr std::uint64_t kParkShare = 4;

// The group's alive rows as dense panels, this rank's C columns of them (see the top of this
// file). Every call is collective over the group, in the same order on every rank.
class DensePanels {
 public:
  // dense_at[b]: where the dense slots of column block b start in its segment, each slot
  // capacity_rows x its columns floats; `segments`: where each block's segment is (SegmentMap).
  DensePanels(const SubCommunicator& group, Window& window, const SegmentMap& segments, std::vector<std::size_t> dense_at,
              std::uint64_t capacity_rows, Index neurons, RowRange own, int threads, SharedWindow& shared)
      : group_(group), window_(window), segments_(segments), dense_at_(std::move(dense_at)),
        capacity_rows_(capacity_rows), neurons_(neurons), own_(own), threads_(threads), shared_(shared) {}

  DenseRows& rows() { return mine_; }
  Offset local_nonzeros() const { return local_nonzeros_; }

  // Moves the rows of `block` (group rows x C, CSC) marked in `alive` to panels and publishes
  // them in `slot`.
  void enter(const CscMatrix& block, const std::vector<std::uint8_t>& alive, int slot) {
    // Straight from the columns (no CSR copy), a tile's rows at a time: each column from where
    // it reaches the tile's first row (rows and positions follow the same order).
    fill_slot(alive, slot, [&](Value* tile, Index first_position, Index end_position) {
      const Index C = own_.size();
      const Index first_row = mine_.ids[first_position], end_row = mine_.ids[end_position - 1] + 1;
      for (Index k = 0; k < C; ++k) {
        const Index* begin = block.indices.data() + block.begin(k);
        const Index* end = block.indices.data() + block.end(k);
        for (const Index* at = std::lower_bound(begin, end, first_row); at != end && *at < end_row; ++at) {
          if (!alive[*at]) continue;
          const Index i = position_[*at] - first_position;
          tile[(static_cast<std::size_t>(i / kPanelRows) * C + k) * kPanelRows + i % kPanelRows] =
              block.values[static_cast<std::size_t>(at - block.indices.data())];
        }
      }
    });
    local_nonzeros_ = block.nnz();
  }
  // The same from a super-block's input rows (rows first_row + r of `input`, CSR over every
  // neuron, r marked in `alive`), with no CSC copy first: each row's entries in this rank's
  // columns (input rows have ascending columns: from_triplets, and archives are checked).
  // `nonzeros`: the entries of the marked rows in this rank's columns.
  void enter_rows(const CsrMatrix& input, Index first_row, const std::vector<std::uint8_t>& alive, Offset nonzeros,
                  int slot) {
    fill_slot(alive, slot, [&](Value* tile, Index first_position, Index end_position) {
      const Index C = own_.size();
      for (Index i = first_position; i < end_position; ++i) {
        const Index row = first_row + mine_.ids[i];
        const Index* indices = input.indices.data();
        const Index* from = std::lower_bound(indices + input.begin(row), indices + input.end(row), own_.first);
        Value* to = tile + static_cast<std::size_t>((i - first_position) / kPanelRows) * C * kPanelRows +
                    (i - first_position) % kPanelRows;
        for (const Index* at = from; at != indices + input.end(row) && *at < own_.last; ++at)
          to[std::size_t{*at - own_.first} * kPanelRows] = input.values[static_cast<std::size_t>(at - indices)];
      }
    });
    local_nonzeros_ = nonzeros;
  }

  // Thin tails (run_column_blocks). Whether `rows` more rows fit after the layer input's: in the
  // slots and within `most` rows alive (what the sparse slots are sized for).
  bool has_room_for(Index rows, std::uint64_t most) const {
    const std::uint64_t padded = (std::uint64_t{rows} + kPanelRows - 1) / kPanelRows * kPanelRows;
    return stored_stride_ + padded <= capacity_rows_ && std::uint64_t{mine_.rows()} + rows <= most;
  }
  // Appends rows parked by another super-block (this rank's columns of them, as panels) to the
  // layer input, after its stored rows (whole panels: one memcpy), as rows first_id, first_id + 1,
  // ... of mine_; their `nonzeros` are this rank's. publish_absorbed after the last.
  void absorb(const DenseRows& parked, Offset nonzeros, Index first_id) {
    const std::size_t C = own_.size();
    Value* const to = dense_slots(group_.rank()) + own_slot_ * capacity_rows_ * C + std::size_t{stored_stride_} * C;
    std::memcpy(to, parked.panel.data(), std::size_t{parked.panels()} * C * kPanelRows * sizeof(Value));
    for (Index j = 0; j < parked.rows(); ++j) {
      mine_.ids.push_back(first_id + j);
      source_rows_.push_back(stored_stride_ + j);
    }
    stored_stride_ += parked.panels() * kPanelRows;
    local_nonzeros_ += nonzeros;
  }
  // The rows absorbed are stored: visible to the group (collective over the group).
  void publish_absorbed() {
    sync_slots();
    MPI_Barrier(group_.comm());
    sync_slots();
  }
  // Moves the layer input's rows out (this rank's columns of them, as panels; ids: their rows
  // in mine_) and returns their nonzeros on this rank; no row is left.
  Offset park(DenseRows& out) {
    fill_panels();
    out = std::move(mine_);
    const Offset nonzeros = local_nonzeros_;
    start_empty(own_slot_);
    return nonzeros;
  }
  // No rows: the input of a layer whose rows come by absorb, in `slot`.
  void start_empty(int slot) {
    mine_ = DenseRows();
    mine_.neurons = own_.size();
    source_rows_.clear();
    stored_stride_ = 0;
    own_slot_ = slot;
    local_nonzeros_ = 0;
  }

  // One layer (see the top of this file): pulls the neurons of `plan` from the peers' slot
  // `read_slot`, computes this rank's output columns, stores them in `write_slot`, agrees on
  // the rows that died. Returns the group's nonzeros; adds communication to comm (seconds),
  // bytes and messages.
  template <class Timed>
  Offset layer(const PullPlan& plan, const Layer& layer, int read_slot, int write_slot, bool overlap, bool merged_gets,
               bool panel_blocks, std::size_t panels_per_part, Timed&& timed, std::uint64_t& bytes, std::uint64_t& messages) {
    // Where each neuron's rows are: own columns in mine_, pulled ones in pulled_.
    std::size_t total = 0;  // pulled through the window: from the peers on other nodes
    for (const PullPlan::Range& range : plan.ranges)
      if (!on_node(range.peer % group_.size())) total += std::size_t{range.last - range.first} * stored_stride_;
    pulled_.resize(total);
    plan_peer_gets(plan, read_slot, merged_gets);
    const bool gets = !peer_gets_.empty();
    // The gets in parts of the stored panels (panels_per_part, with overlap): each part is issued when
    // the one before it has arrived, and the panels whose rows have all arrived are computed
    // while the next part is in flight.
    const std::size_t stored_panels = stored_stride_ / kPanelRows;
    const std::size_t parts =
        gets && overlap && panels_per_part > 0 ? transfer_parts(stored_panels, panels_per_part) : 1;
    auto part_end = [&](std::size_t k) { return stored_panels * k / parts; };
    if (gets)
      timed([&] {
        issue_gets(0, part_end(1), parts == 1, panel_blocks, bytes, messages);
        if (!overlap) window_.flush_all();
      });
    // While the gets are in flight: the weights in double (one copy per thread) and the output.
    if (static_cast<int>(wide_.size()) < threads_) wide_.resize(threads_);
#pragma omp parallel num_threads(threads_)
    widen_operands(DenseRows(), layer.weights_csc, wide_[omp_get_thread_num()], layer.prepared_column_groups());
    const Index panels = mine_.panels();
    row_nonzeros_.assign(static_cast<std::size_t>(panels) * kPanelRows, 0);
    prepare_compute(read_slot, write_slot);
    Index computed = 0;
    for (std::size_t k = 0; k < parts; ++k) {
      if (overlap && gets)
        timed([&] {
          window_.flush_all();
          if (k + 1 < parts) issue_gets(part_end(k + 1), part_end(k + 2), false, panel_blocks, bytes, messages);
        });
      const Index ready = k + 1 == parts ? panels : computable_panels(part_end(k + 1));
      compute_panels(layer, computed, ready);  // also publishes the output columns in write_slot
      computed = std::max(computed, ready);
    }
    local_nonzeros_ = 0;
    for (std::uint32_t n : row_nonzeros_) local_nonzeros_ += n;
    // Agree on the rows that died.
    timed([&] {
      sync_slots();
      group_.sum_in_place(row_nonzeros_);
      sync_slots();
    });
    source_rows_.clear();
    for (Index r = 0; r < mine_.rows(); ++r)
      if (row_nonzeros_[r] > 0) source_rows_.push_back(r);
    stored_stride_ = static_cast<Index>(panels) * kPanelRows;
    // The output is in write_slot alone: mine_ keeps the ids of the rows alive.
    own_slot_ = write_slot;
    mine_.panel.clear();
    Offset nonzeros = 0;
    Index kept = 0;
    for (Index r = 0; r < mine_.rows(); ++r)
      if (row_nonzeros_[r] > 0) nonzeros += row_nonzeros_[r], mine_.ids[kept++] = mine_.ids[r];
    mine_.ids.resize(kept);
    return nonzeros;
  }

  // --reuse: drops the rows that `reuse` finds repeated in the group (collective over the group).
  // The stored slot keeps them: the next layer reads the peers' rows through source_rows_.
  void drop_repeats_in_group(GroupReuse& reuse, std::size_t layers_left) {
    std::vector<Index> representative;
    fill_panels();
    if (reuse.drop_from_panels(mine_, own_.first, layers_left, representative) == 0) return;
    Index kept = 0;
    for (std::size_t i = 0; i < source_rows_.size(); ++i)
      if (representative[i] == static_cast<Index>(i)) source_rows_[kept++] = source_rows_[i];
    source_rows_.resize(kept);
    local_nonzeros_ = 0;  // the padding rows hold +0
    const std::size_t values = static_cast<std::size_t>(mine_.panels()) * own_.size() * kPanelRows;
    for (std::size_t i = 0; i < values; ++i) local_nonzeros_ += mine_.panel[i] != 0.0f;
  }

  // This rank's columns of the alive rows as CSR (group rows x C).
  CsrMatrix to_rows(Index group_rows) {
    fill_panels();
    std::vector<ActiveRows> one(1);
    to_sparse(mine_, one[0]);
    return assemble_rows(group_rows, own_.size(), one);
  }

 private:
  // enter's and enter_rows' common part: mine_ takes the rows marked in `alive` (ids, in order;
  // position_: each one's place), and their values go straight into the panels of `slot` (as
  // they are: the next layer reads its own columns there, as the peers'), mine_ keeping only the
  // rows' ids: a tile of panels (about 256 KB) at a time on each thread, zeroed and then filled
  // by fill_tile(tile, first position, end position), so that the writes stay in the tile (one
  // column at a time over every panel wrote 32 bytes per cache line and page). Then the group's
  // stores are made visible to it.
  template <class FillTile>
  void fill_slot(const std::vector<std::uint8_t>& alive, int slot, FillTile&& fill_tile) {
    const Index C = own_.size();
    mine_.neurons = C;
    mine_.ids.clear();
    position_.assign(alive.size(), 0);
    for (Index r = 0; r < static_cast<Index>(alive.size()); ++r)
      if (alive[r]) position_[r] = mine_.rows(), mine_.ids.push_back(r);
    mine_.panel.clear();
    Value* const panels = dense_slots(group_.rank()) + slot * capacity_rows_ * C;
    const std::size_t panel_values = std::size_t{C} * kPanelRows;
    const Index tile_panels = static_cast<Index>(std::max<std::size_t>(1, (std::size_t{1} << 16) / panel_values));
    const Index all_panels = mine_.panels(), tiles = (all_panels + tile_panels - 1) / tile_panels;
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 1)
    for (Index t = 0; t < tiles; ++t) {
      const Index first_panel = t * tile_panels, end_panel = std::min(all_panels, first_panel + tile_panels);
      Value* const tile = panels + first_panel * panel_values;
      std::memset(tile, 0, (end_panel - first_panel) * panel_values * sizeof(Value));
      fill_tile(tile, first_panel * kPanelRows, std::min(mine_.rows(), end_panel * kPanelRows));
    }
    source_rows_.resize(mine_.rows());
    for (Index i = 0; i < mine_.rows(); ++i) source_rows_[i] = i;
    stored_stride_ = static_cast<Index>(mine_.panels()) * kPanelRows;
    own_slot_ = slot;
    sync_slots();
    MPI_Barrier(group_.comm());  // every store of the group is done
    sync_slots();
  }
  // Column block b's dense slots: this rank's own, or a peer's on this node, in place.
  Value* dense_slots(int b) const {
    return reinterpret_cast<Value*>(segments_.on_node[b] + dense_at_[b]);
  }
  // Whether column block b's segment is on this rank's node (read in place, no get).
  bool on_node(int b) const { return segments_.on_node[b] != nullptr; }
  // Stores into the slots before, visible to the group after (around a group collective).
  void sync_slots() {
    window_.sync();
    if (shared_.valid()) check_mpi(win_sync(shared_.handle()), "MPI_Win_sync");  // SMPI: see comm/mpi_library.hpp
  }

  // Before compute_panels: where each panel's rows are stored, where this rank's own columns are
  // read and where its output goes (read_slot, slot).
  void prepare_compute(int read_slot, int slot) {
    const Index C = own_.size(), panels = mine_.panels();
    stored_panel_.resize(panels);
    for (Index q = 0; q < panels; ++q) stored_panel_[q] = stored_panel_of(q);
    // This rank's columns are read from the slot that holds them, as the peers' are, and the
    // output goes to `slot` alone.
    Value* const own_slots = dense_slots(group_.rank());
    published_ = own_slots + slot * capacity_rows_ * C;
    pulled_ranges_.push_back({own_.first, C, own_slots + read_slot * capacity_rows_ * C, std::size_t{C} * kPanelRows});
  }
  // mine_'s panels [begin, end), a few panels at a time, on every thread: gathered full width as
  // floats (this rank's columns and every pulled range, kPanelRows rows at a time where a panel's
  // rows are one stored panel, else row by row), the output columns computed into a compact chunk
  // and copied into the output slot (see prepare_compute) in one memcpy.
  void compute_panels(const Layer& layer, Index begin, Index end) {
    constexpr Index kChunkPanels = 12;
    const Index C = own_.size(), rows = mine_.rows();
    const std::size_t stride = std::size_t{neurons_} * kPanelRows, mine_stride = std::size_t{C} * kPanelRows;
    Value* const published = published_;
    if (static_cast<int>(chunk_in_.size()) < threads_) chunk_in_.resize(threads_), chunk_out_.resize(threads_);
#pragma omp parallel num_threads(threads_)
    {
      WideOperands& wide = wide_[omp_get_thread_num()];
      DenseRows& in = chunk_in_[omp_get_thread_num()];
      std::vector<Value>& out = chunk_out_[omp_get_thread_num()];
      in.neurons = neurons_;
#pragma omp for schedule(dynamic, 1)
      for (Index first = begin; first < end; first += kChunkPanels) {
        const Index count = std::min(kChunkPanels, end - first);
        std::uint32_t* kept = row_nonzeros_.data() + std::size_t{first} * kPanelRows;
        in.ids.resize(static_cast<std::size_t>(count) * kPanelRows);
        in.panel.resize(count * stride);
        for (Index p = 0; p < count; ++p) {
          Value* to = in.panel.data() + p * stride;
          const std::int64_t whole = stored_panel_[first + p];
          for (const PulledRange& range : pulled_ranges_) {
            const std::size_t width = std::size_t{range.width} * kPanelRows;
            Value* column = to + std::size_t{range.first} * kPanelRows;
            if (whole >= 0) {
              std::memcpy(column, range.values + static_cast<std::size_t>(whole) * range.panel_stride, width * sizeof(Value));
              continue;
            }
            // Row by row: each row's place in the stored panels (a padding row reads +0), then
            // a panel column (kPanelRows values, one write) at a time.
            const Value* from[kPanelRows];
            std::size_t step[kPanelRows];
            for (Index r = 0; r < kPanelRows; ++r) {
              const Index row = (first + p) * kPanelRows + r;
              static constexpr Value kZero = 0.0f;
              if (row >= rows) {
                from[r] = &kZero, step[r] = 0;
                continue;
              }
              const Index stored = source_rows_[row];
              from[r] = range.values + std::size_t{stored / kPanelRows} * range.panel_stride + stored % kPanelRows;
              step[r] = kPanelRows;
            }
            for (Index k = 0; k < range.width; ++k)
              for (Index r = 0; r < kPanelRows; ++r) column[std::size_t{k} * kPanelRows + r] = *from[r], from[r] += step[r];
          }
        }
        // The weights and their groups were widened once for the layer; the output columns go
        // to the slot by way of a compact chunk (the kernel writing into the slot itself was no
        // faster: docs/strategies.md).
        out.resize(count * mine_stride);
        multiply_panel_span(in, 0, count, wide, layer.weights_csc, layer.bias.data(), out.data(), mine_stride, kept);
        std::memcpy(published + first * mine_stride, out.data(), out.size() * sizeof(Value));
      }
    }
  }
  // How many parts a layer's gets are split into (see layer): one per panels_per_part stored
  // panels, at most kMostParts (each part costs every peer one more message).
  static std::size_t transfer_parts(std::size_t stored_panels, std::size_t panels_per_part) {
    constexpr std::size_t kMostParts = 4;
    return std::clamp<std::size_t>(stored_panels / panels_per_part, 1, kMostParts);
  }
  // The panels of mine_, from the first, whose rows all lie in the stored panels [0, stored_end).
  Index computable_panels(std::size_t stored_end) const {
    const Index rows = mine_.rows();
    const auto arrived = static_cast<Index>(
        std::lower_bound(source_rows_.begin(), source_rows_.begin() + rows, stored_end * kPanelRows) - source_rows_.begin());
    return arrived == rows ? mine_.panels() : arrived / kPanelRows;
  }
  // Every peer's share of a layer's gets (the ranges of one peer are consecutive in the plan; one
  // share per range with SDNN_MODEL_COMM=per-range-gets): where its ranges land in pulled_ (as
  // stored panels x their neurons x kPanelRows) and which ranges of the plan they are; also fills
  // pulled_ranges_.
  void plan_peer_gets(const PullPlan& plan, int read_slot, bool merged_gets) {
    pulled_ranges_.clear();
    peer_gets_.clear();
    std::size_t at = 0;
    for (std::size_t r = 0; r < plan.ranges.size();) {
      const int peer = plan.ranges[r].peer % group_.size();
      const RowRange theirs = shard_of(neurons_, group_.size(), peer);
      const std::size_t slot =
          segments_.target_offset[peer] + dense_at_[peer] + read_slot * capacity_rows_ * theirs.size() * sizeof(Value);
      std::size_t end = r, width = 0;  // width: the peer's pulled neurons
      for (; end < plan.ranges.size() && plan.ranges[end].peer % group_.size() == peer && (merged_gets || end == r); ++end) {
        const Index first = plan.ranges[end].first, count = plan.ranges[end].last - first;
        if (on_node(peer))  // read where the peer stored them
          pulled_ranges_.push_back({theirs.first + first, count,
                                    dense_slots(peer) + read_slot * capacity_rows_ * theirs.size() + std::size_t{first} * kPanelRows,
                                    std::size_t{theirs.size()} * kPanelRows});
        else
          pulled_ranges_.push_back({theirs.first + first, count, pulled_.data() + at + width * kPanelRows, 0});
        width += count;
      }
      if (!on_node(peer)) {
        for (std::size_t q = pulled_ranges_.size() - (end - r); q < pulled_ranges_.size(); ++q)
          pulled_ranges_[q].panel_stride = width * kPanelRows;
        peer_gets_.push_back({peer, theirs.size(), at, width, slot, &plan, r, end});
        at += width * stored_stride_;
      }
      r = end;
    }
  }
  // One get per peer share of the stored panels [first, last): the peer's whole block is one
  // contiguous range of its slot, a plain get; else an indexed get of every stored panel's ranges.
  // whole_layer (the layer's gets in one part): the shares of the peers behind one target (a
  // node's leader) are consecutive in pulled_ and go in one indexed get, one message per node.
  void issue_gets(std::size_t first, std::size_t last, bool whole_layer, bool panel_blocks, std::uint64_t& bytes,
                  std::uint64_t& messages) {
    for (std::size_t s = 0; s < peer_gets_.size();) {
      const int target = segments_.target_rank[peer_gets_[s].peer];
      std::size_t end = s + 1;
      while (whole_layer && end < peer_gets_.size() && segments_.target_rank[peer_gets_[end].peer] == target) ++end;
      const PeerGet& share = peer_gets_[s];
      Value* to = pulled_.data() + share.at + first * share.width * kPanelRows;
      if (end == s + 1 && share.width == share.columns && !panel_blocks) {
        window_.get(to, (last - first) * share.width * kPanelRows * sizeof(Value), target,
                    share.slot + first * share.columns * kPanelRows * sizeof(Value));
      } else {
        blocks_.clear();
        for (std::size_t g = s; g < end; ++g) {
          const PeerGet& one = peer_gets_[g];
          const std::vector<PullPlan::Range>& ranges = one.plan->ranges;
          if (one.width == one.columns && !panel_blocks) {
            blocks_.push_back({one.slot + first * one.columns * kPanelRows * sizeof(Value),
                               (last - first) * one.width * kPanelRows * sizeof(Value)});
            continue;
          }
          for (std::size_t panel = first; panel < last; ++panel)
            for (std::size_t q = one.first_range; q < one.end_range; ++q)
              blocks_.push_back({one.slot + (panel * one.columns + ranges[q].first) * kPanelRows * sizeof(Value),
                                 std::size_t{ranges[q].last - ranges[q].first} * kPanelRows * sizeof(Value)});
        }
        window_.get_blocks(to, blocks_, target);
      }
      for (std::size_t g = s; g < end; ++g) bytes += (last - first) * peer_gets_[g].width * kPanelRows * sizeof(Value);
      ++messages;
      s = end;
    }
  }
  // The stored panel that holds panel q of mine_'s rows in order, or -1.
  std::int64_t stored_panel_of(Index q) const {
    const Index first = q * kPanelRows;
    if (first + kPanelRows > mine_.rows() || source_rows_[first] % kPanelRows != 0) return -1;
    for (Index r = 1; r < kPanelRows; ++r)
      if (source_rows_[first + r] != source_rows_[first] + r) return -1;
    return static_cast<std::int64_t>(source_rows_[first] / kPanelRows);
  }
  // mine_'s values after a layer are only in slot own_slot_ (its rows at source_rows_):
  // copied into mine_'s panels for those who read them (--reuse, the way back to sparse rows).
  void fill_panels() {
    if (!mine_.panel.empty() || mine_.rows() == 0) return;
    const std::size_t panel = std::size_t{own_.size()} * kPanelRows;
    const Value* from = dense_slots(group_.rank()) +
                        own_slot_ * capacity_rows_ * own_.size();
    mine_.panel.assign(mine_.panels() * panel, 0.0f);
    for (Index r = 0; r < mine_.rows(); ++r) {
      if (r % kPanelRows == 0) {
        const std::int64_t whole = stored_panel_of(r / kPanelRows);
        if (whole >= 0) {
          std::memcpy(mine_.panel.data() + std::size_t{r / kPanelRows} * panel,
                      from + static_cast<std::size_t>(whole) * panel, panel * sizeof(Value));
          r += kPanelRows - 1;
          continue;
        }
      }
      const Index stored = source_rows_[r];
      const Value* row = from + std::size_t{stored / kPanelRows} * panel + stored % kPanelRows;
      Value* to = mine_.panel.data() + std::size_t{r / kPanelRows} * panel + r % kPanelRows;
      for (Index k = 0; k < own_.size(); ++k) to[std::size_t{k} * kPanelRows] = row[std::size_t{k} * kPanelRows];
    }
  }

  const SubCommunicator& group_;
  Window& window_;
  const SegmentMap& segments_;
  std::vector<std::size_t> dense_at_;
  std::uint64_t capacity_rows_;
  Index neurons_;
  RowRange own_;
  int threads_;
  SharedWindow& shared_;
  DenseRows mine_;  // the layer's input, then its output (its rows; their values in own_slot_)
  int own_slot_ = 0;  // the slot that holds this rank's columns of mine_'s rows
  Index stored_stride_ = 0;          // rows (padded to panels) in the slots: the last layer input's
  std::vector<Index> source_rows_;   // where each of mine_'s rows is in the slots
  std::vector<Index> position_;      // enter: each row's place in mine_ (when alive)
  struct PulledRange {
    Index first, width;         // neurons [first, first + width)
    const Value* values;        // in pulled_: stored panel p's kPanelRows x width at values + p x panel_stride
    std::size_t panel_stride;
  };
  struct PeerGet {
    int peer;
    std::size_t columns, at, width, slot;  // the peer's columns; where in pulled_; its pulled neurons; its read slot
    const PullPlan* plan;
    std::size_t first_range, end_range;    // its ranges of the plan
  };
  std::vector<Window::Block> blocks_;
  std::vector<PeerGet> peer_gets_;
  Value* published_ = nullptr;  // where compute_panels writes the output (see prepare_compute)
  std::vector<PulledRange> pulled_ranges_;
  std::vector<std::int64_t> stored_panel_;  // per panel of mine_: the stored panel of its rows, or -1
  std::vector<Value> pulled_;
  std::vector<WideOperands> wide_;      // per thread, reused from layer to layer, as are:
  std::vector<DenseRows> chunk_in_;               // a few full-width panels
  std::vector<std::vector<Value>> chunk_out_;     // a chunk's output columns
  std::vector<std::uint32_t> row_nonzeros_;
  Offset local_nonzeros_ = 0;
};

}  // namespace

ModelComm model_comm_from_environment(bool overlap) {
  ModelComm comm;
  comm.overlap = overlap;
  const char* text = std::getenv("SDNN_MODEL_COMM");
  std::stringstream words(text ? text : "");
  for (std::string word; std::getline(words, word, ',');) {
    if (word == "world-sync")
      comm.world_sync = true;
    else if (word == "per-range-gets")
      comm.merged_gets = false;
    else if (word == "panel-blocks")
      comm.panel_blocks = true;
    else if (word == "whole-gets")
      comm.panels_per_part = 0;
    else if (word == "window-gets")
      comm.node_shared = false;
    else if (word == "block-columns")
      comm.cyclic_columns = false;
    else if (word == "separate-tails")
      comm.join_tails = false;
    else if (word.rfind("super-rows=", 0) == 0 && word.size() > 11 &&
             word.find_first_not_of("0123456789", 11) == std::string::npos && word.size() < 11 + 10)
      comm.super_rows = std::stoull(word.substr(11));
    else if (!word.empty())
      throw std::invalid_argument("SDNN_MODEL_COMM: unknown switch '" + word +
                                  "' (world-sync, per-range-gets, panel-blocks, whole-gets, window-gets, super-rows=N, separate-tails, block-columns)");
  }
  return comm;
}

RankResult run_data_model(const MpiSession& mpi, const LoadedProblem& problem, const Grid& grid,
                          const EngineOptions& engine, const ModelComm& comm, bool keep_final_rows,
                          RankFigures& figures, std::unique_ptr<InferenceSession>* keep_session) {
  return run_data_model(mpi.rank(), problem, grid, engine, comm, keep_final_rows, figures, keep_session);
}

namespace {
CsrMatrix run_column_blocks(int rank, const LoadedProblem& problem, const Grid& grid, const EngineOptions& engine,
                            const ModelComm& comm_switches, RankFigures& figures);
}  // namespace

RankResult run_data_model(int rank, const LoadedProblem& problem, const Grid& grid, const EngineOptions& engine,
                          const ModelComm& comm, bool keep_final_rows, RankFigures& figures,
                          std::unique_ptr<InferenceSession>* keep_session) {
  if (grid.columns == 1) {  // nothing to exchange: the data strategy's engine loop (see the top of this file)
    EngineOptions blocks = engine;
    blocks.format = Format::csr;
    blocks.parallel = Parallelism::data;
    return infer_rows(problem, blocks, keep_final_rows, figures, keep_session);
  }
  RankResult result;
  result.final_rows = run_column_blocks(rank, problem, grid, engine, comm, figures);
  result.categories = categories_of(result.final_rows);
  result.exact_sum = exact_sum_of(result.final_rows);
  return result;
}

namespace {
// How many super-blocks a row group's `rows` go in (see the top of this file): of at most
// super_rows rows each (0: the whole group at once); the largest count over every rank, so that
// every row group runs as many (a collective over every rank, as SDNN_MODEL_COMM=world-sync's
// per-layer barrier, meets the same number of times).
std::size_t super_block_count(Index rows, std::size_t super_rows) {
  std::uint64_t count = super_rows == 0 || rows == 0 ? 1 : (std::uint64_t{rows} + super_rows - 1) / super_rows;
  MPI_Allreduce(MPI_IN_PLACE, &count, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  return static_cast<std::size_t>(count);
}

// The column-block loop (M >= 2; see the top of this file): returns this rank's final block.
CsrMatrix run_column_blocks(int rank, const LoadedProblem& problem, const Grid& grid, const EngineOptions& engine,
                            const ModelComm& comm_switches, RankFigures& figures) {
  const bool overlap = comm_switches.overlap;
  const Index neurons = problem.input.cols(), rows = problem.input.rows();
  const int row_group = rank / grid.columns, block = rank % grid.columns;
  const RowRange own = problem.columns;
  const Index columns = own.size();
  const std::size_t layers = problem.network.size();
  const SubCommunicator group(row_group, block);  // rank b of the group: column block b
  const int group_base = row_group * grid.columns;  // world rank of the group's block 0

  // The communication plan of every layer, before the loop.
  std::vector<PullPlan> plans;
  plans.reserve(layers);
  for (const Layer& layer : problem.network)
    plans.push_back(plan_pulls(layer.weights_csc, neurons, grid, row_group, block, false));  // split when first sparse

  // Super-blocks (see the top of this file): the group's rows in `parts` consecutive ranges,
  // each taken through every layer before the next, all through the one window below.
  const std::size_t parts = super_block_count(
      rows, comm_switches.super_rows == ModelComm::kAutomatic
                ? ModelComm::kSuperRowsPerThread * static_cast<std::size_t>(std::max(engine.threads, 1))
                : comm_switches.super_rows);
  auto part_first = [&](std::size_t part) { return static_cast<Index>(std::uint64_t{rows} * part / parts); };

  // Dense panels once the group's rows are dense enough (the engine's rule), when every layer
  // holds all of this rank's columns.
  bool dense_allowed = engine.dense_threshold <= 1.0;
  for (const Layer& layer : problem.network) dense_allowed = dense_allowed && layer.weights_csc.cols() == columns;

  // One window over every rank, created once and never grown (see the top of this file): per
  // rank two sparse slots whose capacity is what a block can hold while its group stays sparse,
  // then two dense slots of the group's rows (padded to panels) x its columns.
  // A row that died stays dead, so the group's rows alive in a super-block's input bound every
  // later layer's; the slots hold the largest super-block's.
  // Input row r's entries in this rank's columns: [first, last) of its arrays (input rows have
  // ascending columns: from_triplets, and archives are checked).
  auto own_entries = [&](Index r) {
    const Index* indices = problem.input.indices.data();
    const Index* first = std::lower_bound(indices + problem.input.begin(r), indices + problem.input.end(r), own.first);
    const Index* last = std::lower_bound(first, indices + problem.input.end(r), own.last);
    return std::pair<Offset, Offset>(static_cast<Offset>(first - indices), static_cast<Offset>(last - indices));
  };
  std::uint64_t input_most = 0, alive_most = 0;
  {
    std::vector<std::uint8_t> nonempty(rows, 0);
    std::vector<std::uint64_t> part_nonzeros(parts, 0);
    for (std::size_t part = 0; part < parts; ++part)
      for (Index r = part_first(part); r < part_first(part + 1); ++r) {
        const auto [first, last] = own_entries(r);
        nonempty[r] = last > first;
        part_nonzeros[part] += last - first;
      }
    input_most = group.max(*std::max_element(part_nonzeros.begin(), part_nonzeros.end()));
    group.max_in_place(nonempty);
    for (std::size_t part = 0; part < parts; ++part) {
      std::uint64_t alive_rows = 0;
      for (Index r = part_first(part); r < part_first(part + 1); ++r) alive_rows += nonempty[r];
      alive_most = std::max(alive_most, alive_rows);
    }
  }
  const std::uint64_t padded_rows = (alive_most + kPanelRows - 1) / kPanelRows * kPanelRows;
  auto capacity_of = [&](int peer_block) {
    const std::uint64_t all = alive_most * shard_of(neurons, grid.columns, peer_block).size();
    if (!dense_allowed) return std::max<std::uint64_t>(all, 1);
    const auto sparse_most =
        static_cast<std::uint64_t>(engine.dense_threshold * static_cast<double>(alive_most) * neurons) + 1;
    return std::max<std::uint64_t>(std::min(all, std::max(sparse_most, input_most)), 1);
  };
  auto layout_of = [&](int peer_block) {
    return SlotLayout{shard_of(neurons, grid.columns, peer_block).size(), capacity_of(peer_block)};
  };
  std::vector<std::size_t> dense_at(grid.columns);
  for (int b = 0; b < grid.columns; ++b) dense_at[b] = 2 * layout_of(b).slot_bytes();
  const std::size_t dense_bytes = dense_allowed ? 2 * padded_rows * columns * sizeof(Value) : 0;
  const std::size_t segment_bytes = dense_at[block] + dense_bytes;
  // The segments of the ranks of a node lie in one node segment (see the top of this file), each
  // at its node rank x the largest segment, and the window is made over the node segment, exposed
  // whole by the node's leader (a peer's bytes on another node are at its node rank x stride of
  // its leader's segment, so the gets of one layer from one node can go in one message), unless
  // SDNN_MODEL_COMM has window-gets or a window backend was chosen by hand: then every rank's
  // segment is the backend's and every peer is pulled from its own rank.
  SharedWindow shared;  // declared before the window, which is freed first
  Window window;
  SegmentMap segments{std::vector<std::byte*>(grid.columns, nullptr), std::vector<int>(grid.columns),
                      std::vector<std::size_t>(grid.columns, 0)};
  std::byte* mine = nullptr;  // this rank's segment
  {
    const bool wanted = comm_switches.node_shared && window_backend_choice() == WindowBackendChoice::automatic;
    std::uint64_t want[2] = {wanted ? 0u : 1u, segment_bytes}, agreed[2] = {0, 0};
    MPI_Allreduce(want, agreed, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    bool window_gets = agreed[0] != 0;
    if (!window_gets) {
      const std::size_t stride = (agreed[1] + 63) / 64 * 64;
      shared = SharedWindow(MPI_COMM_WORLD, stride, SharedWindow::Sizing::per_rank);
      const bool leader = shared.is_node_leader();
      const SharedWindow::Places places = shared.places_of(MPI_COMM_WORLD);
      bool group_on_node = true;  // every peer of this rank's row group is on its node
      for (int b = 0; b < grid.columns; ++b) {
        const auto peer = static_cast<std::size_t>(group_base + b);
        const std::size_t at = static_cast<std::size_t>(places.node_rank[peer]) * stride;
        segments.target_rank[b] = places.leader[peer];
        segments.target_offset[b] = at;
        if (places.leader[peer] == places.leader[static_cast<std::size_t>(rank)]) segments.on_node[b] = shared.data() + at;
        else group_on_node = false;
      }
      // MPI_Win_create over memory MPI did not allocate can be refused where MPI_Win_allocate
      // works: Open MPI 4.1 without a single-copy mechanism between its processes (no CMA, as in
      // containers that forbid process_vm_readv) has no one-sided component for it. Then, when
      // every row group lies within a node, nothing needs the window (every peer is read in place)
      // and an empty one stands in; else every segment is the backend's (window-gets).
      std::string refused;
      try {
        window = Window(MPI_COMM_WORLD, leader ? shared.data() : nullptr, leader ? shared.size() : 0,
                        "each node's shared segment");
      } catch (const WindowCheckFailure&) {
        throw;
      } catch (const std::runtime_error& e) {
        refused = e.what();
      }
      int flags[3] = {refused.empty() ? 0 : 1, refused.empty() ? 1 : 0, group_on_node ? 0 : 1}, any[3] = {0, 0, 0};
      MPI_Allreduce(flags, any, 3, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
      if (any[0] != 0 && any[1] != 0)
        throw std::runtime_error("data x model: MPI_Win_create over each node's shared segment failed on some ranks "
                                 "and not on others" + (refused.empty() ? std::string() : " (here: " + refused + ")"));
      if (any[0] != 0) {
        if (rank == 0)
          std::fprintf(stderr,
                       "sdnn: MPI_Win_create over each node's shared segment was refused under %s (%s); %s\n",
                       mpi_library_version().c_str(), refused.c_str(),
                       any[2] == 0 ? "every row group lies within a node and reads its peers in place, with no window"
                                   : "data x model pulls every peer through MPI_Win_allocate windows (window-gets)");
        if (any[2] == 0) {
          window = Window(MPI_COMM_WORLD, std::size_t{0});
        } else {
          shared = SharedWindow();
          segments.on_node.assign(grid.columns, nullptr);
          segments.target_offset.assign(grid.columns, 0);
          window_gets = true;
        }
      }
      if (!window_gets) mine = shared.data() + static_cast<std::size_t>(shared.node_rank()) * stride;
    }
    if (window_gets) {
      window = Window(MPI_COMM_WORLD, segment_bytes);
      mine = window.data();
      for (int b = 0; b < grid.columns; ++b) segments.target_rank[b] = group_base + b;
      segments.on_node[block] = mine;
    }
  }
  // A peer's bytes at `offset` of its segment: read in place when it is on this node (returns
  // false), else a get from the window (true).
  auto fetch = [&](void* to, std::size_t bytes, int peer, std::size_t offset) {
    const int b = peer % grid.columns;
    if (const std::byte* memory = segments.on_node[b]) {
      std::memcpy(to, memory + offset, bytes);
      return false;
    }
    window.get(to, bytes, segments.target_rank[b], segments.target_offset[b] + offset);
    return true;
  };
  // Local stores before, the peers' stores after (around a group collective).
  auto sync_segments = [&] {
    window.sync();
    if (shared.valid()) check_mpi(win_sync(shared.handle()), "MPI_Win_sync");  // SMPI: comm/mpi_library.hpp
  };
  auto store = [&](const CscMatrix& y, int slot) {
    const SlotLayout me = layout_of(block);
    std::memcpy(mine + me.offsets_at(slot), y.offsets.data(), me.offsets_bytes());
    if (y.nnz() > 0) {
      std::memcpy(mine + me.indices_at(slot), y.indices.data(), y.nnz() * sizeof(Index));
      std::memcpy(mine + me.values_at(slot), y.values.data(), y.nnz() * sizeof(Value));
    }
  };
  DensePanels dense(group, window, segments, dense_at, padded_rows, neurons, own, engine.threads, shared);
  CscMatrix current;  // Y_l's block: the super-block's rows, this rank's columns (while sparse)
  bool in_panels = false;
  std::vector<std::uint8_t> alive;
  // Whether the group's rows are dense enough for panels (the engine's rule): counts are the
  // group's sums {-, nonzeros, non-positive entries, rows alive on some rank}; `alive` (this
  // rank's rows with an entry) becomes the group's when the counts allow it (collective).
  auto group_goes_dense = [&](const std::vector<std::uint64_t>& counts, auto&& timed) {
    // The group's alive rows are at least the mean of its ranks' (a necessary condition first,
    // agreed without a collective; the rows alive in the group only when it holds).
    const double threshold = engine.dense_threshold * static_cast<double>(neurons);
    bool go_dense = dense_allowed && counts[2] == 0 && counts[1] > 0 &&
                    static_cast<double>(counts[1]) * grid.columns >= threshold * static_cast<double>(counts[3]);
    if (go_dense) {
      timed([&] { group.max_in_place(alive); });
      std::uint64_t group_alive = 0;
      for (std::uint8_t a : alive) group_alive += a;
      go_dense = static_cast<double>(counts[1]) >= threshold * static_cast<double>(group_alive);
    }
    return go_dense;
  };
  // A super-block's input rows [first_row, first_row + part_rows) straight to dense panels
  // (DensePanels::enter_rows) when the group's rows are dense enough; returns false, with
  // nothing stored, when they are not (then publish_sparse decides again on the same counts).
  auto enter_input_dense = [&](Index first_row, Index part_rows) {
    if (!dense_allowed) return false;
    std::vector<std::uint64_t> counts{0, 0, 0, 0};
    alive.assign(part_rows, 0);
    for (Index r = 0; r < part_rows; ++r) {
      const auto [first, last] = own_entries(first_row + r);
      for (Offset p = first; p < last; ++p) counts[2] += !(problem.input.values[p] > 0.0f);
      counts[1] += last - first;
      counts[3] += last > first;
      alive[r] = last > first;
    }
    const Offset local_nonzeros = counts[1];
    group.sum_in_place(counts);
    if (!group_goes_dense(counts, [](auto&& step) { step(); })) return false;
    dense.enter_rows(problem.input, first_row, alive, local_nonzeros, 0);
    return true;
  };
  // Stores Y_l (sparse) in `slot` when it fits and runs the group's collective; moves the group to
  // dense panels when its rows are dense enough. A block that does not fit can only belong to a
  // group that goes dense (capacity_of), so every block that stays sparse was stored.
  auto publish_sparse = [&](int slot, auto&& timed) {
    const std::uint64_t need = current.nnz();
    const bool fits = need <= capacity_of(block);
    if (fits) store(current, slot);
    std::vector<std::uint64_t> counts{!fits, need, 0, 0};  // not stored, nonzeros, non-positive, alive
    if (dense_allowed) {
      alive.assign(current.rows(), 0);
      for (Offset p = 0; p < current.nnz(); ++p) {
        counts[2] += !(current.values[p] > 0.0f);
        counts[3] += alive[current.indices[p]] == 0;
        alive[current.indices[p]] = 1;
      }
    }
    timed([&] {
      sync_segments();
      group.sum_in_place(counts);
      sync_segments();
    });
    if (!group_goes_dense(counts, timed)) {
      if (counts[0] > 0) throw std::logic_error("data x model: a sparse block outgrew its window");
      return;
    }
    dense.enter(current, alive, slot);
    current = CscMatrix();
    in_panels = true;
  };
  figures.layer_rows.assign(layers, 0);
  std::unique_ptr<GroupReuse> reuse;
  if (engine.reuse) reuse = std::make_unique<GroupReuse>(row_group, block);
  // Rows are counted once per group, on its first rank.
  auto count_rows = [&](std::size_t l, std::uint64_t alive_rows) {
    if (l < layers && block == 0) figures.layer_rows[l] += alive_rows, figures.rows_computed += alive_rows;
  };
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
  // Thin tails (see the top of this file): a super-block whose rows thinned to park_rows or
  // fewer, while super-blocks not yet started remain, parks them at its next layer; the first
  // super-block in panels to reach that layer with room for them takes them in (and parks them
  // again with its own while it is as thin); what no super-block took runs at the end. Every
  // rank of the group parks and takes in the same rows (the decisions follow the group's figures).
  const bool join_tails = comm_switches.join_tails && dense_allowed && !reuse && !comm_switches.world_sync;
  const std::uint64_t park_rows = alive_most / kParkShare;
  std::vector<ParkedRows> parked;
  // The piece of rows going through the layers: a super-block, with the rows it took in after
  // its own; local row r (of current and the panels' ids) is row piece_ids[r] of the group.
  std::vector<Index> piece_ids;
  std::vector<ActiveRows> finished;  // every piece's final rows (ids: the group's rows)
  // Takes in the rows parked at `layer` that fit (collective over the group).
  auto take_in_parked = [&](std::size_t layer) {
    bool any = false;
    for (std::size_t i = 0; i < parked.size();) {
      if (parked[i].layer != layer || !dense.has_room_for(parked[i].panels.rows(), alive_most)) {
        ++i;
        continue;
      }
      dense.absorb(parked[i].panels, parked[i].local_nonzeros, static_cast<Index>(piece_ids.size()));
      piece_ids.insert(piece_ids.end(), parked[i].ids.begin(), parked[i].ids.end());
      parked.erase(parked.begin() + static_cast<std::ptrdiff_t>(i));
      ++figures.tails_taken_in;
      any = true;
    }
    if (any) dense.publish_absorbed();
  };
  std::size_t pieces_done = 0;  // for the progress report: super-blocks finished or parked
  // Layers [first_layer, layers) of the piece (in panels or as `current`); returns false when it
  // parked its rows (may_park: super-blocks not yet started remain).
  auto run_layers = [&](std::size_t first_layer, bool may_park) {
    for (std::size_t l = first_layer; l < layers; ++l) {
      PullPlan& plan = plans[l];
      const Layer& layer = problem.network[l];
      const int read_slot = static_cast<int>(l % 2), write_slot = static_cast<int>((l + 1) % 2);
      double comm = 0;
      auto timed = [&](auto&& step) {
        const double start = mpi_seconds();
        step();
        comm += mpi_seconds_since(start);
      };
      const double layer_start = mpi_seconds();
      std::uint64_t bytes = 0, messages = 0;
      if (in_panels) {
        figures.layer_nonzeros[l] += dense.local_nonzeros();
        figures.active_nonzeros += dense.local_nonzeros();
        const Offset group_nonzeros = dense.layer(plan, layer, read_slot, write_slot, overlap, comm_switches.merged_gets,
                                                  comm_switches.panel_blocks, comm_switches.panels_per_part, timed, bytes,
                                                  messages);
        // Back to sparse rows below a quarter of the threshold (every rank of the group agrees).
        const Index alive_rows = dense.rows().rows();
        if (alive_rows == 0 || static_cast<double>(group_nonzeros) <
                                   0.25 * engine.dense_threshold * static_cast<double>(alive_rows) * neurons) {
          current = to_csc(dense.to_rows(static_cast<Index>(piece_ids.size())));
          in_panels = false;
          publish_sparse(write_slot, timed);
        } else if (reuse && reuse->due()) {
          dense.drop_repeats_in_group(*reuse, layers - l - 1);  // the group agrees on every pair
        }
        if (reuse) count_rows(l + 1, dense.rows().rows());
      } else {
        figures.layer_nonzeros[l] += current.nnz();
        figures.active_nonzeros += current.nnz();
        if (!plan.weights_split) split_weights(layer.weights_csc, neurons, grid, block, plan);

        // Sizes first: the column offsets of every pulled range, one get per peer (its ranges'
        // span, lengths + 1; the ranges of one peer are consecutive in the plan).
        range_offset_at.resize(plan.ranges.size());
        {
          std::size_t spans = 0;  // the buffer is sized before any get writes into it
          for (std::size_t r = 0; r < plan.ranges.size(); ++r)
            if (r + 1 == plan.ranges.size() || plan.ranges[r + 1].peer != plan.ranges[r].peer || !comm_switches.merged_gets)
              spans += 1;
          peer_offsets.resize(spans + neurons);  // each span: its columns + 1; the spans are disjoint
        }
        timed([&] {
          std::size_t at = 0;
          for (std::size_t r = 0; r < plan.ranges.size();) {
            const int peer = plan.ranges[r].peer;
            std::size_t end = r;
            while (end < plan.ranges.size() && plan.ranges[end].peer == peer && (comm_switches.merged_gets || end == r))
              ++end;
            const Index first = plan.ranges[r].first, last = plan.ranges[end - 1].last;
            for (std::size_t q = r; q < end; ++q) range_offset_at[q] = at + (plan.ranges[q].first - first);
            const std::size_t count = last - first + 1;
            if (fetch(peer_offsets.data() + at, count * sizeof(Offset), peer,
                      layout_of(peer % grid.columns).offsets_at(read_slot) + first * sizeof(Offset)))
              bytes += count * sizeof(Offset), ++messages;
            at += count;
            r = end;
          }
          window.flush_all();
        });
        // Then the data: the pulled matrix's columns are the ranges' columns, back to back.
        pulled.reset(static_cast<Index>(piece_ids.size()), plan.pulled_columns);
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
            const SlotLayout theirs = layout_of(range.peer % grid.columns);
            const Offset* offsets = peer_offsets.data() + range_offset_at[r];
            const Offset first = offsets[0], count = offsets[range.last - range.first] - first;
            if (count == 0) continue;
            const bool got = fetch(pulled.indices.data() + at, count * sizeof(Index), range.peer,
                                   theirs.indices_at(read_slot) + first * sizeof(Index));
            fetch(pulled.values.data() + at, count * sizeof(Value), range.peer,
                  theirs.values_at(read_slot) + first * sizeof(Value));
            at += count;
            if (got) bytes += count * (sizeof(Index) + sizeof(Value)), messages += 2;
          }
          if (!overlap) window.flush_all();
        });
        multiplier.partial(current, plan.local_weights, partial);  // overlaps the gets in flight
        if (overlap) timed([&] { window.flush_all(); });
        multiplier.finish(partial, pulled, plan.remote_weights, layer.bias.data(), next);
        std::swap(current, next);

        // Store Y_l in the other slot; one collective per layer (see the top of this file).
        if (reuse) count_rows(l + 1, reuse->before_store(current, own.first, layers - l - 1));
        publish_sparse(write_slot, timed);
      }
      if (comm_switches.world_sync) timed([] { MPI_Barrier(MPI_COMM_WORLD); });
      figures.layer_comm_s[l] += comm;
      figures.layer_compute_s[l] += mpi_seconds_since(layer_start) - comm;
      figures.layer_bytes[l] += bytes;
      figures.layer_columns[l] = plan.pulled_columns;
      figures.pulled_columns += plan.pulled_columns;
      figures.comm_s += comm;
      figures.bytes_pulled += bytes;
      figures.messages += messages;
      if (engine.progress)
        engine.progress(static_cast<double>(std::min(pieces_done, parts - 1) * layers + l + 1) /
                            static_cast<double>(parts * layers), "layers");
      if (join_tails && in_panels && l + 1 < layers) {
        take_in_parked(l + 1);
        if (may_park && dense.rows().rows() <= park_rows) {
          ParkedRows tail;
          tail.layer = l + 1;
          tail.local_nonzeros = dense.park(tail.panels);
          tail.ids.reserve(tail.panels.rows());
          for (Index id : tail.panels.ids) tail.ids.push_back(piece_ids[id]);
          parked.push_back(std::move(tail));
          ++figures.tails_parked;
          return false;
        }
      }
    }
    return true;
  };
  // A piece's final rows, this rank's columns, into `finished` (rows with an entry).
  auto finish_piece = [&] {
    const Index size = static_cast<Index>(piece_ids.size());
    CsrMatrix final_rows = in_panels ? dense.to_rows(size) : to_csr(current);  // the panels' values are in the window
    if (reuse) reuse->expand(final_rows);
    ActiveRows kept;
    gather_nonempty_rows(final_rows, 0, size, piece_ids.data(), kept);
    finished.push_back(std::move(kept));
  };

  for (std::size_t part = 0; part < parts; ++part) {
    const Index first_row = part_first(part), part_rows = part_first(part + 1) - first_row;
    piece_ids.resize(part_rows);
    for (Index r = 0; r < part_rows; ++r) piece_ids[r] = first_row + r;
    // Dense from the input (as the default problem is): straight into the panels; else as CSC
    // (with --reuse always: it looks for repeated rows in the sparse block first).
    in_panels = !reuse && enter_input_dense(first_row, part_rows);
    if (!in_panels) {
      current = convert<ColMajor>(slice_rows(problem.input, first_row, first_row + part_rows), own.first, own.last);
      if (reuse) {
        reuse->restart();
        count_rows(0, reuse->before_store(current, own.first, layers));
      }
      publish_sparse(0, [](auto&& step) { step(); });
    }
    if (run_layers(0, join_tails && part + 1 < parts)) finish_piece();
    ++pieces_done;
  }
  // The parked rows no super-block took in, from the earliest layer on, each piece taking in
  // the others as it reaches their layers.
  while (!parked.empty()) {
    std::size_t first = 0;
    for (std::size_t i = 1; i < parked.size(); ++i)
      if (parked[i].layer < parked[first].layer) first = i;
    const std::size_t layer = parked[first].layer;
    piece_ids.clear();
    dense.start_empty(static_cast<int>(layer % 2));
    in_panels = true;
    take_in_parked(layer);
    if (piece_ids.empty()) throw std::logic_error("data x model: parked rows that fit no piece");
    ++figures.tail_pieces_at_end;
    run_layers(layer, false);
    finish_piece();
  }
  window.free();
  shared.free();
  return assemble_rows(rows, columns, finished);
}

}  // namespace
}  // namespace sdnn
