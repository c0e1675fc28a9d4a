// sdnn.cpp: the sdnn program. One driver for every way of running: run() is a pipeline that
// asks the strategy (main/strategy.hpp: data x data, data x model, data x pipeline stages) for
// its share of the problem, checks outputs and memory, loads the problem with every rank parsing
// a share (main/load.cpp), describes it, runs the strategy, undoes the hashing, gathers the
// categories, checks them (the serial verifier on the rows the strategy names, the official
// truth), writes the outputs and prints the figures (main/report.cpp), last a "summary key=value
// ..." line for scripts.
//
// Errors: every phase ends with a collective agreement, so a fault on any rank (bad file, failed
// allocation) reaches every rank, which all exit non-zero with one message, no hang.
#include <omp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "comm/mpi_library.hpp"
#include "comm/mpi_session.hpp"
#include "comm/window.hpp"
#include "hash/hash.hpp"
#include "io/archive.hpp"
#include "io/generate.hpp"
#include "io/input_error.hpp"
#include "io/output_file.hpp"
#include "io/tsv.hpp"
#include "main/commands.hpp"
#include "main/load.hpp"
#include "main/memory.hpp"
#include "main/options.hpp"
#include "main/report.hpp"
#include "main/shared_network.hpp"
#include "main/strategy.hpp"
#include "partition/row_partition.hpp"
#include "spmm/dense_rows.hpp"
#include "spmm/engine.hpp"
#include "spmm/reference.hpp"

