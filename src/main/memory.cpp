// memory.cpp: see memory.hpp.
#include "main/memory.hpp"

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "io/tsv.hpp"

namespace sdnn {
namespace {

std::uint64_t size_or_zero(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 ? static_cast<std::uint64_t>(info.st_size) : 0;
}

}  // namespace

MemoryEstimate estimate_memory(const Options& o, int ranks, int node_ranks, int model_columns) {
  MemoryEstimate e;
  constexpr std::uint64_t kEntry = sizeof(Index) + sizeof(Value), kTriplet = sizeof(Triplet);
  // Nonzeros: exact for the generated problem; from file sizes otherwise (the shortest possible
  // line, "1<TAB>1<TAB>1<LF>", is 6 bytes, a typical one about 16 to 26: 16 is a safe middle).
  std::uint64_t network_nonzeros = 0, input_nonzeros = 0;
  if (o.generated()) {
    network_nonzeros = 32ull * o.neurons * o.layers;
    input_nonzeros = static_cast<std::uint64_t>(0.1 * o.neurons) * o.inputs;  // synthetic rows: about 10% set
  } else {
    for (std::uint32_t l = 1; l <= o.layers; ++l)
      network_nonzeros += size_or_zero(layer_path(o.network_dir, o.neurons, l)) / 16;
    input_nonzeros = size_or_zero(o.input_path) / 12;
  }
  const std::uint64_t offsets = (std::uint64_t{o.neurons} + 1) * sizeof(Offset) * o.layers;
  std::uint64_t network = 2 * (network_nonzeros * kEntry + offsets);  // CSR and CSC
  if (o.strategy == "model") network /= static_cast<std::uint64_t>(model_columns);
  if (o.share_network) network /= static_cast<std::uint64_t>(node_ranks);
  e.network_bytes = network;
  const std::uint64_t shard = input_nonzeros / static_cast<std::uint64_t>(ranks) + 1;
  e.input_bytes = shard * kEntry;
  e.loading_bytes = (network_nonzeros / static_cast<std::uint64_t>(ranks)) * kTriplet +  // my parsed share
                    (network_nonzeros / o.layers + 1) * kTriplet + shard * kTriplet;     // one layer, input
  e.work_bytes = 3 * shard * kEntry;
  return e;
}

std::uint64_t available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::uint64_t value = 0;
  std::string unit;
  while (meminfo >> key >> value >> unit)
    if (key == "MemAvailable:") return value * 1024;
  return 0;
}

std::uint64_t parse_memory_size(const std::string& text) {
  std::size_t used = 0;
  double number = 0;
  try {
    number = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = text.substr(used);
  double scale = 1;
  if (unit == "K" || unit == "k") scale = 1024.0;
  else if (unit == "M" || unit == "m") scale = 1024.0 * 1024;
  else if (unit == "G" || unit == "g") scale = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "t") scale = 1024.0 * 1024 * 1024 * 1024;
  else if (!unit.empty()) used = 0;
  if (used == 0 || !(number > 0) || !std::isfinite(number))
    throw std::invalid_argument("--max-memory needs a size like 20G, 512M or 1048576, not '" + text + "'");
  return static_cast<std::uint64_t>(number * scale);
}

std::string format_bytes(std::uint64_t bytes) {
  char text[32];
  if (bytes >= (1ull << 30)) std::snprintf(text, sizeof text, "%.2f GB", static_cast<double>(bytes) / (1ull << 30));
  else std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / (1ull << 20));
  return text;
}

}  // namespace sdnn
