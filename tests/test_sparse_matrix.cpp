// test_sparse_matrix.cpp: the CSR and CSC CompressedMatrix: from_triplets (sorted slices, shape,
// empty rows and columns, duplicate and out-of-range errors), CSR <-> CSC conversion, clone,
// move-only semantics, resize_major, reserve/shrink and sort_indices.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <tuple>
#include <type_traits>

#include "spmm/reference.hpp"
#include "spmm/sparse_matrix.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

static_assert(!std::is_copy_constructible_v<CsrMatrix>, "matrices must not be copyable");
static_assert(!std::is_copy_assignable_v<CsrMatrix>, "matrices must not be copyable");
static_assert(!std::is_copy_constructible_v<CscMatrix>, "matrices must not be copyable");
static_assert(std::is_nothrow_move_constructible_v<CsrMatrix>, "matrices must be movable");
static_assert(std::is_nothrow_move_assignable_v<CscMatrix>, "matrices must be movable");
static_assert(CsrMatrix::is_csr && !CscMatrix::is_csr);

// 4 x 5, triplets out of order; row 2 and columns 1 and 4 (0-based) empty.
std::vector<Triplet> small_triplets() {
  return {{3, 3, 7.0f}, {0, 2, 2.0f}, {1, 0, -3.0f}, {0, 0, 1.0f}, {3, 0, 6.0f}, {1, 3, 4.0f}, {3, 2, 5.0f}};
}

template <class Layout>
void expect_slices_sorted(const CompressedMatrix<Layout>& m) {
  for (Index k = 0; k < m.major_count(); ++k)
    for (Offset p = m.begin(k) + 1; p < m.end(k); ++p) EXPECT_LT(m.indices[p - 1], m.indices[p]) << "slice " << k;
}

TEST(SparseMatrix, DefaultAndShapedAreEmpty) {
  CsrMatrix a;
  EXPECT_EQ(a.rows(), 0u);
  EXPECT_EQ(a.nnz(), 0u);
  CscMatrix b(3, 5);
  EXPECT_EQ(b.rows(), 3u);
  EXPECT_EQ(b.cols(), 5u);
  EXPECT_EQ(b.major_count(), 5u);
  EXPECT_EQ(b.minor_count(), 3u);
  EXPECT_EQ(b.offsets.size(), 6u);
  EXPECT_EQ(b.nnz(), 0u);
}

TEST(SparseMatrix, FromTripletsCsr) {
  const CsrMatrix m = from_triplets<RowMajor>(4, 5, small_triplets());
  EXPECT_EQ(m.rows(), 4u);
  EXPECT_EQ(m.cols(), 5u);
  EXPECT_EQ(m.major_count(), 4u);
  EXPECT_EQ(m.minor_count(), 5u);
  EXPECT_EQ(m.nnz(), 7u);
  EXPECT_EQ(m.offsets, (std::vector<Offset>{0, 2, 4, 4, 7}));
  EXPECT_EQ(std::vector<Index>(m.indices.begin(), m.indices.begin() + 7), (std::vector<Index>{0, 2, 0, 3, 0, 2, 3}));
  EXPECT_EQ(std::vector<Value>(m.values.begin(), m.values.begin() + 7),
            (std::vector<Value>{1.0f, 2.0f, -3.0f, 4.0f, 6.0f, 5.0f, 7.0f}));
  EXPECT_EQ(m.begin(2), m.end(2)) << "row 2 is empty";
}

TEST(SparseMatrix, FromTripletsCsc) {
  const CscMatrix m = from_triplets<ColMajor>(4, 5, small_triplets());
  EXPECT_EQ(m.rows(), 4u);
  EXPECT_EQ(m.cols(), 5u);
  EXPECT_EQ(m.major_count(), 5u);
  EXPECT_EQ(m.minor_count(), 4u);
  EXPECT_EQ(m.nnz(), 7u);
  EXPECT_EQ(m.offsets, (std::vector<Offset>{0, 3, 3, 5, 7, 7}));
  EXPECT_EQ(std::vector<Index>(m.indices.begin(), m.indices.begin() + 7), (std::vector<Index>{0, 1, 3, 0, 3, 1, 3}));
  EXPECT_EQ(std::vector<Value>(m.values.begin(), m.values.begin() + 7),
            (std::vector<Value>{1.0f, -3.0f, 6.0f, 2.0f, 5.0f, 4.0f, 7.0f}));
}

