#include "numeric/emulator.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "numeric/float_functions.h"
#include "numeric/lookup_tables.h"

namespace fpgaserve::numeric {

using model::ActivationKind;
using model::LayerKind;

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
  std::int64_t result_lo = 0, result_hi = 0;  // raw range of a fixed result format
  // Float fast path: every format of the layer (and its input) is float32.
  bool native_float32 = false;
  RawValue alpha = 0;  // LeakyReLU slope in the weight format
  FunctionTable table;  // sigmoid / tanh (fixed)
  std::vector<std::int64_t> exp_table, recip_table;  // softmax (fixed)
};

namespace {

using Plan = QuantizedModel::LayerPlan;

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

// FixedFromWide(acc, from_frac, to) for a 64-bit accumulator with a moderate shift, without
// 128-bit arithmetic. The general path is the definition; a test compares both bit for bit.
FixedValue RequantizeInt64(std::int64_t acc, int from_frac, const FixedFormat& to, std::int64_t lo,
                           std::int64_t hi) {
  const int shift = from_frac - to.fraction_bits();
  if (shift <= 0 || shift >= 62 || acc > (std::int64_t{1} << 61) || acc < -(std::int64_t{1} << 61)) {
    return FixedFromWide(acc, from_frac, to);
  }
  std::int64_t q = acc >> shift;  // floor
  const std::int64_t rem = acc - (q << shift);
  const std::int64_t half = std::int64_t{1} << (shift - 1);
  switch (to.quantization) {
    case Quantization::kTrn: break;
    case Quantization::kRnd: q += rem >= half ? 1 : 0; break;
    case Quantization::kRndConv: q += (rem > half || (rem == half && (q & 1))) ? 1 : 0; break;
  }
  if (q >= lo && q <= hi) return {q, false};
  if (to.overflow == Overflow::kSat) return {q < lo ? lo : hi, true};
  return FixedFromWide(q, to.fraction_bits(), to);  // wrap: the general path keeps the low bits
}

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
RawValue FixedMac(const Plan& plan, const RawValue* x, std::int64_t n, const RawValue* w, RawValue b,
                  const FixedFormat& xf, Counter& c) {
  const FixedFormat& wf = plan.p.weight.fixed();
  const FixedFormat& bf = plan.p.bias.fixed();
  const FixedFormat& af = plan.p.accum.fixed();
  const FixedFormat& rf = plan.p.result.fixed();
  if (plan.exact_int64) {
    std::int64_t acc = b * (std::int64_t{1} << plan.bias_shift);
    for (std::int64_t i = 0; i < n; ++i) acc += x[i] * w[i];
    FixedValue r = RequantizeInt64(acc, af.fraction_bits(), rf, plan.result_lo, plan.result_hi);
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

RawValue FloatMac(const Plan& plan, const RawValue* x, std::int64_t n, const RawValue* w, RawValue b,
                  const NumberFormat& xf, Counter& c) {
  const FloatFormat& af = plan.p.accum.floating();
  if (plan.native_float32) {
    float acc = AsFloat(b);
    for (std::int64_t i = 0; i < n; ++i) {
      float prod = AsFloat(x[i]) * AsFloat(w[i]);
      acc = acc + prod;
    }
    return FromFloat(acc);
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

void RunAffine(const Plan& plan, const RawBatch& in, RawBatch& out, Counter& c) {
  const bool fixed = plan.p.result.is_fixed();
  const NumberFormat& xf = FamilyInput(plan);
  out.features = static_cast<std::size_t>(plan.n_out);
  out.values.assign(in.rows * out.features, 0);
  const bool same_family = plan.in.is_fixed() == plan.p.result.is_fixed();
  std::vector<RawValue> converted(same_family ? 0 : in.features);
  for (std::size_t r = 0; r < in.rows; ++r) {
    const RawValue* x = &in.values[r * in.features];
    if (!same_family) {
      for (std::size_t i = 0; i < in.features; ++i) converted[i] = IntoLayerFamily(x[i], plan, c);
      x = converted.data();
    }
    for (std::int64_t o = 0; o < plan.n_out; ++o) {
      const RawValue* xs = plan.is_scale ? &x[o] : x;
      const std::int64_t n = plan.is_scale ? 1 : plan.n_in;
      const RawValue* ws = plan.is_scale ? &plan.w[o] : &plan.w[o * plan.n_in];
      out.values[r * out.features + o] =
          fixed ? FixedMac(plan, xs, n, ws, plan.b[o], xf.fixed(), c)
                : FloatMac(plan, xs, n, ws, plan.b[o], xf, c);
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

void RunActivation(const Plan& plan, const RawBatch& in, RawBatch& out, Counter& c) {
  const auto kind = plan.activation;
  const NumberFormat& rfmt = plan.p.result;
  out.features = in.features;
  out.values.assign(in.values.size(), 0);
  std::vector<RawValue> x(in.features);
  const NumberFormat& xf = FamilyInput(plan);
  const bool identity = xf == rfmt;  // Linear/ReLU need no conversion
  for (std::size_t r = 0; r < in.rows; ++r) {
    for (std::size_t i = 0; i < in.features; ++i) x[i] = IntoLayerFamily(in.values[r * in.features + i], plan, c);
    RawValue* y = &out.values[r * out.features];
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

bool IsFloat32(const NumberFormat& f) { return f.is_float() && f.floating() == kFloat32; }

}  // namespace

Result<QuantizedModel> QuantizedModel::Build(const model::Graph& graph, const PrecisionConfig& precision,
                                             bool allow_fast_paths) {
  QuantizedModel qm;
  qm.graph_ = graph;
  qm.precision_ = precision;
  std::map<std::string, NumberFormat> tensor_format;
  for (const auto& in : qm.graph_.inputs) tensor_format[in.name] = precision.input;
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
        plan->result_lo = plan->p.result.fixed().min_raw();
        plan->result_hi = plan->p.result.fixed().max_raw();
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
    tensor_format[layer.outputs[0]] = plan->p.result;
    qm.plans_.push_back(std::move(plan));
  }
  return qm;
}

Result<EmulationResult> QuantizedModel::Run(const model::SampleBatch& input) const {
  return Run(std::vector<model::SampleBatch>{input});
}

Result<EmulationResult> QuantizedModel::Run(const std::vector<model::SampleBatch>& inputs) const {
  if (inputs.size() != graph_.inputs.size()) {
    return InvalidArgument("the model has " + std::to_string(graph_.inputs.size()) + " inputs; " +
                           std::to_string(inputs.size()) + " were given");
  }
  std::vector<RawBatch> raw;
  std::int64_t overflow = 0;
  for (const auto& b : inputs) {
    RawBatch r{b.rows, b.features, {}};
    r.values.reserve(b.values.size());
    for (double v : b.values) {
      Quantized q = FromDouble(v, precision_.input);
      overflow += q.overflowed ? 1 : 0;
      r.values.push_back(q.raw);
    }
    raw.push_back(std::move(r));
  }
  ASSIGN_OR_RETURN(EmulationResult result, RunRaw(raw));
  if (overflow > 0) result.overflows["input"] += overflow;
  return result;
}

Result<EmulationResult> QuantizedModel::RunRaw(const std::vector<RawBatch>& inputs) const {
  if (inputs.size() != graph_.inputs.size()) {
    return InvalidArgument("the model has " + std::to_string(graph_.inputs.size()) + " inputs; " +
                           std::to_string(inputs.size()) + " were given");
  }
  std::map<std::string, RawBatch> values;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto want = static_cast<std::size_t>(model::ElementCount(graph_.inputs[i].shape));
    if (inputs[i].features != want || inputs[i].values.size() != inputs[i].rows * want) {
      return InvalidArgument("input '" + graph_.inputs[i].name + "' has " +
                             std::to_string(inputs[i].features) + " features per sample; expected " +
                             std::to_string(want));
    }
    values[graph_.inputs[i].name] = inputs[i];
  }
  EmulationResult result;
  for (std::size_t li = 0; li < plans_.size(); ++li) {
    const LayerPlan& plan = *plans_[li];
    const model::Layer& layer = graph_.layers[li];
    const RawBatch& in = values.at(layer.inputs[0]);
    RawBatch out;
    out.rows = in.rows;
    Counter c;
    if (layer.kind == LayerKind::kActivation) {
      RunActivation(plan, in, out, c);
    } else {
      RunAffine(plan, in, out, c);
    }
    if (c.n > 0) result.overflows[layer.name] += c.n;
    values[layer.outputs[0]] = std::move(out);
  }
  std::map<std::string, NumberFormat> formats;
  for (std::size_t li = 0; li < plans_.size(); ++li) formats[graph_.layers[li].outputs[0]] = plans_[li]->p.result;
  for (const auto& in : graph_.inputs) formats.emplace(in.name, precision_.input);
  for (const auto& o : graph_.outputs) {
    const RawBatch& rb = values.at(o.name);
    const NumberFormat& f = formats.at(o.name);
    model::SampleBatch sb{rb.rows, rb.features, {}};
    sb.values.reserve(rb.values.size());
    for (RawValue v : rb.values) sb.values.push_back(ToDouble(v, f));
    result.raw_outputs.push_back(rb);
    result.output_formats.push_back(f);
    result.outputs.push_back(std::move(sb));
  }
  return result;
}

}  // namespace fpgaserve::numeric
