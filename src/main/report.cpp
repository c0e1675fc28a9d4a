// report.cpp: see report.hpp.
#include "main/report.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "comm/mpi_library.hpp"
#include "comm/window.hpp"
#include "io/output_file.hpp"

namespace sdnn {
namespace {

// A rank's figures as doubles (counts stay exact below 2^53).
std::vector<double> pack(const RankFigures& f, bool with_layers) {
  std::vector<double> v = {static_cast<double>(f.rank), static_cast<double>(f.rows_owned),
                           static_cast<double>(f.columns_owned), static_cast<double>(f.active_nonzeros),
                           f.compute_s, f.comm_s, f.idle_s, static_cast<double>(f.bytes_pulled),
                           static_cast<double>(f.messages), static_cast<double>(f.load_bytes_parsed),
                           static_cast<double>(f.load_bytes_pulled), static_cast<double>(f.pulled_columns), static_cast<double>(f.rows_computed)};
  if (with_layers) {
    const std::size_t layers = f.layer_compute_s.size();
    v.push_back(static_cast<double>(layers));
    for (std::size_t l = 0; l < layers; ++l) {
      v.push_back(f.layer_compute_s[l]);
      v.push_back(l < f.layer_comm_s.size() ? f.layer_comm_s[l] : 0.0);
      v.push_back(l < f.layer_nonzeros.size() ? static_cast<double>(f.layer_nonzeros[l]) : 0.0);
      v.push_back(l < f.layer_bytes.size() ? static_cast<double>(f.layer_bytes[l]) : 0.0);
      v.push_back(l < f.layer_columns.size() ? static_cast<double>(f.layer_columns[l]) : 0.0);
      v.push_back(l < f.layer_rows.size() ? static_cast<double>(f.layer_rows[l]) : 0.0);
    }
  }
  return v;
}

RankFigures unpack(const double* v, bool with_layers) {
  RankFigures f;
  f.rank = static_cast<int>(v[0]);
  f.rows_owned = static_cast<std::uint64_t>(v[1]);
  f.columns_owned = static_cast<std::uint64_t>(v[2]);
  f.active_nonzeros = static_cast<std::uint64_t>(v[3]);
  f.compute_s = v[4];
  f.comm_s = v[5];
  f.idle_s = v[6];
  f.bytes_pulled = static_cast<std::uint64_t>(v[7]);
  f.messages = static_cast<std::uint64_t>(v[8]);
  f.load_bytes_parsed = static_cast<std::uint64_t>(v[9]);
  f.load_bytes_pulled = static_cast<std::uint64_t>(v[10]);
  f.pulled_columns = static_cast<std::uint64_t>(v[11]);
  f.rows_computed = static_cast<std::uint64_t>(v[12]);
  if (with_layers) {
    const std::size_t layers = static_cast<std::size_t>(v[13]);
    for (std::size_t l = 0; l < layers; ++l) {
      const double* x = v + 14 + 6 * l;
      f.layer_compute_s.push_back(x[0]);
      f.layer_comm_s.push_back(x[1]);
      f.layer_nonzeros.push_back(static_cast<std::uint64_t>(x[2]));
      f.layer_bytes.push_back(static_cast<std::uint64_t>(x[3]));
      f.layer_columns.push_back(static_cast<std::uint64_t>(x[4]));
      f.layer_rows.push_back(static_cast<std::uint64_t>(x[5]));
    }
  }
  return f;
}

}  // namespace

std::vector<RankFigures> gather_figures(const MpiSession& mpi, const RankFigures& mine, bool with_layers) {
  const std::vector<double> packed = pack(mine, with_layers);
  const int count = static_cast<int>(packed.size());
  std::vector<int> counts(mpi.size()), displacements(mpi.size());
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  int total = 0;
  for (int r = 0; r < mpi.size(); ++r) {
    displacements[r] = total;
    total += counts[r];
  }
  std::vector<double> all(mpi.is_root() ? total : 0);
  MPI_Gatherv(packed.data(), count, MPI_DOUBLE, all.data(), counts.data(), displacements.data(), MPI_DOUBLE, 0,
              MPI_COMM_WORLD);
  std::vector<RankFigures> ranks;
  if (mpi.is_root())
    for (int r = 0; r < mpi.size(); ++r) ranks.push_back(unpack(all.data() + displacements[r], with_layers));
  return ranks;
}

double imbalance(const std::vector<RankFigures>& ranks) {
  double sum = 0, most = 0;
  for (const RankFigures& f : ranks) {
    sum += f.compute_s;
    most = std::max(most, f.compute_s);
  }
  return sum > 0 ? most / (sum / static_cast<double>(ranks.size())) : 0.0;
}

double comm_compute_ratio(const std::vector<RankFigures>& ranks) {
  double comm = 0, compute = 0;
  for (const RankFigures& f : ranks) {
    comm += f.comm_s;
    compute += f.compute_s;
  }
  return compute > 0 ? comm / compute : 0.0;
}

std::string csv_path_of(const std::string& json_path) {
  const auto slash = json_path.find_last_of('/');
  const auto dot = json_path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return json_path + ".csv";
  return json_path.substr(0, dot) + ".csv";
}

void write_report(const std::string& path, const RunDescription& run, const std::vector<RankFigures>& ranks,
                  bool with_layers) {
  std::ostringstream json;
  json.precision(9);
  json << "{\n  \"run\": {\"strategy\": \"" << run.strategy << "\", \"format\": \"" << run.format
       << "\", \"parallel\": \"" << run.parallel << "\", \"hash\": \"" << run.hash << "\", \"grid\": \"" << run.grid
       << "\", \"neurons\": " << run.neurons << ", \"layers\": " << run.layers << ", \"inputs\": " << run.inputs
       << ", \"ranks\": " << run.ranks << ", \"threads\": " << run.threads << ", \"read_s\": " << run.read_s
       << ", \"prepare_s\": " << run.prepare_s << ", \"infer_s\": " << run.infer_s << ", \"rate\": " << run.rate
       << ", \"categories\": " << run.categories
       << ", \"imbalance\": " << imbalance(ranks) << ", \"comm_compute_ratio\": " << comm_compute_ratio(ranks)
       << "},\n  \"ranks\": [\n";
  std::ostringstream csv;
  csv.precision(9);
  csv << "rank,layer,rows_owned,columns_owned,nonzeros,compute_s,comm_s,idle_s,bytes_pulled,messages,pulled_columns,rows_computed\n";
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    const RankFigures& f = ranks[r];
    json << "    {\"rank\": " << f.rank << ", \"rows_owned\": " << f.rows_owned << ", \"columns_owned\": "
         << f.columns_owned << ", \"nonzeros\": " << f.active_nonzeros << ", \"compute_s\": " << f.compute_s
         << ", \"comm_s\": " << f.comm_s << ", \"idle_s\": " << f.idle_s << ", \"bytes_pulled\": " << f.bytes_pulled
         << ", \"messages\": " << f.messages << ", \"pulled_columns\": " << f.pulled_columns
         << ", \"load_bytes_parsed\": " << f.load_bytes_parsed
         << ", \"load_bytes_pulled\": " << f.load_bytes_pulled << ", \"rows_computed\": " << f.rows_computed;
    csv << f.rank << ",all," << f.rows_owned << "," << f.columns_owned << "," << f.active_nonzeros << ","
        << f.compute_s << "," << f.comm_s << "," << f.idle_s << "," << f.bytes_pulled << "," << f.messages << ","
        << f.pulled_columns << "," << f.rows_computed << "\n";
    if (with_layers) {
      json << ",\n     \"layers\": [";
      for (std::size_t l = 0; l < f.layer_compute_s.size(); ++l) {
        json << (l ? ", " : "") << "{\"layer\": " << l + 1 << ", \"compute_s\": " << f.layer_compute_s[l]
             << ", \"comm_s\": " << f.layer_comm_s[l] << ", \"nonzeros\": " << f.layer_nonzeros[l]
             << ", \"bytes_pulled\": " << f.layer_bytes[l] << ", \"pulled_columns\": " << f.layer_columns[l]
             << ", \"rows_computed\": " << f.layer_rows[l] << "}";
        csv << f.rank << "," << l + 1 << "," << f.rows_owned << "," << f.columns_owned << "," << f.layer_nonzeros[l]
            << "," << f.layer_compute_s[l] << "," << f.layer_comm_s[l] << ",," << f.layer_bytes[l] << ",,"
            << f.layer_columns[l] << "," << f.layer_rows[l] << "\n";
      }
      json << "]";
    }
    json << "}" << (r + 1 < ranks.size() ? "," : "") << "\n";
  }
  json << "  ]\n}\n";
  write_file_atomically(path, json.str());
  write_file_atomically(csv_path_of(path), csv.str());
}

