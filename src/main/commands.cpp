// commands.cpp: `sdnn generate` and `sdnn convert` (see commands.hpp).
#include "main/commands.hpp"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "io/archive.hpp"
#include "io/generate.hpp"
#include "io/idx.hpp"
#include "io/input_error.hpp"
#include "io/output_file.hpp"
#include "io/tsv.hpp"
#include "main/options.hpp"

namespace sdnn {
namespace {

struct CommandOptions {
  std::string network_dir, input_path, out_dir, inputs_source;
  std::uint32_t neurons = 0, layers = 0, inputs = 60000, count = 0;
  bool neurons_given = false, layers_given = false, inputs_given = false, count_given = false;
  std::uint64_t seed = 42;
  std::optional<float> bias;
  int threads = 0;
};

std::string usage(const std::string& command) {
  if (command == "generate")
    return "usage: sdnn generate --neurons N --layers L [--seed S] --out DIR [--inputs synthetic|FILE.idx3-ubyte[.gz]]\n"
           "                     [--count M] [--threads T]\n"
           "  writes DIR/neuronN/nN-l1.tsv ... nN-lL.tsv (RadiX-Net, official layout) and, with --inputs,\n"
           "  DIR/sparse-images-N.tsv: M synthetic inputs (default 60000) or the first M images of an MNIST-format\n"
           "  idx file (default all), resized to sqrt(N) x sqrt(N) and binarized as the challenge's inputs\n";
  return "usage: sdnn convert --neurons N [--network DIR --layers L] [--input FILE [--inputs M]] [--bias B] --out DIR2\n"
         "  writes DIR2/neuronN-lL.sdnn (the network, with its bias: --bias or the challenge's value for N)\n"
         "  and DIR2/sparse-images-N-M.sdnn (M input rows, default 60000): binary archives that sdnn reads\n"
         "  with --network FILE.sdnn and --input FILE.sdnn. DIR may be the official neuronN.tar.gz and FILE a\n"
         "  .tsv.gz, as downloaded: they are read as they are, without unpacking\n";
}

CommandOptions parse(const std::vector<std::string>& args) {
  const std::string& command = args[0];
  const bool generate = command == "generate";
  const std::string see = " (see sdnn " + command + " --help)";
  CommandOptions o;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw std::invalid_argument(arg + " needs a value" + see);
      return args[++i];
    };
    if (arg == "--neurons") o.neurons = parse_number<std::uint32_t>(arg, value(), 1), o.neurons_given = true;
    else if (arg == "--layers") o.layers = parse_number<std::uint32_t>(arg, value(), generate ? 0 : 1), o.layers_given = true;
    else if (arg == "--out") o.out_dir = value();
    else if (arg == "--threads") o.threads = parse_number<int>(arg, value(), 1);
    else if (generate && arg == "--seed") o.seed = parse_number<std::uint64_t>(arg, value(), 0);
    else if (generate && arg == "--inputs") o.inputs_source = value();
    else if (generate && arg == "--count") o.count = parse_number<std::uint32_t>(arg, value(), 1), o.count_given = true;
    else if (!generate && arg == "--network") o.network_dir = value();
    else if (!generate && arg == "--input") o.input_path = value();
    else if (!generate && arg == "--inputs") o.inputs = parse_inputs(arg, value()), o.inputs_given = true;
    else if (!generate && arg == "--bias") {
      const std::string& text = value();
      char* end = nullptr;
      const float b = std::strtof(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(b)) throw std::invalid_argument("--bias needs a number, not '" + text + "'");
      o.bias = b;
    } else {
      throw std::invalid_argument("sdnn " + command + ": unknown option '" + arg + "'" + see);
    }
  }
  if (!o.neurons_given || o.out_dir.empty())
    throw std::invalid_argument("sdnn " + command + " needs --neurons N and --out DIR" + see);
  if (generate) {
    if (!o.layers_given) throw std::invalid_argument("sdnn generate needs --layers L" + see);
    radixnet_base_layers(o.neurons);  // std::invalid_argument for an N that is not 16 * 2^R
    if (o.count_given && o.inputs_source.empty()) throw std::invalid_argument("--count goes with --inputs");
    if (!o.inputs_source.empty() && o.inputs_source != "synthetic") image_side(o.neurons);
  } else {
    if (o.network_dir.empty() && o.input_path.empty())
      throw std::invalid_argument("sdnn convert needs --network DIR and/or --input FILE" + see);
    if (!o.network_dir.empty() && !o.layers_given) throw std::invalid_argument("--network needs --layers L");
    if (o.inputs_given && o.input_path.empty()) throw std::invalid_argument("--inputs goes with --input");
  }
  return o;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void append_number(std::string& text, std::uint64_t x) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, x);
  (void)ec;
  text.append(digits, end);
}

