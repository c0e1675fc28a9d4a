// dense_rows.cpp: dense-panel layer kernel and conversions (see dense_rows.hpp).
//
// The kernel is Google Highway code: foreach_target.h compiles this file once per SIMD target
// (the part between HWY_BEFORE_NAMESPACE and HWY_AFTER_NAMESPACE), and HWY_DYNAMIC_DISPATCH
// calls the best one the CPU supports. Everything else is compiled once (HWY_ONCE).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "spmm/dense_rows.cpp"
#include "spmm/simd_targets.hpp"  // the targets left out (RVV, SSSE3) and why
#include <hwy/foreach_target.h>  // must come before highway.h
#include <hwy/highway.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "spmm/dense_rows.hpp"

#ifndef SDNN_PANEL_OPERANDS
#define SDNN_PANEL_OPERANDS
namespace sdnn {
// The operands of one call: panels [0, panels) of `in` (in double, panel p at p * stride) and W,
// and which output neurons to compute: those at positions [begin, end) of `order` that lie in
// [first, last).
struct PanelOperands {
  const double* in;       // not grouped: the panels in double
  const Value* in_float;  // grouped: the panels as they are (each load serves several neurons)
  std::size_t stride;  // doubles per panel: neurons x kPanelRows
  const Offset* offsets;
  const Index* indices;
  const double* weights;  // WideOperands::weights: CscMatrix::values in double
  const Value* bias;
  Value* out;  // float panels: output neuron j of panel p at out + p x out_stride + j x kPanelRows
  std::size_t out_stride;  // floats per output panel (stride when the output is as wide as the input)
  std::uint32_t* row_nonzeros;
  const Index* order;           // WideOperands::order
  const Index* group_start;     // WideOperands::group_start (grouped only)
  Index groups;                 // 0: not grouped, order is 0, 1, ..., neurons - 1
  Index begin, end, first, last;
  Index readable;  // panels of `in` from the call's first: the grouped kernel prefetches the next G
                   // of them while it computes G
  bool floats;     // not grouped: the kernel reads in_float, converting each vector (in is unused)
};
// This thread's buffer of at least `size` doubles (64-byte aligned) for a group's inputs.
double* group_input_buffer(std::size_t size);
}  // namespace sdnn
// The kernel's lambdas: compiled for the target and always inlined, so that the accumulators they
// hold or take by reference stay in registers (GCC leaves large lambdas out of line otherwise,
// and the row counts then live in memory: the AVX3 kernel ran 1.6x slower). The sanitizer builds
// define it as HWY_ATTR alone (Makefile): forced inlining made the -O1 compile of this file take
// about 700 s of CPU instead of 116 s under ASan+UBSan (GCC), 145 s instead of 53 s under TSan
// (clang), for no gain in their tests' time.
#ifndef SDNN_KERNEL_LAMBDA
#define SDNN_KERNEL_LAMBDA HWY_ATTR __attribute__((always_inline))
#endif
#endif

HWY_BEFORE_NAMESPACE();
namespace sdnn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Up to kPanelRows doubles: one panel column is kVectors vectors of this.
using PanelTag = hn::CappedTag<double, kPanelRows>;
using CountTag = hn::Rebind<std::int32_t, PanelTag>;

// Accumulators as separate variables. SVE's vectors are sizeless types: C++ cannot put them in
// arrays or classes, so the kernel's C x G x V sums (and its G x V row counts) are not an array
// but a pack of function parameters (with_registers), one of them picked by a constant index
// (pick), in loops unrolled at compile time (unrolled): the same code on every target, and on
// fixed-width targets the same registers as an array fully unrolled.

// body(integral_constant<0>), ..., body(integral_constant<N - 1>), in that order.
template <class Body, std::size_t... I>
HWY_INLINE void unrolled_over(std::index_sequence<I...>, Body&& body) {
  (body(std::integral_constant<std::size_t, I>()), ...);
}
template <std::size_t N, class Body>
HWY_INLINE void unrolled(Body&& body) {
  unrolled_over(std::make_index_sequence<N>(), body);
}

// The I-th of the arguments (first, rest...): an accumulator of a with_registers body by its index.
template <std::size_t I, class Vec, class... Rest>
HWY_INLINE Vec& pick(Vec& first, Rest&... rest) {
  if constexpr (I == 0) {
    return first;
  } else {
    return pick<I - 1>(rest...);
  }
}

