// bench_support.hpp: what the benchmarks share. activations_after runs a network over its input
// (left multiplication, one thread) and keeps a snapshot of the alive rows (sorted columns, with
// their input row ids) after each of the given depths, ascending: the realistic activations that
// the kernel and communication benchmarks start a layer from. measured_peak_madds (bench_peak.cpp)
// is one core's double-precision multiply-add peak on the dispatched SIMD target, which the kernel
// benchmarks report their share of.
#pragma once

#include <map>
#include <vector>

#include "spmm/layer.hpp"
#include "spmm/spmm.hpp"

namespace sdnn::bench {

double measured_peak_madds();  // multiply-adds per second, measured once

inline std::map<Index, ActiveRows> activations_after(const Network& network, const CsrMatrix& input,
                                                      const std::vector<Index>& depths) {
  std::map<Index, ActiveRows> snapshots;
  ActiveRows current, next;
  current.rows = input.clone();
  current.ids.resize(input.rows());
  for (Index i = 0; i < input.rows(); ++i) current.ids[i] = i;
  LeftMultiplier left(input.cols());
  Index done = 0;
  for (Index k : depths) {
    for (; done < k; ++done) {
      const Layer& layer = network[done];
      left.multiply(current, layer.weights_csr, layer.bias.data(), next);
      std::swap(current, next);
    }
    ActiveRows snapshot;
    snapshot.rows = current.rows.clone();
    snapshot.rows.sort_indices();
    snapshot.ids = current.ids;
    snapshots.emplace(k, std::move(snapshot));
  }
  return snapshots;
}

}  // namespace sdnn::bench
