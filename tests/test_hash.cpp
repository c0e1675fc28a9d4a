// test_hash.cpp: the hashings of --hash (src/hash): affine permutations are bijections with the right
// inverse for many sizes (1, 2, 3, primes, powers of two, 60000, 60001, up to 2^32) and seeds, spread
// neighbours and balance shards; --hash parsing; permuting and unpermuting matrices and networks; and
// the key property: inference on input-hashed, network-hashed and doubly hashed problems, undone,
// gives the unhashed final activations entry by entry and the same categories (reference and engine).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "hash/hash.hpp"
#include "spmm/engine.hpp"
#include "spmm/reference.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

const std::vector<std::uint64_t> kSizes = {1,   2,    3,    4,    5,    6,    7,    8,    9,     10,    12,    13,
                                           16,  17,   30,   31,   32,   60,   64,   97,   100,   127,   128,   210,
                                           255, 256,  257,  1000, 1023, 1024, 1031, 2310, 4095,  4096,  4099,  30030,
                                           59999, 60000, 60001, 65536, 65537, 510510};
const std::vector<std::uint64_t> kSeeds = {0, 1, 2, 3, 12345, (std::uint64_t{1} << 40) + 7};

// (a * b + c) mod n by doubling, never overflowing for n <= 2^32: independent of the class's arithmetic.
std::uint64_t slow_affine(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t n) {
  std::uint64_t result = c % n, addend = a % n;
  for (b %= n; b != 0; b >>= 1) {
    if (b & 1) result = (result + addend) % n;
    addend = (addend + addend) % n;
  }
  return result;
}

std::uint64_t circular_distance(Index a, Index b, std::uint64_t n) {
  const std::uint64_t d = a > b ? a - b : b - a;
  return std::min(d, n - d);
}

TEST(HashPermutation, BijectionWithInverseForManySizesAndSeeds) {
  for (const std::uint64_t n : kSizes)
    for (const std::uint64_t seed : kSeeds) {
      SCOPED_TRACE("n = " + std::to_string(n) + ", seed = " + std::to_string(seed));
      const Permutation p = Permutation::hashing(n, seed);
      ASSERT_EQ(p.size(), n);
      EXPECT_EQ(std::gcd(p.stride(), n), 1u);
      EXPECT_EQ(p.offset(), seed % n);
      const std::vector<Index> forward = p.table(), backward = p.inverse_table();
      ASSERT_EQ(forward.size(), n);
      ASSERT_EQ(backward.size(), n);
      std::vector<char> seen(n, 0);
      const Permutation q = p.inverted();
      for (Index i = 0; i < n; ++i) {
        ASSERT_LT(forward[i], n);
        ASSERT_FALSE(seen[forward[i]]) << "p(" << i << ") = " << forward[i] << " twice";
        seen[forward[i]] = 1;
        ASSERT_EQ(forward[i], p(i));
        if (i < 1000 || i % 61 == 0) {
          ASSERT_EQ(forward[i], slow_affine(p.stride(), i, p.offset(), n));
        }
        ASSERT_EQ(p.inverse(forward[i]), i);
        ASSERT_EQ(backward[forward[i]], i);
        ASSERT_EQ(p(p.inverse(i)), i);
        ASSERT_EQ(q(i), p.inverse(i));
      }
      EXPECT_EQ(q.inverted(), p);
      EXPECT_EQ(Permutation::hashing(n, seed), p) << "not deterministic";
    }
}

TEST(HashPermutation, SmallSizes) {
  const Permutation empty = Permutation::hashing(0, 5);
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_TRUE(empty.table().empty());
  EXPECT_TRUE(empty.inverse_table().empty());
  EXPECT_EQ(empty.inverted().size(), 0u);

  const Permutation one = Permutation::hashing(1, 7);
  EXPECT_EQ(one(0), 0u);
  EXPECT_EQ(one.inverse(0), 0u);
  EXPECT_TRUE(one.is_identity());

  EXPECT_EQ(Permutation::hashing(2, 0).table(), (std::vector<Index>{0, 1}));
  EXPECT_EQ(Permutation::hashing(2, 1).table(), (std::vector<Index>{1, 0}));
  EXPECT_EQ(Permutation::hashing(3, 0).table(), (std::vector<Index>{0, 2, 1}));  // stride round(3 * 0.618) = 2
  for (std::uint64_t seed = 0; seed < 3; ++seed) {
    std::vector<Index> t = Permutation::hashing(3, seed).table();
    std::sort(t.begin(), t.end());
    EXPECT_EQ(t, (std::vector<Index>{0, 1, 2}));
  }
}

