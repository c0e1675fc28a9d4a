// test_engine.cpp: infer() over whole networks in every offered combination (csr/data with and without
// dense panels, csc/data, csc/model; 1 and 2 threads; small blocks) against reference_inference entry by
// entry; the refused csr+model and other argument errors; 0 rows, 0 layers; a generated RadiX-Net;
// blocks through one InferenceSession against separate calls; the column groups prepared with the
// weights.
#include <gtest/gtest.h>
#include <omp.h>

#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hash/hash.hpp"
#include "io/generate.hpp"
#include "spmm/dense_rows.hpp"
#include "spmm/engine.hpp"
#include "spmm/panel_handoff.hpp"
#include "spmm/reference.hpp"
#include "spmm/thread_failure.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

struct Combination {
  Format format;
  Parallelism parallel;
  int threads;
  double dense_threshold = EngineOptions().dense_threshold;
};

constexpr double kAlwaysDense = 0.0, kNeverDense = 2.0;

const std::vector<Combination> kCombinations = {
    {Format::csr, Parallelism::data, 1},
    {Format::csr, Parallelism::data, 2},
    {Format::csr, Parallelism::data, 1, kNeverDense},
    {Format::csr, Parallelism::data, 2, kNeverDense},
    {Format::csr, Parallelism::data, 2, kAlwaysDense},
    {Format::csc, Parallelism::data, 1},
    {Format::csc, Parallelism::data, 2},
    {Format::csc, Parallelism::data, 2, kNeverDense},
    {Format::csc, Parallelism::data, 2, kAlwaysDense},
    {Format::csc, Parallelism::model, 1},
    {Format::csc, Parallelism::model, 2},
    {Format::csc, Parallelism::model, 2, kNeverDense},
    {Format::csc, Parallelism::model, 1, kAlwaysDense},
    {Format::csc, Parallelism::model, 2, kAlwaysDense}};

std::string name_of(const Combination& c) {
  return to_string(c.format) + "/" + to_string(c.parallel) + "/" + std::to_string(c.threads) + "t/dense " +
         std::to_string(c.dense_threshold);
}

EngineOptions options_of(const Combination& c, Index block_rows) {
  EngineOptions o;
  o.format = c.format;
  o.parallel = c.parallel;
  o.threads = c.threads;
  o.block_rows = block_rows;
  o.dense_threshold = c.dense_threshold;
  return o;
}

// Y_0, Y_1, ..., Y_L by the reference one layer at a time, for the expected active_nonzeros.
std::uint64_t expected_active_nonzeros(const Network& network, const CsrMatrix& input) {
  std::uint64_t total = 0;
  CsrMatrix y = input.clone();
  for (const Layer& layer : network) {
    total += y.nnz();
    Network one;
    one.push_back(Layer{layer.weights_csr.clone(), CscMatrix(), layer.bias, {}});
    y = reference_inference(one, y);
  }
  return total;
}

// Runs every combination and compares it with the reference. Returns the reference result.
CsrMatrix check_all_combinations(const Network& network, const CsrMatrix& input, Index block_rows,
                                 bool check_active = true) {
  CsrMatrix expected = reference_inference(network, input);
  const std::vector<Index> categories = categories_of(expected);
  const double checksum = checksum_of(expected);
  const std::uint64_t active = check_active ? expected_active_nonzeros(network, input) : 0;
  for (const Combination& c : kCombinations) {
    SCOPED_TRACE(name_of(c));
    const InferenceResult r = infer(network, input, options_of(c, block_rows));
    EXPECT_EQ(r.activations.rows(), input.rows());
    EXPECT_EQ(r.activations.cols(), input.cols());
    EXPECT_EQ(first_difference(r.activations, expected), "");
    EXPECT_EQ(categories_of(r.activations), categories);
    EXPECT_EQ(checksum_of(r.activations), checksum);
    if (check_active) {
      EXPECT_EQ(r.active_nonzeros, active);
    }
  }
  return expected;
}

struct RandomCase {
  Index neurons, layers, rows;
  std::uint32_t seed;
};

class EngineRandom : public ::testing::TestWithParam<RandomCase> {};

TEST_P(EngineRandom, EveryCombinationEqualsReference) {
  const RandomCase c = GetParam();
  std::mt19937 rng(c.seed);
  Network network = test::random_network(c.neurons, c.layers, rng);
  prepare_weights(network, true, true);
  const CsrMatrix input = test::random_inputs(c.rows, c.neurons, 0.5, 0.1f, 2.0f, rng, 9);
  const CsrMatrix expected = check_all_combinations(network, input, 7);
  check_all_combinations(network, input, 61);  // several panels per block: groups of 4, 3, 2, 1
  if (c.rows >= 100) {
    // Not trivial: rows die on the way, some survive, and some values are at the cap or near it.
    const Offset alive = categories_of(expected).size(), nonempty = categories_of(input).size();
    EXPECT_GT(alive, 0u);
    EXPECT_LT(alive, nonempty);
    EXPECT_GT(expected.nnz(), 50u);
  }
}

