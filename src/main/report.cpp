// report.cpp: see report.hpp.
#include "main/report.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

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
       << ", \"infer_s\": " << run.infer_s << ", \"rate\": " << run.rate << ", \"categories\": " << run.categories
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

}  // namespace sdnn
