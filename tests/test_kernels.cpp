// test_kernels.cpp: one layer of the CSR (Left), CSC (Right) and dense-panel kernels against reference_inference,
// entry by entry, on seeded random problems (empty rows/columns, dying rows, the cap, N not a power of two);
// symbolic counts against a brute-force boolean product; ActiveRows ids; buffer reuse; activate()'s rounding;
// the dense-panel kernel on every SIMD target this build compiled and this CPU supports.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "io/generate.hpp"
#include "spmm/dense_rows.hpp"
#include "spmm/layer.hpp"
#include "spmm/reference.hpp"
#include "spmm/spmm.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

struct Problem {
  CsrMatrix y;
  Layer layer;
};

// Y (rows x n) with every 6th row (5, 11, ...) empty; W (n x n) with every 5th row and 7th column empty.
Problem random_problem(Index rows, Index n, std::uint32_t seed, double w_density, float w_lo, float w_hi,
                       float b_lo, float b_hi) {
  std::mt19937 rng(seed);
  Problem p;
  p.y = test::random_inputs(rows, n, 0.5, 0.1f, 2.0f, rng, 6);
  p.layer.weights_csr = test::random_csr(n, n, w_density, w_lo, w_hi, rng, 5, 7);
  p.layer.weights_csc = to_csc(p.layer.weights_csr);
  std::uniform_real_distribution<float> b(b_lo, b_hi);
  p.layer.bias.resize(n);
  for (Value& x : p.layer.bias) x = b(rng);
  return p;
}

// W whose column j reads the inputs of column j % leaders, with values of its own (as in a
// RadiX-Net layer, whose columns share their inputs 16 by 16), so that the dense-panel kernel
// takes its grouped path; the group of j holds j, j + leaders, j + 2 leaders, ...
Problem grouped_problem(Index rows, Index n, Index leaders, std::uint32_t seed, float b_lo, float b_hi) {
  Problem p = random_problem(rows, n, seed, 0.3, -1.0f, 1.5f, b_lo, b_hi);
  std::mt19937 rng(seed + 1);
  std::uniform_real_distribution<float> w(-1.0f, 1.5f);
  std::vector<Triplet> t;
  const CscMatrix& c = p.layer.weights_csc;
  for (Index j = 0; j < n; ++j)
    for (Offset q = c.offsets[j % leaders]; q < c.offsets[j % leaders + 1]; ++q) t.push_back({c.indices[q], j, w(rng)});
  p.layer.weights_csr = from_triplets<RowMajor>(n, n, t);
  p.layer.weights_csc = to_csc(p.layer.weights_csr);
  return p;
}

CsrMatrix reference_one_layer(const Layer& layer, const CsrMatrix& y) {
  Network one;
  one.push_back(Layer{layer.weights_csr.clone(), CscMatrix(), layer.bias, {}});
  return reference_inference(one, y);
}

ActiveRows all_rows(const CsrMatrix& y, Index id_base = 0, Index id_step = 1) {
  ActiveRows a;
  a.rows = y.clone();
  for (Index i = 0; i < y.rows(); ++i) a.ids.push_back(id_base + i * id_step);
  return a;
}

// The rows of `a` put back at their ids in a rows x cols matrix, sorted.
CsrMatrix place(const ActiveRows& a, Index rows, Index cols, Index id_base = 0, Index id_step = 1) {
  std::vector<Triplet> t;
  for (Index r = 0; r < a.rows.rows(); ++r)
    for (Offset p = a.rows.begin(r); p < a.rows.end(r); ++p)
      t.push_back({(a.ids[r] - id_base) / id_step, a.rows.indices[p], a.rows.values[p]});
  return from_triplets<RowMajor>(rows, cols, t);
}

// "" when a and b hold the same rows under the same ids, whatever their order, with zero
// padding after the last; else the first difference.
std::string same_rows(const DenseRows& a, const DenseRows& b) {
  if (a.neurons != b.neurons || a.rows() != b.rows() || a.panel.size() != b.panel.size())
    return "shapes differ: " + std::to_string(a.rows()) + " vs " + std::to_string(b.rows()) + " rows";
  std::map<Index, Index> place_in_b;
  for (Index r = 0; r < b.rows(); ++r) place_in_b[b.ids[r]] = r;
  for (Index r = 0; r < a.rows(); ++r) {
    const auto found = place_in_b.find(a.ids[r]);
    if (found == place_in_b.end()) return "id " + std::to_string(a.ids[r]) + " only in the first";
    for (Index k = 0; k < a.neurons; ++k)
      if (const Value x = a.at(r, k), y = b.at(found->second, k); std::memcmp(&x, &y, sizeof(Value)) != 0)
        return "id " + std::to_string(a.ids[r]) + " neuron " + std::to_string(k);
  }
  for (const DenseRows* d : {&a, &b})
    for (Index r = d->rows(); r < d->panels() * kPanelRows; ++r)
      for (Index k = 0; k < d->neurons; ++k)
        if (d->panel[std::size_t{r / kPanelRows} * d->neurons * kPanelRows + std::size_t{k} * kPanelRows +
                     r % kPanelRows] != 0.0f)
          return "padding row " + std::to_string(r) + " not zero";
  return "";
}

CsrMatrix left_one_layer(const Layer& layer, const CsrMatrix& y) {
  LeftMultiplier left(y.cols());
  ActiveRows out;
  left.multiply(all_rows(y), layer.weights_csr, layer.bias.data(), out);
  EXPECT_EQ(out.ids.size(), out.rows.rows());
  EXPECT_EQ(out.rows.cols(), layer.weights_csr.cols());
  for (Index r = 0; r < out.rows.rows(); ++r) EXPECT_LT(out.rows.begin(r), out.rows.end(r)) << "kept an empty row";
  return place(out, y.rows(), layer.weights_csr.cols());
}

