#include "numeric/emulator.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "numeric/float_functions.h"
#include "numeric/lookup_tables.h"

namespace fpgaserve::numeric {

using model::ActivationKind;
using model::LayerKind;

namespace emulator_detail {

// FixedFromWide(v, from_frac, to) for an int64 v, with the target's constants resolved once by
// Build. Shifts of up to 62 bits (either way, when the shifted value fits) are computed on int64
// and the exactly rounded value is then saturated or wrapped as FixedFromWide does; larger
// shifts go through FixedFromWide itself, which stays the definition.
struct FixedRequant {
  FixedFormat to;
  int from_frac = 0;
  int shift = 0;  // from_frac - to.fraction_bits()
  std::int64_t lo = 0, hi = 0;
  int wrap_width = 64;  // the width WRAP keeps (FixedFromWide clamps it to 1..64)

  static FixedRequant Make(int from_frac, const FixedFormat& to) {
    FixedRequant r;
    r.to = to;
    r.from_frac = from_frac;
    r.shift = from_frac - to.fraction_bits();
    r.lo = to.min_raw();
    r.hi = to.max_raw();
    r.wrap_width = std::clamp(to.width, 1, 64);
    return r;
  }

  FixedValue operator()(std::int64_t v) const { return Shifted(v, shift, from_frac); }

  // The overflow mode applied to an exactly rounded q outside [lo, hi]: SAT clamps toward q's
  // side, WRAP keeps the low bits of q (two's complement for signed formats).
  FixedValue OutOfRange(std::int64_t q) const {
    if (to.overflow == Overflow::kSat) return {q < 0 ? lo : hi, true};
    auto u = static_cast<std::uint64_t>(q);
    if (wrap_width < 64) {
      u &= (std::uint64_t{1} << wrap_width) - 1;
      if (to.is_signed && ((u >> (wrap_width - 1)) & 1) != 0) u |= ~std::uint64_t{0} << wrap_width;
    }
    return {static_cast<std::int64_t>(u), true};
  }

  // operator() for a right shift of 1..62 bits (checked by the caller at Build) and quantization Q.
  template <Quantization Q>
  FixedValue Right(std::int64_t v) const {
    std::int64_t q = v >> shift;  // floor
    if constexpr (Q != Quantization::kTrn) {
      const std::uint64_t rem = static_cast<std::uint64_t>(v) & ((std::uint64_t{1} << shift) - 1);
      const std::uint64_t half = std::uint64_t{1} << (shift - 1);
      if constexpr (Q == Quantization::kRnd) {
        q += rem >= half ? 1 : 0;
      } else {
        q += static_cast<int>(rem > half) | (static_cast<int>(rem == half) & static_cast<int>(q & 1));
      }
    }
    if (q >= lo && q <= hi) [[likely]] return {q, false};
    return OutOfRange(q);
  }

  // The same for v with `ff` fraction bits (sh = ff - to.fraction_bits()).
  FixedValue Shifted(std::int64_t v, int sh, int ff) const {
    std::int64_t q;
    if (sh > 0) {
      if (sh > 62) return FixedFromWide(v, ff, to);
      q = v >> sh;  // floor
      if (to.quantization != Quantization::kTrn) {
        const std::uint64_t rem = static_cast<std::uint64_t>(v) & ((std::uint64_t{1} << sh) - 1);
        const std::uint64_t half = std::uint64_t{1} << (sh - 1);
        const bool tie_up = to.quantization == Quantization::kRnd || (q & 1) != 0;
        q += static_cast<int>(rem > half) | (static_cast<int>(rem == half) & static_cast<int>(tie_up));
      }
    } else if (sh == 0) {
      q = v;
    } else {
      const int k = -sh;
      if (k > 62 || v > (hi >> k) || v < (lo >> k)) return FixedFromWide(v, ff, to);
      q = v * (std::int64_t{1} << k);  // |q| <= 2^63: within [lo >> k << k, hi]
    }
    if (q >= lo && q <= hi) return {q, false};
    return OutOfRange(q);
  }
};

// The tight loop that runs a layer when fast paths are on; kGeneral runs the general datapath.
enum class Kernel {
  kGeneral,
  kCopy,               // Linear with identical input and result formats
  kFixedDense,         // exact int64 multiply-accumulate (Dense)
  kFixedScale,         // the same, one term per feature (Scale)
  kFixedRequant,       // Linear: one conversion per element
  kFixedReLU,          // ReLU with identical formats
  kFixedReLURequant,   // ReLU then a conversion
  kFixedLeakyReLU,
  kFixedTable,         // sigmoid / tanh lookup
  kFixedSoftmax,       // exp table, sum, reciprocal table
  kFixedArgmax,
  kFloat32Dense,       // host float32 arithmetic
  kFloat32Scale,
  kFloatReLU,          // ReLU with identical float formats
};

}  // namespace emulator_detail

using emulator_detail::FixedRequant;
using emulator_detail::Kernel;

// Everything a layer needs at run time, prepared once by Build.
struct QuantizedModel::LayerPlan {
  model::ActivationKind activation = model::ActivationKind::kLinear;
  NumberFormat in;  // format of the incoming tensor
  LayerPrecision p;
  // Dense/Scale: weights [out][in] (Scale: one per feature) and biases, in the accum family:
  // fixed layers keep them in the weight/bias formats, float layers convert them to accum.
  std::vector<RawValue> w, b;
  std::int64_t n_in = 0, n_out = 0;
  bool is_scale = false;
  // Fixed fast path: products and sums are exact in a 64-bit integer (accum wide enough).
  bool exact_int64 = false;
  int bias_shift = 0;  // accum.frac - bias.frac
  FixedRequant accum_to_result;  // accum -> result (exact_int64)
  // Float fast path: every format of the layer (and its input) is float32.
  bool native_float32 = false;
  RawValue alpha = 0;  // LeakyReLU slope in the weight format
  FunctionTable table;  // sigmoid / tanh (fixed)
  std::vector<std::int64_t> exp_table, recip_table;  // softmax (fixed)

