// bench_mpi.cpp: MPI microbenchmarks (Google Benchmark, run under mpirun) of the one-sided
// communication the data x model strategy uses, through sdnn::Window (src/comm/window.hpp).
//
//   BM_GetLatency/<bytes>    rank 0 gets <bytes> (8 B to 16 MB in powers of 8, 64 MB) from rank 1's
//                            segment (from its own segment with one rank) inside the window's
//                            lock_all epoch. Time per get = one Window::get + Window::flush of the
//                            target, measured on rank 0 (manual time); bytes_per_second from it.
//                            The other ranks only wait in MPI_Barrier until rank 0 is done.
//   BM_WindowCreate/<bytes>  creating (MPI_Win_allocate + lock_all) and freeing (unlock_all +
//                            MPI_Win_free) a Window of <bytes> per rank (1 MB, 64 MB; pages not
//                            touched), collective on every rank. Time = the slowest rank's create
//                            + free; counters create_s and free_s (slowest rank, per iteration).
//   BM_ModelLayer/<depth>    one layer of the data x model strategy on a 1 x P grid (P = ranks):
//                            the generated problem (N = 1024 RadiX-Net network, seed 42; 2048
//                            synthetic inputs, seed 7; no hashing, the program's default), built
//                            per rank as src/main/load.cpp does (the rank's CSC column block of W
//                            of layer depth+1, its block of Y_depth, the real activations after
//                            `depth` layers) with the pull plan of src/partition/pull_plan.hpp.
//                            Per iteration every rank does what src/main/strategy_model.cpp does
//                            for that layer without overlap (so the two are separable): gets of
//                            the column offsets of every planned range + flush_all, then gets of
//                            their row indices and values + flush_all (comm), and the split right
//                            multiplication of the layer on one thread, own columns then pulled
//                            ones (SplitRightMultiplier partial + finish), with the assembly of
//                            the pulled offsets (compute). The per-layer allreduce of the program
//                            and the store into the window are not timed (Y_depth stays in the
//                            window). Time = the slowest rank's comm + compute; counters: comm_s,
//                            compute_s (slowest rank, per iteration), comm_over_compute (sums over
//                            ranks, as the program's report), pulled_bytes, gets, pulled_columns
//                            (mean per rank per layer), nnz_in (nnz of the whole Y_depth).
//
// Every rank runs every benchmark and every iteration in lockstep: iteration counts are fixed
// (->Iterations) and per-iteration times are agreed by MPI_Allreduce(MAX). Only rank 0 reports
// (the console reporter, or --benchmark_out); the other ranks use a reporter that does nothing.
// --benchmark_enable_random_interleaving is refused (the ranks would shuffle differently).
//
// Run: make bench-mpi (2 ranks), or
//   mpirun --oversubscribe [--allow-run-as-root] -np 2 build/release/sdnn_bench_mpi
//     --benchmark_repetitions=3 --benchmark_report_aggregates_only=true (one line; optionally
//     --benchmark_filter=Latency and any other --benchmark_* flag)
// On one node Open MPI 4.1 moves these bytes through shared memory: the figures are memory
// copies plus MPI overhead, not network transfers.
// Times are taken with the MPI library's clock (mpi_seconds), so that under SimGrid's SMPI
// (make sim builds build/sim/sdnn_bench_mpi; bench/sim_validate.sh) they are simulated times.
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "comm/mpi_library.hpp"
#include "comm/mpi_session.hpp"
#include "comm/window.hpp"
#include "io/generate.hpp"
#include "partition/pull_plan.hpp"
#include "partition/row_partition.hpp"
#include "../bench_support.hpp"
#include "spmm/layer.hpp"
#include "spmm/sparse_matrix.hpp"
#include "spmm/split_multiply.hpp"
#include "spmm/spmm.hpp"