// body(init, init, ..., init): K copies of `init`, which body takes as K parameters (auto...).
template <class Vec, class Body, std::size_t... I>
HWY_INLINE void with_copies(std::index_sequence<I...>, Vec init, Body&& body) {
  body(((void)I, init)...);
}
template <std::size_t K, class Vec, class Body>
HWY_INLINE void with_registers(Vec init, Body&& body) {
  with_copies(std::make_index_sequence<K>(), init, body);
}

// Accumulator of output neuron c (of a block), panel g, vector v: index (c x G + g) x V + v;
// a row count: g x V + v.
template <std::size_t V, int G>
constexpr std::size_t sum_index(std::size_t c, std::size_t g, std::size_t v) {
  return (c * G + g) * V + v;
}

// N doubles of a panel column, from doubles or from floats.
HWY_INLINE hn::Vec<PanelTag> load_wide(const double* from) { return hn::LoadU(PanelTag(), from); }
HWY_INLINE hn::Vec<PanelTag> load_wide(const Value* from) {
  return hn::PromoteTo(PanelTag(), hn::LoadU(hn::Rebind<float, PanelTag>(), from));
}

// activate() on the entries of one output neuron in N = kPanelRows / V rows of one panel: `sum`
// plus `bias` (the neuron's bias in double), rounded once, ReLU and cap, stored at `target`;
// returns -1 in the lanes of the rows that kept the entry. An entry that no present input
// reaches has the sum +0, so it needs a test of its own only when the bias is positive
// (`reach_test`): the sum of the `length` inputs `pattern` it reads (`in`: the input panel at
// these rows) must be positive.
template <std::size_t V, typename Input>
HWY_INLINE hn::Vec<CountTag> activate_entries(hn::Vec<PanelTag> sum, hn::Vec<PanelTag> bias, bool reach_test,
                                              const Input* in, const Index* pattern, Offset length, Value* target) {
  const PanelTag d;
  const hn::Rebind<float, PanelTag> df;
  const CountTag di;
  const auto zero = hn::Zero(df);
  const auto z = hn::DemoteTo(df, hn::Add(sum, bias));
  auto keep = hn::Gt(z, zero);
  if (reach_test) {
    auto reach = hn::Zero(d);
    for (Offset q = 0; q < length; ++q) reach = hn::Add(reach, load_wide(in + std::size_t{pattern[q]} * kPanelRows));
    keep = hn::And(keep, hn::Gt(hn::DemoteTo(df, reach), zero));  // a positive sum stays positive
  }
  hn::StoreU(hn::IfThenElseZero(keep, hn::Min(z, hn::Set(df, kActivationCap))), df, target);
  return hn::BitCast(di, hn::VecFromMask(df, keep));
}

// activate_entries for output neuron j in rows [v x N, v x N + N) of panel p + g of the call.
template <std::size_t V, typename Input>
HWY_INLINE hn::Vec<CountTag> store_activated(const PanelOperands& op, const Input* panels, Index p, std::size_t g,
                                             std::size_t v, Index j, const Index* pattern, Offset length,
                                             hn::Vec<PanelTag> sum) {
  constexpr std::size_t N = kPanelRows / V;
  const Value bias = op.bias[j];
  return activate_entries<V>(sum, hn::Set(PanelTag(), static_cast<double>(bias)), bias > 0.0f,
                             panels + (p + g) * op.stride + v * N, pattern, length,
                             op.out + (p + g) * op.out_stride + std::size_t{j} * kPanelRows + v * N);
}

