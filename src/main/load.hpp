// load.hpp: loading a problem on every rank, each rank parsing a share of every file.
//
// Each rank parses the lines that start in its byte range of every file (input and every layer),
// applies the hashing (input rows, neuron ids) and sorts the parsed triplets into buckets by who
// needs them: input triplets by row group (the ranks that own those rows), layer triplets by
// column group (the ranks that hold those columns of W). The buckets are laid out in one MPI
// window per file kind; after the counts are exchanged (sizes before data) every rank pulls its
// bucket from every rank with MPI_Get and builds its matrices. Concatenating in rank order keeps
// file order, so the result does not depend on the rank count. A gzip file or a tar archive
// cannot be split by byte ranges: every rank reads the whole stream and parses every P-th piece
// of it (io/tsv.hpp, parse_text_share); the buckets and the exchange are the same.
//
// The generated problem is generated whole on every rank (it is deterministic) and then hashed
// and cut the same way.
#pragma once

#include <cstdint>
#include <string>

#include "comm/mpi_session.hpp"
#include "hash/hash.hpp"
#include "main/options.hpp"
#include "partition/row_partition.hpp"
#include "spmm/layer.hpp"

namespace sdnn {

// What one rank needs: its row group's input rows and its column group's columns of W.
struct LoadPlan {
  int row_groups = 1, row_group = 0;        // input rows split in row_groups; this rank's group
  int column_groups = 1, column_group = 0;  // neurons (columns of W) split likewise
  Permutation rows;                         // input hashing (identity when off)
  Permutation neurons;                      // network hashing (identity when off)
  Value bias = 0;
  int threads = 1;
  bool build_network = true;  // false: take part in the exchange but keep no layer (shared network)
  // Layers [first_layer, last_layer) are built; the others stay empty (a pipeline stage's share).
  Index first_layer = 0, last_layer = ~Index{0};
  bool keep_input = true;  // false: take part in the exchange but keep no input row (a later stage)
};

struct LoadedProblem {
  Network network;      // every layer (those outside the plan's layer range empty): weights_csr of all N x N when column_groups == 1, else
                        // weights_csc holding this rank's column block (N x block, local columns)
  CsrMatrix input;      // this rank's rows (hashed numbering, local from `rows.first`), N hashed columns;
                        // no entry when the plan keeps no input
  RowRange rows;        // this rank's rows, hashed numbering
  RowRange columns;     // this rank's neurons, hashed numbering
  std::uint64_t connections = 0;   // nonzeros of all layers (whole network)
  std::uint64_t bytes_parsed = 0;  // file bytes this rank parsed
  std::uint64_t bytes_pulled = 0;  // bytes this rank pulled from other ranks' windows
  double network_s = 0, input_s = 0;
};

// Collective. Throws (on some ranks) InputError and friends; callers agree on failure after it.
LoadedProblem load_problem(const MpiSession& mpi, const Options& options, const LoadPlan& plan);

}  // namespace sdnn
