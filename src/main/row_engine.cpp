// row_engine.cpp: the data strategy's inference on one rank's rows (see row_engine.hpp).
#include "main/row_engine.hpp"

#include <utility>

namespace sdnn {

RankResult infer_rows(const LoadedProblem& problem, const EngineOptions& engine, bool keep_final_rows,
                      RankFigures& figures, std::unique_ptr<InferenceSession>* keep_session) {
  EngineOptions mine = engine;
  mine.keep_activations = keep_final_rows;
  auto session = std::make_unique<InferenceSession>(problem.network, mine);
  InferenceResult result = session->run(problem.input);
  if (keep_session) *keep_session = std::move(session);
  figures.active_nonzeros = result.active_nonzeros;
  figures.layer_nonzeros = std::move(result.layer_nonzeros);
  figures.layer_compute_s = std::move(result.layer_seconds);
  figures.layer_comm_s.assign(figures.layer_compute_s.size(), 0.0);
  figures.layer_bytes.assign(figures.layer_compute_s.size(), 0);
  figures.layer_columns.assign(figures.layer_compute_s.size(), 0);
  figures.layer_rows = std::move(result.layer_rows);
  figures.layer_rows.resize(figures.layer_compute_s.size(), 0);
  for (std::uint64_t r : figures.layer_rows) figures.rows_computed += r;
  return {std::move(result.activations), std::move(result.categories), result.exact_sum};
}

}  // namespace sdnn