namespace {

using namespace sdnn;

constexpr Index kNeurons = 1024;
constexpr Index kInputs = 2048;
constexpr std::uint64_t kNetworkSeed = 42, kInputSeed = 7;
const std::vector<Index> kDepths = {0, 4, 16};

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

double max_over_ranks(double mine) {
  MPI_Allreduce(MPI_IN_PLACE, &mine, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return mine;
}

// Discards everything: the reporter of every rank but 0. ReportContext must return true, or the
// library would skip the runs on this rank and the ranks would no longer be in lockstep.
class NullReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

// ---------------------------------------------------------------------------------------------
// BM_GetLatency: one get + flush from rank 1 (rank 0 with one rank), timed on rank 0.

void BM_GetLatency(benchmark::State& state) {
  const std::size_t bytes = static_cast<std::size_t>(state.range(0));
  const int rank = world_rank(), target = world_size() >= 2 ? 1 : 0;
  Window window(MPI_COMM_WORLD, rank == target ? bytes : 0);
  if (rank == target) std::memset(window.data(), 1, bytes);  // pages present before any get
  window.barrier();
  std::vector<std::byte> destination(rank == 0 ? bytes : 0, std::byte{0});
  if (rank == 0) {  // warm-up, untimed: the first get may map or register the target's segment
    window.get(destination.data(), bytes, target, 0);
    window.flush(target);
  }
  for (auto _ : state) {
    if (rank != 0) continue;  // the loop still runs its fixed count, with nothing to time
    const auto start = mpi_seconds();
    window.get(destination.data(), bytes, target, 0);
    window.flush(target);
    state.SetIterationTime(mpi_seconds_since(start));
    benchmark::DoNotOptimize(destination.data());
  }
  // The target waits here (making progress in MPI) until rank 0's last get has completed.
  MPI_Barrier(MPI_COMM_WORLD);
  window.free();
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes));
}

// ---------------------------------------------------------------------------------------------
// BM_WindowCreate: collective create + free of a Window of the same size on every rank.

