// bench_peak.cpp: the machine's ceilings that the kernels are measured against (docs/simd.md,
// docs/results.md 'Results', lower bounds): the peak multiply-add rate of one core in double (the kernels
// sum in double, SPEC.md 'Numerics') and in float, with the vectors of the SIMD target that
// Highway dispatches to at run time (the target the dense-panel kernel runs; SDNN_SIMD restricts
// both), and the memory read bandwidth of one core. measured_peak_madds() gives the double peak
// to the kernel benchmarks, which report their share of it (bench_support.hpp).
//
// Counters: madds/s (multiply-adds, one per lane of one FMA), lanes (doubles or floats per
// vector of the target) and bytes/s.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "../bench/bench_peak.cpp"  // found through -Isrc
#include "spmm/simd_targets.hpp"  // the kernel's targets
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#include <benchmark/benchmark.h>
#include <time.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "bench_support.hpp"
#include "spmm/dense_rows.hpp"

HWY_BEFORE_NAMESPACE();
namespace sdnn {
namespace bench {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int kChains = 12;  // independent accumulators: hides the FMA latency (4 cycles x 2 ports)

// `steps` x kChains multiply-adds of full vectors of T; returns the multiply-adds done (lanes
// included) and writes a result that depends on all of them.
template <class T>
std::uint64_t fma_chains(std::uint64_t steps, T* result) {
  const hn::ScalableTag<T> d;
  const auto x = hn::Set(d, T(0.999999)), y = hn::Set(d, T(1e-7));
  hn::Vec<decltype(d)> acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = hn::Set(d, T(c));
  for (std::uint64_t s = 0; s < steps; ++s)
    for (int c = 0; c < kChains; ++c) acc[c] = hn::MulAdd(acc[c], x, y);
  auto total = acc[0];
  for (int c = 1; c < kChains; ++c) total = hn::Add(total, acc[c]);
  *result = hn::GetLane(total);
  return steps * kChains * hn::Lanes(d);
}

std::uint64_t fma_chains_double(std::uint64_t steps, double* result) { return fma_chains<double>(steps, result); }
std::uint64_t fma_chains_float(std::uint64_t steps, float* result) { return fma_chains<float>(steps, result); }

}  // namespace HWY_NAMESPACE
}  // namespace bench
}  // namespace sdnn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sdnn {
namespace bench {

HWY_EXPORT(fma_chains_double);
HWY_EXPORT(fma_chains_float);

double measured_peak_madds() {
  static const double peak = [] {
    simd_target();  // applies SDNN_SIMD first
    double best = 0, sink = 0;
    // CPU time of this thread, as Google Benchmark's rates use: the machine may be shared.
    auto cpu_seconds = [] {
      timespec t{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
      return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
    };
    for (int trial = 0; trial < 10; ++trial) {
      const double start = cpu_seconds();
      const std::uint64_t madds = HWY_DYNAMIC_DISPATCH(fma_chains_double)(std::uint64_t{1} << 18, &sink);
      best = std::max(best, static_cast<double>(madds) / (cpu_seconds() - start));
    }
    benchmark::DoNotOptimize(sink);
    return best;
  }();
  return peak;
}

namespace {

constexpr std::uint64_t kSteps = 1 << 12;  // FMA steps per chain per iteration

template <class T, class Chains>
void peak_fma(benchmark::State& state, Chains chains) {
  state.SetLabel(simd_target());
  std::uint64_t madds = 0;
  T sink = 0;
  for (auto _ : state) {
    madds += chains(kSteps, &sink);
    benchmark::DoNotOptimize(sink);
  }
  state.counters["madds/s"] = benchmark::Counter(static_cast<double>(madds), benchmark::Counter::kIsRate);
  state.counters["lanes"] = benchmark::Counter(static_cast<double>(madds / state.iterations() / kSteps / 12));
}

void BM_PeakFmaDouble(benchmark::State& state) {
  peak_fma<double>(state, [](std::uint64_t s, double* r) { return HWY_DYNAMIC_DISPATCH(fma_chains_double)(s, r); });
}
void BM_PeakFmaFloat(benchmark::State& state) {
  peak_fma<float>(state, [](std::uint64_t s, float* r) { return HWY_DYNAMIC_DISPATCH(fma_chains_float)(s, r); });
}

// Sum of a 256 MiB array of floats, streamed (well beyond every cache), by plain loops that the
// compiler vectorizes for the baseline target (bandwidth, not arithmetic, is measured).
void BM_MemoryRead(benchmark::State& state) {
  std::vector<float> data(std::size_t{64} << 20, 1.0f);
  for (auto _ : state) {
    float s[16] = {};
    for (std::size_t i = 0; i + 16 <= data.size(); i += 16)
      for (int l = 0; l < 16; ++l) s[l] += data[i + l];
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(data.size() * sizeof(float)) * state.iterations());
}

BENCHMARK(BM_PeakFmaDouble)->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK(BM_PeakFmaFloat)->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK(BM_MemoryRead)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();

}  // namespace
}  // namespace bench
}  // namespace sdnn
#endif  // HWY_ONCE
