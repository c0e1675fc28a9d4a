// generate.hpp: seeded generators of RadiX-Net networks and of synthetic inputs (SPEC.md,
// 'RadiX-Net structure').
//
// With M = N/16 and R = log2(M): base layer k (1..R) has W(i,j) = 1/16 iff
// ((i mod M) - (j mod M)) mod M is 0 or 2^(k-1), which is kron(ones(16,16), I + P^(2^(k-1))).
// Layer k > R has the structure of base layer ((k-1) mod R) + 1 with its rows and columns
// permuted by two independent seeded random permutations, fresh for every layer. Every row
// and every column holds exactly 32 nonzeros. Results depend only on (N, layer, seed): the
// permutations use std::mt19937_64 (whose output the standard fixes) and our own shuffle.
#pragma once

#include <cstdint>
#include <vector>

#include "spmm/layer.hpp"
#include "spmm/sparse_matrix.hpp"

namespace sdnn {

// R = log2(N/16) for N = 16 * 2^R with R >= 1; throws std::invalid_argument otherwise.
Index radixnet_base_layers(Index neurons);

// The challenge's bias for N = 1024, 4096, 16384, 65536 (-0.3, -0.35, -0.4, -0.45), and the same
// rule, -0.3 - 0.025 * log2(N / 1024), for any other N.
Value default_bias(Index neurons);

// A seeded random permutation of 0..n-1 (Fisher-Yates on std::mt19937_64).
std::vector<Index> random_permutation(Index n, std::uint64_t seed);

// Layer `layer` (1-based) of the RadiX-Net network with N neurons, weights 1/16, as CSR.
CsrMatrix radixnet_layer(Index neurons, Index layer, std::uint64_t seed);

// Layers 1..layers, bias default_bias(N) unless given.
Network generate_network(Index neurons, Index layers, std::uint64_t seed);
Network generate_network(Index neurons, Index layers, std::uint64_t seed, Value bias);

// Synthetic inputs: `rows` x N, values 1, seeded. About 97% of the rows are light (a random 2%
// to 20% of the neurons set) and die within a few layers; about 3% are heavy (35% to 50%) and
// survive and saturate, so a few percent of the rows survive 120 layers (docs/how-it-works.md,
// 'The generated problem and synthetic inputs').
CsrMatrix generate_inputs(Index rows, Index neurons, std::uint64_t seed);

}  // namespace sdnn
