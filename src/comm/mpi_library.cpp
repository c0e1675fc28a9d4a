// mpi_library.cpp: see mpi_library.hpp.
#include "comm/mpi_library.hpp"

#include <atomic>
#include <chrono>
#include <cstring>

namespace sdnn {

double mpi_seconds() {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (initialised && !finalised) return MPI_Wtime();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double mpi_seconds_since(double start) { return mpi_seconds() - start; }

bool mpi_is_simulated() {
  static const bool simulated = [] {
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
    int length = 0;
    return MPI_Get_library_version(version, &length) == MPI_SUCCESS && std::strncmp(version, "SMPI", 4) == 0;
  }();
  return simulated;
}

int win_sync(MPI_Win win) {
  if (!mpi_is_simulated()) return MPI_Win_sync(win);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return MPI_SUCCESS;
}

}  // namespace sdnn
