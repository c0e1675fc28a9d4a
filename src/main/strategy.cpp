// strategy.cpp: the three strategies behind the Strategy interface (see strategy.hpp) and the
// factory that checks their grids. Data x data runs the engine (spmm/engine.hpp) on each rank's
// row shard with the whole network; data x model and the pipeline call run_data_model and
// run_pipeline and say which rows and columns each rank checks against the serial verifier.
#include "main/strategy.hpp"

#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <stdexcept>
#include <utility>

#include "hash/hash.hpp"
#include "io/generate.hpp"
#include "main/row_engine.hpp"
#include "main/strategy_model.hpp"
#include "main/strategy_pipeline.hpp"
#include "spmm/reference.hpp"

namespace sdnn {
namespace {

// printf's text as a string (the lines a strategy hands the driver to print).
template <class... Args>
std::string format_line(const char* format, Args... args) {
  char line[512];
  std::snprintf(line, sizeof line, format, args...);
  return line;
}

// Columns [first, last) of a CSR matrix, renumbered from 0.
CsrMatrix columns_of(const CsrMatrix& a, Index first, Index last) {
  CsrMatrix out(a.rows(), last - first);
  for (Index i = 0; i < a.rows(); ++i) {
    for (Offset p = a.begin(i); p < a.end(i); ++p)
      if (a.indices[p] >= first && a.indices[p] < last) {
        out.indices.push_back(a.indices[p] - first);
        out.values.push_back(a.values[p]);
      }
    out.offsets[i + 1] = out.indices.size();
  }
  return out;
}

// Data x data: every rank a contiguous shard of the input rows and the whole network; the
// engine runs on the shard with the rank's threads, no communication inside the layer loop.
class DataStrategy final : public Strategy {
 public:
  DataStrategy(const Options& options, const MpiSession& mpi) : Strategy(options, mpi, Grid{mpi.size(), 1}) {}

  void prepare_weights(LoadedProblem& problem, const EngineOptions&) override {
    sdnn::prepare_weights(problem.network,
                          options_.format == Format::csr || options_.verify || options_.share_network, true);
  }

  RankResult run(const LoadedProblem& problem, const EngineOptions& engine, bool keep_final_rows,
                 RankFigures& figures) override {
    return infer_rows(problem, engine, keep_final_rows, figures, &kept_session_);
  }

  std::string verifier_difference(const LoadPlan&, const LoadedProblem& problem,
                                  const CsrMatrix& final_rows) const override {
    return first_difference(reference_inference(problem.network, problem.input), final_rows);
  }

  bool between_ranks() const override { return false; }

 protected:
  void assign_share(LoadPlan& plan) const override {
    plan.row_groups = mpi_.size();
    plan.row_group = mpi_.rank();
  }
};

// Data x model (strategy_model.hpp): rank (d, m) holds column block m of every layer and computes
// its column block of Y for the rows of row group d, csc/model on every rank. On a grid of one
// column block (D x 1) there is nothing to exchange between column blocks: each rank runs its row
// group through the data strategy's engine loop (infer_rows), CSR with dense panels, which keeps a
// block of rows in cache through every layer where the column-block loop streams all the group's
// rows through each layer in turn.
class ModelStrategy final : public Strategy {
 public:
  // Throws std::invalid_argument for an unknown switch in SDNN_MODEL_COMM.
  ModelStrategy(const Options& options, const MpiSession& mpi, Grid grid)
      : Strategy(options, mpi, grid), comm_(model_comm_from_environment(!options.no_overlap)) {}

  // One column block: the whole layers, CSR (left multiplication) and CSC (dense panels), as the
  // data strategy holds them; else CSC only.
  void prepare_weights(LoadedProblem& problem, const EngineOptions&) override {
    sdnn::prepare_weights(problem.network, one_column_block(), true);
    if (!one_column_block())
      for (Layer& layer : problem.network) layer.weights_csr = CsrMatrix();
  }

  // run_data_model decides how the grid runs (one column block: the data strategy's engine loop,
  // its buffers kept until release_buffers(); else the column-block loop), both at the engine's
  // density threshold.
  RankResult run(const LoadedProblem& problem, const EngineOptions& engine, bool keep_final_rows,
                 RankFigures& figures) override {
    return run_data_model(mpi_, problem, grid_, engine, comm_, keep_final_rows, figures, &kept_session_);
  }