  // Where the layer reads and writes (buffer slots, resolved from tensor names by Build).
  std::string name;
  bool is_activation = false;
  std::size_t in_slot = 0, out_slot = 0;
  std::size_t in_features = 0, out_features = 0;
  // The fast kernel and its constants (Kernel::kGeneral when fast paths are off).
  Kernel kernel = Kernel::kGeneral;
  // kFixedDense followed by an identity ReLU that is the only reader of its output: the fast
  // kernel applies the ReLU too and writes the ReLU's slot (`fused` marks the ReLU).
  bool fused_relu = false;
  bool fused = false;
  std::vector<std::int64_t> b_acc;  // kFixedDense/kFixedScale: biases in accumulator units
  FixedRequant requant;             // input -> result (activations)
  FixedRequant requant_neg;         // LeakyReLU: x·alpha -> result
  TableIndexer indexer;             // sigmoid/tanh table or softmax exp table
  int log_size = 0;                 // softmax: log2(table size)
  RawValue one = 0, zero = 0;       // argmax outputs; kFloatReLU: zero
  std::vector<float> w32, b32;      // kFloat32Dense/kFloat32Scale
};

// How values enter and leave the buffers of a run.
struct QuantizedModel::Program {
  bool fast = false;  // allow_fast_paths
  // One slot per graph input, then one per layer output: features per row and offset in a tile.
  std::vector<std::size_t> slot_features;
  std::vector<std::size_t> slot_offset;
  std::size_t tile_rows = 1;
  std::size_t tile_words = 0;
  // Input conversion from doubles.
  enum class InputPath { kGeneral, kFixed, kFloat32 };
  InputPath input_path = InputPath::kGeneral;
  FixedFromDoubleConverter input_fixed;
  struct Output {
    bool found = false;
    std::size_t slot = 0;
    NumberFormat format;
    // ToDouble fast path for fixed formats: raw · 2^-frac when |raw| < 2^53.
    bool fixed_scale = false;
    double scale = 1;
    bool float32 = false;
  };
  std::vector<Output> outputs;
};

namespace {

using Plan = QuantizedModel::LayerPlan;
using Program = QuantizedModel::Program;

struct Counter {
  std::int64_t n = 0;
  void Add(bool overflowed) { n += overflowed ? 1 : 0; }
};

float AsFloat(RawValue v) {
  auto u = static_cast<std::uint32_t>(v);
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

RawValue FromFloat(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return static_cast<RawValue>(u);
}

// Host float32 results in the format's encoding: NaNs become the canonical NaN, as the
// correctly rounded operations give it.
RawValue FromHostFloat32(float f) {
  if (std::isnan(f)) return static_cast<RawValue>(CanonicalNaN(kFloat32));
  return FromFloat(f);
}

bool IsFloat32(const NumberFormat& f) { return f.is_float() && f.floating() == kFloat32; }

// ---------------------------------------------------------------------------------------------
// The general datapath: the definition of every layer, bit for bit.

// Converts an incoming value into the layer's family: unchanged when the families match,
// otherwise into the layer's result format (docs/numerics.md).
RawValue IntoLayerFamily(RawValue x, const Plan& plan, Counter& c) {
  if (plan.in.is_fixed() == plan.p.result.is_fixed()) return x;
  Quantized q = Convert(x, plan.in, plan.p.result);
  c.Add(q.overflowed);
  return q.raw;
}

const NumberFormat& FamilyInput(const Plan& plan) {
  return plan.in.is_fixed() == plan.p.result.is_fixed() ? plan.in : plan.p.result;
}

// y = b + sum w*x for one output (Dense) or y = b + w*x (Scale, one term).
// `fast`: the call may take the int64 / host float32 paths (the plan allows them and the inputs are
// in their formats).
RawValue FixedMac(const Plan& plan, bool fast, const RawValue* x, std::int64_t n, const RawValue* w, RawValue b,
                  const FixedFormat& xf, Counter& c) {
  const FixedFormat& wf = plan.p.weight.fixed();
  const FixedFormat& bf = plan.p.bias.fixed();
  const FixedFormat& af = plan.p.accum.fixed();
  const FixedFormat& rf = plan.p.result.fixed();
  if (fast && plan.exact_int64) {
    std::int64_t acc = b * (std::int64_t{1} << plan.bias_shift);
    for (std::int64_t i = 0; i < n; ++i) acc += x[i] * w[i];
    FixedValue r = plan.accum_to_result(acc);
    c.Add(r.overflowed);
    return r.raw;
  }
  FixedValue acc = FixedConvert(b, bf, af);
  c.Add(acc.overflowed);
  for (std::int64_t i = 0; i < n; ++i) {
    FixedValue prod = FixedFromWide(FixedMulExact(x[i], w[i]), xf.fraction_bits() + wf.fraction_bits(), af);
    c.Add(prod.overflowed);
    acc = FixedAdd(acc.raw, af, prod.raw, af, af);
    c.Add(acc.overflowed);
  }
  FixedValue r = FixedConvert(acc.raw, af, rf);
  c.Add(r.overflowed);
  return r.raw;
}

RawValue FloatMac(const Plan& plan, bool fast, const RawValue* x, std::int64_t n, const RawValue* w, RawValue b,
                  const NumberFormat& xf, Counter& c) {
  const FloatFormat& af = plan.p.accum.floating();
  if (fast && plan.native_float32) {
    float acc = AsFloat(b);
    for (std::int64_t i = 0; i < n; ++i) {
      float prod = AsFloat(x[i]) * AsFloat(w[i]);
      acc = acc + prod;
    }
    return FromHostFloat32(acc);
  }
  FloatBits acc = static_cast<FloatBits>(b);
  for (std::int64_t i = 0; i < n; ++i) {
    Quantized xa = Convert(x[i], xf, plan.p.accum);
    FloatBits prod = FloatMul(static_cast<FloatBits>(xa.raw), static_cast<FloatBits>(w[i]), af);
    acc = FloatAdd(acc, prod, af);
  }
  Quantized r = Convert(static_cast<RawValue>(acc), plan.p.accum, plan.p.result);
  c.Add(r.overflowed);
  return r.raw;
}

// `rows` rows of `in_features` values -> rows of plan.n_out values.
void RunAffine(const Plan& plan, bool fast, const RawValue* in, std::size_t rows, std::size_t in_features, RawValue* out,
               Counter& c) {
  const bool fixed = plan.p.result.is_fixed();
  const NumberFormat& xf = FamilyInput(plan);
  const auto out_features = static_cast<std::size_t>(plan.n_out);
  const bool same_family = plan.in.is_fixed() == plan.p.result.is_fixed();
  std::vector<RawValue> converted(same_family ? 0 : in_features);
  for (std::size_t r = 0; r < rows; ++r) {
    const RawValue* x = &in[r * in_features];
    if (!same_family) {
      for (std::size_t i = 0; i < in_features; ++i) converted[i] = IntoLayerFamily(x[i], plan, c);
      x = converted.data();
    }
    for (std::int64_t o = 0; o < plan.n_out; ++o) {
      const RawValue* xs = plan.is_scale ? &x[o] : x;
      const std::int64_t n = plan.is_scale ? 1 : plan.n_in;
      const RawValue* ws = plan.is_scale ? &plan.w[o] : &plan.w[o * plan.n_in];
      out[r * out_features + o] = fixed ? FixedMac(plan, fast, xs, n, ws, plan.b[o], xf.fixed(), c)
                                        : FloatMac(plan, fast, xs, n, ws, plan.b[o], xf, c);
    }
  }
}

void FixedSoftmax(const Plan& plan, const RawValue* x, std::size_t n, const FixedFormat& xf,
                  RawValue* y, Counter& c) {
  const FixedFormat& rf = plan.p.result.fixed();
  const int size = plan.p.table_size;
  RawValue m = *std::max_element(x, x + n);
  Wide sum = 0;
  thread_local std::vector<std::int64_t> e;
  e.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    e[i] = plan.exp_table[SoftmaxExpIndex(static_cast<Wide>(x[i]) - m, xf.fraction_bits(), size)];
    sum += e[i];
  }
  // sum = 2^b · (1.f) in units of 2^-17: b = index of the top bit; the table reads the next
  // log2(size) bits of f.
  int top = 0;
  while ((sum >> (top + 1)) != 0) ++top;
  int log_size = 0;
  while ((1 << log_size) < size) ++log_size;
  const Wide mant = sum - (static_cast<Wide>(1) << top);
  const auto j = static_cast<std::size_t>(top >= log_size ? mant >> (top - log_size) : mant << (log_size - top));
  const std::int64_t recip = plan.recip_table[j];
  // p = e · recip · 2^(17 - top): e and recip have 17 fraction bits each.
  for (std::size_t i = 0; i < n; ++i) {
    FixedValue p = FixedFromWide(static_cast<Wide>(e[i]) * recip, 2 * kSoftmaxFractionBits - (kSoftmaxFractionBits - top), rf);
    c.Add(p.overflowed);
    y[i] = p.raw;
  }
}

void FloatSoftmax(const FloatFormat& f, const RawValue* x, std::size_t n, RawValue* y) {
  auto bits = [&](std::size_t i) { return static_cast<FloatBits>(x[i]); };
  FloatBits m = bits(0);
  for (std::size_t i = 1; i < n; ++i) {
    if (IsNaN(bits(i), f) || FloatCompare(bits(i), m, f) == 1) m = bits(i);
  }
  std::vector<FloatBits> e(n);
  FloatBits sum = FloatFromDouble(0.0, f);
  for (std::size_t i = 0; i < n; ++i) {
    e[i] = FloatExp(FloatSub(bits(i), m, f), f);
    sum = FloatAdd(sum, e[i], f);
  }
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<RawValue>(FloatDiv(e[i], sum, f));
}

// Largest value first (ties: the lowest index), as hardware comparators scan.
std::size_t ArgmaxIndex(const RawValue* x, std::size_t n, const NumberFormat& f) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i) {
    bool greater = f.is_fixed() ? x[i] > x[best]
                                : FloatCompare(static_cast<FloatBits>(x[i]), static_cast<FloatBits>(x[best]), f.floating()) == 1;
    if (greater) best = i;
  }
  return best;
}

