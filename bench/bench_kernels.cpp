// bench_kernels.cpp: microbenchmarks of one layer of the local SpMM kernels (left CSR multiply, its
// symbolic pass alone and its numeric pass alone; the same for the right CSC multiply) on realistic activations after k layers of a
// generated N = 1024 network, of the dense-panel kernel on the rows alive after k layers, of the TSV triplet reader (read_triplet_matrix) with 1 and 2 threads,
// and of a pipeline stage's blocks through the engine, one session per block or one for all.
//
// Counters: edges/s as the challenge counts them (all input rows x 32*N connections of the layer, even
// the dead rows the kernel skips), multiply-adds/s (nnz(Y_k) * 32 products really done), peak_share
// (multiply-adds/s over the double-precision FMA peak of the SIMD target the label names,
// bench_peak.cpp), nnz of Y_k.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/generate.hpp"
#include "io/output_file.hpp"
#include "io/tsv.hpp"
#include "spmm/dense_rows.hpp"
#include "spmm/engine.hpp"
#include "spmm/layer.hpp"
#include "spmm/sparse_matrix.hpp"
#include "spmm/spmm.hpp"

#include "bench_support.hpp"

namespace {

using namespace sdnn;

constexpr Index kNeurons = 1024;
constexpr Index kLayers = 120;
constexpr Index kInputs = 2048;
constexpr Index kWeightsPerColumn = 32;  // every column of a RadiX-Net layer holds 32 weights
const std::vector<Index> kDepths = {0, 1, 4, 16, 64};
// Seconds per repetition (instead of the default 0.5), so that `make bench` (5 repetitions of 24
// benchmarks) stays near a minute on 2 cores. It takes precedence over --benchmark_min_time.
constexpr double kMinTime = 0.2;

// The network, with weights in both formats, and the activations after k layers for every k of
// kDepths: alive rows only (CSR, with their ids) and the same matrix in CSC. Built once.
struct Activations {
  Network network;
  std::map<Index, ActiveRows> csr;
  std::map<Index, CscMatrix> csc;