void BM_WindowCreate(benchmark::State& state) {
  const std::size_t bytes = static_cast<std::size_t>(state.range(0));
  double create_s = 0, free_s = 0;
  for (auto _ : state) {
    MPI_Barrier(MPI_COMM_WORLD);  // every rank starts together
    const auto start = mpi_seconds();
    Window window(MPI_COMM_WORLD, bytes, /*same_size=*/true);
    const double created = mpi_seconds_since(start);
    window.free();
    const double total = mpi_seconds_since(start);
    double times[3] = {created, total - created, total};
    MPI_Allreduce(MPI_IN_PLACE, times, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    create_s += times[0];
    free_s += times[1];
    state.SetIterationTime(times[2]);
  }
  state.counters["create_s"] = benchmark::Counter(create_s, benchmark::Counter::kAvgIterations);
  state.counters["free_s"] = benchmark::Counter(free_s, benchmark::Counter::kAvgIterations);
}

// ---------------------------------------------------------------------------------------------
// BM_ModelLayer: one data x model layer, pulls and compute timed apart.

// The whole generated problem, the same on every rank (deterministic): the network and the
// activations Y_k (alive rows, with their input row ids) for every k of kDepths. Built once.
struct GeneratedProblem {
  Network network;
  std::map<Index, ActiveRows> activations;

  GeneratedProblem()
      : network(generate_network(kNeurons, kDepths.back() + 1, kNetworkSeed)),
        activations(bench::activations_after(network, generate_inputs(kInputs, kNeurons, kInputSeed), kDepths)) {}
};

const GeneratedProblem& generated_problem() {
  static const GeneratedProblem problem;
  return problem;
}

// What rank (0, block) of a 1 x P grid holds for layer depth+1, cut as src/main/load.cpp cuts the
// generated problem: its column block of W (N x C, CSC), its bias, and its column block of Y_depth
// (all input rows x C, CSC).
struct RankLayer {
  RowRange own;
  CscMatrix weights;
  std::vector<Value> bias;
  CscMatrix activations;
  Offset whole_nnz = 0;
};

RankLayer rank_layer(Index depth, int ranks, int block) {
  const GeneratedProblem& problem = generated_problem();
  RankLayer mine;
  mine.own = shard_of(kNeurons, ranks, block);
  const RowRange own = mine.own;
  const Layer& layer = problem.network[depth];
  std::vector<Triplet> triplets;
  const CsrMatrix& w = layer.weights_csr;
  for (Index i = 0; i < w.rows(); ++i)
    for (Offset p = w.begin(i); p < w.end(i); ++p)
      if (w.indices[p] >= own.first && w.indices[p] < own.last)
        triplets.push_back({i, w.indices[p] - own.first, w.values[p]});
  mine.weights = from_triplets<ColMajor>(kNeurons, own.size(), triplets);
  mine.bias.assign(layer.bias.begin() + own.first, layer.bias.begin() + own.last);

  const ActiveRows& y = problem.activations.at(depth);
  triplets.clear();
  for (Index r = 0; r < y.rows.rows(); ++r)
    for (Offset p = y.rows.begin(r); p < y.rows.end(r); ++p)
      if (y.rows.indices[p] >= own.first && y.rows.indices[p] < own.last)
        triplets.push_back({y.ids[r], y.rows.indices[p] - own.first, y.rows.values[p]});
  mine.activations = from_triplets<ColMajor>(kInputs, own.size(), triplets);
  mine.whole_nnz = y.rows.nnz();
  return mine;
}

// One rank's window segment, as one slot of src/main/strategy_model.cpp: column offsets
// (C + 1), row indices (capacity), values (capacity); the capacity is the same on every rank.
struct SegmentLayout {
  Index columns;
  std::uint64_t capacity;
  std::size_t offsets_bytes() const { return (static_cast<std::size_t>(columns) + 1) * sizeof(Offset); }
  std::size_t bytes() const { return offsets_bytes() + capacity * (sizeof(Index) + sizeof(Value)); }
  std::size_t indices_at() const { return offsets_bytes(); }
  std::size_t values_at() const { return indices_at() + capacity * sizeof(Index); }
};

void BM_ModelLayer(benchmark::State& state) {
  const Index depth = static_cast<Index>(state.range(0));
  const int rank = world_rank(), ranks = world_size();
  const Grid grid{1, ranks};
  const RankLayer mine = rank_layer(depth, ranks, rank);
  const PullPlan plan = plan_pulls(mine.weights, kNeurons, grid, 0, rank);
  const CscMatrix& current = mine.activations;

  std::uint64_t capacity = std::max<std::uint64_t>(current.nnz(), 1);
  MPI_Allreduce(MPI_IN_PLACE, &capacity, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  auto layout_of = [&](int peer) { return SegmentLayout{shard_of(kNeurons, ranks, peer).size(), capacity}; };
  const SegmentLayout me = layout_of(rank);
  Window window(MPI_COMM_WORLD, me.bytes());
  std::memcpy(window.data(), current.offsets.data(), me.offsets_bytes());
  if (current.nnz() > 0) {
    std::memcpy(window.data() + me.indices_at(), current.indices.data(), current.nnz() * sizeof(Index));
    std::memcpy(window.data() + me.values_at(), current.values.data(), current.nnz() * sizeof(Value));
  }
  window.barrier();

  SplitRightMultiplier multiplier(1);
  PartialColumns partial;
  CscMatrix pulled, next;
  std::vector<Offset> peer_offsets(plan.ranges.size() + plan.pulled_columns);
  std::vector<std::size_t> range_offset_at(plan.ranges.size());
  double comm_s = 0, compute_s = 0;
  std::uint64_t bytes = 0, gets = 0;  // per layer (the same every iteration)
  for (auto _ : state) {
    bytes = 0;
    gets = 0;
    // Sizes first: the column offsets of every range (its length + 1).
    auto start = mpi_seconds();
    std::size_t at = 0;
    for (std::size_t r = 0; r < plan.ranges.size(); ++r) {
      const PullPlan::Range& range = plan.ranges[r];
      const std::size_t count = range.last - range.first + 1;
      range_offset_at[r] = at;
      window.get(peer_offsets.data() + at, count * sizeof(Offset), range.peer, range.first * sizeof(Offset));
      at += count;
      bytes += count * sizeof(Offset);
      ++gets;
    }
    window.flush_all();
    double comm = mpi_seconds_since(start);

    start = mpi_seconds();
    pulled.reset(kInputs, plan.pulled_columns);
    Index column = 0;
    for (std::size_t r = 0; r < plan.ranges.size(); ++r) {
      const Offset* offsets = peer_offsets.data() + range_offset_at[r];
      for (Index c = 0; c < plan.ranges[r].last - plan.ranges[r].first; ++c, ++column)
        pulled.offsets[column + 1] = pulled.offsets[column] + (offsets[c + 1] - offsets[c]);
    }
    pulled.reserve_nonzeros(pulled.nnz());
    double compute = mpi_seconds_since(start);

    // Then the data: row indices and values of the ranges' columns, back to back.
    start = mpi_seconds();
    Offset position = 0;
    for (std::size_t r = 0; r < plan.ranges.size(); ++r) {
      const PullPlan::Range& range = plan.ranges[r];
      const SegmentLayout theirs = layout_of(range.peer);
      const Offset* offsets = peer_offsets.data() + range_offset_at[r];
      const Offset first = offsets[0], count = offsets[range.last - range.first] - first;
      if (count == 0) continue;
      window.get(pulled.indices.data() + position, count * sizeof(Index), range.peer,
                 theirs.indices_at() + first * sizeof(Index));
      window.get(pulled.values.data() + position, count * sizeof(Value), range.peer,
                 theirs.values_at() + first * sizeof(Value));
      position += count;
      bytes += count * (sizeof(Index) + sizeof(Value));
      gets += 2;
    }
    window.flush_all();
    comm += mpi_seconds_since(start);

    start = mpi_seconds();
    multiplier.partial(current, plan.local_weights, partial);
    multiplier.finish(partial, pulled, plan.remote_weights, mine.bias.data(), next);
    benchmark::DoNotOptimize(next.offsets.data());
    compute += mpi_seconds_since(start);

    comm_s += comm;
    compute_s += compute;
    state.SetIterationTime(max_over_ranks(comm + compute));  // also keeps the ranks in step
  }
  window.free();

  const double iterations = static_cast<double>(state.iterations());
  double maxima[2] = {comm_s / iterations, compute_s / iterations};
  MPI_Allreduce(MPI_IN_PLACE, maxima, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  double sums[5] = {comm_s, compute_s, static_cast<double>(bytes), static_cast<double>(gets),
                    static_cast<double>(plan.pulled_columns)};
  MPI_Allreduce(MPI_IN_PLACE, sums, 5, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  state.counters["comm_s"] = maxima[0];
  state.counters["compute_s"] = maxima[1];
  state.counters["comm_over_compute"] = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
  state.counters["pulled_bytes"] = sums[2] / ranks;
  state.counters["gets"] = sums[3] / ranks;
  state.counters["pulled_columns"] = sums[4] / ranks;
  state.counters["nnz_in"] = static_cast<double>(mine.whole_nnz);
}

// Iterations per get size: about 512 MB moved per run, within [16, 10000].
benchmark::IterationCount get_iterations(std::int64_t bytes) {
  return std::clamp<std::int64_t>((std::int64_t{512} << 20) / bytes, 16, 10000);
}

// Get sizes: powers of 8 from 8 B to 16 MB, then 64 MB.
std::vector<std::int64_t> get_sizes() {
  std::vector<std::int64_t> sizes;
  for (std::int64_t bytes = 8; bytes <= (std::int64_t{16} << 20); bytes *= 8) sizes.push_back(bytes);
  sizes.push_back(std::int64_t{64} << 20);
  return sizes;
}

void register_benchmarks() {
  for (std::int64_t bytes : get_sizes())
    benchmark::RegisterBenchmark("BM_GetLatency", BM_GetLatency)
        ->Arg(bytes)
        ->Iterations(get_iterations(bytes))
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_WindowCreate", BM_WindowCreate)
      ->Arg(std::int64_t{1} << 20)
      ->Iterations(20)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_WindowCreate", BM_WindowCreate)
      ->Arg(std::int64_t{64} << 20)
      ->Iterations(10)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  for (Index depth : kDepths)
    benchmark::RegisterBenchmark("BM_ModelLayer", BM_ModelLayer)
        ->Arg(depth)
        ->Iterations(20)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
}

bool starts_with(const char* text, const char* prefix) { return std::strncmp(text, prefix, std::strlen(prefix)) == 0; }

// A flag given as --name or --name=<value> with a value other than false/0.
bool flag_set(int argc, char** argv, const char* name) {
  const std::string bare = std::string("--") + name;
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    if (argument == bare) return true;
    if (starts_with(argv[i], (bare + "=").c_str())) {
      const std::string value = argument.substr(bare.size() + 1);
      return value != "false" && value != "0";
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  if (flag_set(argc, argv, "benchmark_enable_random_interleaving")) {
    if (mpi.is_root())
      std::fprintf(stderr, "sdnn_bench_mpi: --benchmark_enable_random_interleaving would put the ranks out of step\n");
    return 1;
  }
  const bool list_only = flag_set(argc, argv, "benchmark_list_tests");
  // Only rank 0 writes --benchmark_out: the other ranks drop it (and its format) from their flags.
  std::vector<char*> arguments;
  for (int i = 0; i < argc; ++i)
    if (mpi.is_root() || i == 0 || !starts_with(argv[i], "--benchmark_out")) arguments.push_back(argv[i]);
  int count = static_cast<int>(arguments.size());
  arguments.push_back(nullptr);
  benchmark::Initialize(&count, arguments.data());
  if (benchmark::ReportUnrecognizedArguments(count, arguments.data())) return 1;  // the same on every rank
  register_benchmarks();
  if (mpi.is_root()) {
    benchmark::RunSpecifiedBenchmarks();
  } else if (!list_only) {
    NullReporter quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);
  }
  benchmark::Shutdown();
  return 0;
}
