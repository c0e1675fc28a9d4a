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
#include "spmm/engine.hpp"

namespace sdnn {

struct Grid {
  int rows = 1, columns = 1;  // D row groups x M column blocks
};

// Which columns of Y_{l-1} one rank pulls for one layer, from whom: computed once, before the
// layer loop, from W alone.
struct PullPlan {
  struct Range {
    int peer;           // rank in MPI_COMM_WORLD
    Index first, last;  // the peer's local columns [first, last)
  };
  std::vector<Range> ranges;   // in the order of the pulled matrix's columns
  Index pulled_columns = 0;    // sum of range lengths
  Index local_columns = 0;     // needed columns this rank owns
  CscMatrix local_weights;     // rows: this rank's own columns (local numbering)
  CscMatrix remote_weights;    // rows: the pulled columns, in plan order
};

// The plan of one layer for the rank at (row group, column block `block`): `weights` is the
// rank's column block of W (N x C, CSC, rows in global neuron ids).
PullPlan plan_pulls(const CscMatrix& weights, Index neurons, const Grid& grid, int row_group, int block);

// Runs every layer; returns this rank's final block (group rows x block columns, CSR, local
// numbering) and fills figures (compute and communication time, bytes, messages, per layer).
// Collective over MPI_COMM_WORLD.
CsrMatrix run_data_model(const MpiSession& mpi, const LoadedProblem& problem, const Grid& grid,
                         const EngineOptions& engine, bool overlap, RankFigures& figures);

}  // namespace sdnn
