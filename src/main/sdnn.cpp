// sdnn.cpp: the sdnn program. One driver for every way of running: it loads (or generates) the
// problem, splits the input rows into one shard per MPI rank, runs the engine on each shard with
// its OpenMP threads, gathers the categories, checks them (the serial verifier, the official
// truth) and prints the figures, last a "summary key=value ..." line for scripts.
//
// Errors: every phase ends with a collective agreement, so a fault on any rank (bad file,
// failed allocation) reaches every rank, which all exit non-zero with one message, no hang.
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "comm/mpi_session.hpp"
#include "io/generate.hpp"
#include "io/input_error.hpp"
#include "io/tsv.hpp"
#include "main/options.hpp"
#include "partition/row_partition.hpp"
#include "spmm/engine.hpp"
#include "spmm/reference.hpp"

namespace sdnn {
namespace {

struct PhaseFailed {};  // a phase failed on some rank; the message has been printed

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs `work` on every rank, then agrees: when it threw on any rank, rank 0 prints the message of
// the lowest failing rank and every rank throws PhaseFailed.
template <class Work>
void phase(const MpiSession& mpi, Work&& work) {
  bool failed = false;
  std::string message;
  try {
    work();
  } catch (const std::bad_alloc&) {
    failed = true;
    message = "out of memory (a rank could not allocate what the run needs)";
  } catch (const std::exception& e) {
    failed = true;
    message = e.what();
  }
  const std::string first = mpi.first_failure(failed, message);
  if (!first.empty()) {
    if (mpi.is_root()) std::fprintf(stderr, "sdnn: error: %s\n", first.c_str());
    throw PhaseFailed{};
  }
}

// Checks that the folder of an output path exists, before any long computation.
void check_output_folder(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const std::string folder = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  struct stat info {};
  if (::stat(folder.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
    throw InputError(path, "cannot write: folder '" + folder + "' does not exist");
  if (::access(folder.c_str(), W_OK) != 0) throw InputError(path, "cannot write: folder '" + folder + "' is not writable");
}

int run(const MpiSession& mpi, const Options& o, int threads) {
  const bool root = mpi.is_root();
  const bool show_progress = root && !o.quiet && ::isatty(2);
  const Value bias = o.bias ? *o.bias : default_bias(o.neurons);

  std::vector<Index> truth;
  phase(mpi, [&] {
    if (!o.out_path.empty()) check_output_folder(o.out_path);
    if (root && !o.truth_path.empty()) truth = read_categories(o.truth_path, o.inputs);
  });

  // Load or generate the problem (every rank holds the whole network).
  Network network;
  CsrMatrix input;
  double network_s = 0, input_s = 0;
  phase(mpi, [&] {
    auto start = std::chrono::steady_clock::now();
    network = o.generated() ? generate_network(o.neurons, o.layers, o.seed, bias)
                            : read_network(o.network_dir, o.neurons, o.layers, bias, threads);
    network_s = seconds_since(start);
    start = std::chrono::steady_clock::now();
    input = o.generated() ? generate_inputs(o.inputs, o.neurons, o.seed)
                          : read_triplet_matrix(o.input_path, o.inputs, o.neurons, threads);
    input_s = seconds_since(start);
    prepare_weights(network, o.format == Format::csr || o.verify, true);  // csr uses columns for dense rows
    if (!o.verify && o.format == Format::csc)
      for (Layer& layer : network) layer.weights_csr = CsrMatrix();
  });
  std::uint64_t connections = 0;
  for (const Layer& layer : network)
    connections += o.format == Format::csr ? layer.weights_csr.nnz() : layer.weights_csc.nnz();

  // This rank's shard of the input rows.
  const RowRange shard = shard_of(o.inputs, mpi.size(), mpi.rank());
  CsrMatrix local_input = slice_rows(input, shard.first, shard.last);
  input = CsrMatrix();

  if (root) {
    std::printf("sdnn: neurons=%u layers=%u inputs=%u ranks=%d threads=%d format=%s parallel=%s%s\n", o.neurons,
                o.layers, o.inputs, mpi.size(), threads, to_string(o.format).c_str(), to_string(o.parallel).c_str(),
                o.generated() ? " (generated problem)" : "");
    std::printf("%s: %.3f s (network %.3f s, input %.3f s)\n", o.generated() ? "generate" : "read",
                network_s + input_s, network_s, input_s);
    std::fflush(stdout);
  }

  EngineOptions engine;
  engine.format = o.format;
  engine.parallel = o.parallel;
  engine.threads = threads;
  engine.block_rows = o.block_rows;
  if (show_progress)
    engine.progress = [](double fraction, const std::string& label) {
      std::fprintf(stderr, "\r[sdnn] %3.0f%% %s", 100 * fraction, label.c_str());
      std::fflush(stderr);
    };

  InferenceResult result;
  double infer_s = 0;
  phase(mpi, [&] {
    mpi.barrier();
    const auto start = std::chrono::steady_clock::now();
    result = infer(network, local_input, engine);
    infer_s = seconds_since(start);
  });
  if (show_progress) std::fprintf(stderr, "\n");
  infer_s = mpi.max(infer_s);
  const double rate = infer_s > 0 ? static_cast<double>(o.inputs) * static_cast<double>(connections) / infer_s : 0;

  std::vector<Index> local_categories = categories_of(result.activations);
  for (Index& row : local_categories) row += shard.first;
  const std::vector<Index> categories = mpi.gather_to_root(local_categories);
  const double checksum = mpi.sum(checksum_of(result.activations));
  const std::uint64_t active = mpi.sum(static_cast<std::uint64_t>(result.active_nonzeros));

  // The serial verifier, each rank on its own shard.
  std::string verdict = "skipped";
  double verify_s = 0;
  if (o.verify) {
    std::string difference;
    phase(mpi, [&] {
      const auto start = std::chrono::steady_clock::now();
      const CsrMatrix expected = reference_inference(network, local_input);
      verify_s = mpi.max(seconds_since(start));
      difference = first_difference(expected, result.activations);
    });
    const std::string first = mpi.first_failure(!difference.empty(), difference);
    verdict = first.empty() ? "PASS" : "FAIL";
    if (root) {
      std::printf("Verifier: %s (serial verifier %.3f s)\n", verdict.c_str(), verify_s);
      if (!first.empty()) std::printf("  first difference (shard row numbering): %s\n", first.c_str());
    }
  }

  std::string challenge = "none";
  phase(mpi, [&] {
    if (!root) return;
    if (!o.truth_path.empty()) challenge = categories == truth ? "PASS" : "FAIL";
    if (!o.out_path.empty()) write_categories(o.out_path, categories);
  });

  if (root) {
    std::printf("inference: %.3f s\n", infer_s);
    std::printf("rate: %.4e edges/s (%u inputs x %llu connections)\n", rate, o.inputs,
                static_cast<unsigned long long>(connections));
    std::printf("multiply-adds: %.4e (active nonzeros x 32 weights per row of W)\n", static_cast<double>(active) * 32);
    std::printf("categories: %zu\n", categories.size());
    if (!o.truth_path.empty())
      std::printf("Challenge: %s (%zu categories expected)\n", challenge.c_str(), truth.size());
    if (!o.out_path.empty()) std::printf("categories written to %s\n", o.out_path.c_str());
    std::printf(
        "summary neurons=%u layers=%u inputs=%u ranks=%d threads=%d format=%s parallel=%s read_s=%.6f infer_s=%.6f "
        "rate=%.6e categories=%zu checksum=%.17g verify=%s challenge=%s\n",
        o.neurons, o.layers, o.inputs, mpi.size(), threads, to_string(o.format).c_str(),
        to_string(o.parallel).c_str(), network_s + input_s, infer_s, rate, categories.size(), checksum,
        verdict.c_str(), challenge.c_str());
    std::fflush(stdout);
  }
  return (verdict == "FAIL" || challenge == "FAIL") ? 1 : 0;
}

}  // namespace
}  // namespace sdnn

int main(int argc, char** argv) {
  sdnn::MpiSession mpi(&argc, &argv);
  sdnn::Options options;
  try {
    options = sdnn::parse_options(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    if (mpi.is_root()) std::fprintf(stderr, "sdnn: error: %s\n", e.what());
    return 2;
  }
  if (options.help) {
    if (mpi.is_root()) std::fputs(sdnn::usage_text().c_str(), stdout);
    return 0;
  }
  const int threads = options.threads > 0 ? options.threads : omp_get_max_threads();
  try {
    return sdnn::run(mpi, options, threads);
  } catch (const sdnn::PhaseFailed&) {
    return 1;
  }
}
