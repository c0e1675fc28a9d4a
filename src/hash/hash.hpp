// hash.hpp: the hashings of --hash none|input|network|both, and how to apply and undo them.
//
// A hashing is a Permutation, an affine bijection p(i) = (stride * i + offset) mod n on 0..n-1.
// A Permutation can also be a deal (Permutation::deal), which is not a hashing: the data x model
// strategy's cyclic column blocks (strategy.cpp).
// - Input hashing permutes the rows of Y0 (new row p(i) = old row i) before they are split over
//   ranks and thread blocks, so that heavy and light inputs spread evenly over the shards.
// - Network hashing permutes the neuron ids everywhere at once: the columns of Y0, the rows and
//   columns of every W_l and each layer's bias (W'(p(i), p(j)) = W(i, j), b'(p(j)) = b(j)), so
//   Y0' * W1' * ... is Y0 * W1 * ... with its columns permuted.
// Both are undone before results leave the program: categories in the original row numbering
// (unpermute_rows), final activations in the original row and neuron numbering (unpermute).
//
// Why affine: it needs O(1) memory (no table is stored or sent between ranks), costs a multiply
// and a modulo per index, and its inverse is affine too (the stride's modular inverse). With the
// stride near n * 0.618 (the golden ratio's fraction, the most evenly spreading multiplier, and
// among the strides there the one whose continued fraction is the most golden-like), rows that
// are neighbours in the input land far apart, and any contiguous shard of the hashed rows
// samples the whole original range evenly (within O(log n) rows). That matters: MNIST inputs come in their original
// order and neighbouring images are alike, as are their costs.
//
// No MPI here; OpenMP threads for large matrices.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "spmm/layer.hpp"
#include "spmm/sparse_matrix.hpp"

namespace sdnn {

class Permutation {
 public:
  // The largest supported size: every index fits in Index and every product in 64 bits.
  static constexpr std::uint64_t kMaxSize = std::uint64_t{1} << 32;

  // The identity on 0..n-1 (n = 0 by default). Throws std::invalid_argument when n > kMaxSize.
  explicit Permutation(std::uint64_t n = 0) : n_(n), stride_(1), offset_(0), inverse_stride_(1) {
    if (n > kMaxSize)
      throw std::invalid_argument("a permutation of " + std::to_string(n) + " elements: at most 2^32 are supported");
  }
  static Permutation identity(std::uint64_t n) { return Permutation(n); }

  // The hash of 0..n-1 for `seed`. The stride depends on n only: among the strides coprime to n
  // within 32 (and n/8) of round(n * 0.6180339887), the one whose ratio to n has the smallest
  // largest continued-fraction quotient (the most even spread; ties: the nearest, then the
  // smaller); for n <= 2, or when none is coprime, the first coprime one from there up. The
  // offset is seed mod n. Deterministic in (n, seed); for n > 3, seeds that differ mod n give
  // different permutations. Throws std::invalid_argument when n > kMaxSize.
  static Permutation hashing(std::uint64_t n, std::uint64_t seed);

  // p(i) = (stride * i + offset) mod n with explicit coefficients. Throws std::invalid_argument
  // when n > kMaxSize, or n >= 2 and stride or offset is not in [0, n) or gcd(stride, n) != 1.
  // For n <= 1 (one permutation only) the coefficients are ignored: the identity.
  static Permutation affine(std::uint64_t n, std::uint64_t stride, std::uint64_t offset);

  // Deals 0..n-1 to `parts` equal hands, as cards: i goes to hand i mod parts, hand h holding
  // [h * n / parts, (h + 1) * n / parts): p(i) = (i mod parts) * (n / parts) + i div parts. Its
  // inverse is the deal to n / parts hands. Contiguous blocks of p's image are then residue
  // classes of the original ids (cyclic distribution). Throws std::invalid_argument unless
  // parts >= 1 divides n, or when n > kMaxSize. deal(n, 1) and deal(n, n) are the identity.
  static Permutation deal(std::uint64_t n, std::uint64_t parts);

