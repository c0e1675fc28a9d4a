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

// Sum of all values in double, row by row in column order: the same for equal matrices.
double checksum_of(const CsrMatrix& activations);

// "" when a and b hold the same entries with the same float values (both with sorted columns),
// else a description of the first difference.
std::string first_difference(const CsrMatrix& a, const CsrMatrix& b);

}  // namespace sdnn
