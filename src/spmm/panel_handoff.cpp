// panel_handoff.cpp: dense rows handed over to idle threads (see panel_handoff.hpp).
#include "spmm/panel_handoff.hpp"

#include <chrono>
#include <thread>
#include <utility>

namespace sdnn {

PanelHandoff::PanelHandoff(int threads, std::int64_t blocks)
    : slots_(static_cast<std::size_t>(threads > 0 ? threads : 1)), work_left_(blocks), blocks_(blocks) {}

void PanelHandoff::park(DenseRows& panels, Offset nonzeros, std::size_t layer) {
  std::lock_guard<std::mutex> lock(parked_mutex_);
  Parked entry{DenseRows(), layer, nonzeros};
  if (!spare_.empty()) {
    entry.panels = std::move(spare_.back());
    spare_.pop_back();
  }
  std::swap(entry.panels, panels);
  parked_.push_back(std::move(entry));  // may throw: then nothing is parked (panels is gone with entry)
  panels.neurons = parked_.back().panels.neurons;
  panels.ids.clear();
  panels.panel.clear();
  work_left_.fetch_add(1, std::memory_order_acq_rel);
  parked_count_.fetch_add(1, std::memory_order_release);
  parks_.fetch_add(1, std::memory_order_relaxed);
}

Offset PanelHandoff::absorb(std::size_t layer, DenseRows& panels) {
  std::vector<Parked> taken;
  {
    std::lock_guard<std::mutex> lock(parked_mutex_);
    for (std::size_t i = 0; i < parked_.size();) {
      if (parked_[i].layer == layer) {
        taken.push_back(std::move(parked_[i]));
        parked_[i] = std::move(parked_.back());
        parked_.pop_back();
      } else {
        ++i;
      }
    }
    parked_count_.fetch_sub(static_cast<int>(taken.size()), std::memory_order_relaxed);
  }
  Offset nonzeros = 0;
  const std::size_t panel_size = std::size_t{panels.neurons} * kPanelRows;
  for (Parked& entry : taken) {
    struct Done {  // taken in: done, also if appending fails (its rows are then lost with the error)
      PanelHandoff& handoff;
      ~Done() { handoff.done(); }
    } done{*this};
    for (Index i = 0; i < entry.panels.rows(); ++i) {
      const Index r = panels.rows();
      if (r % kPanelRows == 0) panels.panel.resize(panels.panel.size() + panel_size, 0.0f);
      panels.ids.push_back(entry.panels.ids[i]);
      copy_panel_row(entry.panels.row_start(i), panels.row_start(r), panels.neurons);
    }
    nonzeros += entry.nonzeros;
  }
  std::lock_guard<std::mutex> lock(parked_mutex_);
  for (Parked& entry : taken) spare_.push_back(std::move(entry.panels));
  return nonzeros;
}

bool PanelHandoff::take_parked(DenseRows& panels, std::size_t& layer, Offset& nonzeros) {
  std::lock_guard<std::mutex> lock(parked_mutex_);
  if (parked_.empty()) return false;
  std::size_t earliest = 0;
  for (std::size_t i = 1; i < parked_.size(); ++i)
    if (parked_[i].layer < parked_[earliest].layer) earliest = i;
  Parked& entry = parked_[earliest];
  std::swap(panels, entry.panels);
  layer = entry.layer;
  nonzeros = entry.nonzeros;
  spare_.push_back(std::move(entry.panels));
  parked_[earliest] = std::move(parked_.back());
  parked_.pop_back();
  parked_count_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

bool PanelHandoff::wait(int thread, DenseRows& panels, std::size_t& layer, Offset& nonzeros) {
  Slot& slot = slots_.at(static_cast<std::size_t>(thread));
  std::swap(slot.panels, panels);
  slot.state.store(kOpen, std::memory_order_release);
  waiting_.fetch_add(1, std::memory_order_acq_rel);
  for (unsigned spins = 0;; ++spins) {
    const int state = slot.state.load(std::memory_order_acquire);
    if (state == kFilled) break;
    const bool finished = work_left_.load(std::memory_order_acquire) == 0;
    if (state == kOpen && (finished || any_parked())) {
      int open = kOpen;
      if (!slot.state.compare_exchange_strong(open, kIdle, std::memory_order_acq_rel))
        continue;  // a giver took the slot meanwhile: its rows are coming
      waiting_.fetch_sub(1, std::memory_order_acq_rel);
      std::swap(slot.panels, panels);
      if (finished) return false;
      if (take_parked(panels, layer, nonzeros)) return true;
      std::swap(slot.panels, panels);  // another thread took them: wait again
      slot.state.store(kOpen, std::memory_order_release);
      waiting_.fetch_add(1, std::memory_order_acq_rel);
      continue;
    }
    // A few milliseconds of yields (a block's layer takes tens of microseconds), then short
    // sleeps, so that a long wait on a machine with more threads than cores costs little.
    if (spins < (1u << 14))
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  std::swap(slot.panels, panels);
  layer = slot.layer;
  nonzeros = slot.nonzeros;
  slot.state.store(kIdle, std::memory_order_relaxed);
  return true;
}

bool PanelHandoff::give(DenseRows& panels, Index keep, Offset nonzeros, std::size_t layer) {
  for (Slot& slot : slots_) {
    int open = kOpen;
    if (!slot.state.compare_exchange_strong(open, kClaimed, std::memory_order_acq_rel)) continue;
    waiting_.fetch_sub(1, std::memory_order_acq_rel);
    work_left_.fetch_add(1, std::memory_order_acq_rel);
    const std::size_t panel_size = std::size_t{panels.neurons} * kPanelRows;
    const auto cut = static_cast<std::ptrdiff_t>(std::size_t{keep / kPanelRows} * panel_size);
    try {
      slot.panels.neurons = panels.neurons;
      slot.panels.ids.assign(panels.ids.begin() + static_cast<std::ptrdiff_t>(keep), panels.ids.end());
      slot.panels.panel.assign(panels.panel.begin() + cut, panels.panel.end());
    } catch (...) {
      slot.panels.ids.clear();
      slot.panels.panel.clear();
      slot.layer = 0;
      slot.nonzeros = 0;
      slot.state.store(kFilled, std::memory_order_release);
      throw;
    }
    panels.ids.resize(keep);
    panels.panel.resize(static_cast<std::size_t>(cut));
    slot.layer = layer;
    slot.nonzeros = nonzeros;
    handoffs_.fetch_add(1, std::memory_order_relaxed);
    slot.state.store(kFilled, std::memory_order_release);
    return true;
  }
  return false;
}

}  // namespace sdnn
