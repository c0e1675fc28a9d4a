// options.cpp: see options.hpp.
#include "main/options.hpp"

#include "comm/window.hpp"
#include "hash/hash.hpp"
#include "io/generate.hpp"
#include "main/memory.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace sdnn {

std::uint32_t parse_inputs(const std::string& option, const std::string& text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > kMaxInputs)
    throw std::invalid_argument(option + " needs a number of rows from 1 to 2147483647 (at most 2^31-1: row numbers are "
                                "32-bit), not '" + text + "'");
  return static_cast<std::uint32_t>(value);
}

Options parse_options(const std::vector<std::string>& args) {
  Options o;
  bool neurons_given = false, layers_given = false, format_given = false, parallel_given = false, hash_seed_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw std::invalid_argument(arg + " needs a value (see --help)");
      return args[++i];
    };
    if (arg == "--help" || arg == "-h") o.help = true;
    else if (arg == "--network") o.network_dir = value();
    else if (arg == "--input") o.input_path = value();
    else if (arg == "--truth") o.truth_path = value();
    else if (arg == "--out") o.out_path = value();
    else if (arg == "--out-activations") o.out_activations_path = value();
    else if (arg == "--neurons") { o.neurons = parse_number<std::uint32_t>(arg, value(), 1); neurons_given = true; }
    else if (arg == "--layers") { o.layers = parse_number<std::uint32_t>(arg, value(), 1); layers_given = true; }
    else if (arg == "--inputs") o.inputs = parse_inputs(arg, value());
    else if (arg == "--bias") {
      const std::string& text = value();
      char* end = nullptr;
      const float b = std::strtof(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(b)) throw std::invalid_argument("--bias needs a number, not '" + text + "'");
      o.bias = b;
    }
    else if (arg == "--seed") o.seed = parse_number<std::uint64_t>(arg, value(), 0);
    else if (arg == "--format") { o.format = parse_format(value()); format_given = true; }
    else if (arg == "--parallel") { o.parallel = parse_parallelism(value()); parallel_given = true; }
    else if (arg == "--threads") o.threads = parse_number<int>(arg, value(), 1);
    else if (arg == "--block-rows") o.block_rows = parse_number<std::uint32_t>(arg, value(), 0);
    else if (arg == "--strategy") {
      o.strategy = value();
      if (o.strategy != "data" && o.strategy != "model" && o.strategy != "pipeline")
        throw std::invalid_argument("--strategy must be data, model or pipeline, not '" + o.strategy + "'");
    }
    else if (arg == "--grid") {
      const std::string& text = value();
      const auto x = text.find('x');
      if (x == std::string::npos) throw std::invalid_argument("--grid needs DxM (row groups x column blocks), not '" + text + "'");
      o.grid_rows = parse_number<std::uint32_t>(arg, text.substr(0, x), 1);
      o.grid_columns = parse_number<std::uint32_t>(arg, text.substr(x + 1), 1);
    }
    else if (arg == "--hash") o.hash = to_string(parse_hash_mode(value()));
    else if (arg == "--hash-seed") { o.hash_seed = parse_number<std::uint64_t>(arg, value(), 0); hash_seed_given = true; }
    else if (arg == "--report") o.report_path = value();
    else if (arg == "--report-layers") o.report_layers = true;
    else if (arg == "--no-overlap") o.no_overlap = true;
    else if (arg == "--stage-layers") {  // a,b,c: the first layer (0-based) of stages 1, 2, 3
      const std::string& text = value();
      std::size_t at = 0;
      for (;;) {
        const std::size_t comma = text.find(',', at);
        o.stage_starts.push_back(parse_number<std::uint32_t>(arg, text.substr(at, comma - at), 1));
        if (comma == std::string::npos) break;
        at = comma + 1;
      }
    }
    else if (arg == "--share-network") o.share_network = true;
    else if (arg == "--window-backend") {
      try {
        o.window_backend = to_string(parse_window_backend(value()));
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("--window-backend: ") + e.what());
      }
    }
    else if (arg == "--max-memory") o.max_memory = parse_memory_size(value());
    else if (arg == "--verify") o.verify = true;
    else if (arg == "--no-verify") o.no_verify = true;
    else if (arg == "--quiet" || arg == "-q") o.quiet = true;
    else if (arg == "--load-only") o.load_only = true;
    else if (arg == "--reuse") o.reuse = true;
    else throw std::invalid_argument("unknown option '" + arg + "' (see --help)");
  }
  if (o.help) return o;
  if (o.grid_rows != 0 && o.strategy == "data")
    throw std::invalid_argument("--grid goes with --strategy model or pipeline");
  if (!o.stage_starts.empty() && o.strategy != "pipeline")
    throw std::invalid_argument("--stage-layers goes with --strategy pipeline");
  if (o.strategy == "pipeline" && o.parallel == Parallelism::model)
    throw std::invalid_argument("--strategy pipeline runs each block with data parallelism (not --parallel model)");
  if (o.share_network && o.strategy != "data")
    throw std::invalid_argument("--share-network goes with --strategy data (the model strategy splits the network)");
  if (o.report_layers && o.report_path.empty()) throw std::invalid_argument("--report-layers needs --report FILE");
  if (hash_seed_given && o.hash == "none")
    throw std::invalid_argument("--hash-seed goes with --hash input, network or both (without --hash nothing is permuted)");
  // Options that a strategy would override are refused, never silently replaced: the model
  // strategy runs csc/model on every rank (on a grid of one column block, the data strategy's
  // csr/data: ModelStrategy, strategy.cpp); --block-rows sizes data parallelism's blocks only.
  if (o.strategy == "model") {
    std::string overridden;
    if (format_given && o.format != Format::csc) overridden += " --format " + to_string(o.format);
    if (parallel_given && o.parallel != Parallelism::model) overridden += " --parallel " + to_string(o.parallel);
    if (!overridden.empty())
      throw std::invalid_argument("--strategy model runs --format csc --parallel model on every rank (columns split "
                                  "among ranks and threads): leave out" + overridden + ", or use --strategy data");
    o.format = Format::csc;
    o.parallel = Parallelism::model;
  }
  if (o.block_rows > 0 && o.parallel != Parallelism::data)
    throw std::invalid_argument("--block-rows sizes the row blocks of --parallel data; " +
                                std::string(o.strategy == "model" ? "--strategy model" : "--parallel model") +
                                " splits columns, not rows");
  if (o.no_overlap && o.strategy != "model")
    throw std::invalid_argument("--no-overlap goes with --strategy model (the data strategy has no communication to overlap)");
  check_combination(o.format, o.parallel);
  if (o.network_dir.empty() != o.input_path.empty())
    throw std::invalid_argument("--network and --input go together (or give neither to run the generated problem)");
  if (!o.network_dir.empty() && (!neurons_given || !layers_given))
    throw std::invalid_argument("--network needs --neurons N and --layers L");
  if (o.generated() && !o.truth_path.empty())
    throw std::invalid_argument("--truth compares official-format runs; the generated problem is checked with the verifier");
  if (o.load_only && (o.verify || !o.truth_path.empty() || !o.out_path.empty() || !o.report_path.empty()))
    throw std::invalid_argument("--load-only reads the problem and stops: it takes no --verify, --truth, --out or --report");
  if (o.load_only && !o.out_activations_path.empty())
    throw std::invalid_argument("--load-only reads the problem and stops: it takes no --out-activations");
  if (o.verify && o.no_verify) throw std::invalid_argument("--verify and --no-verify contradict each other");
  if (o.generated()) radixnet_base_layers(o.neurons);  // the generator's N: 16 * 2^R
  if (o.generated() && !o.no_verify && !o.load_only) o.verify = true;  // the embedded problem checks itself unless told not to
  return o;
}

