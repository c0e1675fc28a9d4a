// engine.cpp: data- and model-parallel drivers of the layer kernels over a whole network.
#include "engine.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>

#include "dense_rows.hpp"
#include "panel_handoff.hpp"
#include "reuse.hpp"
#include "thread_failure.hpp"
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
  ThreadFailure failure;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::size_t l = 0; l < network.size(); ++l)
    failure.guard([&] {
      Layer& layer = network[l];
      if (need_csr && layer.weights_csr.rows() == 0 && layer.weights_csc.cols() > 0)
        layer.weights_csr = to_csr(layer.weights_csc);
      if (need_csc && layer.weights_csc.cols() == 0 && layer.weights_csr.rows() > 0)
        layer.weights_csc = to_csc(layer.weights_csr);
      if (layer.weights_csc.cols() > 0 && !layer.has_column_groups())
        group_columns(layer.weights_csc, layer.column_groups);
    });
  failure.rethrow();
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
        // An exception may not leave a critical section: it is caught inside and rethrown after.
        std::exception_ptr thrown;
#pragma omp critical(sdnn_progress)
        try {
          options_.progress(static_cast<double>(done) / static_cast<double>(total_), label);
        } catch (...) {
          thrown = std::current_exception();
        }
        if (thrown) std::rethrow_exception(thrown);
        break;
      }
  }

 private:
  const EngineOptions& options_;
  std::uint64_t total_;
  std::atomic<std::uint64_t> done_{0};
  std::atomic<int> last_percent_{-1};
};

}  // namespace

CsrMatrix assemble_rows(Index rows, Index cols, const std::vector<ActiveRows>& blocks, bool sort) {
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
  if (sort) y.sort_indices();
  return y;
}

void gather_nonempty_rows(const CsrMatrix& a, Index first, Index last, const Index* ids, ActiveRows& out) {
  out.rows.reset(last - first, a.cols());
  out.ids.resize(last - first);
  Offset count = 0;
  Index kept = 0;
  for (Index i = first; i < last; ++i) {
    const Offset n = a.end(i) - a.begin(i);
    if (n == 0) continue;
    out.rows.reserve_nonzeros(count + n);
    std::copy_n(a.indices.begin() + static_cast<std::ptrdiff_t>(a.begin(i)), n,
                out.rows.indices.begin() + static_cast<std::ptrdiff_t>(count));
    std::copy_n(a.values.begin() + static_cast<std::ptrdiff_t>(a.begin(i)), n,
                out.rows.values.begin() + static_cast<std::ptrdiff_t>(count));
    count += n;
    out.ids[kept] = ids ? ids[i] : i;
    out.rows.offsets[++kept] = count;
  }
  out.rows.resize_major(kept);
  out.ids.resize(kept);
}

namespace {

// Rows of a CSC matrix that hold any entry; all_positive tells whether every value is > 0.
Index csc_alive_rows(const CscMatrix& a, std::vector<char>& mark, bool& all_positive) {
  mark.assign(a.rows(), 0);
  Index alive = 0;
  all_positive = true;
  for (Offset p = 0; p < a.nnz(); ++p) {
    alive += mark[a.indices[p]] == 0;
    mark[a.indices[p]] = 1;
    all_positive = all_positive && a.values[p] > 0.0f;
  }
  return alive;
}

bool dense_enough(Offset nonzeros, Index rows, Index neurons, double threshold) {
  return rows > 0 && static_cast<double>(nonzeros) >= threshold * static_cast<double>(rows) * neurons;
}

bool panels_possible(const Network& network, Index neurons, const EngineOptions& options) {
  bool possible = options.dense_threshold <= 1.0;
  for (const Layer& layer : network) possible = possible && layer.weights_csc.cols() == neurons;
  return possible;
}

// Takes one block of rows through every layer on one thread (data parallelism), with buffers
// of its own that live across blocks and across the calls of an InferenceSession: sparse CSR
// rows (left multiplication) or sparse CSC (right multiplication) while the rows are sparse,
// dense panels once they are dense enough.
class BlockRunner {
 public:
  // layer_groups: each layer's column groups (group_columns), for the dense kernel; shared: with
  // reuse, the rows that blocks in dense panels stand for, for the other blocks.
  BlockRunner(Index neurons, Index block_rows, const EngineOptions& options, bool dense_allowed,
              const std::vector<const ColumnGroups*>& layer_groups, SharedRepresentatives* shared)
      : neurons_(neurons), block_rows_(block_rows), options_(options), dense_allowed_(dense_allowed),
        layer_groups_(layer_groups), left_(neurons), right_(block_rows), panel_reuse_(shared) {}

