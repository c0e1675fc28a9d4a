// test_slot_ring.cpp: the slot ring of src/comm/slot_ring.hpp on MPI_COMM_WORLD with any number
// of ranks, as a chain 0 -> 1 -> ... -> n-1: many more messages than slots (each checked byte for
// byte, each rank forwarding what it received), messages of several pieces and of 0 bytes, the
// end-of-stream mark, a message larger than a slot, misuse, an abort at the head of the chain
// reaching every rank, and bad arguments refused on every rank alike. Every rank reaches the
// same collectives, so EXPECT_* only.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "comm/mpi_session.hpp"
#include "comm/slot_ring.hpp"

namespace sdnn {
namespace {

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// Message k: k % 97 + k bytes... kept below the slot size; byte i is (k * 31 + i) % 251.
std::vector<std::uint8_t> message_of(int k, std::size_t limit) {
  std::vector<std::uint8_t> m((static_cast<std::size_t>(k) * 37) % (limit + 1));
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = static_cast<std::uint8_t>((k * 31 + i) % 251);
  return m;
}

TEST(SlotRing, ChainForwardsManyMessagesInOrderThroughFewSlots) {
  const int rank = world_rank(), ranks = world_size();
  const int upstream = rank > 0 ? rank - 1 : -1, downstream = rank + 1 < ranks ? rank + 1 : -1;
  constexpr int messages = 200;
  constexpr std::size_t slot = 100;
  SlotRing ring(MPI_COMM_WORLD, upstream, downstream, 3, slot);
  EXPECT_EQ(ring.slot_bytes(), 104u);  // rounded up to 8
  int mismatches = 0, count = 0;
  if (upstream < 0) {
    for (int k = 0; k < messages && downstream >= 0; ++k) {
      const std::vector<std::uint8_t> m = message_of(k, slot);
      const std::size_t half = m.size() / 2;
      ring.send({{m.data(), half}, {m.data() + half, m.size() - half}});  // two pieces, back to back
    }
    if (downstream >= 0) ring.send({}, true);
  } else {
    double waited = 0;
    for (;;) {
      const SlotRing::Message m = ring.receive(waited);
      EXPECT_GE(waited, 0.0);
      if (m.last) {
        EXPECT_EQ(m.bytes, 0u);
        ring.release();
        if (downstream >= 0) ring.send({}, true);
        break;
      }
      const std::vector<std::uint8_t> expected = message_of(count, slot);
      if (m.bytes != expected.size() || (m.bytes > 0 && std::memcmp(m.data, expected.data(), m.bytes) != 0))
        ++mismatches;
      const auto* bytes = reinterpret_cast<const std::uint8_t*>(m.data);
      std::vector<std::uint8_t> copy(bytes, bytes + m.bytes);
      ring.release();
      if (downstream >= 0) ring.send({{copy.data(), copy.size()}});
      ++count;
    }
    EXPECT_EQ(count, messages);
    EXPECT_EQ(mismatches, 0);
  }
  ring.free();
  EXPECT_FALSE(ring.valid());
  EXPECT_EQ(Window::live_count(), 0);
}

// Ranks that size their slots from their own share get the largest size any rank asked for.
// One ring, three streams (the pipeline's probe runs twice, then the inference): after restart()
// each stream goes down the chain in order, its end mark included; sending or receiving after the
// end mark without a restart is refused, and so is a restart while a message is held.
TEST(SlotRing, RestartCarriesSeveralStreamsThroughOneRing) {
  const int rank = world_rank(), ranks = world_size();
  const int upstream = rank > 0 ? rank - 1 : -1, downstream = rank + 1 < ranks ? rank + 1 : -1;
  constexpr std::size_t slot = 64;
  SlotRing ring(MPI_COMM_WORLD, upstream, downstream, 2, slot);
  for (int stream = 0; stream < 3; ++stream) {
    ring.restart();
    const int messages = 5 + stream;  // not a multiple of the slots: streams start mid-ring
    int count = 0, mismatches = 0;
    if (upstream < 0) {
      for (int k = 0; k < messages && downstream >= 0; ++k) {
        const std::vector<std::uint8_t> m = message_of(k + stream, slot);
        ring.send({{m.data(), m.size()}});
      }
      if (downstream >= 0) {
        ring.send({}, true);
        EXPECT_THROW(ring.send({}), std::logic_error);  // the stream has ended
      }
    } else {
      for (double waited = 0;;) {
        const SlotRing::Message m = ring.receive(waited);
        if (stream == 0 && count == 0) {
          EXPECT_THROW(ring.restart(), std::logic_error);  // a message is held
        }
        if (m.last) {
          ring.release();
          if (downstream >= 0) ring.send({}, true);
          double no_wait = 0;
          EXPECT_THROW(ring.receive(no_wait), std::logic_error);  // the stream has ended
          break;
        }
        const std::vector<std::uint8_t> expected = message_of(count + stream, slot);
        if (m.bytes != expected.size() || (m.bytes > 0 && std::memcmp(m.data, expected.data(), m.bytes) != 0))
          ++mismatches;
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(m.data);
        std::vector<std::uint8_t> copy(bytes, bytes + m.bytes);
        ring.release();
        if (downstream >= 0) ring.send({{copy.data(), copy.size()}});
        ++count;
      }
      EXPECT_EQ(count, messages) << "stream " << stream;
      EXPECT_EQ(mismatches, 0) << "stream " << stream;
    }
  }
  ring.free();
  EXPECT_EQ(Window::live_count(), 0);
}

TEST(SlotRing, SlotsAsLargeAsTheLargestAsked) {
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  SlotRing ring(MPI_COMM_WORLD, -1, -1, 2, 8 * static_cast<std::size_t>(rank) + 5);
  EXPECT_EQ(ring.slot_bytes(), 8 * static_cast<std::size_t>(ranks));  // 8 (ranks - 1) + 5, rounded up to 8
  ring.free();
}

TEST(SlotRing, RefusesOversizedMessagesAndMisuse) {
  const int rank = world_rank(), ranks = world_size();
  const int upstream = rank > 0 ? rank - 1 : -1, downstream = rank + 1 < ranks ? rank + 1 : -1;
  SlotRing ring(MPI_COMM_WORLD, upstream, downstream, 2, 16);
  std::vector<char> big(17);
  if (downstream >= 0) {
    EXPECT_THROW(ring.send({{big.data(), big.size()}}), std::invalid_argument);
    ring.send({{big.data(), 16}}, true);
    EXPECT_THROW(ring.send({}), std::logic_error);  // after the end of the stream
  } else {
    EXPECT_THROW(ring.send({}), std::logic_error);  // no downstream rank
  }
  if (upstream >= 0) {
    EXPECT_THROW(ring.release(), std::logic_error);  // nothing held
    double waited = 0;
    const SlotRing::Message m = ring.receive(waited);
    EXPECT_TRUE(m.last);
    EXPECT_EQ(m.bytes, 16u);
    EXPECT_THROW(ring.receive(waited), std::logic_error);  // not released
    ring.release();
  } else {
    double waited = 0;
    EXPECT_THROW(ring.receive(waited), std::logic_error);  // no upstream rank
  }
}

TEST(SlotRing, AbortAtTheHeadReachesEveryRankOfTheChain) {
  const int rank = world_rank(), ranks = world_size();
  const int upstream = rank > 0 ? rank - 1 : -1, downstream = rank + 1 < ranks ? rank + 1 : -1;
  SlotRing ring(MPI_COMM_WORLD, upstream, downstream, 2, 64);
  int value = 7;
  if (rank == 0) {
    if (downstream >= 0) ring.send({{&value, sizeof value}});  // one good message first
    ring.abort();
  } else {
    double waited = 0;
    const SlotRing::Message m = ring.receive(waited);
    EXPECT_EQ(m.bytes, sizeof value);
    ring.release();
    if (downstream >= 0) ring.send({{&value, sizeof value}});  // passed on, then the abort follows
    bool peer_failed = false;
    try {
      ring.receive(waited);
    } catch (const PeerFailure&) {
      peer_failed = true;
      ring.abort();  // passes it on down the chain
    }
    EXPECT_TRUE(peer_failed);
  }
  // The tail's abort reaches back up as well: a sender blocked on credit would throw. Here the
  // head sends into a full ring after everyone aborted.
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0 && downstream >= 0) {
    EXPECT_THROW({
      for (int k = 0; k < 4; ++k) ring.send({{&value, sizeof value}});
    }, PeerFailure);
  }
}

TEST(SlotRing, BadArgumentsAreRefusedOnEveryRank) {
  const int rank = world_rank();
  // Rank 0 alone passes zero slots: every rank throws, none waits in the window's creation.
  EXPECT_THROW(SlotRing(MPI_COMM_WORLD, -1, -1, rank == 0 ? 0 : 2, 8), std::invalid_argument);
  EXPECT_THROW(SlotRing(MPI_COMM_WORLD, rank, -1, 2, 8), std::invalid_argument);  // itself upstream
  EXPECT_EQ(Window::live_count(), 0);
}

}  // namespace
}  // namespace sdnn
