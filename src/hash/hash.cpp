// hash.cpp: affine permutations of rows and neuron ids, applied to inputs, networks and results
// and undone on categories and final activations (see hash.hpp).
#include "hash.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace sdnn {

namespace {

// Below these sizes a parallel region costs more than it saves.
constexpr Offset kParallelNonzeros = Offset{1} << 16;
constexpr std::uint64_t kParallelEntries = std::uint64_t{1} << 16;

constexpr double kGoldenFraction = 0.6180339887498949;  // (sqrt(5) - 1) / 2
constexpr std::uint64_t kStrideWindow = 32;              // strides tried on either side of n * kGoldenFraction

// The largest partial quotient of the continued fraction of s / n (0 < s < n). The smaller, the
// more evenly the multiples of s spread over 0..n-1 (the golden ratio's are all 1): any run of
// consecutive rows then lands in every part of the range in proportion, up to O(log n) rows.
std::uint64_t largest_partial_quotient(std::uint64_t s, std::uint64_t n) {
  std::uint64_t largest = 0;
  for (std::uint64_t a = n, b = s; b != 0;) {
    largest = std::max(largest, a / b);
    const std::uint64_t r = a % b;
    a = b;
    b = r;
  }
  return largest;
}

// Keeps the first exception thrown inside a parallel loop (exceptions may not leave a loop
// body there) and rethrows it once the loop is over.
class ParallelErrors {
 public:
  void capture() {
#pragma omp critical(sdnn_hash_errors)
    if (!first_) first_ = std::current_exception();
  }
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::exception_ptr first_;
};

// x with a * x = 1 (mod n), for gcd(a, n) = 1 and n <= 2^32 (all values fit in int64).
std::uint64_t modular_inverse(std::uint64_t a, std::uint64_t n) {
  std::int64_t r0 = static_cast<std::int64_t>(n), r1 = static_cast<std::int64_t>(a);
  std::int64_t t0 = 0, t1 = 1;
  while (r1 != 0) {
    const std::int64_t q = r0 / r1;
    const std::int64_t r2 = r0 - q * r1, t2 = t0 - q * t1;
    r0 = r1;
    r1 = r2;
    t0 = t1;
    t1 = t2;
  }
  // r0 == 1 here; t0 is in (-n, n).
  return static_cast<std::uint64_t>(t0 < 0 ? t0 + static_cast<std::int64_t>(n) : t0);
}

// The new position of slice `m` (a row of a CSR matrix, a column of a CSC one).
inline Index map_or_keep(const Permutation* p, Index m) { return p != nullptr ? (*p)(m) : m; }

// Moves slice m to major(m) and each minor index k to minor(k), re-sorting the minor indices of
// each slice; a null permutation (or the identity) leaves that side as it is.
template <class Layout>
CompressedMatrix<Layout> permute_compressed(const CompressedMatrix<Layout>& a, const Permutation* major,
                                            const Permutation* minor) {
  const char* what = CompressedMatrix<Layout>::is_csr ? "row" : "column";
  const char* other = CompressedMatrix<Layout>::is_csr ? "column" : "row";
  if (major != nullptr && major->size() != a.major_count())
    throw std::invalid_argument(std::string("a ") + what + " permutation of " + std::to_string(major->size()) +
                                " elements for a matrix of " + std::to_string(a.major_count()) + " " + what + "s");
  if (minor != nullptr && minor->size() != a.minor_count())
    throw std::invalid_argument(std::string("a ") + other + " permutation of " + std::to_string(minor->size()) +
                                " elements for a matrix of " + std::to_string(a.minor_count()) + " " + other + "s");
  if (major != nullptr && major->is_identity()) major = nullptr;
  if (minor != nullptr && minor->is_identity()) minor = nullptr;

  const Index majors = a.major_count();
  CompressedMatrix<Layout> out(a.rows(), a.cols());
  for (Index m = 0; m < majors; ++m) out.offsets[map_or_keep(major, m) + Offset{1}] = a.end(m) - a.begin(m);
  for (Index m = 0; m < majors; ++m) out.offsets[m + Offset{1}] += out.offsets[m];
  out.indices.resize(a.nnz());
  out.values.resize(a.nnz());

  ParallelErrors errors;
#pragma omp parallel if (a.nnz() >= kParallelNonzeros)
  {
    std::vector<std::pair<Index, Value>> slice;  // this thread's sort buffer
#pragma omp for schedule(dynamic, 512)
    for (std::int64_t sm = 0; sm < static_cast<std::int64_t>(majors); ++sm) {
      try {
        const Index m = static_cast<Index>(sm);
        const Offset b = a.begin(m), e = a.end(m), dst = out.offsets[map_or_keep(major, m)];
        if (minor == nullptr) {
          std::copy(a.indices.begin() + b, a.indices.begin() + e, out.indices.begin() + dst);
          std::copy(a.values.begin() + b, a.values.begin() + e, out.values.begin() + dst);
          continue;
        }
        slice.clear();
        for (Offset p = b; p < e; ++p) slice.emplace_back((*minor)(a.indices[p]), a.values[p]);
        std::sort(slice.begin(), slice.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
        for (Offset p = 0; p < e - b; ++p) {
          out.indices[dst + p] = slice[p].first;
          out.values[dst + p] = slice[p].second;
        }
      } catch (...) {
        errors.capture();
      }
    }
  }
  errors.rethrow();
  return out;
}

// Fills t[i] = f(i) for i < n, in parallel when n is large.
template <class F>
std::vector<Index> tabulate(std::uint64_t n, F f) {
  std::vector<Index> t(n);
#pragma omp parallel for schedule(static) if (n >= kParallelEntries)
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(n); ++i) t[i] = f(static_cast<Index>(i));
  return t;
}

// Whether a matrix of a layer is present: not the empty 0 x 0 matrix of a format not needed.
template <class Layout>
bool present(const CompressedMatrix<Layout>& w) {
  return w.rows() != 0 || w.cols() != 0;
}

}  // namespace

