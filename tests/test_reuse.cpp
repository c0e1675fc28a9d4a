// test_reuse.cpp: exact computation reuse (spmm/reuse.hpp, EngineOptions::reuse). The pieces
// (signatures whatever the entry order, candidates confirmed entry by entry even when every hash
// collides, compaction, chains of representatives, expansion) and whole inferences on problems
// built to repeat rows: identical input rows (also in another entry order), rows that become
// identical only at a later layer, blocks whose rows all die, and a hash replaced so that
// different rows collide. Every format, parallelism, thread count and block size gives the
// reference's activations, categories and exact checksum with reuse, and computes fewer rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "spmm/engine.hpp"
#include "spmm/reference.hpp"
#include "spmm/reuse.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

std::uint64_t constant_hash(Index, Value) { return 42; }
std::uint64_t column_only_hash(Index column, Value) { return default_entry_hash(column, 1.0f); }

// Replaces the entry hash for one scope.
struct ReplacedHash {
  explicit ReplacedHash(EntryHash h) { set_entry_hash_for_tests(h); }
  ~ReplacedHash() { set_entry_hash_for_tests(nullptr); }
};

CsrMatrix rows_of(Index cols, const std::vector<std::vector<std::pair<Index, Value>>>& rows) {
  CsrMatrix m(static_cast<Index>(rows.size()), cols);
  for (std::size_t i = 0; i < rows.size(); ++i) m.offsets[i + 1] = m.offsets[i] + rows[i].size();
  m.reserve_nonzeros(m.nnz());
  Offset at = 0;
  for (const auto& row : rows)
    for (const auto& [j, v] : row) m.indices[at] = j, m.values[at] = v, ++at;
  return m;
}

TEST(Reuse, SignatureIgnoresEntryOrderAndSeesValueBits) {
  const CsrMatrix m = rows_of(8, {{{1, 2.0f}, {5, 3.0f}}, {{5, 3.0f}, {1, 2.0f}}, {{1, 2.0f}, {5, 3.0000002f}}, {}});
  RowSignatures s;
  signatures_of(m, s);
  EXPECT_EQ(s.hash[0], s.hash[1]);
  EXPECT_NE(s.hash[0], s.hash[2]);
  EXPECT_EQ(s.count[0], 2u);
  EXPECT_EQ(s.count[3], 0u);
  // The same rows by columns, split into two column blocks whose partial signatures add up.
  const CscMatrix by_columns = to_csc(m);
  RowSignatures whole, left, right;
  signatures_of(by_columns, 0, whole);
  std::vector<Triplet> l, r;
  for (Index i = 0; i < m.rows(); ++i)
    for (Offset p = m.begin(i); p < m.end(i); ++p)
      (m.indices[p] < 4 ? l : r).push_back({i, m.indices[p] < 4 ? m.indices[p] : m.indices[p] - 4, m.values[p]});
  signatures_of(from_triplets<ColMajor>(4, 4, l), 0, left);
  signatures_of(from_triplets<ColMajor>(4, 4, r), 4, right);
  for (Index i = 0; i < 4; ++i) {
    EXPECT_EQ(whole.hash[i], s.hash[i]);
    EXPECT_EQ(left.hash[i] + right.hash[i], s.hash[i]);
    EXPECT_EQ(left.count[i] + right.count[i], s.count[i]);
  }
}

