// tsv.hpp: readers and writers of the official Graph Challenge files (SPEC.md, 'Files').
//
// - inputs (sparse-images-N.tsv) and layers (nN-lK.tsv): TSV triplets "row<TAB>col<TAB>value",
//   1-based, read into 0-based CSR matrices whose shape comes from the problem, not the file;
// - categories: one 1-based row number per line, ascending.
// Text is parsed in parallel (one chunk per thread, std::from_chars). Any fault throws
// InputError naming the file, the line and the fault. Categories are written through
// io/output_file.hpp's OutputFile, so no half-written file is ever left.
#pragma once

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
inline constexpr std::uint64_t kParsePieceBytes = std::uint64_t{256} << 20;
std::vector<Triplet> parse_file_share(const std::string& path, Index rows, Index cols, int rank, int ranks,
                                      int threads, std::uint64_t& bytes_parsed,
                                      std::uint64_t piece_bytes = kParsePieceBytes);

// A rows x cols CSR matrix from a TSV triplet file (read in pieces, as parse_file_share);
// duplicate entries are an error.
CsrMatrix read_triplet_matrix(const std::string& path, Index rows, Index cols, int threads);

// Path of layer `layer` (1-based) of an N-neuron network in directory `dir`: dir/nN-lK.tsv.
std::string layer_path(const std::string& dir, Index neurons, Index layer);

// Checks that `dir` is a folder holding nN-l1.tsv ... nN-lL.tsv; InputError naming the first
// missing file (and its layer number) otherwise.
void read_network_files_exist(const std::string& dir, Index neurons, Index layers);

// Layers 1..layers from `dir`, weights as CSR, bias `bias` on every neuron.
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
