// test_official.cpp: the official N = 1024 data (env SDNN_DATA, else ../shared/data/graphchallenge; skipped
// when absent, a failure when SDNN_REQUIRE_DATA=1, as in CI): layers 1-6 equal the generator's base layers, layers 7-120 have the base structures, and
// every engine combination gives exactly the official categories of the first 1200 images and the reference.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "io/generate.hpp"
#include "io/tsv.hpp"
#include "spmm/engine.hpp"
#include "spmm/reference.hpp"
#include "test_support.hpp"

namespace sdnn {
namespace {

constexpr Index kNeurons = 1024, kLayers = 120, kRows = 1200;

std::string data_dir() {
  const char* env = std::getenv("SDNN_DATA");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string("../shared/data/graphchallenge");
}

// SDNN_REQUIRE_DATA=1 (CI): a test that would skip for want of data fails instead.
bool data_required() {
  const char* env = std::getenv("SDNN_REQUIRE_DATA");
  return env != nullptr && std::string(env) == "1";
}

bool is_file(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

struct OfficialData {
  Network network;
  CsrMatrix input;
  std::vector<Index> truth;
  CsrMatrix reference;  // reference_inference(network, input), computed once
};

class Official : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = data_dir();
    const std::string network_dir = dir + "/neuron1024";
    const std::string input = dir + "/sparse-images-1024-first1200.tsv";
    const std::string truth = dir + "/neuron1024-l120-categories-first1200.tsv";
    if (!is_file(layer_path(network_dir, kNeurons, kLayers)) || !is_file(input) || !is_file(truth)) {
      missing_ = "official data not found at " + dir + " (set SDNN_DATA): skipped";
      return;
    }
    data_ = std::make_unique<OfficialData>();
    data_->network = read_network(network_dir, kNeurons, kLayers, default_bias(kNeurons), 2);
    prepare_weights(data_->network, true, true);
    data_->input = read_triplet_matrix(input, kRows, kNeurons, 2);
    data_->truth = read_categories(truth, kRows);
    data_->reference = reference_inference(data_->network, data_->input);
  }
  static void TearDownTestSuite() { data_.reset(); }
  void SetUp() override {
    if (!data_ && data_required()) FAIL() << missing_ << " (SDNN_REQUIRE_DATA=1)";
    if (!data_) GTEST_SKIP() << missing_;
  }

  static std::unique_ptr<OfficialData> data_;
  static std::string missing_;
};

std::unique_ptr<OfficialData> Official::data_;
std::string Official::missing_;

TEST_F(Official, DataAsDescribed) {
  EXPECT_EQ(default_bias(kNeurons), -0.3f);
  EXPECT_EQ(data_->network.size(), kLayers);
  EXPECT_EQ(data_->input.rows(), kRows);
  EXPECT_EQ(data_->input.cols(), kNeurons);
  EXPECT_EQ(test::count_equal(data_->input, 1.0f), data_->input.nnz()) << "input values are 1";
  EXPECT_EQ(data_->truth.size(), 19u);
}

// The truth of the 1200 is the start of the truth of all 60,000 (skipped, with its reason, when
// the full truth is absent).
TEST_F(Official, FullTruthStartsWithTheFirst1200) {
  const std::string all = data_dir() + "/neuron1024-l120-categories.tsv";
  if (!is_file(all) && data_required()) FAIL() << all << " not found (SDNN_REQUIRE_DATA=1)";
  if (!is_file(all)) GTEST_SKIP() << all << " not found: the prefix check of the full truth skipped";
  const std::vector<Index> full = read_categories(all, 60000);
  EXPECT_EQ(full.size(), 1812u);
  std::vector<Index> prefix;
  for (Index r : full)
    if (r < kRows) prefix.push_back(r);
  EXPECT_EQ(prefix, data_->truth);
}

TEST_F(Official, BaseLayersEqualTheGenerator) {
  for (Index k = 1; k <= 6; ++k)
    for (std::uint64_t seed : {0ull, 42ull, 987654321ull}) {
      SCOPED_TRACE("layer " + std::to_string(k));
      EXPECT_EQ(first_difference(data_->network[k - 1].weights_csr, radixnet_layer(kNeurons, k, seed)), "");
    }
}

TEST_F(Official, LaterLayersHaveTheBaseStructures) {
  for (Index k = 7; k <= kLayers; ++k) {
    SCOPED_TRACE("layer " + std::to_string(k));
    const CsrMatrix& w = data_->network[k - 1].weights_csr;
    EXPECT_EQ(test::radixnet_structure_problem(w, kNeurons, (k - 1) % 6 + 1), "");
    EXPECT_NE(test::radixnet_structure_problem(w, kNeurons, k % 6 + 1), "");
  }
}

TEST_F(Official, ReferenceGivesTheOfficialCategories) {
  EXPECT_EQ(categories_of(data_->reference), data_->truth);
}

TEST_F(Official, EveryCombinationGivesTheOfficialCategories) {
  struct Combination {
    Format format;
    Parallelism parallel;
  };
  const double checksum = checksum_of(data_->reference);
  for (const Combination c : {Combination{Format::csr, Parallelism::data}, Combination{Format::csc, Parallelism::data},
                              Combination{Format::csc, Parallelism::model}})
    for (int threads : {1, 2}) {
      SCOPED_TRACE(to_string(c.format) + "/" + to_string(c.parallel) + "/" + std::to_string(threads) + " threads");
      EngineOptions options;
      options.format = c.format;
      options.parallel = c.parallel;
      options.threads = threads;
      options.block_rows = 64;
      const InferenceResult r = infer(data_->network, data_->input, options);
      EXPECT_EQ(categories_of(r.activations), data_->truth);
      EXPECT_EQ(first_difference(r.activations, data_->reference), "");
      EXPECT_EQ(checksum_of(r.activations), checksum);
    }
}

}  // namespace
}  // namespace sdnn
