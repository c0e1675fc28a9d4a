// test_sub_communicator.cpp: SubCommunicator (src/comm/mpi_session.hpp), the row groups of the
// data x model strategy's --reuse: MPI_COMM_WORLD split by parity of the rank, element-wise sums
// and minimums within each part only, in place, with any number of ranks; freed by its destructor.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "comm/mpi_session.hpp"

namespace sdnn {
namespace {

TEST(SubCommunicator, SumsAndMinimumsStayWithinTheirPart) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int colour = rank % 2;
  SubCommunicator part(colour, rank);
  int part_size = 0;
  MPI_Comm_size(part.comm(), &part_size);
  int expected_size = 0;
  std::uint64_t expected_sum = 0;
  std::uint8_t expected_min = 255;
  for (int r = colour; r < size; r += 2) {
    ++expected_size;
    expected_sum += static_cast<std::uint64_t>(r) + 1;
    expected_min = std::min<std::uint8_t>(expected_min, static_cast<std::uint8_t>(r % 3 == 0 ? 0 : 1));
  }
  EXPECT_EQ(part_size, expected_size);
  // Large enough to matter, with a value past 2^32 to see 64-bit sums.
  std::vector<std::uint64_t> values(1000, static_cast<std::uint64_t>(rank) + 1);
  values[7] = (std::uint64_t{1} << 40) * (static_cast<std::uint64_t>(rank) + 1);
  part.sum_in_place(values);
  EXPECT_EQ(values[0], expected_sum);
  EXPECT_EQ(values[999], expected_sum);
  EXPECT_EQ(values[7], (std::uint64_t{1} << 40) * expected_sum);
  std::vector<std::uint8_t> verdicts(5, static_cast<std::uint8_t>(rank % 3 == 0 ? 0 : 1));
  verdicts[4] = 1;
  part.min_in_place(verdicts);
  EXPECT_EQ(verdicts[0], expected_min);
  EXPECT_EQ(verdicts[4], 1);
  std::vector<std::uint64_t> empty;
  part.sum_in_place(empty);  // nothing to send: no call, no hang
  EXPECT_TRUE(empty.empty());
}

}  // namespace
}  // namespace sdnn
