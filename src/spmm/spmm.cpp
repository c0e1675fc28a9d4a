// spmm.cpp: symbolic and numeric passes of the left (CSR) and right (CSC) layer kernels.
#include "spmm.hpp"

#include <algorithm>
#include <cstdint>

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

// The OR of the column bitmaps (`words` each, in `row_bits`) of the rows of W that row i of a reads.
inline void union_of_row(const CsrMatrix& a, Index i, const std::uint64_t* row_bits, std::size_t words,
                         std::uint64_t* row_union) {
  std::fill(row_union, row_union + words, 0);
  for (Offset p = a.begin(i); p < a.end(i); ++p) {
    const std::uint64_t* bits = row_bits + std::size_t{a.indices[p]} * words;
    for (std::size_t w = 0; w < words; ++w) row_union[w] |= bits[w];
  }
}

// Output entry j of a row: written at `written` (which moves on) when it survives the activation.
inline void write_if_alive(Index j, double sum, const Value* bias, Index* out_indices, Value* out_values,
                           Offset& written) {
  const Value v = activate(sum, bias[j]);
  if (v > 0.0f) {
    out_indices[written] = j;
    out_values[written] = v;
    ++written;
  }
}

}  // namespace

Offset LeftMultiplier::symbolic(const CsrMatrix& in, const CsrMatrix& weights, std::vector<Offset>& row_sizes) {
  row_sizes.resize(in.rows());
  bitmaps_of_ = nullptr;
  if (symbolic_uses_bitmaps(in, weights))
    return symbolic_by_bitmaps(in, weights, (std::size_t{weights.cols()} + 63) / 64, row_sizes);
  spa_.resize(weights.cols());
  Offset total = 0;
  for (Index i = 0; i < in.rows(); ++i) {
    spa_.start();
    for_each_product_of_row(in, i, weights, [&](Index j, double) { spa_.touch(j); });
    row_sizes[i] = spa_.pattern().size();
    total += row_sizes[i];
  }
  return total;
}

// The column sets of W's rows as bitmaps pay off when they are short (N <= 4096: 64 words,
// against 32 marks per row of W on RadiX-Net) and the block reads W's rows at least twice over.
bool LeftMultiplier::symbolic_uses_bitmaps(const CsrMatrix& in, const CsrMatrix& weights) {
  if (weights.cols() > 4096) return false;
  Offset products = 0;
  for (Offset p = 0; p < in.nnz(); ++p) products += weights.end(in.indices[p]) - weights.begin(in.indices[p]);
  return products >= 2 * weights.nnz();
}

// Row i of in * W has as many structural nonzeros as the union of the column sets of the rows k
// of W that row i reads: the OR of their bitmaps, counted. Exact, like the accumulator's marks.
Offset LeftMultiplier::symbolic_by_bitmaps(const CsrMatrix& in, const CsrMatrix& weights, std::size_t words,
                                           std::vector<Offset>& row_sizes) {
  row_bits_.assign(std::size_t{weights.rows()} * words, 0);
  for (Index k = 0; k < weights.rows(); ++k) {
    std::uint64_t* bits = row_bits_.data() + std::size_t{k} * words;
    for (Offset q = weights.begin(k); q < weights.end(k); ++q)
      bits[weights.indices[q] / 64] |= std::uint64_t{1} << (weights.indices[q] % 64);
  }
  union_bits_.resize(words);
  std::uint64_t* row_union = union_bits_.data();
  Offset total = 0;
  for (Index i = 0; i < in.rows(); ++i) {
    union_of_row(in, i, row_bits_.data(), words, row_union);
    Offset count = 0;
    for (std::size_t w = 0; w < words; ++w) count += static_cast<Offset>(__builtin_popcountll(row_union[w]));
    row_sizes[i] = count;
    total += count;
  }
  bitmaps_of_ = &weights;
  return total;
}

void LeftMultiplier::multiply(const ActiveRows& in, const CsrMatrix& weights, const Value* bias, ActiveRows& out) {
  const Offset bound = symbolic(in.rows, weights, row_sizes_);
  if (bitmaps_of_ == &weights)
    numeric_by_bitmaps(in, weights, bias, bound, out);
  else
    numeric(in, weights, bias, bound, out);
}

// The numeric pass where the symbolic one made bitmaps of W's rows: each row's union of them says
// which sums to clear and, afterwards, which to activate, in column order; the products go into
// the dense sums with no mark to check. Every sum adds the same products in the same order as the
// accumulator's, so the values are the same bits.
void LeftMultiplier::numeric_by_bitmaps(const ActiveRows& in, const CsrMatrix& weights, const Value* bias,
                                        Offset bound, ActiveRows& out) {
  const std::size_t words = (std::size_t{weights.cols()} + 63) / 64;
  out.rows.reset(in.rows.rows(), weights.cols());
  out.rows.reserve_nonzeros(bound);
  out.ids.resize(in.rows.rows());
  dense_sums_.resize(weights.cols());
  double* sums = dense_sums_.data();
  std::uint64_t* row_union = union_bits_.data();
  Index* out_indices = out.rows.indices.data();
  Value* out_values = out.rows.values.data();
  Offset written = 0;
  Index kept_rows = 0;
  for (Index i = 0; i < in.rows.rows(); ++i) {
    union_of_row(in.rows, i, row_bits_.data(), words, row_union);
    for (std::size_t w = 0; w < words; ++w)
      for (std::uint64_t bits = row_union[w]; bits != 0; bits &= bits - 1)
        sums[w * 64 + static_cast<std::size_t>(__builtin_ctzll(bits))] = 0.0;
    for_each_product_of_row(in.rows, i, weights, [&](Index j, double product) { sums[j] += product; });
    const Offset row_start = written;
    for (std::size_t w = 0; w < words; ++w)
      for (std::uint64_t bits = row_union[w]; bits != 0; bits &= bits - 1) {
        const auto j = static_cast<Index>(w * 64 + static_cast<std::size_t>(__builtin_ctzll(bits)));
        write_if_alive(j, sums[j], bias, out_indices, out_values, written);
      }
    if (written > row_start) {
      out.ids[kept_rows] = in.ids[i];
      out.rows.offsets[++kept_rows] = written;
    }
  }
  out.rows.resize_major(kept_rows);
  out.ids.resize(kept_rows);
}

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
    spa_.start();
    for_each_product_of_row(in.rows, i, weights, [&](Index j, double product) { spa_.add(j, product); });
    const Offset row_start = written;
    for (Index j : spa_.pattern()) write_if_alive(j, spa_.sum(j), bias, out_indices, out_values, written);
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