TEST(Reuse, CandidatesAreConfirmedEntryByEntry) {
  // Rows 0, 2, 4 are the same (2 in another order); 1 and 3 have the same columns, other values.
  const CsrMatrix m = rows_of(8, {{{1, 2.0f}, {5, 3.0f}},
                                   {{1, 2.0f}, {6, 3.0f}},
                                   {{5, 3.0f}, {1, 2.0f}},
                                   {{1, 2.0f}, {6, 4.0f}},
                                   {{1, 2.0f}, {5, 3.0f}},
                                   {{7, 1.0f}}});
  for (EntryHash h : {&default_entry_hash, &constant_hash, &column_only_hash}) {
    ReplacedHash replaced(h);
    RowSignatures s;
    signatures_of(m, s);
    RowComparer comparer;
    int compared = 0;
    std::vector<Index> representative;
    const Index found = find_repeats(
        s,
        [&](Index a, Index b) {
          ++compared;
          return comparer.same(m, a, b);
        },
        representative);
    EXPECT_EQ(found, 2u);
    EXPECT_EQ(representative, (std::vector<Index>{0, 1, 0, 3, 0, 5}));
    if (h == &constant_hash) {
      EXPECT_GT(compared, 2);  // every row of two entries collides
    }
  }
}

TEST(Reuse, CandidatePairsPairEachRowWithTheFirstOfItsSignature) {
  ReplacedHash replaced(&constant_hash);
  const CsrMatrix m = rows_of(8, {{{1, 2.0f}}, {{2, 2.0f}}, {}, {{3, 1.0f}, {4, 1.0f}}, {{1, 2.0f}}});
  RowSignatures s;
  signatures_of(m, s);
  const auto pairs = candidate_pairs(s);
  EXPECT_EQ(pairs, (std::vector<std::pair<Index, Index>>{{1, 0}, {4, 0}}));
}

TEST(Reuse, DenseRowsAreComparedByValue) {
  ActiveRows sparse;
  sparse.rows = rows_of(16, {{{0, 1.0f}, {9, 32.0f}}, {{9, 32.0f}, {0, 1.0f}}, {{0, 1.0f}, {9, 31.0f}},
                             {{0, 1.0f}, {9, 32.0f}}, {{3, 1.0f}}, {{0, 1.0f}, {9, 32.0f}}, {{2, 1.0f}},
                             {{2, 1.0f}}, {{0, 1.0f}, {9, 32.0f}}, {{4, 4.0f}}});
  sparse.ids = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  DenseRows dense;
  to_dense(sparse, 16, dense);
  ReplacedHash replaced(&constant_hash);
  ReuseLog log;
  RowSignatures s;
  Offset dropped_nonzeros = 0;
  EXPECT_EQ(deduplicate(dense, log, s, dropped_nonzeros), 5u);
  EXPECT_EQ(dropped_nonzeros, 2u + 2u + 2u + 2u + 1u);
  EXPECT_EQ(dense.ids, (std::vector<Index>{10, 12, 14, 16, 19}));
  EXPECT_EQ(dense.at(1, 9), 31.0f);
  EXPECT_EQ(dense.at(4, 4), 4.0f);
  ASSERT_EQ(dense.panel.size(), std::size_t{16} * kPanelRows);  // compacted in place: one panel left
  for (Index r = 5; r < kPanelRows; ++r)
    for (Index k = 0; k < 16; ++k) EXPECT_EQ(dense.at(r, k), 0.0f) << "padding row " << r;
  const auto holders = log.final_holders();
  EXPECT_EQ(holders.size(), 5u);
  for (const auto& [dropped, holder] : holders) EXPECT_EQ(holder, dropped == 17 ? 16u : 10u) << dropped;
}

TEST(Reuse, ChainsOfRepresentativesEndAtTheLastHolder) {
  ReuseLog log;
  log.record(5, 3);  // layer a: 5 is 3
  log.record(7, 3);
  log.record(3, 1);  // layer b: 3 is 1
  log.record(9, 8);
  log.record(1, 0);  // layer c: 1 is 0
  std::vector<std::pair<Index, Index>> holders = log.final_holders();
  std::sort(holders.begin(), holders.end());
  EXPECT_EQ(holders, (std::vector<std::pair<Index, Index>>{{1, 0}, {3, 0}, {5, 0}, {7, 0}, {9, 8}}));
}

