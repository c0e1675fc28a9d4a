// tsv.hpp: readers and writers of the official Graph Challenge files (SPEC.md, 'Files').
//
// - inputs (sparse-images-N.tsv) and layers (nN-lK.tsv): TSV triplets "row<TAB>col<TAB>value",
//   1-based, read into 0-based CSR matrices whose shape comes from the problem, not the file;
// - categories: one 1-based row number per line, ascending.
// Every file may be gzipped, and a network may be a tar archive of its layer files: those are read
// as streams (io/compressed.hpp). Text is parsed in parallel (one chunk per thread,
// std::from_chars). Any fault throws InputError naming the file, the line and the fault. Categories are
// written through io/output_file.hpp's OutputFile, so no half-written file is ever left.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "spmm/layer.hpp"
#include "spmm/sparse_matrix.hpp"

namespace sdnn {

// The whole file as bytes. Throws InputError when it is missing, unreadable or a directory.
std::string read_whole_file(const std::string& path);

// TSV triplets of `text` (the content of `path`), 0-based, each checked: 1 <= row <= rows,
// 1 <= col <= cols, value finite. An empty text is an error. CRLF line ends are accepted.
std::vector<Triplet> parse_triplets(const std::string& path, std::string_view text, Index rows, Index cols,
                                    int threads);

// The same for a share of a file: `text` holds whole lines from somewhere inside `path`; may be
// empty. A fault's line number is lines_before() (called only on a fault) plus its line in text.
std::vector<Triplet> parse_triplet_lines(const std::string& path, std::string_view text, Index rows, Index cols,
                                         int threads, const std::function<std::uint64_t()>& lines_before);

// Opens `path` read-only (O_NONBLOCK: a named pipe must not wait for a writer) and fills `info`;
// InputError when it is missing, unreadable, a directory or not a regular file.
int open_regular_file(const std::string& path, struct stat& info);

// Size of a file in bytes; InputError when it is missing, unreadable or a directory.
std::uint64_t file_size(const std::string& path);
// Bytes [first, last) of a file (fewer at the end of the file).
std::string read_file_range(const std::string& path, std::uint64_t first, std::uint64_t last);
// Newlines in bytes [0, end) of a file (for the line number of a fault in a share).
std::uint64_t count_lines_before(const std::string& path, std::uint64_t end);

// The lines of `path` that start in share `rank` of `ranks` equal byte ranges
// [size*r/P, size*(r+1)/P), parsed by `threads` threads in pieces of at most `piece_bytes`
// (256 MB), so that the text held at once stays small next to the triplets (a 65536-neuron input
// file is 10 GB of text); the next piece starts where the last line of one ended. bytes_parsed
// grows by the bytes of those lines. An empty file is an error.
// A gzip file (io/compressed.hpp) cannot be split by byte ranges: every rank decompresses all of
// it and parses the pieces of its share (parse_text_share, pieces of at most kStreamPieceBytes);
// the first piece goes to rank first_rank, so that many small files spread over the ranks.
inline constexpr std::uint64_t kParsePieceBytes = std::uint64_t{256} << 20;
std::vector<Triplet> parse_file_share(const std::string& path, Index rows, Index cols, int rank, int ranks,
                                      int threads, std::uint64_t& bytes_parsed,
                                      std::uint64_t piece_bytes = kParsePieceBytes, int first_rank = 0);

// The lines of a text read in order by `read` (a gzip file, a tar member), whose share `rank` of
// `ranks` is every piece p with (p + ranks - first_rank) % ranks == rank (first_rank in
// 0..ranks-1); pieces hold the whole lines of about piece_bytes (a longer line makes a longer
// piece). Every rank reads the whole text. Faults name `name` and the line; an empty text is an
// error.
inline constexpr std::uint64_t kStreamPieceBytes = std::uint64_t{8} << 20;
std::vector<Triplet> parse_text_share(const std::string& name, const std::function<std::size_t(char*, std::size_t)>& read,
                                      Index rows, Index cols, int rank, int ranks, int first_rank, int threads,
                                      std::uint64_t& bytes_parsed, std::uint64_t piece_bytes = kStreamPieceBytes);

// A rows x cols CSR matrix of `triplets`, in the order of the lines of `name`; a duplicate entry
// is an InputError naming its line.
CsrMatrix triplets_to_matrix(const std::string& name, Index rows, Index cols, const std::vector<Triplet>& triplets);

// A rows x cols CSR matrix from a TSV triplet file (read in pieces, as parse_file_share);
// duplicate entries are an error.
CsrMatrix read_triplet_matrix(const std::string& path, Index rows, Index cols, int threads);

// Path of layer `layer` (1-based) of an N-neuron network in directory `dir`: dir/nN-lK.tsv.
std::string layer_path(const std::string& dir, Index neurons, Index layer);
// The file to read for that layer: dir/nN-lK.tsv, or dir/nN-lK.tsv.gz when only that exists.
std::string layer_file(const std::string& dir, Index neurons, Index layer);

// Checks that `dir` is a folder holding nN-l1.tsv ... nN-lL.tsv (each may be .tsv.gz); InputError
// naming the first missing file (and its layer number) otherwise.
void read_network_files_exist(const std::string& dir, Index neurons, Index layers);

// Layers 1..layers from `dir` (a folder, or a tar archive such as neuronN.tar.gz: io/compressed.hpp),
// weights as CSR, bias `bias` on every neuron.
Network read_network(const std::string& dir, Index neurons, Index layers, Value bias, int threads);

// Categories file: 0-based rows, checked ascending, unique and within 1..rows.
std::vector<Index> read_categories(const std::string& path, Index rows);
// The same for `text`, the content of `path` (an empty text is no categories).
std::vector<Index> parse_categories(const std::string& path, std::string_view text, Index rows);

// Writes 0-based `categories` as 1-based lines, atomically (io/output_file.hpp).
void write_categories(const std::string& path, const std::vector<Index>& categories);

// The line number (1-based) of byte `offset` of `text`.
std::uint64_t line_of(std::string_view text, std::size_t offset);

}  // namespace sdnn