// Output neurons [j, j + C) of G panels starting at panel p, each panel column held in V
// vectors: C x G x V independent multiply-add chains, so that the FMA latency is hidden and each
// weight (its index and its value) is loaded once for G panels. The inner loop is loads and
// multiply-adds only. For weights whose columns all read other inputs (not grouped). `counts`:
// the G x V row counts. kFloats: the float panels (op.in_float), each loaded vector converted
// here, for weights that read each input only a few times (see multiply_panel_span); else the
// panels in double (op.in).
template <std::size_t V, int C, int G, bool kFloats, class... Counts>
HWY_INLINE void column_block(const PanelOperands& op, Index p, Index j, Counts&... counts) {
  static_assert(sizeof...(Counts) == G * V, "one row count per panel vector");
  const PanelTag d;
  constexpr std::size_t N = kPanelRows / V;
  using Input = std::conditional_t<kFloats, Value, double>;
  const Input* panels = nullptr;
  if constexpr (kFloats) panels = op.in_float; else panels = op.in;
  const Input* in = panels + p * op.stride;
  Offset begin[C], length[C];
  Offset common = ~Offset{0};
  for (int c = 0; c < C; ++c) {
    begin[c] = op.offsets[j + c];
    length[c] = op.offsets[j + c + 1] - begin[c];
    common = std::min(common, length[c]);
  }
  with_registers<C * G * V>(hn::Zero(d), [&](auto... sums) SDNN_KERNEL_LAMBDA {
    auto step = [&](auto c, Offset q) SDNN_KERNEL_LAMBDA {
      const Input* column = in + std::size_t{op.indices[q]} * kPanelRows;
      const auto weight = hn::Set(d, op.weights[q]);
      unrolled<G * V>([&](auto gv) SDNN_KERNEL_LAMBDA {
        constexpr std::size_t g = decltype(gv)::value / V, v = decltype(gv)::value % V;
        auto& sum = pick<sum_index<V, G>(decltype(c)::value, g, v)>(sums...);
        sum = hn::MulAdd(load_wide(column + g * op.stride + v * N), weight, sum);
      });
    };
    for (Offset t = 0; t < common; ++t)
      unrolled<C>([&](auto c) SDNN_KERNEL_LAMBDA { step(c, begin[c] + t); });
    unrolled<C>([&](auto c) SDNN_KERNEL_LAMBDA {
      for (Offset t = common; t < length[c]; ++t) step(c, begin[c] + t);
      unrolled<G * V>([&](auto gv) SDNN_KERNEL_LAMBDA {
        constexpr std::size_t g = decltype(gv)::value / V, v = decltype(gv)::value % V;
        auto& count = pick<decltype(gv)::value>(counts...);
        count = hn::Sub(count, store_activated<V>(op, panels, p, g, v, j + static_cast<Index>(c), op.indices + begin[c],
                                                  length[c], pick<sum_index<V, G>(decltype(c)::value, g, v)>(sums...)));
      });
    });
  });
}

// The C output neurons at positions [m, m + C) of group `group` (neurons that read the same
// inputs in the same order), G panels starting at panel p: each input's panel columns are loaded
// once for the C neurons (C x G x V chains, G x V loads and C weights per input), so that the
// kernel is bound by the multiply-adds, not by the loads. Every neuron's sum runs over its
// inputs in its own column's order, as in column_block: the same bits. `wide`: the group's inputs
// of the G panels already in double (widen_group), input t's panel g at (t x G + g) x kPanelRows;
// null: the float panels, each loaded vector converted here.
template <std::size_t V, int C, int G, class... Counts>
HWY_INLINE void group_block(const PanelOperands& op, Index p, Index group, Index m, const double* wide,
                            Counts&... counts) {
  static_assert(sizeof...(Counts) == G * V, "one row count per panel vector");
  const PanelTag d;
  constexpr std::size_t N = kPanelRows / V;
  const Value* in = op.in_float + p * op.stride;
  const Index leader = op.order[op.group_start[group]];
  const Index* pattern = op.indices + op.offsets[leader];
  const Offset length = op.offsets[leader + 1] - op.offsets[leader];
  const double* weights[C];  // each neuron's column of W
  for (int c = 0; c < C; ++c) weights[c] = op.weights + op.offsets[op.order[m + c]];
  with_registers<C * G * V>(hn::Zero(d), [&](auto... sums) SDNN_KERNEL_LAMBDA {
    auto accumulate = [&](Offset t, auto column, std::size_t panel_step) SDNN_KERNEL_LAMBDA {
      unrolled<G * V>([&](auto gv) SDNN_KERNEL_LAMBDA {
        constexpr std::size_t g = decltype(gv)::value / V, v = decltype(gv)::value % V;
        const auto x = load_wide(column + g * panel_step + v * N);
        unrolled<C>([&](auto c) SDNN_KERNEL_LAMBDA {
          auto& sum = pick<sum_index<V, G>(decltype(c)::value, g, v)>(sums...);
          sum = hn::MulAdd(x, hn::Set(d, weights[c][t]), sum);
        });
      });
    };
    if (wide) {
      for (Offset t = 0; t < length; ++t) accumulate(t, wide + std::size_t{t} * G * kPanelRows, kPanelRows);
    } else {
      for (Offset t = 0; t < length; ++t) accumulate(t, in + std::size_t{pattern[t]} * kPanelRows, op.stride);
    }
    // Each neuron's bias and output column read once for its G x V entries (the test of a
    // positive bias taken out of the loop).
    const std::size_t stride = op.stride, out_stride = op.out_stride;
    Value* out = op.out + p * out_stride;
    unrolled<C>([&](auto c) SDNN_KERNEL_LAMBDA {
      const Index j = op.order[m + c];
      const Value bias = op.bias[j];
      const auto wide_bias = hn::Set(d, static_cast<double>(bias));
      Value* target = out + std::size_t{j} * kPanelRows;
      auto activate = [&](auto reach_test) SDNN_KERNEL_LAMBDA {
        unrolled<G * V>([&](auto gv) SDNN_KERNEL_LAMBDA {
          constexpr std::size_t g = decltype(gv)::value / V, v = decltype(gv)::value % V;
          auto& count = pick<decltype(gv)::value>(counts...);
          count = hn::Sub(count, activate_entries<V>(pick<sum_index<V, G>(decltype(c)::value, g, v)>(sums...),
                                                     wide_bias, decltype(reach_test)::value, in + g * stride + v * N,
                                                     pattern, length, target + g * out_stride + v * N));
        });
      };
      if (bias > 0.0f)
        activate(std::true_type());
      else
        activate(std::false_type());
    });
  });
}