TEST(Reuse, ExpansionGivesEveryRowItsHoldersResult) {
  // Final rows: 0 survived with two entries, 8 died (absent); 1, 3, 5, 7 stand for 0 through a
  // chain; 9 stands for 8.
  ReuseLog log;
  log.record(5, 3);
  log.record(7, 3);
  log.record(3, 1);
  log.record(9, 8);
  log.record(1, 0);
  ActiveRows final_rows;
  final_rows.rows = rows_of(4, {{{2, 1.5f}, {0, 32.0f}}, {{1, 0.25f}}});
  final_rows.ids = {0, 4};
  std::vector<Index> categories = {0, 4};
  ExactSum sum = exact_sum_of(final_rows.rows);
  add_reused_results(log, final_rows, categories, sum);
  std::sort(categories.begin(), categories.end());
  EXPECT_EQ(categories, (std::vector<Index>{0, 1, 3, 4, 5, 7}));
  EXPECT_EQ(to_double(sum), 5 * 33.5 + 0.25);

  ActiveRows expanded;
  expanded.rows = final_rows.rows.clone();
  expanded.ids = final_rows.ids;
  expand_rows(log, expanded);
  ASSERT_EQ(expanded.rows.rows(), 6u);
  EXPECT_TRUE(exact_sum_of(expanded.rows) == sum);
  for (Index r = 2; r < 6; ++r) {
    EXPECT_EQ(expanded.rows.end(r) - expanded.rows.begin(r), 2u);
    EXPECT_EQ(expanded.rows.values[expanded.rows.begin(r) + 1], 32.0f);
  }

  CsrMatrix all = rows_of(4, {{{2, 1.5f}, {0, 32.0f}}, {}, {}, {}, {{1, 0.25f}}, {}, {}, {}, {}, {}});
  expand_matrix(log, all);
  EXPECT_EQ(categories_of(all), (std::vector<Index>{0, 1, 3, 4, 5, 7}));
  EXPECT_TRUE(exact_sum_of(all) == sum);
  EXPECT_EQ(all.end(7) - all.begin(7), 2u);
  EXPECT_EQ(all.values[all.begin(7)], 1.5f);
}

TEST(Reuse, CsrAndCscCompaction) {
  ActiveRows rows;
  rows.rows = rows_of(6, {{{0, 1.0f}}, {{1, 2.0f}, {2, 3.0f}}, {{0, 1.0f}}, {{4, 1.0f}}, {{2, 3.0f}, {1, 2.0f}}, {{5, 5.0f}}});
  rows.ids = {20, 21, 22, 23, 24, 25};
  CscMatrix by_columns = to_csc(rows.rows);
  ReuseLog log, csc_log;
  RowSignatures s;
  RowComparer comparer;
  EXPECT_EQ(deduplicate(rows, log, s, comparer), 2u);
  EXPECT_EQ(rows.ids, (std::vector<Index>{20, 21, 23, 25}));
  EXPECT_EQ(rows.rows.nnz(), 5u);
  EXPECT_EQ(rows.rows.values[rows.rows.begin(3)], 5.0f);
  std::vector<std::pair<Index, Index>> holders = log.final_holders();
  std::sort(holders.begin(), holders.end());
  EXPECT_EQ(holders, (std::vector<std::pair<Index, Index>>{{22, 20}, {24, 21}}));  // ids, not positions
  EXPECT_EQ(deduplicate(by_columns, nullptr, csc_log, s, comparer), 2u);
  EXPECT_EQ(by_columns.nnz(), 5u);
  EXPECT_EQ(categories_of(to_csr(by_columns)), (std::vector<Index>{0, 1, 3, 5}));
  EXPECT_EQ(csc_log.final_holders().size(), 2u);
}

