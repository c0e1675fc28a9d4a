// sparse_matrix.hpp: compressed sparse matrices (CSR and CSC) of float values.
//
// One template serves both layouts: a CSR matrix compresses rows (offsets per row, column
// indices), a CSC matrix compresses columns (offsets per column, row indices). Indices inside
// a matrix are 32-bit, offsets into the nonzero arrays 64-bit. Matrices are move-only: they hold
// too much data to copy by accident; `clone()` copies on purpose.
//
// The index and value arrays may be longer than nnz(): kernels reuse them as buffers from layer
// to layer and only grow them. nnz() is offsets.back(), never indices.size().
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "array.hpp"

namespace sdnn {

using Index = std::uint32_t;   // a row or column number inside one matrix
using Offset = std::uint64_t;  // a position in a matrix's nonzero arrays
using Value = float;           // activations and weights between layers

struct Triplet {
  Index row;
  Index col;
  Value value;
};

// Thrown by from_triplets when the same (row, col) appears twice.
struct DuplicateEntry : std::runtime_error {
  DuplicateEntry(Index r, Index c)
      : std::runtime_error("duplicate entry (" + std::to_string(r + 1) + ", " + std::to_string(c + 1) + ")"),
        row(r), col(c) {}
  Index row, col;
};

struct RowMajor {};  // CSR: major = row
struct ColMajor {};  // CSC: major = column

template <class Layout>
class CompressedMatrix {
 public:
  CompressedMatrix() : offsets(1, 0) {}
  CompressedMatrix(Index rows, Index cols) { reset(rows, cols); }
  CompressedMatrix(const CompressedMatrix&) = delete;
  CompressedMatrix& operator=(const CompressedMatrix&) = delete;
  CompressedMatrix(CompressedMatrix&&) noexcept = default;
  CompressedMatrix& operator=(CompressedMatrix&&) noexcept = default;

  static constexpr bool is_csr = std::is_same_v<Layout, RowMajor>;

  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  Index major_count() const { return major_of(rows_, cols_); }
  Index minor_count() const { return is_csr ? cols_ : rows_; }
  Offset nnz() const { return offsets.back(); }
  Offset begin(Index major) const { return offsets[major]; }
  Offset end(Index major) const { return offsets[major + 1]; }

  // Sets the shape and empties the matrix, keeping the buffers' capacity.
  void reset(Index rows, Index cols) {
    rows_ = rows;
    cols_ = cols;
    offsets.assign(major_of(rows, cols) + 1, 0);
  }
  // Changes the number of rows (CSR) or columns (CSC), keeping the offsets of those that stay.
  void resize_major(Index count) {
    (is_csr ? rows_ : cols_) = count;
    offsets.resize(static_cast<std::size_t>(count) + 1, offsets.back());
  }
  // Makes room for at least `count` nonzeros without shrinking.
  void reserve_nonzeros(Offset count) {
    if (indices.size() < count) {
      indices.resize(count);
      values.resize(count);
    }
  }
  // Drops buffer slack so that indices.size() == values.size() == nnz().
  void shrink_to_nnz() {
    indices.resize(nnz());
    values.resize(nnz());
  }
  CompressedMatrix clone() const {
    CompressedMatrix copy(rows_, cols_);
    copy.offsets = offsets;
    copy.indices.assign(indices.begin(), indices.begin() + static_cast<std::ptrdiff_t>(nnz()));
    copy.values.assign(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(nnz()));
    return copy;
  }
  // Sorts the minor indices inside each major slice (values follow).
  void sort_indices();

  // A read-only matrix over arrays owned elsewhere (offsets: major_count() + 1 entries).
  static CompressedMatrix view(Index rows, Index cols, const Offset* offsets, const Index* indices,
                               const Value* values) {
    CompressedMatrix m;
    m.rows_ = rows;
    m.cols_ = cols;
    m.offsets = Array<Offset>::view(offsets, static_cast<std::size_t>(major_of(rows, cols)) + 1);
    m.indices = Array<Index>::view(indices, m.offsets.back());
    m.values = Array<Value>::view(values, m.offsets.back());
    return m;
  }

  Array<Offset> offsets;  // major_count() + 1 entries
  Array<Index> indices;   // minor index of each nonzero
  Array<Value> values;    // value of each nonzero