// The inputs of group `group` of G panels starting at panel p, in double, into `wide` (laid out
// as group_block reads them): converted once for all the group's neurons instead of once per
// block of C of them.
template <std::size_t V, int G>
HWY_INLINE void widen_group(const PanelOperands& op, Index p, Index group, double* wide) {
  const PanelTag d;
  constexpr std::size_t N = kPanelRows / V;
  const Value* in = op.in_float + p * op.stride;
  const Index leader = op.order[op.group_start[group]];
  const Index* pattern = op.indices + op.offsets[leader];
  const Offset length = op.offsets[leader + 1] - op.offsets[leader];
  for (Offset t = 0; t < length; ++t) {
    const Value* column = in + std::size_t{pattern[t]} * kPanelRows;
    double* to = wide + std::size_t{t} * G * kPanelRows;
    for (int g = 0; g < G; ++g)
      for (std::size_t v = 0; v < V; ++v) hn::StoreU(load_wide(column + g * op.stride + v * N), d, to + g * kPanelRows + v * N);
  }
}

// Positions [m, end) of a group: blocks of C neurons, the rest with fewer.
template <std::size_t V, int C, int G, class... Counts>
HWY_INLINE void group_members(const PanelOperands& op, Index p, Index group, Index m, Index end, const double* wide,
                              Counts&... counts) {
  for (; m + C <= end; m += C) group_block<V, C, G>(op, p, group, m, wide, counts...);
  if constexpr (C > 1) {
    if (m < end) group_members<V, C - 1, G>(op, p, group, m, end, wide, counts...);
  }
}

