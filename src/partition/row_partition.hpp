// row_partition.hpp: who owns which input rows. Contiguous, balanced shards: part p of P gets
// rows [p*M/P, (p+1)*M/P), so shard sizes differ by at most one and P may exceed M.
#pragma once

#include <cstdint>

namespace sdnn {

struct RowRange {
  std::uint32_t first = 0, last = 0;  // [first, last)
  std::uint32_t size() const { return last - first; }
};

inline RowRange shard_of(std::uint32_t rows, int parts, int part) {
  const auto bound = [&](int p) {
    return static_cast<std::uint32_t>(static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(p) /
                                      static_cast<std::uint64_t>(parts));
  };
  return {bound(part), bound(part + 1)};
}

}  // namespace sdnn