INSTANTIATE_TEST_SUITE_P(Networks, EngineRandom,
                         ::testing::Values(RandomCase{64, 10, 300, 1}, RandomCase{64, 30, 300, 2},
                                           RandomCase{96, 20, 250, 3}, RandomCase{96, 30, 300, 4},
                                           RandomCase{64, 17, 1, 5}, RandomCase{96, 12, 8, 6},
                                           RandomCase{64, 25, 123, 7}, RandomCase{102, 20, 200, 8}),
                         [](const ::testing::TestParamInfo<RandomCase>& random_case) {
                           const RandomCase& c = random_case.param;
                           return "n" + std::to_string(c.neurons) + "_l" + std::to_string(c.layers) + "_rows" +
                                  std::to_string(c.rows);
                         });

TEST(Engine, RandomNetworksReachTheCapAndKillRows) {
  // The helper networks are meant to put values at the cap and to kill rows gradually: check that
  // they do (layer by layer with the reference), so that these cases are covered above.
  std::mt19937 rng(2);
  const Network network = test::random_network(64, 30, rng);
  CsrMatrix y = test::random_inputs(300, 64, 0.5, 0.1f, 2.0f, rng, 9);
  Offset capped = 0;
  std::vector<std::size_t> alive{categories_of(y).size()};
  for (const Layer& layer : network) {
    Network one;
    one.push_back(Layer{layer.weights_csr.clone(), CscMatrix(), layer.bias, {}});
    y = reference_inference(one, y);
    capped += test::count_equal(y, kActivationCap);
    alive.push_back(categories_of(y).size());
  }
  EXPECT_GT(capped, 100u);
  EXPECT_LT(alive[30], alive[0]);
  EXPECT_LT(alive[30], alive[15]) << "rows still die in the second half";
  EXPECT_GT(alive[30], 0u);
}

TEST(Engine, BlockSizesDoNotMatter) {
  std::mt19937 rng(8);
  Network network = test::random_network(64, 15, rng);
  prepare_weights(network, true, true);
  const CsrMatrix input = test::random_inputs(100, 64, 0.5, 0.1f, 2.0f, rng, 4);
  const CsrMatrix expected = reference_inference(network, input);
  for (Index block : {1u, 2u, 99u, 100u, 101u, 1000u})
    for (Format f : {Format::csr, Format::csc}) {
      SCOPED_TRACE(to_string(f) + " block " + std::to_string(block));
      EXPECT_EQ(first_difference(infer(network, input, options_of({f, Parallelism::data, 2}, block)).activations,
                                 expected),
                "");
    }
  // block_rows 0 is taken as 1.
  EXPECT_EQ(first_difference(infer(network, input, options_of({Format::csr, Parallelism::data, 2}, 0)).activations,
                             expected),
            "");
}

