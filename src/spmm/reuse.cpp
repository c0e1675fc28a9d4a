// reuse.cpp: exact computation reuse (see reuse.hpp).
#include "reuse.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>
#include <tuple>
#include <unordered_map>

namespace sdnn {
namespace {

std::atomic<EntryHash> replaced_hash{nullptr};

std::uint32_t bits_of(Value v) {
  std::uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// Rows in groups of equal signatures: rows with entries, ordered by (count, hash, row).
std::vector<Index> grouped_rows(const RowSignatures& s) {
  std::vector<Index> order;
  order.reserve(s.rows());
  for (Index r = 0; r < s.rows(); ++r)
    if (s.count[r] > 0) order.push_back(r);
  std::sort(order.begin(), order.end(), [&](Index a, Index b) {
    if (s.count[a] != s.count[b]) return s.count[a] < s.count[b];
    if (s.hash[a] != s.hash[b]) return s.hash[a] < s.hash[b];
    return a < b;
  });
  return order;
}

bool same_signature(const RowSignatures& s, Index a, Index b) {
  return s.count[a] == s.count[b] && s.hash[a] == s.hash[b];
}

}  // namespace

std::uint64_t default_entry_hash(Index column, Value value) {
  // A multiply and a shift (cheap next to the 32 multiply-adds an entry costs in a layer): equal
  // signatures only make candidates, which are checked entry by entry.
  std::uint64_t x = ((std::uint64_t{column} << 32) | bits_of(value)) * 0x9e3779b97f4a7c15ULL;
  return x ^ (x >> 29);
}

void set_entry_hash_for_tests(EntryHash hash) { replaced_hash.store(hash); }

namespace {

// Calls f with the entry hash: the default one inlined, or the one a test put in its place.
template <class F>
void with_entry_hash(F&& f) {
  const EntryHash replaced = replaced_hash.load(std::memory_order_relaxed);
  if (replaced)
    f(replaced);
  else
    f([](Index column, Value value) { return default_entry_hash(column, value); });
}

}  // namespace

void signatures_of(const CsrMatrix& rows, RowSignatures& out) {
  out.hash.assign(rows.rows(), 0);
  out.count.assign(rows.rows(), 0);
  with_entry_hash([&](auto h) {
    for (Index r = 0; r < rows.rows(); ++r) {
      std::uint64_t sum = 0;
      for (Offset p = rows.begin(r); p < rows.end(r); ++p) sum += h(rows.indices[p], rows.values[p]);
      out.hash[r] = sum;
      out.count[r] = rows.end(r) - rows.begin(r);
    }
  });
}

void signatures_of(const CscMatrix& block, Index column_base, RowSignatures& out) {
  out.hash.assign(block.rows(), 0);
  out.count.assign(block.rows(), 0);
  with_entry_hash([&](auto h) {
    for (Index j = 0; j < block.cols(); ++j)
      for (Offset p = block.begin(j); p < block.end(j); ++p) {
        out.hash[block.indices[p]] += h(column_base + j, block.values[p]);
        ++out.count[block.indices[p]];
      }
  });
}

void signatures_of(const DenseRows& rows, RowSignatures& out, Index column_base) {
  out.hash.assign(static_cast<std::size_t>(rows.panels()) * kPanelRows, 0);
  out.count.assign(out.hash.size(), 0);
  const std::size_t panel_size = std::size_t{rows.neurons} * kPanelRows;
  with_entry_hash([&](auto h) {
    // A panel's kPanelRows rows at once, neuron by neuron (contiguous values), in local sums
    // and without branches, so that the compiler can keep them in vector registers.
    for (Index p = 0; p < rows.panels(); ++p) {
      std::uint64_t hash[kPanelRows] = {}, count[kPanelRows] = {};
      const Value* panel = rows.panel.data() + p * panel_size;
      for (Index k = 0; k < rows.neurons; ++k) {
        std::uint32_t bits[kPanelRows];
        std::memcpy(bits, panel + std::size_t{k} * kPanelRows, sizeof bits);
        for (Index r = 0; r < kPanelRows; ++r) {
          Value v;
          std::memcpy(&v, &bits[r], sizeof v);
          const std::uint64_t present = (bits[r] & 0x7fffffffu) != 0;  // +0 and -0 are absent
          hash[r] += h(column_base + k, v) & (0 - present);
          count[r] += present;
        }
      }
      std::copy_n(hash, kPanelRows, out.hash.data() + static_cast<std::size_t>(p) * kPanelRows);
      std::copy_n(count, kPanelRows, out.count.data() + static_cast<std::size_t>(p) * kPanelRows);
    }
  });
  out.hash.resize(rows.rows());  // padding rows dropped
  out.count.resize(rows.rows());
}

Index find_repeats(const RowSignatures& signatures, const std::function<bool(Index, Index)>& same,
                   std::vector<Index>& representative) {
  representative.resize(signatures.rows());
  std::iota(representative.begin(), representative.end(), Index{0});
  const std::vector<Index> order = grouped_rows(signatures);
  Index dropped = 0;
  std::vector<Index> kept;  // the distinct rows of the current group
  for (std::size_t g = 0; g < order.size();) {
    std::size_t end = g + 1;
    while (end < order.size() && same_signature(signatures, order[g], order[end])) ++end;
    kept.clear();
    for (std::size_t i = g; i < end; ++i) {
      const Index r = order[i];
      bool repeat = false;
      for (Index k : kept)
        if (same(k, r)) {
          representative[r] = k;
          repeat = true;
          ++dropped;
          break;
        }
      if (!repeat) kept.push_back(r);
    }
    g = end;
  }
  return dropped;
}

std::vector<std::pair<Index, Index>> candidate_pairs(const RowSignatures& signatures) {
  std::vector<std::pair<Index, Index>> pairs;
  const std::vector<Index> order = grouped_rows(signatures);
  for (std::size_t g = 0; g < order.size();) {
    std::size_t end = g + 1;
    while (end < order.size() && same_signature(signatures, order[g], order[end])) {
      pairs.emplace_back(order[end], order[g]);
      ++end;
    }
    g = end;
  }
  return pairs;
}

bool RowComparer::same(const CsrMatrix& m, Index a, Index b) {
  const Offset count = m.end(a) - m.begin(a);
  if (count != m.end(b) - m.begin(b)) return false;
  if (values_.size() < m.cols()) {
    values_.resize(m.cols());
    stamps_.assign(m.cols(), 0);
    stamp_ = 0;
  }
  if (++stamp_ == 0) {
    std::fill(stamps_.begin(), stamps_.end(), 0);
    stamp_ = 1;
  }
  for (Offset p = m.begin(a); p < m.end(a); ++p) {
    stamps_[m.indices[p]] = stamp_;
    values_[m.indices[p]] = m.values[p];
  }
  for (Offset p = m.begin(b); p < m.end(b); ++p) {
    const Index j = m.indices[p];
    if (stamps_[j] != stamp_ || bits_of(values_[j]) != bits_of(m.values[p])) return false;
  }
  return true;  // as many entries, each of b's columns among a's (columns within a row are distinct)
}

bool same_dense_rows(const DenseRows& rows, Index a, Index b) {
  const std::size_t panel_size = std::size_t{rows.neurons} * kPanelRows;
  const Value* x = rows.panel.data() + (a / kPanelRows) * panel_size + a % kPanelRows;
  const Value* y = rows.panel.data() + (b / kPanelRows) * panel_size + b % kPanelRows;
  for (Index k = 0; k < rows.neurons; ++k)
    if (bits_of(x[std::size_t{k} * kPanelRows]) != bits_of(y[std::size_t{k} * kPanelRows])) return false;
  return true;
}

std::vector<std::pair<Index, Index>> ReuseLog::final_holders() const {
  // A row is dropped at most once and a holder is never dropped, so walking the log backwards,
  // a kept row dropped later already has its final holder.
  std::unordered_map<Index, Index> holder;
  holder.reserve(pairs_.size());
  std::vector<std::pair<Index, Index>> out;
  out.reserve(pairs_.size());
  for (auto it = pairs_.rbegin(); it != pairs_.rend(); ++it) {
    const auto found = holder.find(it->second);
    const Index h = found == holder.end() ? it->second : found->second;
    holder[it->first] = h;
    out.emplace_back(it->first, h);
  }
  return out;
}

Index drop_repeats(ActiveRows& rows, const std::vector<Index>& representative, ReuseLog& log) {
  CsrMatrix& m = rows.rows;
  for (Index r = 0; r < m.rows(); ++r)  // before the compaction moves the ids
    if (representative[r] != r) log.record(rows.ids[r], rows.ids[representative[r]]);
  Index kept = 0;
  Offset at = 0;
  for (Index r = 0; r < m.rows(); ++r) {
    const Offset from = m.begin(r), count = m.end(r) - from;
    if (representative[r] != r) continue;
    if (at != from) {
      std::memmove(m.indices.data() + at, m.indices.data() + from, count * sizeof(Index));
      std::memmove(m.values.data() + at, m.values.data() + from, count * sizeof(Value));
    }
    at += count;
    rows.ids[kept] = rows.ids[r];
    m.offsets[++kept] = at;  // offsets[r + 1] was read above (kept <= r)
  }
  const Index dropped = m.rows() - kept;
  m.resize_major(kept);
  rows.ids.resize(kept);
  return dropped;
}

namespace {

// Removes the rows of panels for which drop(r) holds, in place: each kept row moves to the next
// free place (never after itself); only the rows after the first dropped one move, and the
// padding of the last panel is cleared. Returns the rows dropped.
template <class Drop>
Index compact_panels(DenseRows& rows, Drop&& drop) {
  const std::size_t panel_size = std::size_t{rows.neurons} * kPanelRows;
  Index kept = 0;
  for (Index r = 0; r < rows.rows(); ++r) {
    if (drop(r)) continue;
    if (kept != r) {
      copy_panel_row(rows.row_start(r), rows.row_start(kept), rows.neurons);
      rows.ids[kept] = rows.ids[r];
    }
    ++kept;
  }
  const Index dropped = rows.rows() - kept;
  rows.ids.resize(kept);
  rows.panel.resize(static_cast<std::size_t>(rows.panels()) * panel_size);
  for (Index r = kept; r < rows.panels() * kPanelRows; ++r) clear_panel_row(rows.row_start(r), rows.neurons);
  return dropped;
}

// The signature of one row of panels, the same as signatures_of(DenseRows) gives it.
std::pair<std::uint64_t, std::uint64_t> panel_row_signature(const DenseRows& rows, Index r) {
  const Value* x = rows.row_start(r);
  std::uint64_t hash = 0, count = 0;
  with_entry_hash([&](auto h) {
    for (Index k = 0; k < rows.neurons; ++k) {
      const Value v = x[std::size_t{k} * kPanelRows];
      if ((bits_of(v) & 0x7fffffffu) == 0) continue;  // +0 and -0 are absent
      hash += h(k, v);
      ++count;
    }
  });
  return {hash, count};
}

}  // namespace

Index drop_repeats(DenseRows& rows, const std::vector<Index>& representative, ReuseLog& log) {
  for (Index r = 0; r < rows.rows(); ++r)  // before the compaction moves the ids
    if (representative[r] != r) log.record(rows.ids[r], rows.ids[representative[r]]);
  return compact_panels(rows, [&](Index r) { return representative[r] != r; });
}

void remove_rows(CscMatrix& rows, const std::vector<char>& dropped) {
  Offset at = 0;
  Offset from = 0;
  for (Index j = 0; j < rows.cols(); ++j) {
    const Offset end = rows.offsets[j + 1];
    for (Offset p = from; p < end; ++p)
      if (!dropped[rows.indices[p]]) {
        rows.indices[at] = rows.indices[p];
        rows.values[at] = rows.values[p];
        ++at;
      }
    from = end;
    rows.offsets[j + 1] = at;
  }
}

Index drop_repeats(CscMatrix& rows, const std::vector<Index>& representative, const Index* ids, ReuseLog& log) {
  std::vector<char> dropped(rows.rows(), 0);
  Index count = 0;
  for (Index r = 0; r < rows.rows(); ++r)
    if (representative[r] != r) {
      dropped[r] = 1;
      log.record(ids ? ids[r] : r, ids ? ids[representative[r]] : representative[r]);
      ++count;
    }
  if (count > 0) remove_rows(rows, dropped);
  return count;
}

Index deduplicate(ActiveRows& rows, ReuseLog& log, RowSignatures& signatures, RowComparer& comparer) {
  signatures_of(rows.rows, signatures);
  std::vector<Index> representative;
  const Index found =
      find_repeats(signatures, [&](Index a, Index b) { return comparer.same(rows.rows, a, b); }, representative);
  return found > 0 ? drop_repeats(rows, representative, log) : 0;
}

Index deduplicate(DenseRows& rows, ReuseLog& log, RowSignatures& signatures, Offset& dropped_nonzeros) {
  signatures_of(rows, signatures);
  std::vector<Index> representative;
  const Index found =
      find_repeats(signatures, [&](Index a, Index b) { return same_dense_rows(rows, a, b); }, representative);
  dropped_nonzeros = 0;
  for (Index r = 0; r < rows.rows(); ++r)
    if (representative[r] != r) dropped_nonzeros += signatures.count[r];
  return found > 0 ? drop_repeats(rows, representative, log) : 0;
}

Index deduplicate(CscMatrix& rows, const Index* ids, ReuseLog& log, RowSignatures& signatures, RowComparer& comparer) {
  signatures_of(rows, 0, signatures);
  CsrMatrix by_rows;  // built at the first candidate pair only
  bool built = false;
  std::vector<Index> representative;
  const Index found = find_repeats(
      signatures,
      [&](Index a, Index b) {
        if (!built) by_rows = to_csr(rows), built = true;
        return comparer.same(by_rows, a, b);
      },
      representative);
  return found > 0 ? drop_repeats(rows, representative, ids, log) : 0;
}

void expand_rows(const ReuseLog& log, ActiveRows& rows) {
  if (log.empty()) return;
  std::unordered_map<Index, Index> local;  // final id -> row
  for (Index r = 0; r < rows.rows.rows(); ++r) local[rows.ids[r]] = r;
  std::vector<std::pair<Index, Index>> copies;  // (dropped id, row of its holder)
  Offset extra = 0;
  for (const auto& [dropped, holder] : log.final_holders()) {
    const auto found = local.find(holder);
    if (found == local.end() || rows.rows.end(found->second) == rows.rows.begin(found->second)) continue;
    copies.emplace_back(dropped, found->second);
    extra += rows.rows.end(found->second) - rows.rows.begin(found->second);
  }
  CsrMatrix& m = rows.rows;
  const Index before = m.rows();
  Offset at = m.nnz();
  m.reserve_nonzeros(at + extra);
  m.resize_major(before + static_cast<Index>(copies.size()));
  for (std::size_t c = 0; c < copies.size(); ++c) {
    const Index from = copies[c].second;
    const Offset count = m.end(from) - m.begin(from);
    std::memcpy(m.indices.data() + at, m.indices.data() + m.begin(from), count * sizeof(Index));
    std::memcpy(m.values.data() + at, m.values.data() + m.begin(from), count * sizeof(Value));
    at += count;
    m.offsets[before + c + 1] = at;
    rows.ids.push_back(copies[c].first);
  }
}

void expand_matrix(const ReuseLog& log, CsrMatrix& all) {
  if (log.empty()) return;
  std::vector<Index> source(all.rows());
  std::iota(source.begin(), source.end(), Index{0});
  for (const auto& [dropped, holder] : log.final_holders()) source[dropped] = holder;
  CsrMatrix out(all.rows(), all.cols());
  for (Index i = 0; i < all.rows(); ++i) out.offsets[i + 1] = out.offsets[i] + (all.end(source[i]) - all.begin(source[i]));
  out.reserve_nonzeros(out.nnz());
  for (Index i = 0; i < all.rows(); ++i) {
    const Offset from = all.begin(source[i]), count = all.end(source[i]) - from;
    if (count == 0) continue;
    std::memcpy(out.indices.data() + out.begin(i), all.indices.data() + from, count * sizeof(Index));
    std::memcpy(out.values.data() + out.begin(i), all.values.data() + from, count * sizeof(Value));
  }
  out.shrink_to_nnz();
  all = std::move(out);
}

void add_reused_results(const ReuseLog& log, const ActiveRows& rows, std::vector<Index>& categories, ExactSum& sum) {
  if (log.empty()) return;
  std::unordered_map<Index, Index> local;
  for (Index r = 0; r < rows.rows.rows(); ++r) local[rows.ids[r]] = r;
  std::unordered_map<Index, ExactSum> row_sums;  // of the holders asked for, each computed once
  for (const auto& [dropped, holder] : log.final_holders()) {
    const auto found = local.find(holder);
    if (found == local.end()) continue;
    const Offset first = rows.rows.begin(found->second), count = rows.rows.end(found->second) - first;
    if (count == 0) continue;
    auto known = row_sums.find(holder);
    if (known == row_sums.end())
      known = row_sums.emplace(holder, exact_sum_of(rows.rows.values.data() + first, count)).first;
    categories.push_back(dropped);
    sum += known->second;
  }
}

SharedRepresentatives::SharedRepresentatives(std::size_t layers, std::size_t budget_values)
    : entries_(layers), index_(layers), budget_values_(budget_values) {}

std::int64_t SharedRepresentatives::match(std::size_t layer, const DenseRows& rows, Index row, std::uint64_t hash,
                                          std::uint64_t count, bool publish) {
  const std::size_t panel_size = std::size_t{rows.neurons} * kPanelRows;
  const Value* x = rows.panel.data() + (row / kPanelRows) * panel_size + row % kPanelRows;
  const std::uint64_t key = hash ^ (count * 0x9e3779b97f4a7c15ULL);
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Entry>& entries = entries_[layer];
  const auto [first, last] = index_[layer].equal_range(key);
  for (auto it = first; it != last; ++it) {
    const Entry& e = entries[it->second];
    if (e.hash != hash || e.count != count) continue;
    // The hash only makes a candidate: every entry is compared, bit for bit.
    bool same = true;
    for (Index k = 0; k < rows.neurons && same; ++k) same = bits_of(e.values[k]) == bits_of(x[std::size_t{k} * kPanelRows]);
    if (same) return e.id;
  }
  if (publish && used_values_ + rows.neurons <= budget_values_) {
    Entry e{rows.ids[row], hash, count, std::vector<Value>(rows.neurons)};
    for (Index k = 0; k < rows.neurons; ++k) e.values[k] = x[std::size_t{k} * kPanelRows];
    used_values_ += rows.neurons;
    index_[layer].emplace(key, entries.size());
    entries.push_back(std::move(e));
  }
  return -1;
}

void SharedRepresentatives::finish_block(const ReuseLog& log, const ActiveRows& rows, const std::vector<Index>& published,
                                         std::vector<Index>& categories, ExactSum& sum) {
  std::unordered_map<Index, Index> local;  // final id -> row
  for (Index r = 0; r < rows.rows.rows(); ++r) local[rows.ids[r]] = r;
  auto row_sum = [&](Index r) { return exact_sum_of(rows.rows.values.data() + rows.rows.begin(r), rows.rows.end(r) - rows.rows.begin(r)); };
  std::unordered_map<Index, Index> holder_of;  // dropped id -> final holder (local or not)
  std::unordered_map<Index, ExactSum> row_sums;
  std::vector<std::pair<Index, Index>> pending;
  for (const auto& [dropped, holder] : log.final_holders()) {
    holder_of[dropped] = holder;
    const auto found = local.find(holder);
    if (found == local.end()) {
      pending.emplace_back(dropped, holder);  // in another block, or dead
      continue;
    }
    if (rows.rows.end(found->second) == rows.rows.begin(found->second)) continue;
    auto known = row_sums.find(holder);
    if (known == row_sums.end()) known = row_sums.emplace(holder, row_sum(found->second)).first;
    categories.push_back(dropped);
    sum += known->second;
  }
  // What other blocks may need: the final sums of the published rows (their own rows, or their
  // local holder's), the holder of each row whose holder is not here.
  std::vector<std::pair<Index, ExactSum>> sums;
  for (Index id : published) {
    const auto moved = holder_of.find(id);
    const Index holder = moved == holder_of.end() ? id : moved->second;
    const auto found = local.find(holder);
    if (found != local.end() && rows.rows.end(found->second) > rows.rows.begin(found->second))
      sums.emplace_back(id, row_sum(found->second));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [id, s] : sums) final_sums_[id] = s;
  for (const auto& [dropped, holder] : pending) pending_[dropped] = holder;
}

void SharedRepresentatives::resolve(std::vector<Index>& categories, ExactSum& sum, ReuseLog& copies) {
  // Each step of a chain leads to a row alive at a later layer, so chains end.
  for (const auto& [dropped, holder] : pending_) {
    Index at = holder;
    auto known = final_sums_.find(at);
    for (auto next = pending_.find(at); known == final_sums_.end() && next != pending_.end(); next = pending_.find(at)) {
      at = next->second;
      known = final_sums_.find(at);
    }
    if (known == final_sums_.end()) continue;  // the holder died
    categories.push_back(dropped);
    sum += known->second;
    copies.record(dropped, at);
  }
}

void PanelReuse::start_block() {
  holders_.clear();
  published_.clear();
  log_seen_ = 0;
}

Index PanelReuse::deduplicate(std::size_t layer, bool look, DenseRows& rows, ReuseLog& log, Offset& dropped_nonzeros) {
  dropped_nonzeros = 0;
  for (; log_seen_ < log.size(); ++log_seen_) holders_.insert(log.pairs()[log_seen_].second);
  Index in_block = 0;
  std::vector<std::pair<Index, std::int64_t>> shared_drops;  // (row, id of its holder elsewhere)
  if (look) {
    signatures_of(rows, signatures_);
    in_block = find_repeats(
        signatures_, [&](Index a, Index b) { return same_dense_rows(rows, a, b); }, representative_);
    for (Index r = 0; r < rows.rows(); ++r)
      if (representative_[r] != r) {
        holders_.insert(rows.ids[representative_[r]]);
        dropped_nonzeros += signatures_.count[r];
      }
  } else {
    if (shared_ == nullptr || holders_.empty()) return 0;
    representative_.resize(rows.rows());
    std::iota(representative_.begin(), representative_.end(), Index{0});
  }
  if (shared_ != nullptr)
    for (Index r = 0; r < rows.rows(); ++r) {
      if (representative_[r] != r) continue;
      const bool holder = holders_.count(rows.ids[r]) > 0;
      if (!look && !holder) continue;
      std::uint64_t hash, count;
      if (look) {
        hash = signatures_.hash[r];
        count = signatures_.count[r];
      } else {
        std::tie(hash, count) = panel_row_signature(rows, r);
      }
      if (count == 0) continue;
      const std::int64_t elsewhere = shared_->match(layer, rows, r, hash, count, holder);
      if (elsewhere >= 0) {
        shared_drops.emplace_back(r, elsewhere);
        dropped_nonzeros += count;
      } else if (holder) {
        published_.insert(rows.ids[r]);
      }
    }
  if (in_block == 0 && shared_drops.empty()) return 0;
  // In this order, so that a row dropped for a row then dropped for another block's follows it.
  for (Index r = 0; r < rows.rows(); ++r)
    if (representative_[r] != r) log.record(rows.ids[r], rows.ids[representative_[r]]);
  for (const auto& [r, elsewhere] : shared_drops) {
    log.record(rows.ids[r], static_cast<Index>(elsewhere));
    representative_[r] = r + 1;  // any other row: marks it dropped
  }
  log_seen_ = log.size();  // the pairs above: holders_ already has the block's, not the others'
  return compact_panels(rows, [&](Index r) { return representative_[r] != r; });
}

void PanelReuse::finish_block(const ReuseLog& log, const ActiveRows& rows, std::vector<Index>& categories,
                              ExactSum& sum) {
  if (shared_ == nullptr) {
    add_reused_results(log, rows, categories, sum);
    return;
  }
  shared_->finish_block(log, rows, std::vector<Index>(published_.begin(), published_.end()), categories, sum);
}

}  // namespace sdnn
