// load.cpp: shares of files parsed on every rank, buckets exchanged through MPI windows.
#include "main/load.hpp"

#include <algorithm>
#include <exception>

#include "comm/mpi_library.hpp"
#include "comm/window.hpp"
#include "io/archive.hpp"
#include "io/compressed.hpp"
#include "io/generate.hpp"
#include "io/input_error.hpp"
#include "io/tsv.hpp"

namespace sdnn {
namespace {

// Which of `groups` balanced groups of `total` items holds item i (shard_of's inverse).
int group_of(Index i, Index total, int groups) {
  int g = static_cast<int>(static_cast<std::uint64_t>(i) * static_cast<std::uint64_t>(groups) / total);
  while (g + 1 < groups && shard_of(total, groups, g + 1).first <= i) ++g;
  while (g > 0 && shard_of(total, groups, g).first > i) --g;
  return g;
}

// Every rank holds, for each of `files`, its triplets split into `groups` buckets
// (mine[file][group]). Every rank receives, for each file, bucket `wanted` of every rank,
// concatenated in rank order, and hands it to consume(file, triplets). Collective; an exception
// from consume() stops the consuming on that rank but not the protocol, and is rethrown at the
// end, after the window is freed on every rank.
// The buckets are emptied (their memory freed) as they are copied into the window; with one rank
// there is no window: each file's bucket goes to consume() as it is.
template <class Consume>
std::uint64_t exchange_buckets(const MpiSession& mpi, std::vector<std::vector<std::vector<Triplet>>>& mine,
                               int groups, int wanted, bool receive, Consume&& consume) {
  const std::size_t files = mine.size();
  const int ranks = mpi.size();
  if (ranks == 1) {
    std::exception_ptr failure;
    for (std::size_t f = 0; f < files && receive && !failure; ++f) {
      try {
        consume(f, mine[f][wanted]);
      } catch (...) {
        failure = std::current_exception();
      }
      std::vector<Triplet>().swap(mine[f][wanted]);
    }
    if (failure) std::rethrow_exception(failure);
    return 0;
  }
  // My counts, file by file, bucket by bucket; the same table from every rank.
  std::vector<std::uint64_t> counts(files * groups);
  std::uint64_t total = 0;
  for (std::size_t f = 0; f < files; ++f)
    for (int g = 0; g < groups; ++g) total += counts[f * groups + g] = mine[f][g].size();
  std::vector<std::uint64_t> all_counts(counts.size() * ranks);
  MPI_Allgather(counts.data(), static_cast<int>(counts.size()), MPI_UINT64_T, all_counts.data(),
                static_cast<int>(counts.size()), MPI_UINT64_T, MPI_COMM_WORLD);
  Window window(MPI_COMM_WORLD, total * sizeof(Triplet));
  {
    Triplet* out = window.as<Triplet>();
    for (std::size_t f = 0; f < files; ++f)
      for (int g = 0; g < groups; ++g) {
        out = std::copy(mine[f][g].begin(), mine[f][g].end(), out);
        std::vector<Triplet>().swap(mine[f][g]);
      }
  }
  window.barrier();  // every segment is filled before anyone reads
  std::exception_ptr failure;
  std::uint64_t pulled = 0;
  std::vector<Triplet> gathered;
  std::vector<std::uint64_t> position(ranks, 0);  // element offset of file f's buckets on each rank
  for (std::size_t f = 0; f < files; ++f) {
    std::uint64_t needed = 0;
    for (int r = 0; r < ranks; ++r) needed += all_counts[(r * files + f) * groups + wanted];
    if (!failure && receive) {
      try {
        gathered.resize(needed);
        std::uint64_t at = 0;
        for (int r = 0; r < ranks; ++r) {
          std::uint64_t offset = position[r];
          for (int g = 0; g < wanted; ++g) offset += all_counts[(r * files + f) * groups + g];
          const std::uint64_t count = all_counts[(r * files + f) * groups + wanted];
          window.get_elements(gathered.data() + at, count, r, offset);
          if (r != mpi.rank()) pulled += count * sizeof(Triplet);
          at += count;
        }
        window.flush_all();
        consume(f, gathered);
      } catch (...) {
        failure = std::current_exception();
      }
    }
    for (int r = 0; r < ranks; ++r)
      for (int g = 0; g < groups; ++g) position[r] += all_counts[(r * files + f) * groups + g];
  }
  window.free();
  if (failure) std::rethrow_exception(failure);
  return pulled;
}

}  // namespace

LoadedProblem load_problem(const MpiSession& mpi, const Options& o, const LoadPlan& plan) {
  LoadedProblem problem;
  const Index n = o.neurons, m = o.inputs;
  problem.rows = shard_of(m, plan.row_groups, plan.row_group);
  problem.columns = shard_of(n, plan.column_groups, plan.column_group);
  const RowRange rows = problem.rows, columns = problem.columns;
  const bool whole_network = plan.column_groups == 1;
  problem.network.resize(o.layers);

  // Triplets (already hashed) of one layer into this rank's layer.
  auto in_plan = [&](std::size_t l) { return l >= plan.first_layer && l < plan.last_layer; };
  auto build_layer = [&](std::size_t l, std::vector<Triplet>& triplets, const std::string& path) {
    if (!in_plan(l)) return;
    Layer& layer = problem.network[l];
    try {
      if (whole_network) {
        layer.weights_csr = from_triplets<RowMajor>(n, n, triplets);
      } else {
        for (Triplet& t : triplets) t.col -= columns.first;
        layer.weights_csc = from_triplets<ColMajor>(n, columns.size(), triplets);
      }
    } catch (const DuplicateEntry&) {
      // Names the line of the repeat; throws.
      if (path == o.network_dir && is_tar_network(path)) read_network(path, n, static_cast<Index>(l + 1), 0, 1);
      else read_triplet_matrix(path, n, n, 1);
      throw;
    }
    layer.bias.assign(whole_network ? n : columns.size(), plan.bias);
  };
  auto hash_input = [&](Triplet& t) {
    t.row = plan.rows(t.row);
    t.col = plan.neurons(t.col);
  };
  auto hash_weight = [&](Triplet& t) {
    t.row = plan.neurons(t.row);
    t.col = plan.neurons(t.col);
  };

  double start = mpi_seconds();
  if (o.generated()) {
    // Deterministic: every rank generates the whole problem and keeps its part.
    const Network whole = generate_network(n, o.layers, o.seed, plan.bias);
    for (const Layer& layer : whole) problem.connections += layer.weights_csr.nnz();
    for (Index l = 0; l < o.layers && plan.build_network; ++l) {
      if (!in_plan(l)) continue;
      std::vector<Triplet> triplets;
      const CsrMatrix& w = whole[l].weights_csr;
      for (Index i = 0; i < n; ++i)
        for (Offset p = w.begin(i); p < w.end(i); ++p) {
          Triplet t{i, w.indices[p], w.values[p]};
          hash_weight(t);
          if (whole_network || (t.col >= columns.first && t.col < columns.last)) triplets.push_back(t);
        }
      build_layer(l, triplets, "(generated layer)");
    }
    problem.network_s = mpi_seconds_since(start);
    start = mpi_seconds();
    const CsrMatrix all = generate_inputs(m, n, o.seed);
    std::vector<Triplet> triplets;
    for (Index i = 0; i < m; ++i)
      for (Offset p = all.begin(i); p < all.end(i); ++p) {
        Triplet t{i, all.indices[p], all.values[p]};
        hash_input(t);
        if (t.row >= rows.first && t.row < rows.last) triplets.push_back({t.row - rows.first, t.col, t.value});
      }
    problem.input = plan.keep_input ? from_triplets<RowMajor>(rows.size(), n, triplets) : CsrMatrix(rows.size(), n);
    problem.input_s = mpi_seconds_since(start);
    return problem;
  }

  // A binary archive (io/archive.hpp): every rank reads it and keeps its part, as for the generated
  // problem; a layer is kept as it is when nothing is hashed or split.
  std::exception_ptr failure;
  if (is_archive_path(o.network_dir)) {
    try {
      {
        const NetworkArchiveReader header(o.network_dir, n, o.layers);
        for (Index l = 0; l < o.layers; ++l) problem.connections += header.nonzeros(l);
      }
      std::vector<std::uint64_t> layer_bytes(o.layers, 0);
      // Layers in parallel (plan.threads), each placed by the thread that read it.
      auto place = [&](Index l, CsrMatrix& w, std::vector<Value>& bias) {
        layer_bytes[l] = w.offsets.size() * sizeof(Offset) + w.nnz() * (sizeof(Index) + sizeof(Value)) +
                         bias.size() * sizeof(Value);
        if (!in_plan(l)) return;
        Layer& layer = problem.network[l];
        if (whole_network && plan.neurons.is_identity()) {
          layer.weights_csr = std::move(w);
        } else {
          std::vector<Triplet> triplets;
          for (Index i = 0; i < n; ++i)
            for (Offset p = w.begin(i); p < w.end(i); ++p) {
              Triplet t{i, w.indices[p], w.values[p]};
              hash_weight(t);
              if (whole_network || (t.col >= columns.first && t.col < columns.last)) triplets.push_back(t);
            }
          build_layer(l, triplets, o.network_dir);
        }
        // The archive's bias per neuron, unless --bias overrides it.
        layer.bias.assign(whole_network ? n : columns.size(), plan.bias);
        for (Index j = 0; j < n && !o.bias; ++j) {
          const Index h = plan.neurons(j);
          if (whole_network) layer.bias[h] = bias[j];
          else if (h >= columns.first && h < columns.last) layer.bias[h - columns.first] = bias[j];
        }
      };
      if (plan.build_network) read_network_layers(o.network_dir, n, o.layers, plan.threads, place);
      for (std::uint64_t bytes : layer_bytes) problem.bytes_parsed += bytes;
    } catch (...) {
      failure = std::current_exception();
    }
    mpi.agree(failure);
    problem.network_s = mpi_seconds_since(start);
  } else {
    // Official-format files: a share of every layer file, bucketed by column group.
    // Every collective step below starts only once all ranks agree that the last one worked.
    // Plain files are shared by byte ranges; a gzip file or a tar archive is one stream that
    // cannot be entered in the middle: every rank reads all of it and parses every P-th piece,
    // layer l's first piece on rank l % P (io/tsv.hpp, parse_text_share). Reading is repeated
    // on every rank, parsing is not, and the exchange below is the same for every form.
    std::vector<std::vector<std::vector<Triplet>>> layer_buckets(o.layers);
    std::vector<std::uint64_t> layer_nonzeros(o.layers);
    auto bucket_layer = [&](Index l, std::vector<Triplet> share) {
      layer_nonzeros[l] = share.size();
      layer_buckets[l].resize(plan.column_groups);
      for (Triplet& t : share) {
        hash_weight(t);
        layer_buckets[l][whole_network ? 0 : group_of(t.col, n, plan.column_groups)].push_back(t);
      }
    };
    const bool tar = is_tar_network(o.network_dir);
    const int ranks = mpi.size();
    try {
      if (tar) {
        read_tar_layers(o.network_dir, n, o.layers, [&](Index l, const std::string& name, const TextReader& read) {
          bucket_layer(l, parse_text_share(name, read, n, n, mpi.rank(), ranks, static_cast<int>(l % ranks),
                                           plan.threads, problem.bytes_parsed));
        });
      } else {
        read_network_files_exist(o.network_dir, n, o.layers);
        for (Index l = 0; l < o.layers; ++l)
          bucket_layer(l, parse_file_share(layer_file(o.network_dir, n, l + 1), n, n, mpi.rank(), ranks, plan.threads,
                                           problem.bytes_parsed, kParsePieceBytes, static_cast<int>(l % ranks)));
      }
    } catch (...) {
      failure = std::current_exception();
    }
    mpi.agree(failure);
    MPI_Allreduce(MPI_IN_PLACE, layer_nonzeros.data(), static_cast<int>(layer_nonzeros.size()), MPI_UINT64_T, MPI_SUM,
                  MPI_COMM_WORLD);
    for (std::uint64_t nz : layer_nonzeros) problem.connections += nz;
    try {
      problem.bytes_pulled += exchange_buckets(mpi, layer_buckets, plan.column_groups, plan.column_group,
                                               plan.build_network, [&](std::size_t l, std::vector<Triplet>& triplets) {
                                                 build_layer(l, triplets, tar ? o.network_dir : layer_file(o.network_dir, n, static_cast<Index>(l + 1)));
                                               });
    } catch (...) {
      failure = std::current_exception();
    }
    mpi.agree(failure);
    layer_buckets.clear();
    problem.network_s = mpi_seconds_since(start);
  }

  // The input: from an archive, every rank reads the blocks that can hold its rows (all of them
  // when rows are hashed); from TSV, a share of its lines, bucketed by the row group that owns
  // each (hashed) row.
  start = mpi_seconds();
  if (is_archive_path(o.input_path)) {
    try {
      const bool as_is = plan.rows.is_identity() && plan.neurons.is_identity();
      std::vector<Triplet> triplets;
      CsrMatrix& input = problem.input;
      input = CsrMatrix(rows.size(), n);
      auto wanted = [&](Index first, Index last) {
        if (!plan.keep_input) return false;
        return !plan.rows.is_identity() || (last > rows.first && first < rows.last);
      };
      if (as_is) {  // room for the blocks that hold my rows, so that appending never reallocates
        const InputsArchiveReader header(o.input_path, n, m);
        Offset room = 0;
        for (Index b = 0; b < header.blocks(); ++b) {
          const Index first = header.block_first_row(b);
          if (wanted(first, static_cast<Index>(std::min<std::uint64_t>(m, std::uint64_t{first} + header.block_rows()))))
            room += header.nonzeros(b);
        }
        input.indices.reserve(room);
        input.values.reserve(room);
      }
      auto take = [&](Index first, CsrMatrix& block) {
        problem.bytes_parsed += block.offsets.size() * sizeof(Offset) + block.nnz() * (sizeof(Index) + sizeof(Value));
        for (Index r = 0; r < block.rows(); ++r) {
          if (as_is) {
            if (first + r < rows.first || first + r >= rows.last) continue;
            const Index local = first + r - rows.first;
            const Offset at = input.offsets[local], count = block.end(r) - block.begin(r);
            input.indices.resize(at + count);
            input.values.resize(at + count);
            std::copy(block.indices.begin() + block.begin(r), block.indices.begin() + block.end(r),
                      input.indices.begin() + at);
            std::copy(block.values.begin() + block.begin(r), block.values.begin() + block.end(r),
                      input.values.begin() + at);
            input.offsets[local + 1] = at + count;
          } else {
            for (Offset p = block.begin(r); p < block.end(r); ++p) {
              Triplet t{first + r, block.indices[p], block.values[p]};
              hash_input(t);
              if (t.row >= rows.first && t.row < rows.last) triplets.push_back({t.row - rows.first, t.col, t.value});
            }
          }
        }
      };
      read_input_blocks(o.input_path, n, m, plan.threads, wanted, take);
      if (!as_is) input = from_triplets<RowMajor>(rows.size(), n, triplets);
    } catch (...) {
      failure = std::current_exception();
    }
    mpi.agree(failure);
  } else {
    std::vector<std::vector<std::vector<Triplet>>> input_buckets(1);
    input_buckets[0].resize(plan.row_groups);
    try {
      std::vector<Triplet> parsed =
          parse_file_share(o.input_path, m, n, mpi.rank(), mpi.size(), plan.threads, problem.bytes_parsed);
      for (Triplet& t : parsed) hash_input(t);
      if (plan.row_groups == 1) {
        input_buckets[0][0] = std::move(parsed);  // no second copy of the largest array of the load
      } else {
        for (const Triplet& t : parsed) input_buckets[0][group_of(t.row, m, plan.row_groups)].push_back(t);
      }
    } catch (...) {
      failure = std::current_exception();
    }
    mpi.agree(failure);
    problem.bytes_pulled += exchange_buckets(mpi, input_buckets, plan.row_groups, plan.row_group, true,
                                             [&](std::size_t, std::vector<Triplet>& triplets) {
                                               if (!plan.keep_input) return;
                                               for (Triplet& t : triplets) t.row -= rows.first;
                                               try {
                                                 problem.input = from_triplets<RowMajor>(rows.size(), n, triplets);
                                               } catch (const DuplicateEntry&) {
                                                 read_triplet_matrix(o.input_path, m, n, 1);
                                                 throw;
                                               }
                                             });
  }
  if (!plan.keep_input) problem.input = CsrMatrix(rows.size(), n);
  problem.input_s = mpi_seconds_since(start);
  return problem;
}

}  // namespace sdnn