TEST(Engine, CsrWithModelParallelismIsRefused) {
  std::mt19937 rng(9);
  Network network = test::random_network(64, 3, rng);
  prepare_weights(network, true, true);
  const CsrMatrix input = test::random_inputs(10, 64, 0.5, 0.1f, 2.0f, rng);
  for (int threads : {1, 2}) {
    try {
      infer(network, input, options_of({Format::csr, Parallelism::model, threads}, 7));
      FAIL() << "csr + model was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("csc"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(check_combination(Format::csr, Parallelism::model), std::invalid_argument);
  EXPECT_NO_THROW(check_combination(Format::csr, Parallelism::data));
  EXPECT_NO_THROW(check_combination(Format::csc, Parallelism::data));
  EXPECT_NO_THROW(check_combination(Format::csc, Parallelism::model));
}

TEST(Engine, ParseNames) {
  EXPECT_EQ(parse_format("csr"), Format::csr);
  EXPECT_EQ(parse_format("csc"), Format::csc);
  EXPECT_EQ(parse_parallelism("data"), Parallelism::data);
  EXPECT_EQ(parse_parallelism("model"), Parallelism::model);
  EXPECT_THROW(parse_format("CSR"), std::invalid_argument);
  EXPECT_THROW(parse_format(""), std::invalid_argument);
  EXPECT_THROW(parse_parallelism("hybrid"), std::invalid_argument);
  EXPECT_EQ(to_string(Format::csc), "csc");
  EXPECT_EQ(to_string(Parallelism::model), "model");
}

TEST(Engine, UnpreparedWeightsAndWrongBiasAreRefused) {
  std::mt19937 rng(10);
  Network network = test::random_network(64, 3, rng);  // CSR weights only
  const CsrMatrix input = test::random_inputs(10, 64, 0.5, 0.1f, 2.0f, rng);
  EXPECT_THROW(infer(network, input, options_of({Format::csc, Parallelism::data, 1}, 7)), std::invalid_argument);
  EXPECT_THROW(infer(network, input, options_of({Format::csc, Parallelism::model, 1}, 7)), std::invalid_argument);
  EXPECT_NO_THROW(infer(network, input, options_of({Format::csr, Parallelism::data, 1}, 7)));
  prepare_weights(network, false, true);
  EXPECT_EQ(network[0].weights_csc.cols(), 64u);
  EXPECT_NO_THROW(infer(network, input, options_of({Format::csc, Parallelism::model, 1}, 7)));
  network[1].bias.pop_back();
  EXPECT_THROW(infer(network, input, options_of({Format::csr, Parallelism::data, 1}, 7)), std::invalid_argument);
  EXPECT_THROW(infer(network, input, options_of({Format::csc, Parallelism::model, 2}, 7)), std::invalid_argument);
  // Input of another width than the network.
  Network other = test::random_network(64, 2, rng);
  prepare_weights(other, true, true);
  const CsrMatrix narrow = test::random_inputs(10, 32, 0.5, 0.1f, 2.0f, rng);
  EXPECT_THROW(infer(other, narrow, options_of({Format::csr, Parallelism::data, 1}, 7)), std::invalid_argument);
}

TEST(Engine, PrepareWeightsConvertsBothWays) {
  std::mt19937 rng(12);
  Network network = test::random_network(37, 2, rng);
  Network from_csc;
  for (Layer& layer : network) from_csc.push_back(Layer{CsrMatrix(), to_csc(layer.weights_csr), layer.bias, {}});
  prepare_weights(network, true, true);
  prepare_weights(from_csc, true, false);
  for (std::size_t l = 0; l < network.size(); ++l) {
    EXPECT_EQ(first_difference(to_csr(network[l].weights_csc), network[l].weights_csr), "");
    EXPECT_EQ(first_difference(from_csc[l].weights_csr, network[l].weights_csr), "");
  }
}

// prepare_weights gives every layer with CSC weights its column groups (as group_columns computes
// them); the engine reads the layer's groups when it has them (a deliberately wrong grouping
// changes the answer), computes its own when the layer has none, and any valid grouping gives
// the same bits; network hashing empties the groups of the old numbering.
TEST(Engine, ColumnGroupsPreparedWithTheWeights) {
  Network network = generate_network(64, 12, 5);
  prepare_weights(network, true, true);
  Index grouped = 0;
  for (const Layer& layer : network) {
    ASSERT_TRUE(layer.has_column_groups());
    ColumnGroups fresh;
    group_columns(layer.weights_csc, fresh);
    EXPECT_EQ(layer.column_groups.order, fresh.order);
    EXPECT_EQ(layer.column_groups.start, fresh.start);
    grouped += layer.column_groups.count() > 0;
  }
  EXPECT_GT(grouped, 0u);  // a RadiX-Net: the grouped kernel runs
  const CsrMatrix input = generate_inputs(300, 64, 5);
  const CsrMatrix expected = check_all_combinations(network, input, 7);

  Network without = test::clone_network(network);  // no groups: the engine computes its own
  for (const Layer& layer : without) EXPECT_FALSE(layer.has_column_groups());
  EXPECT_EQ(first_difference(check_all_combinations(without, input, 7), expected), "");

  Network ungrouped = test::clone_network(network);  // valid, column by column
  for (Layer& layer : ungrouped) {
    layer.column_groups.order.resize(64);
    for (Index j = 0; j < 64; ++j) layer.column_groups.order[j] = j;
  }
  EXPECT_EQ(first_difference(check_all_combinations(ungrouped, input, 7), expected), "");

  Network wrong = test::clone_network(network);  // every neuron in one group: not what W says
  for (Layer& layer : wrong) {
    layer.column_groups.order.resize(64);
    for (Index j = 0; j < 64; ++j) layer.column_groups.order[j] = j;
    layer.column_groups.start = {0, 64};
  }
  const EngineOptions dense = options_of({Format::csr, Parallelism::data, 1, kAlwaysDense}, 7);
  EXPECT_NE(first_difference(infer(wrong, input, dense).activations, expected), "");

  Network hashed = test::clone_network(network);
  for (Layer& layer : hashed) layer.column_groups = network[&layer - hashed.data()].column_groups;
  permute_network(hashed, Permutation::hashing(64, 3));
  for (const Layer& layer : hashed) EXPECT_FALSE(layer.has_column_groups());
  prepare_weights(hashed, true, true);
  for (const Layer& layer : hashed) {
    ColumnGroups fresh;
    group_columns(layer.weights_csc, fresh);
    EXPECT_EQ(layer.column_groups.order, fresh.order);
  }
}

TEST(Engine, ZeroInputRows) {
  std::mt19937 rng(13);
  Network network = test::random_network(64, 5, rng);
  prepare_weights(network, true, true);
  const CsrMatrix input(0, 64);
  for (const Combination& c : kCombinations) {
    SCOPED_TRACE(name_of(c));
    const InferenceResult r = infer(network, input, options_of(c, 7));
    EXPECT_EQ(r.activations.rows(), 0u);
    EXPECT_EQ(r.activations.cols(), 64u);
    EXPECT_EQ(r.activations.nnz(), 0u);
    EXPECT_EQ(r.active_nonzeros, 0u);
  }
}

TEST(Engine, AllRowsEmptyOrDying) {
  std::mt19937 rng(14);
  Network network = test::random_network(64, 5, rng);
  prepare_weights(network, true, true);
  check_all_combinations(network, CsrMatrix(20, 64), 7);  // only empty rows
  for (Layer& layer : network) layer.bias.assign(64, -1000.0f);  // every row dies at layer 1
  const CsrMatrix input = test::random_inputs(30, 64, 0.5, 0.1f, 2.0f, rng);
  const CsrMatrix expected = check_all_combinations(network, input, 7);
  EXPECT_EQ(expected.nnz(), 0u);
}

TEST(Engine, ZeroLayersReturnTheInputSorted) {
  std::mt19937 rng(15);
  const CsrMatrix sorted = test::random_inputs(40, 64, 0.5, 0.1f, 2.0f, rng, 3);
  ASSERT_GT(sorted.nnz(), 100u);
  CsrMatrix shuffled = sorted.clone();  // the same entries, unsorted inside each row
  for (Index i = 0; i < shuffled.rows(); ++i) {
    std::vector<std::pair<Index, Value>> row;
    for (Offset p = shuffled.begin(i); p < shuffled.end(i); ++p) row.emplace_back(shuffled.indices[p], shuffled.values[p]);
    std::reverse(row.begin(), row.end());
    for (Offset p = shuffled.begin(i); p < shuffled.end(i); ++p)
      std::tie(shuffled.indices[p], shuffled.values[p]) = row[p - shuffled.begin(i)];
  }
  const Network empty;
  for (const Combination& c : kCombinations) {
    SCOPED_TRACE(name_of(c));
    const InferenceResult r = infer(empty, shuffled, options_of(c, 7));
    EXPECT_EQ(first_difference(r.activations, sorted), "");
    EXPECT_EQ(r.active_nonzeros, 0u);
  }
  EXPECT_EQ(first_difference(reference_inference(empty, sorted), sorted), "");
}

TEST(Engine, UnsortedInputGivesSortedOutput) {
  std::mt19937 rng(16);
  Network network = test::random_network(64, 8, rng);
  prepare_weights(network, true, true);
  const CsrMatrix sorted = test::random_inputs(60, 64, 0.5, 0.1f, 2.0f, rng);
  CsrMatrix shuffled = sorted.clone();
  for (Index i = 0; i < shuffled.rows(); ++i) {
    std::reverse(shuffled.indices.begin() + shuffled.begin(i), shuffled.indices.begin() + shuffled.end(i));
    std::reverse(shuffled.values.begin() + shuffled.begin(i), shuffled.values.begin() + shuffled.end(i));
  }
  const CsrMatrix expected = reference_inference(network, sorted);
  ASSERT_GT(expected.nnz(), 0u);
  for (const Combination& c : kCombinations) {
    SCOPED_TRACE(name_of(c));
    EXPECT_EQ(first_difference(infer(network, shuffled, options_of(c, 7)).activations, expected), "");
  }
}

TEST(Engine, ProgressReachesTheEnd) {
  std::mt19937 rng(17);
  Network network = test::random_network(64, 10, rng);
  prepare_weights(network, true, true);
  const CsrMatrix input = test::random_inputs(200, 64, 0.5, 0.1f, 2.0f, rng);
  for (Format f : {Format::csr, Format::csc}) {
    std::vector<double> seen;
    EngineOptions o = options_of({f, Parallelism::data, 1}, 7);
    o.progress = [&](double fraction, const std::string&) { seen.push_back(fraction); };
    infer(network, input, o);
    ASSERT_FALSE(seen.empty());
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    EXPECT_DOUBLE_EQ(seen.back(), 1.0);
    EXPECT_LE(seen.size(), 101u);
  }
}

// An exception thrown inside the engine's parallel regions (here by the progress callback, which
// threads call as they finish blocks or layers) leaves infer() as that exception, with 1 and 3
// threads and in every parallelism: no crash (std::terminate) and no thread stranded at a barrier.
TEST(Engine, AnExceptionOnOneThreadLeavesInferOnce) {
  std::mt19937 rng(19);
  Network network = test::random_network(64, 6, rng);
  prepare_weights(network, true, true);
  const CsrMatrix input = test::random_inputs(400, 64, 0.5, 0.1f, 2.0f, rng);
  for (const Combination& c : kCombinations) {
    for (int threads : {1, 3}) {
      EngineOptions o = options_of({c.format, c.parallel, threads, c.dense_threshold}, 7);
      int calls = 0;
      o.progress = [&](double, const std::string&) {
        int call = 0;
#pragma omp atomic capture
        call = ++calls;
        if (call == 2) throw std::runtime_error("progress failed");
      };
      try {
        infer(network, input, o);
        ADD_FAILURE() << "no exception, " << threads << " thread(s)";
      } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "progress failed");
      }
    }
  }
}

