// slot_ring.hpp: a one-way stream of messages from each rank to one downstream rank, over MPI
// one-sided transfers into a window created once. It moves bytes; it knows nothing of networks.
//
// Every rank of the communicator may receive from one `upstream` rank and send to one
// `downstream` rank (-1: none). The receiver's window holds `slots` slots of `slot_bytes` bytes
// each; message k goes to slot k % slots. The sender writes it with MPI_Put, completes it
// (MPI_Win_flush), then sets the slot's completion flag to k + 1 with an atomic MPI_Accumulate
// (MPI_REPLACE). The receiver polls its flag (MPI_Fetch_and_op MPI_NO_OP on itself), reads the
// message in place, and when done writes how many messages it has consumed into the sender's
// window (the sender's credit), again atomically: the sender writes message k only once message
// k - slots has been consumed. So up to `slots` messages are in flight and the two ranks overlap.
//
// Failures: abort() marks both streams of this rank (flag and credit set to all ones); a peer
// waiting on either throws PeerFailure and should abort in turn, so a failure anywhere in a chain
// of ranks ends every wait in the chain. Every rank must still reach free() (or the destructor):
// it is collective over the communicator, like Window's.
//
// Calls are for the thread that calls MPI (MPI_THREAD_FUNNELED). Collective: the constructor,
// free(), the destructor of a live ring.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "comm/window.hpp"

namespace sdnn {

class SlotRing {
 public:
  // One piece of a message: `bytes` bytes at `data` (pieces are sent back to back).
  struct Piece {
    const void* data;
    std::size_t bytes;
  };
  // A received message, in this rank's window: valid until release().
  struct Message {
    const std::byte* data = nullptr;
    std::size_t bytes = 0;
    bool last = false;  // the sender's end of stream
  };

  SlotRing() = default;
  // Collective over `comm`. slots >= 1, the same on every rank (checked); slot_bytes >= 1, and
  // every rank's slots get the largest slot_bytes any rank passed (rounded up to 8: slot_bytes());
  // upstream/downstream in [-1, comm size), not this rank.
  SlotRing(MPI_Comm comm, int upstream, int downstream, int slots, std::size_t slot_bytes);
  ~SlotRing() = default;  // the window frees itself (collective)
  SlotRing(SlotRing&&) = default;
  SlotRing& operator=(SlotRing&&) = default;

  std::size_t slot_bytes() const noexcept { return slot_bytes_; }
  int slots() const noexcept { return slots_; }

  // Sender: waits until the downstream rank has a free slot, then writes the pieces into it
  // (their total at most slot_bytes(), else std::invalid_argument) and marks it complete; `last`
  // marks the end of the stream (nothing may be sent after it). Returns the seconds spent
  // waiting for a free slot. Throws PeerFailure when the downstream rank aborted.
  double send(const std::vector<Piece>& pieces, bool last = false);

  // Receiver: waits for the next message from the upstream rank; `waited_s` gets the seconds
  // spent waiting. Throws PeerFailure when the upstream rank aborted, std::logic_error when a
  // message was not released or the stream has ended (the end mark was received and released:
  // restart() first).
  Message receive(double& waited_s);
  // Receiver: the slot of the last received message may be reused by the sender.
  void release();

  // A new stream after the end mark (the ring used again: the pipeline's probe, then its run):
  // the sender may send again once it has sent its end mark, the receiver once it has received
  // and released the sender's. Messages keep their numbering, so the slots and credits carry on.
  // Throws std::logic_error while a received message is held.
  void restart();

  // Tells the upstream and downstream ranks that this rank failed (their waits throw
  // PeerFailure). Never throws; does nothing on an empty ring.
  void abort() noexcept;

  // Collective: frees the window. Idempotent.
  void free() { window_.free(); }
  bool valid() const noexcept { return window_.valid(); }

 private:
  static constexpr std::size_t header_bytes = 64;  // flag, bytes, last; a cache line
  std::size_t slot_stride() const noexcept { return header_bytes + slot_bytes_; }
  std::size_t slot_at(std::uint64_t message) const noexcept {
    return header_bytes + static_cast<std::size_t>(message % static_cast<std::uint64_t>(slots_)) * slot_stride();
  }
  std::uint64_t read_own(std::size_t offset);                  // atomic read of this rank's counter
  void write_atomic(int rank, std::size_t offset, std::uint64_t value);  // atomic write, completed

  Window window_;
  int upstream_ = -1, downstream_ = -1, slots_ = 0;
  std::size_t slot_bytes_ = 0;
  std::uint64_t sent_ = 0, received_ = 0;
  bool holding_ = false, ended_ = false;  // holding a received message; this rank's sent stream ended
  bool holding_last_ = false, received_end_ = false;  // the message held is the end mark; it was released
};

}  // namespace sdnn