TEST(HashPermutation, DifferentSeedsGiveDifferentPermutations) {
  for (const std::uint64_t n : kSizes) {
    if (n <= 3) continue;
    SCOPED_TRACE("n = " + std::to_string(n));
    const std::uint64_t seeds = std::min<std::uint64_t>(n, 8);
    std::vector<std::vector<Index>> tables;
    for (std::uint64_t s = 0; s < seeds; ++s) tables.push_back(Permutation::hashing(n, s).table());
    for (std::uint64_t a = 0; a < seeds; ++a)
      for (std::uint64_t b = a + 1; b < seeds; ++b) EXPECT_NE(tables[a], tables[b]) << "seeds " << a << " and " << b;
    EXPECT_NE(Permutation::hashing(n, 1), Permutation::hashing(n, 2));
    EXPECT_FALSE(Permutation::hashing(n, 0).is_identity());
    EXPECT_EQ(Permutation::hashing(n, 3), Permutation::hashing(n, 3 + n));  // the offset is seed mod n
  }
}

// Neighbouring rows land at least n/4 apart, and each of P contiguous shards of the hashed rows (P = 1..4,
// sizes not divisible by P either) takes as many rows from each P-th of the original range, up to
// O(log n) rows (what a golden-like stride guarantees; a poor one, e.g. 619 for n = 1000, fails this).
TEST(HashPermutation, SpreadsNeighboursAndBalancesShards) {
  for (const std::uint64_t n : kSizes) {
    if (n < 16) continue;
    const double tolerance = 1.0 + 0.5 * std::log2(static_cast<double>(n));
    for (const std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{12345}}) {
      SCOPED_TRACE("n = " + std::to_string(n) + ", seed = " + std::to_string(seed));
      const Permutation p = Permutation::hashing(n, seed);
      for (Index i = 0; i + 1 < n; ++i)
        ASSERT_GE(circular_distance(p(i), p(i + 1), n) * 4, n) << "rows " << i << ", " << i + 1;
      for (std::uint64_t shards = 1; shards <= 4; ++shards) {
        // count[s][r]: rows of original range r that land in shard s (both split like row_partition).
        std::vector<std::vector<std::uint64_t>> count(shards, std::vector<std::uint64_t>(shards, 0));
        for (Index i = 0; i < n; ++i) ++count[p(i) * shards / n][i * shards / n];
        const double expected = static_cast<double>(n) / static_cast<double>(shards * shards);
        for (std::uint64_t s = 0; s < shards; ++s)
          for (std::uint64_t r = 0; r < shards; ++r)
            ASSERT_NEAR(static_cast<double>(count[s][r]), expected, tolerance)
                << "shard " << s << " of " << shards << ", original range " << r;
      }
    }
  }
  // The poor stride the test is there to catch.
  const Permutation poor = Permutation::affine(1000, 619, 0);
  std::uint64_t first_half_in_first_shard = 0;
  for (Index i = 0; i < 500; ++i) first_half_in_first_shard += poor(i) < 500;
  EXPECT_GT(std::abs(static_cast<double>(first_half_in_first_shard) - 250.0), 1.0 + 0.5 * std::log2(1000.0));
}

TEST(HashPermutation, LargestSizesDoNotOverflow) {
  const std::uint64_t big = Permutation::kMaxSize;
  for (const std::uint64_t n : {big, big - 1, (big >> 1) + 11, std::uint64_t{4294967291}}) {  // 4294967291 is prime
    for (const std::uint64_t seed : {std::uint64_t{0}, std::uint64_t{7}, big - 1}) {
      SCOPED_TRACE("n = " + std::to_string(n) + ", seed = " + std::to_string(seed));
      const Permutation p = Permutation::hashing(n, seed);
      EXPECT_EQ(std::gcd(p.stride(), n), 1u);
      const Permutation q = p.inverted();
      std::mt19937_64 rng(n ^ seed);
      std::vector<std::uint64_t> samples = {0, 1, 2, n / 2, n - 2, n - 1};
      for (int k = 0; k < 1000; ++k) samples.push_back(rng() % n);
      for (const std::uint64_t x : samples) {
        const Index i = static_cast<Index>(x);
        ASSERT_EQ(p(i), slow_affine(p.stride(), i, p.offset(), n));
        ASSERT_EQ(p.inverse(p(i)), i);
        ASSERT_EQ(p(p.inverse(i)), i);
        ASSERT_EQ(q(i), p.inverse(i));
      }
    }
  }
  EXPECT_THROW(Permutation::hashing(big + 1, 0), std::invalid_argument);
  EXPECT_THROW(Permutation(big + 1), std::invalid_argument);
  EXPECT_THROW(Permutation::affine(big + 1, 1, 0), std::invalid_argument);
}