// The output neurons of the call (positions [begin, end) of order, neurons [first, last)) of G
// panels starting at panel p: blocks of C neurons, then one at a time; the kept entries of each
// row counted in vectors and added once at the end. Grouped weights run group by group, with
// blocks of C neurons of a group.
template <std::size_t V, int C, int G, bool kGrouped, bool kWiden, bool kFloats>
HWY_NOINLINE void panel_group(const PanelOperands& op, Index p) {
  const CountTag di;
  constexpr std::size_t N = kPanelRows / V;
  with_registers<G * V>(hn::Zero(di), [&](auto... counts) SDNN_KERNEL_LAMBDA {
    if constexpr (!kGrouped) {
      const Index last = std::min(op.end, op.last);
      Index j = std::max(op.begin, op.first);
      for (; j + C <= last; j += C) column_block<V, C, G, kFloats>(op, p, j, counts...);
      for (; j < last; ++j) column_block<V, 1, G, kFloats>(op, p, j, counts...);
    } else {
      // The group holding position begin, then every group up to position end; in each, the
      // members in [first, last) (a group's neurons ascend, so they are contiguous).
      Index group = static_cast<Index>(std::upper_bound(op.group_start, op.group_start + op.groups + 1, op.begin) -
                                       op.group_start) - 1;
      // The next G panels toward L2, a share of their cache lines per group (panels read where they
      // are, as a caller that does not copy them first gives them, would otherwise be read from
      // memory a line at a time by the loads of the groups' inputs).
      const Index first_group = group;
      const Index last_group = static_cast<Index>(std::lower_bound(op.group_start, op.group_start + op.groups + 1, op.end) -
                                                  op.group_start);
      const std::size_t ahead_panels = std::min<Index>(G, op.readable > p + G ? op.readable - p - G : 0);
      const char* ahead = reinterpret_cast<const char*>(op.in_float + (p + G) * op.stride);
      const std::size_t ahead_lines = ahead_panels * op.stride * sizeof(Value) / 64;
      std::size_t prefetched = 0;
      for (; group < op.groups && op.group_start[group] < op.end; ++group) {
        const std::size_t until = ahead_lines * (group + 1 - first_group) / std::max<Index>(1, last_group - first_group);
        for (; prefetched < until && prefetched < ahead_lines; ++prefetched) __builtin_prefetch(ahead + prefetched * 64, 0, 2);
        const Index* from = op.order + std::max(op.begin, op.group_start[group]);
        const Index* to = op.order + std::min(op.end, op.group_start[group + 1]);
        from = std::lower_bound(from, to, op.first);
        to = std::lower_bound(from, to, op.last);
        const double* wide = nullptr;  // more than one block of C neurons: their inputs in double once
        if (kWiden && to - from > C) {
          const Index leader = op.order[op.group_start[group]];
          double* buffer = group_input_buffer(std::size_t{op.offsets[leader + 1] - op.offsets[leader]} * G * kPanelRows);
          widen_group<V, G>(op, p, group, buffer);
          wide = buffer;
        }
        group_members<V, C, G>(op, p, group, static_cast<Index>(from - op.order), static_cast<Index>(to - op.order),
                                wide, counts...);
      }
    }
    unrolled<G * V>([&](auto gv) SDNN_KERNEL_LAMBDA {
      constexpr std::size_t g = decltype(gv)::value / V, v = decltype(gv)::value % V;
      alignas(64) std::int32_t kept[kPanelRows];
      hn::Store(pick<decltype(gv)::value>(counts...), di, kept);
      for (std::size_t r = 0; r < N; ++r) op.row_nonzeros[(p + g) * kPanelRows + v * N + r] += kept[r];
    });
  });
}

// Panels [p, panels), G at a time; the rest (fewer than G) as a group of G - 1 panels with more
// neurons per block, and so on, so that a short tail keeps as many chains as a full group.
// (Grouped, C doubles when G halves: a group's size is most often a power of two.)
template <std::size_t V, int C, int G, bool kGrouped, bool kWiden = false, bool kFloats = false>
void all_panels(const PanelOperands& op, Index p, Index panels) {
  for (; p + G <= panels; p += G) panel_group<V, C, G, kGrouped, kWiden, kFloats>(op, p);
  if constexpr (G > 1) {
    constexpr int kTailC = kGrouped ? (2 * (G - 1) <= G ? 2 * C : C) : C * G / (G - 1);
    if (p < panels) all_panels<V, kTailC, G - 1, kGrouped, kWiden, kFloats>(op, p, panels);
  }
}

// Register blocking per vector width: C neurons x G panels x V vectors of accumulators, 8 to 16
// of them (x86 has 16 vector registers below AVX-512, 32 with it); the grouped sizes were the
// fastest of those tried on an AVX-512 Xeon (docs/simd.md). AVX-512 converts each group's inputs
// to double once for all its neurons (there a float-to-double conversion takes two slots of the
// ports that do the multiply-adds); AVX2 was faster converting the float vectors it loads.
void multiply_wide_panels(const PanelOperands& op, Index panels) {
  static_assert(kPanelRows == 8, "register blocking assumes 8 rows per panel");
  const bool grouped = op.groups > 0, floats = !grouped && op.floats;  // floats: see column_block
  switch (hn::Lanes(PanelTag())) {
    case 8:  // AVX-512
      grouped  ? all_panels<1, 4, 4, true, true>(op, 0, panels)
      : floats ? all_panels<1, 4, 4, false, false, true>(op, 0, panels)
               : all_panels<1, 4, 4, false>(op, 0, panels);
      break;
    case 4:  // AVX2
      grouped  ? all_panels<2, 4, 1, true>(op, 0, panels)
      : floats ? all_panels<2, 2, 3, false, false, true>(op, 0, panels)
               : all_panels<2, 2, 3, false>(op, 0, panels);
      break;
    case 2:  // SSE4, NEON
      grouped  ? all_panels<4, 2, 1, true>(op, 0, panels)
      : floats ? all_panels<4, 1, 3, false, false, true>(op, 0, panels)
               : all_panels<4, 1, 3, false>(op, 0, panels);
      break;
    default:  // portable
      grouped  ? all_panels<8, 1, 1, true>(op, 0, panels)
      : floats ? all_panels<8, 1, 1, false, false, true>(op, 0, panels)
               : all_panels<8, 1, 1, false>(op, 0, panels);
      break;
  }
}

