// row_engine.hpp: the data strategy's inference on one rank's rows, shared by the strategies that
// run it: the engine's data parallelism (blocks of rows taken through every layer while they stay
// in cache, spmm/engine.hpp) on the rank's rows with the whole network, and the rank's figures
// from the engine's (no communication). Data x data runs it on every rank (strategy.cpp); data x
// model on a grid of one column block (D x 1), where nothing is exchanged between column blocks
// (strategy_model.cpp).
#pragma once

#include <memory>

#include "main/load.hpp"
#include "main/report.hpp"
#include "main/strategy.hpp"
#include "spmm/engine.hpp"

namespace sdnn {

// Runs the engine with `engine` on problem.input through problem.network (its layers prepared in
// engine.format) and fills figures (compute per layer, communication 0). keep_final_rows false:
// final_rows stays empty (the engine drops each block's rows once counted). keep_session: where
// to leave the engine's session (its buffers) for the caller to free after timing the run; null:
// freed here.
RankResult infer_rows(const LoadedProblem& problem, const EngineOptions& engine, bool keep_final_rows,
                      RankFigures& figures, std::unique_ptr<InferenceSession>* keep_session = nullptr);

}  // namespace sdnn
