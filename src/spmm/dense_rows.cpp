// dense_rows.cpp: dense-panel layer kernel and conversions (see dense_rows.hpp).
//
// The kernel is Google Highway code: foreach_target.h compiles this file once per SIMD target
// (the part between HWY_BEFORE_NAMESPACE and HWY_AFTER_NAMESPACE), and HWY_DYNAMIC_DISPATCH
// calls the best one the CPU supports. Everything else is compiled once (HWY_ONCE).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "spmm/dense_rows.cpp"
// SVE's vectors are sizeless: they cannot be held in the arrays of accumulators the register-
// blocked kernel keeps, so ARM runs the NEON target (and RISC-V the portable one).
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "spmm/dense_rows.hpp"

#ifndef SDNN_PANEL_OPERANDS
#define SDNN_PANEL_OPERANDS
namespace sdnn {
// The operands of one call: panels [0, panels) of `in` (in double, panel p at p * stride) and W.
struct PanelOperands {
  const double* in;
  std::size_t stride;  // doubles per panel: neurons x kPanelRows
  const Offset* offsets;
  const Index* indices;
  const double* weights;
  const Value* bias;
  Value* out;  // float panels, same layout
  std::uint32_t* row_nonzeros;
};
}  // namespace sdnn
#endif

HWY_BEFORE_NAMESPACE();
namespace sdnn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Up to kPanelRows doubles: one panel column is kVectors vectors of this.
using PanelTag = hn::CappedTag<double, kPanelRows>;

// Output neurons [j, j + C) of G panels starting at panel p, each panel column held in V
// vectors: C x G x V independent multiply-add chains, so that the FMA latency is hidden and each
// weight (its index and its value) is loaded once for G panels. The inner loop is loads and
// multiply-adds only: an entry that no present input reaches has the sum +0, so it needs a test
// of its own (the sum of the inputs read) only when its bias is positive.
template <std::size_t V, int C, int G>
HWY_INLINE void column_block(const PanelOperands& op, Index p, Index j,
                             hn::Vec<hn::Rebind<std::int32_t, PanelTag>> (&counts)[G][V]) {
  const PanelTag d;
  const hn::Rebind<float, PanelTag> df;
  const hn::Rebind<std::int32_t, PanelTag> di;
  constexpr std::size_t N = kPanelRows / V;
  const double* in = op.in + p * op.stride;
  hn::Vec<PanelTag> sum[C][G][V];
  Offset begin[C], length[C];
  Offset common = ~Offset{0};
  for (int c = 0; c < C; ++c) {
    for (int g = 0; g < G; ++g)
      for (std::size_t v = 0; v < V; ++v) sum[c][g][v] = hn::Zero(d);
    begin[c] = op.offsets[j + c];
    length[c] = op.offsets[j + c + 1] - begin[c];
    common = std::min(common, length[c]);
  }
  auto step = [&](int c, Offset q) HWY_ATTR {
    const double* column = in + std::size_t{op.indices[q]} * kPanelRows;
    const auto weight = hn::Set(d, op.weights[q]);
    for (int g = 0; g < G; ++g)
      for (std::size_t v = 0; v < V; ++v)
        sum[c][g][v] = hn::MulAdd(hn::LoadU(d, column + g * op.stride + v * N), weight, sum[c][g][v]);
  };
  for (Offset t = 0; t < common; ++t)
    for (int c = 0; c < C; ++c) step(c, begin[c] + t);
  const auto zero = hn::Zero(df), cap = hn::Set(df, kActivationCap);
  for (int c = 0; c < C; ++c) {
    for (Offset t = common; t < length[c]; ++t) step(c, begin[c] + t);
    // activate(): the sum plus the bias in double, rounded once, ReLU, cap.
    const Value bias = op.bias[j + c];
    const auto b = hn::Set(d, static_cast<double>(bias));
    for (int g = 0; g < G; ++g)
      for (std::size_t v = 0; v < V; ++v) {
        const auto z = hn::DemoteTo(df, hn::Add(sum[c][g][v], b));
        auto keep = hn::Gt(z, zero);
        if (bias > 0.0f) {  // only reached entries are structural
          auto reach = hn::Zero(d);
          for (Offset q = begin[c]; q < begin[c] + length[c]; ++q)
            reach = hn::Add(reach, hn::LoadU(d, in + g * op.stride + std::size_t{op.indices[q]} * kPanelRows + v * N));
          keep = hn::And(keep, hn::Gt(hn::DemoteTo(df, reach), zero));  // a positive sum stays positive
        }
        Value* target = op.out + (p + g) * op.stride + std::size_t{j + c} * kPanelRows + v * N;
        hn::StoreU(hn::IfThenElseZero(keep, hn::Min(z, cap)), df, target);
        counts[g][v] = hn::Sub(counts[g][v], hn::BitCast(di, hn::VecFromMask(df, keep)));  // a kept lane is -1
      }
  }
}