  // Before each call of a session: this call's figures start from zero, and with reuse its
  // blocks in panels share their rows through `shared` (null without it); without reuse, its
  // blocks in panels give rows to idle threads through `handoff` (null: they do not).
  void start_call(std::size_t layers, SharedRepresentatives* shared, PanelHandoff* handoff) {
    layer_nonzeros.assign(layers, 0);
    layer_seconds.assign(layers, 0.0);
    if (options_.reuse) layer_rows.assign(layers, 0);
    panel_reuse_.attach(shared);
    handoff_ = options_.reuse ? nullptr : handoff;
  }

  std::vector<std::uint64_t> layer_nonzeros;  // this thread's figures, over the call's blocks
  std::vector<double> layer_seconds;
  std::vector<std::uint64_t> layer_rows;      // with reuse only
  ReuseLog reuse_log;                         // the last block's dropped rows (reuse only)

  // rows: the block's nonempty rows with their ids; on return, the survivors of every layer.
  // Returns the nonzeros multiplied (the sum over layers of nnz of the layer's input).
  std::uint64_t run(const Network& network, ActiveRows& rows) { return run_from(network, 0, false, 0, rows); }

  // With no block left to take: takes rows that other threads' blocks give, or that thin blocks
  // parked and no block took in (PanelHandoff), through their remaining layers until every block
  // is done; after each piece, `finish(rows)` with its surviving rows. Returns the nonzeros
  // multiplied.
  template <class Finish>
  std::uint64_t help(const Network& network, PanelHandoff& handoff, int thread, ActiveRows& rows, Finish&& finish) {
    std::uint64_t active = 0;
    std::size_t layer = 0;
    Offset nonzeros = 0;
    // The buffer lent to the giver gets a whole block's room (on huge pages) first, also when this
    // thread's own blocks never reached panels.
    if (dense_allowed_) reserve_panels();
    while (handoff.wait(thread, panels_, layer, nonzeros)) {
      struct Done {  // every piece taken is done, also when it fails (the others wait for it)
        PanelHandoff& handoff;
        ~Done() { handoff.done(); }
      } done{handoff};
      active += run_from(network, layer, true, nonzeros, rows);
      finish(rows);
    }
    return active;
  }