// Without keeping the final activations, data parallelism still gives the categories and the
// exact checksum of the kept ones, for every block size and thread count.
TEST(Engine, CategoriesAndChecksumWithoutKeepingActivations) {
  std::mt19937 rng(23);
  Network network = test::random_network(48, 8, rng);
  prepare_weights(network, true, true);
  const CsrMatrix input = test::random_inputs(300, 48, 0.5, 0.1f, 2.0f, rng);
  const CsrMatrix expected = reference_inference(network, input);
  ASSERT_FALSE(categories_of(expected).empty());
  for (const Combination& c : kCombinations) {
    for (Index block : {1u, 7u, 1000u}) {
      EngineOptions o = options_of(c, block);
      const InferenceResult kept = infer(network, input, o);
      EXPECT_EQ(kept.categories, categories_of(expected));
      EXPECT_TRUE(kept.exact_sum == exact_sum_of(expected));
      if (c.parallel != Parallelism::data) continue;
      o.keep_activations = false;
      const InferenceResult dropped = infer(network, input, o);
      EXPECT_EQ(dropped.activations.nnz(), 0u);
      EXPECT_EQ(dropped.categories, categories_of(expected)) << "block " << block;
      EXPECT_TRUE(dropped.exact_sum == exact_sum_of(expected)) << "block " << block;
      EXPECT_EQ(dropped.active_nonzeros, kept.active_nonzeros);
    }
  }
}