// Output neurons [first, last) of G panels starting at panel p: blocks of C neurons, then one
// at a time; the kept entries of each row counted in vectors and added once at the end.
template <std::size_t V, int C, int G>
HWY_NOINLINE void panel_group(const PanelOperands& op, Index p, Index first, Index last) {
  const hn::Rebind<std::int32_t, PanelTag> di;
  constexpr std::size_t N = kPanelRows / V;
  hn::Vec<decltype(di)> counts[G][V];
  for (int g = 0; g < G; ++g)
    for (std::size_t v = 0; v < V; ++v) counts[g][v] = hn::Zero(di);
  Index j = first;
  for (; j + C <= last; j += C) column_block<V, C, G>(op, p, j, counts);
  for (; j < last; ++j) column_block<V, 1, G>(op, p, j, counts);
  for (int g = 0; g < G; ++g)
    for (std::size_t v = 0; v < V; ++v) {
      alignas(64) std::int32_t kept[kPanelRows];
      hn::Store(counts[g][v], di, kept);
      for (std::size_t r = 0; r < N; ++r) op.row_nonzeros[(p + g) * kPanelRows + v * N + r] += kept[r];
    }
}

// Panels [p, panels), G at a time; the rest (fewer than G) as a group of G - 1 panels with more
// neurons per block, and so on, so that a short tail keeps as many chains as a full group.
template <std::size_t V, int C, int G>
void all_panels(const PanelOperands& op, Index p, Index panels, Index first, Index last) {
  for (; p + G <= panels; p += G) panel_group<V, C, G>(op, p, first, last);
  if constexpr (G > 1) {
    if (p < panels) all_panels<V, C * G / (G - 1), G - 1>(op, p, panels, first, last);
  }
}

// Register blocking per vector width: C neurons x G panels x V vectors of accumulators, 12 to 16
// of them (x86 has 16 vector registers below AVX-512, 32 with it).
void multiply_wide_panels(const PanelOperands& op, Index panels, Index first, Index last) {
  static_assert(kPanelRows == 8, "register blocking assumes 8 rows per panel");
  switch (hn::Lanes(PanelTag())) {
    case 8: all_panels<1, 4, 4>(op, 0, panels, first, last); break;  // AVX-512
    case 4: all_panels<2, 2, 3>(op, 0, panels, first, last); break;  // AVX2
    case 2: all_panels<4, 1, 3>(op, 0, panels, first, last); break;  // SSE4, NEON
    default: all_panels<8, 1, 1>(op, 0, panels, first, last); break;  // portable
  }
}

// The target this code was compiled for (which HWY_DYNAMIC_DISPATCH chose).
std::int64_t compiled_target() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace sdnn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sdnn {

HWY_EXPORT(multiply_wide_panels);
HWY_EXPORT(compiled_target);

namespace {

// Applies SDNN_SIMD once: the targets better than the one it names are disabled.
void apply_simd_choice() {
  const char* wanted = std::getenv("SDNN_SIMD");
  if (!wanted || !*wanted) return;
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets())
    if (std::string(hwy::TargetName(target)) == wanted) {
      hwy::DisableTargets(target - 1);  // better targets have lower bits
      return;
    }
  std::string names;
  for (const std::string& name : simd_targets_available()) names += " " + name;
  throw std::invalid_argument(std::string("SDNN_SIMD=") + wanted +
                              " is not a SIMD target of this build on this CPU (available:" + names + ")");
}

void ensure_simd_choice() {
  static const bool applied = (apply_simd_choice(), true);
  (void)applied;
}

}  // namespace