TEST(Reuse, ScheduleBacksOffWhileNothingIsFound) {
  ReuseSchedule schedule;
  std::vector<int> looked;
  for (int l = 0; l < 40; ++l)
    if (schedule.due()) {
      looked.push_back(l);
      schedule.found(l == 22 ? 3 : 0, 100, 40 - l);
    }
  EXPECT_EQ(looked, (std::vector<int>{0, 2, 6, 14, 22, 23, 25, 29, 37}));
  // Dropping too few rows to pay for the look (for the layers left) counts as finding none.
  ReuseSchedule few;
  EXPECT_TRUE(few.due());
  few.found(1, 1000, 100);
  EXPECT_FALSE(few.due());
  EXPECT_TRUE(few.due());
  few.found(3, 1000, 100);
  EXPECT_TRUE(few.due());
  few.found(3, 1000, 10);
  EXPECT_FALSE(few.due());
}

// --- whole inferences

struct Combination {
  Format format;
  Parallelism parallel;
  int threads;
  double dense_threshold;
};
const std::vector<Combination> kCombinations = {
    {Format::csr, Parallelism::data, 1, 2.0}, {Format::csr, Parallelism::data, 1, 0.125}, {Format::csr, Parallelism::data, 2, 0.125},
    {Format::csr, Parallelism::data, 2, 2.0},   {Format::csr, Parallelism::data, 2, 0.0},
    {Format::csc, Parallelism::data, 1, 0.125}, {Format::csc, Parallelism::data, 2, 2.0},
    {Format::csc, Parallelism::data, 2, 0.0},   {Format::csc, Parallelism::model, 1, 0.125},
    {Format::csc, Parallelism::model, 2, 2.0},  {Format::csc, Parallelism::model, 2, 0.0}};

// The rows alive before each layer, by the reference one layer at a time.
std::uint64_t alive_rows_over_layers(const Network& network, const CsrMatrix& input) {
  std::uint64_t total = 0;
  CsrMatrix y = input.clone();
  for (const Layer& layer : network) {
    total += categories_of(y).size();
    Network one;
    one.push_back(Layer{layer.weights_csr.clone(), CscMatrix(), layer.bias, {}});
    y = reference_inference(one, y);
  }
  return total;
}

// Every combination, block size and keep/drop of the activations, with reuse, against the
// reference; returns the fewest rows computed over the combinations' runs.
std::uint64_t check_with_reuse(const Network& network, const CsrMatrix& input) {
  const CsrMatrix expected = reference_inference(network, input);
  const std::vector<Index> categories = categories_of(expected);
  const ExactSum sum = exact_sum_of(expected);
  const std::uint64_t alive = alive_rows_over_layers(network, input);
  std::uint64_t fewest = alive;
  for (const Combination& c : kCombinations)
    for (Index block : {5u, 64u, 0u}) {
      SCOPED_TRACE(to_string(c.format) + "/" + to_string(c.parallel) + "/" + std::to_string(c.threads) + "t/dense " +
                   std::to_string(c.dense_threshold) + "/block " + std::to_string(block));
      EngineOptions o;
      o.format = c.format;
      o.parallel = c.parallel;
      o.threads = c.threads;
      o.dense_threshold = c.dense_threshold;
      o.block_rows = block;
      o.reuse = true;
      const InferenceResult r = infer(network, input, o);
      EXPECT_EQ(first_difference(r.activations, expected), "");
      EXPECT_EQ(r.categories, categories);
      EXPECT_TRUE(r.exact_sum == sum);
      EXPECT_EQ(r.layer_rows.size(), network.size());
      const std::uint64_t computed = std::accumulate(r.layer_rows.begin(), r.layer_rows.end(), std::uint64_t{0});
      EXPECT_LE(computed, alive);
      fewest = std::min(fewest, computed);
      if (c.parallel == Parallelism::data) {
        o.keep_activations = false;
        const InferenceResult dropped = infer(network, input, o);
        EXPECT_EQ(dropped.categories, categories);
        EXPECT_TRUE(dropped.exact_sum == sum);
        // With several threads, which block computes a row that blocks share depends on timing.
        if (c.threads == 1 || c.dense_threshold > 1.0) {
          EXPECT_EQ(dropped.active_nonzeros, r.active_nonzeros);
        }
      }
    }
  return fewest;
}