// `rows` rows of `features` values -> the same shape.
void RunActivation(const Plan& plan, const RawValue* in, std::size_t rows, std::size_t features, RawValue* out,
                   Counter& c) {
  const auto kind = plan.activation;
  const NumberFormat& rfmt = plan.p.result;
  std::vector<RawValue> x(features);
  const NumberFormat& xf = FamilyInput(plan);
  const bool identity = xf == rfmt;  // Linear/ReLU need no conversion
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < features; ++i) x[i] = IntoLayerFamily(in[r * features + i], plan, c);
    RawValue* y = &out[r * features];
    if (kind == ActivationKind::kSoftmax) {
      if (plan.p.result.is_fixed() && plan.exp_table.empty()) {  // argmax mode
        const RawValue one = FromDouble(1.0, rfmt).raw;
        const RawValue zero = FromDouble(0.0, rfmt).raw;
        std::size_t k = ArgmaxIndex(x.data(), x.size(), xf);
        for (std::size_t i = 0; i < x.size(); ++i) y[i] = i == k ? one : zero;
      } else if (plan.p.result.is_fixed()) {
        FixedSoftmax(plan, x.data(), x.size(), xf.fixed(), y, c);
      } else if (plan.exp_table.empty() && plan.recip_table.size() == 1) {  // float argmax mode
        std::size_t k = ArgmaxIndex(x.data(), x.size(), xf);
        for (std::size_t i = 0; i < x.size(); ++i) y[i] = FromDouble(i == k ? 1.0 : 0.0, rfmt).raw;
      } else {
        std::vector<RawValue> xr(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) {
          Quantized q = Convert(x[i], xf, rfmt);
          c.Add(q.overflowed);
          xr[i] = q.raw;
        }
        FloatSoftmax(rfmt.floating(), xr.data(), xr.size(), y);
      }
      continue;
    }
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (rfmt.is_fixed()) {
        const FixedFormat& inf = xf.fixed();
        const FixedFormat& rf = rfmt.fixed();
        RawValue v = x[i];
        FixedValue q{0, false};
        switch (kind) {
          case ActivationKind::kLinear: q = identity ? FixedValue{v, false} : FixedConvert(v, inf, rf); break;
          case ActivationKind::kReLU:
            q = identity ? FixedValue{v < 0 ? 0 : v, false} : FixedConvert(v < 0 ? 0 : v, inf, rf);
            break;
          case ActivationKind::kLeakyReLU:
            q = v >= 0 ? FixedConvert(v, inf, rf)
                       : FixedFromWide(FixedMulExact(v, plan.alpha),
                                       inf.fraction_bits() + plan.p.weight.fixed().fraction_bits(), rf);
            break;
          case ActivationKind::kSigmoid:
          case ActivationKind::kTanh:
            q.raw = plan.table.entries[TableIndex(v, inf, plan.table.size, plan.table.range)];
            break;
          case ActivationKind::kSoftmax: break;
        }
        c.Add(q.overflowed);
        y[i] = q.raw;
      } else {
        const FloatFormat& f = rfmt.floating();
        Quantized q = identity ? Quantized{x[i], false} : Convert(x[i], xf, rfmt);
        c.Add(q.overflowed);
        auto v = static_cast<FloatBits>(q.raw);
        switch (kind) {
          case ActivationKind::kLinear: break;
          case ActivationKind::kReLU:
            if (!IsNaN(v, f) && SignBit(v, f)) v = FloatFromDouble(0.0, f);
            break;
          case ActivationKind::kLeakyReLU:
            if (!IsNaN(v, f) && SignBit(v, f)) {
              Quantized a = Convert(plan.alpha, plan.p.weight, rfmt);
              v = FloatMul(v, static_cast<FloatBits>(a.raw), f);
            }
            break;
          case ActivationKind::kSigmoid: v = FloatSigmoid(v, f); break;
          case ActivationKind::kTanh: v = FloatTanh(v, f); break;
          case ActivationKind::kSoftmax: break;
        }
        y[i] = static_cast<RawValue>(v);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Fast kernels: the same bits as the general datapath for inputs in the layer's input format
// (every layer result is; RunRaw checks graph inputs first). FastPathsEqualTheGeneralDatapath
// compares them with the general datapath.

// Four outputs at a time: each input is loaded once for four independent accumulators. The sums
// are exact, so their order does not matter.
// kRight<Q>: the result conversion is a right shift of 1..62 bits rounded by Q; kAnyShift: any.
enum class RequantKind { kRightTrn, kRightRnd, kRightRndConv, kAnyShift };

template <RequantKind K>
FixedValue Requantize(const FixedRequant& rq, std::int64_t v) {
  if constexpr (K == RequantKind::kRightTrn) return rq.Right<Quantization::kTrn>(v);
  if constexpr (K == RequantKind::kRightRnd) return rq.Right<Quantization::kRnd>(v);
  if constexpr (K == RequantKind::kRightRndConv) return rq.Right<Quantization::kRndConv>(v);
  return rq(v);
}

RequantKind RequantKindOf(const FixedRequant& rq) {
  if (rq.shift < 1 || rq.shift > 62) return RequantKind::kAnyShift;
  switch (rq.to.quantization) {
    case Quantization::kTrn: return RequantKind::kRightTrn;
    case Quantization::kRnd: return RequantKind::kRightRnd;
    case Quantization::kRndConv: return RequantKind::kRightRndConv;
  }
  return RequantKind::kAnyShift;
}

template <RequantKind K, bool kReLU>
void FixedDenseKernel(const Plan& p, const RawValue* in, std::size_t rows, RawValue* out, Counter& c) {
  const std::int64_t n_in = p.n_in, n_out = p.n_out;
  const std::int64_t* w = p.w.data();
  const std::int64_t* b = p.b_acc.data();
  const FixedRequant& rq = p.accum_to_result;
  std::int64_t overflows = 0;
  auto emit = [&](RawValue* y, std::int64_t acc) {
    const FixedValue v = Requantize<K>(rq, acc);
    overflows += v.overflowed;
    *y = kReLU ? v.raw & ~(v.raw >> 63) : v.raw;  // branch-free max(v, 0)
  };
  for (std::size_t r = 0; r < rows; ++r) {
    const RawValue* x = in + r * static_cast<std::size_t>(n_in);
    RawValue* y = out + r * static_cast<std::size_t>(n_out);
    std::int64_t o = 0;
    for (; o + 4 <= n_out; o += 4) {
      const std::int64_t* w0 = w + o * n_in;
      const std::int64_t* w1 = w0 + n_in;
      const std::int64_t* w2 = w1 + n_in;
      const std::int64_t* w3 = w2 + n_in;
      std::int64_t a0 = b[o], a1 = b[o + 1], a2 = b[o + 2], a3 = b[o + 3];
      for (std::int64_t i = 0; i < n_in; ++i) {
        const std::int64_t xi = x[i];
        a0 += xi * w0[i];
        a1 += xi * w1[i];
        a2 += xi * w2[i];
        a3 += xi * w3[i];
      }
      emit(y + o, a0);
      emit(y + o + 1, a1);
      emit(y + o + 2, a2);
      emit(y + o + 3, a3);
    }
    for (; o + 2 <= n_out; o += 2) {
      const std::int64_t* w0 = w + o * n_in;
      const std::int64_t* w1 = w0 + n_in;
      std::int64_t a0 = b[o], a1 = b[o + 1], a2 = 0, a3 = 0;
      std::int64_t i = 0;
      for (; i + 2 <= n_in; i += 2) {
        a0 += x[i] * w0[i];
        a1 += x[i] * w1[i];
        a2 += x[i + 1] * w0[i + 1];
        a3 += x[i + 1] * w1[i + 1];
      }
      for (; i < n_in; ++i) {
        a0 += x[i] * w0[i];
        a1 += x[i] * w1[i];
      }
      emit(y + o, a0 + a2);
      emit(y + o + 1, a1 + a3);
    }
    for (; o < n_out; ++o) {
      const std::int64_t* w0 = w + o * n_in;
      std::int64_t a0 = b[o];
      for (std::int64_t i = 0; i < n_in; ++i) a0 += x[i] * w0[i];
      emit(y + o, a0);
    }
  }
  c.n += overflows;
}

void FixedScaleKernel(const Plan& p, const RawValue* in, std::size_t rows, RawValue* out, Counter& c) {
  const std::size_t in_features = p.in_features;
  const std::int64_t n_out = p.n_out;
  const FixedRequant& rq = p.accum_to_result;
  std::int64_t overflows = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const RawValue* x = in + r * in_features;
    RawValue* y = out + r * static_cast<std::size_t>(n_out);
    for (std::int64_t o = 0; o < n_out; ++o) {
      const FixedValue v = rq(p.b_acc[o] + x[o] * p.w[o]);
      overflows += v.overflowed;
      y[o] = v.raw;
    }
  }
  c.n += overflows;
}

