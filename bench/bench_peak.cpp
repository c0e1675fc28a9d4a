// bench_peak.cpp: the machine's ceilings that the kernels are measured against (docs/results.md, 'Results',
// lower bounds): the peak multiply-add rate of one core in double (the kernels sum in double,
// SPEC.md 'Numerics') and in float, with 512-bit vectors (GCC vector extensions: AVX-512 under
// -march=native where the CPU has it), and the memory read bandwidth of one core.
//
// Counters: madds/s (multiply-adds, one per lane of one FMA) and bytes/s.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

constexpr int kChains = 12;        // independent accumulators: hides the FMA latency (4 cycles x 2 ports)
constexpr int kSteps = 1 << 12;    // FMA steps per chain per iteration

template <class Vector, int Lanes>
void peak_fma(benchmark::State& state) {
  Vector acc[kChains];
  Vector x, y;
  for (int l = 0; l < Lanes; ++l) {
    x[l] = 0.999999;
    y[l] = 1e-7;
  }
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < Lanes; ++l) acc[c][l] = c + l;
  for (auto _ : state) {
    for (int s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12
      for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * x + y;
      // Keeps x and y opaque, so that the compiler cannot fold the loop.
      asm volatile("" : "+v"(x), "+v"(y));
    }
    for (int c = 0; c < kChains; ++c) benchmark::DoNotOptimize(acc[c]);
  }
  const double madds = static_cast<double>(state.iterations()) * kSteps * kChains * Lanes;
  state.counters["madds/s"] = benchmark::Counter(madds, benchmark::Counter::kIsRate);
}

typedef double Double8 __attribute__((vector_size(64)));
typedef float Float16 __attribute__((vector_size(64)));

void BM_PeakFmaDouble(benchmark::State& state) { peak_fma<Double8, 8>(state); }
void BM_PeakFmaFloat(benchmark::State& state) { peak_fma<Float16, 16>(state); }

// Sum of a 256 MiB array of floats, streamed (well beyond every cache).
void BM_MemoryRead(benchmark::State& state) {
  std::vector<float> data(std::size_t{64} << 20, 1.0f);
  typedef float Float16u __attribute__((vector_size(64), aligned(4)));
  for (auto _ : state) {
    Float16 s0 = {}, s1 = {}, s2 = {}, s3 = {};
    for (std::size_t i = 0; i + 64 <= data.size(); i += 64) {
      s0 += *reinterpret_cast<const Float16u*>(&data[i]);
      s1 += *reinterpret_cast<const Float16u*>(&data[i + 16]);
      s2 += *reinterpret_cast<const Float16u*>(&data[i + 32]);
      s3 += *reinterpret_cast<const Float16u*>(&data[i + 48]);
    }
    Float16 s = s0 + s1 + s2 + s3;
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(data.size() * sizeof(float)) * state.iterations());
}

BENCHMARK(BM_PeakFmaDouble)->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK(BM_PeakFmaFloat)->Unit(benchmark::kMicrosecond)->MinTime(0.2);
BENCHMARK(BM_MemoryRead)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();

}  // namespace