CsrMatrix dense_one_layer(const Layer& layer, const CsrMatrix& y) {
  ActiveRows in = all_rows(y);
  DenseRows panels, out_panels;
  to_dense(in, y.cols(), panels);
  DenseMultiplier dense;
  dense.multiply(panels, layer.weights_csc, layer.bias.data(), out_panels);
  ActiveRows out;
  to_sparse(out_panels, out);
  EXPECT_EQ(dense.last_nonzeros(), out.rows.nnz());
  for (Index r = 0; r < out.rows.rows(); ++r) EXPECT_LT(out.rows.begin(r), out.rows.end(r)) << "kept an empty row";
  return place(out, y.rows(), layer.weights_csc.cols());
}

CsrMatrix right_one_layer(const Layer& layer, const CsrMatrix& y) {
  RightMultiplier right(y.rows());
  CscMatrix out;
  right.multiply(to_csc(y), layer.weights_csc, layer.bias.data(), out);
  EXPECT_EQ(out.rows(), y.rows());
  EXPECT_EQ(out.cols(), layer.weights_csc.cols());
  return to_csr(out);
}

// Exact structural nonzeros of each row of Y*W by a dense boolean product.
std::vector<Offset> brute_force_row_sizes(const CsrMatrix& y, const CsrMatrix& w) {
  const auto py = test::pattern_of(y), pw = test::pattern_of(w);
  std::vector<Offset> sizes(y.rows(), 0);
  for (Index i = 0; i < y.rows(); ++i)
    for (Index j = 0; j < w.cols(); ++j) {
      bool any = false;
      for (Index k = 0; k < w.rows() && !any; ++k) any = py[i][k] && pw[k][j];
      sizes[i] += any;
    }
  return sizes;
}
std::vector<Offset> brute_force_column_sizes(const CsrMatrix& y, const CsrMatrix& w) {
  const auto py = test::pattern_of(y), pw = test::pattern_of(w);
  std::vector<Offset> sizes(w.cols(), 0);
  for (Index j = 0; j < w.cols(); ++j)
    for (Index i = 0; i < y.rows(); ++i) {
      bool any = false;
      for (Index k = 0; k < w.rows() && !any; ++k) any = py[i][k] && pw[k][j];
      sizes[j] += any;
    }
  return sizes;
}

Offset nonempty_rows(const CsrMatrix& a) { return categories_of(a).size(); }

struct Shape {
  Index rows, n;
};

class KernelsRandom : public ::testing::TestWithParam<Shape> {};

