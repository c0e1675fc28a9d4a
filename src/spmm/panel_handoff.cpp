// panel_handoff.cpp: dense rows handed over to idle threads (see panel_handoff.hpp).
#include "spmm/panel_handoff.hpp"

#include <chrono>
#include <thread>
#include <utility>

namespace sdnn {

PanelHandoff::PanelHandoff(int threads, std::int64_t work)
    : slots_(static_cast<std::size_t>(threads > 0 ? threads : 1)), work_left_(work) {}

bool PanelHandoff::wait(int thread, DenseRows& panels, std::size_t& layer, Offset& nonzeros) {
  Slot& slot = slots_.at(static_cast<std::size_t>(thread));
  std::swap(slot.panels, panels);
  slot.state.store(kOpen, std::memory_order_release);
  waiting_.fetch_add(1, std::memory_order_acq_rel);
  for (unsigned spins = 0;; ++spins) {
    const int state = slot.state.load(std::memory_order_acquire);
    if (state == kFilled) break;
    if (state == kOpen && work_left_.load(std::memory_order_acquire) == 0) {
      int open = kOpen;
      if (slot.state.compare_exchange_strong(open, kIdle, std::memory_order_acq_rel)) {
        waiting_.fetch_sub(1, std::memory_order_acq_rel);
        std::swap(slot.panels, panels);
        return false;
      }
      continue;  // a giver took the slot meanwhile: its rows are coming
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