// Rows that go on through more layers elsewhere (a pipeline stage before the last,
// final_results = false): no categories and no checksum, the same rows (in the order the last
// layer made their entries), and the network run in two parts gives the whole run's answer.
TEST(Engine, RowsForMoreLayersRunInTwoPartsLikeTheWhole) {
  std::mt19937 rng(29);
  Network network = test::random_network(48, 8, rng);
  prepare_weights(network, true, true);
  const CsrMatrix input = test::random_inputs(300, 48, 0.5, 0.1f, 2.0f, rng);
  const CsrMatrix expected = reference_inference(network, input);
  ASSERT_FALSE(categories_of(expected).empty());
  Network second(std::make_move_iterator(network.begin() + 3), std::make_move_iterator(network.end()));
  network.resize(3);
  const Network& first = network;
  const CsrMatrix middle = reference_inference(first, input);
  for (const Combination& c : kCombinations) {
    if (c.parallel != Parallelism::data) continue;
    for (Index block : {1u, 7u, 1000u}) {
      EngineOptions o = options_of(c, block);
      o.final_results = false;
      const InferenceResult passed = infer(first, input, o);
      EXPECT_TRUE(passed.categories.empty());
      EXPECT_TRUE(passed.exact_sum == 0);
      CsrMatrix sorted = passed.activations.clone();
      sorted.sort_indices();
      EXPECT_EQ(first_difference(middle, sorted), "") << "block " << block;
      o.final_results = true;
      const InferenceResult rest = infer(second, passed.activations, o);
      EXPECT_EQ(first_difference(expected, rest.activations), "") << "block " << block;
      EXPECT_EQ(rest.categories, categories_of(expected)) << "block " << block;
      EXPECT_TRUE(rest.exact_sum == exact_sum_of(expected)) << "block " << block;
    }
  }
}

TEST(ThreadFailureTest, FirstExceptionIsRethrownAfterTheRegionAndSeenByAllAfterABarrier) {
  ThreadFailure failure;
  int saw_failure = 0, team = 0;
#pragma omp parallel num_threads(4) reduction(+ : saw_failure, team)
  {
    team += 1;
    failure.guard([&] {
      if (omp_get_thread_num() == 1) throw std::invalid_argument("thread 1");
    });
#pragma omp barrier
    saw_failure += failure.failed() ? 1 : 0;
  }
  EXPECT_EQ(saw_failure, team);  // every thread, after the barrier
  EXPECT_THROW(failure.rethrow(), std::invalid_argument);
  ThreadFailure none;
  EXPECT_FALSE(none.failed());
  EXPECT_NO_THROW(none.rethrow());
}

TEST(Engine, SliceRows) {
  std::mt19937 rng(18);
  const CsrMatrix a = test::random_inputs(30, 20, 0.5, 0.1f, 2.0f, rng, 4);
  const CsrMatrix s = slice_rows(a, 7, 19);
  EXPECT_EQ(s.rows(), 12u);
  EXPECT_EQ(s.cols(), 20u);
  const auto da = test::dense_of(a), ds = test::dense_of(s);
  for (Index i = 0; i < 12; ++i) EXPECT_EQ(ds[i], da[i + 7]) << "row " << i;
  EXPECT_EQ(slice_rows(a, 5, 5).nnz(), 0u);
  EXPECT_EQ(first_difference(slice_rows(a, 0, 30), a), "");
}

