// huge_pages.cpp: the working buffers' allocator (huge_pages.hpp).
#include "huge_pages.hpp"

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace sdnn {
namespace {

// Each block starts kHeaderBytes after its allocation (the allocation's address is stored just
// before it); huge blocks start a further 0..kColors-1 times kColorBytes in, so that blocks
// placed on 2 MiB boundaries (physically contiguous under a huge page) do not all map the same
// offsets to the same cache sets.
constexpr std::size_t kHeaderBytes = 64;
constexpr std::size_t kColorBytes = 4096 + 64;
constexpr unsigned kColors = 16;

}  // namespace

bool huge_pages_enabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("SDNN_HUGE_PAGES");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return enabled;
}

void* allocate_working(std::size_t bytes) {
  static std::atomic<unsigned> next_color{0};
  const bool huge = bytes >= kHugePageMinBytes && huge_pages_enabled();
  const std::size_t alignment = huge ? kHugePageBytes : kHeaderBytes;
  const std::size_t offset =
      kHeaderBytes + (huge ? (next_color.fetch_add(1, std::memory_order_relaxed) % kColors) * kColorBytes : 0);
  if (bytes > static_cast<std::size_t>(-1) - offset - alignment) throw std::bad_alloc();
  const std::size_t rounded = (bytes + offset + alignment - 1) / alignment * alignment;
  char* raw = static_cast<char*>(std::aligned_alloc(alignment, rounded));
  if (raw == nullptr) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (huge) madvise(raw, rounded, MADV_HUGEPAGE);  // advice only: ignored where THP is off
#endif
  char* block = raw + offset;
  reinterpret_cast<void**>(block)[-1] = raw;
  return block;
}

void free_working(void* p) noexcept {
  if (p != nullptr) std::free(static_cast<void**>(p)[-1]);
}

}  // namespace sdnn
