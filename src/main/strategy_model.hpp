// strategy_model.hpp: the data x model strategy. A grid of D x M ranks: rank (d, m) = d*M + m
// holds, for every layer, the columns of W in column block m, and computes by right
// multiplication (CSC) its column block of Y_l for the rows of row group d. The columns of
// Y_{l-1} that its W columns need (the nonzero rows of its W block) and that other ranks of its
// row group own are pulled with MPI_Get from windows that expose every rank's CSC block.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/mpi_session.hpp"
#include "main/load.hpp"
#include "main/report.hpp"
#include "partition/pull_plan.hpp"
#include "spmm/engine.hpp"

namespace sdnn {

// Runs every layer; returns this rank's final block (group rows x block columns, CSR, local
// numbering) and fills figures (compute and communication time, bytes, messages, per layer).
// Collective over MPI_COMM_WORLD.
CsrMatrix run_data_model(const MpiSession& mpi, const LoadedProblem& problem, const Grid& grid,
                         const EngineOptions& engine, bool overlap, RankFigures& figures);
// The same for the rank `rank` of MPI_COMM_WORLD, where no MpiSession exists (the MPI tests).
CsrMatrix run_data_model(int rank, const LoadedProblem& problem, const Grid& grid, const EngineOptions& engine,
                         bool overlap, RankFigures& figures);

}  // namespace sdnn