TEST(HashPermutation, AffineAndIdentity) {
  const Permutation id = Permutation::identity(10);
  EXPECT_TRUE(id.is_identity());
  EXPECT_EQ(id.table(), id.inverse_table());
  for (Index i = 0; i < 10; ++i) EXPECT_EQ(id(i), i);
  EXPECT_EQ(Permutation::affine(10, 1, 0), id);

  const Permutation p = Permutation::affine(10, 3, 4);
  EXPECT_EQ(p.table(), (std::vector<Index>{4, 7, 0, 3, 6, 9, 2, 5, 8, 1}));
  EXPECT_EQ(p.inverted().table(), p.inverse_table());
  EXPECT_EQ(p.inverted().stride(), 7u);  // 3 * 7 = 21 = 1 mod 10

  EXPECT_THROW(Permutation::affine(10, 4, 0), std::invalid_argument);   // gcd 2
  EXPECT_THROW(Permutation::affine(10, 0, 0), std::invalid_argument);   // gcd 10
  EXPECT_THROW(Permutation::affine(10, 11, 0), std::invalid_argument);  // stride >= n
  EXPECT_THROW(Permutation::affine(10, 3, 10), std::invalid_argument);  // offset >= n
  EXPECT_TRUE(Permutation::affine(1, 0, 0).is_identity());              // one permutation of 1 element
}

// The data x model strategy's cyclic column blocks (strategy.cpp): a deal to M hands maps the
// residue class m of the ids onto the contiguous block m, keeps each class's order, and its
// inverse is the deal to n / M hands.
TEST(HashPermutation, DealMapsResidueClassesOntoContiguousBlocks) {
  EXPECT_EQ(Permutation::deal(8, 2).table(), (std::vector<Index>{0, 4, 1, 5, 2, 6, 3, 7}));
  EXPECT_EQ(Permutation::deal(6, 3).table(), (std::vector<Index>{0, 2, 4, 1, 3, 5}));
  for (const std::uint64_t n : {1u, 2u, 4u, 6u, 12u, 48u, 1024u, 4096u, 30030u, 65536u})
    for (std::uint64_t hands = 1; hands <= std::min<std::uint64_t>(n, 64); ++hands) {
      if (n % hands != 0) {
        EXPECT_THROW(Permutation::deal(n, hands), std::invalid_argument) << n << " to " << hands;
        continue;
      }
      SCOPED_TRACE("n = " + std::to_string(n) + ", hands = " + std::to_string(hands));
      const Permutation p = Permutation::deal(n, hands), q = p.inverted();
      EXPECT_EQ(p.is_identity(), hands == 1 || hands == n);
      if (!p.is_identity()) {
        EXPECT_EQ(p.hands(), hands);
      }
      EXPECT_EQ(q, Permutation::deal(n, n / hands));
      EXPECT_EQ(q.inverted(), p);
      const std::vector<Index> forward = p.table(), backward = p.inverse_table();
      std::vector<char> seen(n, 0);
      for (Index i = 0; i < n; ++i) {
        const Index y = forward[i];
        ASSERT_LT(y, n);
        ASSERT_FALSE(seen[y]) << "p(" << i << ") = " << y << " twice";
        seen[y] = 1;
        ASSERT_EQ(y / (n / hands), i % hands) << "id " << i << " is not in the block of its residue class";
        if (i >= hands) {
          ASSERT_EQ(y, forward[i - hands] + 1) << "a class's order is not kept";
        }
        ASSERT_EQ(p.inverse(y), i);
        ASSERT_EQ(backward[y], i);
        ASSERT_EQ(q(y), i);
      }
    }
  EXPECT_THROW(Permutation::deal(10, 0), std::invalid_argument);
  EXPECT_THROW(Permutation::deal(10, 4), std::invalid_argument);
  EXPECT_NE(Permutation::deal(8, 2), Permutation::affine(8, 1, 0));
  EXPECT_NE(Permutation::deal(8, 2), Permutation::deal(8, 4));
}

