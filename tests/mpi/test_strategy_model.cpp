// test_strategy_model.cpp: the data x model strategy (src/main/strategy_model.cpp) on random
// problems whose rows become dense (dense panels, pulled from the row group's peers), go back to
// sparse rows, become dense again and partly die, on every D x M grid of the ranks running the
// test (1 to 4), with 1 and 2 threads, with and without overlap and --reuse, and with dense panels
// off: every rank's block equals the serial verifier's entry by entry. On the grids of one column
// block (D x 1) the rows go through the data strategy's engine loop (row_engine.hpp).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "main/strategy_model.hpp"
#include "partition/row_partition.hpp"
#include "spmm/dense_rows.hpp"
#include "spmm/engine.hpp"
#include "spmm/reference.hpp"
#include "spmm/reuse.hpp"

namespace sdnn {
namespace {

constexpr Index kNeurons = 48;

// A network whose rows saturate (D: every neuron reads neuron 0 and five others, positive
// weights and bias), thin out to about one entry per row (T: only neuron 0 reads, with positive
// weights; back below a quarter of the dense threshold) and partly die (K: mixed signs, a
// negative bias). Weights and inputs are small multiples of powers of two, so every sum is exact
// and the order of the terms cannot matter; rows 5 and 6 of the input are equal (for --reuse),
// row 7 is empty.
struct RandomProblem {
  Network network;
  CsrMatrix input;
};

// G is D with RadiX-Net's structure: the neurons of each group of 4 read the same inputs, so the
// dense kernel takes its grouped path (column groups, dense_rows.hpp).
RandomProblem random_problem(Index rows, unsigned seed, const std::string& kinds = "DDDTDDKDTDDD") {
  std::mt19937 random(seed);
  RandomProblem p;
  for (std::size_t l = 0; l < kinds.size(); ++l) {
    const char kind = kinds[l];
    std::vector<Triplet> w;
    std::vector<char> used(kNeurons);
    for (Index j = 0; j < kNeurons; ++j) {
      used.assign(kNeurons, 0);
      std::mt19937 group_random(seed * 7919 + static_cast<unsigned>(l) * 131 + j / 4);
      for (int t = 0; t < 6; ++t) {
        const Index k = (kind == 'D' || kind == 'G') && t == 0 ? 0
                        : kind == 'G'                         ? static_cast<Index>(group_random() % kNeurons)
                                                              : static_cast<Index>(random() % kNeurons);
        if (used[k]) continue;
        used[k] = 1;
        const Value units = static_cast<Value>(random() % 8 + 1) / 16.0f;
        const bool negative = kind == 'T' ? j != 0 : kind == 'K' ? random() % 2 == 0 : false;
        w.push_back({k, j, negative ? -units : units});
      }
    }
    Layer layer;
    layer.weights_csr = from_triplets<RowMajor>(kNeurons, kNeurons, w);
    layer.weights_csc = to_csc(layer.weights_csr);
    layer.bias.assign(kNeurons, kind == 'D' || kind == 'G' ? 0.25f : kind == 'T' ? 0.0f : -2.0f);
    p.network.push_back(std::move(layer));
  }
  std::vector<Triplet> x;
  for (Index i = 0; i < rows; ++i) {
    if (i == 7) continue;
    const Index from = i == 6 ? 5 : i;
    std::mt19937 row_random(seed * 1000 + from);
    for (Index k = 0; k < kNeurons; ++k)
      if (row_random() % 5 == 0) x.push_back({i, k, static_cast<Value>(row_random() % 8 + 1) / 8.0f});
  }
  p.input = from_triplets<RowMajor>(rows, kNeurons, x);
  return p;
}

// Per layer's output: its entries over (alive rows x neurons), and its alive rows (verifier).
std::vector<std::pair<double, Index>> densities(const RandomProblem& p) {
  std::vector<std::pair<double, Index>> trace;
  CsrMatrix y = p.input.clone();
  for (const Layer& layer : p.network) {
    Network one(1);
    one[0].weights_csr = layer.weights_csr.clone();
    one[0].bias = layer.bias;
    y = reference_inference(one, y);
    const Index alive = static_cast<Index>(categories_of(y).size());
    trace.push_back({alive ? static_cast<double>(y.nnz()) / (static_cast<double>(alive) * kNeurons) : 0.0, alive});
  }
  return trace;
}

// Rank (d, m)'s share of the problem, as load_problem gives it to the data x model strategy.
LoadedProblem share_of(const RandomProblem& p, const Grid& grid, int rank) {
  const int d = rank / grid.columns, m = rank % grid.columns;
  LoadedProblem share;
  share.rows = shard_of(p.input.rows(), grid.rows, d);
  share.columns = shard_of(kNeurons, grid.columns, m);
  share.input = slice_rows(p.input, share.rows.first, share.rows.last);
  for (const Layer& whole : p.network) {
    std::vector<Triplet> block;
    for (Index j = share.columns.first; j < share.columns.last; ++j)
      for (Offset q = whole.weights_csc.begin(j); q < whole.weights_csc.end(j); ++q)
        block.push_back({whole.weights_csc.indices[q], j - share.columns.first, whole.weights_csc.values[q]});
    Layer layer;
    layer.weights_csc = from_triplets<ColMajor>(kNeurons, share.columns.size(), block);
    layer.bias.assign(whole.bias.begin() + share.columns.first, whole.bias.begin() + share.columns.last);
    // One column block: the data strategy's engine loop, which multiplies in CSR (as the model
    // strategy prepares the weights there).
    if (grid.columns == 1) layer.weights_csr = to_csr(layer.weights_csc);
    share.network.push_back(std::move(layer));
  }
  return share;
}

// The verifier's rows [rows) and columns [columns) (local numbering).
CsrMatrix block_of(const CsrMatrix& all, RowRange rows, RowRange columns) {
  std::vector<Triplet> entries;
  for (Index i = rows.first; i < rows.last; ++i)
    for (Offset p = all.begin(i); p < all.end(i); ++p)
      if (all.indices[p] >= columns.first && all.indices[p] < columns.last)
        entries.push_back({i - rows.first, all.indices[p] - columns.first, all.values[p]});
  return from_triplets<RowMajor>(rows.size(), columns.size(), entries);
}

// Runs every grid of the ranks on one problem with `engine`, compares every rank's block with the
// serial verifier entry by entry, and hands each run's figures to also(grid, rank, figures).
template <class Also>
void run_every_grid(const RandomProblem& p, const EngineOptions& engine, const ModelComm& comm, Also&& also) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const CsrMatrix expected = reference_inference(p.network, p.input);
  for (int d = 1; d <= size; ++d) {
    if (size % d != 0) continue;
    const Grid grid{d, size / d};
    const LoadedProblem share = share_of(p, grid, rank);
    RankFigures figures;
    const CsrMatrix block = run_data_model(rank, share, grid, engine, comm, true, figures).final_rows;
    const std::string difference = first_difference(block, block_of(expected, share.rows, share.columns));
    EXPECT_EQ(difference, "") << "grid " << grid.rows << "x" << grid.columns << ", rank " << rank << ", threads "
                              << engine.threads << (comm.overlap ? "" : ", no overlap")
                              << (comm.world_sync ? ", world sync" : "") << (comm.merged_gets ? "" : ", per-range gets") << (engine.reuse ? ", reuse" : "")
                              << ", dense threshold " << engine.dense_threshold;
    also(grid, rank, figures);
  }
}

void check_every_grid(const RandomProblem& p, int threads, bool overlap, bool reuse, double dense_threshold) {
  EngineOptions engine;
  engine.format = Format::csc;
  engine.threads = threads;
  engine.reuse = reuse;
  engine.dense_threshold = dense_threshold;
  ModelComm comm;
  comm.overlap = overlap;
  run_every_grid(p, engine, comm, [](const Grid&, int, const RankFigures&) {});
}

TEST(DataModelStrategy, DensePanelsMatchTheVerifierOnEveryGrid) {
  const RandomProblem p = random_problem(61, 3);
  // The problem does what it is for: dense, back below a quarter of the threshold, dense again,
  // rows dying on the way, some left at the end.
  const std::vector<std::pair<double, Index>> trace = densities(p);
  std::string shape;
  for (const auto& [density, alive] : trace) shape += density >= 0.125 ? 'D' : density < 0.125 / 4 ? 's' : '-';
  EXPECT_EQ(shape.substr(0, 5), "DDDsD") << shape;
  EXPECT_LT(trace.back().second, trace.front().second) << "no row died";
  EXPECT_GT(trace.back().second, 0u) << "every row died";
  check_every_grid(p, 1, true, false, 0.125);
  check_every_grid(p, 2, false, false, 0.125);
  check_every_grid(p, 2, true, true, 0.125);
  check_every_grid(p, 1, false, true, 0.125);
}

// A row group's rows in super-blocks (ModelComm::super_rows), each taken through every layer in
// turn through the one window: the verifier's answers on every grid, with 1 and 2 threads, with
// and without reuse, for super-blocks of one row, of one panel (8 rows), of 10 rows (on 2 x 2 the
// groups of 30 and 31 rows would run 3 and 4: the count is agreed over every rank, so the group
// of 30 runs 4 shorter ones; with world-sync's barrier over every rank at every layer, which
// would hang on different counts) and of more rows than a group holds on most grids (40).
TEST(DataModelStrategy, SuperBlocksOfRowsMatchTheVerifierOnEveryGrid) {
  const RandomProblem p = random_problem(61, 3);
  for (const std::size_t super_rows : {std::size_t{1}, std::size_t{8}, std::size_t{10}, std::size_t{40}})
    for (const bool reuse : {false, true}) {
      EngineOptions engine;
      engine.format = Format::csc;
      engine.threads = super_rows == 10 ? 2 : 1;
      engine.reuse = reuse;
      engine.dense_threshold = 0.125;
      ModelComm comm;
      comm.super_rows = super_rows;
      comm.world_sync = super_rows == 10;
      SCOPED_TRACE("super-blocks of " + std::to_string(super_rows) + " rows" + (reuse ? ", reuse" : ""));
      run_every_grid(p, engine, comm, [](const Grid&, int, const RankFigures&) {});
    }
}

TEST(DataModelStrategy, GroupedLayersMatchTheVerifierOnEveryGrid) {
  const RandomProblem p = random_problem(53, 17, "GGGTGGKGTGGG");
  ColumnGroups groups;
  group_columns(p.network[0].weights_csc, groups);
  EXPECT_GT(groups.count(), 0u) << "the layers are not grouped: the test would not reach the grouped kernel";
  check_every_grid(p, 1, true, false, 0.125);
  check_every_grid(p, 2, false, true, 0.125);
  check_every_grid(p, 2, true, false, 0.01);
}

// Rows that become identical only in dense panels (every row saturates at the cap after a few
// layers of positive weights): --reuse drops them there, on every grid, and the answer is the
// verifier's. Without reuse in dense panels, the last layer would compute every alive row.
TEST(DataModelStrategy, ReuseDropsRowsThatBecomeIdenticalInDensePanels) {
  const RandomProblem p = random_problem(61, 23, "DDDDDDDDDDDDDDDD");
  ASSERT_GT(categories_of(reference_inference(p.network, p.input)).size(), 2u);
  EngineOptions engine;
  engine.format = Format::csc;
  engine.reuse = true;
  // Second pass: every entry hashes alike, so that every pair of rows with as many entries is a
  // candidate and only the entry-by-entry comparison keeps different rows apart.
  for (const bool collide : {false, true}) {
    set_entry_hash_for_tests(collide ? EntryHash{[](Index, Value) -> std::uint64_t { return 7; }} : nullptr);
    run_every_grid(p, engine, ModelComm(), [&](const Grid& grid, int rank, const RankFigures& figures) {
      if (rank % grid.columns != 0) return;  // rows are counted on the group's first rank
      ASSERT_EQ(figures.layer_rows.size(), p.network.size());
      EXPECT_EQ(figures.layer_rows.back(), 1u) << "grid " << grid.rows << "x" << grid.columns << ", rank " << rank
                                               << (collide ? ", colliding hashes" : "")
                                               << ": the saturated rows were not merged";
    });
  }
  set_entry_hash_for_tests(nullptr);
}

TEST(DataModelStrategy, SparseOnlyAndAlwaysDenseMatchTheVerifier) {
  const RandomProblem p = random_problem(45, 11);
  check_every_grid(p, 2, true, false, 2.0);   // never dense
  check_every_grid(p, 2, true, false, 0.01);  // dense from the input on
  check_every_grid(p, 1, true, true, 0.01);
}

// Thin tails (ModelComm::join_tails): super-blocks whose rows die down to a quarter of the
// largest one's while dense park them, a later super-block takes them in at that layer (pieces
// of rows from several super-blocks, which go back to sparse rows and to panels again), and the
// tails parked for the last super-blocks, whose rows are all empty, run after them. The
// verifier's answers on every grid, super-blocks of 16 rows with tails joined and apart, of 32
// rows on 2 threads; on every grid of two column blocks or more, tails really are parked, every
// one taken in, some at the end.
TEST(DataModelStrategy, ThinTailsJoinAndMatchTheVerifier) {
  RandomProblem p = random_problem(160, 5, "DDKDDDTDDDDD");
  p.input.resize_major(130);  // rows 130 to 159 empty
  p.input.resize_major(160);
  const std::vector<std::pair<double, Index>> trace = densities(p);
  std::string shape;
  for (const auto& [density, alive] : trace) shape += density >= 0.125 ? 'D' : density < 0.125 / 4 ? 's' : '-';
  EXPECT_EQ(shape, "DDs-DDsDDDDD");  // dense, most rows die, dense again, back to sparse, dense
  EXPECT_LE(trace[2].second * 4, trace[1].second) << "too few rows died";
  EXPECT_GT(trace.back().second, 0u) << "every row died";
  // Few configurations: each costs a collective per super-block and layer (at 4 ranks on 2 cores,
  // every collective waits for descheduled ranks).
  struct Configuration {
    std::size_t super_rows;
    int threads;
    bool join;
  };
  for (const Configuration& c : {Configuration{16, 1, true}, Configuration{16, 1, false}, Configuration{32, 2, true}}) {
    EngineOptions engine;
    engine.format = Format::csc;
    engine.threads = c.threads;
    engine.dense_threshold = 0.125;
    ModelComm comm;
    comm.super_rows = c.super_rows;
    comm.join_tails = c.join;
    SCOPED_TRACE("super-blocks of " + std::to_string(c.super_rows) + " rows, threads " + std::to_string(c.threads) +
                 (c.join ? ", tails joined" : ", tails apart"));
    run_every_grid(p, engine, comm, [&](const Grid& grid, int rank, const RankFigures& figures) {
      if (grid.columns == 1 || !c.join) {  // one column block: the data strategy's engine loop
        EXPECT_EQ(figures.tails_parked + figures.tails_taken_in + figures.tail_pieces_at_end, 0u);
        return;
      }
      EXPECT_GT(figures.tails_parked, 0u) << "grid " << grid.rows << "x" << grid.columns << ", rank " << rank;
      EXPECT_EQ(figures.tails_taken_in, figures.tails_parked) << "grid " << grid.rows << "x" << grid.columns;
      if (grid.rows == 1) {
        EXPECT_GT(figures.tail_pieces_at_end, 0u) << "grid 1x" << grid.columns << ", rank " << rank;
      }
    });
  }
}

TEST(DataModelStrategy, MoreRanksThanRowsAndRowsThatAllDie) {
  RandomProblem p = random_problem(3, 5);
  check_every_grid(p, 1, true, false, 0.125);
  for (Layer& layer : p.network) layer.bias.assign(kNeurons, -40.0f);  // every row dies in layer 1
  check_every_grid(p, 2, true, false, 0.125);
}

// The switches that undo one change each (bench/model_sync_sim.sh) keep the answer; one get per
// range of offsets takes more messages where a peer's needed columns fall in several ranges.
TEST(DataModelStrategy, CommunicationSwitchesKeepTheAnswer) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (const double threshold : {2.0, 0.125}) {  // sparse only (the offsets' gets), then dense too
    const RandomProblem p = random_problem(61, 3);
    EngineOptions engine;
    engine.format = Format::csc;
    engine.dense_threshold = threshold;
    std::vector<std::uint64_t> messages[2];
    for (const bool merged : {true, false}) {
      ModelComm comm;
      comm.node_shared = false;  // the messages counted are the window's
      comm.merged_gets = merged;
      comm.world_sync = !merged;
      comm.panel_blocks = !merged;
      run_every_grid(p, engine, comm, [&](const Grid& grid, int rank, const RankFigures& figures) {
        messages[merged].push_back(figures.messages);
        (void)grid, (void)rank;
      });
    }
    std::uint64_t merged_total = 0, per_range_total = 0;
    for (std::size_t i = 0; i < messages[1].size(); ++i) merged_total += messages[1][i], per_range_total += messages[0][i];
    MPI_Allreduce(MPI_IN_PLACE, &merged_total, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &per_range_total, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (size == 1) {
      EXPECT_EQ(per_range_total, 0u);  // nothing to pull
    } else if (threshold > 1.0) {
      EXPECT_GT(per_range_total, merged_total) << "threshold " << threshold << ": no peer had several ranges";
    }
  }
}

// Dense layers' gets in parts (ModelComm::panels_per_part), the panels of each part computed while
// the next arrives: the same answer on every grid, on 1 and 2 threads, as one get per peer; and
// more messages than that wherever a rank has peers (so that the parts are really used).
TEST(DataModelStrategy, DenseGetsInPartsKeepTheAnswer) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const RandomProblem p = random_problem(61, 3);
  for (const int threads : {1, 2}) {
    EngineOptions engine;
    engine.format = Format::csc;
    engine.threads = threads;
    std::uint64_t messages[2] = {0, 0};
    for (const std::size_t panels_per_part : {std::size_t{0}, std::size_t{1}}) {
      ModelComm comm;
      comm.panels_per_part = panels_per_part;
      comm.node_shared = false;  // the gets in parts are the window's
      run_every_grid(p, engine, comm, [&](const Grid&, int, const RankFigures& figures) {
        messages[panels_per_part] += figures.messages;
      });
    }
    MPI_Allreduce(MPI_IN_PLACE, messages, 2, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    if (size > 1) {
      EXPECT_GT(messages[1], messages[0]) << "threads " << threads << ": no layer's gets came in parts";
    }
  }
}

// Slots in the node's shared segment, read in place by the peers (ModelComm::node_shared, every
// rank of these tests on one node): the verifier's answer on every grid, rows dying while dense
// and going back to sparse, 1 and 2 threads, --reuse; and the path is really taken: no byte is
// pulled through the window, sparse or dense, where the window's gets pull some on every grid of
// several column blocks. (Peers on other nodes: tests/sim_tests.sh, several simulated hosts.)
TEST(DataModelStrategy, SlotsOnTheNodeAreReadInPlace) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (const double threshold : {0.125, 0.01})
    for (const int threads : {1, 2})
      for (const bool shared : {true, false}) {
        const RandomProblem p = random_problem(61, 3);
        EngineOptions engine;
        engine.format = Format::csc;
        engine.threads = threads;
        engine.reuse = threads == 2;
        engine.dense_threshold = threshold;
        ModelComm comm;
        comm.node_shared = shared;
        std::uint64_t bytes = 0;
        run_every_grid(p, engine, comm, [&](const Grid& grid, int, const RankFigures& figures) {
          if (grid.columns > 1) bytes += figures.bytes_pulled;
        });
        MPI_Allreduce(MPI_IN_PLACE, &bytes, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
        if (size > 1) {
          if (shared) {
            EXPECT_EQ(bytes, 0u) << "threads " << threads << ", threshold " << threshold
                                 << ": a node's rows were pulled through the window";
          } else {
            EXPECT_GT(bytes, 0u) << "threads " << threads << ": the window's gets pulled nothing";
          }
        }
      }
}

TEST(DataModelStrategy, SwitchesFromTheEnvironment) {
  ASSERT_EQ(setenv("SDNN_MODEL_COMM", "", 1), 0);
  ModelComm comm = model_comm_from_environment(false);
  EXPECT_FALSE(comm.overlap);
  EXPECT_FALSE(comm.world_sync);
  EXPECT_TRUE(comm.merged_gets);
  EXPECT_FALSE(comm.panel_blocks);
  EXPECT_TRUE(comm.node_shared);
  EXPECT_GT(comm.panels_per_part, 0u);
  EXPECT_EQ(comm.super_rows, ModelComm::kAutomatic);
  EXPECT_TRUE(comm.cyclic_columns);
  EXPECT_TRUE(comm.join_tails);
  ASSERT_EQ(setenv("SDNN_MODEL_COMM",
                   "world-sync,per-range-gets,panel-blocks,whole-gets,window-gets,super-rows=0,block-columns,separate-tails", 1),
            0);
  comm = model_comm_from_environment(true);
  EXPECT_FALSE(comm.join_tails);
  EXPECT_EQ(comm.super_rows, 0u);
  EXPECT_FALSE(comm.cyclic_columns);
  EXPECT_EQ(comm.panels_per_part, 0u);
  EXPECT_TRUE(comm.overlap);
  EXPECT_TRUE(comm.world_sync);
  EXPECT_FALSE(comm.merged_gets);
  EXPECT_TRUE(comm.panel_blocks);
  EXPECT_FALSE(comm.node_shared);
  ASSERT_EQ(setenv("SDNN_MODEL_COMM", "super-rows=300", 1), 0);
  EXPECT_EQ(model_comm_from_environment(true).super_rows, 300u);
  for (const char* bad : {"world-sync,fast", "super-rows=", "super-rows=12x", "super-rows=-1", "super-rows=99999999999"}) {
    ASSERT_EQ(setenv("SDNN_MODEL_COMM", bad, 1), 0);
    try {
      model_comm_from_environment(true);
      ADD_FAILURE() << "the switches '" << bad << "' were accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("unknown switch"), std::string::npos) << e.what();
    }
  }
  unsetenv("SDNN_MODEL_COMM");
}

}  // namespace
}  // namespace sdnn