// to[i] = from[i] for i < count, a vector at a time.
void widen_floats(const Value* from, std::size_t count, double* to) {
  const hn::ScalableTag<double> d;
  const hn::Rebind<float, decltype(d)> df;
  const std::size_t lanes = hn::Lanes(d);
  std::size_t i = 0;
  for (; i + lanes <= count; i += lanes) hn::StoreU(hn::PromoteTo(d, hn::LoadU(df, from + i)), d, to + i);
  for (; i < count; ++i) to[i] = from[i];
}

// The target this code was compiled for (which HWY_DYNAMIC_DISPATCH chose).
std::int64_t compiled_target() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace sdnn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sdnn {

HWY_EXPORT(multiply_wide_panels);
HWY_EXPORT(widen_floats);
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
    if (size > static_cast<std::size_t>(-1) / sizeof(double)) throw std::bad_alloc();
    data_.reset(static_cast<double*>(allocate_working(size * sizeof(double))));
    capacity_ = size;
  }
  size_ = size;
}

double* group_input_buffer(std::size_t size) {
  thread_local DoubleBuffer buffer;
  buffer.resize(size);
  return buffer.data();
}

namespace {

void widen(const Value* from, std::size_t count, double* to) {
  ensure_simd_choice();
  HWY_DYNAMIC_DISPATCH(widen_floats)(from, count, to);
}

void widen_weights(const CscMatrix& weights, DoubleBuffer& wide) {
  wide.resize(weights.nnz());
  widen(weights.values.data(), weights.nnz(), wide.data());
}

// The output neurons at positions [begin, end) of wide.order that lie in [first, last), of panels
// [first_panel, first_panel + panels) of `in`, whose panels in double start at `wide_panels`
// (floats: not widened, the kernel converts what it loads; see multiply_panel_span);
// the span's output panel q at out + q x out_stride, its row r's count at row_nonzeros[r].
void multiply_panel_range(const DenseRows& in, const double* wide_panels, const double* wide_weights,
                          const ColumnGroups& groups, const CscMatrix& w, const Value* bias, Index first_panel,
                          Index panels, Index begin, Index end, Index first, Index last, Value* out,
                          std::size_t out_stride, std::uint32_t* row_nonzeros, bool floats = false) {
  ensure_simd_choice();
  const std::size_t stride = std::size_t{in.neurons} * kPanelRows;
  const PanelOperands op{groups.count() > 0 ? nullptr : wide_panels,
                         in.panel.data() + first_panel * stride,
                         stride,
                         w.offsets.data(),
                         w.indices.data(),
                         wide_weights,
                         bias,
                         out,
                         out_stride,
                         row_nonzeros,
                         groups.order.data(),
                         groups.start.data(),
                         groups.count(),
                         begin,
                         end,
                         first,
                         last,
                         in.panels() - first_panel,
                         floats};
  HWY_DYNAMIC_DISPATCH(multiply_wide_panels)(op, panels);
}

}  // namespace

