// bench_archive.cpp: loading a network from its binary archive (io/archive.hpp) against parsing its
// official-format TSV files, on a generated 4096-neuron, 16-layer RadiX-Net network (2,097,152
// connections, 52 MB of TSV, 17 MB of archive), files written once to the temporary directory and
// removed at exit. Both read from the page cache (the files are read before timing).
//
// BM_NetworkTsv/threads:T     read_network with T threads (one layer file per thread at a time)
// BM_NetworkArchive/threads:T read_network_archive with T threads (read, checksum, structure check)
// BM_ArchiveOverTsv/threads:T both in turn per iteration, T threads each; counter tsv_over_archive
//                             = TSV time / archive time (target >= 10), the iteration time being
//                             the archive's
// The same for 10,000 synthetic inputs of 4096 neurons (BM_InputsTsv, BM_InputsArchive).
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include "io/archive.hpp"
#include "io/generate.hpp"
#include "io/output_file.hpp"
#include "io/tsv.hpp"

namespace {

using namespace sdnn;

constexpr Index kNeurons = 4096, kLayers = 16, kInputs = 10000;
constexpr double kMinTime = 0.3;

// Lines "row<TAB>col<TAB>value" of `m`, values as the official files write them.
std::string tsv_text(const CsrMatrix& m, bool unit_values) {
  std::string text;
  char line[64];
  for (Index i = 0; i < m.rows(); ++i)
    for (Offset p = m.begin(i); p < m.end(i); ++p) {
      const int n = unit_values ? std::snprintf(line, sizeof line, "%u\t%u\t1\n", i + 1, m.indices[p] + 1)
                                : std::snprintf(line, sizeof line, "%u\t%u\t%.6e\n", i + 1, m.indices[p] + 1,
                                                static_cast<double>(m.values[p]));
      text.append(line, static_cast<std::size_t>(n));
    }
  return text;
}

struct Files {
  std::filesystem::path dir;
  std::string network_dir, network_archive, inputs_tsv, inputs_archive;
  std::uint64_t network_tsv_bytes = 0, inputs_tsv_bytes = 0;

  Files() {
    dir = std::filesystem::temp_directory_path() / ("sdnn_bench_archive_" + std::to_string(::getpid()));
    network_dir = (dir / "neuron4096").string();
    std::filesystem::create_directories(network_dir);
    Network network = generate_network(kNeurons, kLayers, 1);
    for (Index l = 0; l < kLayers; ++l) {
      const std::string text = tsv_text(network[l].weights_csr, false);
      write_file_atomically(layer_path(network_dir, kNeurons, l + 1), text);
      network_tsv_bytes += text.size();
    }
    network_archive = (dir / "neuron4096-l16.sdnn").string();
    write_network_archive(network_archive, network);
    const CsrMatrix inputs = generate_inputs(kInputs, kNeurons, 2);
    const std::string text = tsv_text(inputs, true);
    inputs_tsv = (dir / "sparse-images-4096.tsv").string();
    write_file_atomically(inputs_tsv, text);
    inputs_tsv_bytes = text.size();
    inputs_archive = (dir / "sparse-images-4096-10000.sdnn").string();
    write_inputs_archive(inputs_archive, inputs);
  }
  ~Files() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  Files(const Files&) = delete;
  Files& operator=(const Files&) = delete;
};

const Files& files() {
  static const Files f;
  return f;
}

double seconds_of(const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void read_tsv_network(int threads) {
  Network n = read_network(files().network_dir, kNeurons, kLayers, -0.35f, threads);
  benchmark::DoNotOptimize(n.data());
}
void read_archive_network(int threads) {
  Network n = read_network_archive(files().network_archive, kNeurons, kLayers, threads);
  benchmark::DoNotOptimize(n.data());
}
void read_tsv_inputs(int threads) {
  CsrMatrix m = read_triplet_matrix(files().inputs_tsv, kInputs, kNeurons, threads);
  benchmark::DoNotOptimize(m.offsets.data());
}
void read_archive_inputs(int threads) {
  CsrMatrix m = read_inputs_archive(files().inputs_archive, kNeurons, kInputs, threads);
  benchmark::DoNotOptimize(m.offsets.data());
}

void BM_NetworkTsv(benchmark::State& state) {
  files();  // written before the timing starts
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) read_tsv_network(threads);
  state.SetBytesProcessed(static_cast<std::int64_t>(files().network_tsv_bytes) * state.iterations());
}

void BM_NetworkArchive(benchmark::State& state) {
  files();
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) read_archive_network(threads);
  state.SetBytesProcessed(static_cast<std::int64_t>(file_size(files().network_archive)) * state.iterations());
}

void BM_ArchiveOverTsv(benchmark::State& state) {
  files();
  const int threads = static_cast<int>(state.range(0));
  double tsv = 0, archive = 0;
  for (auto _ : state) {
    tsv += seconds_of([&] { read_tsv_network(threads); });
    const double a = seconds_of([&] { read_archive_network(threads); });
    archive += a;
    state.SetIterationTime(a);
  }
  state.counters["tsv_s"] = tsv / static_cast<double>(state.iterations());
  state.counters["archive_s"] = archive / static_cast<double>(state.iterations());
  state.counters["tsv_over_archive"] = tsv / archive;
}

void BM_InputsTsv(benchmark::State& state) {
  files();
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) read_tsv_inputs(threads);
  state.SetBytesProcessed(static_cast<std::int64_t>(files().inputs_tsv_bytes) * state.iterations());
}

void BM_InputsArchive(benchmark::State& state) {
  files();
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) read_archive_inputs(threads);
  state.SetBytesProcessed(static_cast<std::int64_t>(file_size(files().inputs_archive)) * state.iterations());
}

void BM_InputsArchiveOverTsv(benchmark::State& state) {
  files();
  const int threads = static_cast<int>(state.range(0));
  double tsv = 0, archive = 0;
  for (auto _ : state) {
    tsv += seconds_of([&] { read_tsv_inputs(threads); });
    const double a = seconds_of([&] { read_archive_inputs(threads); });
    archive += a;
    state.SetIterationTime(a);
  }
  state.counters["tsv_over_archive"] = tsv / archive;
}

void thread_args(benchmark::internal::Benchmark* b) {
  b->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(kMinTime);
}

BENCHMARK(BM_NetworkTsv)->Apply(thread_args);
BENCHMARK(BM_NetworkArchive)->Apply(thread_args);
BENCHMARK(BM_ArchiveOverTsv)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseManualTime()->MinTime(kMinTime);
BENCHMARK(BM_InputsTsv)->Apply(thread_args);
BENCHMARK(BM_InputsArchive)->Apply(thread_args);
BENCHMARK(BM_InputsArchiveOverTsv)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseManualTime()->MinTime(kMinTime);

}  // namespace