// A network renumbered by a deal gives the final activations of the original once undone.
TEST(HashPermutation, DealtNetworkGivesTheSameActivations) {
  const Index n = 48;
  std::mt19937 rng(11);
  const Network network = test::random_network(n, 12, rng);
  const CsrMatrix input = test::random_inputs(40, n, 0.5, 0.1f, 2.0f, rng);
  const CsrMatrix expected = reference_inference(network, input);
  ASSERT_GT(expected.nnz(), 0u) << "every row died: the test would compare empty matrices";
  for (const std::uint64_t hands : {2u, 3u, 4u, 8u}) {
    const Permutation deal = Permutation::deal(n, hands);
    Network dealt = test::clone_network(network);
    permute_network(dealt, deal);
    const CsrMatrix got = unpermute(reference_inference(dealt, permute_columns(input, deal)), nullptr, &deal);
    EXPECT_EQ(first_difference(got, expected), "") << hands << " hands";
  }
}

TEST(HashMode, ParseAndPrint) {
  for (const HashMode m : {HashMode::none, HashMode::input, HashMode::network, HashMode::both})
    EXPECT_EQ(parse_hash_mode(to_string(m)), m);
  EXPECT_EQ(to_string(HashMode::network), "network");
  EXPECT_FALSE(hashes_input(HashMode::none));
  EXPECT_FALSE(hashes_network(HashMode::none));
  EXPECT_TRUE(hashes_input(HashMode::input));
  EXPECT_FALSE(hashes_network(HashMode::input));
  EXPECT_FALSE(hashes_input(HashMode::network));
  EXPECT_TRUE(hashes_network(HashMode::network));
  EXPECT_TRUE(hashes_input(HashMode::both));
  EXPECT_TRUE(hashes_network(HashMode::both));
  for (const std::string bad : {"", "x", "Both", "inputs", "none "}) {
    try {
      parse_hash_mode(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()), "--hash must be none, input, network or both, not '" + bad + "'");
    }
  }
}

// A random matrix with empty rows and columns, whose arrays are longer than nnz() (buffer slack).
CsrMatrix matrix_with_slack(Index rows, Index cols, std::mt19937& rng) {
  CsrMatrix a = test::random_csr(rows, cols, 0.3, -2.0f, 2.0f, rng, 5, 7);
  a.indices.resize(a.nnz() + 13, 12345u);
  a.values.resize(a.nnz() + 13, -1.0f);
  return a;
}

void expect_sorted_rows(const CsrMatrix& a) {
  for (Index i = 0; i < a.rows(); ++i)
    EXPECT_TRUE(std::is_sorted(a.indices.begin() + a.begin(i), a.indices.begin() + a.end(i))) << "row " << i;
}

