// memory.hpp: the memory a run needs, estimated before anything is loaded, so that a run that
// cannot fit is refused with a clear message instead of being killed hours later. The estimate
// counts the network (both weight formats; once per node with --share-network), the input shard,
// the parsed triplets in flight while loading, and the activation buffers (three copies of the
// input shard: current, next and staging).
#pragma once

#include <cstdint>
#include <string>

#include "main/options.hpp"

namespace sdnn {

struct MemoryEstimate {
  std::uint64_t network_bytes = 0;  // per rank (the node's copy divided among its ranks when shared)
  std::uint64_t input_bytes = 0;    // per rank
  std::uint64_t loading_bytes = 0;  // per rank, transient
  std::uint64_t work_bytes = 0;     // per rank
  std::uint64_t total() const { return network_bytes + input_bytes + loading_bytes + work_bytes; }
};

// ranks: all ranks; node_ranks: ranks on this node; model_columns: M of the model grid (1 for data).
MemoryEstimate estimate_memory(const Options& options, int ranks, int node_ranks, int model_columns);

// MemAvailable of /proc/meminfo in bytes (0 when unknown).
std::uint64_t available_memory();

// "20G", "512M", "1.5T", "123456" (bytes) -> bytes; throws std::invalid_argument.
std::uint64_t parse_memory_size(const std::string& text);

std::string format_bytes(std::uint64_t bytes);

}  // namespace sdnn
