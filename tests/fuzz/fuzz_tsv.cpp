// fuzz_tsv.cpp: libFuzzer target for the TSV readers (make fuzz). The fuzz input is the text of a
// file, read as:
//   - triplets of a 6 x 32 matrix (parse_triplets), then built as CSR and CSC (from_triplets);
//   - the same text in two shares cut at a line start chosen by the input (parse_triplet_lines, as
//     the ranks of sdnn parse their byte ranges): the shares must give the whole text's triplets,
//     or the whole text's first fault with the same file:line message;
//   - the same text as a stream (parse_text_share, as a gzip file or a tar member is read), in
//     reads and pieces of sizes taken from the input: one rank must give the whole text's triplets
//     in order, or its first fault with the same message; two ranks' shares together must give the
//     whole text's triplets;
//   - a categories file of 6 rows (parse_categories).
// Expected: InputError (bad text) or DuplicateEntry (a repeated entry, which the readers turn into
// an InputError with its line). Anything else, an exception of another type, a disagreement or a
// sanitizer report, is a crash.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "io/input_error.hpp"
#include "io/tsv.hpp"
#include "spmm/sparse_matrix.hpp"

namespace {

constexpr sdnn::Index kRows = 6, kCols = 32;
const std::string kPath = "fuzz.tsv";

[[noreturn]] void crash(const std::string& what) {
  std::fprintf(stderr, "fuzz_tsv: %s\n", what.c_str());
  std::abort();
}

struct Parsed {
  std::vector<sdnn::Triplet> triplets;
  std::string error;  // the InputError's message, or ""
};

bool same(const std::vector<sdnn::Triplet>& a, const std::vector<sdnn::Triplet>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k)
    if (a[k].row != b[k].row || a[k].col != b[k].col || !(a[k].value == b[k].value)) return false;
  return true;
}

void check_triplets(const std::vector<sdnn::Triplet>& triplets) {
  for (const sdnn::Triplet& t : triplets)
    if (t.row >= kRows || t.col >= kCols || !std::isfinite(t.value)) crash("a triplet out of range or not finite");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // The whole text.
  Parsed whole;
  try {
    whole.triplets = sdnn::parse_triplets(kPath, text, kRows, kCols, 1);
    check_triplets(whole.triplets);
    try {
      const sdnn::CsrMatrix csr = sdnn::from_triplets<sdnn::RowMajor>(kRows, kCols, whole.triplets);
      const sdnn::CscMatrix csc = sdnn::from_triplets<sdnn::ColMajor>(kRows, kCols, whole.triplets);
      if (csr.nnz() != whole.triplets.size() || csc.nnz() != whole.triplets.size()) crash("nonzeros lost");
    } catch (const sdnn::DuplicateEntry&) {
    }
  } catch (const sdnn::InputError& e) {
    whole.error = e.what();
  }

  // Two shares, cut at the first line start at or after a position taken from the input.
  if (!text.empty()) {
    std::size_t cut = (static_cast<std::size_t>(data[0]) * 7919u) % (size + 1);
    while (cut > 0 && cut < size && text[cut - 1] != '\n') ++cut;
    const std::string_view first = text.substr(0, cut), second = text.substr(cut);
    Parsed shares;
    try {
      shares.triplets = sdnn::parse_triplet_lines(kPath, first, kRows, kCols, 1, [] { return std::uint64_t{0}; });
      const std::uint64_t lines_before = sdnn::line_of(text, cut) - 1;
      std::vector<sdnn::Triplet> more =
          sdnn::parse_triplet_lines(kPath, second, kRows, kCols, 1, [&] { return lines_before; });
      shares.triplets.insert(shares.triplets.end(), more.begin(), more.end());
    } catch (const sdnn::InputError& e) {
      shares.error = e.what();
    }
    // The whole text's only extra fault is "empty file", which shares do not report.
    if (!text.empty() && shares.error != whole.error) crash("shares: '" + shares.error + "', whole: '" + whole.error + "'");
    if (whole.error.empty() && !same(shares.triplets, whole.triplets)) crash("shares give other triplets");
  }

  // As a stream, in reads of 1..17 bytes and pieces of 1..64 bytes of whole lines.
  {
    const std::size_t read_size = text.empty() ? 1 : 1 + data[0] % 17;
    const std::uint64_t piece = text.empty() ? 1 : 1 + data[size - 1] % 64;
    auto stream = [&](int rank, int ranks, Parsed& out) {
      std::size_t at = 0;
      const auto read = [&](char* buffer, std::size_t room) {
        const std::size_t n = std::min({room, read_size, text.size() - at});
        std::copy(text.begin() + at, text.begin() + at + n, buffer);
        at += n;
        return n;
      };
      std::uint64_t bytes = 0;
      try {
        out.triplets = sdnn::parse_text_share(kPath, read, kRows, kCols, rank, ranks, 0, 1, bytes, piece);
      } catch (const sdnn::InputError& e) {
        out.error = e.what();
      }
    };
    Parsed one;
    stream(0, 1, one);
    if (one.error != whole.error) crash("stream: '" + one.error + "', whole: '" + whole.error + "'");
    if (whole.error.empty() && !same(one.triplets, whole.triplets)) crash("stream gives other triplets");
    if (whole.error.empty()) {
      Parsed first, second;
      stream(0, 2, first);
      stream(1, 2, second);
      if (!first.error.empty() || !second.error.empty()) crash("a stream share fails on good text");
      first.triplets.insert(first.triplets.end(), second.triplets.begin(), second.triplets.end());
      auto order = [](const sdnn::Triplet& a, const sdnn::Triplet& b) {
        return a.row != b.row ? a.row < b.row : a.col != b.col ? a.col < b.col : a.value < b.value;
      };
      std::vector<sdnn::Triplet> expected = whole.triplets;
      std::sort(expected.begin(), expected.end(), order);
      std::sort(first.triplets.begin(), first.triplets.end(), order);
      if (!same(first.triplets, expected)) crash("two stream shares give other triplets");
    }
  }

  // A categories file.
  try {
    const std::vector<sdnn::Index> rows = sdnn::parse_categories(kPath, text, kRows);
    for (std::size_t k = 0; k < rows.size(); ++k)
      if (rows[k] >= kRows || (k > 0 && rows[k] <= rows[k - 1])) crash("categories out of range or not ascending");
  } catch (const sdnn::InputError&) {
  }
  return 0;
}
