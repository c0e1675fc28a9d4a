// huge_pages.hpp: an allocator for the large per-thread working buffers (dense panels and their
// double copies). Blocks of at least kHugePageMinBytes are mapped (mmap) on 2 MiB boundaries,
// rounded up to whole 2 MiB, and offered to the kernel's transparent huge pages (MADV_HUGEPAGE), so
// that their first touch is one fault per 2 MiB instead of one per 4 KiB page; smaller blocks are
// ordinary 64-byte aligned ones. SDNN_HUGE_PAGES=0 (and an AddressSanitizer build) turns the
// advice off.
#pragma once

#include <cstddef>
#include <new>

namespace sdnn {

inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;
inline constexpr std::size_t kHugePageMinBytes = std::size_t{1} << 19;

// Raw storage for `bytes` bytes, 64-byte aligned at least; throws std::bad_alloc.
void* allocate_working(std::size_t bytes);
void free_working(void* p) noexcept;
// Whether blocks are offered to huge pages (SDNN_HUGE_PAGES unset or not "0", and no ASan).
bool huge_pages_enabled();

template <class T>
struct WorkingAllocator {
  using value_type = T;
  WorkingAllocator() = default;
  template <class U>
  WorkingAllocator(const WorkingAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_alloc();
    return static_cast<T*>(allocate_working(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t) noexcept { free_working(p); }
  template <class U>
  bool operator==(const WorkingAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const WorkingAllocator<U>&) const noexcept { return false; }
};

}  // namespace sdnn