  Activations() : network(generate_network(kNeurons, kLayers, 42)) {
    prepare_weights(network, true, true);
    csr = bench::activations_after(network, generate_inputs(kInputs, kNeurons, 7), kDepths);
    for (const auto& [k, rows] : csr) csc.emplace(k, to_csc(rows.rows));
  }
};

const Activations& activations() {
  static const Activations a;
  return a;
}

// The counters shared by the kernel benchmarks.
void set_layer_counters(benchmark::State& state, Offset input_nnz) {
  const double iterations = static_cast<double>(state.iterations());
  const double edges = static_cast<double>(kInputs) * kWeightsPerColumn * kNeurons;
  state.counters["edges/s"] = benchmark::Counter(edges * iterations, benchmark::Counter::kIsRate);
  state.counters["madds/s"] =
      benchmark::Counter(static_cast<double>(input_nnz) * kWeightsPerColumn * iterations, benchmark::Counter::kIsRate);
  state.counters["nnz"] = benchmark::Counter(static_cast<double>(input_nnz));
  // Multiply-adds per second over the double-precision FMA peak of the dispatched target.
  state.counters["peak_share"] = benchmark::Counter(
      static_cast<double>(input_nnz) * kWeightsPerColumn * iterations / bench::measured_peak_madds(),
      benchmark::Counter::kIsRate);
  state.SetLabel(simd_target());
}

// Left multiplication, CSR, full layer k+1 (symbolic + numeric).
void BM_LeftMultiply(benchmark::State& state) {
  const Index k = static_cast<Index>(state.range(0));
  const Activations& a = activations();
  const ActiveRows& in = a.csr.at(k);
  const Layer& layer = a.network[k];
  LeftMultiplier left(kNeurons);
  ActiveRows out;
  for (auto _ : state) {
    left.multiply(in, layer.weights_csr, layer.bias.data(), out);
    benchmark::DoNotOptimize(out.rows.offsets.data());
    benchmark::ClobberMemory();
  }
  set_layer_counters(state, in.rows.nnz());
}

// The symbolic pass of the left multiplication alone.
void BM_LeftSymbolic(benchmark::State& state) {
  const Index k = static_cast<Index>(state.range(0));
  const Activations& a = activations();
  const CsrMatrix& in = a.csr.at(k).rows;
  const Layer& layer = a.network[k];
  LeftMultiplier left(kNeurons);
  std::vector<Offset> row_sizes;
  for (auto _ : state) {
    Offset total = left.symbolic(in, layer.weights_csr, row_sizes);
    benchmark::DoNotOptimize(total);
    benchmark::ClobberMemory();
  }
  set_layer_counters(state, in.nnz());
}

// The numeric pass of the left multiplication alone (the symbolic bound computed once, outside
// the timing).
void BM_LeftNumeric(benchmark::State& state) {
  const Index k = static_cast<Index>(state.range(0));
  const Activations& a = activations();
  const ActiveRows& in = a.csr.at(k);
  const Layer& layer = a.network[k];
  LeftMultiplier left(kNeurons);
  std::vector<Offset> row_sizes;
  const Offset bound = left.symbolic(in.rows, layer.weights_csr, row_sizes);
  ActiveRows out;
  for (auto _ : state) {
    left.numeric(in, layer.weights_csr, layer.bias.data(), bound, out);
    benchmark::DoNotOptimize(out.rows.offsets.data());
    benchmark::ClobberMemory();
  }
  set_layer_counters(state, in.rows.nnz());
}

// Right multiplication, CSC, full layer k+1 on one thread (symbolic + numeric).
void BM_RightMultiply(benchmark::State& state) {
  const Index k = static_cast<Index>(state.range(0));
  const Activations& a = activations();
  const CscMatrix& in = a.csc.at(k);
  const Layer& layer = a.network[k];
  RightMultiplier right(in.rows());
  CscMatrix out;
  for (auto _ : state) {
    right.multiply(in, layer.weights_csc, layer.bias.data(), out);
    benchmark::DoNotOptimize(out.offsets.data());
    benchmark::ClobberMemory();
  }
  set_layer_counters(state, in.nnz());
}

// The symbolic pass of the right multiplication alone, over all output columns.
void BM_RightSymbolic(benchmark::State& state) {
  const Index k = static_cast<Index>(state.range(0));
  const Activations& a = activations();
  const CscMatrix& in = a.csc.at(k);
  const Layer& layer = a.network[k];
  RightMultiplier right(in.rows());
  std::vector<Offset> column_sizes(kNeurons);
  for (auto _ : state) {
    Offset total = right.symbolic(in, layer.weights_csc, 0, kNeurons, column_sizes.data());
    benchmark::DoNotOptimize(total);
    benchmark::ClobberMemory();
  }
  set_layer_counters(state, in.nnz());
}

// The numeric pass of the right multiplication alone, over all output columns, into buffers
// sized once by the symbolic pass (outside the timing).
void BM_RightNumeric(benchmark::State& state) {
  const Index k = static_cast<Index>(state.range(0));
  const Activations& a = activations();
  const CscMatrix& in = a.csc.at(k);
  const Layer& layer = a.network[k];
  RightMultiplier right(in.rows());
  std::vector<Offset> column_sizes(kNeurons), kept(kNeurons);
  const Offset bound = right.symbolic(in, layer.weights_csc, 0, kNeurons, column_sizes.data());
  std::vector<Index> indices(bound);
  std::vector<Value> values(bound);
  for (auto _ : state) {
    Offset written = right.numeric(in, layer.weights_csc, layer.bias.data(), 0, kNeurons, 0, indices.data(),
                                   values.data(), kept.data());
    benchmark::DoNotOptimize(written);
    benchmark::ClobberMemory();
  }
  set_layer_counters(state, in.nnz());
}

// Dense panels (the kernel of saturated survivors), full layer k+1 on one thread, on the rows alive
// after k layers (the layer's column groups computed once, as the engine does for all its
// blocks). Multiply-adds count every entry of the panels' real rows (rows x N x 32), which
// is what the kernel does; nnz is that of the sparse rows it came from.
void BM_DenseMultiply(benchmark::State& state) {
  const Index k = static_cast<Index>(state.range(0));
  const Activations& a = activations();
  const ActiveRows& rows = a.csr.at(k);
  const Layer& layer = a.network[k];
  DenseRows in, out;
  to_dense(rows, kNeurons, in);
  DenseMultiplier dense;
  ColumnGroups groups;  // once per layer, as the engine does
  group_columns(layer.weights_csc, groups);
  for (auto _ : state) {
    dense.multiply(in, layer.weights_csc, layer.bias.data(), out, &groups);
    benchmark::DoNotOptimize(out.panel.data());
    benchmark::ClobberMemory();
  }
  set_layer_counters(state, static_cast<Offset>(in.rows()) * kNeurons);
  state.counters["nnz"] = benchmark::Counter(static_cast<double>(rows.rows.nnz()));
}

void dense_depth_args(benchmark::internal::Benchmark* b) {
  b->ArgName("k");
  for (Index k : kDepths)
    if (k >= 16) b->Arg(k);  // earlier, most rows are light and the engine keeps them sparse
  b->Unit(benchmark::kMicrosecond)->MinTime(kMinTime);
}

void depth_args(benchmark::internal::Benchmark* b) {
  b->ArgName("k");
  for (Index k : kDepths) b->Arg(k);
  b->Unit(benchmark::kMicrosecond)->MinTime(kMinTime);
}

// A pipeline stage's blocks (256 rows each of the 2048 generated inputs) through the network's first
// two layers, one engine call per block, with a session of their own each (infer, arg 0) or one
// InferenceSession for all (arg 1): what keeping the engine's buffers across the calls saves.
void BM_StageBlocks(benchmark::State& state) {
  const bool one_session = state.range(0) == 1;
  static const Network stage = [] {
    Network first_two = generate_network(kNeurons, 2, 42);
    prepare_weights(first_two, true, true);
    return first_two;
  }();
  static const CsrMatrix input = generate_inputs(kInputs, kNeurons, 7);
  constexpr Index kBlock = 256;
  EngineOptions options;
  options.block_rows = kBlock;
  options.final_results = false;  // as a stage before the last
  for (auto _ : state) {
    std::unique_ptr<InferenceSession> session;
    if (one_session) session = std::make_unique<InferenceSession>(stage, options);
    for (Index first = 0; first < kInputs; first += kBlock) {
      const CsrMatrix block = slice_rows(input, first, std::min(kInputs, first + kBlock));
      const InferenceResult out = one_session ? session->run(block) : infer(stage, block, options);
      benchmark::DoNotOptimize(out.activations.values.data());
    }
  }
  state.SetLabel(one_session ? "one session" : "infer per block");
}

BENCHMARK(BM_StageBlocks)->ArgName("one_session")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(kMinTime);
BENCHMARK(BM_LeftMultiply)->Apply(depth_args);
BENCHMARK(BM_LeftSymbolic)->Apply(depth_args);
BENCHMARK(BM_LeftNumeric)->Apply(depth_args);
BENCHMARK(BM_RightMultiply)->Apply(depth_args);
BENCHMARK(BM_RightSymbolic)->Apply(depth_args);
BENCHMARK(BM_RightNumeric)->Apply(depth_args);
BENCHMARK(BM_DenseMultiply)->Apply(dense_depth_args);

// Official-format TSV files written once to the temporary directory and removed at exit: a layer
// (values written like 6.250000e-02) and an input file (values written as 1, as in sparse-images-N.tsv).
constexpr Index kReaderNeurons = 4096;
constexpr Index kReaderInputs = 4000;

std::string triplet_text(const CsrMatrix& m, bool unit_values) {
  std::string text;
  text.reserve(m.nnz() * 24);
  char line[64];
  for (Index i = 0; i < m.rows(); ++i)
    for (Offset p = m.begin(i); p < m.end(i); ++p) {
      const int n = unit_values
                        ? std::snprintf(line, sizeof line, "%u\t%u\t1\n", i + 1, m.indices[p] + 1)
                        : std::snprintf(line, sizeof line, "%u\t%u\t%.6e\n", i + 1, m.indices[p] + 1,
                                        static_cast<double>(m.values[p]));
      text.append(line, static_cast<std::size_t>(n));
    }
  return text;
}

struct TsvFiles {
  std::string layer_path, input_path;
  std::size_t layer_bytes = 0, input_bytes = 0;