TEST(SparseMatrix, FromTripletsEmptyAndZeroShapes) {
  const CsrMatrix a = from_triplets<RowMajor>(6, 3, {});
  EXPECT_EQ(a.rows(), 6u);
  EXPECT_EQ(a.nnz(), 0u);
  EXPECT_EQ(a.offsets, std::vector<Offset>(7, 0));
  const CscMatrix b = from_triplets<ColMajor>(0, 0, {});
  EXPECT_EQ(b.offsets.size(), 1u);
  EXPECT_EQ(b.nnz(), 0u);
  // Shape from the caller, not from the entries: the last rows and columns may be empty.
  const CsrMatrix c = from_triplets<RowMajor>(100, 200, {{0, 0, 1.0f}});
  EXPECT_EQ(c.rows(), 100u);
  EXPECT_EQ(c.cols(), 200u);
  EXPECT_EQ(c.nnz(), 1u);
}

TEST(SparseMatrix, DuplicateEntryCsrAndCsc) {
  const std::vector<Triplet> t = {{2, 1, 1.0f}, {0, 0, 1.0f}, {2, 1, 5.0f}};
  try {
    from_triplets<RowMajor>(3, 3, t);
    FAIL() << "no DuplicateEntry (CSR)";
  } catch (const DuplicateEntry& e) {
    EXPECT_EQ(e.row, 2u);
    EXPECT_EQ(e.col, 1u);
    EXPECT_STREQ(e.what(), "duplicate entry (3, 2)");  // 1-based in the message
  }
  try {
    from_triplets<ColMajor>(3, 3, t);
    FAIL() << "no DuplicateEntry (CSC)";
  } catch (const DuplicateEntry& e) {
    EXPECT_EQ(e.row, 2u);
    EXPECT_EQ(e.col, 1u);
  }
  // The same column in different rows (or the same row in different columns) is no duplicate.
  EXPECT_NO_THROW(from_triplets<RowMajor>(3, 3, {{0, 1, 1.0f}, {1, 1, 1.0f}, {1, 0, 1.0f}}));
  EXPECT_NO_THROW(from_triplets<ColMajor>(3, 3, {{0, 1, 1.0f}, {1, 1, 1.0f}, {1, 0, 1.0f}}));
}

TEST(SparseMatrix, OutOfRange) {
  EXPECT_THROW(from_triplets<RowMajor>(3, 4, {{3, 0, 1.0f}}), std::out_of_range);
  EXPECT_THROW(from_triplets<RowMajor>(3, 4, {{0, 4, 1.0f}}), std::out_of_range);
  EXPECT_THROW(from_triplets<ColMajor>(3, 4, {{3, 0, 1.0f}}), std::out_of_range);
  EXPECT_THROW(from_triplets<ColMajor>(3, 4, {{0, 4, 1.0f}}), std::out_of_range);
  EXPECT_THROW(from_triplets<RowMajor>(0, 0, {{0, 0, 1.0f}}), std::out_of_range);
  EXPECT_NO_THROW(from_triplets<ColMajor>(3, 4, {{2, 3, 1.0f}}));
}