TEST(HashMatrix, PermuteRowsAndColumnsAndUndo) {
  std::mt19937 rng(11);
  for (const auto& shape : std::vector<std::pair<Index, Index>>{{37, 53}, {64, 64}, {1, 9}, {9, 1}, {0, 5}, {5, 0}}) {
    const Index rows = shape.first, cols = shape.second;
    SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols));
    const CsrMatrix a = matrix_with_slack(rows, cols, rng);
    const CsrMatrix exact = a.clone();  // without slack
    const Permutation pr = Permutation::hashing(rows, 3), pc = Permutation::hashing(cols, 4);
    const auto dense = test::dense_of(exact);
    const auto pattern = test::pattern_of(exact);

    const CsrMatrix by_rows = permute_rows(a, pr), by_cols = permute_columns(a, pc), both = permute(a, &pr, &pc);
    for (const CsrMatrix* m : {&by_rows, &by_cols, &both}) {
      EXPECT_EQ(m->rows(), rows);
      EXPECT_EQ(m->cols(), cols);
      EXPECT_EQ(m->nnz(), a.nnz());
      EXPECT_EQ(m->indices.size(), a.nnz());
      expect_sorted_rows(*m);
    }
    const auto dr = test::dense_of(by_rows), dc = test::dense_of(by_cols), db = test::dense_of(both);
    const auto pb = test::pattern_of(both);
    for (Index i = 0; i < rows; ++i)
      for (Index j = 0; j < cols; ++j) {
        ASSERT_EQ(dr[pr(i)][j], dense[i][j]);
        ASSERT_EQ(dc[i][pc(j)], dense[i][j]);
        ASSERT_EQ(db[pr(i)][pc(j)], dense[i][j]);
        ASSERT_EQ(pb[pr(i)][pc(j)], pattern[i][j]);
      }
    EXPECT_EQ(first_difference(both, permute_columns(permute_rows(a, pr), pc)), "");
    EXPECT_EQ(first_difference(unpermute(by_rows, &pr, nullptr), exact), "");
    EXPECT_EQ(first_difference(unpermute(by_cols, nullptr, &pc), exact), "");
    EXPECT_EQ(first_difference(unpermute(both, &pr, &pc), exact), "");
    EXPECT_EQ(first_difference(permute(a, nullptr, nullptr), exact), "");
    EXPECT_EQ(first_difference(unpermute(a, nullptr, nullptr), exact), "");
    if (rows > 3 && cols > 3) {
      EXPECT_NE(first_difference(both, exact), "");
    }
  }
}

TEST(HashMatrix, LargeMatrixInParallel) {
  std::mt19937 rng(12);
  const CsrMatrix a = test::random_csr(3001, 1000, 0.03, -1.0f, 1.0f, rng, 11);  // ~90000 nonzeros
  ASSERT_GT(a.nnz(), 65536u);
  const Permutation pr = Permutation::hashing(a.rows(), 1), pc = Permutation::hashing(a.cols(), 2);
  const CsrMatrix both = permute(a, &pr, &pc);
  expect_sorted_rows(both);
  const auto dense = test::dense_of(a), db = test::dense_of(both);
  for (Index i = 0; i < a.rows(); ++i)
    for (Index j = 0; j < a.cols(); ++j) ASSERT_EQ(db[pr(i)][pc(j)], dense[i][j]);
  EXPECT_EQ(first_difference(unpermute(both, &pr, &pc), a), "");
  EXPECT_EQ(first_difference(unpermute(permute_rows(a, pr), &pr, nullptr), a), "");
}

TEST(HashMatrix, SizeMismatchThrows) {
  std::mt19937 rng(13);
  const CsrMatrix a = test::random_csr(10, 12, 0.3, -1.0f, 1.0f, rng);
  const Permutation p10 = Permutation::hashing(10, 1), p12 = Permutation::hashing(12, 1);
  EXPECT_THROW(permute_rows(a, p12), std::invalid_argument);
  EXPECT_THROW(permute_columns(a, p10), std::invalid_argument);
  EXPECT_THROW(permute(a, &p12, &p12), std::invalid_argument);
  EXPECT_THROW(unpermute(a, &p10, &p10), std::invalid_argument);
  EXPECT_NO_THROW(permute(a, &p10, &p12));
}

TEST(HashMatrix, UnpermuteRows) {
  const Permutation p = Permutation::hashing(100, 9);
  const std::vector<Index> original = {0, 3, 4, 50, 98, 99};
  std::vector<Index> hashed;
  for (const Index i : original) hashed.push_back(p(i));
  std::shuffle(hashed.begin(), hashed.end(), std::mt19937(1));
  EXPECT_EQ(unpermute_rows(hashed, p), original);
  EXPECT_TRUE(unpermute_rows({}, p).empty());
  EXPECT_THROW(unpermute_rows({5, 100}, p), std::out_of_range);
}