 private:
  static Index major_of(Index rows, Index cols) { return is_csr ? rows : cols; }
  Index rows_ = 0, cols_ = 0;
};

using CsrMatrix = CompressedMatrix<RowMajor>;
using CscMatrix = CompressedMatrix<ColMajor>;

template <class Layout>
void CompressedMatrix<Layout>::sort_indices() {
  std::vector<std::pair<Index, Value>> slice;
  for (Index m = 0; m < major_count(); ++m) {
    const Offset b = begin(m), e = end(m);
    if (std::is_sorted(indices.begin() + b, indices.begin() + e)) continue;
    slice.clear();
    for (Offset p = b; p < e; ++p) slice.emplace_back(indices[p], values[p]);
    std::sort(slice.begin(), slice.end(), [](auto& x, auto& y) { return x.first < y.first; });
    for (Offset p = b; p < e; ++p) {
      indices[p] = slice[p - b].first;
      values[p] = slice[p - b].second;
    }
  }
}

// Builds a matrix from (row, col, value) triplets, 0-based, in any order. Indices inside each
// slice come out sorted. Throws DuplicateEntry on a repeated (row, col), std::out_of_range on an
// index outside the shape.
template <class Layout>
CompressedMatrix<Layout> from_triplets(Index rows, Index cols, const std::vector<Triplet>& triplets) {
  CompressedMatrix<Layout> m(rows, cols);
  constexpr bool csr = CompressedMatrix<Layout>::is_csr;
  for (const Triplet& t : triplets) {
    if (t.row >= rows || t.col >= cols) throw std::out_of_range("triplet index outside the matrix shape");
    ++m.offsets[(csr ? t.row : t.col) + 1];
  }
  for (Index i = 0; i < m.major_count(); ++i) m.offsets[i + 1] += m.offsets[i];
  m.indices.resize(triplets.size());
  m.values.resize(triplets.size());
  std::vector<Offset> next(m.offsets.begin(), m.offsets.end() - 1);
  for (const Triplet& t : triplets) {
    const Offset p = next[csr ? t.row : t.col]++;
    m.indices[p] = csr ? t.col : t.row;
    m.values[p] = t.value;
  }
  m.sort_indices();
  for (Index i = 0; i < m.major_count(); ++i)
    for (Offset p = m.begin(i) + 1; p < m.end(i); ++p)
      if (m.indices[p] == m.indices[p - 1])
        throw csr ? DuplicateEntry(i, m.indices[p]) : DuplicateEntry(m.indices[p], i);
  return m;
}

// Converts between CSR and CSC (the same nonzeros, the other compression). Minor indices come
// out sorted in every slice. With [first, last): only the entries whose minor index lies there
// (the columns of a CSR matrix, the rows of a CSC one), renumbered from 0.
template <class To, class From>
CompressedMatrix<To> convert(const CompressedMatrix<From>& in, Index first, Index last) {
  static_assert(!std::is_same_v<To, From>, "use clone() to copy within one layout");
  constexpr bool rows_kept = CompressedMatrix<From>::is_csr;  // CSR in: the kept minor range is columns
  CompressedMatrix<To> out(rows_kept ? in.rows() : last - first, rows_kept ? last - first : in.cols());
  const Index out_major = out.major_count();
  auto kept = [&](Index k) { return k >= first && k < last; };
  for (Offset p = 0; p < in.nnz(); ++p)
    if (kept(in.indices[p])) ++out.offsets[in.indices[p] - first + 1];
  for (Index i = 0; i < out_major; ++i) out.offsets[i + 1] += out.offsets[i];
  out.indices.resize(out.nnz());
  out.values.resize(out.nnz());
  std::vector<Offset> next(out.offsets.begin(), out.offsets.end() - 1);
  for (Index m = 0; m < in.major_count(); ++m)
    for (Offset p = in.begin(m); p < in.end(m); ++p)
      if (kept(in.indices[p])) {
        const Offset q = next[in.indices[p] - first]++;
        out.indices[q] = m;
        out.values[q] = in.values[p];
      }
  return out;
}
template <class To, class From>
CompressedMatrix<To> convert(const CompressedMatrix<From>& in) {
  return convert<To>(in, 0, in.minor_count());
}

inline CscMatrix to_csc(const CsrMatrix& a) { return convert<ColMajor>(a); }
inline CsrMatrix to_csr(const CscMatrix& a) { return convert<RowMajor>(a); }

}  // namespace sdnn