// `copies` rows, each a copy of one of the base rows (picked at random), every other copy with
// its entries in reverse order; then the base rows themselves.
CsrMatrix with_copies(const CsrMatrix& base, Index copies, std::mt19937& rng) {
  std::uniform_int_distribution<Index> pick(0, base.rows() - 1);
  std::vector<std::vector<std::pair<Index, Value>>> rows;
  for (Index c = 0; c < copies + base.rows(); ++c) {
    const Index from = c < copies ? pick(rng) : c - copies;
    std::vector<std::pair<Index, Value>> row;
    for (Offset p = base.begin(from); p < base.end(from); ++p) row.emplace_back(base.indices[p], base.values[p]);
    if (c % 2) std::reverse(row.begin(), row.end());
    rows.push_back(row);
  }
  return rows_of(base.cols(), rows);
}

TEST(ReuseEngine, IdenticalInputRows) {
  std::mt19937 rng(161);
  Network network = test::random_network(64, 20, rng);
  prepare_weights(network, true, true);
  const CsrMatrix base = test::random_inputs(30, 64, 0.5, 0.1f, 2.0f, rng, 7);
  const CsrMatrix input = with_copies(base, 170, rng);
  const std::uint64_t alive = alive_rows_over_layers(network, input);
  const CsrMatrix expected = reference_inference(network, input);
  ASSERT_GT(categories_of(expected).size(), 0u);
  ASSERT_LT(categories_of(expected).size(), categories_of(input).size());
  EXPECT_LT(check_with_reuse(network, input), alive / 2);
}

// 12 random layers of n = 48 neurons whose positive weights saturate rows to the cap, where
// different rows meet later; layer 1 has no weights out of neuron 0, so input rows that differ
// only there are identical from layer 1 on.
Network network_ignoring_neuron_0(Index n, std::mt19937& rng) {
  Network network;
  for (Index l = 0; l < 12; ++l) network.push_back(test::random_layer(n, 0.15, 0.2f, 3.0f, -0.5f, -0.1f, rng));
  std::vector<Triplet> t;
  const CsrMatrix& w = network[0].weights_csr;
  for (Index i = 1; i < n; ++i)
    for (Offset p = w.begin(i); p < w.end(i); ++p) t.push_back({i, w.indices[p], w.values[p]});
  network[0].weights_csr = from_triplets<RowMajor>(n, n, t);
  prepare_weights(network, true, true);
  return network;
}

// Input rows that differ only in neuron 0 (network_ignoring_neuron_0), and rows that saturate.
TEST(ReuseEngine, RowsThatBecomeIdenticalLater) {
  std::mt19937 rng(162);
  const Index n = 48;
  const Network network = network_ignoring_neuron_0(n, rng);
  const CsrMatrix base = test::random_inputs(60, n, 0.3, 0.01f, 1.0f, rng, 5);
  std::vector<Triplet> t;
  for (Index i = 0; i < base.rows(); ++i) {
    for (Offset p = base.begin(i); p < base.end(i); ++p)
      if (base.indices[p] != 0) {
        t.push_back({2 * i, base.indices[p], base.values[p]});
        t.push_back({2 * i + 1, base.indices[p], base.values[p]});
      }
    t.push_back({2 * i + 1, 0, 1.0f + static_cast<float>(i)});  // differs from row 2i in neuron 0
  }
  const CsrMatrix input = from_triplets<RowMajor>(2 * base.rows(), n, t);
  const CsrMatrix expected = reference_inference(network, input);
  ASSERT_GT(test::count_equal(expected, 32.0f), 0u);
  ASSERT_GT(categories_of(expected).size(), 0u);
  // No two input rows are the same, yet far fewer rows are computed than are alive.
  {
    RowSignatures s;
    signatures_of(input, s);
    std::vector<Index> representative;
    RowComparer comparer;
    EXPECT_EQ(find_repeats(s, [&](Index a, Index b) { return comparer.same(input, a, b); }, representative), 0u);
  }
  EXPECT_LT(check_with_reuse(network, input), alive_rows_over_layers(network, input) / 2);
}