TEST(HashNetwork, PermutesWeightsInBothFormatsAndBias) {
  std::mt19937 rng(14);
  const Index n = 61;
  Network original = test::random_network(n, 4, rng);
  original[1].weights_csc = to_csc(original[1].weights_csr);  // layer 2 in both formats
  original[2].weights_csc = to_csc(original[2].weights_csr);  // layer 3 in CSC only
  original[2].weights_csr = CsrMatrix();
  const Permutation p = Permutation::hashing(n, 5);
  Network hashed = test::clone_network(original);
  permute_network(hashed, p);
  for (std::size_t l = 0; l < original.size(); ++l) {
    SCOPED_TRACE("layer " + std::to_string(l + 1));
    const Layer &before = original[l], &after = hashed[l];
    EXPECT_EQ(after.weights_csr.rows() == 0, before.weights_csr.rows() == 0);  // absent stays absent
    EXPECT_EQ(after.weights_csc.cols() == 0, before.weights_csc.cols() == 0);
    const CsrMatrix w = before.weights_csr.rows() != 0 ? before.weights_csr.clone() : to_csr(before.weights_csc);
    const auto dense = test::dense_of(w);
    const auto pattern = test::pattern_of(w);
    if (after.weights_csr.rows() != 0) {
      expect_sorted_rows(after.weights_csr);
      const auto d = test::dense_of(after.weights_csr);
      const auto pt = test::pattern_of(after.weights_csr);
      for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < n; ++j) {
          ASSERT_EQ(d[p(i)][p(j)], dense[i][j]);
          ASSERT_EQ(pt[p(i)][p(j)], pattern[i][j]);
        }
    }
    if (after.weights_csc.cols() != 0) {
      const CsrMatrix expected = permute(w, &p, &p);
      EXPECT_EQ(first_difference(to_csr(after.weights_csc), expected), "");
      for (Index j = 0; j < n; ++j)
        EXPECT_TRUE(std::is_sorted(after.weights_csc.indices.begin() + after.weights_csc.begin(j),
                                   after.weights_csc.indices.begin() + after.weights_csc.end(j)));
    }
    for (Index j = 0; j < n; ++j) ASSERT_EQ(after.bias[p(j)], before.bias[j]);
  }
  // The inverse hashing restores the network.
  permute_network(hashed, p.inverted());
  for (std::size_t l = 0; l < original.size(); ++l) {
    if (original[l].weights_csr.rows() != 0) {
      EXPECT_EQ(first_difference(hashed[l].weights_csr, original[l].weights_csr), "");
    }
    if (original[l].weights_csc.cols() != 0) {
      EXPECT_EQ(first_difference(to_csr(hashed[l].weights_csc), to_csr(original[l].weights_csc)), "");
    }
    EXPECT_EQ(hashed[l].bias, original[l].bias);
  }
}

TEST(HashNetwork, ManyLayersInParallelAndErrors) {
  std::mt19937 rng(15);
  const Index n = 40;
  Network original = test::random_network(n, 40, rng);  // more layers than threads: one thread per layer
  Network hashed = test::clone_network(original);
  const Permutation p = Permutation::hashing(n, 2);
  permute_network(hashed, p);
  for (std::size_t l = 0; l < original.size(); ++l)
    EXPECT_EQ(first_difference(hashed[l].weights_csr, permute(original[l].weights_csr, &p, &p)), "");

  // A wrong size anywhere throws before any layer changes.
  for (int wrong = 0; wrong < 3; ++wrong) {
    SCOPED_TRACE("case " + std::to_string(wrong));
    Network bad = test::clone_network(original);
    if (wrong == 0) bad[5].bias.pop_back();
    if (wrong == 1) bad[7].weights_csr = test::random_csr(n, n + 1, 0.1, -1.0f, 1.0f, rng);
    if (wrong == 2) bad[9].weights_csc = to_csc(test::random_csr(n - 1, n, 0.1, -1.0f, 1.0f, rng));
    EXPECT_THROW(permute_network(bad, p), std::invalid_argument);
    EXPECT_EQ(first_difference(bad[0].weights_csr, original[0].weights_csr), "");
    EXPECT_EQ(bad[0].bias, original[0].bias);
  }
  Network empty;
  EXPECT_NO_THROW(permute_network(empty, p));
}

// The hashings of one problem: the input (Y0) and network as the program would run them.
struct HashedProblem {
  CsrMatrix input;
  Network network;
};

HashedProblem hash_problem(const Network& network, const CsrMatrix& input, HashMode mode, const Permutation& rows,
                           const Permutation& neurons) {
  HashedProblem h{input.clone(), test::clone_network(network)};
  const Permutation* r = hashes_input(mode) ? &rows : nullptr;
  const Permutation* c = hashes_network(mode) ? &neurons : nullptr;
  h.input = permute(input, r, c);
  if (c != nullptr) permute_network(h.network, neurons);
  return h;
}

