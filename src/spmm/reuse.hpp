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
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
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
void signatures_of(const DenseRows& rows, RowSignatures& out);

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

}  // namespace sdnn
