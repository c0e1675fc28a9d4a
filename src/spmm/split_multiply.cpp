// split_multiply.cpp: see split_multiply.hpp.
#include "split_multiply.hpp"

#include <omp.h>

#include <cstring>

#include "spmm.hpp"
#include "thread_failure.hpp"

namespace sdnn {
namespace {

// Calls visit(i, product) for every product A(i,k) * W(k,j) of column j.
template <class Visit>
inline void for_each_product(const CscMatrix& a, const CscMatrix& w, Index j, Visit&& visit) {
  for (Offset q = w.begin(j); q < w.end(j); ++q) {
    const Index k = w.indices[q];
    const double weight = w.values[q];
    for (Offset p = a.begin(k); p < a.end(k); ++p) visit(a.indices[p], static_cast<double>(a.values[p]) * weight);
  }
}

constexpr int kChunk = 16;

}  // namespace

void SplitRightMultiplier::partial(const CscMatrix& a1, const CscMatrix& w1, PartialColumns& out) {
  const Index columns = w1.cols();
  out.rows = a1.rows();
  out.offsets.assign(columns + 1, 0);
  ThreadFailure failure;
#pragma omp parallel num_threads(threads_)
  {
    SparseAccumulator spa(a1.rows());
#pragma omp for schedule(dynamic, kChunk)
    for (Index j = 0; j < columns; ++j) {
      spa.start();
      for_each_product(a1, w1, j, [&](Index i, double) { spa.touch(i); });
      out.offsets[j + 1] = spa.pattern().size();
    }
#pragma omp single
    failure.guard([&] {
      for (Index j = 0; j < columns; ++j) out.offsets[j + 1] += out.offsets[j];
      if (out.row_indices.size() < out.offsets[columns]) {
        out.row_indices.resize(out.offsets[columns]);
        out.sums.resize(out.offsets[columns]);
      }
    });
#pragma omp for schedule(dynamic, kChunk)
    for (Index j = 0; j < columns; ++j) {
      if (failure.failed()) continue;
      spa.start();
      for_each_product(a1, w1, j, [&](Index i, double product) { spa.add(i, product); });
      Offset at = out.offsets[j];
      for (Index i : spa.pattern()) {
        out.row_indices[at] = i;
        out.sums[at++] = spa.sum(i);
      }
    }
  }
  failure.rethrow();
}

void SplitRightMultiplier::finish(const PartialColumns& partial, const CscMatrix& a2, const CscMatrix& w2,
                                  const Value* bias, CscMatrix& out) {
  const Index columns = w2.cols(), rows = partial.rows;
  sizes_.resize(columns);
  bound_start_.resize(columns + 1);
  kept_.resize(columns);
  ThreadFailure failure;
#pragma omp parallel num_threads(threads_)
  {
    SparseAccumulator spa(rows);
    // Symbolic: the pattern of the partial column and of the remote products.
#pragma omp for schedule(dynamic, kChunk)
    for (Index j = 0; j < columns; ++j) {
      spa.start();
      for (Offset p = partial.offsets[j]; p < partial.offsets[j + 1]; ++p) spa.touch(partial.row_indices[p]);
      for_each_product(a2, w2, j, [&](Index i, double) { spa.touch(i); });
      sizes_[j] = spa.pattern().size();
    }
#pragma omp single
    failure.guard([&] {
      bound_start_[0] = 0;
      for (Index j = 0; j < columns; ++j) bound_start_[j + 1] = bound_start_[j] + sizes_[j];
      staging_.reserve_nonzeros(bound_start_[columns]);
    });
    // Numeric: the partial sums, plus the remote products, then the layer's activation.
#pragma omp for schedule(dynamic, kChunk)
    for (Index j = 0; j < columns; ++j) {
      if (failure.failed()) continue;
      spa.start();
      for (Offset p = partial.offsets[j]; p < partial.offsets[j + 1]; ++p)
        spa.add(partial.row_indices[p], partial.sums[p]);
      for_each_product(a2, w2, j, [&](Index i, double product) { spa.add(i, product); });
      Offset at = bound_start_[j];
      for (Index i : spa.pattern()) {
        const Value v = activate(spa.sum(i), bias[j]);
        if (v > 0.0f) {
          staging_.indices[at] = i;
          staging_.values[at++] = v;
        }
      }
      kept_[j] = at - bound_start_[j];
    }
#pragma omp single
    failure.guard([&] {
      out.reset(rows, columns);
      for (Index j = 0; j < columns; ++j) out.offsets[j + 1] = out.offsets[j] + kept_[j];
      out.reserve_nonzeros(out.nnz());
    });
#pragma omp for schedule(static)
    for (Index j = 0; j < columns; ++j) {
      if (kept_[j] == 0 || failure.failed()) continue;
      std::memcpy(out.indices.data() + out.offsets[j], staging_.indices.data() + bound_start_[j], kept_[j] * sizeof(Index));
      std::memcpy(out.values.data() + out.offsets[j], staging_.values.data() + bound_start_[j], kept_[j] * sizeof(Value));
    }
  }
  failure.rethrow();
}

}  // namespace sdnn