// Every row of some blocks dies (copies of a dying row, then empty rows), others survive.
TEST(ReuseEngine, BlocksThatDieEntirely) {
  std::mt19937 rng(163);
  Network network = test::random_network(64, 15, rng);
  prepare_weights(network, true, true);
  const CsrMatrix base = test::random_inputs(40, 64, 0.5, 0.1f, 2.0f, rng);
  const CsrMatrix base_out = reference_inference(network, base);
  Index dying = base.rows(), surviving = base.rows();
  for (Index i = 0; i < base.rows(); ++i) {
    const bool alive = base_out.end(i) > base_out.begin(i), present = base.end(i) > base.begin(i);
    if (present && !alive && dying == base.rows()) dying = i;
    if (alive && surviving == base.rows()) surviving = i;
  }
  ASSERT_LT(dying, base.rows());
  ASSERT_LT(surviving, base.rows());
  std::vector<Index> from;
  for (int i = 0; i < 70; ++i) from.push_back(dying);      // blocks of 5 and 64 made of a dying row
  for (int i = 0; i < 70; ++i) from.push_back(base.rows());  // empty rows
  for (int i = 0; i < 20; ++i) from.push_back(surviving);
  for (Index i = 0; i < base.rows(); ++i) from.push_back(i);
  std::vector<Triplet> t;
  for (Index r = 0; r < from.size(); ++r)
    if (from[r] < base.rows())
      for (Offset p = base.begin(from[r]); p < base.end(from[r]); ++p) t.push_back({r, base.indices[p], base.values[p]});
  const CsrMatrix input = from_triplets<RowMajor>(static_cast<Index>(from.size()), 64, t);
  EXPECT_LT(check_with_reuse(network, input), alive_rows_over_layers(network, input));
}

// A hash that makes every row of the same length (or the same columns) collide: the
// entry-by-entry check keeps different rows apart, and real repeats are still dropped.
TEST(ReuseEngine, ForcedHashCollisions) {
  std::mt19937 rng(164);
  Network network = test::random_network(48, 12, rng);
  prepare_weights(network, true, true);
  const CsrMatrix base = test::random_inputs(25, 48, 0.4, 0.1f, 2.0f, rng);
  const CsrMatrix input = with_copies(base, 60, rng);
  const std::uint64_t alive = alive_rows_over_layers(network, input);
  for (EntryHash h : {&constant_hash, &column_only_hash}) {
    ReplacedHash replaced(h);
    EXPECT_LT(check_with_reuse(network, input), alive);
  }
}

// --- across blocks (data parallelism, dense panels)

DenseRows panels_of(const CsrMatrix& m) {
  ActiveRows rows;
  rows.rows = m.clone();
  rows.ids.resize(m.rows());
  std::iota(rows.ids.begin(), rows.ids.end(), Index{0});
  DenseRows panels;
  to_dense(rows, m.cols(), panels);
  return panels;
}

TEST(Reuse, SharedTableComparesEntryByEntryAndKeepsToItsBudget) {
  // Rows 0 and 2 are equal, row 1 has the same columns with other values, row 3 the same values
  // elsewhere.
  const CsrMatrix m = rows_of(8, {{{1, 2.0f}, {5, 3.0f}}, {{1, 2.0f}, {5, 4.0f}}, {{5, 3.0f}, {1, 2.0f}}, {{2, 2.0f}, {5, 3.0f}}});
  const DenseRows panels = panels_of(m);
  for (EntryHash h : {EntryHash{nullptr}, &constant_hash, &column_only_hash}) {
    ReplacedHash replaced(h);
    RowSignatures s;
    signatures_of(panels, s);
    SharedRepresentatives table(3, 8);  // room for one row of 8 neurons
    EXPECT_EQ(table.match(1, panels, 0, s.hash[0], s.count[0], true), -1);   // published
    EXPECT_EQ(table.match(1, panels, 1, s.hash[1], s.count[1], true), -1);   // differs; over budget
    EXPECT_EQ(table.match(1, panels, 1, s.hash[1], s.count[1], false), -1);  // so not published
    EXPECT_EQ(table.match(1, panels, 3, s.hash[3], s.count[3], false), -1);
    EXPECT_EQ(table.match(1, panels, 2, s.hash[2], s.count[2], false), 0);
    EXPECT_EQ(table.match(0, panels, 2, s.hash[2], s.count[2], false), -1);  // another layer
  }
}