TEST(SparseMatrix, RoundTripRandom) {
  std::mt19937 rng(11);
  for (const auto& [rows, cols] : std::vector<std::pair<Index, Index>>{{1, 1}, {7, 3}, {3, 17}, {40, 40}, {64, 9}}) {
    const std::vector<Triplet> t = test::random_triplets(rows, cols, 0.3, -2.0f, 2.0f, rng, 5, 4);
    const CsrMatrix csr = from_triplets<RowMajor>(rows, cols, t);
    const CscMatrix csc = from_triplets<ColMajor>(rows, cols, t);
    const CscMatrix csc2 = to_csc(csr);
    const CsrMatrix csr2 = to_csr(csc);
    // Conversions give the same arrays as building directly in that layout.
    EXPECT_EQ(csc2.rows(), rows);
    EXPECT_EQ(csc2.cols(), cols);
    EXPECT_EQ(csc2.offsets, csc.offsets);
    EXPECT_EQ(csc2.indices, std::vector<Index>(csc.indices.begin(), csc.indices.begin() + csc.nnz()));
    EXPECT_EQ(csc2.values, std::vector<Value>(csc.values.begin(), csc.values.begin() + csc.nnz()));
    EXPECT_EQ(first_difference(csr2, csr), "");
    EXPECT_EQ(first_difference(to_csr(to_csc(csr)), csr), "");
    expect_slices_sorted(csc2);
    expect_slices_sorted(csr2);
    // Dense comparison, independent of first_difference.
    EXPECT_EQ(test::dense_of(to_csr(csc2)), test::dense_of(csr));
  }
}

TEST(SparseMatrix, ConvertIgnoresBufferSlack) {
  CsrMatrix a = from_triplets<RowMajor>(2, 3, {{0, 1, 1.0f}, {1, 2, 2.0f}});
  a.reserve_nonzeros(50);  // slack after nnz() holds zeros that must not be taken for entries
  EXPECT_EQ(a.indices.size(), 50u);
  EXPECT_EQ(a.nnz(), 2u);
  const CscMatrix c = to_csc(a);
  EXPECT_EQ(c.nnz(), 2u);
  EXPECT_EQ(c.offsets, (std::vector<Offset>{0, 0, 1, 2}));
  a.shrink_to_nnz();
  EXPECT_EQ(a.indices.size(), 2u);
  EXPECT_EQ(a.values.size(), 2u);
}

TEST(SparseMatrix, CloneIsDeepAndDropsSlack) {
  CsrMatrix a = from_triplets<RowMajor>(3, 3, {{0, 0, 1.0f}, {2, 1, 2.0f}});
  a.reserve_nonzeros(10);
  CsrMatrix b = a.clone();
  EXPECT_EQ(first_difference(a, b), "");
  EXPECT_EQ(b.indices.size(), 2u);
  b.values[0] = 9.0f;
  b.indices[1] = 2;
  EXPECT_EQ(a.values[0], 1.0f);
  EXPECT_EQ(a.indices[1], 1u);
  const CscMatrix c = from_triplets<ColMajor>(3, 3, {{0, 0, 1.0f}, {2, 1, 2.0f}});
  const CscMatrix d = c.clone();
  EXPECT_EQ(d.offsets, c.offsets);
  EXPECT_EQ(d.rows(), 3u);
  EXPECT_EQ(d.cols(), 3u);
}

TEST(SparseMatrix, MoveLeavesDataInTarget) {
  CsrMatrix a = from_triplets<RowMajor>(3, 4, {{1, 3, 2.0f}});
  CsrMatrix b = std::move(a);
  EXPECT_EQ(b.rows(), 3u);
  EXPECT_EQ(b.nnz(), 1u);
  CsrMatrix c;
  c = std::move(b);
  EXPECT_EQ(c.cols(), 4u);
  EXPECT_EQ(c.values[0], 2.0f);
}

TEST(SparseMatrix, ResizeMajor) {
  CsrMatrix a = from_triplets<RowMajor>(4, 5, small_triplets());
  a.resize_major(2);  // keep rows 0 and 1
  EXPECT_EQ(a.rows(), 2u);
  EXPECT_EQ(a.cols(), 5u);
  EXPECT_EQ(a.nnz(), 4u);
  EXPECT_EQ(a.offsets, (std::vector<Offset>{0, 2, 4}));
  a.resize_major(5);  // new rows are empty
  EXPECT_EQ(a.rows(), 5u);
  EXPECT_EQ(a.nnz(), 4u);
  EXPECT_EQ(a.offsets, (std::vector<Offset>{0, 2, 4, 4, 4, 4}));
  CscMatrix c = from_triplets<ColMajor>(4, 5, small_triplets());
  c.resize_major(1);  // keep column 0
  EXPECT_EQ(c.cols(), 1u);
  EXPECT_EQ(c.rows(), 4u);
  EXPECT_EQ(c.nnz(), 3u);
  c.resize_major(0);
  EXPECT_EQ(c.nnz(), 0u);
  EXPECT_EQ(c.cols(), 0u);
}

