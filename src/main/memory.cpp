// memory.cpp: see memory.hpp.
#include "main/memory.hpp"
#include "main/strategy_model.hpp"
#include "main/strategy_pipeline.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "io/archive.hpp"
#include "io/compressed.hpp"
#include "io/tsv.hpp"
#include "spmm/dense_rows.hpp"
#include "spmm/engine.hpp"
#include "spmm/huge_pages.hpp"

namespace sdnn {
namespace {

std::uint64_t size_or_zero(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) ? static_cast<std::uint64_t>(info.st_size) : 0;
}

// Lines of a TSV file (its entries): its size over the mean line length of 8 samples of 128 KiB
// spread over it (the whole file when smaller; row numbers grow longer down a file, so the start
// alone would overcount). A file that cannot be read counts as 6-byte lines ("1<TAB>1<TAB>1<LF>",
// the shortest); the loader reports what is wrong with it.
std::uint64_t tsv_entries(const std::string& path) {
  if (is_gzip_file(path)) return estimate_gzip_lines(path);
  const std::uint64_t size = size_or_zero(path);
  if (size == 0) return 0;
  constexpr std::uint64_t kSamples = 8, kSample = 128 << 10;
  std::ifstream in(path, std::ios::binary);
  std::string sample;
  std::uint64_t bytes = 0, lines = 0;
  for (std::uint64_t k = 0; k < kSamples && in; ++k) {
    const std::uint64_t at = size <= kSamples * kSample ? k * kSample : (size - kSample) * k / (kSamples - 1);
    if (at >= size) break;
    sample.assign(static_cast<std::size_t>(std::min(kSample, size - at)), '\0');
    in.seekg(static_cast<std::streamoff>(at));
    in.read(sample.data(), static_cast<std::streamsize>(sample.size()));
    const auto got = static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0));
    bytes += got;
    lines += static_cast<std::uint64_t>(std::count(sample.begin(), sample.begin() + got, '\n'));
  }
  if (lines == 0 || bytes == 0) return size / 6 + 1;
  return static_cast<std::uint64_t>(std::ceil(static_cast<double>(size) * lines / bytes)) + 1;
}

// Nonzeros of the network's first `layers` layers and of the input, from archive headers (exact)
// or TSV line counts (sampled); a broken archive counts by its size (8 bytes an entry) and the
// loader reports it.
std::uint64_t network_entries(const Options& o) {
  if (is_archive_path(o.network_dir)) {
    try {
      const NetworkArchiveReader header(o.network_dir, o.neurons, o.layers);
      std::uint64_t total = 0;
      for (Index l = 0; l < o.layers; ++l) total += header.nonzeros(l);
      return total;
    } catch (const std::exception&) {
      return size_or_zero(o.network_dir) / 8;
    }
  }
  if (is_tar_network(o.network_dir)) {
    // A tar is one stream: the lines of the first layer member in it (whichever layer: members
    // come in any order), L times; reading stops there.
    struct Counted {};
    std::uint64_t lines = 0;
    try {
      read_tar_layers(o.network_dir, o.neurons, o.layers, [&](Index, const std::string&, const TextReader& read) {
        std::vector<char> text(1 << 20);
        for (std::size_t n; (n = read(text.data(), text.size())) > 0;)
          lines += static_cast<std::uint64_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(n), '\n'));
        throw Counted{};
      });
    } catch (const Counted&) {
      return lines * o.layers;
    } catch (const std::exception&) {
    }
    return size_or_zero(o.network_dir) / 8;  // the loader reports what is wrong with it
  }
  std::uint64_t total = 0;
  for (std::uint32_t l = 1; l <= o.layers; ++l) total += tsv_entries(layer_file(o.network_dir, o.neurons, l));
  return total;
}

std::uint64_t input_entries(const Options& o) {
  if (is_archive_path(o.input_path)) {
    try {
      const InputsArchiveReader header(o.input_path, o.neurons, o.inputs);
      std::uint64_t total = 0;
      for (Index b = 0; b < header.blocks(); ++b) total += header.nonzeros(b);
      return total;
    } catch (const std::exception&) {
      return size_or_zero(o.input_path) / 8;
    }
  }
  return tsv_entries(o.input_path);
}

}  // namespace

