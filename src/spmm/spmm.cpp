// spmm.cpp: symbolic and numeric passes of the left (CSR) and right (CSC) layer kernels.
#include "spmm.hpp"

#include <algorithm>

namespace sdnn {
namespace {

// Calls visit(j, product) for every product A(i,k) * W(k,j) that contributes to row i of A*W.
template <class Visit>
inline void for_each_product_of_row(const CsrMatrix& a, Index i, const CsrMatrix& w, Visit&& visit) {
  for (Offset p = a.begin(i); p < a.end(i); ++p) {
    const Index k = a.indices[p];
    const double y = a.values[p];
    for (Offset q = w.begin(k); q < w.end(k); ++q) visit(w.indices[q], y * static_cast<double>(w.values[q]));
  }
}

// Calls visit(i, product) for every product A(i,k) * W(k,j) that contributes to column j of A*W.
template <class Visit>
inline void for_each_product_of_column(const CscMatrix& a, const CscMatrix& w, Index j, Visit&& visit) {
  for (Offset q = w.begin(j); q < w.end(j); ++q) {
    const Index k = w.indices[q];
    const double weight = w.values[q];
    for (Offset p = a.begin(k); p < a.end(k); ++p) visit(a.indices[p], static_cast<double>(a.values[p]) * weight);
  }
}

}  // namespace

Offset LeftMultiplier::symbolic(const CsrMatrix& in, const CsrMatrix& weights, std::vector<Offset>& row_sizes) {
  spa_.resize(weights.cols());
  row_sizes.resize(in.rows());
  Offset total = 0;
  for (Index i = 0; i < in.rows(); ++i) {
    spa_.start();
    for_each_product_of_row(in, i, weights, [&](Index j, double) { spa_.touch(j); });
    row_sizes[i] = spa_.pattern().size();
    total += row_sizes[i];
  }
  return total;
}

// No symbolic pass (it cost about as much as the numeric one): out's buffers, reused from call to
// call, grow while the rows are written (numeric).
void LeftMultiplier::multiply(const ActiveRows& in, const CsrMatrix& weights, const Value* bias, ActiveRows& out) {
  numeric(in, weights, bias, 0, out);
}

// Before each row, room for its most entries (its products, at most the columns): the buffers
// grow by half when short, so they end at most 1.5 times the largest output plus one row.
void LeftMultiplier::numeric(const ActiveRows& in, const CsrMatrix& weights, const Value* bias, Offset bound,
                             ActiveRows& out) {
  out.rows.reset(in.rows.rows(), weights.cols());
  out.rows.reserve_nonzeros(bound);
  out.ids.resize(in.rows.rows());
  Index* out_indices = out.rows.indices.data();
  Value* out_values = out.rows.values.data();
  Offset written = 0;
  Index kept_rows = 0;
  for (Index i = 0; i < in.rows.rows(); ++i) {
    Offset products = 0;
    for (Offset p = in.rows.begin(i); p < in.rows.end(i); ++p) products += weights.end(in.rows.indices[p]) - weights.begin(in.rows.indices[p]);
    const Offset room = written + std::min<Offset>(products, weights.cols());
    if (room > out.rows.indices.size()) {
      out.rows.reserve_nonzeros(std::max<Offset>(room, out.rows.indices.size() + out.rows.indices.size() / 2));
      out_indices = out.rows.indices.data();
      out_values = out.rows.values.data();
    }
    spa_.start();
    for_each_product_of_row(in.rows, i, weights, [&](Index j, double product) { spa_.add(j, product); });
    const Offset row_start = written;
    for (Index j : spa_.pattern()) {
      const Value v = activate(spa_.sum(j), bias[j]);
      if (v > 0.0f) {
        out_indices[written] = j;
        out_values[written] = v;
        ++written;
      }
    }
    if (written > row_start) {
      out.ids[kept_rows] = in.ids[i];
      out.rows.offsets[++kept_rows] = written;
    }
  }
  out.rows.resize_major(kept_rows);
  out.ids.resize(kept_rows);
}

Offset RightMultiplier::symbolic(const CscMatrix& in, const CscMatrix& weights, Index first, Index last,
                                 Offset* column_sizes) {
  spa_.resize(in.rows());
  Offset total = 0;
  for (Index j = first; j < last; ++j) {
    spa_.start();
    for_each_product_of_column(in, weights, j, [&](Index i, double) { spa_.touch(i); });
    column_sizes[j] = spa_.pattern().size();
    total += column_sizes[j];
  }
  return total;
}

Offset RightMultiplier::numeric(const CscMatrix& in, const CscMatrix& weights, const Value* bias, Index first,
                                Index last, Offset start, Index* out_indices, Value* out_values,
                                Offset* column_kept) {
  spa_.resize(in.rows());
  Offset written = start;
  for (Index j = first; j < last; ++j) {
    spa_.start();
    for_each_product_of_column(in, weights, j, [&](Index i, double product) { spa_.add(i, product); });
    const Offset column_start = written;
    const Value b = bias[j];
    for (Index i : spa_.pattern()) {
      const Value v = activate(spa_.sum(i), b);
      if (v > 0.0f) {
        out_indices[written] = i;
        out_values[written] = v;
        ++written;
      }
    }
    column_kept[j] = written - column_start;
  }
  return written - start;
}

void RightMultiplier::multiply(const CscMatrix& in, const CscMatrix& weights, const Value* bias, CscMatrix& out) {
  const Index columns = weights.cols();
  sizes_.resize(columns);
  const Offset bound = symbolic(in, weights, 0, columns, sizes_.data());
  out.reset(in.rows(), columns);
  out.reserve_nonzeros(bound);
  numeric(in, weights, bias, 0, columns, 0, out.indices.data(), out.values.data(), out.offsets.data() + 1);
  for (Index j = 0; j < columns; ++j) out.offsets[j + 1] += out.offsets[j];
}

}  // namespace sdnn
