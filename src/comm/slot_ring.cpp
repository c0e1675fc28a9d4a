// slot_ring.cpp: the slot ring of slot_ring.hpp (puts, completion flags and credits through one
// Window).
#include "comm/slot_ring.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>

#include "comm/mpi_library.hpp"
#include "comm/mpi_session.hpp"

namespace sdnn {
namespace {

constexpr std::uint64_t aborted = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t credit_at = 0;  // the sender's credit: messages its downstream consumed
constexpr std::size_t flag_in_slot = 0, bytes_in_slot = 8, last_in_slot = 16;

// The MPI library's clock (comm/mpi_library.hpp): under SMPI the simulated one.
double seconds_since(double start) { return mpi_seconds_since(start); }

// Polls `ready` until it returns true: spinning first, then yielding, then sleeping for longer
// and longer (10 us doubling up to 500 us), so that a waiting rank leaves the cores to ranks that
// compute (ranks may share cores) at the price of at most 0.5 ms of extra latency.
template <class Ready>
void poll_until(Ready&& ready) {
  long sleep_us = 10;
  for (long spins = 0; !ready(); ++spins) {
    if (spins < 64) continue;
    if (spins < 256) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
      sleep_us = std::min(500L, 2 * sleep_us);
    }
  }
}

}  // namespace

SlotRing::SlotRing(MPI_Comm comm, int upstream, int downstream, int slots, std::size_t slot_bytes)
    : upstream_(upstream), downstream_(downstream), slots_(slots), slot_bytes_(slot_bytes) {
  int rank = 0, ranks = 0;
  check_mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm, &ranks), "MPI_Comm_size");
  // Checked after agreeing, so that a bad argument fails on every rank alike.
  std::string problem;
  if (slots < 1) problem = "SlotRing: slots must be at least 1";
  else if (slot_bytes < 1) problem = "SlotRing: slot_bytes must be at least 1";
  else if (upstream < -1 || upstream >= ranks || upstream == rank) problem = "SlotRing: bad upstream rank";
  else if (downstream < -1 || downstream >= ranks || downstream == rank) problem = "SlotRing: bad downstream rank";
  slot_bytes_ = (slot_bytes + 7) / 8 * 8;  // flags stay 8-byte aligned
  std::uint64_t mine[2] = {static_cast<std::uint64_t>(slots), slot_bytes_}, low[2] = {0, 0}, high[2] = {0, 0};
  check_mpi(MPI_Allreduce(mine, low, 2, MPI_UINT64_T, MPI_MIN, comm), "MPI_Allreduce");
  check_mpi(MPI_Allreduce(mine, high, 2, MPI_UINT64_T, MPI_MAX, comm), "MPI_Allreduce");
  int bad = !problem.empty(), any_bad = 0;
  check_mpi(MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_LOR, comm), "MPI_Allreduce");
  if (!problem.empty()) throw std::invalid_argument(problem);
  if (any_bad) throw std::invalid_argument("SlotRing: another rank passed a bad argument");
  if (low[0] != high[0]) throw std::invalid_argument("SlotRing: every rank must pass the same number of slots");
  // Slots as large as the largest any rank asked for: a sender writes into its downstream's slots,
  // so both must agree, and callers that size them from their own share (row groups of 18 and 19
  // rows) need not agree first.
  slot_bytes_ = static_cast<std::size_t>(high[1]);
  const std::size_t bytes = header_bytes + (upstream >= 0 ? static_cast<std::size_t>(slots) * slot_stride() : 0);
  window_ = Window(comm, bytes);
  // Zero flags and credit before anyone writes them (all ranks pass the barrier after): the
  // ring's header and each slot's, not the payloads, which are read only after their flag is set
  // (zeroing them all touched up to 32 MiB per rank inside the timed inference).
  auto zero = [&](std::size_t at) { std::fill_n(window_.data() + at, header_bytes, std::byte{0}); };
  zero(0);
  if (upstream >= 0)
    for (int s = 0; s < slots; ++s) zero(slot_at(static_cast<std::uint64_t>(s)));
  window_.barrier();
}

std::uint64_t SlotRing::read_own(std::size_t offset) {
  std::uint64_t value = 0;
  check_mpi(MPI_Fetch_and_op(nullptr, &value, MPI_UINT64_T, window_.rank(), static_cast<MPI_Aint>(offset), MPI_NO_OP,
                             window_.handle()),
            "MPI_Fetch_and_op");
  check_mpi(MPI_Win_flush(window_.rank(), window_.handle()), "MPI_Win_flush");
  return value;
}