void Float32DenseKernel(const Plan& p, const RawValue* in, std::size_t rows, RawValue* out) {
  const std::size_t n_in = static_cast<std::size_t>(p.n_in), n_out = static_cast<std::size_t>(p.n_out);
  thread_local std::vector<float> xs;
  xs.resize(n_in);
  for (std::size_t r = 0; r < rows; ++r) {
    const RawValue* x = in + r * n_in;
    for (std::size_t i = 0; i < n_in; ++i) xs[i] = AsFloat(x[i]);
    RawValue* y = out + r * n_out;
    for (std::size_t o = 0; o < n_out; ++o) {
      const float* wo = p.w32.data() + o * n_in;
      float acc = p.b32[o];
      for (std::size_t i = 0; i < n_in; ++i) {
        const float prod = xs[i] * wo[i];
        acc = acc + prod;
      }
      y[o] = FromHostFloat32(acc);
    }
  }
}

void Float32ScaleKernel(const Plan& p, const RawValue* in, std::size_t rows, RawValue* out) {
  const std::size_t in_features = p.in_features, n_out = static_cast<std::size_t>(p.n_out);
  for (std::size_t r = 0; r < rows; ++r) {
    const RawValue* x = in + r * in_features;
    RawValue* y = out + r * n_out;
    for (std::size_t o = 0; o < n_out; ++o) {
      const float prod = AsFloat(x[o]) * p.w32[o];
      y[o] = FromHostFloat32(p.b32[o] + prod);
    }
  }
}