TEST_P(KernelsRandom, BothKernelsEqualReference) {
  const Shape s = GetParam();
  Offset died = 0, survived = 0, checked = 0;
  for (std::uint32_t seed = 1; seed <= 6; ++seed) {
    const double density = 0.05 + 0.05 * seed;
    const Problem p = random_problem(s.rows, s.n, seed * 101 + s.n, density, -1.0f, 1.0f, -0.6f, 0.2f);
    const CsrMatrix expected = reference_one_layer(p.layer, p.y);
    EXPECT_EQ(first_difference(left_one_layer(p.layer, p.y), expected), "") << "seed " << seed;
    EXPECT_EQ(first_difference(right_one_layer(p.layer, p.y), expected), "") << "seed " << seed;
    EXPECT_EQ(first_difference(dense_one_layer(p.layer, p.y), expected), "") << "seed " << seed;
    died += nonempty_rows(p.y) - nonempty_rows(expected);
    survived += nonempty_rows(expected);
    checked += expected.nnz();
  }
  // The problems are not trivial: some rows die in this layer, some survive, entries are compared.
  EXPECT_GT(survived, 0u);
  EXPECT_GT(checked, 0u);
  if (s.rows >= 30) {
    EXPECT_GT(died, 0u);
    EXPECT_GT(checked, 100u);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, KernelsRandom,
                         ::testing::Values(Shape{1, 37}, Shape{30, 37}, Shape{50, 64}, Shape{80, 100}, Shape{13, 3}),
                         [](const ::testing::TestParamInfo<Shape>& shape) {
                           return "rows" + std::to_string(shape.param.rows) + "_n" + std::to_string(shape.param.n);
                         });

TEST(Kernels, EmptyColumnsOfWeightsGiveEmptyOutputColumns) {
  const Problem p = random_problem(40, 37, 3, 0.6, 0.1f, 1.0f, -0.1f, 0.0f);
  const CsrMatrix left = left_one_layer(p.layer, p.y), right = right_one_layer(p.layer, p.y);
  EXPECT_EQ(first_difference(left, reference_one_layer(p.layer, p.y)), "");
  EXPECT_EQ(first_difference(right, left), "");
  const CscMatrix by_column = to_csc(left);
  Offset nonempty = 0;
  for (Index j = 0; j < 37; ++j) {
    if (j % 7 == 6)
      EXPECT_EQ(by_column.begin(j), by_column.end(j)) << "column " << j << " of W is empty";
    else
      nonempty += by_column.end(j) > by_column.begin(j);
  }
  EXPECT_GT(nonempty, 20u);
  // Empty input rows stay empty.
  for (Index i = 5; i < 40; i += 6) EXPECT_EQ(left.begin(i), left.end(i));
}

TEST(Kernels, RowsThatDieAtTheFirstLayer) {
  // Only negative weights: every row dies; then a problem where only some die.
  const Problem all_die = random_problem(25, 37, 9, 0.4, -1.0f, -0.01f, -0.3f, 0.0f);
  ASSERT_GT(nonempty_rows(all_die.y), 15u);
  EXPECT_EQ(reference_one_layer(all_die.layer, all_die.y).nnz(), 0u);
  LeftMultiplier left(37);
  ActiveRows out;
  left.multiply(all_rows(all_die.y), all_die.layer.weights_csr, all_die.layer.bias.data(), out);
  EXPECT_EQ(out.rows.rows(), 0u);
  EXPECT_TRUE(out.ids.empty());
  EXPECT_EQ(out.rows.nnz(), 0u);
  EXPECT_EQ(right_one_layer(all_die.layer, all_die.y).nnz(), 0u);
  // A large negative bias kills rows whose sums are small, but not all.
  const Problem some_die = random_problem(60, 64, 10, 0.2, -0.5f, 1.0f, -1.5f, -1.0f);
  const CsrMatrix expected = reference_one_layer(some_die.layer, some_die.y);
  EXPECT_GT(nonempty_rows(some_die.y), nonempty_rows(expected));
  EXPECT_GT(nonempty_rows(expected), 0u);
  EXPECT_EQ(first_difference(left_one_layer(some_die.layer, some_die.y), expected), "");
  EXPECT_EQ(first_difference(right_one_layer(some_die.layer, some_die.y), expected), "");
  EXPECT_EQ(first_difference(dense_one_layer(some_die.layer, some_die.y), expected), "");
}

TEST(Kernels, ValuesReachTheCap) {
  const Problem p = random_problem(40, 100, 12, 0.3, -2.0f, 20.0f, -0.5f, 0.5f);
  const CsrMatrix expected = reference_one_layer(p.layer, p.y);
  const Offset capped = test::count_equal(expected, kActivationCap);
  EXPECT_GT(capped, 100u);
  EXPECT_LT(capped, expected.nnz()) << "some values stay below the cap";
  for (Offset q = 0; q < expected.nnz(); ++q) EXPECT_LE(expected.values[q], kActivationCap);
  EXPECT_EQ(first_difference(left_one_layer(p.layer, p.y), expected), "");
  EXPECT_EQ(first_difference(right_one_layer(p.layer, p.y), expected), "");
  EXPECT_EQ(first_difference(dense_one_layer(p.layer, p.y), expected), "");
}

TEST(Kernels, HandComputedLayer) {
  // Y = [1 2 0; 0 0 0; 0 0 3], W = [1 -1 0; 0.5 1 0; 0 0 20], b = (0.5, -2.5, -1).
  // Y*W = [2 1 0; 0 0 0; 0 0 60]; + b on the entries -> [2.5 -1.5 .; . . .; . . 59] -> [2.5 . .; . . .; . . 32].
  Layer layer;
  layer.weights_csr = from_triplets<RowMajor>(3, 3, {{0, 0, 1.0f}, {0, 1, -1.0f}, {1, 0, 0.5f}, {1, 1, 1.0f}, {2, 2, 20.0f}});
  layer.weights_csc = to_csc(layer.weights_csr);
  layer.bias = {0.5f, -2.5f, -1.0f};
  const CsrMatrix y = from_triplets<RowMajor>(3, 3, {{0, 0, 1.0f}, {0, 1, 2.0f}, {2, 2, 3.0f}});
  const CsrMatrix expected = from_triplets<RowMajor>(3, 3, {{0, 0, 2.5f}, {2, 2, 32.0f}});
  EXPECT_EQ(first_difference(reference_one_layer(layer, y), expected), "");
  EXPECT_EQ(first_difference(left_one_layer(layer, y), expected), "");
  EXPECT_EQ(first_difference(right_one_layer(layer, y), expected), "");
  EXPECT_EQ(first_difference(dense_one_layer(layer, y), expected), "");
}

TEST(Kernels, BiasOnlyOnStructuralNonzeros) {
  // A positive bias must not create entries where no product reached.
  Layer layer;
  layer.weights_csr = from_triplets<RowMajor>(4, 4, {{0, 1, 1.0f}, {2, 3, 1.0f}});
  layer.weights_csc = to_csc(layer.weights_csr);
  layer.bias = {5.0f, 5.0f, 5.0f, 5.0f};
  const CsrMatrix y = from_triplets<RowMajor>(2, 4, {{0, 0, 1.0f}, {1, 1, 1.0f}});
  const CsrMatrix expected = from_triplets<RowMajor>(2, 4, {{0, 1, 6.0f}});
  EXPECT_EQ(first_difference(reference_one_layer(layer, y), expected), "");
  EXPECT_EQ(first_difference(left_one_layer(layer, y), expected), "");
  EXPECT_EQ(first_difference(right_one_layer(layer, y), expected), "");
  EXPECT_EQ(first_difference(dense_one_layer(layer, y), expected), "");
}

TEST(Kernels, SymbolicCountsEqualBruteForce) {
  for (std::uint32_t seed = 20; seed < 26; ++seed) {
    const Index n = seed % 2 ? 37 : 64;
    const Problem p = random_problem(30, n, seed, 0.03 * (seed - 19), -1.0f, 1.0f, -0.5f, 0.0f);
    const std::vector<Offset> rows = brute_force_row_sizes(p.y, p.layer.weights_csr);
    const std::vector<Offset> cols = brute_force_column_sizes(p.y, p.layer.weights_csr);
    Offset total = 0;
    for (Offset r : rows) total += r;
    ASSERT_GT(total, 0u);
    ASSERT_LT(total, Offset{30} * n) << "the product is not dense";

    LeftMultiplier left(n);
    std::vector<Offset> row_sizes;
    EXPECT_EQ(left.symbolic(p.y, p.layer.weights_csr, row_sizes), total) << "seed " << seed;
    EXPECT_EQ(row_sizes, rows);

    RightMultiplier right(30);
    std::vector<Offset> column_sizes(n, 12345);
    EXPECT_EQ(right.symbolic(to_csc(p.y), p.layer.weights_csc, 0, n, column_sizes.data()), total);
    EXPECT_EQ(column_sizes, cols);
    // A sub-range of columns counts only those columns and writes nothing else.
    std::vector<Offset> part(n, 777);
    const Index first = n / 3, last = 2 * n / 3;
    Offset expected_part = 0;
    for (Index j = first; j < last; ++j) expected_part += cols[j];
    EXPECT_EQ(right.symbolic(to_csc(p.y), p.layer.weights_csc, first, last, part.data()), expected_part);
    for (Index j = 0; j < n; ++j) EXPECT_EQ(part[j], j >= first && j < last ? cols[j] : 777u) << "column " << j;

    // The multiply's symbolic pass is the same, and bounds what survives.
    ActiveRows out;
    left.multiply(all_rows(p.y), p.layer.weights_csr, p.layer.bias.data(), out);
    EXPECT_EQ(left.last_row_sizes(), rows);
    EXPECT_LE(out.rows.nnz(), total);
  }
}

// The left symbolic pass counts by bitmaps of W's rows on large blocks of small networks and by
// the accumulator's marks otherwise: both give the brute-force counts, and the multiply that the
// bitmaps size gives what the reference gives.
TEST(Kernels, SymbolicByBitmapsAndByMarksEqualBruteForce) {
  struct Case { Index rows, n; double density; bool bitmaps; };
  for (const Case c : {Case{400, 64, 0.3, true}, Case{300, 1000, 0.05, true}, Case{2, 1000, 0.01, false},
                       Case{40, 4097, 0.02, false}, Case{500, 130, 0.2, true}}) {
    const Problem p = random_problem(c.rows, c.n, 40 + c.n, c.density, -1.0f, 1.0f, -0.5f, 0.0f);
    ASSERT_EQ(LeftMultiplier::symbolic_uses_bitmaps(p.y, p.layer.weights_csr), c.bitmaps) << c.rows << " x " << c.n;
    const std::vector<Offset> rows = brute_force_row_sizes(p.y, p.layer.weights_csr);
    Offset total = 0;
    for (Offset r : rows) total += r;
    LeftMultiplier left(c.n);
    std::vector<Offset> row_sizes;
    EXPECT_EQ(left.symbolic(p.y, p.layer.weights_csr, row_sizes), total) << c.rows << " x " << c.n;
    EXPECT_EQ(row_sizes, rows) << c.rows << " x " << c.n;
    EXPECT_EQ(first_difference(left_one_layer(p.layer, p.y), reference_one_layer(p.layer, p.y)), "");
  }
}

TEST(Kernels, ActiveRowsDropDeadRowsAndKeepIds) {
  const Problem p = random_problem(70, 64, 31, 0.05, -1.0f, 1.0f, -1.5f, -0.5f);
  const CsrMatrix expected = reference_one_layer(p.layer, p.y);
  const std::vector<Index> alive = categories_of(expected);
  ASSERT_GT(alive.size(), 5u);
  ASSERT_LT(alive.size(), nonempty_rows(p.y) - 5);
  const Index base = 1000, step = 3;  // ids in the caller's numbering, not positions
  LeftMultiplier left(64);
  ActiveRows out;
  left.multiply(all_rows(p.y, base, step), p.layer.weights_csr, p.layer.bias.data(), out);
  std::vector<Index> expected_ids;
  for (Index i : alive) expected_ids.push_back(base + step * i);
  EXPECT_EQ(out.ids, expected_ids);
  EXPECT_EQ(out.rows.rows(), alive.size());
  EXPECT_EQ(first_difference(place(out, 70, 64, base, step), expected), "");

  // The survivors, fed on as they are (ids and all), go through a second layer like the reference.
  const Problem q = random_problem(70, 64, 32, 0.15, -1.0f, 1.0f, -0.8f, 0.0f);
  Network two;
  two.push_back(Layer{p.layer.weights_csr.clone(), CscMatrix(), p.layer.bias, {}});
  two.push_back(Layer{q.layer.weights_csr.clone(), CscMatrix(), q.layer.bias, {}});
  ActiveRows out2;
  left.multiply(out, q.layer.weights_csr, q.layer.bias.data(), out2);
  CsrMatrix got = place(out2, 70, 64, base, step);
  EXPECT_EQ(first_difference(got, reference_inference(two, p.y)), "");
  EXPECT_GT(got.nnz(), 0u);
}

TEST(Kernels, LeftBuffersAreReused) {
  const Problem big = random_problem(80, 64, 41, 0.3, -0.5f, 1.0f, -0.3f, 0.0f);
  const Problem small = random_problem(5, 64, 42, 0.1, -0.5f, 1.0f, -0.3f, 0.0f);
  LeftMultiplier left(64);
  ActiveRows out;
  left.multiply(all_rows(big.y), big.layer.weights_csr, big.layer.bias.data(), out);
  const CsrMatrix first = place(out, 80, 64);
  const std::size_t capacity = out.rows.indices.size();
  ASSERT_GE(capacity, out.rows.nnz());
  left.multiply(all_rows(big.y), big.layer.weights_csr, big.layer.bias.data(), out);
  EXPECT_GE(out.rows.indices.size(), capacity);
  EXPECT_EQ(out.rows.indices.size(), out.rows.values.size());
  EXPECT_EQ(first_difference(place(out, 80, 64), first), "");
  EXPECT_EQ(first_difference(first, reference_one_layer(big.layer, big.y)), "");
  // A smaller layer into the same buffers: nothing shrinks, only nnz() counts.
  left.multiply(all_rows(small.y), small.layer.weights_csr, small.layer.bias.data(), out);
  EXPECT_GE(out.rows.indices.size(), capacity);
  EXPECT_LT(out.rows.nnz(), capacity);
  EXPECT_EQ(first_difference(place(out, 5, 64), reference_one_layer(small.layer, small.y)), "");
}

TEST(Kernels, RightBuffersAreReused) {
  const Problem big = random_problem(80, 64, 43, 0.3, -0.5f, 1.0f, -0.3f, 0.0f);
  const Problem small = random_problem(5, 64, 44, 0.1, -0.5f, 1.0f, -0.3f, 0.0f);
  RightMultiplier right(80);
  CscMatrix out;
  right.multiply(to_csc(big.y), big.layer.weights_csc, big.layer.bias.data(), out);
  const CsrMatrix first = to_csr(out);
  const std::size_t capacity = out.indices.size();
  right.multiply(to_csc(big.y), big.layer.weights_csc, big.layer.bias.data(), out);
  EXPECT_GE(out.indices.size(), capacity);
  EXPECT_EQ(first_difference(to_csr(out), first), "");
  EXPECT_EQ(first_difference(first, reference_one_layer(big.layer, big.y)), "");
  right.multiply(to_csc(small.y), small.layer.weights_csc, small.layer.bias.data(), out);
  EXPECT_GE(out.indices.size(), capacity);
  EXPECT_EQ(out.rows(), 5u);
  EXPECT_EQ(first_difference(to_csr(out), reference_one_layer(small.layer, small.y)), "");
}

TEST(Kernels, RightNumericOverColumnRanges) {
  // What model parallelism does: symbolic bounds, then numeric on separate column ranges.
  const Index n = 100;
  const Problem p = random_problem(45, n, 51, 0.1, -1.0f, 1.0f, -0.4f, 0.1f);
  const CscMatrix y = to_csc(p.y);
  RightMultiplier right(45);
  std::vector<Offset> sizes(n), start(n + 1, 0), kept(n, 999);
  right.symbolic(y, p.layer.weights_csc, 0, n, sizes.data());
  for (Index j = 0; j < n; ++j) start[j + 1] = start[j] + sizes[j];
  std::vector<Index> indices(start[n]);
  std::vector<Value> values(start[n]);
  // A range's surviving entries are written compactly from the range's start position.
  std::vector<Offset> position(n);
  Offset written = 0;
  for (Index first = 0; first < n; first += 17) {
    const Index last = std::min<Index>(n, first + 17);
    const Offset count = right.numeric(y, p.layer.weights_csc, p.layer.bias.data(), first, last, start[first],
                                       indices.data(), values.data(), kept.data());
    Offset at = start[first];
    for (Index j = first; j < last; ++j) {
      position[j] = at;
      at += kept[j];
    }
    EXPECT_EQ(at - start[first], count);
    written += count;
  }
  CscMatrix out(45, n);
  for (Index j = 0; j < n; ++j) {
    EXPECT_LE(kept[j], sizes[j]);
    out.offsets[j + 1] = out.offsets[j] + kept[j];
    for (Offset q = 0; q < kept[j]; ++q) {
      out.indices.push_back(indices[position[j] + q]);
      out.values.push_back(values[position[j] + q]);
    }
  }
  EXPECT_EQ(written, out.nnz());
  EXPECT_GT(written, 0u);
  EXPECT_EQ(first_difference(to_csr(out), reference_one_layer(p.layer, p.y)), "");
}

TEST(Kernels, DensePanelsRoundTripAndZeroSums) {
  // Rows to panels and back (rows 0..10: one full panel and a partial one), ids kept.
  const Problem p = random_problem(11, 37, 61, 0.2, -1.0f, 1.0f, -0.5f, 0.0f);
  ActiveRows in = all_rows(p.y, 50, 2);
  DenseRows panels;
  to_dense(in, 37, panels);
  EXPECT_EQ(panels.rows(), 11u);
  EXPECT_EQ(panels.panels(), (11 + kPanelRows - 1) / kPanelRows);
  const auto dense = test::dense_of(p.y);
  for (Index r = 0; r < 11; ++r)
    for (Index k = 0; k < 37; ++k) EXPECT_EQ(panels.at(r, k), dense[r][k]);
  ActiveRows back;
  to_sparse(panels, back);
  EXPECT_EQ(first_difference(place(back, 11, 37, 50, 2), p.y), "");
  // A reached entry whose products cancel exactly is structural: it takes the (positive) bias,
  // while an entry no input reaches stays empty.
  Layer layer;
  layer.weights_csr = from_triplets<RowMajor>(3, 3, {{0, 0, 1.0f}, {1, 0, -1.0f}, {2, 2, 1.0f}});
  layer.weights_csc = to_csc(layer.weights_csr);
  layer.bias = {0.5f, 0.5f, 0.5f};
  const CsrMatrix y = from_triplets<RowMajor>(1, 3, {{0, 0, 2.0f}, {0, 1, 2.0f}});
  const CsrMatrix expected = from_triplets<RowMajor>(1, 3, {{0, 0, 0.5f}});
  EXPECT_EQ(first_difference(reference_one_layer(layer, y), expected), "");
  EXPECT_EQ(first_difference(left_one_layer(layer, y), expected), "");
  EXPECT_EQ(first_difference(right_one_layer(layer, y), expected), "");
  EXPECT_EQ(first_difference(dense_one_layer(layer, y), expected), "");
}

// The dense-panel kernel on each SIMD target that this build compiled and this CPU supports
// (Highway's mock of the supported targets), entry by entry against the verifier: panels in
// groups of every size and across the kernel's conversion chunks (up to 197 rows), neuron counts
// that are not multiples of the register blocks, biases of both signs (a positive bias needs the
// reach test), values at the cap, and the output columns computed in pieces as thread model
// parallelism does.
class DenseEveryTarget : public ::testing::TestWithParam<std::int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_P(DenseEveryTarget, EqualsReference) {
  EXPECT_EQ(simd_target(), hwy::TargetName(GetParam()));
  Offset checked = 0;
  std::uint32_t seed = 1;
  for (const Index rows : {1u, 7u, 8u, 9u, 25u, 33u, 97u, 197u})
    for (const Index n : {5u, 37u, 64u}) {
      ++seed;
      const Problem p = random_problem(rows, n, seed * 13 + n, 0.1 + 0.03 * (seed % 9), -1.5f, 2.0f, -0.6f, 0.4f);
      const CsrMatrix expected = reference_one_layer(p.layer, p.y);
      EXPECT_EQ(first_difference(dense_one_layer(p.layer, p.y), expected), "") << "rows " << rows << " n " << n;
      checked += expected.nnz();
    }
  EXPECT_GT(checked, 10000u);
  // Large weights: values reach the cap of 32.
  const Problem big = random_problem(40, 37, 7, 0.5, 1.0f, 30.0f, -0.3f, 0.3f);
  const CsrMatrix capped = reference_one_layer(big.layer, big.y);
  EXPECT_EQ(first_difference(dense_one_layer(big.layer, big.y), capped), "");
  bool at_cap = false;
  for (const Value v : capped.values) at_cap = at_cap || v == kActivationCap;
  EXPECT_TRUE(at_cap);
}

TEST_P(DenseEveryTarget, ColumnPiecesEqualWholeLayer) {
  const Problem p = random_problem(45, 61, 17, 0.2, -1.0f, 1.5f, -0.5f, 0.3f);
  DenseRows panels, whole, pieces;
  to_dense(all_rows(p.y), 61, panels);
  DenseMultiplier dense;
  dense.multiply(panels, p.layer.weights_csc, p.layer.bias.data(), whole);
  WideOperands wide;
  widen_operands(panels, p.layer.weights_csc, wide);
  prepare_panel_output(panels, pieces);
  std::vector<std::uint32_t> row_nonzeros(static_cast<std::size_t>(panels.panels()) * kPanelRows, 0);
  for (const auto& [first, last] : std::vector<std::pair<Index, Index>>{{0, 1}, {1, 6}, {6, 23}, {23, 24}, {24, 61}})
    multiply_panel_columns(panels, wide, p.layer.weights_csc, p.layer.bias.data(), first, last, pieces,
                           row_nonzeros.data());
  DenseRows in_place = pieces;  // drop_dead_rows: the same rows, in place
  DenseRows kept;
  EXPECT_EQ(keep_alive_rows(pieces, row_nonzeros.data(), kept), dense.last_nonzeros());
  EXPECT_EQ(same_rows(kept, whole), "");
  EXPECT_EQ(drop_dead_rows(in_place, row_nonzeros.data()), dense.last_nonzeros());
  EXPECT_EQ(same_rows(in_place, whole), "");
  EXPECT_EQ(same_rows(in_place, kept), "");
}

// A panel row by its start: row_start, row_nonzeros (a count over the row's entries, kPanelRows
// apart) and copy_panel_row, against DenseRows::at, for rows in every slot of three panels.
TEST(Kernels, PanelRowsByTheirStart) {
  DenseRows rows;
  rows.neurons = 5;
  for (Index r = 0; r < 19; ++r) rows.ids.push_back(100 + r);
  rows.panel.assign(std::size_t{rows.panels()} * rows.neurons * kPanelRows, 0.0f);
  for (Index r = 0; r < rows.rows(); ++r)
    for (Index k = 0; k < rows.neurons; ++k)
      if ((r + k) % 3 != 0) rows.row_start(r)[std::size_t{k} * kPanelRows] = static_cast<Value>(r * 10 + k);
  for (Index r = 0; r < rows.rows(); ++r) {
    Index expected = 0;
    for (Index k = 0; k < rows.neurons; ++k) {
      EXPECT_EQ(rows.at(r, k), (r + k) % 3 != 0 ? static_cast<Value>(r * 10 + k) : 0.0f) << r << " " << k;
      expected += rows.at(r, k) != 0.0f;
    }
    EXPECT_EQ(rows.row_nonzeros(r), expected) << r;
  }
  DenseRows copy = rows;
  copy_panel_row(rows.row_start(17), copy.row_start(2), rows.neurons);
  for (Index r = 0; r < rows.rows(); ++r)
    for (Index k = 0; k < rows.neurons; ++k) EXPECT_EQ(copy.at(r, k), rows.at(r == 2 ? 17 : r, k)) << r << " " << k;
  EXPECT_EQ(copy.row_nonzeros(2), rows.row_nonzeros(17));
}

// drop_dead_rows against keep_alive_rows on rows whose dead ones are all zero (as the kernel
// leaves them): none dead, all dead, dead at the front, at the end, every other one, and a row
// moved out of the last kept panel (its old place must be zeroed).
TEST(Kernels, DropDeadRowsInPlaceKeepsTheLiveRows) {
  std::mt19937 random(5);
  std::uniform_real_distribution<float> value(0.5f, 2.0f);
  const Index neurons = 13;
  std::vector<std::vector<bool>> patterns;
  for (const Index rows : {1u, 7u, 8u, 9u, 16u, 17u, 40u}) {
    patterns.push_back(std::vector<bool>(rows, true));
    patterns.push_back(std::vector<bool>(rows, false));
    std::vector<bool> front(rows, true), back(rows, true), alternate(rows), chance(rows);
    for (Index r = 0; r < rows; ++r) {
      front[r] = r >= rows / 2;
      back[r] = r < rows / 2;
      alternate[r] = r % 2 == 1;
      chance[r] = random() % 3 != 0;
    }
    for (auto* pattern : {&front, &back, &alternate, &chance}) patterns.push_back(*pattern);
  }
  std::vector<bool> last_panel(17, true);  // 15 kept: rows 16 and 15 move to 3 and 5; row 15's
  last_panel[3] = last_panel[5] = false;    // old place, in the last kept panel, is zeroed
  patterns.push_back(last_panel);
  Index moved = 0;
  for (const auto& alive : patterns) {
    const Index rows = static_cast<Index>(alive.size());
    DenseRows dense;
    dense.neurons = neurons;
    for (Index r = 0; r < rows; ++r) dense.ids.push_back(100 + 3 * r);
    dense.panel.assign(static_cast<std::size_t>(dense.panels()) * neurons * kPanelRows, 0.0f);
    std::vector<std::uint32_t> row_nonzeros(static_cast<std::size_t>(dense.panels()) * kPanelRows, 0);
    Offset expected = 0;
    for (Index r = 0; r < rows; ++r)
      for (Index k = 0; alive[r] && k < neurons; ++k)
        if (k % 4 != 1) {
          dense.panel[std::size_t{r / kPanelRows} * neurons * kPanelRows + std::size_t{k} * kPanelRows +
                      r % kPanelRows] = value(random);
          ++row_nonzeros[r];
          ++expected;
        }
    DenseRows copy = dense, kept;
    EXPECT_EQ(keep_alive_rows(copy, row_nonzeros.data(), kept), expected);
    DenseRows in_place = dense;
    EXPECT_EQ(drop_dead_rows(in_place, row_nonzeros.data()), expected);
    EXPECT_EQ(same_rows(in_place, kept), "") << rows << " rows";
    for (Index r = 0; r < in_place.rows(); ++r) {  // each kept row's count moved with it
      std::uint32_t count = 0;
      for (Index k = 0; k < neurons; ++k) count += in_place.at(r, k) != 0.0f;
      EXPECT_EQ(row_nonzeros[r], count) << rows << " rows, row " << r;
    }
    EXPECT_EQ(in_place.panel.size(), kept.panel.size());
    moved += in_place.ids != kept.ids;
  }
  EXPECT_GT(moved, 0u);  // the order did change somewhere, and same_rows looked past it
}

// Columns that share their inputs: the grouped kernel (blocks of several neurons of a group, group
// sizes that are no multiple of the block, empty columns, positive biases that need the reach
// test), with the groups computed by the multiplier or passed in.
TEST_P(DenseEveryTarget, GroupedColumnsEqualReference) {
  Offset checked = 0;
  std::uint32_t seed = 3;
  for (const Index rows : {1u, 8u, 9u, 23u, 33u, 97u})
    for (const auto& [n, leaders] : std::vector<std::pair<Index, Index>>{{61, 5}, {37, 3}, {64, 4}, {48, 16}}) {
      ++seed;
      const Problem p = grouped_problem(rows, n, leaders, seed * 7 + n, -0.6f, 0.4f);
      ColumnGroups groups;
      group_columns(p.layer.weights_csc, groups);
      ASSERT_GT(groups.count(), 0u);
      ASSERT_LE(groups.count(), leaders);
      const CsrMatrix expected = reference_one_layer(p.layer, p.y);
      EXPECT_EQ(first_difference(dense_one_layer(p.layer, p.y), expected), "") << "rows " << rows << " n " << n;
      DenseRows panels, out;
      to_dense(all_rows(p.y), n, panels);
      DenseMultiplier dense;
      dense.multiply(panels, p.layer.weights_csc, p.layer.bias.data(), out, &groups);
      ActiveRows rows_out;
      to_sparse(out, rows_out);
      EXPECT_EQ(first_difference(place(rows_out, p.y.rows(), n), expected), "") << "rows " << rows << " n " << n;
      checked += expected.nnz();
    }
  EXPECT_GT(checked, 5000u);
}

// Shares of the grouped kernel's order and ranges of neurons both add up to the whole layer.
TEST_P(DenseEveryTarget, GroupedPiecesEqualWholeLayer) {
  const Problem p = grouped_problem(45, 61, 5, 29, -0.5f, 0.3f);
  DenseRows panels, whole;
  to_dense(all_rows(p.y), 61, panels);
  DenseMultiplier dense;
  dense.multiply(panels, p.layer.weights_csc, p.layer.bias.data(), whole);
  WideOperands wide;
  widen_operands(panels, p.layer.weights_csc, wide);
  ASSERT_GT(wide.groups.count(), 0u);
  const std::vector<std::pair<Index, Index>> cuts{{0, 1}, {1, 6}, {6, 23}, {23, 24}, {24, 61}};
  for (const bool by_share : {false, true}) {
    DenseRows pieces;
    prepare_panel_output(panels, pieces);
    std::vector<std::uint32_t> row_nonzeros(static_cast<std::size_t>(panels.panels()) * kPanelRows, 0);
    for (const auto& [first, last] : cuts)
      (by_share ? multiply_panel_share : multiply_panel_columns)(panels, wide, p.layer.weights_csc,
                                                                 p.layer.bias.data(), first, last, pieces,
                                                                 row_nonzeros.data());
    DenseRows kept;
    EXPECT_EQ(keep_alive_rows(pieces, row_nonzeros.data(), kept), dense.last_nonzeros()) << by_share;
    EXPECT_EQ(same_rows(kept, whole), "") << by_share;
  }
}

// Spans of panels read where they are, under a column block of W (as a data x model rank holds
// it), the output written with its own stride: the block's columns of the whole layer, and each
// row's kept entries among them; grouped and ungrouped weights, blocks of every width (the narrow
// ungrouped ones read each input fewer than kFloatReads times: the kernel reads the floats).
TEST_P(DenseEveryTarget, PanelSpansOfAColumnBlockEqualWholeLayer) {
  for (const bool grouped : {false, true}) {
    const Problem p = grouped ? grouped_problem(45, 61, 5, 31, -0.5f, 0.3f)
                              : random_problem(45, 61, 19, 0.2, -1.0f, 1.5f, -0.5f, 0.3f);
    DenseRows panels, full;
    to_dense(all_rows(p.y), 61, panels);
    WideOperands wide_full;
    widen_operands(panels, p.layer.weights_csc, wide_full);
    ASSERT_EQ(wide_full.groups.count() > 0, grouped);
    prepare_panel_output(panels, full);
    std::vector<std::uint32_t> unused(static_cast<std::size_t>(panels.panels()) * kPanelRows, 0);
    multiply_panel_columns(panels, wide_full, p.layer.weights_csc, p.layer.bias.data(), 0, 61, full, unused.data());
    bool read_floats = false, read_doubles = false;
    for (const auto& [b0, b1] : std::vector<std::pair<Index, Index>>{{0, 61}, {7, 40}, {20, 32}, {60, 61}}) {
      const CscMatrix block = convert<ColMajor>(p.layer.weights_csr, b0, b1);
      (static_cast<double>(block.nnz()) < kFloatReads * 61 ? read_floats : read_doubles) = true;
      const Index width = b1 - b0;
      WideOperands wide;
      widen_operands(DenseRows(), block, wide);  // the weights; the spans widen their own panels
      const std::size_t out_stride = std::size_t{width} * kPanelRows;
      for (const auto& [first, count] : std::vector<std::pair<Index, Index>>{{0, 1}, {1, 3}, {4, 2}}) {
        std::vector<Value> out(count * out_stride, -1.0f);
        std::vector<std::uint32_t> kept(std::size_t{count} * kPanelRows, 0);
        multiply_panel_span(panels, first, count, wide, block, p.layer.bias.data() + b0, out.data(), out_stride,
                            kept.data());
        for (Index q = 0; q < count; ++q)
          for (Index r = 0; r < kPanelRows; ++r) {
            const Index row = (first + q) * kPanelRows + r;
            std::uint32_t expected_kept = 0;
            for (Index j = 0; j < width; ++j) {
              const Value expected = row < panels.rows() ? full.at(row, b0 + j) : 0.0f;
              expected_kept += expected != 0.0f;
              ASSERT_EQ(out[q * out_stride + std::size_t{j} * kPanelRows + r], expected)
                  << grouped << " block " << b0 << " span " << first << " row " << row << " neuron " << j;
            }
            EXPECT_EQ(kept[std::size_t{q} * kPanelRows + r], expected_kept) << grouped << " row " << row;
          }
      }
    }
    EXPECT_TRUE(read_floats && read_doubles) << "the blocks do not reach both ways of reading the panels";
  }
}

// The kernel's targets as Highway's target bits: those of dense_rows.cpp, which compiles its own
// set (it leaves out RVV), not hwy::SupportedAndGeneratedTargets() of this file.
std::vector<std::int64_t> kernel_targets() {
  std::vector<std::int64_t> targets;
  for (const std::string& name : simd_targets_available())
    for (int bit = 0; bit < 63; ++bit)
      if (name == hwy::TargetName(std::int64_t{1} << bit)) {
        targets.push_back(std::int64_t{1} << bit);
        break;
      }
  return targets;
}

INSTANTIATE_TEST_SUITE_P(Targets, DenseEveryTarget, ::testing::ValuesIn(kernel_targets()),
                         [](const ::testing::TestParamInfo<std::int64_t>& target) {
                           return std::string(hwy::TargetName(target.param));
                         });

// A RadiX-Net layer's columns share their inputs 16 by 16: group_columns finds groups of columns
// with equal inputs (in the same order), each listed once, ascending, and different from the other
// groups; random weights are not grouped.
TEST(Kernels, ColumnGroupsOfRadixNetLayers) {
  for (const Index l : {1u, 2u, 6u}) {
    const CscMatrix w = to_csc(radixnet_layer(1024, l, 42));
    ColumnGroups groups;
    group_columns(w, groups);
    ASSERT_GT(groups.count(), 0u);
    EXPECT_LE(groups.count(), 1024u / 2);
    std::vector<Index> sorted = groups.order;
    std::sort(sorted.begin(), sorted.end());
    for (Index j = 0; j < 1024; ++j) ASSERT_EQ(sorted[j], j);
    auto column = [&](Index j) {
      return std::vector<Index>(w.indices.begin() + static_cast<std::ptrdiff_t>(w.offsets[j]),
                                w.indices.begin() + static_cast<std::ptrdiff_t>(w.offsets[j + 1]));
    };
    std::set<std::vector<Index>> patterns;
    for (Index g = 0; g < groups.count(); ++g) {
      const auto pattern = column(groups.order[groups.start[g]]);
      EXPECT_TRUE(patterns.insert(pattern).second) << "two groups with the same inputs";
      for (Index m = groups.start[g]; m < groups.start[g + 1]; ++m) {
        EXPECT_EQ(column(groups.order[m]), pattern);
        if (m > groups.start[g]) {
          EXPECT_LT(groups.order[m - 1], groups.order[m]);
        }
      }
    }
  }
  const Problem random = random_problem(4, 64, 5, 0.3, -1.0f, 1.0f, -0.3f, 0.3f);
  ColumnGroups none;
  group_columns(random.layer.weights_csc, none);
  EXPECT_EQ(none.count(), 0u);
  ASSERT_EQ(none.order.size(), 64u);
  for (Index j = 0; j < 64; ++j) EXPECT_EQ(none.order[j], j);
}

TEST(Activate, RuleAndSingleRounding) {
  EXPECT_EQ(activate(1.0, -0.25f), 0.75f);
  EXPECT_EQ(activate(0.25, -0.25f), 0.0f);  // zero is pruned
  EXPECT_EQ(activate(-3.0, 1.0f), 0.0f);
  EXPECT_EQ(activate(31.5, 0.25f), 31.75f);
  EXPECT_EQ(activate(32.0, 0.0f), 32.0f);
  EXPECT_EQ(activate(1e30, -0.3f), kActivationCap);
  EXPECT_EQ(kActivationCap, 32.0f);
  // Sum and bias in double, rounded once: 1 + 2^-24 is a tie that would round to 1 alone, but the
  // bias 2^-40 lifts it above the tie, so the single rounding gives 1 + 2^-23.
  const double sum = 1.0 + std::ldexp(1.0, -24);
  const Value bias = std::ldexp(1.0f, -40);
  EXPECT_EQ(activate(sum, bias), 1.0f + std::ldexp(1.0f, -23));
  EXPECT_NE(static_cast<float>(static_cast<float>(sum) + bias), 1.0f + std::ldexp(1.0f, -23));
}

TEST(SparseAccumulator, PatternInFirstTouchOrder) {
  SparseAccumulator spa(10);
  spa.start();
  spa.add(7, 1.5);
  spa.add(2, 2.0);
  spa.add(7, 0.25);
  EXPECT_EQ(spa.pattern(), (std::vector<Index>{7, 2}));
  EXPECT_EQ(spa.sum(7), 1.75);
  EXPECT_EQ(spa.sum(2), 2.0);
  spa.start();  // a fresh pattern; old sums are not carried over
  EXPECT_TRUE(spa.pattern().empty());
  spa.add(2, -1.0);
  spa.touch(9);
  spa.touch(2);
  EXPECT_EQ(spa.pattern(), (std::vector<Index>{2, 9}));
  EXPECT_EQ(spa.sum(2), -1.0);
  spa.resize(20);
  spa.start();
  spa.add(19, 3.0);
  EXPECT_EQ(spa.pattern(), (std::vector<Index>{19}));
}

}  // namespace
}  // namespace sdnn