 private:
  // Layers [first_layer, end) of a block: rows (sparse) or panels_ (in_panels, with
  // panel_nonzeros entries); on return, rows holds the survivors.
  std::uint64_t run_from(const Network& network, std::size_t first_layer, bool in_panels, Offset panel_nonzeros,
                         ActiveRows& rows) {
    const bool csr = options_.format == Format::csr;
    std::uint64_t active = 0;
    if (!csr && !in_panels) csc_ = to_csc(rows.rows);  // local row r is rows.ids[r]
    layer_nonzeros.resize(network.size(), 0);
    layer_seconds.resize(network.size(), 0.0);
    reuse_log.clear();
    panel_reuse_.start_block();
    if (options_.reuse) layer_rows.resize(network.size(), 0);
    ReuseSchedule schedule;
    for (std::size_t l = first_layer; l < network.size(); ++l) {
      const Layer& layer = network[l];
      const double start = omp_get_wtime();
      const std::uint64_t active_before = active;
      if (!in_panels) {
        const Offset nonzeros = csr ? rows.rows.nnz() : csc_.nnz();
        if (nonzeros == 0) break;
        if (dense_allowed_ && enter_panels(csr, rows)) {
          in_panels = true;
          panel_nonzeros = nonzeros;
          schedule.soon();
        }
      }
      if (options_.reuse)
        layer_rows[l] += reuse_before_layer(l, csr, in_panels, rows, panel_nonzeros, schedule, network.size() - l);
      if (in_panels) {
        if (panels_.rows() == 0) break;
        active += panel_nonzeros;
        dense_.multiply(panels_, layer.weights_csc, layer.bias.data(), next_panels_, layer_groups_[l]);
        std::swap(panels_, next_panels_);
        panel_nonzeros = dense_.last_nonzeros();
        if (handoff_ && l + 1 < network.size()) {
          // Rows other blocks parked at the next layer join these; half the panels go to a
          // waiting thread; a last panel waits for a later block (the rows then leave: the
          // block's rows are empty from here on).
          const Index computed_rows = panels_.rows();  // rows after these were taken in
          if (handoff_->any_parked()) panel_nonzeros += handoff_->absorb(l + 1, panels_);
          if (panels_.panels() >= 2) {
            if (handoff_->wanted()) panel_nonzeros -= give_half(l + 1, computed_rows);
          } else if (panels_.rows() > 0 && handoff_->blocks_unstarted()) {
            handoff_->park(panels_, panel_nonzeros, l + 1);
            panel_nonzeros = 0;
          }
        }
        if (!dense_enough(panel_nonzeros, panels_.rows(), neurons_, 0.25 * options_.dense_threshold)) {
          to_sparse(panels_, rows);
          if (!csr) csc_ = to_csc(rows.rows);
          in_panels = false;
        }
      } else if (csr) {
        active += rows.rows.nnz();
        left_.multiply(rows, layer.weights_csr, layer.bias.data(), next_rows_);
        std::swap(rows, next_rows_);
      } else {
        active += csc_.nnz();
        right_.multiply(csc_, layer.weights_csc, layer.bias.data(), next_csc_);
        std::swap(csc_, next_csc_);
      }
      layer_nonzeros[l] += active - active_before;
      layer_seconds[l] += omp_get_wtime() - start;
    }
    if (in_panels) {
      to_sparse(panels_, rows);
    } else if (!csr) {
      rows_from_csc(rows);
    }
    return active;
  }

 public:
  // After run (rows: its result): the categories and checksum of the rows the block dropped.
  void add_reused(const ActiveRows& rows, std::vector<Index>& categories, ExactSum& sum) {
    panel_reuse_.finish_block(reuse_log, rows, categories, sum);
  }

 private:
  // The second half of panels_ (whole panels) to a waiting thread, which takes them on from
  // the next layer; returns the nonzeros given (0 when no thread waits any more). Rows
  // [0, computed_rows) are the layer's output, whose counts the multiplier kept; rows after them
  // were taken in from parked blocks and are counted here.
  Offset give_half(std::size_t next_layer, Index computed_rows) {
    const Index keep = (panels_.panels() + 1) / 2 * kPanelRows;
    Offset given = 0;
    for (Index r = keep; r < panels_.rows(); ++r)
      given += r < computed_rows ? dense_.last_row_nonzeros(r) : panels_.row_nonzeros(r);
    return handoff_->give(panels_, keep, given, next_layer) ? given : 0;
  }