TEST(SparseMatrix, ResetKeepsCapacity) {
  CsrMatrix a = from_triplets<RowMajor>(4, 5, small_triplets());
  a.reset(2, 8);
  EXPECT_EQ(a.rows(), 2u);
  EXPECT_EQ(a.cols(), 8u);
  EXPECT_EQ(a.nnz(), 0u);
  EXPECT_EQ(a.offsets.size(), 3u);
  EXPECT_GE(a.indices.size(), 7u);
  a.reserve_nonzeros(3);  // never shrinks
  EXPECT_GE(a.indices.size(), 7u);
  EXPECT_EQ(a.indices.size(), a.values.size());
}

TEST(SparseMatrix, SortIndices) {
  CsrMatrix a(3, 6);
  a.offsets = {0, 3, 3, 6};
  a.indices = {5, 0, 3, 2, 1, 4, 99};  // one slot of slack that must stay untouched
  a.values = {5.5f, 0.5f, 3.5f, 2.5f, 1.5f, 4.5f, -1.0f};
  a.sort_indices();
  EXPECT_EQ(a.indices, (std::vector<Index>{0, 3, 5, 1, 2, 4, 99}));
  EXPECT_EQ(a.values, (std::vector<Value>{0.5f, 3.5f, 5.5f, 1.5f, 2.5f, 4.5f, -1.0f}));
  // Random shuffles inside slices come back to the from_triplets arrays.
  std::mt19937 rng(5);
  CscMatrix c = to_csc(test::random_csr(30, 20, 0.4, -1.0f, 1.0f, rng));
  ASSERT_GT(c.nnz(), 100u);
  const CscMatrix sorted = c.clone();
  for (Index k = 0; k < c.major_count(); ++k) {
    std::vector<std::pair<Index, Value>> slice;
    for (Offset p = c.begin(k); p < c.end(k); ++p) slice.emplace_back(c.indices[p], c.values[p]);
    std::shuffle(slice.begin(), slice.end(), rng);
    for (Offset p = c.begin(k); p < c.end(k); ++p) std::tie(c.indices[p], c.values[p]) = slice[p - c.begin(k)];
  }
  c.sort_indices();
  EXPECT_EQ(c.indices, sorted.indices);
  EXPECT_EQ(c.values, sorted.values);
}

}  // namespace
// convert with a range of minor indices: the CSC of those columns, renumbered from 0, equals the
// CSC built from the same triplets filtered and shifted.
TEST(SparseMatrix, ConvertKeepsAColumnRange) {
  const CsrMatrix m = from_triplets<RowMajor>(4, 5, small_triplets());
  std::vector<Triplet> kept;
  for (const Triplet& t : small_triplets())
    if (t.col >= 1 && t.col < 4) kept.push_back({t.row, t.col - 1, t.value});
  const CscMatrix expected = from_triplets<ColMajor>(4, 3, kept);
  const CscMatrix got = convert<ColMajor>(m, 1, 4);
  EXPECT_EQ(got.rows(), 4u);
  EXPECT_EQ(got.cols(), 3u);
  EXPECT_EQ(got.offsets, expected.offsets);
  EXPECT_EQ(std::vector<Index>(got.indices.begin(), got.indices.begin() + got.nnz()),
            std::vector<Index>(expected.indices.begin(), expected.indices.begin() + expected.nnz()));
  EXPECT_EQ(std::vector<Value>(got.values.begin(), got.values.begin() + got.nnz()),
            std::vector<Value>(expected.values.begin(), expected.values.begin() + expected.nnz()));
}

}  // namespace sdnn
