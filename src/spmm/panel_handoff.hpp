// panel_handoff.hpp: dense rows handed over from a thread busy with a block to a thread with no
// block left, and the thin tails of blocks joined (the engine's data parallelism).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "spmm/dense_rows.hpp"

namespace sdnn {

// At a layer boundary, a block in dense panels gives the second half of its panels to a waiting
// thread, which takes them through the remaining layers: the last blocks then end together
// instead of one thread running a block's last layers while the others wait, a block split again
// as often as a thread falls idle. Each thread reads only its own rows, and nothing synchronizes
// per layer (the nested teams this replaced split each of the last blocks' layers' output
// neurons between the threads: every thread read every row, and the team met every layer).
//
// A block thinned to one panel (a few rows left, which would go through the remaining layers
// alone, every layer's weights read and converted for one panel) is parked at its next layer
// while blocks not yet started remain: the first block in panels to reach that layer takes its
// rows in, so that the tails of all blocks run as one (on the official problem the 1200 rows'
// 19 survivors end in 3 panels instead of one or two per block). Parked rows that no block
// takes in go to a thread with nothing else to do.
class PanelHandoff {
 public:
  // threads: the threads that may wait (thread numbers 0 to threads - 1); blocks: the blocks of
  // the call (each is done() once, as is each piece given or parked).
  PanelHandoff(int threads, std::int64_t blocks);

  // A block starts (parking is for blocks that a later block can meet).
  void block_started() { started_.fetch_add(1, std::memory_order_relaxed); }
  bool blocks_unstarted() const { return started_.load(std::memory_order_relaxed) < blocks_; }

  // Parks the rows of `panels` (one panel, `nonzeros` entries) at `layer`, the next layer to
  // compute; `panels` is left empty and the parked rows are one more piece to be done.
  void park(DenseRows& panels, Offset nonzeros, std::size_t layer);
  // Appends the rows parked at `layer` to `panels` (same neurons); returns their entries (0:
  // none parked there). Each piece taken in is done.
  Offset absorb(std::size_t layer, DenseRows& panels);
  bool any_parked() const { return parked_count_.load(std::memory_order_relaxed) > 0; }

  // Whether some thread waits for rows (a relaxed read, once per layer of a block in panels).
  bool wanted() const { return waiting_.load(std::memory_order_relaxed) > 0; }

  // For a thread with nothing left to do: lends `panels` (its own buffer, whose pages are
  // already touched) to the thread that will fill it. True when rows came (given, or parked
  // ones): `panels` holds them, `layer` is the next layer to compute and `nonzeros` their
  // entries. False when every block and every piece is done (`panels` is the caller's again).
  bool wait(int thread, DenseRows& panels, std::size_t& layer, Offset& nonzeros);

  // Gives rows [keep, rows) of `panels` (keep: a multiple of kPanelRows), with `nonzeros`
  // entries and `layer` the next layer to compute, to a waiting thread; false when none waits
  // any more (panels unchanged). True: the caller keeps rows [0, keep), and the piece is one
  // more to be done(). On an exception the waiter gets no rows.
  bool give(DenseRows& panels, Index keep, Offset nonzeros, std::size_t layer);

  // A block or a piece is done (whether or not it failed: the waiters count on it).
  void done() { work_left_.fetch_sub(1, std::memory_order_acq_rel); }
  std::uint64_t handoffs() const { return handoffs_.load(std::memory_order_relaxed); }
  std::uint64_t parked() const { return parks_.load(std::memory_order_relaxed); }

 private:
  enum : int { kIdle, kOpen, kClaimed, kFilled };
  struct Parked {
    DenseRows panels;
    std::size_t layer;
    Offset nonzeros;
  };
  // The parked rows with the earliest layer into `panels` (its buffer kept for later parks).
  bool take_parked(DenseRows& panels, std::size_t& layer, Offset& nonzeros);
  struct alignas(64) Slot {  // one per thread, each on its own cache lines
    std::atomic<int> state{kIdle};
    DenseRows panels;
    std::size_t layer = 0;
    Offset nonzeros = 0;
  };
  std::vector<Slot> slots_;
  std::atomic<int> waiting_{0};
  std::atomic<std::int64_t> work_left_;
  std::atomic<std::uint64_t> handoffs_{0};
  const std::int64_t blocks_;
  std::atomic<std::int64_t> started_{0};
  std::mutex parked_mutex_;
  std::vector<Parked> parked_;     // under parked_mutex_
  std::vector<DenseRows> spare_;   // buffers of parked rows taken, for the next (under the mutex)
  std::atomic<int> parked_count_{0};
  std::atomic<std::uint64_t> parks_{0};
};

}  // namespace sdnn