void print_problem(const Options& o, const RunDescription& run, bool with_grid, const ProblemFigures& problem,
                   const std::string& network_line) {
  std::printf("sdnn: neurons=%u layers=%u inputs=%u ranks=%d threads=%d strategy=%s", o.neurons, o.layers, o.inputs,
              run.ranks, run.threads, run.strategy.c_str());
  if (with_grid) std::printf(" grid=%s", run.grid.c_str());
  std::printf(" format=%s parallel=%s hash=%s%s\n", run.format.c_str(), run.parallel.c_str(), run.hash.c_str(),
              o.generated() ? " (generated problem)" : "");
  std::printf("%s: %.3f s (network %.3f s, input %.3f s)", o.generated() ? "generate" : "read", problem.read_s,
              problem.network_s, problem.input_s);
  if (!o.generated())
    std::printf(", %.1f MB read at %.1f MB/s (%.1f MB/s per core, %d core(s))", problem.read_mb, problem.read_mb_s,
                problem.read_mb_s / (run.ranks * run.threads), run.ranks * run.threads);
  std::printf("\n");
  std::fputs(network_line.c_str(), stdout);
  std::printf("input: %.1f MB held by the largest rank (%u rows x %u neurons)\n", problem.largest_input_mb, o.inputs,
              o.neurons);
  std::fflush(stdout);
}

