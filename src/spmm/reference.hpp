// reference.hpp: the verifier, the simplest serial inference, and what every strategy is
// checked against.
//
// Row by row, with a dense row of activations and a dense double accumulator: for each layer,
// z(j) = sum over present k of y(k) * W(k,j) in double, plus the bias in double on the entries
// some product reached, rounded once to float, then ReLU and the cap (SPEC.md, 'Numerics').
// It shares no code with the fast kernels beyond the layer's activation rule.
#pragma once

#include <string>
#include <vector>

#include "layer.hpp"
#include "sparse_matrix.hpp"

namespace sdnn {

// Final activations (input.rows() x N, sorted columns). Needs each layer's weights_csr.
CsrMatrix reference_inference(const Network& network, const CsrMatrix& input);

// 0-based numbers of the rows that hold any nonzero, ascending.
std::vector<Index> categories_of(const CsrMatrix& activations);

// The checksum of final values: their sum in fixed point (each value truncated to a multiple of
// 2^-60, summed as a 128-bit integer). Integer sums do not depend on their order, so the
// checksum is the same however the values are split (rows, columns, ranks, hashing).
__extension__ typedef __int128 ExactSum;
ExactSum exact_sum_of(const CsrMatrix& activations);
ExactSum exact_sum_of(const Value* values, Offset count);  // the same for `count` values
double to_double(ExactSum sum);
inline double checksum_of(const CsrMatrix& activations) { return to_double(exact_sum_of(activations)); }

// "" when a and b hold the same entries with the same float values (both with sorted columns),
// else a description of the first difference.
std::string first_difference(const CsrMatrix& a, const CsrMatrix& b);

}  // namespace sdnn