Permutation Permutation::hashing(std::uint64_t n, std::uint64_t seed) {
  if (n > kMaxSize) return Permutation(n);  // throws std::invalid_argument
  if (n <= 2) return affine(n, 1, n == 0 ? 0 : seed % n);
  const auto start = std::clamp<std::uint64_t>(
      static_cast<std::uint64_t>(std::llround(static_cast<double>(n) * kGoldenFraction)), 1, n - 1);
  // The coprime stride of the window with the smallest largest partial quotient, the nearest to
  // `start` among equals (then the smaller). The window stays inside about [0.49 n, 0.75 n], so
  // neighbours land at least n/4 apart.
  const std::uint64_t window = std::min<std::uint64_t>(kStrideWindow, n / 8);
  std::uint64_t best = 0, best_quotient = 0, best_distance = 0;
  for (std::uint64_t s = start - window; s <= start + window; ++s) {
    if (s == 0 || s >= n || std::gcd(s, n) != 1) continue;
    const std::uint64_t quotient = largest_partial_quotient(s, n), distance = s > start ? s - start : start - s;
    if (best == 0 || quotient < best_quotient || (quotient == best_quotient && distance < best_distance)) {
      best = s;
      best_quotient = quotient;
      best_distance = distance;
    }
  }
  if (best == 0)  // no coprime stride in the window (tiny n): the next one up, wrapping to 1
    for (best = start; std::gcd(best, n) != 1;) best = best + 1 < n ? best + 1 : 1;
  return affine(n, best, seed % n);
}

Permutation Permutation::affine(std::uint64_t n, std::uint64_t stride, std::uint64_t offset) {
  Permutation p(n);
  if (n <= 1) return p;
  if (stride >= n || offset >= n)
    throw std::invalid_argument("affine permutation of " + std::to_string(n) + " elements: stride " +
                                std::to_string(stride) + " and offset " + std::to_string(offset) +
                                " must be below " + std::to_string(n));
  if (std::gcd(stride, n) != 1)
    throw std::invalid_argument("affine permutation of " + std::to_string(n) + " elements: stride " +
                                std::to_string(stride) + " is not coprime to " + std::to_string(n));
  p.stride_ = stride;
  p.offset_ = offset;
  p.inverse_stride_ = modular_inverse(stride, n);
  return p;
}

Permutation Permutation::deal(std::uint64_t n, std::uint64_t parts) {
  Permutation p(n);  // throws std::invalid_argument when n > kMaxSize
  if (parts == 0 || (n > 0 && n % parts != 0))
    throw std::invalid_argument("a deal of " + std::to_string(n) + " elements to " + std::to_string(parts) +
                                " hands: the hands must divide the elements");
  if (parts > 1 && parts < n) p.hands_ = parts;
  return p;
}

Permutation Permutation::inverted() const {
  if (hands_ > 1) return deal(n_, n_ / hands_);
  if (n_ <= 1) return *this;
  // p^-1(y) = inverse_stride * y - inverse_stride * offset (mod n); both factors < n <= 2^32.
  return affine(n_, inverse_stride_, (n_ - inverse_stride_ * offset_ % n_) % n_);
}

std::vector<Index> Permutation::table() const {
  return tabulate(n_, [this](Index i) { return (*this)(i); });
}

