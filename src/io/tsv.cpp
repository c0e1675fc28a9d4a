// tsv.cpp: parallel TSV triplet parsing (of files by byte ranges, of gzip and tar streams by
// pieces), the official readers and the categories writer.
#include "io/tsv.hpp"

#include <fcntl.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <unordered_set>

#include "io/compressed.hpp"
#include "io/input_error.hpp"
#include "io/output_file.hpp"

namespace sdnn {

std::uint64_t line_of(std::string_view text, std::size_t offset) {
  return 1 + static_cast<std::uint64_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(std::min(offset, text.size())), '\n'));
}

// O_NONBLOCK: opening a named pipe must not wait for a writer (it would hang every rank); it does
// nothing for a regular file.
int open_regular_file(const std::string& path, struct stat& info) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);
  if (fd < 0) throw InputError(path, std::string("cannot open: ") + std::strerror(errno));
  const bool stat_failed = ::fstat(fd, &info) != 0;
  const int saved = errno;
  if (stat_failed || !S_ISREG(info.st_mode)) {
    ::close(fd);
    if (stat_failed) throw InputError(path, std::string("cannot open: ") + std::strerror(saved));
    if (S_ISDIR(info.st_mode)) throw InputError(path, "is a directory, not a file");
    throw InputError(path, "not a regular file (a pipe or a device: sdnn reads files by byte ranges)");
  }
  return fd;
}

std::uint64_t file_size(const std::string& path) {
  struct stat info {};
  ::close(open_regular_file(path, info));
  return static_cast<std::uint64_t>(info.st_size);
}

std::string read_file_range(const std::string& path, std::uint64_t first, std::uint64_t last) {
  struct stat info {};
  const int fd = open_regular_file(path, info);
  std::string bytes(last > first ? last - first : 0, '\0');
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(first + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      throw InputError(path, std::string("cannot read: ") + std::strerror(saved));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  bytes.resize(done);
  return bytes;
}

std::string read_whole_file(const std::string& path) { return read_file_range(path, 0, file_size(path)); }

std::uint64_t count_lines_before(const std::string& path, std::uint64_t end) {
  constexpr std::uint64_t kPiece = 1 << 24;
  std::uint64_t lines = 0;
  for (std::uint64_t at = 0; at < end; at += kPiece) {
    const std::string piece = read_file_range(path, at, std::min(end, at + kPiece));
    lines += static_cast<std::uint64_t>(std::count(piece.begin(), piece.end(), '\n'));
    if (piece.empty()) break;
  }
  return lines;
}

namespace {

struct Fault {
  std::size_t offset = std::string_view::npos;  // where in the text
  std::string what;
};

// Parses a 1-based index in 1..limit at p; returns "" or what is wrong.
std::string parse_index(const char*& p, const char* stop, Index limit, const char* name, Index& index) {
  if (p < stop && *p == '-') return std::string("negative ") + name + " index";
  std::uint64_t x = 0;
  const auto [next, ec] = std::from_chars(p, stop, x);
  if (ec == std::errc::result_out_of_range) return std::string(name) + " index too large (allowed 1.." + std::to_string(limit) + ")";
  if (ec != std::errc()) return std::string("expected a ") + name + " index (a positive integer)";
  if (x < 1 || x > limit)
    return std::string(name) + " index " + std::to_string(x) + " out of range 1.." + std::to_string(limit);
  p = next;
  index = static_cast<Index>(x - 1);
  return "";
}

// Parses the lines of text[begin, end): begin and end are line starts (or the end of text).
void parse_lines(std::string_view text, std::size_t begin, std::size_t end, Index rows, Index cols,
                 std::vector<Triplet>& out, Fault& fault) {
  const char* const base = text.data();
  const char* p = base + begin;
  const char* const stop = base + end;
  auto fail = [&](const char* at, std::string what) {
    fault.offset = static_cast<std::size_t>(at - base);
    fault.what = std::move(what);
  };
  while (p < stop) {
    Triplet t{};
    std::string why = parse_index(p, stop, rows, "row", t.row);
    if (!why.empty()) return fail(p, why);
    if (p >= stop || *p != '\t') return fail(p, "expected a tab after the row index");
    ++p;
    why = parse_index(p, stop, cols, "column", t.col);
    if (!why.empty()) return fail(p, why);
    if (p >= stop || *p != '\t') return fail(p, "expected a tab after the column index");
    ++p;
    const auto [next, ec] = std::from_chars(p, stop, t.value);
    if (ec == std::errc::result_out_of_range) return fail(p, "value out of the range of float");
    if (ec != std::errc()) return fail(p, "expected a value (a number)");
    if (!std::isfinite(t.value)) return fail(p, "value is not finite");
    p = next;
    if (p < stop && *p == '\r') ++p;
    if (p < stop && *p != '\n') return fail(p, "unexpected text after the value (expected the end of the line)");
    if (p < stop) ++p;
    out.push_back(t);
  }
}

}  // namespace

std::vector<Triplet> parse_triplets(const std::string& path, std::string_view text, Index rows, Index cols,
                                    int threads) {
  if (text.empty()) throw InputError(path, "empty file: no entries");
  return parse_triplet_lines(path, text, rows, cols, threads, nullptr);
}

std::vector<Triplet> parse_triplet_lines(const std::string& path, std::string_view text, Index rows, Index cols,
                                         int threads, const std::function<std::uint64_t()>& lines_before) {
  threads = std::max(1, std::min<int>(threads, static_cast<int>(text.size() / (1 << 16)) + 1));
  // Chunk boundaries at line starts.
  std::vector<std::size_t> starts(threads + 1, text.size());
  starts[0] = 0;
  for (int t = 1; t < threads; ++t) {
    std::size_t at = std::max(starts[t - 1], text.size() * t / threads);
    while (at < text.size() && at > 0 && text[at - 1] != '\n') ++at;
    starts[t] = at;
  }
  std::vector<std::vector<Triplet>> parts(threads);
  std::vector<Fault> faults(threads);
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int t = 0; t < threads; ++t) {
    parts[t].reserve((starts[t + 1] - starts[t]) / 12 + 1);
    parse_lines(text, starts[t], starts[t + 1], rows, cols, parts[t], faults[t]);
  }
  for (const Fault& f : faults)  // the first fault in the file
    if (f.offset != std::string_view::npos)
      throw InputError(path, (lines_before ? lines_before() : 0) + line_of(text, f.offset), f.what);
  std::size_t total = 0;
  for (const auto& part : parts) total += part.size();
  std::vector<Triplet> triplets;
  triplets.reserve(total);
  for (const auto& part : parts) triplets.insert(triplets.end(), part.begin(), part.end());
  return triplets;
}