void FixedSoftmaxKernel(const Plan& p, const RawValue* in, std::size_t rows, RawValue* out, Counter& c) {
  const std::size_t n = p.in_features;
  if (n == 0) return;
  const std::int64_t* exp_table = p.exp_table.data();
  const std::int64_t* recip_table = p.recip_table.data();
  const int rf_frac = p.p.result.fixed().fraction_bits();
  thread_local std::vector<std::int64_t> e;
  e.resize(n);
  std::int64_t overflows = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const RawValue* x = in + r * n;
    RawValue* y = out + r * n;
    RawValue m = x[0];
    for (std::size_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      e[i] = exp_table[p.indexer.Index(x[i] - m)];  // |x - m| < 2^62: the input is <= 62 bits
      sum += e[i];
    }
    const int top = sum > 0 ? 63 - std::countl_zero(static_cast<std::uint64_t>(sum)) : 0;
    const std::int64_t mant = sum - (std::int64_t{1} << top);
    const std::int64_t j = top >= p.log_size ? mant >> (top - p.log_size) : mant << (p.log_size - top);
    const std::int64_t recip = recip_table[j];
    const int from_frac = kSoftmaxFractionBits + top;
    const int sh = from_frac - rf_frac;
    for (std::size_t i = 0; i < n; ++i) {
      const FixedValue v = p.requant.Shifted(e[i] * recip, sh, from_frac);  // < 2^36
      overflows += v.overflowed;
      y[i] = v.raw;
    }
  }
  c.n += overflows;
}

template <bool kReLU>
void RunFixedDense(const Plan& p, const RawValue* in, std::size_t rows, RawValue* out, Counter& c) {
  switch (RequantKindOf(p.accum_to_result)) {
    case RequantKind::kRightTrn: FixedDenseKernel<RequantKind::kRightTrn, kReLU>(p, in, rows, out, c); return;
    case RequantKind::kRightRnd: FixedDenseKernel<RequantKind::kRightRnd, kReLU>(p, in, rows, out, c); return;
    case RequantKind::kRightRndConv: FixedDenseKernel<RequantKind::kRightRndConv, kReLU>(p, in, rows, out, c); return;
    case RequantKind::kAnyShift: FixedDenseKernel<RequantKind::kAnyShift, kReLU>(p, in, rows, out, c); return;
  }
}

void RunFast(const Plan& p, const RawValue* in, std::size_t rows, RawValue* out, Counter& c) {
  const std::size_t nf = p.in_features;
  const std::size_t total = rows * nf;
  switch (p.kernel) {
    case Kernel::kGeneral: break;
    case Kernel::kCopy: std::copy(in, in + total, out); return;
    case Kernel::kFixedDense:
      if (p.fused_relu) {
        RunFixedDense<true>(p, in, rows, out, c);
      } else {
        RunFixedDense<false>(p, in, rows, out, c);
      }
      return;
    case Kernel::kFixedScale: FixedScaleKernel(p, in, rows, out, c); return;
    case Kernel::kFloat32Dense: Float32DenseKernel(p, in, rows, out); return;
    case Kernel::kFloat32Scale: Float32ScaleKernel(p, in, rows, out); return;
    case Kernel::kFixedReLU:
      // Branch-free: the signs of hidden values are unpredictable.
      for (std::size_t i = 0; i < total; ++i) out[i] = in[i] & ~(in[i] >> 63);
      return;
    case Kernel::kFixedRequant:
    case Kernel::kFixedReLURequant: {
      const bool relu = p.kernel == Kernel::kFixedReLURequant;
      std::int64_t overflows = 0;
      for (std::size_t i = 0; i < total; ++i) {
        const FixedValue v = p.requant(relu && in[i] < 0 ? 0 : in[i]);
        overflows += v.overflowed;
        out[i] = v.raw;
      }
      c.n += overflows;
      return;
    }
    case Kernel::kFixedLeakyReLU: {
      std::int64_t overflows = 0;
      for (std::size_t i = 0; i < total; ++i) {
        const std::int64_t v = in[i];
        FixedValue q;
        std::int64_t prod;
        if (v >= 0) {
          q = p.requant(v);
        } else if (!__builtin_mul_overflow(v, p.alpha, &prod)) {
          q = p.requant_neg(prod);
        } else {
          q = FixedFromWide(FixedMulExact(v, p.alpha), p.requant_neg.from_frac, p.requant_neg.to);
        }
        overflows += q.overflowed;
        out[i] = q.raw;
      }
      c.n += overflows;
      return;
    }
    case Kernel::kFixedTable: {
      const std::int64_t* entries = p.table.entries.data();
      for (std::size_t i = 0; i < total; ++i) out[i] = entries[p.indexer.Index(in[i])];
      return;
    }
    case Kernel::kFixedSoftmax: FixedSoftmaxKernel(p, in, rows, out, c); return;
    case Kernel::kFixedArgmax:
      for (std::size_t r = 0; r < rows; ++r) {
        const RawValue* x = in + r * nf;
        std::size_t best = 0;
        for (std::size_t i = 1; i < nf; ++i) best = x[i] > x[best] ? i : best;
        for (std::size_t i = 0; i < nf; ++i) out[r * nf + i] = i == best ? p.one : p.zero;
      }
      return;
    case Kernel::kFloatReLU: {
      const FloatFormat& f = p.p.result.floating();
      for (std::size_t i = 0; i < total; ++i) {
        const auto v = static_cast<FloatBits>(in[i]);
        out[i] = !IsNaN(v, f) && SignBit(v, f) ? p.zero : in[i];
      }
      return;
    }
  }
}

void RunLayer(const Plan& p, bool fast, const RawValue* in, std::size_t rows, RawValue* out, Counter& c) {
  if (fast && p.kernel != Kernel::kGeneral) {
    RunFast(p, in, rows, out, c);
  } else if (p.is_activation) {
    RunActivation(p, in, rows, p.in_features, out, c);
  } else {
    RunAffine(p, fast, in, rows, p.in_features, out, c);
  }
}