// A value as the official files write it: 1 as "1" (inputs), others like 6.250000e-02 (weights).
class ValueText {
 public:
  const std::string& operator()(Value v) {
    if (!(v == last_)) {
      last_ = v;
      char buffer[32];
      if (v == 1.0f) std::snprintf(buffer, sizeof buffer, "1");
      else std::snprintf(buffer, sizeof buffer, "%.6e", static_cast<double>(v));
      text_ = buffer;
    }
    return text_;
  }

 private:
  Value last_ = std::nanf("");
  std::string text_;
};

// Lines "row<TAB>col<TAB>value" (1-based, row numbers from first_row + 1) of CSR rows
// [begin, end) of `m`, appended to `text`.
void format_rows(const CsrMatrix& m, Index begin, Index end, std::uint64_t first_row, std::string& text) {
  ValueText value;
  for (Index i = begin; i < end; ++i)
    for (Offset p = m.begin(i); p < m.end(i); ++p) {
      append_number(text, first_row + i + 1);
      text += '\t';
      append_number(text, std::uint64_t{m.indices[p]} + 1);
      text += '\t';
      text += value(m.values[p]);
      text += '\n';
    }
}

// The TSV lines of `m` (rows numbered from first_row + 1), formatted by `threads` threads in row
// ranges and appended to `out` in order.
void write_rows(const CsrMatrix& m, std::uint64_t first_row, int threads, OutputFile& out) {
  const int parts = std::max(1, threads) * 4;
  std::vector<std::string> texts(parts);
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(dynamic, 1)
  for (int t = 0; t < parts; ++t) {
    const Index begin = static_cast<Index>(std::uint64_t{m.rows()} * t / parts);
    const Index end = static_cast<Index>(std::uint64_t{m.rows()} * (t + 1) / parts);
    texts[t].reserve((m.offsets[end] - m.offsets[begin]) * 16);
    format_rows(m, begin, end, first_row, texts[t]);
  }
  for (std::string& text : texts) {
    out.append(text);
    std::string().swap(text);
  }
}

void make_folder(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error || !std::filesystem::is_directory(dir)) throw InputError(dir, "cannot create the folder (" + error.message() + ")");
}

// The lines of a layer in the official order: by column, rows ascending, values like 6.250000e-02.
std::string layer_text(const CscMatrix& w) {
  std::string text;
  text.reserve(w.nnz() * 24);
  ValueText value;
  for (Index j = 0; j < w.cols(); ++j)
    for (Offset p = w.begin(j); p < w.end(j); ++p) {
      append_number(text, std::uint64_t{w.indices[p]} + 1);
      text += '\t';
      append_number(text, std::uint64_t{j} + 1);
      text += '\t';
      text += value(w.values[p]);
      text += '\n';
    }
  return text;
}

// Refuses, before any work, an output that is not a new name or a regular file, or that is one
// of the files the command reads (io/output_file.hpp).
void check_outputs(const std::vector<std::string>& outputs, const std::vector<ReadFile>& reads) {
  for (const std::string& path : outputs) {
    check_output_path(path);
    check_not_an_input(path, reads);
  }
}