std::vector<Index> Permutation::inverse_table() const {
  return tabulate(n_, [this](Index y) { return inverse(y); });
}

HashMode parse_hash_mode(const std::string& s) {
  if (s == "none") return HashMode::none;
  if (s == "input") return HashMode::input;
  if (s == "network") return HashMode::network;
  if (s == "both") return HashMode::both;
  throw std::invalid_argument("--hash must be none, input, network or both, not '" + s + "'");
}

std::string to_string(HashMode mode) {
  switch (mode) {
    case HashMode::none: return "none";
    case HashMode::input: return "input";
    case HashMode::network: return "network";
    case HashMode::both: return "both";
  }
  return "unknown";
}

bool hashes_input(HashMode mode) { return mode == HashMode::input || mode == HashMode::both; }
bool hashes_network(HashMode mode) { return mode == HashMode::network || mode == HashMode::both; }

CsrMatrix permute_rows(const CsrMatrix& a, const Permutation& rows) { return permute_compressed(a, &rows, nullptr); }

CsrMatrix permute_columns(const CsrMatrix& a, const Permutation& cols) { return permute_compressed(a, nullptr, &cols); }

CsrMatrix permute(const CsrMatrix& a, const Permutation* rows, const Permutation* cols) {
  return permute_compressed(a, rows, cols);
}

CsrMatrix unpermute(const CsrMatrix& a, const Permutation* rows, const Permutation* cols) {
  const Permutation row_inverse = rows != nullptr ? rows->inverted() : Permutation();
  const Permutation col_inverse = cols != nullptr ? cols->inverted() : Permutation();
  return permute_compressed(a, rows != nullptr ? &row_inverse : nullptr, cols != nullptr ? &col_inverse : nullptr);
}

void permute_network(Network& network, const Permutation& neurons) {
  const std::uint64_t n = neurons.size();
  for (std::size_t l = 0; l < network.size(); ++l) {
    const Layer& layer = network[l];
    const std::string where = "layer " + std::to_string(l + 1) + " of a network hashed over " + std::to_string(n) + " neurons: ";
    if (present(layer.weights_csr) && (layer.weights_csr.rows() != n || layer.weights_csr.cols() != n))
      throw std::invalid_argument(where + "weights (CSR) are " + std::to_string(layer.weights_csr.rows()) + " x " +
                                  std::to_string(layer.weights_csr.cols()));
    if (present(layer.weights_csc) && (layer.weights_csc.rows() != n || layer.weights_csc.cols() != n))
      throw std::invalid_argument(where + "weights (CSC) are " + std::to_string(layer.weights_csc.rows()) + " x " +
                                  std::to_string(layer.weights_csc.cols()));
    if (layer.bias.size() != n)
      throw std::invalid_argument(where + "the bias has " + std::to_string(layer.bias.size()) + " entries");
  }
  if (neurons.is_identity()) return;

  // Many layers: one thread per layer (the nested regions of permute_compressed stay serial).
  // Few layers: one after the other, each split between the threads when it is large.
  const bool by_layer = network.size() > 1 && network.size() >= static_cast<std::size_t>(omp_get_max_threads());
  ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1) if (by_layer)
  for (std::int64_t sl = 0; sl < static_cast<std::int64_t>(network.size()); ++sl) {
    try {
      Layer& layer = network[static_cast<std::size_t>(sl)];
      if (present(layer.weights_csr)) layer.weights_csr = permute_compressed(layer.weights_csr, &neurons, &neurons);
      if (present(layer.weights_csc)) layer.weights_csc = permute_compressed(layer.weights_csc, &neurons, &neurons);
      layer.column_groups = ColumnGroups();  // the old numbering's
      std::vector<Value> bias(n);
      for (std::uint64_t j = 0; j < n; ++j) bias[neurons(static_cast<Index>(j))] = layer.bias[j];
      layer.bias = std::move(bias);
    } catch (...) {
      errors.capture();
    }
  }
  errors.rethrow();
}

std::vector<Index> unpermute_rows(const std::vector<Index>& hashed_rows, const Permutation& rows) {
  std::vector<Index> original(hashed_rows.size());
  for (std::size_t k = 0; k < hashed_rows.size(); ++k) {
    if (hashed_rows[k] >= rows.size())
      throw std::out_of_range("hashed row " + std::to_string(hashed_rows[k]) + " outside a permutation of " +
                              std::to_string(rows.size()) + " rows");
    original[k] = rows.inverse(hashed_rows[k]);
  }
  std::sort(original.begin(), original.end());
  return original;
}

}  // namespace sdnn
