// huge_pages.cpp: the working buffers' allocator (huge_pages.hpp). Large blocks are mapped
// directly (mmap), not taken from malloc: a thread's malloc arena grows its heap a few pages at a
// time, and a 2 MiB range that straddles the heap's end cannot be a huge page.
#include "huge_pages.hpp"

#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace sdnn {
namespace {

// AddressSanitizer sees malloc's blocks, not mappings: its builds keep every block in malloc so
// that it still catches a write past a panel buffer's end.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

// Each block starts kHeaderBytes after its allocation, which is described just before the block
// (Header); huge blocks start a further 0..kColors-1 times kColorBytes in, so that blocks placed
// on 2 MiB boundaries (physically contiguous under a huge page) do not all map the same offsets
// to the same cache sets.
constexpr std::size_t kHeaderBytes = 64;
constexpr std::size_t kColorBytes = 4096 + 64;
constexpr unsigned kColors = 16;

struct Header {
  void* allocation;
  std::size_t mapped_bytes;  // 0: from malloc
};
static_assert(sizeof(Header) <= kHeaderBytes, "the header fits before the block");

Header& header_of(void* block) { return reinterpret_cast<Header*>(block)[-1]; }

// `bytes` on 2 MiB boundaries, mapped and advised; nullptr when the mapping fails.
char* map_huge(std::size_t bytes) {
  const std::size_t slack = kHugePageBytes;  // room to move the start to a 2 MiB boundary
  void* mapped = mmap(nullptr, bytes + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) return nullptr;
  char* raw = static_cast<char*>(mapped);
  char* start = reinterpret_cast<char*>((reinterpret_cast<std::uintptr_t>(raw) + kHugePageBytes - 1) &
                                        ~std::uintptr_t{kHugePageBytes - 1});
  const std::size_t head = static_cast<std::size_t>(start - raw), tail = slack - head;
  if (head > 0) munmap(raw, head);
  if (tail > 0) munmap(start + bytes, tail);
#ifdef MADV_HUGEPAGE
  madvise(start, bytes, MADV_HUGEPAGE);  // advice only: ignored where THP is off
#endif
  return start;
}

}  // namespace

bool huge_pages_enabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("SDNN_HUGE_PAGES");
    return !kAddressSanitizer && (value == nullptr || std::strcmp(value, "0") != 0);
  }();
  return enabled;
}

void* allocate_working(std::size_t bytes) {
  static std::atomic<unsigned> next_color{0};
  const std::size_t limit = static_cast<std::size_t>(-1) / 2;
  if (bytes > limit) throw std::bad_alloc();
  if (bytes >= kHugePageMinBytes && huge_pages_enabled()) {
    const std::size_t offset =
        kHeaderBytes + (next_color.fetch_add(1, std::memory_order_relaxed) % kColors) * kColorBytes;
    const std::size_t mapped_bytes = (bytes + offset + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    if (char* start = map_huge(mapped_bytes)) {
      void* block = start + offset;
      header_of(block) = {start, mapped_bytes};
      return block;
    }
  }
  const std::size_t rounded = (bytes + kHeaderBytes + kHeaderBytes - 1) / kHeaderBytes * kHeaderBytes;
  char* raw = static_cast<char*>(std::aligned_alloc(kHeaderBytes, rounded));
  if (raw == nullptr) throw std::bad_alloc();
  void* block = raw + kHeaderBytes;
  header_of(block) = {raw, 0};
  return block;
}

void free_working(void* block) noexcept {
  if (block == nullptr) return;
  const Header header = header_of(block);
  if (header.mapped_bytes > 0) munmap(header.allocation, header.mapped_bytes);
  else std::free(header.allocation);
}

}  // namespace sdnn