void SlotRing::write_atomic(int rank, std::size_t offset, std::uint64_t value) {
  check_mpi(MPI_Accumulate(&value, 1, MPI_UINT64_T, rank, static_cast<MPI_Aint>(offset), 1, MPI_UINT64_T, MPI_REPLACE,
                           window_.handle()),
            "MPI_Accumulate");
  check_mpi(MPI_Win_flush(rank, window_.handle()), "MPI_Win_flush");
}

double SlotRing::send(const std::vector<Piece>& pieces, bool last) {
  if (!valid() || downstream_ < 0) throw std::logic_error("SlotRing::send: no downstream rank");
  if (ended_) throw std::logic_error("SlotRing::send: the stream has ended");
  std::size_t total = 0;
  for (const Piece& p : pieces) total += p.bytes;
  if (total > slot_bytes_)
    throw std::invalid_argument("SlotRing::send: " + std::to_string(total) + " bytes do not fit a slot of " +
                                std::to_string(slot_bytes_));
  const auto start = mpi_seconds();
  std::uint64_t credit = 0;
  poll_until([&] {
    credit = read_own(credit_at);
    return credit == aborted || sent_ < credit + static_cast<std::uint64_t>(slots_);
  });
  if (credit == aborted) throw PeerFailure();
  const double waited = seconds_since(start);
  const std::size_t slot = slot_at(sent_);
  std::size_t at = slot + header_bytes;
  for (const Piece& p : pieces) {
    window_.put(p.data, p.bytes, downstream_, at);
    at += p.bytes;
  }
  const std::uint64_t header[2] = {total, last ? 1u : 0u};
  window_.put(header, sizeof header, downstream_, slot + bytes_in_slot);
  window_.flush(downstream_);  // the message is in place before its flag says so
  ++sent_;
  write_atomic(downstream_, slot + flag_in_slot, sent_);
  ended_ = last;
  return waited;
}

SlotRing::Message SlotRing::receive(double& waited_s) {
  if (!valid() || upstream_ < 0) throw std::logic_error("SlotRing::receive: no upstream rank");
  if (holding_) throw std::logic_error("SlotRing::receive: the last message was not released");
  if (received_end_) throw std::logic_error("SlotRing::receive: the stream has ended (restart it first)");
  const auto start = mpi_seconds();
  const std::size_t slot = slot_at(received_);
  std::uint64_t flag = 0;
  poll_until([&] {
    flag = read_own(slot + flag_in_slot);
    return flag == aborted || flag == received_ + 1;
  });
  if (flag == aborted) throw PeerFailure();
  waited_s = seconds_since(start);
  window_.sync();  // the sender's puts, completed before its flag, are visible here
  const std::uint64_t* header = reinterpret_cast<const std::uint64_t*>(window_.data() + slot);
  Message m;
  m.data = window_.data() + slot + header_bytes;
  m.bytes = static_cast<std::size_t>(header[bytes_in_slot / 8]);
  m.last = header[last_in_slot / 8] != 0;
  holding_ = true;
  holding_last_ = m.last;
  return m;
}

void SlotRing::release() {
  if (!holding_) throw std::logic_error("SlotRing::release: no message held");
  holding_ = false;
  received_end_ = holding_last_;
  holding_last_ = false;
  ++received_;
  write_atomic(upstream_, credit_at, received_);
}

void SlotRing::restart() {
  if (holding_) throw std::logic_error("SlotRing::restart: the last message was not released");
  ended_ = false;
  received_end_ = false;
}

void SlotRing::abort() noexcept {
  if (!valid()) return;
  // Errors are ignored: this runs on a failure path and must reach both peers if it can.
  const std::uint64_t value = aborted;
  if (downstream_ >= 0) {
    MPI_Accumulate(&value, 1, MPI_UINT64_T, downstream_, static_cast<MPI_Aint>(slot_at(sent_) + flag_in_slot), 1,
                   MPI_UINT64_T, MPI_REPLACE, window_.handle());
    MPI_Win_flush(downstream_, window_.handle());
  }
  if (upstream_ >= 0) {
    MPI_Accumulate(&value, 1, MPI_UINT64_T, upstream_, static_cast<MPI_Aint>(credit_at), 1, MPI_UINT64_T, MPI_REPLACE,
                   window_.handle());
    MPI_Win_flush(upstream_, window_.handle());
  }
}

}  // namespace sdnn
