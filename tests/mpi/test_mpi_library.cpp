// test_mpi_library.cpp: src/comm/mpi_library.hpp under a real MPI library (mpirun, any number of
// ranks): mpi_seconds() is MPI_Wtime and advances with the wall clock, the library is not taken
// for SimGrid's SMPI, and win_sync() is MPI_Win_sync on a live window. Its SMPI side (the simulated
// clock, the fence in place of MPI_Win_sync, flush_all by target) is run by tests/sim_tests.sh.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <thread>

#include "comm/mpi_library.hpp"
#include "comm/window.hpp"

namespace sdnn {
namespace {

TEST(MpiLibrary, ClockIsMpiWtimeAndFollowsTheWallClock) {
  const double start = mpi_seconds();
  const double wtime = MPI_Wtime();
  EXPECT_NEAR(start, wtime, 0.01);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double elapsed = mpi_seconds_since(start);
  EXPECT_GE(elapsed, 0.019);
  EXPECT_LT(elapsed, 5.0);
}

TEST(MpiLibrary, RealMpiIsNotSimulated) {
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  ASSERT_EQ(MPI_Get_library_version(version, &length), MPI_SUCCESS);
  EXPECT_FALSE(mpi_is_simulated()) << version;
}

TEST(MpiLibrary, WinSyncOnALiveWindow) {
  Window window(MPI_COMM_WORLD, 64);
  EXPECT_EQ(win_sync(window.handle()), MPI_SUCCESS);
  EXPECT_NO_THROW(window.sync());
  EXPECT_NO_THROW(window.barrier());
  window.free();
}

}  // namespace
}  // namespace sdnn
