// test_pipeline_split.cpp: the pipeline's split of the layers between stages
// (src/main/strategy_pipeline.cpp): balanced_starts follows the layers' cost, respects the most
// layers a stage may hold and gives every stage a layer up to as many stages as layers; more
// stages than layers are refused; the cost of a cut moves the split, and probed_cost turns the
// probe's figures back into the layer and cut costs they came from; and balance_stages (the automatic split, run on every rank of
// the test as 1 x ranks and, on 4 ranks, 2 x 2) agrees on one split everywhere and leaves each rank
// holding exactly the layers of its new stage, entry by entry as loaded; move_layers between fixed
// splits, layers going both ways.
#include <gtest/gtest.h>
#include <mpi.h>

#include <random>
#include <stdexcept>
#include <vector>

#include "../test_support.hpp"
#include "main/strategy_pipeline.hpp"

namespace sdnn {
namespace {
using namespace test;

std::vector<Index> sizes_of(const std::vector<std::uint32_t>& starts, Index layers) {
  std::vector<Index> sizes;
  Index first = 0;
  for (std::uint32_t s : starts) sizes.push_back(s - first), first = s;
  sizes.push_back(layers - first);
  return sizes;
}

TEST(PipelineSplit, FollowsTheCostNotTheCount) {
  // Early layers cost most (many live rows), as in the default problem.
  const std::vector<double> cost = {45, 20, 8, 5, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1};
  EXPECT_EQ(balanced_starts(cost, 2), (std::vector<std::uint32_t>{1}));  // 45 against 55
  const std::vector<std::uint32_t> four = balanced_starts(cost, 4);
  EXPECT_EQ(four[0], 1u);  // layer 0 alone is the costliest stage; nothing can beat 45
  for (Index s : sizes_of(four, 16)) EXPECT_GE(s, 1u);
  // Even costs: even stages.
  EXPECT_EQ(balanced_starts(std::vector<double>(12, 1.0), 3), (std::vector<std::uint32_t>{4, 8}));
  // The costliest stage of the split is the least any split can have (all 2-stage splits tried).
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> random_cost(20);
  for (double& c : random_cost) c = u(rng) * u(rng) * 10;
  const std::uint32_t chosen = balanced_starts(random_cost, 2)[0];
  auto worst = [&](std::uint32_t at) {
    double a = 0, b = 0;
    for (std::uint32_t l = 0; l < 20; ++l) (l < at ? a : b) += random_cost[l];
    return std::max(a, b);
  };
  for (std::uint32_t at = 1; at < 20; ++at) EXPECT_LE(worst(chosen), worst(at)) << at;
}

// A cut's cost moves the split: four even layers split 2 + 2 unless the cut after layer 1 is
// dear; and with layer 0 almost half of the work (the default problem's shape), layer 0 alone is
// the best first stage without cuts, but layers 0 and 1 together once the cut after layer 0 costs
// the stages it joins more than the cut after layer 1.
TEST(PipelineSplit, CutCostsMoveTheSplit) {
  const std::vector<double> even(4, 1.0);
  EXPECT_EQ(balanced_starts(even, 2), (std::vector<std::uint32_t>{2}));
  CutCost dear_middle{std::vector<double>(4, 0.1), std::vector<double>(4, 0.1)};
  dear_middle.leave[2] = dear_middle.enter[2] = 5;
  const std::vector<std::uint32_t> moved = balanced_starts(even, 2, 0, dear_middle);
  EXPECT_NE(moved, (std::vector<std::uint32_t>{2}));
  EXPECT_EQ(stage_costs(even, moved, dear_middle), (std::vector<double>{moved[0] + 0.1, 4 - moved[0] + 0.1}));

  const std::vector<double> cost = {45, 20, 10, 8, 6, 4, 3, 2, 1, 1};  // sums to 100
  EXPECT_EQ(balanced_starts(cost, 2), (std::vector<std::uint32_t>{1}));  // 45 | 55 against 65 | 35
  CutCost dense{std::vector<double>(10, 1.0), std::vector<double>(10, 1.0)};
  dense.leave[1] = dense.enter[1] = 12;  // the cut after layer 0 passes the densest rows
  EXPECT_EQ(balanced_starts(cost, 2, 0, dense), (std::vector<std::uint32_t>{2}));  // 57 | 67 against 66 | 36
  EXPECT_EQ(stage_costs(cost, {2}, dense), (std::vector<double>{66, 36}));
  // Only a cut made counts: the enter and leave costs at 0 (no cut there) never do.
  CutCost ends{std::vector<double>(10, 0.0), std::vector<double>(10, 0.0)};
  ends.enter[0] = ends.leave[0] = 1000;
  EXPECT_EQ(balanced_starts(cost, 2, 0, ends), (std::vector<std::uint32_t>{1}));
  EXPECT_EQ(stage_costs(cost, {1}, ends), (std::vector<double>{45, 55}));
}

// probed_cost on figures made from a known profile (each layer's own cost, a cost per nonzero for
// each cut, split evenly between the stages it joins; the engine's layer times on a clock of
// another rate, less a part of each layer that the engine does not time): it gives the profile
// back, whatever stages the figures came from.
TEST(PipelineSplit, ProbedCostRecoversAGivenProfile) {
  const std::vector<double> own = {30, 20, 9, 7, 5, 4, 3, 3, 2, 2, 2, 1};
  const std::vector<double> nonzeros = {0, 400, 380, 300, 200, 150, 100, 80, 60, 50, 40, 30};  // entering layer l
  const double per_nonzero = 0.01, rate = 0.6, outside = 0.5;
  const std::size_t L = own.size();
  for (const std::vector<std::uint32_t>& loaded :
       {std::vector<std::uint32_t>{6}, std::vector<std::uint32_t>{3, 6, 9}, std::vector<std::uint32_t>{1, 2}}) {
    LayerProbe probe;
    probe.nonzeros = nonzeros;
    for (std::size_t l = 0; l < L; ++l)  // alone: enters and leaves as sparse rows, each half a cut
      probe.alone_s.push_back(own[l] + (l > 0 ? per_nonzero / 2 * nonzeros[l] : 0) +
                              (l + 1 < L ? per_nonzero / 2 * nonzeros[l + 1] : 0));
    probe.inner_s.assign(L, 0.0);
    for (std::size_t s = 0; s <= loaded.size(); ++s) {  // in one call: only the stage's own ends
      const std::size_t first = s == 0 ? 0 : loaded[s - 1], last = s == loaded.size() ? L : loaded[s];
      double t = (first > 0 ? per_nonzero / 2 * nonzeros[first] : 0) + (last < L ? per_nonzero / 2 * nonzeros[last] : 0);
      for (std::size_t l = first; l < last; ++l) {
        t += own[l];
        probe.inner_s[l] = (own[l] - outside) / rate;  // the engine's clock, and a part it does not time
      }
      probe.together_s.push_back(t);
    }
    const ProbedCost got = probed_cost(probe, loaded);
    EXPECT_NEAR(got.seconds_per_nonzero, per_nonzero, 1e-12) << loaded.size() + 1 << " stages";
    ASSERT_EQ(got.layer.size(), L);
    for (std::size_t l = 0; l < L; ++l) EXPECT_NEAR(got.layer[l], own[l], 1e-9) << "layer " << l;
    for (std::size_t b = 1; b < L; ++b) {
      EXPECT_NEAR(got.cuts.enter[b], per_nonzero / 2 * nonzeros[b], 1e-9) << "cut " << b;
      EXPECT_NEAR(got.cuts.leave[b], per_nonzero / 2 * nonzeros[b], 1e-9) << "cut " << b;
    }
  }
  // Figures of another split's shape are refused.
  LayerProbe short_probe;
  short_probe.alone_s.assign(L, 1.0);
  short_probe.inner_s.assign(L, 1.0);
  short_probe.nonzeros.assign(L, 1.0);
  short_probe.together_s.assign(2, 1.0);
  EXPECT_THROW(probed_cost(short_probe, {3, 6}), std::invalid_argument);
}

TEST(PipelineSplit, AtMostTheCapPerStage) {
  std::vector<double> cost(12, 0.0);
  cost[0] = 10;  // all the cost in layer 0: without a cap, the last stage could take 10 layers
  EXPECT_EQ(automatic_stage_cap(12, 4), 6u);
  const std::vector<std::uint32_t> starts = balanced_starts(cost, 4, automatic_stage_cap(12, 4));
  EXPECT_EQ(starts[0], 1u);
  for (Index s : sizes_of(starts, 12)) {
    EXPECT_GE(s, 1u);
    EXPECT_LE(s, 6u);
  }
  EXPECT_THROW(balanced_starts(cost, 4, 2), std::invalid_argument);  // 4 x 2 < 12
}

TEST(PipelineSplit, StageCountNearTheLayerCount) {
  const std::vector<double> cost = {5, 1, 1, 1, 9};
  EXPECT_EQ(balanced_starts(cost, 5), (std::vector<std::uint32_t>{1, 2, 3, 4}));  // one layer each
  EXPECT_EQ(automatic_stage_cap(5, 5), 1u);
  const std::vector<std::uint32_t> four = balanced_starts(cost, 4, automatic_stage_cap(5, 4));
  EXPECT_EQ(four.size(), 3u);
  for (Index s : sizes_of(four, 5)) EXPECT_GE(s, 1u);
  EXPECT_EQ(four.back(), 4u);  // layer 4 (cost 9) alone
  EXPECT_EQ(balanced_starts(std::vector<double>(3, 0.0), 3), (std::vector<std::uint32_t>{1, 2}));  // no cost measured
}

// The default block: 16 blocks per group within the floor, and for small groups the number of
// blocks that makes fill, drain and the blocks' fixed parts least (sqrt((P - 1) x rows / 32)).
TEST(PipelineSplit, DefaultBlockRows) {
  EXPECT_EQ(default_block_rows(15000, 2, 1), 937u);  // 16 blocks
  EXPECT_EQ(default_block_rows(938, 2, 1), 256u);    // the floor at 2 stages, 4 blocks
  EXPECT_EQ(default_block_rows(60000, 1, 2), 2048u);  // the ceiling, 1024 x threads
  EXPECT_EQ(default_block_rows(94, 2, 1), 47u);       // 4096 problem, 64 x 2: 2 blocks
  EXPECT_EQ(default_block_rows(188, 4, 1), 47u);      // 32 x 4: 4 blocks
  EXPECT_EQ(default_block_rows(375, 2, 1), 125u);     // 16 x 2: 3 blocks
  EXPECT_EQ(default_block_rows(375, 8, 1), 42u);      // 16 x 8: 9 blocks
  EXPECT_EQ(default_block_rows(10, 4, 1), 10u);       // one block: not worth a second
  EXPECT_EQ(default_block_rows(500, 1, 1), 500u);     // one stage: one block
  EXPECT_EQ(default_block_rows(1, 8, 1), 1u);
  for (Index rows : {Index{1}, Index{7}, Index{100}, Index{1000}, Index{5000}})
    for (int stages : {1, 2, 3, 4, 8, 16}) {
      const Index block = default_block_rows(rows, stages, 1);
      EXPECT_GE(block, 1u);
      EXPECT_LE((rows + block - 1) / block, std::max<Index>(16, 2 * static_cast<Index>(stages)) + 1)
          << rows << " rows, " << stages << " stages";
    }
}

TEST(PipelineSplit, MoreStagesThanLayersRefused) {
  EXPECT_THROW(balanced_starts(std::vector<double>(3, 1.0), 4), std::invalid_argument);
  try {
    stage_layers(3, 4, 0);
    FAIL() << "4 stages of 3 layers accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(contains(e.what(), "a stage would hold no layer")) << e.what();
  }
}

// balance_stages on the ranks of the test: a network whose first layers keep every row alive and
// whose later ones are cheap; whatever split the measured costs give, every rank holds its new
// stage's layers exactly.
void check_balance(int groups) {
  int ranks = 1, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (ranks % groups != 0) GTEST_SKIP() << ranks << " ranks cannot make " << groups << " row groups";
  const Grid grid{groups, ranks / groups};
  const int stages = grid.columns, stage = rank % stages;
  constexpr Index kNeurons = 64, kLayers = 9;
  std::mt19937 rng(11);  // the same network on every rank
  const Network whole = random_network(kNeurons, kLayers, rng);
  const LayerRange loaded = stage_layers(kLayers, stages, stage);
  Network mine;
  for (Index l = loaded.first; l < loaded.last; ++l)
    mine.push_back(Layer{whole[l].weights_csr.clone(), CscMatrix(), whole[l].bias, {}});
  prepare_weights(mine, true, true);
  std::mt19937 input_rng(3);
  const CsrMatrix input = stage == 0 ? random_inputs(300, kNeurons, 0.5, 0.5f, 1.0f, input_rng) : CsrMatrix(0, kNeurons);
  EngineOptions engine;
  engine.threads = 1;
  const Index block_rows = default_block_rows(300, stages, 1);
  SlotRing ring = make_stage_ring(rank, grid, kNeurons, block_rows);
  const StageSplit split = balance_stages(rank, grid, mine, input, 300, loaded, kLayers, engine, block_rows, ring);
  if (stages == 1) {
    EXPECT_TRUE(split.starts.empty());
    return;
  }
  ASSERT_EQ(split.starts.size(), static_cast<std::size_t>(stages - 1));
  EXPECT_EQ(split.layers.first, stage_layers(kLayers, stages, stage, split.starts).first);
  EXPECT_EQ(split.layers.last, stage_layers(kLayers, stages, stage, split.starts).last);
  for (Index s : sizes_of(split.starts, kLayers)) EXPECT_LE(s, automatic_stage_cap(kLayers, stages));
  // One split on every rank.
  std::vector<std::uint32_t> lowest = split.starts, highest = split.starts;
  MPI_Allreduce(MPI_IN_PLACE, lowest.data(), stages - 1, MPI_UINT32_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, highest.data(), stages - 1, MPI_UINT32_T, MPI_MAX, MPI_COMM_WORLD);
  EXPECT_EQ(lowest, highest);
  ASSERT_EQ(mine.size(), split.layers.size());
  for (Index l = split.layers.first; l < split.layers.last; ++l) {
    const Layer& got = mine[l - split.layers.first];
    EXPECT_EQ(dense_of(got.weights_csr), dense_of(whole[l].weights_csr)) << "layer " << l;
    EXPECT_EQ(got.bias, whole[l].bias) << "layer " << l;
  }
}

// move_layers between fixed splits, both ways (layers going to earlier and to later stages), in
// 1 and 2 row groups: every rank ends with exactly its new stage's layers, entry by entry, also
// when a layer's arrays hold more room than its nonzeros.
void check_moves(int groups) {
  int ranks = 1, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (ranks % groups != 0 || ranks / groups < 2) GTEST_SKIP() << "needs 2 stages in " << groups << " row group(s)";
  const int stages = ranks / groups, stage = rank % stages;
  constexpr Index kNeurons = 32, kLayers = 10;
  std::mt19937 rng(13);  // the same network on every rank
  const Network whole = random_network(kNeurons, kLayers, rng);
  std::vector<std::uint32_t> count, front, back;  // the count split; all but the last stage 1 layer; the reverse
  for (int s = 1; s < stages; ++s) {
    count.push_back(stage_layers(kLayers, stages, s).first);
    front.push_back(static_cast<std::uint32_t>(s));
    back.push_back(static_cast<std::uint32_t>(kLayers - stages + s));
  }
  for (const auto& [from, to] : {std::pair{count, front}, std::pair{count, back}, std::pair{front, back}}) {
    const LayerRange had = stage_layers(kLayers, stages, stage, from), gets = stage_layers(kLayers, stages, stage, to);
    Network mine;
    for (Index l = had.first; l < had.last; ++l) {
      mine.push_back(Layer{whole[l].weights_csr.clone(), CscMatrix(), whole[l].bias, {}});
      mine.back().weights_csr.reserve_nonzeros(mine.back().weights_csr.nnz() + 5);  // room beyond the nonzeros
    }
    Index expected_received = 0;
    for (Index l = gets.first; l < gets.last; ++l) expected_received += (l < had.first || l >= had.last) ? 1 : 0;
    EXPECT_EQ(move_layers(rank, stages, mine, kNeurons, kLayers, from, to), expected_received);
    ASSERT_EQ(mine.size(), gets.size());
    for (Index l = gets.first; l < gets.last; ++l) {
      const Layer& got = mine[l - gets.first];
      EXPECT_EQ(dense_of(got.weights_csr), dense_of(whole[l].weights_csr)) << "layer " << l;
      EXPECT_EQ(got.bias, whole[l].bias) << "layer " << l;
    }
  }
}

TEST(PipelineSplit, MoveLayersBetweenFixedSplits) { check_moves(1); }
TEST(PipelineSplit, MoveLayersInTwoRowGroups) { check_moves(2); }

TEST(PipelineSplit, BalanceStagesMovesEveryLayerToItsStage) { check_balance(1); }
TEST(PipelineSplit, BalanceStagesInTwoRowGroups) { check_balance(2); }

}  // namespace
}  // namespace sdnn