  // Drops repeated rows of the block's current form when the schedule says so; returns the rows
  // the layer will multiply.
  Index reuse_before_layer(std::size_t layer, bool csr, bool in_panels, ActiveRows& rows, Offset& panel_nonzeros,
                           ReuseSchedule& schedule, std::size_t layers_left) {
    const bool look = schedule.due();
    Index dropped = 0, left = 0;
    if (in_panels) {
      Offset dropped_nonzeros = 0;
      dropped = panel_reuse_.deduplicate(layer, look, panels_, reuse_log, dropped_nonzeros);
      panel_nonzeros -= dropped_nonzeros;
      left = panels_.rows();
    } else if (csr) {
      if (look) dropped = deduplicate(rows, reuse_log, signatures_, comparer_);
      left = rows.rows.rows();
    } else {
      if (look) dropped = deduplicate(csc_, rows.ids.data(), reuse_log, signatures_, comparer_);
      bool positive = false;
      left = csc_alive_rows(csc_, mark_, positive);
    }
    if (look) schedule.found(dropped, std::uint64_t{left} + dropped, layers_left);
    return left;
  }
  // rows <- the nonempty rows of csc_, whose local row r is rows.ids[r].
  void rows_from_csc(ActiveRows& rows) {
    const CsrMatrix all = to_csr(csc_);
    ids_ = rows.ids;
    gather_nonempty_rows(all, 0, all.rows(), ids_.data(), rows);
  }
  // Moves the block into panels when it is dense enough and positive.
  bool enter_panels(bool csr, ActiveRows& rows) {
    if (csr) {
      if (!worth_dense(rows.rows, neurons_, options_.dense_threshold)) return false;
    } else {
      bool positive = false;
      const Index alive = csc_alive_rows(csc_, mark_, positive);
      if (!positive || !dense_enough(csc_.nnz(), alive, neurons_, options_.dense_threshold)) return false;
      rows_from_csc(rows);
    }
    reserve_panels();
    to_dense(rows, neurons_, panels_);
    return true;
  }
  // The first block to enter panels gives the two panel buffers room for a whole block, so that
  // a later block with a few more rows does not allocate them again: each new allocation is
  // fresh pages, and a first touch costs more than the copy (1.7 us a page on a KVM guest).
  // Reserved, not touched: a block's rows decide the memory it uses.
  void reserve_panels() {
    if (panels_reserved_) return;
    panels_reserved_ = true;
    const std::size_t panels = static_cast<std::size_t>((block_rows_ + kPanelRows - 1) / kPanelRows);
    const std::size_t whole = panels * kPanelRows * static_cast<std::size_t>(neurons_);
    panels_.panel.reserve(whole);
    next_panels_.panel.reserve(whole);
  }

  Index neurons_;
  Index block_rows_;
  bool panels_reserved_ = false;
  const EngineOptions& options_;
  bool dense_allowed_;
  const std::vector<const ColumnGroups*>& layer_groups_;
  PanelHandoff* handoff_ = nullptr;
  LeftMultiplier left_;
  RightMultiplier right_;
  DenseMultiplier dense_;
  ActiveRows next_rows_;
  CscMatrix csc_, next_csc_;
  DenseRows panels_, next_panels_;
  std::vector<char> mark_;
  std::vector<Index> ids_;
  RowSignatures signatures_;
  RowComparer comparer_;
  PanelReuse panel_reuse_;
};

}  // namespace

// What an InferenceSession keeps from call to call: each thread's runner (its buffers) and its
// block's input buffer, and each layer's column groups for the dense kernel.
struct InferenceSession::State {
  State(const Network& n, const EngineOptions& o) : network(n), options(o) {}
  struct Thread {
    std::unique_ptr<BlockRunner> runner;  // made in the thread's first call
    ActiveRows block;
  };
  const Network& network;
  const EngineOptions options;  // the runners hold a reference to it
  std::vector<Thread> threads = std::vector<Thread>(static_cast<std::size_t>(std::max(1, options.threads)));
  std::vector<const ColumnGroups*> layer_groups;  // data parallelism with dense panels: each layer's (its own, or
                                                 // computed at the start into own_groups)
  std::vector<ColumnGroups> own_groups;
};

