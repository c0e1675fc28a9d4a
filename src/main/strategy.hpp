// strategy.hpp: the one interface through which the driver (main/sdnn.cpp) runs every strategy.
// A strategy says what the driver asks of it and nothing more: its grid of ranks and this rank's
// share of the problem (the LoadPlan's row group, column group and layers), how the loaded
// weights are prepared, the inference itself (final rows, categories, exact checksum and the
// figures of this rank), the verifier's comparison for the rows (and columns) this rank holds,
// and its own lines of the output (the network line, the pipeline's per-stage lines) and names of
// the summary (format, parallel, grid). make_strategy picks the implementation: data x data (the
// engine on each rank's row shard: infer_rows, row_engine.hpp), data x model (run_data_model,
// strategy_model.hpp; infer_rows on a grid of one column block) or data x pipeline stages (run_pipeline, strategy_pipeline.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/mpi_session.hpp"
#include "main/load.hpp"
#include "main/options.hpp"
#include "main/report.hpp"
#include "main/shared_network.hpp"
#include "partition/pull_plan.hpp"
#include "spmm/engine.hpp"

namespace sdnn {

// What one rank's inference gives back.
struct RankResult {
  CsrMatrix final_rows;            // the final activations of this rank's share (local numbering)
                                   // when kept (keep_final_rows, and always for data x model on
                                   // two or more column blocks)
  std::vector<Index> categories;   // local rows of the share that hold any nonzero, ascending
  ExactSum exact_sum = 0;          // exact checksum of the share's final values
};

// The network held by the ranks, for the strategy's network line.
struct NetworkHeld {
  std::uint64_t bytes = 0;          // this rank's
  double largest_mb = 0, all_mb = 0;  // the largest rank's, all ranks' together
  const SharedNetwork* shared = nullptr;  // --share-network: the node's one copy; else null
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  Strategy(const Strategy&) = delete;
  Strategy& operator=(const Strategy&) = delete;

  // The grid of ranks: data x data P x 1 (every rank a row shard), data x model D x M (row
  // groups x column blocks), pipeline D x P (row groups x stages); rank = d * columns + c.
  const Grid& grid() const { return grid_; }
  // This rank's share of the problem: the hashing, bias and threads of every strategy, with the
  // row group, column group and layers of this one.
  LoadPlan load_plan(int threads) const;
  // Turns the loaded layers into what run() multiplies (the weight formats it needs; a pipeline
  // stage keeps its layers only and, unless --stage-layers is given, balances its stages: a
  // collective probe and layer moves, strategy_pipeline.hpp). `engine`: as run() will get it.
  virtual void prepare_weights(LoadedProblem& problem, const EngineOptions& engine) = 0;
  // Runs inference on this rank's share and fills `figures` (compute and communication, per
  // layer). keep_final_rows: the final rows are needed afterwards (verifier, --out-activations).
  // Collective over MPI_COMM_WORLD.
  virtual RankResult run(const LoadedProblem& problem, const EngineOptions& engine, bool keep_final_rows,
                         RankFigures& figures) = 0;
  // The serial verifier on the rows (and columns) this rank holds: its first difference from
  // final_rows (reference.hpp, first_difference), "" when they agree. Collective (it may load the
  // whole network again).
  virtual std::string verifier_difference(const LoadPlan& plan, const LoadedProblem& problem,
                                          const CsrMatrix& final_rows) const = 0;

  // Names of the run, as the output and the summary print them.
  std::string grid_name() const { return std::to_string(grid_.rows) + "x" + std::to_string(grid_.columns); }
  virtual Format format() const { return options_.format; }
  virtual Parallelism parallel() const { return options_.parallel; }
  // Ranks exchange data during inference: the first line names the grid, the output the
  // communication/compute ratio.
  virtual bool between_ranks() const { return true; }
  // The "network: ..." line (rank 0 prints it).
  virtual std::string network_line(const NetworkHeld& network) const;
  // Collective: prints the strategy's own lines on rank 0 and returns its own summary fields
  // (" key=value ..."; the pipeline's per stage), "" when it has none.
  virtual std::string report_own_figures(const RankFigures& figures) const;
  // Frees what run() kept past its timed end: the engine's work buffers (data x data, and data x
  // model with one column block), whose unmapping is not inference (on a KVM guest, 0.2 to 0.4 ms
  // of a 10 ms run: every page a thread touched, and the other threads' TLBs). The driver calls
  // it once run() is timed.
  void release_buffers() { kept_session_.reset(); }

 protected:
  Strategy(const Options& options, const MpiSession& mpi, Grid grid) : options_(options), mpi_(mpi), grid_(grid) {}
  // Sets this rank's row group, column group and layers in `plan`.
  virtual void assign_share(LoadPlan& plan) const = 0;

  Options options_;
  const MpiSession& mpi_;
  Grid grid_;
  std::unique_ptr<InferenceSession> kept_session_;  // run()'s engine session, until release_buffers()
};

// The strategy that options.strategy names, for this rank. Throws std::invalid_argument (the
// driver prints it and exits 2, as for a bad command line) when the grid does not match the
// ranks or a pipeline stage would hold no layer. `mpi` must outlive the strategy.
std::unique_ptr<Strategy> make_strategy(const Options& options, const MpiSession& mpi);

}  // namespace sdnn
