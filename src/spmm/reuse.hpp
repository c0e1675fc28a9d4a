// reuse.hpp: exact computation reuse. A row's future depends only on its entries, so rows with
// identical entries (same columns, same float bits) have identical futures: one representative is
// computed and the others are dropped from the work, each recorded with the row that now stands
// for it. At the end every dropped row's result is its final representative's (a chain of
// representatives is followed), which keeps categories, the exact checksum and the activations
// exactly as without reuse, for any network, bias and input. No MPI here.
//
// Detection: a row's signature is its entry count and the sum (mod 2^64) of a hash of each of its
// entries (column and value bits), so it does not depend on the order of the entries, nor on how
// the columns are split (the data x model strategy adds the partial signatures of a row group's
// ranks). Rows with equal signatures are only candidates: every candidate pair is compared entry
// by entry before a row is dropped, never trusted on the hash alone. The entry hash can be
// replaced (set_entry_hash_for_tests) to force collisions.
//
// ReuseSchedule decides when to look: after every layer while looking pays, backing off (every
// 2, 4, 8 layers) while it finds nothing.
//
// Across blocks (data parallelism): SharedRepresentatives is a table, shared by the threads, of
// rows in dense panels that stand for other rows of their block, published per layer; a block
// whose row has a published row's entries before the same layer drops it for that row (a hash,
// then an entry-by-entry check), and the block's results are completed from the other blocks'
// once every block has finished (SharedRepresentatives::resolve).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "dense_rows.hpp"
#include "reference.hpp"
#include "sparse_matrix.hpp"
#include "spmm.hpp"

namespace sdnn {

using EntryHash = std::uint64_t (*)(Index column, Value value);
std::uint64_t default_entry_hash(Index column, Value value);
// Test hook: replaces the entry hash for the whole process (nullptr restores the default).
void set_entry_hash_for_tests(EntryHash hash);

// Per row: entry count and order-free hash. Rows with no entry have count 0 and are never
// candidates.
struct RowSignatures {
  std::vector<std::uint64_t> hash;
  std::vector<std::uint64_t> count;
  Index rows() const { return static_cast<Index>(hash.size()); }
};
void signatures_of(const CsrMatrix& rows, RowSignatures& out);
// column_base: the global number of the matrix's column 0 (for a rank's column block).
void signatures_of(const CscMatrix& block, Index column_base, RowSignatures& out);
void signatures_of(const DenseRows& rows, RowSignatures& out, Index column_base = 0);

// representative[r] = r for a row kept, else an earlier row with identical entries (confirmed by
// same(a, r), which is asked only of rows with equal signatures). Returns the rows dropped.
Index find_repeats(const RowSignatures& signatures, const std::function<bool(Index, Index)>& same,
                   std::vector<Index>& representative);
// For callers that check candidates elsewhere (several ranks hold parts of each row): each row
// whose signature an earlier row has, paired with the first such row, (row, first).
std::vector<std::pair<Index, Index>> candidate_pairs(const RowSignatures& signatures);

// Entry-by-entry equality of two rows of a CSR matrix whatever the order of their entries.
class RowComparer {
 public:
  bool same(const CsrMatrix& m, Index a, Index b);

 private:
  std::vector<Value> values_;
  std::vector<std::uint32_t> stamps_;
  std::uint32_t stamp_ = 0;
};
bool same_dense_rows(const DenseRows& rows, Index a, Index b);

// The rows one holder (a block, a rank's row group) dropped, in order: (dropped id, kept id).
class ReuseLog {
 public:
  void record(Index dropped, Index kept) { pairs_.emplace_back(dropped, kept); }
  bool empty() const { return pairs_.empty(); }
  std::size_t size() const { return pairs_.size(); }
  void clear() { pairs_.clear(); }
  const std::vector<std::pair<Index, Index>>& pairs() const { return pairs_; }
  // (dropped id, id of the row that holds its result at the end), chains followed.
  std::vector<std::pair<Index, Index>> final_holders() const;