// `blocks` blocks of `block` rows, each made of pairs of copies of base rows (picked at random),
// shuffled within the block: every row stands for another in its block, and the blocks share
// their rows. first_holds_all: the first block is every base row twice, in order (block must be
// twice the base rows).
CsrMatrix pairs_in_blocks(const CsrMatrix& base, Index blocks, Index block, std::mt19937& rng,
                          bool first_holds_all = false) {
  std::uniform_int_distribution<Index> pick(0, base.rows() - 1);
  std::vector<std::vector<std::pair<Index, Value>>> rows;
  for (Index b = 0; b < blocks; ++b) {
    std::vector<Index> from;
    for (Index i = 0; i < block / 2; ++i) from.insert(from.end(), 2, b == 0 && first_holds_all ? i : pick(rng));
    if (b > 0 || !first_holds_all) std::shuffle(from.begin(), from.end(), rng);
    for (Index f : from) {
      std::vector<std::pair<Index, Value>> row;
      for (Offset p = base.begin(f); p < base.end(f); ++p) row.emplace_back(base.indices[p], base.values[p]);
      rows.push_back(row);
    }
  }
  return rows_of(base.cols(), rows);
}

// Data parallelism in dense panels from the input on (where blocks share rows), blocks of
// `block` rows, both formats, 1 to 4 threads, with and without the activations: the reference's
// activations, categories and checksum. Returns the most rows computed for each thread count
// (index 1 to 4); with one thread the blocks run in order.
std::vector<std::uint64_t> check_across_blocks(const Network& network, const CsrMatrix& input, Index block) {
  const CsrMatrix expected = reference_inference(network, input);
  const std::vector<Index> categories = categories_of(expected);
  const ExactSum sum = exact_sum_of(expected);
  std::vector<std::uint64_t> most(5, 0);
  for (Format format : {Format::csr, Format::csc})
    for (int threads = 1; threads <= 4; ++threads)
      for (bool keep : {true, false}) {
        SCOPED_TRACE(to_string(format) + "/" + std::to_string(threads) + "t/keep " + std::to_string(keep));
        EngineOptions o;
        o.format = format;
        o.parallel = Parallelism::data;
        o.threads = threads;
        o.dense_threshold = 0.0;
        o.block_rows = block;
        o.reuse = true;
        o.keep_activations = keep;
        const InferenceResult r = infer(network, input, o);
        if (keep) {
          EXPECT_EQ(first_difference(r.activations, expected), "");
        }
        EXPECT_EQ(r.categories, categories);
        EXPECT_TRUE(r.exact_sum == sum);
        const std::uint64_t computed = std::accumulate(r.layer_rows.begin(), r.layer_rows.end(), std::uint64_t{0});
        most[threads] = std::max(most[threads], computed);
      }
  return most;
}

