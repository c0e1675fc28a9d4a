// engine.cpp: data- and model-parallel drivers of the layer kernels over a whole network.
#include "engine.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

#include "dense_rows.hpp"
#include "spmm.hpp"

namespace sdnn {

std::string to_string(Format f) { return f == Format::csr ? "csr" : "csc"; }
std::string to_string(Parallelism p) { return p == Parallelism::data ? "data" : "model"; }

Format parse_format(const std::string& s) {
  if (s == "csr") return Format::csr;
  if (s == "csc") return Format::csc;
  throw std::invalid_argument("--format must be csr or csc, not '" + s + "'");
}

Parallelism parse_parallelism(const std::string& s) {
  if (s == "data") return Parallelism::data;
  if (s == "model") return Parallelism::model;
  throw std::invalid_argument("--parallel must be data or model, not '" + s + "'");
}

void check_combination(Format f, Parallelism p) {
  if (f == Format::csr && p == Parallelism::model)
    throw std::invalid_argument(
        "--format csr with --parallel model is not supported: model parallelism splits output columns, "
        "which needs --format csc");
}

void prepare_weights(Network& network, bool need_csr, bool need_csc) {
  for (Layer& layer : network) {
    if (need_csr && layer.weights_csr.rows() == 0 && layer.weights_csc.cols() > 0)
      layer.weights_csr = to_csr(layer.weights_csc);
    if (need_csc && layer.weights_csc.cols() == 0 && layer.weights_csr.rows() > 0)
      layer.weights_csc = to_csc(layer.weights_csr);
  }
}

CsrMatrix slice_rows(const CsrMatrix& a, Index first, Index last) {
  CsrMatrix s(last - first, a.cols());
  const Offset base = a.offsets[first], stop = a.offsets[last];
  for (Index i = first; i < last; ++i) s.offsets[i - first + 1] = a.offsets[i + 1] - base;
  s.indices.assign(a.indices.begin() + static_cast<std::ptrdiff_t>(base), a.indices.begin() + static_cast<std::ptrdiff_t>(stop));
  s.values.assign(a.values.begin() + static_cast<std::ptrdiff_t>(base), a.values.begin() + static_cast<std::ptrdiff_t>(stop));
  return s;
}

namespace {

Index neurons_of(const Network& network, const CsrMatrix& input) {
  for (const Layer& layer : network)
    if (layer.bias.size() != input.cols())
      throw std::invalid_argument("a layer's bias does not have one entry per neuron");
  return input.cols();
}

// Reports progress at most once per percent, from any thread.
class ProgressMeter {
 public:
  ProgressMeter(const EngineOptions& options, std::uint64_t total) : options_(options), total_(total) {}
  void advance(std::uint64_t amount, const std::string& label) {
    if (!options_.progress || total_ == 0) return;
    const std::uint64_t done = done_.fetch_add(amount) + amount;
    const int percent = static_cast<int>(100 * done / total_);
    int last = last_percent_.load();
    while (percent > last)
      if (last_percent_.compare_exchange_weak(last, percent)) {
#pragma omp critical(sdnn_progress)
        options_.progress(static_cast<double>(done) / static_cast<double>(total_), label);
        break;
      }
  }

