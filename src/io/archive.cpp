// archive.cpp: writing and checked reading of sdnn's binary archives (see archive.hpp).
#include "io/archive.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/array_wrapper.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <cstring>
#include <fstream>
#include <streambuf>
#include <type_traits>

#include "io/input_error.hpp"
#include "io/output_file.hpp"
#include "io/tsv.hpp"

namespace sdnn {
namespace {

constexpr std::uint64_t kFnvBasis = 0xcbf29ce484222325ull;
constexpr std::uint64_t kFnvPrime = 0x100000001b3ull;
constexpr char kNetworkMagic[16] = {'S', 'D', 'N', 'N', ' ', 'n', 'e', 't', 'w', 'o', 'r', 'k', 0, 0, 0, 0};
constexpr char kInputsMagic[16] = {'S', 'D', 'N', 'N', ' ', 'i', 'n', 'p', 'u', 't', 's', 0, 0, 0, 0, 0};
constexpr std::uint64_t kFixedHeaderBytes = 16 + 4 * sizeof(std::uint32_t);
constexpr auto kArchiveFlags = boost::archive::no_header | boost::archive::no_codecvt;

std::uint64_t fold(std::uint64_t hash, std::uint64_t value) { return (hash ^ value) * kFnvPrime; }

template <class T>
std::uint64_t checksum_of(const T* data, std::size_t count) {
  return checksum_bytes(data, count * sizeof(T));
}

// The fixed part of a header: magic and four numbers, as the bytes the file holds.
struct FixedHeader {
  char magic[16];
  std::uint32_t version, a, b, c;  // network: N, L, 0; inputs: N, M, B
};
static_assert(sizeof(FixedHeader) == kFixedHeaderBytes, "the fixed header has no padding");
static_assert(std::is_trivially_copyable_v<FixedHeader>, "the fixed header is written as its bytes");

std::uint64_t header_checksum(const FixedHeader& h, const std::vector<std::uint64_t>& table) {
  return fold(fold(kFnvBasis, checksum_of(&h, 1)), checksum_of(table.data(), table.size()));
}

// Writes an archive through an OutputFile (a new temporary beside `path`, renamed over it by
// commit()); Boost's archive writes straight into the file's buffer.
class ArchiveWriter {
 public:
  explicit ArchiveWriter(const std::string& path) : file_(path), buffer_(file_) {
    archive_ = std::make_unique<boost::archive::binary_oarchive>(buffer_, kArchiveFlags);
  }
  template <class T>
  void put(const T* data, std::size_t count) {
    try {
      if (count > 0) *archive_ << boost::serialization::make_array(data, count);
    } catch (const boost::archive::archive_exception& e) {
      throw InputError(file_.path(), std::string("cannot write: ") + e.what());
    }
  }
  void commit() {
    archive_.reset();
    file_.commit();
  }

 private:
  // A stream buffer that appends to the OutputFile (which buffers and reports its own errors).
  class Buffer : public std::streambuf {
   public:
    explicit Buffer(OutputFile& file) : file_(file) {}

   protected:
    std::streamsize xsputn(const char* bytes, std::streamsize count) override {
      file_.append(bytes, static_cast<std::size_t>(count));
      return count;
    }
    int_type overflow(int_type c) override {
      if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
      const char byte = traits_type::to_char_type(c);
      file_.append(&byte, 1);
      return c;
    }

   private:
    OutputFile& file_;
  };