// Columns j with the same inputs in the same order as an earlier column join its group (a hash
// of the column's length and first, second and last inputs finds the candidates).
void group_columns(const CscMatrix& w, ColumnGroups& groups) {
  const Index n = w.cols();
  Index slots = 1;
  while (slots < 2 * n) slots *= 2;
  std::vector<Index> slot_group(slots, ~Index{0}), group_of(n);
  std::vector<Index>& order = groups.order;
  order.clear();  // first the first column of each group
  auto same = [&](Index a, Index b) {
    return w.offsets[a + 1] - w.offsets[a] == w.offsets[b + 1] - w.offsets[b] &&
           std::equal(w.indices.begin() + static_cast<std::ptrdiff_t>(w.offsets[a]),
                      w.indices.begin() + static_cast<std::ptrdiff_t>(w.offsets[a + 1]),
                      w.indices.begin() + static_cast<std::ptrdiff_t>(w.offsets[b]));
  };
  for (Index j = 0; j < n; ++j) {
    const Offset begin = w.offsets[j], length = w.offsets[j + 1] - begin;
    std::uint64_t hash = length * 0x9E3779B97F4A7C15ull;
    if (length > 0)
      hash ^= w.indices[begin] * 0xBF58476D1CE4E5B9ull ^ w.indices[begin + length / 2] * 0x94D049BB133111EBull ^
              w.indices[begin + length - 1] * 0xD6E8FEB86659FD93ull;
    Index slot = static_cast<Index>(hash ^ (hash >> 32)) & (slots - 1);
    while (slot_group[slot] != ~Index{0} && !same(order[slot_group[slot]], j)) slot = (slot + 1) & (slots - 1);
    if (slot_group[slot] == ~Index{0}) {
      slot_group[slot] = static_cast<Index>(order.size());
      order.push_back(j);
    }
    group_of[j] = slot_group[slot];
  }
  const Index count = static_cast<Index>(order.size());
  order.resize(n);
  if (2 * count > n) {  // hardly any sharing: column by column
    groups.start.clear();
    for (Index j = 0; j < n; ++j) order[j] = j;
    return;
  }
  groups.start.assign(count + 1, 0);
  for (Index j = 0; j < n; ++j) ++groups.start[group_of[j] + 1];
  for (Index g = 0; g < count; ++g) groups.start[g + 1] += groups.start[g];
  std::vector<Index> next(groups.start.begin(), groups.start.end() - 1);
  for (Index j = 0; j < n; ++j) order[next[group_of[j]]++] = j;
}

void widen_operands(const DenseRows& in, const CscMatrix& weights, WideOperands& wide, const ColumnGroups* groups) {
  widen_weights(weights, wide.weights);
  if (groups) {
    wide.groups.order.assign(groups->order.begin(), groups->order.end());
    wide.groups.start.assign(groups->start.begin(), groups->start.end());
  } else {
    group_columns(weights, wide.groups);
  }
  widen_panels(in, wide);
}

void widen_panels(const DenseRows& in, WideOperands& wide) {
  wide.panels.resize(wide.groups.count() > 0 ? 0 : in.panel.size());  // grouped: the kernel reads the floats
  widen(in.panel.data(), wide.panels.size(), wide.panels.data());
}

void multiply_panel_columns(const DenseRows& in, const WideOperands& wide, const CscMatrix& weights,
                            const Value* bias, Index first, Index last, DenseRows& out, std::uint32_t* row_nonzeros) {
  multiply_panel_range(in, wide.panels.data(), wide.weights.data(), wide.groups, weights, bias, 0, in.panels(), 0,
                       in.neurons, first, last, out.panel.data(), std::size_t{in.neurons} * kPanelRows, row_nonzeros);
}

void multiply_panel_share(const DenseRows& in, const WideOperands& wide, const CscMatrix& weights,
                          const Value* bias, Index begin, Index end, DenseRows& out, std::uint32_t* row_nonzeros) {
  multiply_panel_range(in, wide.panels.data(), wide.weights.data(), wide.groups, weights, bias, 0, in.panels(), begin,
                       end, 0, in.neurons, out.panel.data(), std::size_t{in.neurons} * kPanelRows, row_nonzeros);
}