std::vector<std::string> simd_targets_available() {
  std::vector<std::string> names;
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) names.push_back(hwy::TargetName(target));
  return names;
}

std::string simd_target() {
  ensure_simd_choice();
  return hwy::TargetName(HWY_DYNAMIC_DISPATCH(compiled_target)());
}

void DoubleBuffer::resize(std::size_t size) {
  if (size > capacity_) {
    data_ = hwy::AllocateAligned<double>(size);
    if (!data_) throw std::bad_alloc();
    capacity_ = size;
  }
  size_ = size;
}

namespace {

void widen(const Value* from, std::size_t count, double* to) {
  for (std::size_t i = 0; i < count; ++i) to[i] = from[i];
}

void widen_weights(const CscMatrix& weights, DoubleBuffer& wide) {
  wide.resize(weights.nnz());
  widen(weights.values.data(), weights.nnz(), wide.data());
}

// Panels [first_panel, first_panel + panels) of `in`, whose panels in double start at `wide`.
void multiply_panel_range(const DenseRows& in, const double* wide, const double* weights, const CscMatrix& w,
                          const Value* bias, Index first_panel, Index panels, Index first, Index last,
                          DenseRows& out, std::uint32_t* row_nonzeros) {
  ensure_simd_choice();
  const std::size_t stride = std::size_t{in.neurons} * kPanelRows;
  const PanelOperands op{wide, stride, w.offsets.data(), w.indices.data(), weights, bias,
                         out.panel.data() + first_panel * stride, row_nonzeros + std::size_t{first_panel} * kPanelRows};
  HWY_DYNAMIC_DISPATCH(multiply_wide_panels)(op, panels, first, last);
}

}  // namespace

void widen_operands(const DenseRows& in, const CscMatrix& weights, WideOperands& wide) {
  wide.panels.resize(in.panel.size());
  widen(in.panel.data(), in.panel.size(), wide.panels.data());
  widen_weights(weights, wide.weights);
}

void multiply_panel_columns(const DenseRows& in, const WideOperands& wide, const CscMatrix& weights,
                            const Value* bias, Index first, Index last, DenseRows& out, std::uint32_t* row_nonzeros) {
  multiply_panel_range(in, wide.panels.data(), wide.weights.data(), weights, bias, 0, in.panels(), first, last, out,
                       row_nonzeros);
}


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

// The weights in double once per layer; the input panels in double a few at a time (12: whole
// groups of 4 and of 3 panels), each converted once and used at once, so that the doubles stay
// in cache and a thread holds 12 panels of them, not its whole block.
void DenseMultiplier::multiply(const DenseRows& in, const CscMatrix& weights, const Value* bias, DenseRows& out) {
  constexpr Index kWidePanels = 12;
  prepare_panel_output(in, scratch_);
  row_nonzeros_.assign(static_cast<std::size_t>(in.panels()) * kPanelRows, 0);
  widen_weights(weights, wide_.weights);
  const std::size_t stride = std::size_t{in.neurons} * kPanelRows;
  for (Index p = 0; p < in.panels(); p += kWidePanels) {
    const Index count = std::min(kWidePanels, in.panels() - p);
    wide_.panels.resize(count * stride);
    widen(in.panel.data() + p * stride, count * stride, wide_.panels.data());
    multiply_panel_range(in, wide_.panels.data(), wide_.weights.data(), weights, bias, p, count, 0, in.neurons,
                         scratch_, row_nonzeros_.data());
  }
  nonzeros_ = keep_alive_rows(scratch_, row_nonzeros_.data(), out);
}

}  // namespace sdnn
#endif  // HWY_ONCE