// Picks the fast kernel of a layer and prepares its constants.
void ChooseKernel(Plan& p) {
  const bool same_family = p.in.is_fixed() == p.p.result.is_fixed();
  if (!same_family) return;  // the general path converts between families
  const bool fixed = p.p.result.is_fixed();
  if (!p.is_activation) {
    if (fixed && p.exact_int64) {
      p.kernel = p.is_scale ? Kernel::kFixedScale : Kernel::kFixedDense;
      for (RawValue b : p.b) p.b_acc.push_back(b * (std::int64_t{1} << p.bias_shift));
    } else if (!fixed && p.native_float32) {
      p.kernel = p.is_scale ? Kernel::kFloat32Scale : Kernel::kFloat32Dense;
      for (RawValue w : p.w) p.w32.push_back(AsFloat(w));
      for (RawValue b : p.b) p.b32.push_back(AsFloat(b));
    }
    return;
  }
  const NumberFormat& xf = p.in;
  const bool identity = xf == p.p.result;
  const auto kind = p.activation;
  if (!fixed) {
    if (identity && kind == ActivationKind::kLinear) p.kernel = Kernel::kCopy;
    if (identity && kind == ActivationKind::kReLU) {
      p.kernel = Kernel::kFloatReLU;
      p.zero = static_cast<RawValue>(FloatFromDouble(0.0, p.p.result.floating()));
    }
    return;
  }
  const FixedFormat& inf = xf.fixed();
  const FixedFormat& rf = p.p.result.fixed();
  p.requant = FixedRequant::Make(inf.fraction_bits(), rf);
  switch (kind) {
    case ActivationKind::kLinear: p.kernel = identity ? Kernel::kCopy : Kernel::kFixedRequant; break;
    case ActivationKind::kReLU: p.kernel = identity ? Kernel::kFixedReLU : Kernel::kFixedReLURequant; break;
    case ActivationKind::kLeakyReLU:
      p.kernel = Kernel::kFixedLeakyReLU;
      p.requant_neg = FixedRequant::Make(inf.fraction_bits() + p.p.weight.fixed().fraction_bits(), rf);
      break;
    case ActivationKind::kSigmoid:
    case ActivationKind::kTanh:
      p.kernel = Kernel::kFixedTable;
      p.indexer = MakeTableIndexer(inf, p.table.size, p.table.range);
      break;
    case ActivationKind::kSoftmax:
      if (p.exp_table.empty()) {  // argmax mode
        p.kernel = Kernel::kFixedArgmax;
        p.one = FromDouble(1.0, p.p.result).raw;
        p.zero = FromDouble(0.0, p.p.result).raw;
      } else if (inf.width <= 62) {  // x - max fits in int64
        p.kernel = Kernel::kFixedSoftmax;
        p.indexer = MakeSoftmaxExpIndexer(inf.fraction_bits(), p.p.table_size);
        while ((1 << p.log_size) < p.p.table_size) ++p.log_size;
      }
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Running a batch: graph inputs and layer outputs live in buffer slots; rows go through the
// whole network a tile at a time, so that the buffers stay in cache and are allocated once per
// thread.

struct InputView {
  std::size_t rows = 0, features = 0, values = 0;
  const double* doubles = nullptr;
  const RawValue* raws = nullptr;
};

Status CheckInputs(const model::Graph& graph, const std::vector<InputView>& inputs) {
  if (inputs.size() != graph.inputs.size()) {
    return InvalidArgument("the model has " + std::to_string(graph.inputs.size()) + " inputs; " +
                           std::to_string(inputs.size()) + " were given");
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto want = static_cast<std::size_t>(model::ElementCount(graph.inputs[i].shape));
    if (inputs[i].features != want || inputs[i].values != inputs[i].rows * want) {
      return InvalidArgument("input '" + graph.inputs[i].name + "' has " + std::to_string(inputs[i].features) +
                             " features per sample; expected " + std::to_string(want));
    }
  }
  return Status::Ok();
}

// Whether raw graph inputs lie in the input format (fast kernels assume their inputs do).
bool RawInputsInFormat(const std::vector<InputView>& inputs, const NumberFormat& f) {
  std::int64_t lo, hi;
  if (f.is_fixed()) {
    lo = f.fixed().min_raw();
    hi = f.fixed().max_raw();
  } else {
    if (f.width() >= 64) return true;  // float64: every bit pattern is a value
    lo = 0;
    hi = static_cast<std::int64_t>((std::uint64_t{1} << f.width()) - 1);
  }
  for (const auto& in : inputs) {
    bool ok = true;
    for (std::size_t i = 0; i < in.values; ++i) ok &= in.raws[i] >= lo && in.raws[i] <= hi;
    if (!ok) return false;
  }
  return true;
}

Result<EmulationResult> Execute(const Program& prog, const std::vector<std::shared_ptr<const Plan>>& plans,
                                const NumberFormat& input_format, const std::vector<InputView>& inputs,
                                bool from_doubles) {
  for (const auto& o : prog.outputs) {
    if (!o.found) return Internal("a graph output is not produced by any layer");
  }
  const bool fast = prog.fast && (from_doubles || RawInputsInFormat(inputs, input_format));
  const std::size_t n_slots = prog.slot_features.size();
  thread_local std::vector<RawValue> scratch;
  thread_local std::vector<const RawValue*> slot_data;
  thread_local std::vector<std::size_t> slot_rows;
  thread_local std::vector<std::int64_t> layer_overflows;
  if (scratch.size() < prog.tile_words) scratch.resize(prog.tile_words);
  slot_data.assign(n_slots, nullptr);
  slot_rows.assign(n_slots, 0);
  layer_overflows.assign(plans.size(), 0);
  std::size_t max_rows = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    slot_rows[i] = inputs[i].rows;
    max_rows = std::max(max_rows, inputs[i].rows);
  }
  for (const auto& plan : plans) slot_rows[plan->out_slot] = slot_rows[plan->in_slot];

  EmulationResult result;
  result.raw_outputs.reserve(prog.outputs.size());
  result.output_formats.reserve(prog.outputs.size());
  result.outputs.reserve(prog.outputs.size());
  for (const auto& o : prog.outputs) {
    const std::size_t rows = slot_rows[o.slot], features = prog.slot_features[o.slot];
    result.raw_outputs.push_back(RawBatch{rows, features, std::vector<RawValue>(rows * features)});
    result.output_formats.push_back(o.format);
    result.outputs.push_back(model::SampleBatch{rows, features, std::vector<double>(rows * features)});
  }

  std::int64_t input_overflows = 0;
  const std::size_t tile = prog.tile_rows;
  for (std::size_t t0 = 0; t0 < max_rows; t0 += tile) {
    auto rows_here = [&](std::size_t slot) { return slot_rows[slot] > t0 ? std::min(tile, slot_rows[slot] - t0) : 0; };
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const std::size_t n = rows_here(i) * inputs[i].features;
      if (n == 0) continue;
      const std::size_t first = t0 * inputs[i].features;
      if (!from_doubles) {
        slot_data[i] = inputs[i].raws + first;
        continue;
      }
      RawValue* dst = scratch.data() + prog.slot_offset[i];
      const double* src = inputs[i].doubles + first;
      std::int64_t overflows = 0;
      if (fast && prog.input_path == Program::InputPath::kFixed) {
        for (std::size_t k = 0; k < n; ++k) {
          const FixedValue q = prog.input_fixed(src[k]);
          overflows += q.overflowed;
          dst[k] = q.raw;
        }
      } else if (fast && prog.input_path == Program::InputPath::kFloat32) {
        for (std::size_t k = 0; k < n; ++k) {
          const float f = static_cast<float>(src[k]);  // round to nearest even, as FloatFromDouble
          overflows += std::isinf(f) && std::isfinite(src[k]);
          dst[k] = FromHostFloat32(f);
        }
      } else {
        for (std::size_t k = 0; k < n; ++k) {
          const Quantized q = FromDouble(src[k], input_format);
          overflows += q.overflowed;
          dst[k] = q.raw;
        }
      }
      input_overflows += overflows;
      slot_data[i] = dst;
    }
    for (std::size_t li = 0; li < plans.size(); ++li) {
      const Plan& plan = *plans[li];
      if (fast && plan.fused) continue;  // the previous layer wrote this layer's output
      const std::size_t rows = rows_here(plan.in_slot);
      if (rows == 0) continue;
      const std::size_t out_slot = fast && plan.fused_relu ? plans[li + 1]->out_slot : plan.out_slot;
      RawValue* out = scratch.data() + prog.slot_offset[out_slot];
      Counter c;
      RunLayer(plan, fast, slot_data[plan.in_slot], rows, out, c);
      layer_overflows[li] += c.n;
      slot_data[out_slot] = out;
    }
    for (std::size_t k = 0; k < prog.outputs.size(); ++k) {
      const Program::Output& o = prog.outputs[k];
      const std::size_t features = prog.slot_features[o.slot];
      const std::size_t n = rows_here(o.slot) * features;
      if (n == 0) continue;
      const RawValue* src = slot_data[o.slot];
      RawValue* raw = result.raw_outputs[k].values.data() + t0 * features;
      double* dbl = result.outputs[k].values.data() + t0 * features;
      std::copy(src, src + n, raw);
      if (fast && o.fixed_scale) {
        constexpr std::int64_t kExact = std::int64_t{1} << 53;
        for (std::size_t i = 0; i < n; ++i) {
          dbl[i] = src[i] > -kExact && src[i] < kExact ? static_cast<double>(src[i]) * o.scale : ToDouble(src[i], o.format);
        }
      } else if (fast && o.float32) {
        for (std::size_t i = 0; i < n; ++i) {
          const float f = AsFloat(src[i]);
          dbl[i] = std::isnan(f) ? ToDouble(src[i], o.format) : static_cast<double>(f);
        }
      } else {
        for (std::size_t i = 0; i < n; ++i) dbl[i] = ToDouble(src[i], o.format);
      }
    }
  }
  for (std::size_t li = 0; li < plans.size(); ++li) {
    if (layer_overflows[li] > 0) result.overflows[plans[li]->name] += layer_overflows[li];
  }
  if (input_overflows > 0) result.overflows["input"] += input_overflows;
  return result;
}

}  // namespace

