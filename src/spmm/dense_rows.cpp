// dense_rows.cpp: dense-panel layer kernel and conversions (see dense_rows.hpp).
#include "dense_rows.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
// GCC 12's own _mm512_cvtpd_ps starts from an undefined vector, which -Wmaybe-uninitialized flags.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

namespace sdnn {

bool worth_dense(const CsrMatrix& rows, Index neurons, double threshold) {
  if (rows.rows() == 0 || static_cast<double>(rows.nnz()) < threshold * static_cast<double>(rows.rows()) * neurons)
    return false;
  for (Offset p = 0; p < rows.nnz(); ++p)
    if (!(rows.values[p] > 0.0f)) return false;
  return true;
}

void to_dense(const ActiveRows& in, Index neurons, DenseRows& out) {
  out.neurons = neurons;
  out.ids = in.ids;
  out.panel.assign(static_cast<std::size_t>(out.panels()) * neurons * kPanelRows, 0.0f);
  for (Index r = 0; r < in.rows.rows(); ++r) {
    Value* base = out.panel.data() + static_cast<std::size_t>(r / kPanelRows) * neurons * kPanelRows + r % kPanelRows;
    for (Offset p = in.rows.begin(r); p < in.rows.end(r); ++p) base[std::size_t{in.rows.indices[p]} * kPanelRows] = in.rows.values[p];
  }
}

void to_sparse(const DenseRows& in, ActiveRows& out) {
  out.rows.reset(in.rows(), in.neurons);
  out.ids.clear();
  Offset count = 0;
  Index kept = 0;
  for (Index r = 0; r < in.rows(); ++r) {
    out.rows.reserve_nonzeros(count + in.neurons);
    const Offset row_start = count;
    for (Index k = 0; k < in.neurons; ++k) {
      const Value v = in.at(r, k);
      if (v != 0.0f) {
        out.rows.indices[count] = k;
        out.rows.values[count] = v;
        ++count;
      }
    }
    if (count > row_start) {
      out.ids.push_back(in.ids[r]);
      out.rows.offsets[++kept] = count;
    }
  }
  out.rows.resize_major(kept);
}

namespace {

// One panel, portable version: for every output neuron j, sums over the weights of column j in
// double.
void multiply_panel_portable(const Value* __restrict in, const CscMatrix& w, const Value* bias,
                                              Index first, Index neurons, Value* __restrict out,
                                              std::uint32_t* row_nonzeros) {
  for (Index j = first; j < neurons; ++j) {
    double sum[kPanelRows] = {};
    Value reach[kPanelRows] = {};
    for (Offset q = w.begin(j); q < w.end(j); ++q) {
      const Value* column = in + std::size_t{w.indices[q]} * kPanelRows;
      const double weight = w.values[q];
      for (Index r = 0; r < kPanelRows; ++r) {
        sum[r] += static_cast<double>(column[r]) * weight;
        reach[r] += column[r];
      }
    }
    Value* target = out + std::size_t{j} * kPanelRows;
    for (Index r = 0; r < kPanelRows; ++r) {
      target[r] = reach[r] > 0.0f ? activate(sum[r], bias[j]) : 0.0f;
      row_nonzeros[r] += target[r] > 0.0f;
    }
  }
}

#if defined(__AVX512F__)
// AVX-512, G panels at once: one zmm of 8 doubles per (output neuron, panel), with 4 / G output
// neurons at a time, so that four independent multiply-add chains hide the latency and each
// weight (its index and its conversion to double) is loaded once for G panels.
template <int G>
void multiply_panels(const Value* const* in, const CscMatrix& w, const Value* bias, Index first, Index last,
                     Value* const* out, std::uint32_t* const* row_nonzeros) {
  static_assert(kPanelRows == 8, "one __m512d per panel column");
  constexpr Index kColumns = G >= 4 ? 1 : 4 / G;
  const __m256 zero = _mm256_setzero_ps(), cap = _mm256_set1_ps(kActivationCap);
  __m256i counts[G];  // kept entries per row, as 8 x int32 per panel
  for (int g = 0; g < G; ++g) counts[g] = _mm256_setzero_si256();
  Index j = first;
  for (; j + kColumns <= last; j += kColumns) {
    __m512d sum[kColumns][G];
    __m256 reach[kColumns][G];
    Offset begin[kColumns], length[kColumns];
    Offset common = ~Offset{0};
    for (Index c = 0; c < kColumns; ++c) {
      for (int g = 0; g < G; ++g) {
        sum[c][g] = _mm512_setzero_pd();
        reach[c][g] = zero;
      }
      begin[c] = w.begin(j + c);
      length[c] = w.end(j + c) - begin[c];
      common = std::min(common, length[c]);
    }
    auto step = [&](Index c, Offset q) {
      const std::size_t at = std::size_t{w.indices[q]} * kPanelRows;
      const __m512d weight = _mm512_set1_pd(static_cast<double>(w.values[q]));
      for (int g = 0; g < G; ++g) {
        const __m256 column = _mm256_loadu_ps(in[g] + at);
        sum[c][g] = _mm512_fmadd_pd(_mm512_cvtps_pd(column), weight, sum[c][g]);
        reach[c][g] = _mm256_add_ps(reach[c][g], column);
      }
    };
    for (Offset t = 0; t < common; ++t)
      for (Index c = 0; c < kColumns; ++c) step(c, begin[c] + t);
    for (Index c = 0; c < kColumns; ++c) {
      for (Offset t = common; t < length[c]; ++t) step(c, begin[c] + t);
      // activate(): the sum plus the bias in double, rounded once, ReLU, cap; only where reached.
      const __m512d b = _mm512_set1_pd(static_cast<double>(bias[j + c]));
      for (int g = 0; g < G; ++g) {
        const __m256 z = _mm512_cvtpd_ps(_mm512_add_pd(sum[c][g], b));
        const __mmask8 keep =
            _mm256_cmp_ps_mask(z, zero, _CMP_GT_OQ) & _mm256_cmp_ps_mask(reach[c][g], zero, _CMP_GT_OQ);
        _mm256_storeu_ps(out[g] + std::size_t{j + c} * kPanelRows, _mm256_maskz_mov_ps(keep, _mm256_min_ps(z, cap)));
        counts[g] = _mm256_sub_epi32(counts[g], _mm256_movm_epi32(keep));  // a set bit is -1
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    alignas(32) std::uint32_t kept[kPanelRows];
    _mm256_store_si256(reinterpret_cast<__m256i*>(kept), counts[g]);
    for (Index r = 0; r < kPanelRows; ++r) row_nonzeros[g][r] += kept[r];
    multiply_panel_portable(in[g], w, bias, j, last, out[g], row_nonzeros[g]);
  }
}

// Every panel of `in`, four at a time.
void multiply_all_panels(const DenseRows& in, const CscMatrix& w, const Value* bias, Index first, Index last,
                         DenseRows& out, std::uint32_t* row_nonzeros) {
  const std::size_t panel_size = std::size_t{in.neurons} * kPanelRows;
  const Index panels = in.panels();
  for (Index p = 0; p < panels;) {
    const Value* from[4];
    Value* to[4];
    std::uint32_t* counts[4];
    const int group = static_cast<int>(std::min<Index>(4, panels - p));
    for (int g = 0; g < group; ++g) {
      from[g] = in.panel.data() + (p + g) * panel_size;
      to[g] = out.panel.data() + (p + g) * panel_size;
      counts[g] = row_nonzeros + std::size_t{p + g} * kPanelRows;
    }
    switch (group) {
      case 4: multiply_panels<4>(from, w, bias, first, last, to, counts); break;
      case 3: multiply_panels<3>(from, w, bias, first, last, to, counts); break;
      case 2: multiply_panels<2>(from, w, bias, first, last, to, counts); break;
      default: multiply_panels<1>(from, w, bias, first, last, to, counts); break;
    }
    p += static_cast<Index>(group);
  }
}
#else
void multiply_all_panels(const DenseRows& in, const CscMatrix& w, const Value* bias, Index first, Index last,
                         DenseRows& out, std::uint32_t* row_nonzeros) {
  const std::size_t panel_size = std::size_t{in.neurons} * kPanelRows;
  for (Index p = 0; p < in.panels(); ++p)
    multiply_panel_portable(in.panel.data() + p * panel_size, w, bias, first, last,
                            out.panel.data() + p * panel_size, row_nonzeros + std::size_t{p} * kPanelRows);
}
#endif

}  // namespace

void multiply_panel_columns(const DenseRows& in, const CscMatrix& weights, const Value* bias, Index first,
                            Index last, DenseRows& out, std::uint32_t* row_nonzeros) {
  multiply_all_panels(in, weights, bias, first, last, out, row_nonzeros);
}

Offset keep_alive_rows(DenseRows& computed, const std::uint32_t* row_nonzeros, DenseRows& out) {
  const Index n = computed.neurons;
  const std::size_t panel_size = std::size_t{n} * kPanelRows;
  Offset nonzeros = 0;
  Index alive = 0;
  for (Index r = 0; r < computed.rows(); ++r) {
    nonzeros += row_nonzeros[r];
    alive += row_nonzeros[r] > 0;
  }
  out.neurons = n;
  if (alive == computed.rows()) {  // nobody died: take the panels as they are
    std::swap(out.panel, computed.panel);
    std::swap(out.ids, computed.ids);
    return nonzeros;
  }
  out.ids.clear();
  for (Index r = 0; r < computed.rows(); ++r)
    if (row_nonzeros[r] > 0) out.ids.push_back(computed.ids[r]);
  out.panel.assign(static_cast<std::size_t>(out.panels()) * panel_size, 0.0f);
  Index to = 0;
  for (Index r = 0; r < computed.rows(); ++r) {
    if (row_nonzeros[r] == 0) continue;
    const Value* from_panel = computed.panel.data() + (r / kPanelRows) * panel_size + r % kPanelRows;
    Value* to_panel = out.panel.data() + (to / kPanelRows) * panel_size + to % kPanelRows;
    for (Index k = 0; k < n; ++k) to_panel[std::size_t{k} * kPanelRows] = from_panel[std::size_t{k} * kPanelRows];
    ++to;
  }
  return nonzeros;
}

void prepare_panel_output(const DenseRows& in, DenseRows& out) {
  out.neurons = in.neurons;
  out.ids = in.ids;
  out.panel.resize(static_cast<std::size_t>(in.panels()) * in.neurons * kPanelRows);
}

void DenseMultiplier::multiply(const DenseRows& in, const CscMatrix& weights, const Value* bias, DenseRows& out) {
  prepare_panel_output(in, scratch_);
  row_nonzeros_.assign(static_cast<std::size_t>(in.panels()) * kPanelRows, 0);
  multiply_panel_columns(in, weights, bias, 0, in.neurons, scratch_, row_nonzeros_.data());
  nonzeros_ = keep_alive_rows(scratch_, row_nonzeros_.data(), out);
}

}  // namespace sdnn
