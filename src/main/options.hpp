// options.hpp: the command line of sdnn. parse_options turns argv into Options or throws
// std::invalid_argument with a message that names the option; usage_text is --help;
// parse_number reads a whole-number option (here and in `sdnn generate` and `convert`).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "spmm/engine.hpp"

namespace sdnn {

struct Options {
  // The problem: official-format files, or a generated problem when network is empty.
  std::string network_dir;     // --network DIR: holds nN-l1.tsv ... nN-lL.tsv
  std::string input_path;      // --input FILE: sparse-images-N.tsv
  std::string truth_path;      // --truth FILE: categories to compare with
  std::string out_path;        // --out FILE: categories written here
  std::string out_activations_path;  // --out-activations FILE: final activations, original numbering
  std::uint32_t neurons = 1024;
  std::uint32_t layers = 120;
  std::uint32_t inputs = 60000;
  std::optional<float> bias;   // --bias B (default: the challenge's value for N)
  std::uint64_t seed = 42;     // generator seed for the generated problem
  // How to run it.
  std::string strategy = "data";   // --strategy data|model|pipeline: data x data, data x model, data x stages
  std::uint32_t grid_rows = 0, grid_columns = 0;  // --grid DxM for the model and pipeline strategies (0: chosen)
  std::vector<std::uint32_t> stage_starts;  // --stage-layers a,b,..: first layer of stages 1.. (pipeline)
  std::string hash = "none";       // --hash none|input|network|both
  std::uint64_t hash_seed = 1;     // --hash-seed
  std::string report_path;         // --report FILE.json (and FILE.csv)
  bool report_layers = false;      // --report-layers
  std::uint64_t max_memory = 0;    // --max-memory SIZE per rank (0: MemAvailable / ranks on the node)
  bool share_network = false;      // --share-network: one copy of the network per node
  bool no_overlap = false;         // --no-overlap: model strategy waits for remote columns first
  std::string window_backend;      // --window-backend auto|allocate|create ("": SDNN_WINDOW_BACKEND, else auto)
  Format format = Format::csr;
  Parallelism parallel = Parallelism::data;
  int threads = 0;             // 0: OMP_NUM_THREADS, else all cores
  std::uint32_t block_rows = 0;     // 0: automatic
  bool verify = false;
  bool no_verify = false;       // --no-verify: skip the verifier of the generated problem (benchmarks)
  bool quiet = false;
  bool load_only = false;      // --load-only: read the problem, print the read figures, stop
  bool reuse = false;          // --reuse: rows with identical entries computed once (docs/reuse.md)
  bool help = false;

  bool generated() const { return network_dir.empty(); }
};

// --option N: a whole number >= min_value; std::invalid_argument naming the option otherwise.
template <class T>
T parse_number(const std::string& option, const std::string& text, T min_value) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min_value)
    throw std::invalid_argument(option + " needs a number >= " + std::to_string(min_value) + ", not '" + text + "'");
  return value;
}

// The most input rows a run takes: row numbers and counts are 32-bit signed in places (MPI counts).
inline constexpr std::uint32_t kMaxInputs = 2147483647;
// --inputs M: a number from 1 to kMaxInputs; std::invalid_argument naming the bound otherwise.
std::uint32_t parse_inputs(const std::string& option, const std::string& text);

Options parse_options(const std::vector<std::string>& args);
std::string usage_text();

}  // namespace sdnn