// Fewer blocks than threads (3 blocks of 200 rows, 2 to 4 threads; one block, 2 threads; dense
// panels from the start): the threads with no block left take half the panels of the blocks
// still running (PanelHandoff), again and again; the answer is the reference's, entry by entry,
// and the multiply-adds counted are those of 1 thread. Whether a thread waits when a block
// reaches a layer boundary depends on the scheduler (a busy machine may not run the idle thread
// before the blocks end), so the handoffs are counted over every case and a few runs of each.
TEST(Engine, LastBlocksHandTheirPanelsToIdleThreads) {
  Network network = generate_network(64, 60, 7, -0.04f);  // most rows live through 60 layers, some die
  prepare_weights(network, true, true);
  ColumnGroups groups;
  group_columns(network[0].weights_csc, groups);
  ASSERT_GT(groups.count(), 0u);  // the RadiX-Net layers' grouped kernel
  const CsrMatrix input = generate_inputs(600, 64, 7);
  const CsrMatrix expected = reference_inference(network, input);
  ASSERT_GT(categories_of(expected).size(), 400u);
  ASSERT_LT(categories_of(expected).size(), 600u);
  const InferenceResult serial =
      infer(network, input, options_of({Format::csr, Parallelism::data, 1, kAlwaysDense}, 200));
  EXPECT_EQ(serial.panel_handoffs, 0u);
  std::uint64_t handoffs = 0;
  for (const auto& [threads, block] : std::vector<std::pair<int, Index>>{{2, 600}, {3, 200}, {4, 200}, {2, 200}})
    for (const Format f : {Format::csr, Format::csc})
      for (int run = 0; run < 5; ++run) {
        SCOPED_TRACE(to_string(f) + " " + std::to_string(threads) + " threads, blocks of " + std::to_string(block));
        const InferenceResult r =
            infer(network, input, options_of({f, Parallelism::data, threads, kAlwaysDense}, block));
        EXPECT_EQ(first_difference(r.activations, expected), "");
        EXPECT_EQ(checksum_of(r.activations), checksum_of(expected));
        EXPECT_EQ(r.exact_sum, serial.exact_sum);
        EXPECT_EQ(r.categories, serial.categories);
        EXPECT_EQ(r.active_nonzeros, serial.active_nonzeros);
        EXPECT_EQ(r.layer_nonzeros, serial.layer_nonzeros);
        handoffs += r.panel_handoffs;
      }
  EXPECT_GT(handoffs, 0u);
}

// The handoff itself, two threads in a fixed order: a waiter lends its buffer, a giver fills it
// with the second half of its panels (the giver keeps the first), the waiter gets them with
// their layer and entries, in its own buffer; the waiter's next wait ends when the work is done.
// With nobody waiting, give changes nothing; with no work, wait returns at once.
TEST(Engine, PanelHandoffGivesHalfThePanelsToTheWaiter) {
  const Index neurons = 5;
  DenseRows mine;
  mine.neurons = neurons;
  for (Index r = 0; r < 20; ++r) mine.ids.push_back(100 + r);  // 3 panels, the last one half full
  mine.panel.assign(std::size_t{3} * neurons * kPanelRows, 0.0f);
  for (Index r = 0; r < 20; ++r)
    for (Index k = 0; k < neurons; ++k)
      mine.panel[std::size_t{r / kPanelRows} * neurons * kPanelRows + std::size_t{k} * kPanelRows + r % kPanelRows] =
          static_cast<Value>(r * 10 + k + 1);
  const DenseRows before = mine;
  {
    PanelHandoff none(2, 0);
    DenseRows lent = before;
    std::size_t layer = 0;
    Offset nonzeros = 0;
    EXPECT_FALSE(none.wait(1, lent, layer, nonzeros));
    EXPECT_EQ(lent.ids, before.ids);  // the caller's buffer back
    EXPECT_FALSE(none.wanted());
    EXPECT_FALSE(none.give(mine, 8, 1, 1));
    EXPECT_EQ(mine.ids, before.ids);
    EXPECT_EQ(mine.panel, before.panel);
  }
  PanelHandoff handoff(2, 1);  // one block: the giver's
  DenseRows received;
  received.panel.reserve(std::size_t{8} * neurons * kPanelRows);  // the waiter's touched buffer
  const Value* lent_storage = received.panel.data();
  std::size_t layer = 0;
  Offset nonzeros = 0;
  bool got = false, second = true;
  std::thread waiter([&] {
    got = handoff.wait(1, received, layer, nonzeros);
    handoff.done();                                    // the piece
    second = handoff.wait(1, received, layer, nonzeros);  // ends once the block is done too
  });
  while (!handoff.wanted()) std::this_thread::yield();
  EXPECT_TRUE(handoff.give(mine, 8, 37, 6));
  handoff.done();  // the block
  waiter.join();
  EXPECT_TRUE(got);
  EXPECT_FALSE(second);
  EXPECT_EQ(handoff.handoffs(), 1u);
  EXPECT_EQ(layer, 6u);
  EXPECT_EQ(nonzeros, 37u);
  EXPECT_EQ(mine.ids, std::vector<Index>(before.ids.begin(), before.ids.begin() + 8));
  EXPECT_EQ(mine.panel, PanelValues(before.panel.begin(), before.panel.begin() + neurons * kPanelRows));
  EXPECT_EQ(received.neurons, neurons);
  EXPECT_EQ(received.ids, std::vector<Index>(before.ids.begin() + 8, before.ids.end()));
  EXPECT_EQ(received.panel, PanelValues(before.panel.begin() + neurons * kPanelRows, before.panel.end()));
  EXPECT_EQ(received.panel.data(), lent_storage);  // filled in the waiter's own buffer
}