void print_load_only(const Options& o, const RunDescription& run, const ProblemFigures& problem, double peak_mb,
                     double estimate_mb) {
  if (mpi_is_simulated())
    std::printf("memory: peak resident %.0f MB (the simulator's whole process: all %d simulated ranks); estimated "
                "before loading %.0f MB per rank\n", peak_mb, run.ranks, estimate_mb);
  else
    std::printf("memory: peak resident %.0f MB (largest rank); estimated before loading %.0f MB per rank\n", peak_mb,
                estimate_mb);
  if (const std::string windows = window_backend_description(); !windows.empty())
    std::printf("windows: %s\n", windows.c_str());
  std::printf("summary neurons=%u layers=%u inputs=%u ranks=%d threads=%d load_only=yes read_s=%.6f read_mb=%.1f "
              "read_mb_s=%.1f network_mb=%.1f input_mb=%.1f peak_rss_mb=%.1f input_rows=%llu\n",
              o.neurons, o.layers, o.inputs, run.ranks, run.threads, problem.read_s, problem.read_mb,
              problem.read_mb_s, problem.network_mb, problem.largest_input_mb, peak_mb,
              static_cast<unsigned long long>(problem.input_rows));
  std::fflush(stdout);
}

void print_results(const Options& o, const RunResults& r, const std::vector<RankFigures>& ranks) {
  const RunDescription& run = r.run;
  const ProblemFigures& problem = r.problem;
  const double balance = imbalance(ranks), ratio = comm_compute_ratio(ranks);
  const double multiply_adds = static_cast<double>(r.active_nonzeros) * 32;
  // --reuse: rows multiplied over all layers, and their share of inputs x layers.
  const double rows_share = static_cast<double>(r.rows_computed) / (static_cast<double>(o.inputs) * o.layers);
  std::printf("inference: %.3f s (the weights prepared before it in %.3f s: formats, column groups%s)\n", run.infer_s,
              run.prepare_s, run.strategy == "pipeline" ? ", the pipeline's stage split" : "");
  std::printf("simd: %s (dense-panel kernel; SDNN_SIMD restricts the target)\n", r.simd.c_str());
  std::printf("rate: %.4e edges/s (%u inputs x %llu connections)\n", run.rate, o.inputs,
              static_cast<unsigned long long>(r.connections));
  std::printf("multiply-adds: %.4e (active nonzeros x 32 weights per row of W)\n", multiply_adds);
  if (o.reuse)
    std::printf("reuse: on, rows computed %llu of %.0f (%.4f; identical rows computed once, multiply-adds above are "
                "those done, the rate counts every input)\n",
                static_cast<unsigned long long>(r.rows_computed), static_cast<double>(o.inputs) * o.layers, rows_share);
  std::printf("imbalance: %.3f (max over mean compute time of %d rank(s))", balance, run.ranks);
  if (r.between_ranks) std::printf(", communication/compute: %.3f", ratio);
  std::printf("\n");
  if (mpi_is_simulated())  // one process holds every simulated rank: a per-rank figure does not exist
    std::printf("memory: peak resident %.0f MB (the simulator's whole process: all %d simulated ranks); estimated "
                "before loading %.0f MB per rank\n", r.peak_mb, run.ranks, r.estimate_mb);
  else
    std::printf("memory: peak resident %.0f MB (largest rank; %.0f MB all ranks); estimated before loading %.0f MB "
                "per rank\n", r.peak_mb, r.peak_all_mb, r.estimate_mb);
  std::printf("categories: %zu\n", run.categories);
  if (!o.truth_path.empty())
    std::printf("Challenge: %s (%zu categories expected)\n", r.challenge.c_str(), r.truth_categories);
  if (!o.out_path.empty()) std::printf("categories written to %s\n", o.out_path.c_str());
  if (!o.out_activations_path.empty()) std::printf("activations written to %s\n", o.out_activations_path.c_str());
  if (!o.report_path.empty())
    std::printf("report written to %s and %s\n", o.report_path.c_str(), csv_path_of(o.report_path).c_str());
  if (const std::string windows = window_backend_description(); !windows.empty())
    std::printf("windows: %s\n", windows.c_str());  // the backend the one-sided check settled on
  std::printf(
      "summary neurons=%u layers=%u inputs=%u ranks=%d threads=%d strategy=%s grid=%s format=%s parallel=%s "
      "hash=%s read_s=%.6f prepare_s=%.6f infer_s=%.6f rate=%.6e categories=%zu checksum=%.17g imbalance=%.4f "
      "comm_ratio=%.4f verify=%s challenge=%s peak_rss_mb=%.1f read_mb_s=%.1f network_mb=%.1f input_mb=%.1f "
      "input_rows=%llu simd=%s%s",
      o.neurons, o.layers, o.inputs, run.ranks, run.threads, run.strategy.c_str(), run.grid.c_str(),
      run.format.c_str(), run.parallel.c_str(), run.hash.c_str(), run.read_s, run.prepare_s, run.infer_s, run.rate,
      run.categories,
      r.checksum, balance, ratio, r.verdict.c_str(), r.challenge.c_str(), r.peak_mb, problem.read_mb_s,
      problem.network_mb, problem.largest_input_mb, static_cast<unsigned long long>(problem.input_rows),
      r.simd.c_str(), r.strategy_fields.c_str());
  std::printf(" reuse=%s multiply_adds=%.6e", o.reuse ? "on" : "off", multiply_adds);
  if (o.reuse)
    std::printf(" rows_computed=%llu rows_computed_share=%.6f", static_cast<unsigned long long>(r.rows_computed),
                rows_share);
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace sdnn