namespace sdnn {
namespace {

struct PhaseFailed {};  // a phase failed on some rank; the message has been printed

// Runs `work` on every rank, then agrees: when it threw on any rank, rank 0 prints the message of
// the lowest rank that failed on its own (not through PeerFailure) and every rank throws
// PhaseFailed.
template <class Work>
void phase(const MpiSession& mpi, Work&& work) {
  bool failed = false, peer_failed = false;
  std::string message;
  try {
    work();
  } catch (const PeerFailure&) {
    peer_failed = true;
  } catch (const std::bad_alloc&) {
    failed = true;
    message = "out of memory (a rank could not allocate what the run needs)";
  } catch (const std::exception& e) {
    failed = true;
    message = e.what();
  }
  const std::string first = mpi.first_failure(failed, message);
  if (!first.empty() || peer_failed) {
    if (mpi.is_root()) std::fprintf(stderr, "sdnn: error: %s\n", first.c_str());
    throw PhaseFailed{};
  }
}

// Refuses, before any work, an output (--out, --out-activations, --report and its CSV) that is not
// a new name or an existing regular file, that is the same file as one the run reads, or that is
// the same file as another output (io/output_file.hpp).
void check_outputs(const Options& o) {
  std::vector<ReadFile> reads = {{o.input_path, "--input"}, {o.truth_path, "--truth"}};
  if (!o.generated()) {
    struct stat info {};
    const bool folder = ::stat(o.network_dir.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
    if (!folder) reads.push_back({o.network_dir, "--network"});  // an archive, .sdnn or .tar.gz
    else  // each layer as it will be read: nN-lK.tsv, or nN-lK.tsv.gz where only that exists
      for (Index l = 1; l <= o.layers; ++l) reads.push_back({layer_file(o.network_dir, o.neurons, l), "--network"});
  }
  std::vector<WrittenFile> outputs = {{o.out_path, "--out"}, {o.out_activations_path, "--out-activations"}};
  if (!o.report_path.empty())
    outputs.insert(outputs.end(), {{o.report_path, "--report"}, {csv_path_of(o.report_path), "--report's CSV"}});
  for (const WrittenFile& output : outputs) {
    if (output.path.empty()) continue;
    check_output_path(output.path);
    check_not_an_input(output.path, reads);
  }
  check_distinct_outputs(outputs);
}

// The peak resident memory of this process so far, in MB (getrusage reports kilobytes on Linux).
double peak_resident_mb() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

__extension__ typedef unsigned __int128 UnsignedSum;

// The sum of every rank's exact checksum, on every rank.
double global_checksum(ExactSum mine) {
  // An __int128 as two 64-bit halves; the high half signed. Summed on rank 0 exactly.
  const std::uint64_t halves[2] = {static_cast<std::uint64_t>(mine), static_cast<std::uint64_t>(mine >> 64)};
  int ranks = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  std::vector<std::uint64_t> all(2 * static_cast<std::size_t>(ranks));
  MPI_Allgather(halves, 2, MPI_UINT64_T, all.data(), 2, MPI_UINT64_T, MPI_COMM_WORLD);
  ExactSum total = 0;
  for (int r = 0; r < ranks; ++r)
    total += static_cast<ExactSum>((static_cast<UnsignedSum>(all[2 * r + 1]) << 64) | all[2 * r]);
  return to_double(total);
}

// --- Test-only hooks (docs/testing.md); never set in real runs.
// SDNN_TEST_PERTURB=ROW: one rank adds 1 to one value of its final activations, in input row ROW
// (1-based, original numbering), at the first column it holds (the entry is created when absent,
// so an empty row becomes a category): the rank that holds the row, for the model strategy the
// one of its row group with column block 0. The verifier and the truth must then say FAIL.
// Returns 0 when unset.
Index test_perturbed_row(Index inputs) {
  const char* text = std::getenv("SDNN_TEST_PERTURB");
  if (text == nullptr || *text == '\0') return 0;
  Index row = 0;
  const char* end = text + std::strlen(text);
  const auto [stop, ec] = std::from_chars(text, end, row);
  if (ec != std::errc() || stop != end || row < 1 || row > inputs)
    throw std::invalid_argument("SDNN_TEST_PERTURB needs an input row 1.." + std::to_string(inputs) + ", not '" +
                                text + "'");
  return row;
}

// Adds 1 to entry (r, 0) of `a`, creating it when absent.
void add_one_at_first_column(CsrMatrix& a, Index r) {
  const Offset at = a.begin(r), count = a.nnz();
  if (a.end(r) > at && a.indices[at] == 0) {
    a.values[at] += 1;
    return;
  }
  a.indices.resize(count + 1);
  a.values.resize(count + 1);
  std::move_backward(a.indices.begin() + at, a.indices.begin() + count, a.indices.begin() + count + 1);
  std::move_backward(a.values.begin() + at, a.values.begin() + count, a.values.begin() + count + 1);
  a.indices[at] = 0;
  a.values[at] = 1;
  for (Index i = r + 1; i <= a.rows(); ++i) ++a.offsets[i];
}

// --out-activations FILE: the final activations of every rank in the original numbering (rows
// and neurons unhashed, 1-based), as the text of "row<TAB>neuron<TAB>value" lines sorted by row
// then neuron, values printed so that they read back exactly. Collective; the text on rank 0
// (empty elsewhere).
std::string gather_activations(const MpiSession& mpi, const CsrMatrix& mine, Index first_row, Index first_column,
                               const Permutation& rows, const Permutation& neurons) {
  std::vector<std::uint32_t> row_ids, column_ids, value_bits;
  for (Index i = 0; i < mine.rows(); ++i)
    for (Offset p = mine.begin(i); p < mine.end(i); ++p) {
      std::uint32_t bits = 0;
      std::memcpy(&bits, &mine.values[p], sizeof bits);
      row_ids.push_back(rows.inverse(first_row + i));
      column_ids.push_back(neurons.inverse(first_column + mine.indices[p]));
      value_bits.push_back(bits);
    }
  row_ids = mpi.gather_to_root(row_ids);
  column_ids = mpi.gather_to_root(column_ids);
  value_bits = mpi.gather_to_root(value_bits);
  std::string text;
  if (!mpi.is_root()) return text;
  std::vector<std::size_t> order(row_ids.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return row_ids[a] != row_ids[b] ? row_ids[a] < row_ids[b] : column_ids[a] < column_ids[b];
  });
  char line[64];
  for (std::size_t k : order) {
    float value = 0;
    std::memcpy(&value, &value_bits[k], sizeof value);
    text.append(line, static_cast<std::size_t>(std::snprintf(line, sizeof line, "%u\t%u\t%.9g\n", row_ids[k] + 1,
                                                               column_ids[k] + 1, static_cast<double>(value))));
  }
  return text;
}

// What the run checks before loading anything, on every rank.
struct Preflight {
  std::string simd;          // the SIMD target of the dense-panel kernel (docs/simd.md)
  Index perturbed_row = 0;   // SDNN_TEST_PERTURB (test only)
  std::vector<Index> truth;  // --truth, on rank 0
  MemoryEstimate estimate;
};

// Refuses bad outputs (every rank: rank 0 writes, and all refuse together) and a run that cannot
// fit, before loading anything; reads --truth on rank 0.
Preflight check_before_loading(const MpiSession& mpi, const Options& o, const Grid& grid, int threads) {
  Preflight before;
  before.simd = simd_target();
  before.perturbed_row = test_perturbed_row(o.inputs);
  check_outputs(o);
  if (mpi.is_root() && !o.truth_path.empty()) before.truth = read_categories(o.truth_path, o.inputs);
  const MemoryEstimate need = before.estimate = estimate_memory(o, mpi.size(), mpi.node_size(), grid.columns, threads);
  const std::uint64_t limit =
      o.max_memory ? o.max_memory : available_memory() / static_cast<std::uint64_t>(mpi.node_size());
  if (limit > 0 && need.total() > limit)
    throw std::runtime_error("not enough memory: the run needs about " + format_bytes(need.total()) +
                             " per rank (network " + format_bytes(need.network_bytes) + ", input " +
                             format_bytes(need.input_bytes) + ", loading " + format_bytes(need.loading_bytes) +
                             ", work " + format_bytes(need.work_bytes) + "; " + format_bytes(need.row_bytes) +
                             " of it for the " + std::to_string(o.inputs) + " --inputs rows) and " +
                             format_bytes(limit) + " is available per rank" + (o.max_memory ? " (--max-memory)" : "") +
                             "; use more ranks or nodes, fewer --inputs or --threads, --share-network, or "
                             "--max-memory to override");
  return before;
}

// Bytes of the weights (both formats) and biases this rank holds.
std::uint64_t network_bytes_of(const Network& network) {
  std::uint64_t bytes = 0;
  for (const Layer& layer : network)
    for (const auto* m : {&layer.weights_csr.offsets, &layer.weights_csc.offsets}) bytes += m->size() * sizeof(Offset);
  for (const Layer& layer : network)
    bytes += (layer.weights_csr.nnz() + layer.weights_csc.nnz()) * (sizeof(Index) + sizeof(Value)) +
             layer.bias.size() * sizeof(Value);
  return bytes;
}

// Collective: the figures of the loaded problem. Rank 0 warns when the input holds fewer rows
// than --inputs: the rate counts all --inputs rows, so the count to give is said.
ProblemFigures measure_problem(const MpiSession& mpi, const Options& o, const LoadPlan& plan,
                               const LoadedProblem& problem, std::uint64_t network_bytes) {
  ProblemFigures f;
  f.network_s = problem.network_s;
  f.input_s = problem.input_s;
  f.network_mb = static_cast<double>(network_bytes) / 1e6;
  const std::uint64_t input_bytes = problem.input.offsets.size() * sizeof(Offset) +
                                    problem.input.nnz() * (sizeof(Index) + sizeof(Value));
  f.read_s = mpi.max(problem.network_s + problem.input_s);
  // Bytes of files (TSV or archive) read by all ranks together, over the slowest rank's read time.
  f.read_mb = static_cast<double>(mpi.sum(problem.bytes_parsed)) / 1e6;
  f.read_mb_s = f.read_s > 0 ? f.read_mb / f.read_s : 0;
  f.largest_input_mb = mpi.max(static_cast<double>(input_bytes) / 1e6);
  // Rows of the input holding any entry, and the last of them (original numbering).
  std::uint64_t my_input_rows = 0;
  double my_last_row = 0;
  if (plan.column_group == 0)  // the ranks of a row group hold the same rows: count them once
    for (Index r = 0; r < problem.input.rows(); ++r)
      if (problem.input.end(r) > problem.input.begin(r)) {
        ++my_input_rows;
        my_last_row = std::max(my_last_row, static_cast<double>(plan.rows.inverse(problem.rows.first + r)) + 1);
      }
  f.input_rows = mpi.sum(my_input_rows);
  const auto last_input_row = static_cast<std::uint64_t>(mpi.max(my_last_row));
  if (mpi.is_root() && !o.generated() && last_input_row < o.inputs)
    std::fprintf(stderr,
                 "sdnn: warning: %s: %llu of the --inputs %u rows are empty (its last entry is in row %llu); they "
                 "count as inputs in the rate: give --inputs %llu for the true count\n",
                 o.input_path.c_str(), static_cast<unsigned long long>(o.inputs - f.input_rows), o.inputs,
                 static_cast<unsigned long long>(last_input_row),
                 static_cast<unsigned long long>(std::max<std::uint64_t>(last_input_row, 1)));
  return f;
}

// The engine's options for the strategy's format and parallelism; progress on rank 0's terminal.
EngineOptions engine_options(const MpiSession& mpi, const Options& o, const Strategy& strategy, int threads) {
  EngineOptions engine;
  engine.format = strategy.format();
  engine.parallel = strategy.parallel();
  engine.threads = threads;
  engine.block_rows = o.block_rows;
  engine.reuse = o.reuse;
  if (mpi.is_root() && !o.quiet && ::isatty(2))
    engine.progress = [](double fraction, const std::string& label) {
      std::fprintf(stderr, "\r[sdnn] rank 0: %3.0f%% %s", 100 * fraction, label.c_str());
      std::fflush(stderr);
    };
  return engine;
}

// SDNN_TEST_PERTURB (test only): one value of one rank's result made wrong, on the rank that
// holds the input row (for the model strategy, the one of its row group with column block 0).
void perturb_for_test(Index perturbed_row, const LoadPlan& plan, const LoadedProblem& problem, RankResult& result) {
  if (perturbed_row == 0) return;
  const Index hashed = plan.rows(perturbed_row - 1);
  const bool mine = hashed >= problem.rows.first && hashed < problem.rows.last && plan.column_group == 0;
  if (!mine || result.final_rows.cols() == 0) return;
  add_one_at_first_column(result.final_rows, hashed - problem.rows.first);
  result.categories = categories_of(result.final_rows);
  result.exact_sum = exact_sum_of(result.final_rows);
}

// Collective: the categories of every rank in the original numbering (local row r is hashed row
// rows.first + r), sorted, on rank 0; a row in several column blocks counted once.
std::vector<Index> gather_categories(const MpiSession& mpi, const LoadPlan& plan, const LoadedProblem& problem,
                                     const std::vector<Index>& mine) {
  std::vector<Index> local_categories;
  for (Index r : mine) local_categories.push_back(plan.rows.inverse(problem.rows.first + r));
  std::vector<Index> categories = mpi.gather_to_root(local_categories);
  std::sort(categories.begin(), categories.end());
  categories.erase(std::unique(categories.begin(), categories.end()), categories.end());
  return categories;
}

// Collective: the serial verifier, each rank on the rows (and columns) its strategy says; rank 0
// prints the verdict and the first difference. Returns "PASS" or "FAIL".
std::string verify(const MpiSession& mpi, const Strategy& strategy, const LoadPlan& plan, const LoadedProblem& problem,
                   const CsrMatrix& final_rows) {
  std::string difference;
  double verify_s = 0;
  phase(mpi, [&] {
    const double start = mpi_seconds();
    difference = strategy.verifier_difference(plan, problem, final_rows);
    verify_s = mpi_seconds_since(start);
  });
  verify_s = mpi.max(verify_s);
  const std::string first = mpi.first_failure(!difference.empty(), difference);
  const std::string verdict = first.empty() ? "PASS" : "FAIL";
  if (mpi.is_root()) {
    std::printf("Verifier: %s (serial verifier %.3f s)\n", verdict.c_str(), verify_s);
    if (!first.empty()) std::printf("  first difference (hashed, rank-local numbering): %s\n", first.c_str());
  }
  return verdict;
}

// Collective: inference on this rank's share, timed (compute_s: the whole, less communication),
// then the wait for the slowest rank (idle_s). figures start with the share's sizes.
RankResult infer_share(const MpiSession& mpi, Strategy& strategy, const LoadedProblem& problem,
                       const EngineOptions& engine, bool keep_final_rows, RankFigures& figures) {
  figures.rank = mpi.rank();
  figures.rows_owned = problem.rows.size();
  figures.columns_owned = problem.columns.size();
  figures.load_bytes_parsed = problem.bytes_parsed;
  figures.load_bytes_pulled = problem.bytes_pulled;
  RankResult result;
  phase(mpi, [&] {
    mpi.barrier();
    const double start = mpi_seconds();
    result = strategy.run(problem, engine, keep_final_rows, figures);
    figures.compute_s = mpi_seconds_since(start) - figures.comm_s;
    strategy.release_buffers();
  });
  const double start = mpi_seconds();
  mpi.barrier();  // the wait for the slowest rank
  figures.idle_s = mpi_seconds_since(start);
  if (engine.progress) std::fprintf(stderr, "\n");
  return result;
}

// Collective: --out-activations, written by rank 0.
void write_activations(const MpiSession& mpi, const Options& o, const LoadPlan& plan, const LoadedProblem& problem,
                       const CsrMatrix& final_rows) {
  if (o.out_activations_path.empty()) return;
  const std::string text =
      gather_activations(mpi, final_rows, problem.rows.first, problem.columns.first, plan.rows, plan.neurons);
  phase(mpi, [&] {
    if (mpi.is_root()) write_file_atomically(o.out_activations_path, text);
  });
}

// Collective: rank 0 compares the categories with --truth and writes --out and --report. Returns
// the Challenge verdict ("none" without --truth; meaningful on rank 0).
std::string write_outputs(const MpiSession& mpi, const Options& o, const std::vector<Index>& categories,
                          const std::vector<Index>& truth, const RunDescription& description,
                          const std::vector<RankFigures>& ranks) {
  std::string challenge = "none";
  phase(mpi, [&] {
    if (!mpi.is_root()) return;
    if (!o.truth_path.empty()) challenge = categories == truth ? "PASS" : "FAIL";
    if (!o.out_path.empty()) write_categories(o.out_path, categories);
    if (!o.report_path.empty()) write_report(o.report_path, description, ranks, o.report_layers);
  });
  return challenge;
}

// The pipeline of a run: strategy, checks before loading, load, describe, infer, verify, write
// the outputs, report. Every phase agrees on failure (phase), so every rank leaves together.
int run(const MpiSession& mpi, const Options& o, int threads) {
  const bool root = mpi.is_root();
  std::unique_ptr<Strategy> strategy;
  try {
    strategy = make_strategy(o, mpi);
  } catch (const std::invalid_argument& e) {  // a grid that does not fit the ranks, a stage without layers
    if (root) std::fprintf(stderr, "sdnn: error: %s\n", e.what());
    return 2;
  }
  const LoadPlan plan = strategy->load_plan(threads);
  RunResults results;
  RunDescription& description = results.run;
  description = {o.strategy, to_string(strategy->format()), to_string(strategy->parallel()), o.hash,
                 strategy->grid_name(), o.neurons, o.layers, o.inputs, mpi.size(), threads};
  results.between_ranks = strategy->between_ranks();
  Preflight before;
  phase(mpi, [&] { before = check_before_loading(mpi, o, strategy->grid(), threads); });
  results.simd = before.simd;
  results.truth_categories = before.truth.size();
  results.estimate_mb = static_cast<double>(before.estimate.total()) / 1e6;

  LoadedProblem problem;
  double prepare_s = 0;  // the weights' formats and column groups, before the timed inference
  phase(mpi, [&] {
    problem = load_problem(mpi, o, plan);
    const double start = mpi_seconds();
    strategy->prepare_weights(problem, engine_options(mpi, o, *strategy, threads));
    prepare_s = mpi_seconds_since(start);
  });
  description.prepare_s = mpi.max(prepare_s);
  SharedNetwork shared;  // lives to the end of the run; freed collectively
  if (o.share_network) phase(mpi, [&] { shared = share_network(problem.network, o.layers, o.neurons); });
  NetworkHeld network{network_bytes_of(problem.network), 0, 0, o.share_network ? &shared : nullptr};
  results.problem = measure_problem(mpi, o, plan, problem, network.bytes);
  network.largest_mb = mpi.max(static_cast<double>(network.bytes) / 1e6);
  network.all_mb = mpi.sum(static_cast<double>(network.bytes) / 1e6);
  description.read_s = results.problem.read_s;
  results.connections = problem.connections;
  if (root) print_problem(o, description, results.between_ranks, results.problem, strategy->network_line(network));
  if (o.load_only) {
    const double peak_mb = mpi.max(peak_resident_mb());
    if (root) print_load_only(o, description, results.problem, peak_mb, results.estimate_mb);
    return 0;
  }

  // The final rows are kept for the verifier, --out-activations and the test-only perturbation.
  const bool keep_final_rows = o.verify || !o.out_activations_path.empty() || before.perturbed_row != 0;
  RankFigures figures;
  RankResult result =
      infer_share(mpi, *strategy, problem, engine_options(mpi, o, *strategy, threads), keep_final_rows, figures);
  perturb_for_test(before.perturbed_row, plan, problem, result);
  description.infer_s = mpi.max(figures.compute_s + figures.comm_s);
  description.rate = description.infer_s > 0 ? static_cast<double>(o.inputs) *
                                                   static_cast<double>(problem.connections) / description.infer_s : 0;
  const std::vector<Index> categories = gather_categories(mpi, plan, problem, result.categories);
  description.categories = categories.size();
  results.checksum = global_checksum(result.exact_sum);
  results.active_nonzeros = mpi.sum(static_cast<std::uint64_t>(figures.active_nonzeros));
  results.rows_computed = mpi.sum(static_cast<std::uint64_t>(figures.rows_computed));
  if (o.verify) results.verdict = verify(mpi, *strategy, plan, problem, result.final_rows);

  write_activations(mpi, o, plan, problem, result.final_rows);
  results.strategy_fields = strategy->report_own_figures(figures);  // the pipeline's lines per stage
  const std::vector<RankFigures> ranks = gather_figures(mpi, figures, o.report_layers);
  results.challenge = write_outputs(mpi, o, categories, before.truth, description, ranks);
  results.peak_mb = mpi.max(peak_resident_mb());
  results.peak_all_mb = mpi.sum(peak_resident_mb());
  if (root) print_results(o, results, ranks);
  return (results.verdict == "FAIL" || results.challenge == "FAIL") ? 1 : 0;
}

}  // namespace
}  // namespace sdnn

int main(int argc, char** argv) {
  sdnn::MpiSession mpi(&argc, &argv);
  if (argc > 1 && sdnn::is_subcommand(argv[1]))  // sdnn generate ..., sdnn convert ...
    return sdnn::run_subcommand(mpi, std::vector<std::string>(argv + 1, argv + argc));
  sdnn::Options options;
  try {
    options = sdnn::parse_options(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    if (mpi.is_root()) std::fprintf(stderr, "sdnn: error: %s\n", e.what());
    return 2;
  }
  if (!options.window_backend.empty()) sdnn::set_window_backend(sdnn::parse_window_backend(options.window_backend));
  if (options.help) {
    if (mpi.is_root()) std::fputs(sdnn::usage_text().c_str(), stdout);
    return 0;
  }
  // Default threads: OMP_NUM_THREADS when set, else the node's cores divided among its ranks.
  int threads = options.threads;
  if (threads == 0) threads = std::getenv("OMP_NUM_THREADS") ? omp_get_max_threads()
                                                              : std::max(1, omp_get_num_procs() / mpi.node_size());
  try {
    return sdnn::run(mpi, options, threads);
  } catch (const sdnn::PhaseFailed&) {
    return 1;
  }
}