void multiply_panel_span(const DenseRows& in, Index first_panel, Index panels, WideOperands& wide,
                         const CscMatrix& weights, const Value* bias, Value* out, std::size_t out_stride,
                         std::uint32_t* row_nonzeros) {
  const std::size_t stride = std::size_t{in.neurons} * kPanelRows;
  // Grouped: the kernel reads the floats. Not grouped: the panels in double first, unless the
  // weights read each input fewer than kFloatReads times on average (a column block of a wide
  // grid: the conversion then costs more than the multiply-adds it serves), when the kernel
  // converts each vector it loads.
  const bool floats = static_cast<double>(weights.nnz()) < kFloatReads * static_cast<double>(in.neurons);
  if (wide.groups.count() == 0 && !floats) {
    wide.panels.resize(std::size_t{panels} * stride);
    widen(in.panel.data() + std::size_t{first_panel} * stride, wide.panels.size(), wide.panels.data());
  }
  multiply_panel_range(in, floats ? nullptr : wide.panels.data(), wide.weights.data(), wide.groups, weights, bias,
                       first_panel, panels, 0, weights.cols(), 0, weights.cols(), out, out_stride, row_nonzeros, floats);
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
    Value* base = out.row_start(r);
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

// Each dead row before the kept count takes the last live row: only as many rows move as died
// there (moving every row after the first dead one forward, as keep_alive_rows does, cost the
// official problem 9% of its time: rows die in most layers, and each move touches a line of
// every panel column). The order of the rows changes; their values do not depend on it.
Offset drop_dead_rows(DenseRows& rows, std::uint32_t* row_nonzeros) {
  Offset nonzeros = 0;
  Index kept = 0;
  for (Index r = 0; r < rows.rows(); ++r) {
    nonzeros += row_nonzeros[r];
    kept += row_nonzeros[r] > 0;
  }
  // A dead row's entries are all zero already; a row moved away leaves a copy, zeroed when it
  // lies in the last kept panel (the panels after it are cut off).
  const Index padded = (kept + kPanelRows - 1) / kPanelRows * kPanelRows;
  Index last = rows.rows();
  for (Index r = 0; r < kept; ++r) {
    if (row_nonzeros[r] != 0) continue;
    do --last; while (row_nonzeros[last] == 0);
    copy_panel_row(rows.row_start(last), rows.row_start(r), rows.neurons);
    rows.ids[r] = rows.ids[last];
    row_nonzeros[r] = row_nonzeros[last];
    row_nonzeros[last] = 0;
    if (last < padded) clear_panel_row(rows.row_start(last), rows.neurons);
  }
  rows.ids.resize(kept);
  rows.panel.resize(static_cast<std::size_t>(rows.panels()) * rows.neurons * kPanelRows);
  return nonzeros;
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
  for (Index r = 0; r < computed.rows(); ++r)
    if (row_nonzeros[r] > 0) copy_panel_row(computed.row_start(r), out.row_start(to++), n);
  return nonzeros;
}

void prepare_panel_output(const DenseRows& in, DenseRows& out) {
  out.neurons = in.neurons;
  out.ids = in.ids;
  out.panel.resize(static_cast<std::size_t>(in.panels()) * in.neurons * kPanelRows);
}

// Computes into `out` and drops its dead rows in place (a third panel buffer, written and then
// copied from, would be one more block of fresh pages per thread). The weights in double once
// per layer. Grouped layers: the kernel reads the float panels. Not grouped: the input panels in
// double a few at a time (12: whole groups of 4 and of 3 panels), each converted once and used
// at once, so that the doubles stay in cache and a thread holds 12 panels of them, not its whole
// block.
void DenseMultiplier::multiply(const DenseRows& in, const CscMatrix& weights, const Value* bias, DenseRows& out,
                               const ColumnGroups* groups) {
  constexpr Index kWidePanels = 12;
  if (&in == &out) throw std::invalid_argument("DenseMultiplier::multiply: the output may not be the input");
  ensure_simd_choice();  // may throw: not inside a parallel region
  prepare_panel_output(in, out);
  row_nonzeros_.assign(static_cast<std::size_t>(in.panels()) * kPanelRows, 0);
  widen_weights(weights, wide_.weights);
  if (!groups) {
    group_columns(weights, wide_.groups);
    groups = &wide_.groups;
  }
  const std::size_t stride = std::size_t{in.neurons} * kPanelRows;
  if (groups->count() > 0) {  // grouped layers read the float panels
    multiply_panel_range(in, nullptr, wide_.weights.data(), *groups, weights, bias, 0, in.panels(), 0, in.neurons, 0,
                         in.neurons, out.panel.data(), stride, row_nonzeros_.data());
  } else {
    for (Index p = 0; p < in.panels(); p += kWidePanels) {
      const Index count = std::min(kWidePanels, in.panels() - p);
      wide_.panels.resize(count * stride);
      widen(in.panel.data() + p * stride, count * stride, wide_.panels.data());
      multiply_panel_range(in, wide_.panels.data(), wide_.weights.data(), *groups, weights, bias, p, count, 0,
                           in.neurons, 0, in.neurons, out.panel.data() + p * stride, stride,
                           row_nonzeros_.data() + std::size_t{p} * kPanelRows);
    }
  }
  nonzeros_ = drop_dead_rows(out, row_nonzeros_.data());
}

}  // namespace sdnn
#endif  // HWY_ONCE