// Base rows, some dying on the way and some surviving, copied in pairs across 30 blocks: with one
// thread, the first block computes each distinct row and every later block drops all of its
// rows at the input (the whole block leaves the work); the rows that die take their copies in
// other blocks with them.
TEST(ReuseEngine, IdenticalRowsAcrossBlocksAreComputedOnce) {
  std::mt19937 rng(165);
  Network network = test::random_network(64, 20, rng);
  prepare_weights(network, true, true);
  const CsrMatrix base = test::random_inputs(8, 64, 0.5, 0.1f, 2.0f, rng);
  const CsrMatrix base_out = reference_inference(network, base);
  ASSERT_GT(categories_of(base_out).size(), 0u);
  ASSERT_LT(categories_of(base_out).size(), categories_of(base).size());
  const CsrMatrix input = pairs_in_blocks(base, 30, 16, rng, true);
  const std::uint64_t distinct = alive_rows_over_layers(network, base);
  const std::vector<std::uint64_t> most = check_across_blocks(network, input, 16);
  EXPECT_LE(most[1], distinct);
  // Blocks running at the same time may each compute a row before one of them publishes it.
  for (int threads = 2; threads <= 4; ++threads) EXPECT_LE(most[threads], 2 * threads * distinct) << threads;
  EXPECT_LT(most[4], alive_rows_over_layers(network, input) / 4);
}

// Pairs of rows that differ only in a neuron layer 1 ignores (as in RowsThatBecomeIdenticalLater),
// the same base rows in every block with another value in that neuron: no two input rows are the
// same, but from layer 1 on the blocks share their rows.
TEST(ReuseEngine, RowsThatBecomeIdenticalLaterAcrossBlocks) {
  std::mt19937 rng(166);
  const Index n = 48;
  const Network network = network_ignoring_neuron_0(n, rng);
  const Index base_rows = 4, blocks = 20;
  const CsrMatrix base = test::random_inputs(base_rows, n, 0.3, 0.01f, 1.0f, rng);
  std::vector<Triplet> t;
  for (Index b = 0; b < blocks; ++b)
    for (Index i = 0; i < 2 * base_rows; ++i) {  // block b: two rows of each base row
      const Index row = b * 2 * base_rows + i, from = i / 2;
      for (Offset p = base.begin(from); p < base.end(from); ++p)
        if (base.indices[p] != 0) t.push_back({row, base.indices[p], base.values[p]});
      t.push_back({row, 0, 1.0f + static_cast<float>(row)});
    }
  const CsrMatrix input = from_triplets<RowMajor>(blocks * 2 * base_rows, n, t);
  {
    RowSignatures s;
    signatures_of(input, s);
    std::vector<Index> representative;
    RowComparer comparer;
    ASSERT_EQ(find_repeats(s, [&](Index a, Index b) { return comparer.same(input, a, b); }, representative), 0u);
  }
  const std::vector<std::uint64_t> most = check_across_blocks(network, input, 2 * base_rows);
  // Every block computes its rows until they meet, two layers at most (the first look after the input is
  // before layer 2); from then on the first block's rows stand for everyone's.
  const std::uint64_t layers = network.size();
  EXPECT_LE(most[1], 2 * input.rows() + (layers - 2) * base_rows);
  EXPECT_LT(most[4], alive_rows_over_layers(network, input) / 2);
}

// A hash under which many different rows collide, with the pairs across blocks of
// IdenticalRowsAcrossBlocksAreComputedOnce: colliding rows of other blocks are told apart entry by
// entry, and the results stay the reference's.
TEST(ReuseEngine, ForcedHashCollisionsAcrossBlocks) {
  std::mt19937 rng(167);
  Network network = test::random_network(48, 12, rng);
  prepare_weights(network, true, true);
  const CsrMatrix base = test::random_inputs(12, 48, 0.4, 0.1f, 2.0f, rng);
  const CsrMatrix input = pairs_in_blocks(base, 24, 6, rng);
  const std::uint64_t alive = alive_rows_over_layers(network, input);
  for (EntryHash h : {&constant_hash, &column_only_hash}) {
    ReplacedHash replaced(h);
    const std::vector<std::uint64_t> most = check_across_blocks(network, input, 6);
    EXPECT_LT(most[1], alive / 3);
  }
}

}  // namespace
}  // namespace sdnn