  // The whole network loaded again (one column block), its reference restricted to this rank's columns.
  std::string verifier_difference(const LoadPlan& plan, const LoadedProblem& problem,
                                  const CsrMatrix& final_rows) const override {
    LoadPlan whole = plan;
    whole.column_groups = 1;
    whole.column_group = 0;
    LoadedProblem reference = load_problem(mpi_, options_, whole);
    const CsrMatrix expected = reference_inference(reference.network, reference.input);
    return first_difference(columns_of(expected, problem.columns.first, problem.columns.last), final_rows);
  }

  // What the ranks run: csr/data on a grid of one column block, else csc/model.
  Format format() const override { return one_column_block() ? Format::csr : Format::csc; }
  Parallelism parallel() const override { return one_column_block() ? Parallelism::data : Parallelism::model; }

 protected:
  void assign_share(LoadPlan& plan) const override {
    plan.row_groups = grid_.rows;
    plan.row_group = mpi_.rank() / grid_.columns;
    plan.column_groups = grid_.columns;
    plan.column_group = mpi_.rank() % grid_.columns;
    // Cyclic column blocks (ModelComm::cyclic_columns): block m holds the neurons j = m mod M,
    // renumbered by a deal so that they are the contiguous block m of the ids the strategy sees.
    // On RadiX-Net the neurons that share their inputs differ in the top bits of their ids and
    // agree in the low ones, so each block holds whole groups of them and the dense kernel
    // converts each input once for the group (docs/strategies.md, issue 10, eighth pass).
    if (comm_.cyclic_columns && plan.neurons.is_identity() && grid_.columns > 1 && options_.neurons % grid_.columns == 0)
      plan.neurons = Permutation::deal(options_.neurons, static_cast<std::uint64_t>(grid_.columns));
  }

 private:
  bool one_column_block() const { return grid_.columns == 1; }
  ModelComm comm_;  // SDNN_MODEL_COMM's switches
};

// Data x pipeline stages (strategy_pipeline.hpp): rank (d, s) holds the layers of stage s and,
// on stage 0, the input rows of row group d; the last stage holds the survivors.
class PipelineStrategy final : public Strategy {
 public:
  PipelineStrategy(const Options& options, const MpiSession& mpi, Grid grid)
      : Strategy(options, mpi, grid),
        stage_(mpi.rank() % grid.columns),
        layers_(stage_layers(options.layers, grid.columns, stage_, options.stage_starts)) {}

  // The stage's layers only; without --stage-layers, the stages are then balanced by the cost of
  // their layers (balance_stages: a probe, then layers move between the stages).
  void prepare_weights(LoadedProblem& problem, const EngineOptions& engine) override {
    Network mine(std::make_move_iterator(problem.network.begin() + layers_.first),
                 std::make_move_iterator(problem.network.begin() + layers_.last));
    problem.network = std::move(mine);
    sdnn::prepare_weights(problem.network, options_.format == Format::csr || options_.verify, true);
    // The ring between the stages, made once before the inference (docs/pipeline.md), for blocks of
    // the run's size.
    const Index group_rows = problem.rows.size();
    block_rows_ = options_.block_rows > 0 ? options_.block_rows * static_cast<Index>(engine.threads)
                                          : default_block_rows(group_rows, grid_.columns, engine.threads);
    ring_ = make_stage_ring(mpi_.rank(), grid_, problem.input.cols(), block_rows_);
    if (options_.stage_starts.empty() && grid_.columns > 1) {
      split_ = balance_stages(mpi_.rank(), grid_, problem.network, problem.input, group_rows, layers_,
                              options_.layers, engine, block_rows_, ring_);
      layers_ = split_.layers;
      sdnn::prepare_weights(problem.network, true, true);  // the layers received come in CSR
    }
  }

  RankResult run(const LoadedProblem& problem, const EngineOptions& engine, bool keep_final_rows,
                 RankFigures& figures) override {
    // Freed (collectively) on the way out, whether the stage ended or failed: every rank of every
    // row group frees it here.
    SlotRing ring = std::move(ring_);
    PipelineResult result =
        run_pipeline(mpi_, problem, grid_, layers_, options_.layers, engine, block_rows_, keep_final_rows, ring, figures);
    stage_figures_ = result.stage;
    return {std::move(result.final_rows), std::move(result.categories), result.exact_sum};
  }

