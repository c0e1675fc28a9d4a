// archive.hpp: the binary cache of sdnn: a network or an input matrix in one file, written and read
// with Boost.Serialization binary archives (no Boost header: every byte is laid out below, so the
// size of a good file is known from its header and a truncated one is caught before reading).
//
// Network (neuronN-lL.sdnn):            Inputs (sparse-images-N-M.sdnn):
//   magic "SDNN network\0\0\0\0" (16)      magic "SDNN inputs\0\0\0\0\0" (16)
//   u32 version, u32 N, u32 L, u32 0       u32 version, u32 N, u32 M, u32 B (rows per block)
//   u64 nnz of each layer (L)              u64 nnz of each block (ceil(M / B))
//   u64 header checksum                    u64 header checksum
//   per layer: u64 offsets[N + 1],         per block of b = min(B, rest) rows: u64 offsets[b + 1]
//     u32 indices[nnz], f32 values[nnz],     (from 0), u32 indices[nnz], f32 values[nnz],
//     f32 bias[N], u64 checksum              u64 checksum
// Numbers are in the machine's byte order (little-endian on x86 and ARM). Checksums are FNV-1a
// 64 over 64-bit words in four interleaved lanes (checksum_bytes), combined array by array.
//
// Reading checks, in this order, and throws InputError("path: what") on the first fault: the
// magic, the version, the header's checksum, the sizes against the problem asked for (--neurons,
// --layers, --inputs), the file size against the header (truncated or trailing bytes), then per
// block its checksum and its structure (offsets from 0, ascending, ending at nnz; indices in range,
// strictly ascending in each row; values and bias finite). Boost exceptions never escape.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "spmm/layer.hpp"
#include "spmm/sparse_matrix.hpp"

namespace sdnn {

namespace detail {
class ArchiveFile;  // an open archive file (archive.cpp)
}

inline constexpr std::uint32_t kArchiveVersion = 1;
inline constexpr Index kArchiveBlockRows = 4096;  // input rows per block

enum class ArchiveKind { none, network, inputs };

// What the file at `path` is by its first 16 bytes: none for a directory, a missing, short or
// other file (TSV).
ArchiveKind archive_kind(const std::string& path);
// True when `path` ends in ".sdnn" or holds an archive's magic: it must then be read as an archive.
bool is_archive_path(const std::string& path);

// FNV-1a 64 over the 64-bit words of `bytes` in four interleaved lanes (the tail byte by byte),
// the lanes and the length folded into one value.
std::uint64_t checksum_bytes(const void* bytes, std::size_t size);

// Writes every layer (weights_csr, N x N, and bias of N values), atomically.
void write_network_archive(const std::string& path, const Network& network);
// Writes an M x N input matrix in blocks of `block_rows` rows, atomically.
void write_inputs_archive(const std::string& path, const CsrMatrix& inputs, Index block_rows = kArchiveBlockRows);

// A network archive opened and its header checked; layers read one at a time.
class NetworkArchiveReader {
 public:
  // `neurons` must equal the archive's N and `layers` be at most its L.
  NetworkArchiveReader(const std::string& path, Index neurons, Index layers);
  ~NetworkArchiveReader();
  NetworkArchiveReader(const NetworkArchiveReader&) = delete;
  NetworkArchiveReader& operator=(const NetworkArchiveReader&) = delete;

  Index neurons() const { return neurons_; }
  Index layers() const { return static_cast<Index>(nonzeros_.size()); }  // in the file
  std::uint64_t nonzeros(Index layer) const { return nonzeros_[layer]; }
  // Layer `layer` (0-based), checked: N x N CSR weights and N bias values.
  void read_layer(Index layer, CsrMatrix& weights, std::vector<Value>& bias);

 private:
  std::unique_ptr<detail::ArchiveFile> file_;
  Index neurons_ = 0;
  std::vector<std::uint64_t> nonzeros_;
  std::vector<std::uint64_t> layer_at_;  // byte offset of each layer
};

// An input archive opened and its header checked; blocks of rows read one at a time.
class InputsArchiveReader {
 public:
  // `neurons` and `rows` must equal the archive's N and M.
  InputsArchiveReader(const std::string& path, Index neurons, Index rows);
  ~InputsArchiveReader();
  InputsArchiveReader(const InputsArchiveReader&) = delete;
  InputsArchiveReader& operator=(const InputsArchiveReader&) = delete;

  Index rows() const { return rows_; }
  Index block_rows() const { return block_rows_; }
  Index blocks() const { return static_cast<Index>(nonzeros_.size()); }
  std::uint64_t nonzeros(Index block) const { return nonzeros_[block]; }
  Index block_first_row(Index block) const { return block * block_rows_; }
  // Block `block`, checked: its rows (numbered from 0) x N.
  CsrMatrix read_block(Index block);

 private:
  std::unique_ptr<detail::ArchiveFile> file_;
  Index neurons_ = 0, rows_ = 0, block_rows_ = 0;
  std::vector<std::uint64_t> nonzeros_;
  std::vector<std::uint64_t> block_at_;
};

// Layers 0..layers-1 of a network archive read by `threads` threads (each with its own file
// handle): consume(layer, weights, bias) runs on the thread that read the layer, so it must only
// touch what belongs to that layer. The fault of the lowest layer is rethrown after all.
void read_network_layers(const std::string& path, Index neurons, Index layers, int threads,
                         const std::function<void(Index, CsrMatrix&, std::vector<Value>&)>& consume);
// The blocks b of an input archive with wanted(b), read `threads` at a time in parallel and
// handed to consume(b, first_row, block) in ascending order on the calling thread.
void read_input_blocks(const std::string& path, Index neurons, Index rows, int threads,
                       const std::function<bool(Index first_row, Index last_row)>& wanted,
                       const std::function<void(Index first_row, CsrMatrix& block)>& consume);

// The first `layers` layers of a network archive.
Network read_network_archive(const std::string& path, Index neurons, Index layers, int threads = 1);
// A whole input archive as one M x N matrix.
CsrMatrix read_inputs_archive(const std::string& path, Index neurons, Index rows, int threads = 1);

}  // namespace sdnn