namespace {

// The lines of `path` that start in the byte range [begin, end), parsed (bytes_parsed grows by
// the bytes of those lines); lines_end is set to the byte after the last of them (end at least).
std::vector<Triplet> parse_range(const std::string& path, std::uint64_t size, std::uint64_t begin, std::uint64_t end,
                                 Index rows, Index cols, int threads, std::uint64_t& bytes_parsed,
                                 std::uint64_t& lines_end) {
  lines_end = end;
  if (begin == end) return {};
  // Bytes [begin - 1, end), then on until the newline that ends the line holding byte end - 1.
  const std::uint64_t from = begin > 0 ? begin - 1 : 0;
  std::string text = read_file_range(path, from, end);
  constexpr std::uint64_t kPiece = 1 << 16;
  // Each byte is searched once: a long line must not be scanned again for every piece appended
  // (a 100 MB line took 18 s with 2 ranks, against 3 s with 1).
  std::size_t searched = end - 1 - from;
  while (from + text.size() < size && text.find('\n', searched) == std::string::npos) {
    searched = text.size();
    text += read_file_range(path, from + text.size(), std::min(size, from + text.size() + kPiece));
  }
  // First line that starts at or after `begin`, last that starts before `end`.
  std::size_t first = 0;
  if (begin > 0) {
    const std::size_t newline = text.find('\n');
    first = newline == std::string::npos ? text.size() : newline + 1;
  }
  const std::size_t newline_at_end = text.find('\n', end - 1 - from);
  const std::size_t last = newline_at_end == std::string::npos ? text.size() : newline_at_end + 1;
  lines_end = std::max<std::uint64_t>(end, from + last);
  if (first >= last || from + first >= end) return {};
  bytes_parsed += last - first;
  const std::string_view lines(text.data() + first, last - first);
  return parse_triplet_lines(path, lines, rows, cols, threads,
                             [&] { return count_lines_before(path, from + first); });
}

}  // namespace

