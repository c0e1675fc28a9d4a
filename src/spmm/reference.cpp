// reference.cpp: the serial verifier (see reference.hpp).
#include "reference.hpp"

#include <cmath>
#include <sstream>

namespace sdnn {

CsrMatrix reference_inference(const Network& network, const CsrMatrix& input) {
  const Index rows = input.rows(), n = input.cols();
  std::vector<float> y(n);
  std::vector<char> present(n);
  std::vector<double> z(n);
  std::vector<char> reached(n);
  CsrMatrix out(rows, n);
  for (Index i = 0; i < rows; ++i) {
    std::fill(y.begin(), y.end(), 0.0f);
    std::fill(present.begin(), present.end(), 0);
    bool alive = input.end(i) > input.begin(i);
    for (Offset p = input.begin(i); p < input.end(i); ++p) {
      y[input.indices[p]] = input.values[p];
      present[input.indices[p]] = 1;
    }
    for (const Layer& layer : network) {
      if (!alive) break;
      const CsrMatrix& w = layer.weights_csr;
      std::fill(z.begin(), z.end(), 0.0);
      std::fill(reached.begin(), reached.end(), 0);
      for (Index k = 0; k < n; ++k) {
        if (!present[k]) continue;
        for (Offset q = w.begin(k); q < w.end(k); ++q) {
          z[w.indices[q]] += static_cast<double>(y[k]) * static_cast<double>(w.values[q]);
          reached[w.indices[q]] = 1;
        }
      }
      alive = false;
      for (Index j = 0; j < n; ++j) {
        y[j] = reached[j] ? activate(z[j], layer.bias[j]) : 0.0f;
        present[j] = y[j] > 0.0f;
        alive = alive || present[j];
      }
    }
    for (Index j = 0; j < n; ++j)
      if (alive && present[j]) {
        out.indices.push_back(j);
        out.values.push_back(y[j]);
      }
    out.offsets[i + 1] = out.indices.size();
  }
  return out;
}

std::vector<Index> categories_of(const CsrMatrix& activations) {
  std::vector<Index> rows;
  for (Index i = 0; i < activations.rows(); ++i)
    if (activations.end(i) > activations.begin(i)) rows.push_back(i);
  return rows;
}

ExactSum exact_sum_of(const Value* values, Offset count) {
  ExactSum sum = 0;  // each term is below 2^5 * 2^60; 2^127 leaves room for 2^61 of them
  for (Offset p = 0; p < count; ++p) sum += static_cast<ExactSum>(std::trunc(std::ldexp(static_cast<double>(values[p]), 60)));
  return sum;
}

ExactSum exact_sum_of(const CsrMatrix& activations) { return exact_sum_of(activations.values.data(), activations.nnz()); }

double to_double(ExactSum sum) { return std::ldexp(static_cast<double>(sum), -60); }

std::string first_difference(const CsrMatrix& a, const CsrMatrix& b) {
  std::ostringstream why;
  if (a.rows() != b.rows() || a.cols() != b.cols()) {
    why << "shapes differ: " << a.rows() << "x" << a.cols() << " vs " << b.rows() << "x" << b.cols();
    return why.str();
  }
  for (Index i = 0; i < a.rows(); ++i) {
    const Offset na = a.end(i) - a.begin(i), nb = b.end(i) - b.begin(i);
    if (na != nb) {
      why << "row " << i + 1 << ": " << na << " vs " << nb << " nonzeros";
      return why.str();
    }
    for (Offset p = 0; p < na; ++p) {
      const Offset pa = a.begin(i) + p, pb = b.begin(i) + p;
      if (a.indices[pa] != b.indices[pb] || a.values[pa] != b.values[pb]) {
        why << "row " << i + 1 << ": entry (" << a.indices[pa] + 1 << ", " << a.values[pa] << ") vs ("
            << b.indices[pb] + 1 << ", " << b.values[pb] << ")";
        return why.str();
      }
    }
  }
  return "";
}

}  // namespace sdnn