  // The last stage checks its row group's survivors against the whole network; the other
  // stages take part in loading it and hold nothing.
  std::string verifier_difference(const LoadPlan& plan, const LoadedProblem&,
                                  const CsrMatrix& final_rows) const override {
    const bool last_stage = stage_ == grid_.columns - 1;
    LoadPlan whole = plan;
    whole.first_layer = 0;
    whole.last_layer = last_stage ? options_.layers : 0;
    whole.keep_input = last_stage;
    LoadedProblem reference = load_problem(mpi_, options_, whole);
    if (!last_stage) return "";
    sdnn::prepare_weights(reference.network, true, false);
    return first_difference(reference_inference(reference.network, reference.input), final_rows);
  }

  std::string network_line(const NetworkHeld& network) const override {
    return format_line("network: %.1f MB on the largest rank, %.1f MB on all ranks (each of %d stage(s) holds only "
                       "its layers: about 1/%d of the network when they hold as many)\n",
                       network.largest_mb, network.all_mb, grid_.columns, grid_.columns) +
           split_line(split_, grid_.columns, options_.layers);
  }

  // One line per stage, the split its measured layer times balance, and their summary fields.
  std::string report_own_figures(const RankFigures& figures) const override {
    return report_stages(mpi_, grid_, stage_figures_, figures.layer_compute_s);
  }

 protected:
  void assign_share(LoadPlan& plan) const override {
    plan.row_groups = grid_.rows;
    plan.row_group = mpi_.rank() / grid_.columns;
    plan.first_layer = layers_.first;  // the stage holds its layers only
    plan.last_layer = layers_.last;
    plan.keep_input = stage_ == 0;
  }

 private:
  int stage_;
  LayerRange layers_;
  StageSplit split_;  // the automatic split (empty with --stage-layers or one stage)
  Index block_rows_ = 0;  // rows per block
  SlotRing ring_;         // between this rank's stage and its neighbours (make_stage_ring)
  StageFigures stage_figures_;
};

}  // namespace

LoadPlan Strategy::load_plan(int threads) const {
  const HashMode hash = parse_hash_mode(options_.hash);
  LoadPlan plan;
  plan.rows = hashes_input(hash) ? Permutation::hashing(options_.inputs, options_.hash_seed)
                                 : Permutation::identity(options_.inputs);
  plan.neurons = hashes_network(hash) ? Permutation::hashing(options_.neurons, options_.hash_seed + 1)
                                      : Permutation::identity(options_.neurons);
  plan.bias = options_.bias ? *options_.bias : default_bias(options_.neurons);
  plan.threads = threads;
  plan.build_network = !options_.share_network || mpi_.node_rank() == 0;
  assign_share(plan);
  return plan;
}

std::string Strategy::network_line(const NetworkHeld& network) const {
  if (network.shared != nullptr)
    return format_line("network: %.1f MB, one copy shared by the %d rank(s) of each node (saves %.1f MB per node)\n",
                       static_cast<double>(network.shared->bytes) / 1e6, network.shared->ranks_on_node,
                       static_cast<double>(network.shared->bytes) * (network.shared->ranks_on_node - 1) / 1e6);
  return format_line("network: %.1f MB held by each rank\n", static_cast<double>(network.bytes) / 1e6);
}

std::string Strategy::report_own_figures(const RankFigures&) const { return ""; }

std::unique_ptr<Strategy> make_strategy(const Options& options, const MpiSession& mpi) {
  if (options.strategy == "data") return std::make_unique<DataStrategy>(options, mpi);
  // The model and pipeline grids: --grid DxM, or 1 x ranks.
  const Grid grid = options.grid_rows ? Grid{static_cast<int>(options.grid_rows), static_cast<int>(options.grid_columns)}
                                      : Grid{1, mpi.size()};
  if (grid.rows * grid.columns != mpi.size())
    throw std::invalid_argument("--grid " + std::to_string(grid.rows) + "x" + std::to_string(grid.columns) + " needs " +
                                std::to_string(grid.rows * grid.columns) + " ranks, not " + std::to_string(mpi.size()));
  if (options.strategy == "model") return std::make_unique<ModelStrategy>(options, mpi, grid);
  // The pipeline's stages: refused (stage_layers) when a stage would hold no layer.
  if (options.strategy == "pipeline") return std::make_unique<PipelineStrategy>(options, mpi, grid);
  throw std::invalid_argument("--strategy must be data, model or pipeline, not '" + options.strategy + "'");
}

}  // namespace sdnn
