// sdnn.cpp: the sdnn program. One driver for every way of running: it loads (or generates) the
// problem with every rank parsing a share (main/load.cpp), runs the chosen strategy (data x data:
// the OpenMP engine on each rank's row shard; data x model: main/strategy_model.cpp; data x
// pipeline stages: main/strategy_pipeline.cpp), undoes the
// hashing, gathers the categories, checks them (the serial verifier, the official truth), prints
// the figures and the per-rank report, last a "summary key=value ..." line for scripts.
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
#include "main/strategy_model.hpp"
#include "main/strategy_pipeline.hpp"
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

// Refuses, before any work, an output (--out, --report and its CSV) that is not a new name or an
// existing regular file, or that is the same file as one the run reads (io/output_file.hpp).
void check_outputs(const Options& o) {
  std::vector<ReadFile> reads = {{o.input_path, "--input"}, {o.truth_path, "--truth"}};
  if (!o.generated()) {
    struct stat info {};
    const bool folder = ::stat(o.network_dir.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
    if (!folder) reads.push_back({o.network_dir, "--network"});  // an archive, .sdnn or .tar.gz
    else  // each layer as it will be read: nN-lK.tsv, or nN-lK.tsv.gz where only that exists
      for (Index l = 1; l <= o.layers; ++l) reads.push_back({layer_file(o.network_dir, o.neurons, l), "--network"});
  }
  std::vector<std::string> outputs = {o.out_path, o.out_activations_path};
  if (!o.report_path.empty()) outputs.insert(outputs.end(), {o.report_path, csv_path_of(o.report_path)});
  for (const std::string& path : outputs) {
    if (path.empty()) continue;
    check_output_path(path);
    check_not_an_input(path, reads);
  }
}

// The peak resident memory of this process so far, in MB (getrusage reports kilobytes on Linux).
double peak_resident_mb() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
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

int run(const MpiSession& mpi, const Options& o, int threads) {
  const bool root = mpi.is_root();
  const bool show_progress = root && !o.quiet && ::isatty(2);
  const HashMode hash = parse_hash_mode(o.hash);
  const bool model = o.strategy == "model";
  const bool pipeline = o.strategy == "pipeline";  // grid D x P: row groups x pipeline stages

  // The grid: data x data is P x 1 (every rank a row shard, the whole network); data x model
  // is D x M (row groups x column blocks), rank = d * M + m.
  Grid grid{mpi.size(), 1};
  if (model || pipeline) {
    grid = o.grid_rows ? Grid{static_cast<int>(o.grid_rows), static_cast<int>(o.grid_columns)} : Grid{1, mpi.size()};
    if (grid.rows * grid.columns != mpi.size()) {
      if (root)
        std::fprintf(stderr, "sdnn: error: --grid %dx%d needs %d ranks, not %d\n", grid.rows, grid.columns,
                     grid.rows * grid.columns, mpi.size());
      return 2;
    }
  }
  const int stage = mpi.rank() % grid.columns;  // pipeline: this rank's stage
  LayerRange stage_range{0, o.layers};
  if (pipeline) {  // a stage's layers; refused when a stage would hold none
    try {
      stage_range = stage_layers(o.layers, grid.columns, stage, o.stage_starts);
    } catch (const std::invalid_argument& e) {
      if (root) std::fprintf(stderr, "sdnn: error: %s\n", e.what());
      return 2;
    }
  }
  LoadPlan plan;
  plan.row_groups = model || pipeline ? grid.rows : mpi.size();
  plan.row_group = model || pipeline ? mpi.rank() / grid.columns : mpi.rank();
  plan.column_groups = model ? grid.columns : 1;
  plan.column_group = model ? mpi.rank() % grid.columns : 0;
  plan.rows = hashes_input(hash) ? Permutation::hashing(o.inputs, o.hash_seed) : Permutation::identity(o.inputs);
  plan.neurons =
      hashes_network(hash) ? Permutation::hashing(o.neurons, o.hash_seed + 1) : Permutation::identity(o.neurons);
  plan.bias = o.bias ? *o.bias : default_bias(o.neurons);
  plan.threads = threads;
  plan.build_network = !o.share_network || mpi.node_rank() == 0;
  plan.first_layer = stage_range.first;  // the pipeline's stage holds its layers only
  plan.last_layer = stage_range.last;
  plan.keep_input = !pipeline || stage == 0;

  std::vector<Index> truth;
  MemoryEstimate estimate;
  std::string simd;  // the SIMD target of the dense-panel kernel (docs/simd.md)
  Index perturbed_row = 0;  // SDNN_TEST_PERTURB (test only)
  phase(mpi, [&] {
    simd = simd_target();
    perturbed_row = test_perturbed_row(o.inputs);
    check_outputs(o);  // every rank: rank 0 writes, and all refuse together
    if (root && !o.truth_path.empty()) truth = read_categories(o.truth_path, o.inputs);
    // Refuse a run that cannot fit, before loading anything.
    const MemoryEstimate need = estimate = estimate_memory(o, mpi.size(), mpi.node_size(), grid.columns, threads);
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
  });

  LoadedProblem problem;
  phase(mpi, [&] {
    problem = load_problem(mpi, o, plan);
    if (model) {
      prepare_weights(problem.network, false, true);  // a 1-column-block grid loads whole CSR layers
      for (Layer& layer : problem.network) layer.weights_csr = CsrMatrix();
    } else if (pipeline) {  // the stage's layers only
      Network mine(std::make_move_iterator(problem.network.begin() + stage_range.first),
                   std::make_move_iterator(problem.network.begin() + stage_range.last));
      problem.network = std::move(mine);
      prepare_weights(problem.network, o.format == Format::csr || o.verify, true);
    } else {
      prepare_weights(problem.network, o.format == Format::csr || o.verify || o.share_network, true);
    }
  });
  SharedNetwork shared;  // lives to the end of the run; freed collectively
  if (o.share_network) phase(mpi, [&] { shared = share_network(problem.network, o.layers, o.neurons); });
  std::uint64_t network_bytes = 0;
  for (const Layer& layer : problem.network)
    for (const auto* m : {&layer.weights_csr.offsets, &layer.weights_csc.offsets})
      network_bytes += m->size() * sizeof(Offset);
  for (const Layer& layer : problem.network)
    network_bytes += (layer.weights_csr.nnz() + layer.weights_csc.nnz()) * (sizeof(Index) + sizeof(Value)) +
                     layer.bias.size() * sizeof(Value);
  const std::uint64_t input_bytes = problem.input.offsets.size() * sizeof(Offset) +
                                    problem.input.nnz() * (sizeof(Index) + sizeof(Value));
  const double read_s = mpi.max(problem.network_s + problem.input_s);
  // Bytes of files (TSV or archive) read by all ranks together, over the slowest rank's read time.
  const double read_mb = static_cast<double>(mpi.sum(problem.bytes_parsed)) / 1e6;
  const double read_mb_s = read_s > 0 ? read_mb / read_s : 0;
  const double largest_input_mb = mpi.max(static_cast<double>(input_bytes) / 1e6);
  // Rows of the input holding any entry, and the last of them (original numbering): the rate
  // counts all --inputs rows, so a file that holds fewer is said so, with the count to give.
  std::uint64_t my_input_rows = 0;
  double my_last_row = 0;
  if (plan.column_group == 0)  // the ranks of a row group hold the same rows: count them once
    for (Index r = 0; r < problem.input.rows(); ++r)
      if (problem.input.end(r) > problem.input.begin(r)) {
        ++my_input_rows;
        my_last_row = std::max(my_last_row, static_cast<double>(plan.rows.inverse(problem.rows.first + r)) + 1);
      }
  const std::uint64_t input_rows = mpi.sum(my_input_rows);
  const auto last_input_row = static_cast<std::uint64_t>(mpi.max(my_last_row));
  if (root && !o.generated() && last_input_row < o.inputs)
    std::fprintf(stderr,
                 "sdnn: warning: %s: %llu of the --inputs %u rows are empty (its last entry is in row %llu); they "
                 "count as inputs in the rate: give --inputs %llu for the true count\n",
                 o.input_path.c_str(), static_cast<unsigned long long>(o.inputs - input_rows), o.inputs,
                 static_cast<unsigned long long>(last_input_row), static_cast<unsigned long long>(std::max<std::uint64_t>(last_input_row, 1)));
  // Pipeline: each stage holds its layers only (about 1/P of the network).
  const double largest_network_mb = mpi.max(static_cast<double>(network_bytes) / 1e6);
  const double all_network_mb = mpi.sum(static_cast<double>(network_bytes) / 1e6);

  if (root) {
    std::printf("sdnn: neurons=%u layers=%u inputs=%u ranks=%d threads=%d strategy=%s", o.neurons, o.layers,
                o.inputs, mpi.size(), threads, o.strategy.c_str());
    if (model || pipeline) std::printf(" grid=%dx%d", grid.rows, grid.columns);
    std::printf(" format=%s parallel=%s hash=%s%s\n", model ? "csc" : to_string(o.format).c_str(),
                model ? "model" : to_string(o.parallel).c_str(), o.hash.c_str(),
                o.generated() ? " (generated problem)" : "");
    std::printf("%s: %.3f s (network %.3f s, input %.3f s)", o.generated() ? "generate" : "read", read_s,
                problem.network_s, problem.input_s);
    if (!o.generated())
      std::printf(", %.1f MB read at %.1f MB/s (%.1f MB/s per core, %d core(s))", read_mb, read_mb_s,
                  read_mb_s / (mpi.size() * threads), mpi.size() * threads);
    std::printf("\n");
    if (o.share_network)
      std::printf("network: %.1f MB, one copy shared by the %d rank(s) of each node (saves %.1f MB per node)\n",
                  static_cast<double>(shared.bytes) / 1e6, shared.ranks_on_node,
                  static_cast<double>(shared.bytes) * (shared.ranks_on_node - 1) / 1e6);
    else if (pipeline)
      std::printf("network: %.1f MB on the largest rank, %.1f MB on all ranks (each of %d stage(s) holds only its "
                  "layers: about 1/%d of the network when they hold as many)\n",
                  largest_network_mb, all_network_mb, grid.columns, grid.columns);
    else
      std::printf("network: %.1f MB held by each rank\n", static_cast<double>(network_bytes) / 1e6);
    std::printf("input: %.1f MB held by the largest rank (%u rows x %u neurons)\n", largest_input_mb, o.inputs,
                o.neurons);
    std::fflush(stdout);
  }
  if (o.load_only) {
    const double peak_mb = mpi.max(peak_resident_mb());
    if (root) {
      if (mpi_is_simulated())
        std::printf("memory: peak resident %.0f MB (the simulator's whole process: all %d simulated ranks); estimated "
                    "before loading %.0f MB per rank\n", peak_mb, mpi.size(), static_cast<double>(estimate.total()) / 1e6);
      else
        std::printf("memory: peak resident %.0f MB (largest rank); estimated before loading %.0f MB per rank\n", peak_mb,
                    static_cast<double>(estimate.total()) / 1e6);
      if (const std::string windows = window_backend_description(); !windows.empty())
        std::printf("windows: %s\n", windows.c_str());
      std::printf("summary neurons=%u layers=%u inputs=%u ranks=%d threads=%d load_only=yes read_s=%.6f read_mb=%.1f "
                  "read_mb_s=%.1f network_mb=%.1f input_mb=%.1f peak_rss_mb=%.1f input_rows=%llu\n",
                  o.neurons, o.layers, o.inputs, mpi.size(), threads, read_s, read_mb, read_mb_s,
                  static_cast<double>(network_bytes) / 1e6, largest_input_mb, peak_mb,
                  static_cast<unsigned long long>(input_rows));
      std::fflush(stdout);
    }
    return 0;
  }

  EngineOptions engine;
  engine.format = model ? Format::csc : o.format;
  engine.parallel = model ? Parallelism::model : o.parallel;
  engine.threads = threads;
  engine.block_rows = o.block_rows;
  engine.reuse = o.reuse;
  if (show_progress)
    engine.progress = [](double fraction, const std::string& label) {
      std::fprintf(stderr, "\r[sdnn] rank 0: %3.0f%% %s", 100 * fraction, label.c_str());
      std::fflush(stderr);
    };

  // Inference: the final activations of this rank's rows (and columns, for the model strategy).
  CsrMatrix final_rows;              // kept only when the verifier or the model strategy needs it
  std::vector<Index> final_categories;  // local rows of final_rows that hold any nonzero
  ExactSum final_sum = 0;
  RankFigures figures;
  StageFigures stage_figures;  // pipeline only
  figures.rank = mpi.rank();
  figures.rows_owned = problem.rows.size();
  figures.columns_owned = problem.columns.size();
  figures.load_bytes_parsed = problem.bytes_parsed;
  figures.load_bytes_pulled = problem.bytes_pulled;
  // The final rows are kept for the verifier, --out-activations and the test-only perturbation.
  const bool keep_final_rows = o.verify || !o.out_activations_path.empty() || perturbed_row != 0;
  phase(mpi, [&] {
    mpi.barrier();
    const double start = mpi_seconds();
    if (model) {
      final_rows = run_data_model(mpi, problem, grid, engine, !o.no_overlap, figures);
      final_categories = categories_of(final_rows);
      final_sum = exact_sum_of(final_rows);
    } else if (pipeline) {
      PipelineResult result = run_pipeline(mpi, problem, grid, stage_range, o.layers, engine, o.block_rows * threads,
                                            keep_final_rows, figures);
      final_rows = std::move(result.final_rows);
      final_categories = std::move(result.categories);
      final_sum = result.exact_sum;
      stage_figures = result.stage;
    } else {
      engine.keep_activations = keep_final_rows;
      InferenceResult result = infer(problem.network, problem.input, engine);
      final_rows = std::move(result.activations);
      final_categories = std::move(result.categories);
      final_sum = result.exact_sum;
      figures.active_nonzeros = result.active_nonzeros;
      figures.layer_nonzeros = std::move(result.layer_nonzeros);
      figures.layer_compute_s = std::move(result.layer_seconds);
      figures.layer_comm_s.assign(figures.layer_compute_s.size(), 0.0);
      figures.layer_bytes.assign(figures.layer_compute_s.size(), 0);
      figures.layer_columns.assign(figures.layer_compute_s.size(), 0);
      figures.layer_rows = std::move(result.layer_rows);
      figures.layer_rows.resize(figures.layer_compute_s.size(), 0);
      for (std::uint64_t r : figures.layer_rows) figures.rows_computed += r;
    }
    figures.compute_s = mpi_seconds_since(start) - figures.comm_s;
  });
  {
    const double start = mpi_seconds();
    mpi.barrier();  // the wait for the slowest rank
    figures.idle_s = mpi_seconds_since(start);
  }
  if (show_progress) std::fprintf(stderr, "\n");
  if (perturbed_row != 0) {  // test only: one value of one rank's result made wrong
    const Index hashed = plan.rows(perturbed_row - 1);
    const bool mine = hashed >= problem.rows.first && hashed < problem.rows.last && plan.column_group == 0;
    if (mine && final_rows.cols() > 0) {
      add_one_at_first_column(final_rows, hashed - problem.rows.first);
      final_categories = categories_of(final_rows);
      final_sum = exact_sum_of(final_rows);
    }
  }
  const double infer_s = mpi.max(figures.compute_s + figures.comm_s);
  const double rate = infer_s > 0 ? static_cast<double>(o.inputs) * static_cast<double>(problem.connections) / infer_s : 0;

  // Categories in the original numbering: local row r is hashed row rows.first + r.
  std::vector<Index> local_categories;
  for (Index r : final_categories) local_categories.push_back(plan.rows.inverse(problem.rows.first + r));
  std::vector<Index> categories = mpi.gather_to_root(local_categories);
  std::sort(categories.begin(), categories.end());
  categories.erase(std::unique(categories.begin(), categories.end()), categories.end());  // a row in several blocks
  const double checksum = global_checksum(final_sum);
  const std::uint64_t active = mpi.sum(static_cast<std::uint64_t>(figures.active_nonzeros));
  // --reuse: rows multiplied over all layers, and their share of inputs x layers.
  const std::uint64_t rows_computed = mpi.sum(static_cast<std::uint64_t>(figures.rows_computed));
  const double rows_share = static_cast<double>(rows_computed) / (static_cast<double>(o.inputs) * o.layers);

  // The serial verifier, each rank on its own rows (and, for the model strategy, its columns).
  std::string verdict = "skipped";
  double verify_s = 0;
  if (o.verify) {
    std::string difference;
    phase(mpi, [&] {
      const double start = mpi_seconds();
      if (model) {
        LoadPlan whole = plan;
        whole.column_groups = 1;
        whole.column_group = 0;
        LoadedProblem reference = load_problem(mpi, o, whole);
        const CsrMatrix expected = reference_inference(reference.network, reference.input);
        difference = first_difference(columns_of(expected, problem.columns.first, problem.columns.last), final_rows);
      } else if (pipeline) {  // the last stage checks its row group's survivors against the whole network
        const bool last_stage = stage == grid.columns - 1;
        LoadPlan whole = plan;
        whole.first_layer = 0;
        whole.last_layer = last_stage ? o.layers : 0;
        whole.keep_input = last_stage;
        LoadedProblem reference = load_problem(mpi, o, whole);
        if (last_stage) {
          prepare_weights(reference.network, true, false);
          difference = first_difference(reference_inference(reference.network, reference.input), final_rows);
        }
      } else {
        difference = first_difference(reference_inference(problem.network, problem.input), final_rows);
      }
      verify_s = mpi_seconds_since(start);
    });
    verify_s = mpi.max(verify_s);
    const std::string first = mpi.first_failure(!difference.empty(), difference);
    verdict = first.empty() ? "PASS" : "FAIL";
    if (root) {
      std::printf("Verifier: %s (serial verifier %.3f s)\n", verdict.c_str(), verify_s);
      if (!first.empty()) std::printf("  first difference (hashed, rank-local numbering): %s\n", first.c_str());
    }
  }

  if (!o.out_activations_path.empty()) {
    const std::string text =
        gather_activations(mpi, final_rows, problem.rows.first, problem.columns.first, plan.rows, plan.neurons);
    phase(mpi, [&] {
      if (root) write_file_atomically(o.out_activations_path, text);
    });
  }

  // Pipeline: one line per stage (printed now) and their fields for the summary.
  const std::string stage_summary = pipeline ? report_stages(mpi, grid, stage_figures, figures.layer_compute_s) : "";
  const std::vector<RankFigures> ranks = gather_figures(mpi, figures, o.report_layers);
  std::string challenge = "none";
  RunDescription description{o.strategy, model ? "csc" : to_string(o.format),
                             model ? "model" : to_string(o.parallel), o.hash,
                             std::to_string(grid.rows) + "x" + std::to_string(grid.columns), o.neurons, o.layers,
                             o.inputs, mpi.size(), threads, read_s, infer_s, rate, categories.size()};
  phase(mpi, [&] {
    if (!root) return;
    if (!o.truth_path.empty()) challenge = categories == truth ? "PASS" : "FAIL";
    if (!o.out_path.empty()) write_categories(o.out_path, categories);
    if (!o.report_path.empty()) write_report(o.report_path, description, ranks, o.report_layers);
  });

  const double peak_mb = mpi.max(peak_resident_mb()), peak_all_mb = mpi.sum(peak_resident_mb());
  if (root) {
    const double balance = imbalance(ranks), ratio = comm_compute_ratio(ranks);
    std::printf("inference: %.3f s\n", infer_s);
    std::printf("simd: %s (dense-panel kernel; SDNN_SIMD restricts the target)\n", simd.c_str());
    std::printf("rate: %.4e edges/s (%u inputs x %llu connections)\n", rate, o.inputs,
                static_cast<unsigned long long>(problem.connections));
    std::printf("multiply-adds: %.4e (active nonzeros x 32 weights per row of W)\n", static_cast<double>(active) * 32);
    if (o.reuse)
      std::printf("reuse: on, rows computed %llu of %.0f (%.4f; identical rows computed once, multiply-adds above are "
                  "those done, the rate counts every input)\n",
                  static_cast<unsigned long long>(rows_computed), static_cast<double>(o.inputs) * o.layers, rows_share);
    std::printf("imbalance: %.3f (max over mean compute time of %d rank(s))", balance, mpi.size());
    if (model || pipeline) std::printf(", communication/compute: %.3f", ratio);
    std::printf("\n");
    if (mpi_is_simulated())  // one process holds every simulated rank: a per-rank figure does not exist
      std::printf("memory: peak resident %.0f MB (the simulator's whole process: all %d simulated ranks); estimated "
                  "before loading %.0f MB per rank\n", peak_mb, mpi.size(), static_cast<double>(estimate.total()) / 1e6);
    else
      std::printf("memory: peak resident %.0f MB (largest rank; %.0f MB all ranks); estimated before loading %.0f MB "
                  "per rank\n", peak_mb, peak_all_mb, static_cast<double>(estimate.total()) / 1e6);
    std::printf("categories: %zu\n", categories.size());
    if (!o.truth_path.empty())
      std::printf("Challenge: %s (%zu categories expected)\n", challenge.c_str(), truth.size());
    if (!o.out_path.empty()) std::printf("categories written to %s\n", o.out_path.c_str());
    if (!o.out_activations_path.empty())
      std::printf("activations written to %s\n", o.out_activations_path.c_str());
    if (!o.report_path.empty())
      std::printf("report written to %s and %s\n", o.report_path.c_str(), csv_path_of(o.report_path).c_str());
    if (const std::string windows = window_backend_description(); !windows.empty())
      std::printf("windows: %s\n", windows.c_str());  // the backend the one-sided check settled on
    std::printf(
        "summary neurons=%u layers=%u inputs=%u ranks=%d threads=%d strategy=%s grid=%dx%d format=%s parallel=%s "
        "hash=%s read_s=%.6f infer_s=%.6f rate=%.6e categories=%zu checksum=%.17g imbalance=%.4f comm_ratio=%.4f "
        "verify=%s challenge=%s peak_rss_mb=%.1f read_mb_s=%.1f network_mb=%.1f input_mb=%.1f input_rows=%llu simd=%s%s",
        o.neurons, o.layers, o.inputs, mpi.size(), threads, o.strategy.c_str(), grid.rows, grid.columns,
        description.format.c_str(), description.parallel.c_str(), o.hash.c_str(), read_s, infer_s, rate,
        categories.size(), checksum, balance, ratio, verdict.c_str(), challenge.c_str(), peak_mb, read_mb_s,
        static_cast<double>(network_bytes) / 1e6, largest_input_mb, static_cast<unsigned long long>(input_rows), simd.c_str(),
        stage_summary.c_str());
    std::printf(" reuse=%s multiply_adds=%.6e", o.reuse ? "on" : "off", static_cast<double>(active) * 32);
    if (o.reuse)
      std::printf(" rows_computed=%llu rows_computed_share=%.6f", static_cast<unsigned long long>(rows_computed),
                  rows_share);
    std::printf("\n");
    std::fflush(stdout);
  }
  return (verdict == "FAIL" || challenge == "FAIL") ? 1 : 0;
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