void generate(const CommandOptions& o, int threads) {
  const Index n = o.neurons;
  const std::string network_dir = o.out_dir + "/neuron" + std::to_string(n);
  const std::string input_path = o.out_dir + "/sparse-images-" + std::to_string(n) + ".tsv";
  make_folder(network_dir);
  std::vector<std::string> outputs;
  for (Index l = 0; l < o.layers; ++l) outputs.push_back(layer_path(network_dir, n, l + 1));
  if (!o.inputs_source.empty()) outputs.push_back(input_path);
  std::vector<ReadFile> reads;
  if (!o.inputs_source.empty() && o.inputs_source != "synthetic") reads.push_back({o.inputs_source, "--inputs"});
  check_outputs(outputs, reads);
  auto start = std::chrono::steady_clock::now();
  std::vector<std::exception_ptr> errors(o.layers);
  std::uint64_t bytes = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(+ : bytes)
  for (Index l = 0; l < o.layers; ++l) {
    try {
      const std::string text = layer_text(to_csc(radixnet_layer(n, l + 1, o.seed)));
      write_file_atomically(layer_path(network_dir, n, l + 1), text);
      bytes += text.size();
    } catch (...) {
      errors[l] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  if (o.layers > 0)
    std::printf("network: %s/n%u-l1.tsv ... n%u-l%u.tsv (%u layers, %llu connections, %.1f MB) in %.2f s\n",
                network_dir.c_str(), n, n, o.layers, o.layers,
                static_cast<unsigned long long>(std::uint64_t{32} * n * o.layers), bytes / 1e6, seconds_since(start));
  std::fflush(stdout);
  if (o.inputs_source.empty()) return;

  start = std::chrono::steady_clock::now();
  OutputFile out(input_path);
  std::uint64_t nonzeros = 0, rows = 0;
  std::string described;
  if (o.inputs_source == "synthetic") {
    rows = o.count_given ? o.count : 60000;
    const CsrMatrix inputs = generate_inputs(static_cast<Index>(rows), n, o.seed);
    nonzeros = inputs.nnz();
    write_rows(inputs, 0, threads, out);
    described = "synthetic, seed " + std::to_string(o.seed);
  } else {
    const IdxImages images = read_idx_images(o.inputs_source, o.count_given ? o.count : 0);
    if (o.count_given && images.count < o.count)
      throw InputError(o.inputs_source, "holds " + std::to_string(images.count) + " images, fewer than --count " +
                                            std::to_string(o.count));
    rows = images.count;
    constexpr std::uint32_t kChunk = 2048;  // images resized, binarized and written at a time
    for (std::uint32_t first = 0; first < images.count; first += kChunk) {
      const std::uint32_t count = std::min(kChunk, images.count - first);
      const CsrMatrix chunk = images_to_inputs(images, first, count, n, threads);
      nonzeros += chunk.nnz();
      write_rows(chunk, first, threads, out);
    }
    const std::uint32_t side = image_side(n);
    described = std::to_string(images.rows) + "x" + std::to_string(images.cols) + " images of " + o.inputs_source +
                " resized to " + std::to_string(side) + "x" + std::to_string(side) + ", threshold " +
                std::to_string(kMnistThreshold).substr(0, 5);
  }
  out.commit();
  std::printf("inputs: %s (%llu rows, %llu nonzeros, %.1f per row; %s; %.1f MB) in %.2f s\n", input_path.c_str(),
              static_cast<unsigned long long>(rows), static_cast<unsigned long long>(nonzeros),
              rows ? static_cast<double>(nonzeros) / rows : 0.0, described.c_str(), out.bytes() / 1e6,
              seconds_since(start));
}

void convert(const CommandOptions& o, int threads) {
  make_folder(o.out_dir);
  const Index n = o.neurons;
  const std::string network_path = o.out_dir + "/neuron" + std::to_string(n) + "-l" + std::to_string(o.layers) + ".sdnn";
  const std::string inputs_path = o.out_dir + "/sparse-images-" + std::to_string(n) + "-" + std::to_string(o.inputs) + ".sdnn";
  std::vector<std::string> outputs;
  std::vector<ReadFile> reads;
  if (!o.network_dir.empty()) {
    outputs.push_back(network_path);
    for (Index l = 1; l <= o.layers; ++l) reads.push_back({layer_path(o.network_dir, n, l), "--network"});
  }
  if (!o.input_path.empty()) {
    outputs.push_back(inputs_path);
    reads.push_back({o.input_path, "--input"});
  }
  check_outputs(outputs, reads);
  if (!o.network_dir.empty()) {
    auto start = std::chrono::steady_clock::now();
    const Value bias = o.bias ? *o.bias : default_bias(n);
    const Network network = read_network(o.network_dir, n, o.layers, bias, threads);
    const double read_s = seconds_since(start);
    start = std::chrono::steady_clock::now();
    const std::string& path = network_path;
    write_network_archive(path, network);
    std::uint64_t connections = 0;
    for (const Layer& layer : network) connections += layer.weights_csr.nnz();
    std::printf("network: %s (%u layers, %llu connections, bias %g; %.1f MB) read in %.2f s, written in %.2f s\n",
                path.c_str(), o.layers, static_cast<unsigned long long>(connections), static_cast<double>(bias),
                file_size(path) / 1e6, read_s, seconds_since(start));
    std::fflush(stdout);
  }
  if (!o.input_path.empty()) {
    auto start = std::chrono::steady_clock::now();
    const CsrMatrix inputs = read_triplet_matrix(o.input_path, o.inputs, n, threads);
    const double read_s = seconds_since(start);
    start = std::chrono::steady_clock::now();
    const std::string& path = inputs_path;
    write_inputs_archive(path, inputs);
    std::printf("inputs: %s (%u rows, %llu nonzeros; %.1f MB) read in %.2f s, written in %.2f s\n", path.c_str(),
                o.inputs, static_cast<unsigned long long>(inputs.nnz()), file_size(path) / 1e6, read_s,
                seconds_since(start));
  }
}

}  // namespace

bool is_subcommand(const std::string& name) { return name == "generate" || name == "convert"; }

int run_subcommand(const MpiSession& mpi, const std::vector<std::string>& args) {
  int status = 0;
  if (mpi.is_root()) {
    CommandOptions o;
    try {
      if (std::find(args.begin(), args.end(), "--help") != args.end() ||
          std::find(args.begin(), args.end(), "-h") != args.end()) {
        std::fputs(usage(args[0]).c_str(), stdout);
        status = -1;
      } else {
        o = parse(args);
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sdnn: error: %s\n", e.what());
      status = 2;
    }
    if (status == -1) status = 0;
    else if (status == 0) {
      const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
      try {
        if (args[0] == "generate") generate(o, threads);
        else convert(o, threads);
      } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "sdnn: error: out of memory\n");
        status = 1;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "sdnn: error: %s\n", e.what());
        status = 1;
      }
    }
    std::fflush(stdout);
  }
  MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);  // the other ranks wait here
  return status;
}

}  // namespace sdnn
