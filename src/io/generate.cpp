// generate.cpp: RadiX-Net layers and synthetic inputs (see generate.hpp).
#include "io/generate.hpp"

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

namespace sdnn {

Index radixnet_base_layers(Index neurons) {
  if (neurons < 32 || neurons % 16 != 0 || ((neurons / 16) & (neurons / 16 - 1)) != 0)
    throw std::invalid_argument("RadiX-Net needs N = 16 * 2^R neurons with R >= 1 (32, 64, ..., 1024, 4096, ...), not " +
                                std::to_string(neurons));
  Index r = 0;
  for (Index m = neurons / 16; m > 1; m /= 2) ++r;
  return r;
}

Value default_bias(Index neurons) {
  return static_cast<Value>(-0.3 - 0.025 * std::log2(static_cast<double>(neurons) / 1024.0));
}

namespace {
// Mixes (seed, a, b) into one well-spread seed (splitmix64 steps).
std::uint64_t mix(std::uint64_t seed, std::uint64_t a, std::uint64_t b) {
  std::uint64_t x = seed;
  for (std::uint64_t v : {a, b}) {
    x += 0x9E3779B97F4A7C15ull + v;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
  }
  return x;
}
// Uniform in 0..bound-1 without modulo bias (rejection), from the standard-defined engine output.
std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t bound) {
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
  std::uint64_t x;
  do x = rng();
  while (x >= limit);
  return x % bound;
}
}  // namespace

std::vector<Index> random_permutation(Index n, std::uint64_t seed) {
  std::vector<Index> p(n);
  for (Index i = 0; i < n; ++i) p[i] = i;
  std::mt19937_64 rng(seed);
  for (Index i = n; i > 1; --i) std::swap(p[i - 1], p[uniform_below(rng, i)]);
  return p;
}

CsrMatrix radixnet_layer(Index neurons, Index layer, std::uint64_t seed) {
  const Index base_layers = radixnet_base_layers(neurons);
  if (layer < 1) throw std::invalid_argument("layers are numbered from 1");
  const Index m = neurons / 16;
  const Index base = (layer - 1) % base_layers + 1;
  const Index shift = Index{1} << (base - 1);
  std::vector<Index> row_of(neurons), col_of(neurons);  // identity for base layers
  if (layer <= base_layers) {
    for (Index i = 0; i < neurons; ++i) row_of[i] = col_of[i] = i;
  } else {
    row_of = random_permutation(neurons, mix(seed, layer, 0));
    col_of = random_permutation(neurons, mix(seed, layer, 1));
  }
  const Value weight = 1.0f / 16.0f;
  std::vector<Triplet> triplets;
  triplets.reserve(static_cast<std::size_t>(neurons) * 32);
  for (Index i = 0; i < neurons; ++i)
    for (Index block = 0; block < 16; ++block)
      for (Index d : {Index{0}, shift}) {
        // (i mod M) - (j mod M) = d (mod M)  <=>  j mod M = (i - d) mod M
        const Index j = block * m + (i % m + m - d) % m;
        triplets.push_back({row_of[i], col_of[j], weight});
      }
  return from_triplets<RowMajor>(neurons, neurons, triplets);
}

Network generate_network(Index neurons, Index layers, std::uint64_t seed, Value bias) {
  radixnet_base_layers(neurons);  // throws for an N that is not 16 * 2^R, before the threads start
  Network network(layers);
#pragma omp parallel for schedule(dynamic, 1)
  for (Index l = 0; l < layers; ++l) {
    network[l].weights_csr = radixnet_layer(neurons, l + 1, seed);
    network[l].bias.assign(neurons, bias);
  }
  return network;
}

Network generate_network(Index neurons, Index layers, std::uint64_t seed) {
  return generate_network(neurons, layers, seed, default_bias(neurons));
}

CsrMatrix generate_inputs(Index rows, Index neurons, std::uint64_t seed) {
  // Light rows (density 2% to 20%) die within a few layers; heavy rows (35% to 50%), about 3 in
  // 100, grow and saturate. Both ranges sit well away from the threshold near 29%, so no row's
  // fate is left to rounding.
  constexpr double kHeavyShare = 0.03, kLight[2] = {0.02, 0.20}, kHeavy[2] = {0.35, 0.50};
  constexpr std::uint64_t kSteps = 1u << 20;
  CsrMatrix y(rows, neurons);
  std::vector<char> used(neurons);
  for (Index i = 0; i < rows; ++i) {
    std::mt19937_64 rng(mix(seed, i, 7));
    const bool heavy = static_cast<double>(uniform_below(rng, kSteps)) < kHeavyShare * kSteps;
    const double* range = heavy ? kHeavy : kLight;
    const double density = range[0] + (range[1] - range[0]) * static_cast<double>(uniform_below(rng, kSteps)) / kSteps;
    const Index count = static_cast<Index>(density * neurons);
    std::fill(used.begin(), used.end(), 0);
    for (Index c = 0; c < count; ++c) {
      Index j;
      do j = static_cast<Index>(uniform_below(rng, neurons));
      while (used[j]);
      used[j] = 1;
    }
    for (Index j = 0; j < neurons; ++j)
      if (used[j]) {
        y.indices.push_back(j);
        y.values.push_back(1.0f);
      }
    y.offsets[i + 1] = y.indices.size();
  }
  return y;
}

}  // namespace sdnn