 private:
  std::vector<std::pair<Index, Index>> pairs_;
};

// Drops the rows whose representative is not themselves, recording them in the log (ids in the
// caller's numbering; ids null: a row's id is its number). Return the rows dropped.
Index drop_repeats(ActiveRows& rows, const std::vector<Index>& representative, ReuseLog& log);
Index drop_repeats(DenseRows& rows, const std::vector<Index>& representative, ReuseLog& log);  // in place
// CSC: a dropped row's entries are removed; the row stays, empty.
Index drop_repeats(CscMatrix& rows, const std::vector<Index>& representative, const Index* ids, ReuseLog& log);
// Removes the entries of the rows marked in `dropped` (one flag per row) from a CSC matrix.
void remove_rows(CscMatrix& rows, const std::vector<char>& dropped);

// Looks for repeats among the rows and drops them; returns the rows dropped.
Index deduplicate(ActiveRows& rows, ReuseLog& log, RowSignatures& signatures, RowComparer& comparer);
// Dense: dropped_nonzeros receives the entries of the rows dropped.
Index deduplicate(DenseRows& rows, ReuseLog& log, RowSignatures& signatures, Offset& dropped_nonzeros);
Index deduplicate(CscMatrix& rows, const Index* ids, ReuseLog& log, RowSignatures& signatures, RowComparer& comparer);

// The results of the dropped rows from their final holders:
// - expand_rows adds to `rows` (ids: final ids) a copy of the holder's row for each dropped row
//   whose holder survived;
// - expand_matrix copies, in a matrix of every id (row i is id i), the holder's row into each
//   dropped row (which must be empty), in place;
// - add_reused_results adds to categories and sum what expand_rows would add, without the copies.
void expand_rows(const ReuseLog& log, ActiveRows& rows);
void expand_matrix(const ReuseLog& log, CsrMatrix& all);
void add_reused_results(const ReuseLog& log, const ActiveRows& rows, std::vector<Index>& categories, ExactSum& sum);

// When to look for repeats: layer 0 (the input) and after every layer while looking pays. A look
// costs about a quarter of a layer's work on the rows looked at (kLookCost); it pays when the rows
// it drops would have cost more over the layers left: dropped x layers_left >= rows x kLookCost.
// Each look that does not pay doubles the gap to the next, up to kMaxGap layers, so that a
// problem without repeats pays for a look every kMaxGap layers only.
class ReuseSchedule {
 public:
  static constexpr int kMaxGap = 8;
  static constexpr double kLookCost = 0.25;
  bool due() { return --wait_ <= 0; }
  // After a look: `dropped` of `rows` rows were dropped, `layers_left` layers remain.
  void found(std::uint64_t dropped, std::uint64_t rows, std::size_t layers_left) {
    const bool paid = dropped > 0 && static_cast<double>(dropped) * static_cast<double>(layers_left) >=
                                         kLookCost * static_cast<double>(rows);
    gap_ = paid ? 1 : std::min(kMaxGap, 2 * gap_);
    wait_ = gap_;
  }
  // Looks at the next chance (e.g. when rows move to dense panels).
  void soon() { wait_ = 0; }

 private:
  int gap_ = 1, wait_ = 0;
};

// Reuse across the blocks of data parallelism, shared by the threads. Only rows in dense panels
// that stand for at least one other row of their block are published (rows repeated in one
// block are the ones likely repeated in others), one copy of the row per layer, up to a memory
// budget; any row of a block in panels is looked up. Rows are keyed by their layer: the same
// entries before different layers have different futures.
class SharedRepresentatives {
 public:
  static constexpr std::size_t kDefaultBudgetValues = std::size_t{32} << 20;  // 128 MiB of copies
  explicit SharedRepresentatives(std::size_t layers, std::size_t budget_values = kDefaultBudgetValues);

  // For row `row` of `rows` (signature hash, count) before layer `layer`: the id of a published
  // row of another block with the same entries, or -1; when there is none and `publish`, the
  // row is published (within the budget).
  std::int64_t match(std::size_t layer, const DenseRows& rows, Index row, std::uint64_t hash, std::uint64_t count,
                     bool publish);

  // After a block: adds to categories and sum the results of its dropped rows whose final holder
  // is among its final rows (as add_reused_results), and keeps the rest, and the results of
  // its published rows, for resolve. published: the ids the block published.
  void finish_block(const ReuseLog& log, const ActiveRows& rows, const std::vector<Index>& published,
                    std::vector<Index>& categories, ExactSum& sum);
  // After every block: the results of the rows whose holder was in another block, added to
  // categories and sum; copies receives (dropped id, id whose final row is its result) for
  // expand_matrix.
  void resolve(std::vector<Index>& categories, ExactSum& sum, ReuseLog& copies);

 private:
  struct Entry {
    Index id;
    std::uint64_t hash, count;
    std::vector<Value> values;  // the row's neurons
  };
  std::mutex mutex_;
  std::vector<std::vector<Entry>> entries_;                                  // per layer
  std::vector<std::unordered_multimap<std::uint64_t, std::size_t>> index_;  // per layer: hash -> entry
  std::size_t budget_values_, used_values_ = 0;
  std::unordered_map<Index, ExactSum> final_sums_;  // published id -> the exact sum of its final row
  std::unordered_map<Index, Index> pending_;        // dropped id -> its holder in another block (or dead)
};

// One thread's side of the reuse in dense panels of data parallelism: the block's repeats (when
// `look`) and, with a shared table, its rows against other blocks' (every row when `look`, and
// its published rows before every layer, so that other blocks find them at any layer).
class PanelReuse {
 public:
  explicit PanelReuse(SharedRepresentatives* shared) : shared_(shared) {}
  void start_block();
  // The table shared with the other blocks from now on (an InferenceSession's next call).
  void attach(SharedRepresentatives* shared) { shared_ = shared; }
  // Drops the repeated rows before layer `layer` (recorded in log); returns the rows dropped,
  // dropped_nonzeros receives their entries.
  Index deduplicate(std::size_t layer, bool look, DenseRows& rows, ReuseLog& log, Offset& dropped_nonzeros);
  // After the block (final rows): its results, as add_reused_results or through the shared table.
  void finish_block(const ReuseLog& log, const ActiveRows& rows, std::vector<Index>& categories, ExactSum& sum);

 private:
  SharedRepresentatives* shared_;
  std::unordered_set<Index> holders_;  // ids of the block that stand for another row
  std::size_t log_seen_ = 0;           // the log's pairs already added to holders_
  std::unordered_set<Index> published_;
  RowSignatures signatures_;
  std::vector<Index> representative_;
};

}  // namespace sdnn