 private:
  const EngineOptions& options_;
  std::uint64_t total_;
  std::atomic<std::uint64_t> done_{0};
  std::atomic<int> last_percent_{-1};
};

// Assembles the surviving rows of every block into one input.rows() x N matrix.
CsrMatrix assemble(Index rows, Index cols, const std::vector<ActiveRows>& blocks) {
  CsrMatrix y(rows, cols);
  for (const ActiveRows& b : blocks)
    for (Index r = 0; r < b.rows.rows(); ++r) y.offsets[b.ids[r] + 1] = b.rows.end(r) - b.rows.begin(r);
  for (Index i = 0; i < rows; ++i) y.offsets[i + 1] += y.offsets[i];
  y.indices.resize(y.nnz());
  y.values.resize(y.nnz());
  for (const ActiveRows& b : blocks)
    for (Index r = 0; r < b.rows.rows(); ++r) {
      const Offset from = b.rows.begin(r), count = b.rows.end(r) - from, to = y.offsets[b.ids[r]];
      std::copy_n(b.rows.indices.begin() + static_cast<std::ptrdiff_t>(from), count, y.indices.begin() + static_cast<std::ptrdiff_t>(to));
      std::copy_n(b.rows.values.begin() + static_cast<std::ptrdiff_t>(from), count, y.values.begin() + static_cast<std::ptrdiff_t>(to));
    }
  y.sort_indices();
  return y;
}

// The rows of input [first, last) that hold any entry, with their ids.
void load_block(const CsrMatrix& input, Index first, Index last, ActiveRows& block) {
  block.rows.reset(last - first, input.cols());
  block.ids.resize(last - first);
  Offset count = 0;
  Index kept = 0;
  for (Index i = first; i < last; ++i) {
    const Offset n = input.end(i) - input.begin(i);
    if (n == 0) continue;
    block.rows.reserve_nonzeros(count + n);
    std::copy_n(input.indices.begin() + static_cast<std::ptrdiff_t>(input.begin(i)), n, block.rows.indices.begin() + static_cast<std::ptrdiff_t>(count));
    std::copy_n(input.values.begin() + static_cast<std::ptrdiff_t>(input.begin(i)), n, block.rows.values.begin() + static_cast<std::ptrdiff_t>(count));
    count += n;
    block.ids[kept] = i;
    block.rows.offsets[++kept] = count;
  }
  block.rows.resize_major(kept);
  block.ids.resize(kept);
}

// Whether rows are dense enough for panels, and positive (so that "reached" is "sum > 0").
bool worth_dense(const ActiveRows& a, Index neurons, double threshold) {
  if (static_cast<double>(a.rows.nnz()) < threshold * static_cast<double>(a.rows.rows()) * neurons) return false;
  for (Offset p = 0; p < a.rows.nnz(); ++p)
    if (!(a.rows.values[p] > 0.0f)) return false;
  return true;
}

InferenceResult infer_data_parallel(const Network& network, const CsrMatrix& input, const EngineOptions& options) {
  const Index rows = input.rows(), neurons = neurons_of(network, input);
  const Index block_rows = std::max<Index>(1, options.block_rows);
  const Index blocks = (rows + block_rows - 1) / block_rows;
  std::vector<ActiveRows> results(blocks);
  ProgressMeter meter(options, rows);
  bool dense_allowed = options.dense_threshold <= 1.0;
  for (const Layer& layer : network) dense_allowed = dense_allowed && layer.weights_csc.cols() == neurons;
  std::uint64_t active = 0;
#pragma omp parallel num_threads(options.threads) reduction(+ : active)
  {
    ActiveRows current, next;
    LeftMultiplier left(neurons);
    DenseRows panels, next_panels;
    DenseMultiplier dense;
    RightMultiplier right(block_rows);
    CscMatrix current_csc, next_csc;
#pragma omp for schedule(dynamic, 1)
    for (Index b = 0; b < blocks; ++b) {
      const Index first = b * block_rows, last = std::min(rows, first + block_rows);
      load_block(input, first, last, current);
      if (options.format == Format::csr) {
        bool in_panels = false;
        Offset panel_nonzeros = 0;
        for (const Layer& layer : network) {
          if (!in_panels) {
            if (current.rows.rows() == 0) break;
            if (dense_allowed && worth_dense(current, neurons, options.dense_threshold)) {
              panel_nonzeros = current.rows.nnz();
              to_dense(current, neurons, panels);
              in_panels = true;
            }
          }
          if (in_panels) {
            if (panels.rows() == 0) break;
            active += panel_nonzeros;
            dense.multiply(panels, layer.weights_csc, layer.bias.data(), next_panels);
            std::swap(panels, next_panels);
            panel_nonzeros = dense.last_nonzeros();
            if (static_cast<double>(panel_nonzeros) <
                0.25 * options.dense_threshold * static_cast<double>(panels.rows()) * neurons) {
              to_sparse(panels, current);
              in_panels = false;
            }
          } else {
            active += current.rows.nnz();
            left.multiply(current, layer.weights_csr, layer.bias.data(), next);
            std::swap(current, next);
          }
        }
        if (in_panels) to_sparse(panels, current);
        results[b].rows = current.rows.clone();
        results[b].ids = current.ids;
      } else {
        current_csc = to_csc(current.rows);  // local rows 0..alive-1, ids in current.ids
        for (const Layer& layer : network) {
          if (current_csc.nnz() == 0) break;
          active += current_csc.nnz();
          right.multiply(current_csc, layer.weights_csc, layer.bias.data(), next_csc);
          std::swap(current_csc, next_csc);
        }
        results[b].rows = to_csr(current_csc);
        results[b].ids = current.ids;
      }
      meter.advance(last - first, "rows through all layers");
    }
  }
  InferenceResult result;
  result.activations = assemble(rows, neurons, results);
  result.active_nonzeros = active;
  return result;
}

InferenceResult infer_model_parallel(const Network& network, const CsrMatrix& input, const EngineOptions& options) {
  const Index rows = input.rows(), neurons = neurons_of(network, input);
  CscMatrix current = to_csc(input), next(rows, neurons), staging(rows, neurons);
  std::vector<Offset> sizes(neurons), bound_start(neurons + 1), kept(neurons);
  ProgressMeter meter(options, network.size());
  std::uint64_t active = 0;
  constexpr int kColumnChunk = 16;
#pragma omp parallel num_threads(options.threads)
  {
    RightMultiplier right(rows);
    for (std::size_t l = 0; l < network.size(); ++l) {
      const Layer& layer = network[l];
      if (current.nnz() == 0) break;  // the same decision on every thread: current changes only in a single
#pragma omp for schedule(dynamic, kColumnChunk)
      for (Index j = 0; j < neurons; ++j) right.symbolic(current, layer.weights_csc, j, j + 1, sizes.data());
#pragma omp single
      {
        active += current.nnz();
        bound_start[0] = 0;
        for (Index j = 0; j < neurons; ++j) bound_start[j + 1] = bound_start[j] + sizes[j];
        staging.reserve_nonzeros(bound_start[neurons]);
      }
#pragma omp for schedule(dynamic, kColumnChunk)
      for (Index j = 0; j < neurons; ++j)
        right.numeric(current, layer.weights_csc, layer.bias.data(), j, j + 1, bound_start[j],
                      staging.indices.data(), staging.values.data(), kept.data());
#pragma omp single
      {
        next.reset(rows, neurons);
        for (Index j = 0; j < neurons; ++j) next.offsets[j + 1] = next.offsets[j] + kept[j];
        next.reserve_nonzeros(next.nnz());
      }
#pragma omp for schedule(static)
      for (Index j = 0; j < neurons; ++j) {
        if (kept[j] == 0) continue;  // next's buffers may be empty (null): memcpy must not see them
        std::memcpy(next.indices.data() + next.offsets[j], staging.indices.data() + bound_start[j], kept[j] * sizeof(Index));
        std::memcpy(next.values.data() + next.offsets[j], staging.values.data() + bound_start[j], kept[j] * sizeof(Value));
      }
#pragma omp single
      {
        std::swap(current, next);
        meter.advance(1, "layers");
      }
    }
  }
  InferenceResult result;
  result.activations = to_csr(current);
  result.active_nonzeros = active;
  return result;
}

}  // namespace

InferenceResult infer(const Network& network, const CsrMatrix& input, const EngineOptions& options) {
  check_combination(options.format, options.parallel);
  for (const Layer& layer : network) {
    const bool missing = options.format == Format::csr ? layer.weights_csr.rows() != input.cols()
                                                       : layer.weights_csc.cols() != input.cols();
    if (missing) throw std::invalid_argument("the network's weights are not prepared in the engine's format");
  }
  if (options.threads < 1) throw std::invalid_argument("the engine needs at least one thread");
  InferenceResult result = options.parallel == Parallelism::data ? infer_data_parallel(network, input, options)
                                                                 : infer_model_parallel(network, input, options);
  if (options.progress) options.progress(1.0, "done");  // also when every row died early
  return result;
}

}  // namespace sdnn