  std::uint64_t size() const { return n_; }
  std::uint64_t stride() const { return stride_; }
  std::uint64_t offset() const { return offset_; }
  // The hands of a deal (1: an affine permutation).
  std::uint64_t hands() const { return hands_; }
  bool is_identity() const { return stride_ == 1 && offset_ == 0 && hands_ == 1; }

  // p(i), for i < size(). stride, i < n <= 2^32: stride * i + offset < 2^64, no overflow.
  Index operator()(Index i) const {
    if (hands_ > 1) return static_cast<Index>(i % hands_ * (n_ / hands_) + i / hands_);
    return static_cast<Index>((stride_ * i + offset_) % n_);
  }
  // p^-1(y), for y < size(): inverse_stride * (y - offset) mod n (a deal: the deal to n / hands).
  Index inverse(Index y) const {
    if (hands_ > 1) {
      const std::uint64_t hand = n_ / hands_;
      return static_cast<Index>(y % hand * hands_ + y / hand);
    }
    return static_cast<Index>(inverse_stride_ * ((y + n_ - offset_) % n_) % n_);
  }
  // p^-1 as a Permutation of its own (affine, or a deal, too).
  Permutation inverted() const;

  // table()[i] = p(i); inverse_table()[y] = p^-1(y). n entries each.
  std::vector<Index> table() const;
  std::vector<Index> inverse_table() const;

  // Equal maps (the coefficients are kept normalised, so equal maps have equal coefficients).
  friend bool operator==(const Permutation& a, const Permutation& b) {
    return a.n_ == b.n_ && a.stride_ == b.stride_ && a.offset_ == b.offset_ && a.hands_ == b.hands_;
  }
  friend bool operator!=(const Permutation& a, const Permutation& b) { return !(a == b); }

 private:
  std::uint64_t n_, stride_, offset_, inverse_stride_;
  std::uint64_t hands_ = 1;  // > 1: a deal (stride 1, offset 0)
};

enum class HashMode { none, input, network, both };

// Throws std::invalid_argument("--hash must be none, input, network or both, not 'x'").
HashMode parse_hash_mode(const std::string& s);
std::string to_string(HashMode mode);
bool hashes_input(HashMode mode);    // input or both
bool hashes_network(HashMode mode);  // network or both

// New row rows(i) = old row i. Throws std::invalid_argument unless rows.size() == a.rows().
CsrMatrix permute_rows(const CsrMatrix& a, const Permutation& rows);
// Column j becomes column cols(j); each row's indices come out sorted. Throws
// std::invalid_argument unless cols.size() == a.cols().
CsrMatrix permute_columns(const CsrMatrix& a, const Permutation& cols);
// Both in one pass: entry (i, j) moves to (rows(i), cols(j)); a null pointer leaves that side.
CsrMatrix permute(const CsrMatrix& a, const Permutation* rows, const Permutation* cols);
// Undoes permute(a, rows, cols): entry (i, j) moves to (rows^-1(i), cols^-1(j)). For the final
// activations: rows = the input hashing (or null), cols = the network hashing (or null).
CsrMatrix unpermute(const CsrMatrix& a, const Permutation* rows, const Permutation* cols);

// Renumbers the neurons of every layer: W'(p(i), p(j)) = W(i, j) in weights_csr and weights_csc
// (each when present, i.e. not an empty 0 x 0 matrix), bias'(p(j)) = bias(j). Throws
// std::invalid_argument when a present matrix is not n x n or a bias has not n entries
// (n = neurons.size()); the network is then left unchanged.
void permute_network(Network& network, const Permutation& neurons);

// The original numbers of hashed rows (rows^-1 of each), sorted ascending: categories found on
// hashed inputs, back in the input's numbering. Throws std::out_of_range for a row >= rows.size().
std::vector<Index> unpermute_rows(const std::vector<Index>& hashed_rows, const Permutation& rows);

}  // namespace sdnn
