// sdnn_check.cpp: a test tool for the end-to-end tests (tests/end_to_end_tests.sh), apart from the
// program's loader, hashing and strategies.
//   sdnn_check random-problem --neurons N --layers L --inputs M --seed S --out DIR
//     writes a random problem that is not RadiX-Net: DIR/nN-lK.tsv (official format), the same
//     network with a different bias per neuron as DIR/network.sdnn (the archive format carries
//     one bias per neuron; the TSV format has none), and the input as DIR/input.tsv and
//     DIR/input.sdnn. Weights and biases are multiples of 1/64, exact in float and in text.
//   sdnn_check activations --network DIR|FILE.sdnn --neurons N --layers L --input FILE --inputs M
//              [--bias B] --activations FILE
//     reads the problem serially (the io readers, no MPI, nothing hashed), runs the serial
//     reference (spmm/reference.hpp) and compares every final value with FILE, as written by
//     sdnn --out-activations (original numbering). Prints the first difference; exit 1 when any.
// Exit 2 on a bad command line or unreadable input.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "io/archive.hpp"
#include "io/generate.hpp"
#include "io/output_file.hpp"
#include "io/tsv.hpp"
#include "spmm/reference.hpp"

namespace sdnn {
namespace {

// --name value pairs.
std::map<std::string, std::string> parse_pairs(int argc, char** argv) {
  std::map<std::string, std::string> pairs;
  for (int i = 2; i < argc; i += 2) {
    const std::string name = argv[i];
    if (name.rfind("--", 0) != 0 || i + 1 >= argc)
      throw std::invalid_argument("expected --name value, not '" + name + "'");
    pairs[name.substr(2)] = argv[i + 1];
  }
  return pairs;
}

std::string need(const std::map<std::string, std::string>& pairs, const std::string& name) {
  const auto it = pairs.find(name);
  if (it == pairs.end()) throw std::invalid_argument("--" + name + " is needed");
  return it->second;
}

Index need_index(const std::map<std::string, std::string>& pairs, const std::string& name) {
  return static_cast<Index>(std::stoul(need(pairs, name)));
}

// A multiple of 1/64 in [low, high] (in 64ths).
Value sixty_fourths(std::mt19937_64& rng, int low, int high) {
  return static_cast<Value>(low + static_cast<int>(rng() % static_cast<unsigned>(high - low + 1))) / 64.0f;
}

void write_tsv(const std::string& path, const CsrMatrix& a) {
  std::string text;
  char line[64];
  for (Index i = 0; i < a.rows(); ++i)
    for (Offset p = a.begin(i); p < a.end(i); ++p)
      text.append(line, static_cast<std::size_t>(std::snprintf(line, sizeof line, "%u\t%u\t%.9g\n", i + 1,
                                                                 a.indices[p] + 1, static_cast<double>(a.values[p]))));
  write_file_atomically(path, text);
}

// Each neuron feeds 3 to 8 random neurons with weights in [-32/64, 40/64]; biases per neuron in
// [-16/64, 4/64]; input row r holds 1 to N/4 ones, every 11th row none. With 64 neurons and 8
// layers (seed 13) about 7 nonzeros per row survive in 44 of the 50 rows.
int random_problem(const std::map<std::string, std::string>& pairs) {
  const Index n = need_index(pairs, "neurons"), layers = need_index(pairs, "layers"), m = need_index(pairs, "inputs");
  const std::string dir = need(pairs, "out");
  std::mt19937_64 rng(std::stoull(need(pairs, "seed")));
  Network network(layers);
  for (Index l = 0; l < layers; ++l) {
    std::vector<Triplet> weights;
    for (Index i = 0; i < n; ++i) {
      std::set<Index> targets;
      const Index fan_out = 3 + static_cast<Index>(rng() % 6);
      while (targets.size() < std::min(fan_out, n)) targets.insert(static_cast<Index>(rng() % n));
      for (Index j : targets) weights.push_back({i, j, sixty_fourths(rng, -32, 40)});
    }
    network[l].weights_csr = from_triplets<RowMajor>(n, n, weights);
    network[l].bias.resize(n);
    for (Value& b : network[l].bias) b = sixty_fourths(rng, -16, 4);
    write_tsv(layer_path(dir, n, l + 1), network[l].weights_csr);
  }
  write_network_archive(dir + "/network.sdnn", network);
  std::vector<Triplet> ones;
  for (Index r = 0; r < m; ++r) {
    if (r % 11 == 10) continue;
    std::set<Index> columns;
    const Index count = 1 + static_cast<Index>(rng() % std::max<Index>(1, n / 4));  // 1 to N/4
    while (columns.size() < count) columns.insert(static_cast<Index>(rng() % n));
    for (Index c : columns) ones.push_back({r, c, 1.0f});
  }
  const CsrMatrix input = from_triplets<RowMajor>(m, n, ones);
  write_tsv(dir + "/input.tsv", input);
  write_inputs_archive(dir + "/input.sdnn", input, 16);  // several blocks even for small inputs
  return 0;
}

int compare_activations(const std::map<std::string, std::string>& pairs) {
  const Index n = need_index(pairs, "neurons"), layers = need_index(pairs, "layers"), m = need_index(pairs, "inputs");
  const std::string network_path = need(pairs, "network"), input_path = need(pairs, "input");
  const auto bias = pairs.find("bias");
  Network network;
  if (is_archive_path(network_path)) {
    network = read_network_archive(network_path, n, layers);
    if (bias != pairs.end())
      for (Layer& layer : network) layer.bias.assign(n, std::stof(bias->second));
  } else {
    network = read_network(network_path, n, layers, bias != pairs.end() ? std::stof(bias->second) : default_bias(n), 1);
  }
  const CsrMatrix input =
      is_archive_path(input_path) ? read_inputs_archive(input_path, n, m) : read_triplet_matrix(input_path, m, n, 1);
  const CsrMatrix expected = reference_inference(network, input);
  const std::string activations = need(pairs, "activations");
  // An empty file is no activation at all (every row died); the TSV reader refuses empty files.
  const CsrMatrix actual = file_size(activations) == 0 ? CsrMatrix(m, n) : read_triplet_matrix(activations, m, n, 1);
  std::printf("reference: %llu nonzeros in %zu of %u rows\n", static_cast<unsigned long long>(expected.nnz()),
              categories_of(expected).size(), m);
  const std::string difference = first_difference(expected, actual);
  if (!difference.empty()) {
    std::printf("activations differ from the serial reference (original numbering): %s\n", difference.c_str());
    return 1;
  }
  std::printf("activations equal the serial reference\n");
  return 0;
}

}  // namespace
}  // namespace sdnn

int main(int argc, char** argv) {
  try {
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "random-problem") return sdnn::random_problem(sdnn::parse_pairs(argc, argv));
    if (command == "activations") return sdnn::compare_activations(sdnn::parse_pairs(argc, argv));
    std::fprintf(stderr, "usage: sdnn_check random-problem ... | activations ... (see tests/tools/sdnn_check.cpp)\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sdnn_check: error: %s\n", e.what());
  }
  return 2;
}