namespace {

InferenceResult infer_data_parallel(InferenceSession::State& state, const CsrMatrix& input) {
  const Network& network = state.network;
  const EngineOptions& options = state.options;
  const Index rows = input.rows(), neurons = neurons_of(network, input);
  const Index block_rows = options.block_rows > 0 ? options.block_rows : automatic_block_rows(rows, options.threads);
  const Index blocks = (rows + block_rows - 1) / block_rows;
  std::vector<ActiveRows> results(blocks);
  ProgressMeter meter(options, rows);
  const bool dense_allowed = panels_possible(network, neurons, options);
  std::uint64_t active = 0;
  InferenceResult result;
  result.layer_nonzeros.assign(network.size(), 0);
  result.layer_seconds.assign(network.size(), 0.0);
  if (options.reuse) result.layer_rows.assign(network.size(), 0);
  // Each block's checksum and surviving rows, taken as it finishes: the whole run's categories
  // and checksum whether or not its rows are kept.
  std::vector<ExactSum> block_sums(blocks, 0);
  std::vector<std::vector<Index>> block_categories(blocks);
  ThreadFailure failure;
  // With reuse, blocks in dense panels also drop rows that other blocks of the call compute.
  std::unique_ptr<SharedRepresentatives> shared;
  if (options.reuse && dense_allowed) shared = std::make_unique<SharedRepresentatives>(network.size());
  const std::vector<const ColumnGroups*>& layer_groups = state.layer_groups;
  if (dense_allowed && layer_groups.size() != network.size())
    throw std::logic_error("infer: the session has no column groups for the dense kernel");
  // A thread with no block left to take helps the last ones (they give it half their panels) and
  // takes the rows of thin blocks that no later block took in.
  PanelHandoff handoff(options.threads, blocks);
  std::vector<ActiveRows> piece_results;  // the rows of the pieces given (with keep_activations)
  std::vector<Index> piece_categories;
  ExactSum piece_sum = 0;
#pragma omp parallel num_threads(options.threads) reduction(+ : active)
  {
    const int thread = omp_get_thread_num();
    InferenceSession::State::Thread& mine = state.threads[static_cast<std::size_t>(thread)];
    if (!mine.runner)
      mine.runner = std::make_unique<BlockRunner>(neurons, std::min(block_rows, std::max<Index>(rows, 1)), options,
                                                  dense_allowed, layer_groups, nullptr);
    BlockRunner& runner = *mine.runner;
    runner.start_call(network.size(), shared.get(), &handoff);
    ActiveRows& block = mine.block;
#pragma omp for schedule(dynamic, 1) nowait
    for (Index b = 0; b < blocks; ++b) {
      if (!failure.failed())
        failure.guard([&] {
          handoff.block_started();
          const Index first = b * block_rows, last = std::min(rows, first + block_rows);
          gather_nonempty_rows(input, first, last, nullptr, block);
          active += runner.run(network, block);
          if (options.final_results || options.reuse) {  // reuse resolves its rows' results across blocks
            block_sums[b] = exact_sum_of(block.rows);
            for (Index r = 0; r < block.rows.rows(); ++r)
              if (block.rows.end(r) > block.rows.begin(r)) block_categories[b].push_back(block.ids[r]);
          }
          runner.add_reused(block, block_categories[b], block_sums[b]);
          if (options.keep_activations) {
            results[b].rows = block.rows.clone();
            results[b].ids = block.ids;
            expand_rows(runner.reuse_log, results[b]);
          }
          meter.advance(last - first, "rows through all layers");
        });
      handoff.done();
    }
    // The pieces this thread took, their results as a block's (no reuse: nothing to expand).
    std::vector<ActiveRows> my_pieces;
    std::vector<Index> my_categories;
    ExactSum my_sum = 0;
    failure.guard([&] {
      active += runner.help(network, handoff, thread, block, [&](const ActiveRows& piece) {
        if (options.final_results) {
          my_sum += exact_sum_of(piece.rows);
          for (Index r = 0; r < piece.rows.rows(); ++r)
            if (piece.rows.end(r) > piece.rows.begin(r)) my_categories.push_back(piece.ids[r]);
        }
        if (options.keep_activations) my_pieces.push_back({piece.rows.clone(), piece.ids});
      });
    });
#pragma omp critical(sdnn_layer_figures)
    {
      for (std::size_t l = 0; l < runner.layer_seconds.size(); ++l) {
        result.layer_nonzeros[l] += runner.layer_nonzeros[l];
        result.layer_seconds[l] += runner.layer_seconds[l];
        if (options.reuse) result.layer_rows[l] += runner.layer_rows[l];
      }
      for (ActiveRows& piece : my_pieces) piece_results.push_back(std::move(piece));
      piece_categories.insert(piece_categories.end(), my_categories.begin(), my_categories.end());
      piece_sum += my_sum;
    }
  }
  result.panel_handoffs = handoff.handoffs();
  result.panel_parks = handoff.parked();
  result.exact_sum += piece_sum;
  result.categories = std::move(piece_categories);
  for (ActiveRows& piece : piece_results) results.push_back(std::move(piece));
  failure.rethrow();
  for (Index b = 0; b < blocks; ++b) {
    result.exact_sum += block_sums[b];
    result.categories.insert(result.categories.end(), block_categories[b].begin(), block_categories[b].end());
  }
  ReuseLog copies;  // rows whose holder was in another block
  if (shared) shared->resolve(result.categories, result.exact_sum, copies);
  std::sort(result.categories.begin(), result.categories.end());
  if (options.keep_activations) {
    result.activations = assemble_rows(rows, neurons, results, options.final_results);
    expand_matrix(copies, result.activations);
  }
  result.active_nonzeros = active;
  return result;
}

CsrMatrix rows_to_matrix(Index rows, Index neurons, const DenseRows& panels) {
  std::vector<ActiveRows> one(1);
  to_sparse(panels, one[0]);
  return assemble_rows(rows, neurons, one);
}

// Model parallelism: all rows in one CSC matrix; each layer's output columns are split between
// the threads (symbolic, one prefix sum, numeric into a staging buffer, compaction). Once the
// alive rows are dense enough they move to panels, whose output columns are split the same way.
InferenceResult infer_model_parallel(const Network& network, const CsrMatrix& input, const EngineOptions& options) {
  const Index rows = input.rows(), neurons = neurons_of(network, input);
  CscMatrix current = to_csc(input), next(rows, neurons), staging(rows, neurons);
  std::vector<Offset> sizes(neurons), bound_start(neurons + 1), kept(neurons);
  ProgressMeter meter(options, network.size());
  const bool dense_allowed = panels_possible(network, neurons, options);
  bool in_panels = false;
  DenseRows panels, computed;
  WideOperands wide;  // panels and weights in double, once per layer for every thread
  std::vector<std::uint32_t> row_nonzeros;
  std::vector<char> mark;
  Offset panel_nonzeros = 0;
  std::uint64_t active = 0;
  InferenceResult result;
  result.layer_nonzeros.assign(network.size(), 0);
  result.layer_seconds.assign(network.size(), 0.0);
  if (options.reuse) result.layer_rows.assign(network.size(), 0);
  ReuseLog reuse_log;
  ReuseSchedule schedule;
  RowSignatures signatures;
  RowComparer comparer;
  double layer_start = 0;
  ThreadFailure failure;  // set inside a single, read by every thread after its barrier
  constexpr Index kColumnChunk = 16;
#pragma omp parallel num_threads(options.threads)
  {
    RightMultiplier right(rows);
    std::vector<std::uint32_t> my_row_nonzeros;
    for (std::size_t l = 0; l < network.size(); ++l) {
      const Layer& layer = network[l];
#pragma omp single
      failure.guard([&] {
        layer_start = omp_get_wtime();
        if (!options.reuse) return;
        // Repeated rows are dropped before the layer (on one thread), and the rest counted.
        const bool look = schedule.due();
        Index dropped = 0;
        if (in_panels) {
          Offset dropped_nonzeros = 0;
          if (look) dropped = deduplicate(panels, reuse_log, signatures, dropped_nonzeros);
          panel_nonzeros -= dropped_nonzeros;
          result.layer_rows[l] = panels.rows();
        } else {
          if (look) dropped = deduplicate(current, nullptr, reuse_log, signatures, comparer);
          bool positive = false;
          result.layer_rows[l] = csc_alive_rows(current, mark, positive);
        }
        if (look) schedule.found(dropped, result.layer_rows[l] + dropped, network.size() - l);
      });
      // Every decision reads state that changes only inside a single (ended by its barrier), so
      // all threads take the same branch.
      if (failure.failed() || (in_panels ? panels.rows() == 0 : current.nnz() == 0)) break;
      if (in_panels) {
#pragma omp single
        failure.guard([&] {
          active += panel_nonzeros;
          result.layer_nonzeros[l] = panel_nonzeros;
          prepare_panel_output(panels, computed);
          widen_operands(panels, layer.weights_csc, wide, layer.prepared_column_groups());
          row_nonzeros.assign(static_cast<std::size_t>(panels.panels()) * kPanelRows, 0);
        });
        if (failure.failed()) break;  // every thread: the single ended with a barrier
        my_row_nonzeros.assign(row_nonzeros.size(), 0);
#pragma omp for schedule(dynamic, 1) nowait
        for (Index j = 0; j < neurons; j += kColumnChunk)
          multiply_panel_share(panels, wide, layer.weights_csc, layer.bias.data(), j,
                               std::min(neurons, j + kColumnChunk), computed, my_row_nonzeros.data());
#pragma omp critical(sdnn_alive)
        for (std::size_t r = 0; r < row_nonzeros.size(); ++r) row_nonzeros[r] += my_row_nonzeros[r];
#pragma omp barrier
#pragma omp single
        failure.guard([&] {
          panel_nonzeros = keep_alive_rows(computed, row_nonzeros.data(), panels);
          if (!dense_enough(panel_nonzeros, panels.rows(), neurons, 0.25 * options.dense_threshold)) {
            current = to_csc(rows_to_matrix(rows, neurons, panels));
            in_panels = false;
          }
          result.layer_seconds[l] = omp_get_wtime() - layer_start;
          meter.advance(1, "layers");
        });
        if (failure.failed()) break;  // every thread: the single ended with a barrier
        continue;
      }
#pragma omp for schedule(dynamic, kColumnChunk)
      for (Index j = 0; j < neurons; ++j) right.symbolic(current, layer.weights_csc, j, j + 1, sizes.data());
#pragma omp single
      failure.guard([&] {
        active += current.nnz();
        result.layer_nonzeros[l] = current.nnz();
        bound_start[0] = 0;
        for (Index j = 0; j < neurons; ++j) bound_start[j + 1] = bound_start[j] + sizes[j];
        staging.reserve_nonzeros(bound_start[neurons]);
      });
      if (failure.failed()) break;  // every thread: the single ended with a barrier
#pragma omp for schedule(dynamic, kColumnChunk)
      for (Index j = 0; j < neurons; ++j)
        right.numeric(current, layer.weights_csc, layer.bias.data(), j, j + 1, bound_start[j],
                      staging.indices.data(), staging.values.data(), kept.data());
#pragma omp single
      failure.guard([&] {
        next.reset(rows, neurons);
        for (Index j = 0; j < neurons; ++j) next.offsets[j + 1] = next.offsets[j] + kept[j];
        next.reserve_nonzeros(next.nnz());
      });
      if (failure.failed()) break;  // every thread: the single ended with a barrier
#pragma omp for schedule(static)
      for (Index j = 0; j < neurons; ++j) {
        if (kept[j] == 0) continue;  // next's buffers may be empty (null): memcpy must not see them
        std::memcpy(next.indices.data() + next.offsets[j], staging.indices.data() + bound_start[j],
                    kept[j] * sizeof(Index));
        std::memcpy(next.values.data() + next.offsets[j], staging.values.data() + bound_start[j],
                    kept[j] * sizeof(Value));
      }
#pragma omp single
      failure.guard([&] {
        std::swap(current, next);
        result.layer_seconds[l] = omp_get_wtime() - layer_start;
        meter.advance(1, "layers");
        bool positive = false;
        const Index alive_rows = dense_allowed ? csc_alive_rows(current, mark, positive) : 0;
        if (dense_allowed && positive && dense_enough(current.nnz(), alive_rows, neurons, options.dense_threshold)) {
          ActiveRows survivors;
          gather_nonempty_rows(to_csr(current), 0, rows, nullptr, survivors);
          panel_nonzeros = current.nnz();
          to_dense(survivors, neurons, panels);
          in_panels = true;
          schedule.soon();
        }
      });
      if (failure.failed()) break;  // every thread: the single ended with a barrier
    }
  }
  failure.rethrow();
  result.activations = in_panels ? rows_to_matrix(rows, neurons, panels) : to_csr(current);
  expand_matrix(reuse_log, result.activations);
  result.active_nonzeros = active;
  return result;
}

}  // namespace

