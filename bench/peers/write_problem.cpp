// write_problem.cpp: writes sdnn's generated problem (the RadiX-Net network and the synthetic
// inputs of src/io/generate.hpp, the very matrices `./sdnn --seed S` runs) as official-format TSV,
// so that a peer engine that only reads files (bench/peers/graphblas_dnn.c) runs the same data.
// A stop-gap until `sdnn generate` exists; compare.sh prefers that when it does.
//
// Usage: write_problem --neurons N --layers L --seed S --inputs M --out DIR
// Writes DIR/neuronN/nN-l1.tsv .. nN-lL.tsv and DIR/sparse-images-N.tsv (M rows), 1-based triplets,
// weights written like the official files (6.250000e-02), each file atomically.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

#include "io/generate.hpp"
#include "io/output_file.hpp"
#include "io/tsv.hpp"

namespace {

using namespace sdnn;

// "%.6e" (the official spelling) when it reads back to the same float, else enough digits.
void append_value(std::string& out, Value v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6e", static_cast<double>(v));
  if (std::strtof(buffer, nullptr) != v) std::snprintf(buffer, sizeof buffer, "%.9e", static_cast<double>(v));
  out += buffer;
}

std::string triplets_text(const CsrMatrix& m, bool integer_values) {
  std::string out;
  out.reserve(static_cast<std::size_t>(m.nnz()) * 24);
  char buffer[48];
  for (Index i = 0; i < m.rows(); ++i)
    for (Offset p = m.begin(i); p < m.end(i); ++p) {
      std::snprintf(buffer, sizeof buffer, "%u\t%u\t", i + 1, m.indices[p] + 1);
      out += buffer;
      if (integer_values && m.values[p] == 1.0f)
        out += '1';
      else
        append_value(out, m.values[p]);
      out += '\n';
    }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  long neurons = 1024, layers = 120, inputs = 60000;
  unsigned long long seed = 42;
  std::string out;
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string key = argv[a], value = argv[a + 1];
    if (key == "--neurons") neurons = std::stol(value);
    else if (key == "--layers") layers = std::stol(value);
    else if (key == "--inputs") inputs = std::stol(value);
    else if (key == "--seed") seed = std::stoull(value);
    else if (key == "--out") out = value;
    else {
      std::fprintf(stderr, "write_problem: error: unknown option %s\n", key.c_str());
      return 2;
    }
  }
  if (out.empty() || argc % 2 == 0 || neurons < 1 || layers < 1 || inputs < 1) {
    std::fprintf(stderr, "Usage: write_problem --neurons N --layers L --seed S --inputs M --out DIR\n");
    return 2;
  }
  try {
    const Index n = static_cast<Index>(neurons);
    const std::string net_dir = out + "/neuron" + std::to_string(n);
    std::filesystem::create_directories(net_dir);
    for (Index l = 1; l <= static_cast<Index>(layers); ++l)
      write_file_atomically(layer_path(net_dir, n, l), triplets_text(radixnet_layer(n, l, seed), false));
    write_file_atomically(out + "/sparse-images-" + std::to_string(n) + ".tsv",
                          triplets_text(generate_inputs(static_cast<Index>(inputs), n, seed), true));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_problem: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
