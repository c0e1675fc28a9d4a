// test_huge_pages.cpp: the working buffers' allocator (spmm/huge_pages.hpp): alignment, the huge
// page advice on large blocks (the VMA's "hg" flag in /proc/self/smaps; none when huge pages are
// off), the staggered starts of large blocks, and vectors and DoubleBuffers that grow, copy and
// free through it.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "spmm/dense_rows.hpp"
#include "spmm/huge_pages.hpp"

namespace sdnn {
namespace {

// The VmFlags line of the mapping that holds `address`, or "" when /proc/self/smaps has none.
std::string vm_flags_of(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t first = 0, last = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> first >> dash >> last && dash == '-' && line.find(':') > line.find(' ')) {
      inside = first <= at && at < last;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

TEST(HugePages, BlocksAreAlignedAndWritable) {
  for (const std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, kHugePageMinBytes - 8,
                                  kHugePageMinBytes, kHugePageBytes, 3 * kHugePageBytes + 12345}) {
    void* block = allocate_working(bytes);
    ASSERT_NE(block, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(block) % 64, 0u) << bytes;
    std::memset(block, 0x5a, bytes);  // the whole block is ours (ASan checks the bounds)
    free_working(block);
  }
  free_working(nullptr);
}

// With huge pages on, a large block lies in a mapping advised MADV_HUGEPAGE ("hg") and blocks
// start at different offsets of their 2 MiB pages; with them off (SDNN_HUGE_PAGES=0, or an
// AddressSanitizer build) a large block is an ordinary, unadvised one.
TEST(HugePages, LargeBlocksCarryTheAdviceAndStartApart) {
  static const int probe = 0;
  if (vm_flags_of(&probe).empty()) GTEST_SKIP() << "no VmFlags in /proc/self/smaps on this kernel";
  const bool advised = huge_pages_enabled();
  std::vector<void*> blocks;
  std::set<std::uintptr_t> starts;
  for (int i = 0; i < 4; ++i) {
    blocks.push_back(allocate_working(kHugePageBytes));
    const std::string flags = vm_flags_of(blocks.back());
    EXPECT_EQ(flags.find(" hg") != std::string::npos, advised)
        << (advised ? "no MADV_HUGEPAGE on a 2 MiB block: " : "huge pages off, yet advised: ") << flags;
    starts.insert(reinterpret_cast<std::uintptr_t>(blocks.back()) % kHugePageBytes);
  }
  if (advised) {
    EXPECT_EQ(starts.size(), blocks.size()) << "large blocks start at the same offset in their 2 MiB pages";
  }
  for (void* block : blocks) free_working(block);
}

TEST(HugePages, PanelsAndDoubleBuffersGrowThroughTheAllocator) {
  PanelValues panel(kHugePageBytes / sizeof(Value) + 3, 1.5f);
  PanelValues copy = panel;
  copy.resize(copy.size() * 2, 2.5f);
  EXPECT_EQ(copy.front(), 1.5f);
  EXPECT_EQ(copy.back(), 2.5f);
  EXPECT_EQ(PanelValues(copy.begin(), copy.begin() + panel.size()), panel);
  DoubleBuffer wide;
  wide.resize(10);
  const double* small = wide.data();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(small) % 64, 0u);
  wide.resize(kHugePageBytes / sizeof(double) + 1);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(wide.data()) % 64, 0u);
  wide.data()[wide.size() - 1] = 3.0;
  const double* large = wide.data();
  wide.resize(5);  // keeps the larger storage
  EXPECT_EQ(wide.data(), large);
}

}  // namespace
}  // namespace sdnn