  OutputFile file_;
  Buffer buffer_;
  std::unique_ptr<boost::archive::binary_oarchive> archive_;
};

void check_offsets(const std::string& path, const std::string& what, const Offset* offsets, Index majors,
                   std::uint64_t nnz) {
  if (offsets[0] != 0 || offsets[majors] != nnz) throw InputError(path, what + ": offsets do not span its nonzeros");
  for (Index i = 0; i < majors; ++i)
    if (offsets[i + 1] < offsets[i]) throw InputError(path, what + ": offsets not ascending");
}

// Column indices in range and strictly ascending in every row, values finite.
void check_rows(const std::string& path, const std::string& what, const CsrMatrix& m) {
  for (Index i = 0; i < m.rows(); ++i)
    for (Offset p = m.begin(i); p < m.end(i); ++p) {
      if (m.indices[p] >= m.cols() || (p > m.begin(i) && m.indices[p] <= m.indices[p - 1]))
        throw InputError(path, what + ": column indices out of range or not ascending in row " + std::to_string(i + 1));
      if (!std::isfinite(m.values[p])) throw InputError(path, what + ": value not finite in row " + std::to_string(i + 1));
    }
}

}  // namespace

namespace detail {

// An archive file open for reading: arrays read at given byte offsets through a Boost binary
// archive; any stream fault becomes an InputError.
class ArchiveFile {
 public:
  explicit ArchiveFile(const std::string& path) : path_(path), size_(file_size(path)) {
    in_.open(path, std::ios::binary);
    if (!in_) throw InputError(path, std::string("cannot open: ") + std::strerror(errno));
  }
  const std::string& path() const { return path_; }
  std::uint64_t size() const { return size_; }

  template <class T>
  void read(std::uint64_t at, T* data, std::size_t count, const std::string& what) {
    if (count == 0) return;
    if (at + count * sizeof(T) > size_) throw InputError(path_, "truncated in " + what);
    try {
      in_.clear();
      in_.seekg(static_cast<std::streamoff>(at));
      boost::archive::binary_iarchive archive(in_, kArchiveFlags);
      archive >> boost::serialization::make_array(data, count);
    } catch (const boost::archive::archive_exception& e) {
      throw InputError(path_, "cannot read " + what + " (" + e.what() + ")");
    } catch (const std::ios_base::failure& e) {
      throw InputError(path_, "cannot read " + what + " (" + e.what() + ")");
    }
    if (!in_) throw InputError(path_, "cannot read " + what);
  }

  // Checks magic and version, reads the table and checks the header's checksum. `table_size`
  // gives the table's length from the fixed header.
  template <class TableSize>
  FixedHeader read_header(ArchiveKind expected, std::vector<std::uint64_t>& table, TableSize&& table_size) {
    const bool network = expected == ArchiveKind::network;
    const char* magic = network ? kNetworkMagic : kInputsMagic;
    const char* other_magic = network ? kInputsMagic : kNetworkMagic;
    const std::string kind = network ? "network" : "inputs", other_kind = network ? "inputs" : "network";
    FixedHeader h{};
    char seen[16] = {};
    read(0, seen, std::min<std::uint64_t>(size_, 16), "the magic");
    if (std::memcmp(seen, magic, 16) != 0) {
      throw InputError(path_, std::memcmp(seen, other_magic, 16) == 0
                                  ? "an sdnn " + other_kind + " archive where " + (network ? "a network" : "an inputs") +
                                        " archive is expected"
                                  : "not an sdnn " + kind + " archive (bad magic)");
    }
    if (size_ < kFixedHeaderBytes) throw InputError(path_, "truncated in the header");
    read(0, reinterpret_cast<char*>(&h), sizeof h, "the header");
    if (h.version != kArchiveVersion)
      throw InputError(path_, "archive format version " + std::to_string(h.version) + ", this sdnn reads version " +
                                  std::to_string(kArchiveVersion) + " (run sdnn convert again)");
    const std::uint64_t entries = table_size(h);
    if (entries > (size_ - kFixedHeaderBytes) / sizeof(std::uint64_t))
      throw InputError(path_, "corrupt or truncated header (its sizes exceed the file)");
    table.resize(entries);
    read(kFixedHeaderBytes, table.data(), entries, "the header");
    std::uint64_t stored = 0;
    read(kFixedHeaderBytes + entries * sizeof(std::uint64_t), &stored, 1, "the header");
    if (stored != header_checksum(h, table)) throw InputError(path_, "corrupt header (checksum mismatch)");
    return h;
  }
  std::uint64_t data_start(std::size_t entries) const {
    return kFixedHeaderBytes + (entries + 1) * sizeof(std::uint64_t);
  }
  // The whole file must be exactly `expected` bytes.
  void check_size(std::uint64_t expected) const {
    if (size_ < expected)
      throw InputError(path_, "truncated: " + std::to_string(size_) + " bytes, the header announces " +
                                  std::to_string(expected));
    if (size_ > expected)
      throw InputError(path_, "corrupt: " + std::to_string(size_ - expected) + " unexpected bytes after the data");
  }

