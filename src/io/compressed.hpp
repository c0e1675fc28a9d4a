// compressed.hpp: the official downloads read as they are shipped, streaming, never unpacked to
// disk:
// - a gzip file (sparse-images-N.tsv.gz, nN-lK.tsv.gz; a name ending in .gz or the gzip magic
//   1f 8b at its start) is decompressed by zlib as it is read;
// - a network archive neuronN.tar.gz (a tar of the layer files nN-lK.tsv, in any folder, gzip,
//   bzip2, xz or none) is read member by member by libarchive.
// A source is handed out as a TextReader: read(buffer, size) fills up to size bytes and returns
// how many (0 at the end). A fault while reading (a truncated or corrupt stream) throws
// StreamFault, which the parser (io/tsv.hpp, parse_text_share) turns into an InputError naming
// the file, or "archive[member]", and the line it reached; other faults (not a gzip file, not a
// tar archive) throw InputError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

#include "spmm/sparse_matrix.hpp"

namespace sdnn {

struct StreamFault : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using TextReader = std::function<std::size_t(char* buffer, std::size_t size)>;

// True when `path` ends in ".gz" or is a regular file starting with the gzip magic.
bool is_gzip_file(const std::string& path);

// Opens the gzip file `path` (a regular file) and hands consume() its decompressed text.
void read_gzip_file(const std::string& path, const std::function<void(const TextReader&)>& consume);

// Lines of a gzip file, estimated from its size and the lines per compressed byte of its first
// 4 MiB of text (exact when shorter); 0 when it cannot be read (the loader reports why).
std::uint64_t estimate_gzip_lines(const std::string& path);

// True when --network names a regular file that is not an sdnn archive: it is read as a tar.
bool is_tar_network(const std::string& path);

// The name of a tar member in messages: "archive[member]".
std::string member_name(const std::string& archive, const std::string& member);

// The members nN-lK.tsv (any folder) with K in 1..layers of the tar archive at `path`, in archive
// order: consume(K - 1, member_name(path, member), reader). Reading stops once all `layers` are
// seen. Other members are skipped; a layer found twice, or missing at the end, is an InputError.
void read_tar_layers(const std::string& path, Index neurons, Index layers,
                     const std::function<void(Index layer, const std::string& name, const TextReader&)>& consume);

}  // namespace sdnn