std::vector<Triplet> parse_file_share(const std::string& path, Index rows, Index cols, int rank, int ranks,
                                      int threads, std::uint64_t& bytes_parsed, std::uint64_t piece_bytes,
                                      int first_rank) {
  if (piece_bytes == 0) throw std::invalid_argument("parse_file_share: pieces of 0 bytes");
  if (is_gzip_file(path)) {
    std::vector<Triplet> triplets;
    read_gzip_file(path, [&](const TextReader& read) {
      triplets = parse_text_share(path, read, rows, cols, rank, ranks, first_rank, threads, bytes_parsed,
                                  std::min(piece_bytes, kStreamPieceBytes));
    });
    return triplets;
  }
  const std::uint64_t size = file_size(path);
  if (size == 0) throw InputError(path, "empty file: no entries");
  const std::uint64_t begin = size * rank / ranks, end = size * (rank + 1) / ranks;
  std::vector<Triplet> triplets;
  // The next piece starts where the last line of this one ended (a line longer than a piece is
  // read once, not once per piece it spans).
  for (std::uint64_t piece = begin, next = begin; piece < end; piece = next) {
    const std::uint64_t piece_end = std::min(end, piece + piece_bytes);
    std::vector<Triplet> parsed = parse_range(path, size, piece, piece_end, rows, cols, threads, bytes_parsed, next);
    if (piece == begin && next >= end) {
      triplets = std::move(parsed);  // the whole share in one piece
    } else {
      if (piece == begin) {
        // Room for the whole share at the first piece's density (and 5% more), so that appending
        // does not reallocate (a reallocation would hold the old and the new buffer at once).
        const double per_byte = static_cast<double>(parsed.size()) / static_cast<double>(next - piece);
        triplets.reserve(static_cast<std::size_t>(1.05 * per_byte * static_cast<double>(end - begin)) + parsed.size());
      }
      triplets.insert(triplets.end(), parsed.begin(), parsed.end());
    }
  }
  return triplets;
}

std::vector<Triplet> parse_text_share(const std::string& name, const std::function<std::size_t(char*, std::size_t)>& read,
                                      Index rows, Index cols, int rank, int ranks, int first_rank, int threads,
                                      std::uint64_t& bytes_parsed, std::uint64_t piece_bytes) {
  if (piece_bytes == 0) throw std::invalid_argument("parse_text_share: pieces of 0 bytes");
  std::vector<Triplet> triplets;
  std::string buffer;
  std::size_t held = 0;  // bytes of the last piece's unfinished line, at the buffer's start
  std::uint64_t lines_before = 0, total = 0, piece = 0;
  for (bool at_end = false; !at_end;) {
    buffer.resize(held + piece_bytes);
    std::size_t got = held;
    while (got < buffer.size()) {
      std::size_t n = 0;
      try {
        // At most 1 MiB a call: a fault is then named near the line where the stream broke.
        n = read(buffer.data() + got, std::min<std::size_t>(buffer.size() - got, 1 << 20));
      } catch (const StreamFault& fault) {  // named at the line it reached
        const auto read_lines = std::count(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(got), '\n');
        throw InputError(name, lines_before + 1 + static_cast<std::uint64_t>(read_lines), fault.what());
      }
      if (n == 0) {
        at_end = true;
        break;
      }
      got += n;
    }
    total += got - held;
    // Whole lines only, but all of the text at its end. No newline in the new bytes (the held ones
    // have none): a line longer than a piece, read on.
    std::size_t cut = got;
    if (!at_end) {
      const std::size_t newline = std::string_view(buffer.data() + held, got - held).rfind('\n');
      if (newline == std::string_view::npos) {
        held = got;
        continue;
      }
      cut = held + newline + 1;
    }
    const std::string_view lines(buffer.data(), cut);
    const bool mine = (piece + static_cast<std::uint64_t>(ranks - first_rank)) % ranks == static_cast<std::uint64_t>(rank);
    if (mine && !lines.empty()) {
      bytes_parsed += lines.size();
      std::vector<Triplet> parsed = parse_triplet_lines(name, lines, rows, cols, threads, [&] { return lines_before; });
      if (triplets.empty()) triplets = std::move(parsed);
      else triplets.insert(triplets.end(), parsed.begin(), parsed.end());
    }
    lines_before += static_cast<std::uint64_t>(std::count(lines.begin(), lines.end(), '\n'));
    ++piece;
    std::memmove(buffer.data(), buffer.data() + cut, got - cut);
    held = got - cut;
  }
  if (total == 0) throw InputError(name, "empty file: no entries");
  return triplets;
}

CsrMatrix read_triplet_matrix(const std::string& path, Index rows, Index cols, int threads) {
  std::uint64_t bytes_parsed = 0;
  return triplets_to_matrix(path, rows, cols, parse_file_share(path, rows, cols, 0, 1, threads, bytes_parsed));
}