// Blocks that thin to one panel park their rows for a later block to take in at the same layer
// (1 thread: the same parks every run), and rows no block takes in go to a thread with nothing
// else to do; 1 to 3 threads, csr and csc: the reference's answer and 1 thread's figures.
TEST(Engine, ThinBlocksJoinLaterBlocks) {
  Network network = generate_network(64, 60, 7);  // most rows die, a few live through 60 layers
  prepare_weights(network, true, true);
  const CsrMatrix input = generate_inputs(1200, 64, 7);
  const CsrMatrix expected = reference_inference(network, input);
  ASSERT_GT(categories_of(expected).size(), 0u);
  const InferenceResult serial =
      infer(network, input, options_of({Format::csr, Parallelism::data, 1, kAlwaysDense}, 60));
  EXPECT_GT(serial.panel_parks, 0u);
  EXPECT_EQ(first_difference(serial.activations, expected), "");
  for (const int threads : {1, 2, 3})
    for (const Format f : {Format::csr, Format::csc}) {
      SCOPED_TRACE(to_string(f) + " " + std::to_string(threads) + " threads");
      const InferenceResult r = infer(network, input, options_of({f, Parallelism::data, threads, kAlwaysDense}, 60));
      EXPECT_EQ(first_difference(r.activations, expected), "");
      EXPECT_EQ(r.exact_sum, serial.exact_sum);
      EXPECT_EQ(r.categories, serial.categories);
      EXPECT_EQ(r.active_nonzeros, serial.active_nonzeros);
      EXPECT_EQ(r.layer_nonzeros, serial.layer_nonzeros);
    }
}

// Blocks of two panels thin to one and park; later blocks take their rows in, and near the end
// a block grown that way may give half its panels to an idle thread, rows it took in among them
// (counted from the panels: the multiplier counted only the layer's own rows, and reading its
// counts for the others was a heap overflow, caught under ASan in
// Engine.AnExceptionOnOneThreadLeavesInferOnce). Every figure as 1 thread's over many runs: when
// a thread waits, and so whether a run meets that case, is the scheduler's choice.
TEST(Engine, RowsTakenInAndHandedOnAreCounted) {
  Network network = generate_network(64, 60, 7);
  prepare_weights(network, true, true);
  const CsrMatrix input = generate_inputs(3000, 64, 11);
  const CsrMatrix expected = reference_inference(network, input);
  const InferenceResult serial =
      infer(network, input, options_of({Format::csr, Parallelism::data, 1, kAlwaysDense}, 16));
  EXPECT_GT(serial.panel_parks, 0u);
  std::uint64_t handoffs = 0;
  for (int run = 0; run < 6; ++run)
    for (const int threads : {2, 3, 4}) {
      SCOPED_TRACE(std::to_string(threads) + " threads, run " + std::to_string(run));
      const InferenceResult r =
          infer(network, input, options_of({Format::csr, Parallelism::data, threads, kAlwaysDense}, 16));
      EXPECT_EQ(first_difference(r.activations, expected), "");
      EXPECT_EQ(r.active_nonzeros, serial.active_nonzeros);
      EXPECT_EQ(r.layer_nonzeros, serial.layer_nonzeros);
      handoffs += r.panel_handoffs;
    }
  EXPECT_GT(handoffs, 0u) << "no run handed panels on: the case tests nothing";
}

// The pool of parked rows by itself: rows parked at layers 5 and 7; a block at layer 5 takes in
// those of layer 5 (appended after its own rows, the padding still zero); a thread with nothing
// to do gets those of layer 7 from wait, and wait ends once they are done.
TEST(Engine, ParkedRowsAreTakenInOrWaitedFor) {
  const Index neurons = 3;
  auto rows_of = [&](Index count, Index first_id) {
    DenseRows d;
    d.neurons = neurons;
    for (Index r = 0; r < count; ++r) d.ids.push_back(first_id + r);
    d.panel.assign(std::size_t{d.panels()} * neurons * kPanelRows, 0.0f);
    for (Index r = 0; r < count; ++r)
      for (Index k = 0; k < neurons; ++k)
        d.panel[std::size_t{r / kPanelRows} * neurons * kPanelRows + std::size_t{k} * kPanelRows + r % kPanelRows] =
            static_cast<Value>(first_id + r + k);
    return d;
  };
  PanelHandoff pool(1, 1);  // one block, that parks twice and takes in once
  pool.block_started();
  EXPECT_FALSE(pool.blocks_unstarted());
  DenseRows three = rows_of(3, 10), two = rows_of(2, 20);
  pool.park(three, 6, 5);
  pool.park(two, 4, 7);
  EXPECT_EQ(three.rows(), 0u);
  EXPECT_EQ(two.rows(), 0u);
  EXPECT_TRUE(pool.any_parked());
  EXPECT_EQ(pool.parked(), 2u);
  DenseRows block = rows_of(7, 0);
  EXPECT_EQ(pool.absorb(6, block), 0u);  // nothing parked at layer 6
  EXPECT_EQ(block.rows(), 7u);
  EXPECT_EQ(pool.absorb(5, block), 6u);
  EXPECT_EQ(block.ids, (std::vector<Index>{0, 1, 2, 3, 4, 5, 6, 10, 11, 12}));
  EXPECT_EQ(block.panel.size(), std::size_t{2} * neurons * kPanelRows);
  for (Index r = 0; r < 16; ++r)
    for (Index k = 0; k < neurons; ++k) {
      const std::size_t at = std::size_t{r / kPanelRows} * neurons * kPanelRows + std::size_t{k} * kPanelRows;
      const Value v = block.panel[at + r % kPanelRows];
      EXPECT_EQ(v, r < 10 ? static_cast<Value>(block.ids[r] + k) : 0.0f) << "row " << r << " neuron " << k;
    }
  pool.done();  // the block
  DenseRows mine;
  std::size_t layer = 0;
  Offset nonzeros = 0;
  ASSERT_TRUE(pool.wait(0, mine, layer, nonzeros));
  EXPECT_EQ(layer, 7u);
  EXPECT_EQ(nonzeros, 4u);
  EXPECT_EQ(mine.ids, (std::vector<Index>{20, 21}));
  EXPECT_FALSE(pool.any_parked());
  pool.done();  // the parked rows, taken through their layers
  EXPECT_FALSE(pool.wait(0, mine, layer, nonzeros));
}

