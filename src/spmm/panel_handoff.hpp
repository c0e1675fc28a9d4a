// panel_handoff.hpp: dense rows handed over from a thread busy with a block to a thread with no
// block left (the engine's data parallelism).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "spmm/dense_rows.hpp"

namespace sdnn {

// At a layer boundary, a block in dense panels gives the second half of its panels to a waiting
// thread, which takes them through the remaining layers: the last blocks then end together
// instead of one thread running a block's last layers while the others wait, a block split again
// as often as a thread falls idle. Each thread reads only its own rows, and nothing synchronizes
// per layer (the nested teams this replaced split each of the last blocks' layers' output
// neurons between the threads: every thread read every row, and the team met every layer).
class PanelHandoff {
 public:
  // threads: the threads that may wait (thread numbers 0 to threads - 1); work: the blocks of
  // the call (each is done() once, as is each piece given).
  PanelHandoff(int threads, std::int64_t work);

  // Whether some thread waits for rows (a relaxed read, once per layer of a block in panels).
  bool wanted() const { return waiting_.load(std::memory_order_relaxed) > 0; }

  // For a thread with nothing left to do: lends `panels` (its own buffer, whose pages are
  // already touched) to the thread that will fill it. True when rows came: `panels` holds them,
  // `layer` is the next layer to compute and `nonzeros` their entries. False when every block
  // and every piece is done (`panels` is the caller's again).
  bool wait(int thread, DenseRows& panels, std::size_t& layer, Offset& nonzeros);

  // Gives rows [keep, rows) of `panels` (keep: a multiple of kPanelRows), with `nonzeros`
  // entries and `layer` the next layer to compute, to a waiting thread; false when none waits
  // any more (panels unchanged). True: the caller keeps rows [0, keep), and the piece is one
  // more to be done(). On an exception the waiter gets no rows.
  bool give(DenseRows& panels, Index keep, Offset nonzeros, std::size_t layer);

  // A block or a piece is done (whether or not it failed: the waiters count on it).
  void done() { work_left_.fetch_sub(1, std::memory_order_acq_rel); }
  std::uint64_t handoffs() const { return handoffs_.load(std::memory_order_relaxed); }

 private:
  enum : int { kIdle, kOpen, kClaimed, kFilled };
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
};

}  // namespace sdnn