CsrMatrix triplets_to_matrix(const std::string& path, Index rows, Index cols, const std::vector<Triplet>& triplets) {
  try {
    return from_triplets<RowMajor>(rows, cols, triplets);
  } catch (const DuplicateEntry&) {
    // Every line holds one triplet, so triplet k is on line k + 1: find the first repeat.
    std::unordered_set<std::uint64_t> seen;
    for (std::size_t k = 0; k < triplets.size(); ++k) {
      const std::uint64_t key = (static_cast<std::uint64_t>(triplets[k].row) << 32) | triplets[k].col;
      if (!seen.insert(key).second)
        throw InputError(path, k + 1,
                         "duplicate entry (" + std::to_string(triplets[k].row + 1) + ", " +
                             std::to_string(triplets[k].col + 1) + ")");
    }
    throw;
  }
}

std::string layer_path(const std::string& dir, Index neurons, Index layer) {
  return dir + "/n" + std::to_string(neurons) + "-l" + std::to_string(layer) + ".tsv";
}

std::string layer_file(const std::string& dir, Index neurons, Index layer) {
  const std::string path = layer_path(dir, neurons, layer);
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 && ::stat((path + ".gz").c_str(), &info) == 0) return path + ".gz";
  return path;
}

void read_network_files_exist(const std::string& dir, Index neurons, Index layers) {
  struct stat info {};
  if (::stat(dir.c_str(), &info) != 0)  // the real reason: a link loop or a permission is not "not found"
    throw InputError(dir, errno == ENOENT ? std::string("network directory not found")
                                          : std::string("cannot open the network: ") + std::strerror(errno));
  if (!S_ISDIR(info.st_mode)) throw InputError(dir, "not a directory (--network takes the folder of nN-lK.tsv files)");
  for (Index l = 1; l <= layers; ++l) {
    const std::string path = layer_file(dir, neurons, l);
    if (::stat(path.c_str(), &info) != 0)
      throw InputError(path, errno == ENOENT ? "missing layer file (layer " + std::to_string(l) + " of " +
                                                   std::to_string(layers) + "), nor " +
                                                   path.substr(path.rfind('/') + 1) + ".gz"
                                             : std::string(std::strerror(errno)) + " (layer " + std::to_string(l) +
                                                   " of " + std::to_string(layers) + ")");
  }
}

Network read_network(const std::string& dir, Index neurons, Index layers, Value bias, int threads) {
  Network network(layers);
  if (is_tar_network(dir)) {  // one member after the other (a tar.gz is one stream)
    read_tar_layers(dir, neurons, layers, [&](Index l, const std::string& name, const TextReader& read) {
      std::uint64_t bytes_parsed = 0;
      network[l].weights_csr = triplets_to_matrix(
          name, neurons, neurons, parse_text_share(name, read, neurons, neurons, 0, 1, 0, threads, bytes_parsed));
      network[l].bias.assign(neurons, bias);
    });
    return network;
  }
  read_network_files_exist(dir, neurons, layers);
  std::vector<std::exception_ptr> errors(layers);
  // Layers are many small files: one file per thread at a time.
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(dynamic, 1)
  for (Index l = 0; l < layers; ++l) {
    try {
      network[l].weights_csr = read_triplet_matrix(layer_file(dir, neurons, l + 1), neurons, neurons, 1);
      network[l].bias.assign(neurons, bias);
    } catch (...) {
      errors[l] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)  // the first bad layer
    if (e) std::rethrow_exception(e);
  return network;
}

std::vector<Index> read_categories(const std::string& path, Index rows) {
  return parse_categories(path, read_whole_file(path), rows);
}

std::vector<Index> parse_categories(const std::string& path, std::string_view text, Index rows) {
  std::vector<Index> categories;
  const char* p = text.data();
  const char* const stop = text.data() + text.size();
  while (p < stop) {
    const char* line = p;
    auto fail = [&](const std::string& what) {
      return InputError(path, line_of(text, static_cast<std::size_t>(line - text.data())), what);
    };
    Index row = 0;
    const std::string why = parse_index(p, stop, rows, "row", row);
    if (!why.empty()) throw fail(why);
    if (p < stop && *p == '\r') ++p;
    if (p < stop && *p != '\n') throw fail("unexpected text after the row number");
    if (p < stop) ++p;
    if (!categories.empty() && row <= categories.back())
      throw fail(row == categories.back() ? "repeated row " + std::to_string(row + 1)
                                          : "rows not in ascending order (" + std::to_string(row + 1) + " after " +
                                                std::to_string(categories.back() + 1) + ")");
    categories.push_back(row);
  }
  return categories;
}

void write_categories(const std::string& path, const std::vector<Index>& categories) {
  std::string text;
  text.reserve(categories.size() * 7);
  for (Index row : categories) {
    text += std::to_string(row + 1);
    text += '\n';
  }
  write_file_atomically(path, text);
}

}  // namespace sdnn