FixedFromDoubleConverter::FixedFromDoubleConverter(const FixedFormat& to) : to_(to) {
  const int frac = to.fraction_bits();
  fast_ = frac >= -1022 && frac <= 1023;
  if (fast_) scale_ = std::ldexp(1.0, frac);
  min_exact_ = frac >= 0 ? 0.0 : 0x1p-1022;
  lo_ = to.min_raw();
  hi_ = to.max_raw();
}

Result<QuantizedModel> QuantizedModel::Build(const model::Graph& graph, const PrecisionConfig& precision,
                                             bool allow_fast_paths) {
  QuantizedModel qm;
  qm.graph_ = graph;
  qm.precision_ = precision;
  auto prog = std::make_shared<Program>();
  prog->fast = allow_fast_paths;
  std::map<std::string, NumberFormat> tensor_format;
  std::map<std::string, std::size_t> tensor_slot;
  std::vector<std::shared_ptr<LayerPlan>> plans;
  for (const auto& in : qm.graph_.inputs) {
    tensor_format[in.name] = precision.input;
    tensor_slot[in.name] = prog->slot_features.size();
    prog->slot_features.push_back(static_cast<std::size_t>(model::ElementCount(in.shape)));
  }
  for (const auto& layer : qm.graph_.layers) {
    auto it = precision.layers.find(layer.name);
    if (it == precision.layers.end()) {
      return InvalidArgument("precision configuration has no entry for layer '" + layer.name + "'");
    }
    auto plan = std::make_shared<LayerPlan>();
    plan->p = it->second;
    auto fmt_it = tensor_format.find(layer.inputs[0]);
    if (fmt_it == tensor_format.end()) return Internal("layer '" + layer.name + "': input format unknown");
    plan->in = fmt_it->second;
    const bool fixed = plan->p.result.is_fixed();
    auto quantize_params = [&](const std::vector<double>& ws, const std::vector<double>& bs) {
      for (double v : ws) {
        RawValue q = FromDouble(v, plan->p.weight).raw;
        plan->w.push_back(fixed ? q : Convert(q, plan->p.weight, plan->p.accum).raw);
      }
      for (double v : bs) {
        RawValue q = FromDouble(v, plan->p.bias).raw;
        plan->b.push_back(fixed ? q : Convert(q, plan->p.bias, plan->p.accum).raw);
      }
    };
    if (layer.kind == LayerKind::kDense || layer.kind == LayerKind::kScale) {
      plan->is_scale = layer.kind == LayerKind::kScale;
      if (plan->is_scale) {
        quantize_params(layer.scale().scale, layer.scale().shift);
        plan->n_in = 1;
        plan->n_out = static_cast<std::int64_t>(layer.scale().scale.size());
      } else {
        quantize_params(layer.dense().weights, layer.dense().bias);
        plan->n_in = layer.dense().in_features;
        plan->n_out = layer.dense().out_features;
      }
      const NumberFormat& xf = FamilyInput(*plan);
      if (fixed) {
        const FixedFormat& wf = plan->p.weight.fixed();
        const FixedFormat& bf = plan->p.bias.fixed();
        const FixedFormat& af = plan->p.accum.fixed();
        const int prod_frac = xf.fixed().fraction_bits() + wf.fraction_bits();
        // Exact in int64 when the accumulator keeps every product bit and no sum can leave
        // both the accumulator's range and 62 bits.
        double bound = 0;
        const double xmax = std::max(std::fabs(static_cast<double>(xf.fixed().min_raw())),
                                     static_cast<double>(xf.fixed().max_raw()));
        for (std::int64_t o = 0; o < plan->n_out; ++o) {
          double s = std::ldexp(std::fabs(static_cast<double>(plan->b[o])), af.fraction_bits() - bf.fraction_bits());
          for (std::int64_t i = 0; i < plan->n_in; ++i) {
            s += xmax * std::fabs(static_cast<double>(plan->w[o * plan->n_in + i]));
          }
          bound = std::max(bound, s);
        }
        plan->bias_shift = af.fraction_bits() - bf.fraction_bits();
        plan->accum_to_result = FixedRequant::Make(af.fraction_bits(), plan->p.result.fixed());
        plan->exact_int64 = allow_fast_paths && af.fraction_bits() == prod_frac && plan->bias_shift >= 0 &&
                            plan->bias_shift < 62 && bound < std::ldexp(1.0, 62) &&
                            bound <= static_cast<double>(af.max_raw());
      } else {
        plan->native_float32 = allow_fast_paths && IsFloat32(xf) && IsFloat32(plan->p.weight) && IsFloat32(plan->p.bias) &&
                               IsFloat32(plan->p.accum) && IsFloat32(plan->p.result);
      }
    } else {
      const auto kind = layer.activation().kind;
      plan->activation = kind;
      if (kind == ActivationKind::kLeakyReLU) plan->alpha = FromDouble(layer.activation().alpha, plan->p.weight).raw;
      if (fixed && (kind == ActivationKind::kSigmoid || kind == ActivationKind::kTanh)) {
        plan->table = MakeFunctionTable(kind == ActivationKind::kSigmoid ? TableFunction::kSigmoid : TableFunction::kTanh,
                                        plan->p.table_size, plan->p.result.fixed());
      }
      if (kind == ActivationKind::kSoftmax) {
        if (precision.softmax == SoftmaxMode::kArgmax) {
          if (!fixed) plan->recip_table = {0};  // marks float argmax mode
        } else if (fixed) {
          plan->exp_table = MakeSoftmaxExpTable(plan->p.table_size);
          plan->recip_table = MakeReciprocalTable(plan->p.table_size);
        }
      }
    }
    plan->name = layer.name;
    plan->is_activation = layer.kind == LayerKind::kActivation;
    plan->in_slot = tensor_slot.at(layer.inputs[0]);
    plan->in_features = prog->slot_features[plan->in_slot];
    plan->out_features = plan->is_activation ? plan->in_features : static_cast<std::size_t>(plan->n_out);
    plan->out_slot = prog->slot_features.size();
    prog->slot_features.push_back(plan->out_features);
    tensor_slot[layer.outputs[0]] = plan->out_slot;
    if (allow_fast_paths) ChooseKernel(*plan);
    tensor_format[layer.outputs[0]] = plan->p.result;
    plans.push_back(std::move(plan));
  }
  // Fuse identity ReLUs into the fixed Dense layer before them when nothing else reads the
  // Dense output.
  std::vector<int> readers(prog->slot_features.size(), 0);
  for (const auto& plan : plans) ++readers[plan->in_slot];
  for (const auto& o : qm.graph_.outputs) {
    auto slot_it = tensor_slot.find(o.name);
    if (slot_it != tensor_slot.end()) ++readers[slot_it->second];
  }
  for (std::size_t li = 0; li + 1 < plans.size(); ++li) {
    LayerPlan& dense = *plans[li];
    LayerPlan& relu = *plans[li + 1];
    if (dense.kernel == Kernel::kFixedDense && relu.kernel == Kernel::kFixedReLU && relu.in_slot == dense.out_slot &&
        readers[dense.out_slot] == 1) {
      dense.fused_relu = true;
      relu.fused = true;
    }
  }
  qm.plans_.assign(plans.begin(), plans.end());
  // Tiles of rows small enough for every slot of a tile to stay in the L1/L2 caches.
  std::size_t row_words = 0;
  for (std::size_t f : prog->slot_features) row_words += f;
  constexpr std::size_t kTileBudgetWords = 4096;  // 32 KiB
  prog->tile_rows = std::clamp<std::size_t>(kTileBudgetWords / std::max<std::size_t>(row_words, 1), 1, 256);
  for (std::size_t f : prog->slot_features) {
    prog->slot_offset.push_back(prog->tile_words);
    prog->tile_words += f * prog->tile_rows;
  }
  if (precision.input.is_fixed()) {
    prog->input_path = Program::InputPath::kFixed;
    prog->input_fixed = FixedFromDoubleConverter(precision.input.fixed());
  } else if (IsFloat32(precision.input)) {
    prog->input_path = Program::InputPath::kFloat32;
  }
  for (const auto& o : qm.graph_.outputs) {
    Program::Output out;
    auto slot_it = tensor_slot.find(o.name);
    auto fmt_it = tensor_format.find(o.name);
    if (slot_it != tensor_slot.end() && fmt_it != tensor_format.end()) {
      out.found = true;
      out.slot = slot_it->second;
      out.format = fmt_it->second;
      if (out.format.is_fixed()) {
        const int frac = out.format.fixed().fraction_bits();
        out.fixed_scale = frac >= -960 && frac <= 1000;
        if (out.fixed_scale) out.scale = std::ldexp(1.0, -frac);
      } else {
        out.float32 = IsFloat32(out.format);
      }
    }
    prog->outputs.push_back(std::move(out));
  }
  qm.program_ = std::move(prog);
  return qm;
}