  TsvFiles() {
    const std::filesystem::path dir = std::filesystem::temp_directory_path();
    const std::string tag = "sdnn_bench_" + std::to_string(::getpid());
    layer_path = (dir / (tag + "_n4096-l10.tsv")).string();
    input_path = (dir / (tag + "_sparse-images-1024.tsv")).string();
    const std::string layer_text = triplet_text(radixnet_layer(kReaderNeurons, 10, 1), false);
    const std::string input_text = triplet_text(generate_inputs(kReaderInputs, 1024, 3), true);
    write_file_atomically(layer_path, layer_text);
    write_file_atomically(input_path, input_text);
    layer_bytes = layer_text.size();
    input_bytes = input_text.size();
  }
  ~TsvFiles() {
    std::error_code ignored;
    std::filesystem::remove(layer_path, ignored);
    std::filesystem::remove(input_path, ignored);
  }
  TsvFiles(const TsvFiles&) = delete;
  TsvFiles& operator=(const TsvFiles&) = delete;
};

const TsvFiles& tsv_files() {
  static const TsvFiles files;
  return files;
}

void BM_ReadLayer(benchmark::State& state) {
  const TsvFiles& f = tsv_files();
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    CsrMatrix m = read_triplet_matrix(f.layer_path, kReaderNeurons, kReaderNeurons, threads);
    benchmark::DoNotOptimize(m.offsets.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(f.layer_bytes) * state.iterations());
}

void BM_ReadInputs(benchmark::State& state) {
  const TsvFiles& f = tsv_files();
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    CsrMatrix m = read_triplet_matrix(f.input_path, kReaderInputs, 1024, threads);
    benchmark::DoNotOptimize(m.offsets.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(f.input_bytes) * state.iterations());
}

void thread_args(benchmark::internal::Benchmark* b) {
  b->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(kMinTime);
}

BENCHMARK(BM_ReadLayer)->Apply(thread_args);
BENCHMARK(BM_ReadInputs)->Apply(thread_args);

}  // namespace
