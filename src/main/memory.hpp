// memory.hpp: the memory a run needs, estimated before anything is loaded, so that a run that
// cannot fit is refused with a clear message instead of being killed hours later. The estimate
// counts the network (both weight formats; 1/M of it on a model grid, the largest stage's layers
// in a pipeline; once per node with --share-network), the input shard, and the larger of
// loading's transients (TSV pieces, parsed triplets, their copies in windows) and inference's work (per-thread block buffers of data
// parallelism, or three copies of the shard for model parallelism and the model strategy; the
// final activations when verifying), and what grows with the --inputs rows (row offsets, ids,
// per-row buffers, whether a row holds entries or not) and with --threads (per-thread
// accumulators). Nonzeros come from archive headers, from the mean line
// length of each TSV file's first MiB, or from the generator's sizes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "main/options.hpp"

namespace sdnn {

struct MemoryEstimate {
  std::uint64_t network_bytes = 0;  // per rank (the node's copy divided among its ranks when shared)
  std::uint64_t input_bytes = 0;    // per rank
  std::uint64_t loading_bytes = 0;  // per rank, transient
  std::uint64_t work_bytes = 0;     // per rank
  std::uint64_t row_bytes = 0;      // per rank: the part of the peak that grows with --inputs (for the message)
  // The peak: network and input, plus loading's transients or inference's work, whichever is
  // larger (the transients are freed before inference starts).
  std::uint64_t total() const {
    constexpr std::uint64_t process = std::uint64_t{64} << 20;  // the program and the MPI libraries
    return process + network_bytes + input_bytes + std::max(loading_bytes, work_bytes);
  }
};

// ranks: all ranks; node_ranks: ranks on this node; model_columns: M of the model grid or P, the
// pipeline's stages (1 for data).
MemoryEstimate estimate_memory(const Options& options, int ranks, int node_ranks, int model_columns, int threads);

// MemAvailable of /proc/meminfo in bytes (0 when unknown).
std::uint64_t available_memory();

// "20G", "512M", "1.5T", "123456" (bytes) -> bytes; throws std::invalid_argument.
std::uint64_t parse_memory_size(const std::string& text);

std::string format_bytes(std::uint64_t bytes);

}  // namespace sdnn
