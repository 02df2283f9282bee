#include "hw/resource_model.h"

#include <algorithm>

namespace fpgaserve::hw {

namespace {

std::int64_t CeilDiv(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

int SignedW(const numeric::FixedFormat& f) { return f.width + (f.is_signed ? 0 : 1); }

struct Family {
  bool ice40;
  int dsp_a, dsp_b;         // multiplier operand widths of one DSP block
  std::int64_t bram_bits;   // bits of one block RAM
  double rom_bits_per_lut;  // distributed ROM density (bits per LUT)
  int softmax_dsp;          // DSPs per softmax product (18 x 18 unsigned)
  double adder_luts_per_bit;  // DSP48s absorb part of the accumulation on AMD parts
};

Family FamilyOf(const std::string& name) {
  if (name == "ice40") return {true, 16, 16, 4096, 16, 3, 1.0};
  return {false, 25, 18, 36864, 64, 1, 0.4};
}

std::int64_t DspPerMultiplier(const Family& f, int a, int b) {
  const std::int64_t one = CeilDiv(a, f.dsp_a) * CeilDiv(b, f.dsp_b);
  const std::int64_t swapped = CeilDiv(b, f.dsp_a) * CeilDiv(a, f.dsp_b);
  return std::min(one, swapped);
}

// Float layers (float_layers.cc): per unit, the significand multiplier on DSPs and logic for
// alignment, normalization and rounding, plus the weight tables and pipeline registers. Coarse
// (docs/benchmarks.md compares it with yosys).
LayerEstimate EstimateFloatLayer(const Family& fam, const model::Layer& l, const numeric::LayerPrecision& p,
                                 const LayerSchedule& s, std::int64_t width, numeric::SoftmaxMode softmax) {
  const numeric::FloatFormat& f = p.result.floating();
  const std::int64_t w = f.width(), sig = f.mantissa_bits + 1;
  const std::int64_t mul_dsp = DspPerMultiplier(fam, static_cast<int>(sig), static_cast<int>(sig));
  const std::int64_t mul_lut = 5 * w, add_lut = 12 * w, div_lut = sig * (sig + 4), exp_lut = 20 * w;
  const std::int64_t unit_ff = 4 * w;
  LayerEstimate le;
  le.name = l.name;
  if (l.kind == model::LayerKind::kDense || l.kind == model::LayerKind::kScale) {
    const std::int64_t lanes = std::max<std::int64_t>(1, s.multipliers);
    const std::int64_t n_out = l.kind == model::LayerKind::kDense ? l.dense().out_features : width;
    le.dsp = lanes * mul_dsp;
    le.lut = lanes * (mul_lut + add_lut + w * CeilDiv(s.reuse, static_cast<std::int64_t>(fam.rom_bits_per_lut))) +
             width * w / 2;
    le.ff = lanes * 2 * unit_ff + n_out * w + width * w + 65;
    return le;
  }
  const auto kind = l.activation().kind;
  const std::int64_t chains = std::max<std::int64_t>(1, s.multipliers);  // streamed unit chains
  le.ff = width * w * 2 + 65;
  if (kind == model::ActivationKind::kSoftmax && softmax != numeric::SoftmaxMode::kArgmax) {
    le.dsp = 4 * mul_dsp;  // exp's fixed-point products
    le.lut = 2 * add_lut + exp_lut + div_lut;
    le.ff += 4 * unit_ff + width * w;
  } else if (kind == model::ActivationKind::kSigmoid || kind == model::ActivationKind::kTanh) {
    le.dsp = chains * 4 * mul_dsp;
    le.lut = chains * (add_lut + exp_lut + div_lut);
    le.ff += chains * 3 * unit_ff;
  } else if (kind == model::ActivationKind::kLeakyReLU) {
    le.dsp = chains * mul_dsp;
    le.lut = chains * mul_lut + width * w;
    le.ff += chains * unit_ff;
  } else {
    le.lut = width * w;
  }
  return le;
}

}  // namespace

ResourceEstimate EstimateResources(const model::Graph& graph,
                                   const numeric::PrecisionConfig& precision,
                                   const HwDesign& design, const std::string& family) {
  const Family fam = FamilyOf(family);
  ResourceEstimate e;
  numeric::NumberFormat in = design.in_format;
  std::int64_t width = design.n_in;
  for (std::size_t k = 0; k < graph.layers.size() && k < design.layers.size(); ++k) {
    const model::Layer& l = graph.layers[k];
    const LayerSchedule& s = design.layers[k];
    const numeric::LayerPrecision& p = precision.layers.at(l.name);
    auto add = [&](LayerEstimate le) {
      e.lut += le.lut;
      e.ff += le.ff;
      e.dsp += le.dsp;
      e.bram += le.bram;
      e.layers.push_back(std::move(le));
      in = p.result;
    };
    if (p.result.is_float()) {
      add(EstimateFloatLayer(fam, l, p, s, width, precision.softmax));
      if (l.kind == model::LayerKind::kDense) width = l.dense().out_features;
      continue;
    }
    LayerEstimate le;
    le.name = l.name;
    const numeric::FixedFormat rf = p.result.fixed();
    if (in.is_float()) break;  // not generated (architecture.cc refuses float -> fixed)
    const numeric::FixedFormat in_fixed = in.fixed();
    const int xw = SignedW(in_fixed), rw = rf.width;
    std::int64_t n_out = width;
    if (l.kind == model::LayerKind::kDense || l.kind == model::LayerKind::kScale) {
      const int ww = SignedW(p.weight.fixed()), aw = p.accum.fixed().width;
      const std::int64_t n_in = width, r = s.reuse, m = s.multipliers;
      n_out = l.kind == model::LayerKind::kDense ? l.dense().out_features : width;
      le.dsp = m * DspPerMultiplier(fam, xw, ww);
      // Adders: one accumulate (R > 1) or adder-tree input (R = 1) per product, aw bits each;
      // requantizers; registers for the output vector and the stamps.
      le.lut = static_cast<std::int64_t>(static_cast<double>(m * aw) * fam.adder_luts_per_bit) +
               n_out * rw * 2;
      le.ff = n_out * rw + 65;
      if (r > 1) {
        const std::int64_t accumulators = std::min<std::int64_t>(m, n_out);
        // Weight ROMs (r entries of ww bits per multiplier) and the input multiplexers.
        le.lut += m * static_cast<std::int64_t>(ww * CeilDiv(r, static_cast<std::int64_t>(fam.rom_bits_per_lut)) * 2);
        le.lut += CeilDiv(n_in, std::max<std::int64_t>(1, r)) * xw * CeilDiv(r, 4);
        le.ff += n_in * xw + accumulators * aw + 64 + 16 + (m < n_out ? n_out * rw : 0);
      }
    } else if (l.kind == model::LayerKind::kActivation) {
      const auto kind = l.activation().kind;
      le.ff = width * rw + 65;
      if (kind == model::ActivationKind::kSoftmax) {
        if (precision.softmax == numeric::SoftmaxMode::kArgmax) {
          le.lut = width * xw * 2;
        } else {
          // exp table per element and one reciprocal table, 18-bit entries, in block RAM;
          // n products (exp x reciprocal) and per-output shift/requantize logic.
          const std::int64_t table_bits = static_cast<std::int64_t>(p.table_size) * 18;
          le.bram = (width + 1) * CeilDiv(table_bits, fam.bram_bits);
          le.dsp = width * fam.softmax_dsp;
          le.lut = 150 + width * (xw * 3 + 18 * 4 + rw * 4);
          le.ff += width * (18 + xw) * 2 + 3 * 65;
        }
      } else if (kind == model::ActivationKind::kSigmoid || kind == model::ActivationKind::kTanh) {
        // One table per element as logic (case statements).
        const std::int64_t bits = static_cast<std::int64_t>(p.table_size) * rw;
        le.lut = width * (CeilDiv(bits, static_cast<std::int64_t>(fam.rom_bits_per_lut)) + xw * 2);
      } else {
        le.lut = width * rw * (kind == model::ActivationKind::kLeakyReLU ? 3 : 1);
      }
    }
    add(std::move(le));
    width = n_out;
  }
  e.ff += 128;  // the core's cycle counter and its output stamp
  return e;
}

}  // namespace fpgaserve::hw