Result<EmulationResult> QuantizedModel::Run(const model::SampleBatch& input) const {
  if (!program_) return FailedPrecondition("the quantized model was not built");
  std::vector<InputView> views{{input.rows, input.features, input.values.size(), input.values.data(), nullptr}};
  RETURN_IF_ERROR(CheckInputs(graph_, views));
  return Execute(*program_, plans_, precision_.input, views, true);
}

Result<EmulationResult> QuantizedModel::Run(const std::vector<model::SampleBatch>& inputs) const {
  if (!program_) return FailedPrecondition("the quantized model was not built");
  std::vector<InputView> views;
  views.reserve(inputs.size());
  for (const auto& b : inputs) views.push_back({b.rows, b.features, b.values.size(), b.values.data(), nullptr});
  RETURN_IF_ERROR(CheckInputs(graph_, views));
  return Execute(*program_, plans_, precision_.input, views, true);
}

Result<EmulationResult> QuantizedModel::RunRaw(const std::vector<RawBatch>& inputs) const {
  if (!program_) return FailedPrecondition("the quantized model was not built");
  std::vector<InputView> views;
  views.reserve(inputs.size());
  for (const auto& b : inputs) views.push_back({b.rows, b.features, b.values.size(), nullptr, b.values.data()});
  RETURN_IF_ERROR(CheckInputs(graph_, views));
  return Execute(*program_, plans_, precision_.input, views, false);
}

}  // namespace fpgaserve::numeric
