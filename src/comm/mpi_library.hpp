// mpi_library.hpp: what differs between the MPI libraries sdnn runs on (a real one, or SimGrid's
// SMPI, which runs every rank of a simulated cluster as a thread of one process), behind one
// interface so that nothing above src/comm asks which. It knows nothing of networks.
//   mpi_seconds()       seconds since an arbitrary origin: MPI_Wtime while MPI is initialised
//                       (under SMPI the simulated clock, the only one that means anything there:
//                       the simulator's wall clock runs the simulated ranks one after another), a
//                       steady clock before MPI_Init and after MPI_Finalize.
//   mpi_seconds_since(start)  mpi_seconds() - start.
//   mpi_is_simulated()  true when the library is SMPI (MPI_Get_library_version begins "SMPI"):
//                       per-process figures such as resident memory are then the simulator's
//                       whole process, every simulated rank together.
//   win_sync(win)       MPI_Win_sync. SMPI 3.32 does not implement it (it warns and returns
//                       success); its ranks share one address space and its transfers are copies
//                       made by the simulator, so a memory fence is all the call has to do there.
#pragma once

#include <mpi.h>

namespace sdnn {

double mpi_seconds();
double mpi_seconds_since(double start);
bool mpi_is_simulated();
int win_sync(MPI_Win win);

}  // namespace sdnn