// Blocks large enough that their saturated survivors fill several panels (the panel kernel
// serves up to four at once), small enough for about eight blocks per thread.
Index automatic_block_rows(Index rows, int threads) {
  const Index share = rows / static_cast<Index>(8 * std::max(1, threads));
  return std::clamp<Index>(share, 256, 2048);
}

InferenceSession::InferenceSession(const Network& network, const EngineOptions& options)
    : state_(std::make_unique<State>(network, options)) {
  check_combination(options.format, options.parallel);
  if (options.threads < 1) throw std::invalid_argument("the engine needs at least one thread");
  // Each layer's column groups for the dense kernel: the layer's own (prepare_weights), else
  // computed here once for all blocks of all calls, before the first (a pipeline stage computes
  // them while it waits for its first block).
  const Index neurons = network.empty() ? 0 : static_cast<Index>(network.front().bias.size());
  if (options.parallel != Parallelism::data || !panels_possible(network, neurons, options)) return;
  State& state = *state_;
  state.layer_groups.resize(network.size());
  state.own_groups.resize(network.size());
  ThreadFailure failure;
#pragma omp parallel for num_threads(options.threads) schedule(dynamic, 4)
  for (std::size_t l = 0; l < network.size(); ++l)
    failure.guard([&] {
      state.layer_groups[l] = network[l].prepared_column_groups();
      if (!state.layer_groups[l]) {
        group_columns(network[l].weights_csc, state.own_groups[l]);
        state.layer_groups[l] = &state.own_groups[l];
      }
    });
  failure.rethrow();
}

InferenceSession::~InferenceSession() = default;

InferenceResult InferenceSession::run(const CsrMatrix& input) {
  const Network& network = state_->network;
  const EngineOptions& options = state_->options;
  for (const Layer& layer : network) {
    const bool missing = options.format == Format::csr ? layer.weights_csr.rows() != input.cols()
                                                       : layer.weights_csc.cols() != input.cols();
    if (missing) throw std::invalid_argument("the network's weights are not prepared in the engine's format");
  }
  InferenceResult result = options.parallel == Parallelism::data ? infer_data_parallel(*state_, input)
                                                                 : infer_model_parallel(network, input, options);
  if (options.parallel == Parallelism::model) {
    result.categories = categories_of(result.activations);
    result.exact_sum = exact_sum_of(result.activations);
  }
  if (options.progress) options.progress(1.0, "done");  // also when every row died early
  return result;
}

InferenceResult infer(const Network& network, const CsrMatrix& input, const EngineOptions& options) {
  return InferenceSession(network, options).run(input);
}

}  // namespace sdnn