std::string usage_text() {
  return R"(sdnn: inference of sparse deep neural networks (Graph Challenge Sparse DNN), MPI + OpenMP.

Usage:
  sdnn [options]                         the generated default problem (1024 neurons, 120 layers,
                                         60,000 synthetic inputs), checked with the verifier
  sdnn --network DIR --neurons N --layers L --input FILE [options]
                                         official-format data: DIR holds nN-l1.tsv ... nN-lL.tsv
                                         or is the official neuronN.tar.gz
  mpirun -np P sdnn ...                  P ranks, each a shard of the input rows
  sdnn generate --neurons N --layers L --out DIR [--inputs synthetic|IDX-FILE] ...
                                         writes a RadiX-Net network and inputs as official files
  sdnn convert --neurons N --network DIR --layers L --input FILE --out DIR2
                                         writes binary archives (.sdnn) of a network and an input
                                         (sdnn generate --help, sdnn convert --help)

Problem:
  --network DIR      folder of the layer files nN-lK.tsv (each may be gzipped: nN-lK.tsv.gz), the
                     official neuronN.tar.gz as downloaded (read without unpacking), or a network
                     archive FILE.sdnn (sdnn convert), whose bias is used unless --bias
  --input FILE       input activations, sparse-images-N.tsv or sparse-images-N.tsv.gz, or an
                     input archive FILE.sdnn (an archive of exactly --inputs rows)
  --neurons N        neurons per layer (default 1024; required with --network)
  --layers L         layers to run, 1..L (default 120; required with --network); a network
                     with more layers runs its first L
  --inputs M         input rows (default 60000, at most 2147483647); the matrix is M x N whatever
                     the file holds (a warning says when its last entry is in an earlier row)
  --bias B           bias of every neuron (default: -0.3, -0.35, -0.4, -0.45 for N = 1024, 4096,
                     16384, 65536; -0.3 - 0.025*log2(N/1024) for other N)
  --seed S           seed of the generated network and inputs (default 42)
  --truth FILE       official categories: prints Challenge: PASS or FAIL (exact comparison)
  --out FILE         write the categories there (official format, written atomically; a new name
                     or a regular file, never one the run reads)
  --out-activations FILE
                     write the final activations there, in the original numbering (rows and
                     neurons unhashed, 1-based): "row<TAB>neuron<TAB>value" lines sorted by row,
                     values exact; rank 0 gathers them all (for tests and small runs)

Execution:
  --strategy data|model|pipeline
                     data: ranks own independent shards of the input rows (data x data);
                     model: a grid of ranks, row groups x column blocks of the network, each
                     rank pulling the remote activation columns it needs with MPI_Get
                     (data x model), csc/model on every rank (one column block, Dx1: each
                     rank runs its row group as the data strategy does, csr/data); pipeline: row groups x pipeline stages, each stage
                     holding a contiguous range of layers and passing the surviving rows of
                     each block to the next stage with MPI_Put (docs/pipeline.md)
                     (default data)
  --grid DxM         the model strategy's grid: D row groups x M column blocks, D*M = ranks
                     (default 1 x ranks); the pipeline strategy's: D row groups x M stages
  --hash none|input|network|both
                     input: permute the input rows before sharding (balance); network: permute
                     neuron ids (columns of Y, rows and columns of W); both (default none).
                     Every hash is undone before results are written
  --hash-seed S      seed of the hashing permutations (default 1; goes with --hash)
  --report FILE      per-rank report: FILE as JSON and FILE with .csv as CSV (rows, nonzeros,
                     compute, communication and idle time, bytes, imbalance)
  --report-layers    the report also holds every layer of every rank
  --share-network    data strategy: the ranks of a node share one copy of the network in MPI
                     shared memory (MPI_Win_allocate_shared) instead of one copy each
  --window-backend auto|allocate|create
                     how MPI windows are made: allocate (MPI_Win_allocate), create (MPI_Win_create
                     over MPI_Alloc_mem), auto: allocate, switching to create when a window fails
                     the one-sided check made at every window's creation (default: the
                     environment variable SDNN_WINDOW_BACKEND, else auto; see docs/mpi.md)
  --max-memory SIZE  memory a rank may use (e.g. 20G); a run whose estimate exceeds it is
                     refused before loading (default: available memory / ranks on the node)
  --stage-layers A,B,..
                     pipeline strategy: the first layer (from 0) of stages 1, 2, ..., P-1
                     (default: L/P layers each; each run prints a split balanced by the
                     cost it measured)
  --no-overlap       model strategy: wait for the remote columns before computing anything
                     (to measure what overlapping communication with local work gains)
  --format csr|csc   csr: left multiplication, row by row; csc: right multiplication, column by
                     column (default csr)
  --parallel data|model
                     data: threads take blocks of input rows through all layers; model: threads
                     split each layer's output columns (needs --format csc) (default data)
  --threads T        OpenMP threads per rank (default: OMP_NUM_THREADS, else the node's cores
                     divided among its ranks)
  --block-rows B     rows per block in data parallelism (default 0: rows / (8 x threads),
                     within 256..2048)
  --verify           also run the serial verifier and compare every final value
                     (on by default for the generated problem)
  --no-verify        skip the verifier of the generated problem (for timing runs)
  --load-only        read (or generate) the problem, print the read figures (time, MB/s,
                     memory held) and stop: measures loading alone
  --reuse            exact computation reuse: rows whose entries are identical are computed once
                     and every row's result taken from its representative (same categories,
                     checksum and activations; rows_computed= says how many rows were multiplied)
  --quiet, -q        no progress on stderr
  --help, -h         this text

Output: read time, inference time, rate (inputs x connections / inference time), categories,
Verifier and Challenge verdicts, and last a line "summary key=value ..." for scripts.
Exit status: 0 when every check asked for passed, 1 on a failed check or bad input, 2 on a bad
command line.
)";
}

}  // namespace sdnn