MemoryEstimate estimate_memory(const Options& o, int ranks, int node_ranks, int model_columns, int threads) {
  MemoryEstimate e;
  constexpr std::uint64_t kEntry = sizeof(Index) + sizeof(Value), kTriplet = sizeof(Triplet);
  const auto P = static_cast<std::uint64_t>(ranks);
  const bool model = o.strategy == "model";
  const bool pipeline = o.strategy == "pipeline";  // model_columns: the pipeline's stages
  std::uint64_t network_nonzeros = 0, input_nonzeros = 0;
  if (o.generated()) {
    network_nonzeros = 32ull * o.neurons * o.layers;
    input_nonzeros = static_cast<std::uint64_t>(0.12 * o.neurons) * o.inputs;  // synthetic rows: about 12% set
  } else {
    network_nonzeros = network_entries(o);
    input_nonzeros = input_entries(o);
  }
  // The network: CSR and CSC of every layer (1/M of it for a model grid; one copy per node shared).
  const std::uint64_t offsets = (std::uint64_t{o.neurons} + 1) * sizeof(Offset) * o.layers;
  std::uint64_t network = 2 * (network_nonzeros * kEntry + offsets);
  if (model) network /= static_cast<std::uint64_t>(model_columns);
  if (pipeline) {  // the largest stage's layers (strategy_pipeline.hpp)
    const std::uint64_t layers = std::max<std::uint64_t>(o.layers, 1);
    std::uint64_t largest = automatic_stage_cap(static_cast<Index>(layers), model_columns);
    if (!o.stage_starts.empty()) {
      largest = 0;
      for (std::size_t s = 0, first = 0; s <= o.stage_starts.size(); ++s) {
        const std::uint64_t last = s < o.stage_starts.size() ? o.stage_starts[s] : layers;
        largest = std::max<std::uint64_t>(largest, last > first ? last - first : 0);
        first = last;
      }
    }
    network = network / layers * std::max<std::uint64_t>(largest, 1);
  }
  if (o.share_network) network /= static_cast<std::uint64_t>(node_ranks);
  e.network_bytes = network;
  const std::uint64_t shard =
      input_nonzeros / (model || pipeline ? P / static_cast<std::uint64_t>(model_columns) : P) + 1;
  e.input_bytes = shard * kEntry;
  // Loading, transient (src/main/load.cpp): TSV text is read in pieces (kParsePieceBytes); parsed
  // triplets are bucketed, then (with more than one rank) copied into a window and gathered by
  // their owners. The network's triplets are all held before they become layers; the input's
  // next to its CSR.
  const std::uint64_t copies = ranks > 1 ? 2 : 1;
  const std::uint64_t layer = network_nonzeros / std::max<std::uint64_t>(o.layers, 1) + 1;
  std::uint64_t network_loading = 0, input_loading = 0;
  if (o.generated()) {
    network_loading = network_nonzeros * kEntry + layer * kTriplet;  // the whole generated network, one layer's triplets
    input_loading = input_nonzeros * kEntry + shard * kTriplet;      // all generated inputs, my triplets
  } else {
    // A piece of text: at most 256 MB, at most a rank's share of a file (lines of about 26 and 16 bytes).
    const std::uint64_t piece = kParsePieceBytes;
    const std::uint64_t layer_text = std::min(piece, layer * 26 / P + 1), input_text = std::min(piece, input_nonzeros * 16 / P + 1);
    network_loading = is_archive_path(o.network_dir)
                          ? static_cast<std::uint64_t>(threads) * layer * kTriplet
                          : copies * (network_nonzeros / P) * kTriplet + layer * kTriplet + layer_text;
    input_loading = is_archive_path(o.input_path) ? shard * kTriplet
                                                  : copies * (input_nonzeros / P + 1) * kTriplet + input_text;
  }
  // Inference: data parallelism holds, per thread, a block's rows and its next layer (sized by the
  // symbolic pass, at most block x N structural entries each, and dense panels, with 12 panels
  // and one layer's weights in double for the panel kernel); the model strategy and model
  // parallelism hold the whole shard three times (current, next, staging; the model strategy's
  // dense panels below), model parallelism
  // a fourth time for its panels in double. The verifier keeps the final activations (bounded
  // here by the shard).
  std::uint64_t work = 0;
  if (model || o.parallel == Parallelism::model) {
    work = (model ? 3 : 4) * shard * kEntry;
    if (model) {
      // Data x model once its row group's rows are dense: its columns of a super-block's rows
      // (with peers; the group's rows with one column block) as panels twice (input and output of
      // a layer), the neurons pulled from its peers, each thread's few full-width panels in double
      // and float; with peers, the window's dense slots (two) and sparse slots (two, each the
      // larger of the dense threshold's share of the super-block's entries and the group's input,
      // as strategy_model.cpp sizes them), and the super-blocks' final rows (the shard).
      const std::uint64_t M = static_cast<std::uint64_t>(model_columns);
      const std::uint64_t group_rows = std::uint64_t{o.inputs} / (P / M) + 1, columns = o.neurons / M + 1;
      // The super-block's rows as the strategy sizes them (SDNN_MODEL_COMM=super-rows=N, checked
      // when the strategy was made, or automatic; 0: the whole group).
      const std::size_t asked = model_comm_from_environment(true).super_rows;
      const std::uint64_t super_rows =
          asked == ModelComm::kAutomatic ? ModelComm::kSuperRowsPerThread * static_cast<std::uint64_t>(threads) + 1
          : asked == 0                   ? group_rows
                                         : std::uint64_t{asked};
      const std::uint64_t part_rows = M > 1 ? std::min(group_rows, super_rows) : group_rows;
      work += part_rows * (2 * columns + (o.neurons - std::min<std::uint64_t>(o.neurons, columns))) * sizeof(Value) +
              static_cast<std::uint64_t>(threads) * 12 * kPanelRows * o.neurons * (sizeof(double) + sizeof(Value));
      if (M > 1) {
        const auto sparse_most = std::max<std::uint64_t>(
            static_cast<std::uint64_t>(EngineOptions().dense_threshold * static_cast<double>(part_rows) * o.neurons),
            shard);
        work += 2 * part_rows * columns * sizeof(Value) + 2 * std::min(part_rows * columns, sparse_most) * kEntry +
                shard * kEntry;
      }
    }
  } else {
    const std::uint64_t rows = std::max<std::uint64_t>(o.inputs / P, 1);
    const std::uint64_t block = o.block_rows > 0 ? o.block_rows : automatic_block_rows(static_cast<Index>(rows), threads);
    work = static_cast<std::uint64_t>(threads) * 7 * std::min(block, rows) * o.neurons * kEntry / 2;
    work = std::min(work, static_cast<std::uint64_t>(threads) * 3 * shard * kEntry + shard * kEntry);
    const std::uint64_t layer_weights = network_nonzeros / std::max(o.layers, 1u);
    work += static_cast<std::uint64_t>(threads) * (12 * kPanelRows * o.neurons + layer_weights) * sizeof(double);
  }
  if (pipeline) work += 4 * (std::uint64_t{8} << 20);  // the slot ring: 4 slots of at most 8 MiB
  if (o.verify) work += 2 * shard * kEntry;
  // What grows with --inputs whatever the file holds (every row exists, empty or not), per row of
  // the shard: the input's CSR row offsets; while loading, from_triplets' cursor per row; in
  // inference, each block's row offsets and ids and the categories (data parallelism) or three
  // CSR copies' offsets (model), and the two final matrices' offsets when verifying. Rank 0 also
  // gathers the categories (a row id per surviving row, in three arrays at most at once).
  const std::uint64_t shard_rows = std::uint64_t{o.inputs} / (model ? P / static_cast<std::uint64_t>(model_columns) : P) + 1;
  std::uint64_t row_work = model || o.parallel == Parallelism::model
                               ? shard_rows * 3 * sizeof(Offset)
                               : shard_rows * (sizeof(Offset) + 2 * sizeof(Index));
  if (o.verify) row_work += shard_rows * 2 * sizeof(Offset);
  row_work += std::min<std::uint64_t>(o.inputs, input_nonzeros + 1) * 3 * sizeof(Index);
  // What grows with --threads: each thread's sparse accumulator (a double, a stamp and a pattern
  // slot, 16 bytes a slot), over the neurons and a block's rows in data parallelism, over the
  // shard's rows in model parallelism and the model strategy (right multiplication): the latter
  // grows with --inputs too.
  const bool by_columns = model || o.parallel == Parallelism::model;
  const std::uint64_t block_rows =
      o.block_rows > 0 ? o.block_rows : automatic_block_rows(static_cast<Index>(std::min<std::uint64_t>(shard_rows, o.inputs)), threads);
  const std::uint64_t slots = by_columns ? shard_rows : std::uint64_t{o.neurons} + std::min<std::uint64_t>(block_rows, shard_rows);
  const std::uint64_t thread_work = static_cast<std::uint64_t>(threads) * 16 * slots;
  e.row_bytes = shard_rows * sizeof(Offset) + std::max(shard_rows * sizeof(Offset), row_work + (by_columns ? thread_work : 0));
  e.input_bytes += shard_rows * sizeof(Offset);
  input_loading += shard_rows * sizeof(Offset);
  work += row_work + thread_work;
  // Each thread's large working buffers (two panel buffers and the panels in double) on huge
  // pages may each round up to a whole 2 MiB page (spmm/huge_pages.hpp).
  if (huge_pages_enabled()) work += static_cast<std::uint64_t>(threads) * 3 * kHugePageBytes;
  // While the network loads, the input is not there yet; loading's transients are freed before
  // inference (see total()).
  e.loading_bytes = std::max(network_loading > e.input_bytes ? network_loading - e.input_bytes : 0, input_loading);
  e.work_bytes = work;
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