// Final activations of a hashed run, back in the original numbering, and its categories likewise.
CsrMatrix undo(const CsrMatrix& activations, HashMode mode, const Permutation& rows, const Permutation& neurons) {
  return unpermute(activations, hashes_input(mode) ? &rows : nullptr, hashes_network(mode) ? &neurons : nullptr);
}
std::vector<Index> undo_categories(const CsrMatrix& activations, HashMode mode, const Permutation& rows) {
  const std::vector<Index> hashed = categories_of(activations);
  return hashes_input(mode) ? unpermute_rows(hashed, rows) : hashed;
}

const std::vector<HashMode> kModes = {HashMode::none, HashMode::input, HashMode::network, HashMode::both};

TEST(HashInference, ReferenceGivesTheSameResultUnderEveryHashing) {
  for (const Index n : {Index{61}, Index{64}}) {
    SCOPED_TRACE("N = " + std::to_string(n));
    std::mt19937 rng(100 + n);
    const Network network = test::random_network(n, 30, rng);
    const CsrMatrix input = test::random_inputs(301, n, 0.5, 0.1f, 2.0f, rng, 9);
    const CsrMatrix expected = reference_inference(network, input);
    const std::vector<Index> categories = categories_of(expected);
    ASSERT_GT(categories.size(), 10u) << "too few rows survive to test anything";
    ASSERT_LT(categories.size(), 290u) << "too few rows die to test anything";
    ASSERT_GT(test::count_equal(expected, kActivationCap), 0u) << "no value reaches the cap";
    const Permutation rows = Permutation::hashing(input.rows(), 1), neurons = Permutation::hashing(n, 2);
    for (const HashMode mode : kModes) {
      SCOPED_TRACE("--hash " + to_string(mode));
      const HashedProblem h = hash_problem(network, input, mode, rows, neurons);
      const CsrMatrix hashed = reference_inference(h.network, h.input);
      if (mode != HashMode::none) {
        EXPECT_NE(first_difference(hashed, expected), "") << "the hashing changed nothing";
      }
      EXPECT_EQ(first_difference(undo(hashed, mode, rows, neurons), expected), "");
      EXPECT_EQ(undo_categories(hashed, mode, rows), categories);
    }
  }
}

TEST(HashInference, EngineGivesTheSameResultUnderEveryHashing) {
  std::mt19937 rng(7);
  const Index n = 61;
  const Network network = test::random_network(n, 20, rng);
  const CsrMatrix input = test::random_inputs(153, n, 0.5, 0.1f, 2.0f, rng, 7);
  const CsrMatrix expected = reference_inference(network, input);
  const std::vector<Index> categories = categories_of(expected);
  ASSERT_GT(categories.size(), 5u);
  ASSERT_LT(categories.size(), 140u);
  const Permutation rows = Permutation::hashing(input.rows(), 3), neurons = Permutation::hashing(n, 4);
  for (const HashMode mode : {HashMode::input, HashMode::network, HashMode::both}) {  // none: test_engine.cpp
    SCOPED_TRACE("--hash " + to_string(mode));
    HashedProblem h = hash_problem(network, input, mode, rows, neurons);
    prepare_weights(h.network, true, true);
    for (const auto& fp : {std::make_pair(Format::csc, Parallelism::model), std::make_pair(Format::csr, Parallelism::data),
                           std::make_pair(Format::csc, Parallelism::data)}) {
      SCOPED_TRACE(to_string(fp.first) + "/" + to_string(fp.second));
      EngineOptions options;
      options.format = fp.first;
      options.parallel = fp.second;
      options.threads = 2;
      options.block_rows = 16;
      const InferenceResult r = infer(h.network, h.input, options);
      EXPECT_EQ(first_difference(undo(r.activations, mode, rows, neurons), expected), "");
      EXPECT_EQ(undo_categories(r.activations, mode, rows), categories);
    }
  }
  // Hashing after prepare_weights (both formats present) works the same.
  Network both_formats = test::clone_network(network);
  prepare_weights(both_formats, true, true);
  permute_network(both_formats, neurons);
  EngineOptions options;
  options.format = Format::csc;
  options.parallel = Parallelism::model;
  options.threads = 2;
  const InferenceResult r = infer(both_formats, permute_columns(input, neurons), options);
  EXPECT_EQ(first_difference(unpermute(r.activations, nullptr, &neurons), expected), "");
}

}  // namespace
}  // namespace sdnn