TEST(Engine, GeneratedRadixNet) {
  Network network = generate_network(64, 20, 7);
  prepare_weights(network, true, true);
  const CsrMatrix input = generate_inputs(600, 64, 7);
  const CsrMatrix expected = check_all_combinations(network, input, 7);
  // The generated problem is not trivial at N = 64 either: some rows survive 20 layers, most do not.
  const std::size_t alive = categories_of(expected).size();
  EXPECT_GT(alive, 0u);
  EXPECT_LT(alive, 300u);
}

// The input with every row twice (row i + rows is a copy of row i), so that reuse finds repeats.
CsrMatrix twice(const CsrMatrix& input) {
  std::vector<ActiveRows> halves(2);
  for (Index h = 0; h < 2; ++h) {
    halves[h].rows = input.clone();
    for (Index r = 0; r < input.rows(); ++r) halves[h].ids.push_back(h * input.rows() + r);
  }
  return assemble_rows(2 * input.rows(), input.cols(), halves);
}

// Blocks of rows through one session, one call each (as a pipeline stage runs its blocks), give
// what separate infer() calls give, entry by entry: every combination, with and without reuse,
// final and passed-on rows, blocks large and small in turn (buffers grown, then reused larger
// than needed), an empty block, and a random network and a RadiX-Net (grouped dense kernel).
TEST(Engine, BlocksThroughOneSessionEqualSeparateCalls) {
  std::mt19937 rng(41);
  Network random = test::random_network(64, 15, rng);
  prepare_weights(random, true, true);
  Network radix = generate_network(64, 20, 7);
  prepare_weights(radix, true, true);
  std::vector<std::pair<const Network*, CsrMatrix>> problems;
  problems.emplace_back(&random, twice(test::random_inputs(100, 64, 0.5, 0.1f, 2.0f, rng, 4)));
  problems.emplace_back(&radix, twice(generate_inputs(100, 64, 7)));
  const std::vector<std::pair<Index, Index>> blocks = {{0, 37},   {37, 38},  {38, 38}, {38, 158},
                                                       {158, 163}, {0, 200}, {163, 200}, {10, 74}};
  for (const auto& [network, input] : problems)
    for (const Combination& c : kCombinations)
      for (const bool reuse : {false, true})
        for (const bool final_results : {true, false}) {
          if (!final_results && c.parallel != Parallelism::data) continue;
          for (const Index engine_block : {7u, 0u}) {
            SCOPED_TRACE(name_of(c) + (reuse ? " reuse" : "") + (final_results ? "" : " passed on") + " block " +
                         std::to_string(engine_block));
            EngineOptions o = options_of(c, engine_block);
            o.reuse = reuse;
            o.final_results = final_results;
            // With reuse and several threads in panels, which block computes a row that blocks
            // share (and so the figures and a passed-on row's entry order) depends on timing.
            const bool timing_free = !reuse || c.threads == 1 || c.dense_threshold > 1.0;
            InferenceSession session(*network, o);
            for (const auto& [first, last] : blocks) {
              SCOPED_TRACE("rows " + std::to_string(first) + ".." + std::to_string(last));
              const CsrMatrix part = slice_rows(input, first, last);
              const InferenceResult expected = infer(*network, part, o);
              const InferenceResult got = session.run(part);
              if (timing_free || final_results) {
                EXPECT_EQ(first_difference(got.activations, expected.activations), "");
              } else {
                CsrMatrix a = got.activations.clone(), b = expected.activations.clone();
                a.sort_indices();
                b.sort_indices();
                EXPECT_EQ(first_difference(a, b), "");
              }
              EXPECT_EQ(got.categories, expected.categories);
              EXPECT_TRUE(got.exact_sum == expected.exact_sum);
              if (timing_free) {
                EXPECT_EQ(got.active_nonzeros, expected.active_nonzeros);
                EXPECT_EQ(got.layer_nonzeros, expected.layer_nonzeros);
                EXPECT_EQ(got.layer_rows, expected.layer_rows);
              }
              EXPECT_EQ(got.layer_seconds.size(), network->size());
            }
          }
        }
}

}  // namespace
}  // namespace sdnn