 private:
  std::string path_;
  std::uint64_t size_;
  std::ifstream in_;
};

}  // namespace detail

std::uint64_t checksum_bytes(const void* bytes, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(bytes);
  std::uint64_t lane[4] = {kFnvBasis, kFnvBasis ^ 1, kFnvBasis ^ 2, kFnvBasis ^ 3};
  std::size_t i = 0;
  for (; i + 32 <= size; i += 32)
    for (int l = 0; l < 4; ++l) {
      std::uint64_t word;
      std::memcpy(&word, p + i + 8 * l, 8);
      lane[l] = fold(lane[l], word);
    }
  for (; i < size; ++i) lane[0] = fold(lane[0], p[i]);
  std::uint64_t hash = kFnvBasis;
  for (std::uint64_t l : lane) hash = fold(hash, l);
  return fold(hash, size);
}

ArchiveKind archive_kind(const std::string& path) {
  // Only a regular file can be an archive; opening a named pipe would wait for a writer.
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return ArchiveKind::none;
  std::ifstream in(path, std::ios::binary);
  char magic[16] = {};
  if (!in || !in.read(magic, 16)) return ArchiveKind::none;  // also a directory (the read fails)
  if (std::memcmp(magic, kNetworkMagic, 16) == 0) return ArchiveKind::network;
  if (std::memcmp(magic, kInputsMagic, 16) == 0) return ArchiveKind::inputs;
  return ArchiveKind::none;
}

bool is_archive_path(const std::string& path) {
  const std::string extension = ".sdnn";
  if (path.size() >= extension.size() && path.compare(path.size() - extension.size(), extension.size(), extension) == 0)
    return true;
  return archive_kind(path) != ArchiveKind::none;
}

void write_network_archive(const std::string& path, const Network& network) {
  if (network.empty()) throw std::invalid_argument("write_network_archive: no layers");
  const Index n = network[0].weights_csr.rows();
  FixedHeader h{};
  std::memcpy(h.magic, kNetworkMagic, 16);
  h.version = kArchiveVersion;
  h.a = n;
  h.b = static_cast<std::uint32_t>(network.size());
  h.c = 0;
  std::vector<std::uint64_t> table;
  for (const Layer& layer : network) {
    if (layer.weights_csr.rows() != n || layer.weights_csr.cols() != n || layer.bias.size() != n)
      throw std::invalid_argument("write_network_archive: every layer must be N x N with N bias values");
    table.push_back(layer.weights_csr.nnz());
  }
  ArchiveWriter out(path);
  out.put(reinterpret_cast<const char*>(&h), sizeof h);
  out.put(table.data(), table.size());
  const std::uint64_t header_sum = header_checksum(h, table);
  out.put(&header_sum, 1);
  for (const Layer& layer : network) {
    const CsrMatrix& w = layer.weights_csr;
    const std::size_t nnz = w.nnz();
    out.put(w.offsets.data(), w.offsets.size());
    out.put(w.indices.data(), nnz);
    out.put(w.values.data(), nnz);
    out.put(layer.bias.data(), layer.bias.size());
    std::uint64_t sum = kFnvBasis;
    for (std::uint64_t part : {checksum_of(w.offsets.data(), w.offsets.size()), checksum_of(w.indices.data(), nnz),
                               checksum_of(w.values.data(), nnz), checksum_of(layer.bias.data(), layer.bias.size())})
      sum = fold(sum, part);
    out.put(&sum, 1);
  }
  out.commit();
}

void write_inputs_archive(const std::string& path, const CsrMatrix& inputs, Index block_rows) {
  if (block_rows == 0) throw std::invalid_argument("write_inputs_archive: block_rows must be positive");
  const Index m = inputs.rows();
  FixedHeader h{};
  std::memcpy(h.magic, kInputsMagic, 16);
  h.version = kArchiveVersion;
  h.a = inputs.cols();
  h.b = m;
  h.c = block_rows;
  const Index blocks = static_cast<Index>((static_cast<std::uint64_t>(m) + block_rows - 1) / block_rows);
  std::vector<std::uint64_t> table(blocks);
  for (Index b = 0; b < blocks; ++b) {
    const Index first = b * block_rows, last = std::min<Index>(m, first + block_rows);
    table[b] = inputs.offsets[last] - inputs.offsets[first];
  }
  ArchiveWriter out(path);
  out.put(reinterpret_cast<const char*>(&h), sizeof h);
  out.put(table.data(), table.size());
  const std::uint64_t header_sum = header_checksum(h, table);
  out.put(&header_sum, 1);
  std::vector<Offset> offsets;
  for (Index b = 0; b < blocks; ++b) {
    const Index first = b * block_rows, last = std::min<Index>(m, first + block_rows);
    const Offset base = inputs.offsets[first];
    offsets.assign(inputs.offsets.begin() + first, inputs.offsets.begin() + last + 1);
    for (Offset& o : offsets) o -= base;
    const std::size_t nnz = table[b];
    out.put(offsets.data(), offsets.size());
    out.put(inputs.indices.data() + base, nnz);
    out.put(inputs.values.data() + base, nnz);
    std::uint64_t sum = kFnvBasis;
    for (std::uint64_t part : {checksum_of(offsets.data(), offsets.size()), checksum_of(inputs.indices.data() + base, nnz),
                               checksum_of(inputs.values.data() + base, nnz)})
      sum = fold(sum, part);
    out.put(&sum, 1);
  }
  out.commit();
}

NetworkArchiveReader::NetworkArchiveReader(const std::string& path, Index neurons, Index layers)
    : file_(std::make_unique<detail::ArchiveFile>(path)) {
  const FixedHeader h = file_->read_header(ArchiveKind::network, nonzeros_, [](const FixedHeader& x) { return x.b; });
  neurons_ = h.a;
  if (neurons_ != neurons)
    throw InputError(path, "the archive holds a " + std::to_string(neurons_) + "-neuron network, not " +
                               std::to_string(neurons) + " (--neurons)");
  if (layers > this->layers())
    throw InputError(path, "the archive holds " + std::to_string(this->layers()) + " layers, fewer than the " +
                               std::to_string(layers) + " asked for (--layers)");
  const std::uint64_t n = neurons_;
  std::uint64_t at = file_->data_start(nonzeros_.size());
  for (std::uint64_t nnz : nonzeros_) {
    if (nnz > n * n) throw InputError(path, "corrupt header (a layer with more than N x N nonzeros)");
    layer_at_.push_back(at);
    at += (n + 1) * sizeof(Offset) + nnz * (sizeof(Index) + sizeof(Value)) + n * sizeof(Value) + sizeof(std::uint64_t);
  }
  file_->check_size(at);
}

NetworkArchiveReader::~NetworkArchiveReader() = default;

void NetworkArchiveReader::read_layer(Index layer, CsrMatrix& weights, std::vector<Value>& bias) {
  const std::string what = "layer " + std::to_string(layer + 1);
  const Index n = neurons_;
  const std::uint64_t nnz = nonzeros_.at(layer);
  weights.reset(n, n);
  weights.indices.resize(nnz);
  weights.values.resize(nnz);
  bias.resize(n);
  std::uint64_t stored = 0, at = layer_at_[layer];
  file_->read(at, weights.offsets.data(), n + 1, what);
  at += (std::uint64_t{n} + 1) * sizeof(Offset);
  file_->read(at, weights.indices.data(), nnz, what);
  at += nnz * sizeof(Index);
  file_->read(at, weights.values.data(), nnz, what);
  at += nnz * sizeof(Value);
  file_->read(at, bias.data(), n, what);
  at += std::uint64_t{n} * sizeof(Value);
  file_->read(at, &stored, 1, what);
  std::uint64_t sum = kFnvBasis;
  for (std::uint64_t part : {checksum_of(weights.offsets.data(), n + 1), checksum_of(weights.indices.data(), nnz),
                             checksum_of(weights.values.data(), nnz), checksum_of(bias.data(), n)})
    sum = fold(sum, part);
  if (sum != stored) throw InputError(file_->path(), "corrupt " + what + " (checksum mismatch)");
  check_offsets(file_->path(), what, weights.offsets.data(), n, nnz);
  check_rows(file_->path(), what, weights);
  for (Value b : bias)
    if (!std::isfinite(b)) throw InputError(file_->path(), what + ": bias not finite");
}

InputsArchiveReader::InputsArchiveReader(const std::string& path, Index neurons, Index rows)
    : file_(std::make_unique<detail::ArchiveFile>(path)) {
  const FixedHeader h = file_->read_header(ArchiveKind::inputs, nonzeros_, [&](const FixedHeader& x) {
    if (x.c == 0) throw InputError(path, "corrupt header (0 rows per block)");
    return (static_cast<std::uint64_t>(x.b) + x.c - 1) / x.c;
  });
  neurons_ = h.a;
  rows_ = h.b;
  block_rows_ = h.c;
  if (neurons_ != neurons)
    throw InputError(path, "the archive holds inputs of " + std::to_string(neurons_) + " neurons, not " +
                               std::to_string(neurons) + " (--neurons)");
  if (rows_ != rows)
    throw InputError(path, "the archive holds " + std::to_string(rows_) + " inputs, not " + std::to_string(rows) +
                               " (--inputs)");
  std::uint64_t at = file_->data_start(nonzeros_.size());
  for (Index b = 0; b < blocks(); ++b) {
    const std::uint64_t block = std::min<std::uint64_t>(block_rows_, rows_ - std::uint64_t{b} * block_rows_);
    if (nonzeros_[b] > block * neurons_) throw InputError(path, "corrupt header (a block with too many nonzeros)");
    block_at_.push_back(at);
    at += (block + 1) * sizeof(Offset) + nonzeros_[b] * (sizeof(Index) + sizeof(Value)) + sizeof(std::uint64_t);
  }
  file_->check_size(at);
}

InputsArchiveReader::~InputsArchiveReader() = default;

CsrMatrix InputsArchiveReader::read_block(Index block) {
  const std::string what = "block " + std::to_string(block + 1) + " (rows from " +
                           std::to_string(std::uint64_t{block} * block_rows_ + 1) + ")";
  const Index rows = std::min<Index>(block_rows_, rows_ - block * block_rows_);
  const std::uint64_t nnz = nonzeros_.at(block);
  CsrMatrix m(rows, neurons_);
  m.indices.resize(nnz);
  m.values.resize(nnz);
  std::uint64_t stored = 0, at = block_at_[block];
  file_->read(at, m.offsets.data(), std::size_t{rows} + 1, what);
  at += (std::uint64_t{rows} + 1) * sizeof(Offset);
  file_->read(at, m.indices.data(), nnz, what);
  at += nnz * sizeof(Index);
  file_->read(at, m.values.data(), nnz, what);
  at += nnz * sizeof(Value);
  file_->read(at, &stored, 1, what);
  std::uint64_t sum = kFnvBasis;
  for (std::uint64_t part : {checksum_of(m.offsets.data(), std::size_t{rows} + 1), checksum_of(m.indices.data(), nnz),
                             checksum_of(m.values.data(), nnz)})
    sum = fold(sum, part);
  if (sum != stored) throw InputError(file_->path(), "corrupt " + what + " (checksum mismatch)");
  check_offsets(file_->path(), what, m.offsets.data(), rows, nnz);
  check_rows(file_->path(), what, m);
  return m;
}

void read_network_layers(const std::string& path, Index neurons, Index layers, int threads,
                         const std::function<void(Index, CsrMatrix&, std::vector<Value>&)>& consume) {
  { NetworkArchiveReader check(path, neurons, layers); }  // header faults surface here, once
  threads = std::max(1, std::min<int>(threads, static_cast<int>(layers)));
  std::vector<std::exception_ptr> errors(layers);
#pragma omp parallel num_threads(threads)
  {
    std::unique_ptr<NetworkArchiveReader> reader;
    CsrMatrix weights;
    std::vector<Value> bias;
#pragma omp for schedule(dynamic, 1)
    for (Index l = 0; l < layers; ++l) {
      try {
        if (!reader) reader = std::make_unique<NetworkArchiveReader>(path, neurons, layers);
        reader->read_layer(l, weights, bias);
        consume(l, weights, bias);
      } catch (...) {
        errors[l] = std::current_exception();
      }
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

void read_input_blocks(const std::string& path, Index neurons, Index rows, int threads,
                       const std::function<bool(Index, Index)>& wanted,
                       const std::function<void(Index, CsrMatrix&)>& consume) {
  InputsArchiveReader first(path, neurons, rows);
  std::vector<Index> blocks;
  for (Index b = 0; b < first.blocks(); ++b) {
    const Index begin = first.block_first_row(b);
    const Index end = static_cast<Index>(std::min<std::uint64_t>(rows, std::uint64_t{begin} + first.block_rows()));
    if (wanted(begin, end)) blocks.push_back(b);
  }
  threads = std::max(1, threads);
  std::vector<std::unique_ptr<InputsArchiveReader>> readers(threads);
  std::vector<CsrMatrix> batch(threads);
  std::vector<std::exception_ptr> errors(threads);
  for (std::size_t at = 0; at < blocks.size(); at += threads) {
    const int count = static_cast<int>(std::min<std::size_t>(threads, blocks.size() - at));
#pragma omp parallel for num_threads(count) schedule(static, 1)
    for (int t = 0; t < count; ++t) {
      try {
        if (!readers[t]) readers[t] = std::make_unique<InputsArchiveReader>(path, neurons, rows);
        batch[t] = readers[t]->read_block(blocks[at + t]);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    }
    for (int t = 0; t < count; ++t) {
      if (errors[t]) std::rethrow_exception(errors[t]);
      consume(first.block_first_row(blocks[at + t]), batch[t]);
      batch[t] = CsrMatrix();
    }
  }
}

Network read_network_archive(const std::string& path, Index neurons, Index layers, int threads) {
  Network network(layers);
  read_network_layers(path, neurons, layers, threads, [&](Index l, CsrMatrix& weights, std::vector<Value>& bias) {
    network[l].weights_csr = std::move(weights);
    network[l].bias = std::move(bias);
  });
  return network;
}

CsrMatrix read_inputs_archive(const std::string& path, Index neurons, Index rows, int threads) {
  std::uint64_t total = 0;
  {
    InputsArchiveReader reader(path, neurons, rows);
    for (Index b = 0; b < reader.blocks(); ++b) total += reader.nonzeros(b);
  }
  CsrMatrix all(rows, neurons);
  all.indices.resize(total);
  all.values.resize(total);
  read_input_blocks(
      path, neurons, rows, threads, [](Index, Index) { return true; },
      [&](Index first, CsrMatrix& block) {
        const Offset at = all.offsets[first];
        for (Index r = 0; r < block.rows(); ++r) all.offsets[first + r + 1] = at + block.offsets[r + 1];
        std::copy(block.indices.begin(), block.indices.begin() + static_cast<std::ptrdiff_t>(block.nnz()),
                  all.indices.begin() + static_cast<std::ptrdiff_t>(at));
        std::copy(block.values.begin(), block.values.begin() + static_cast<std::ptrdiff_t>(block.nnz()),
                  all.values.begin() + static_cast<std::ptrdiff_t>(at));
      });
  return all;
}

}  // namespace sdnn
