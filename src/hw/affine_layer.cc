// Dense and Scale layers: an accumulate-then-requantize datapath. R = 1: every product at once
// (constant multipliers). 1 < R <= n_in: ceil(n_in/R) inputs per cycle for R cycles, one
// multiplier per (output, lane). R > n_in: one input per cycle and each multiplier ("slot")
// computes g = min(R / n_in, n_out) neurons one after another, so the layer needs
// ceil(n_out / g) multipliers and n_in * g cycles (the effective reuse).
#include <algorithm>
#include <cmath>

#include "hw/layer_emitters.h"
#include "hw/verilog_text.h"
#include "numeric/number_format.h"

namespace fpgaserve::hw {

namespace {

using numeric::FixedFormat;
using numeric::Wide;
namespace nm = numeric;

std::string Str(std::int64_t v) { return std::to_string(v); }

int BitsFor(std::int64_t n) {  // bits to count 0..n-1 (at least 1)
  int b = 1;
  while ((std::int64_t{1} << b) < n) ++b;
  return b;
}


// Module line, ports, the requantizer and the output register of every affine layer.
std::string ModuleHead(const LayerContext& ctx, const std::string& who, int r, int aw) {
  const FixedFormat& rf = ctx.precision.result.fixed();
  const FixedFormat& af = ctx.precision.accum.fixed();
  const std::string XW = Str(std::int64_t{ctx.n_in} * ctx.in.width());
  const std::string OW = Str(std::int64_t{ctx.n_out} * rf.width);
  std::string s = "// " + who + ": " + Str(ctx.n_in) + " -> " + Str(ctx.n_out) + ", reuse " +
                  Str(r) + ", accum " + af.ToString() + ", result " + rf.ToString() + "\n";
  s += "module " + ctx.module + " (\n"
       "  input clk, input rst,\n"
       "  input in_valid, output in_ready, input [" + XW + "-1:0] in_data, input [" + kTagRange + "] in_tag,\n"
       "  output out_valid, input out_ready, output [" + OW + "-1:0] out_data, output [" + kTagRange + "] out_tag\n"
       ");\n";
  s += RequantizeFunction("rq", aw, af.fraction_bits(), rf);
  s += "  reg ov;\n  reg [" + OW + "-1:0] od;\n  reg [" + kTagRange + "] otag;\n";
  s += "  assign out_valid = ov;\n  assign out_data = od;\n  assign out_tag = otag;\n";
  return s;
}

// R > 1: the input latch and the cycle counter; `fire` hands the result to the output register.
std::string SequencerRegs(std::int64_t x_bits, int r) {
  const int cw = BitsFor(r);
  std::string s = "  reg busy;\n  reg [" + Str(cw - 1) + ":0] cnt;\n";
  s += "  reg [" + Str(x_bits) + "-1:0] x;\n  reg [" + kTagRange + "] tag;\n";
  s += "  wire last = busy && (cnt == " + Str(cw) + "'d" + Str(r - 1) + ");\n";
  s += "  wire fire = last && (!ov || out_ready);\n";
  s += "  assign in_ready = !busy || fire;\n";
  s += "  wire accept = in_valid && in_ready;\n";
  return s;
}

// Opens the clocked block of a sequenced layer, up to the per-cycle accumulate updates.
std::string SequencerStart(int cw) {
  std::string s = "  always @(posedge clk) begin\n"
                  "    if (rst) begin\n      busy <= 1'b0;\n      ov <= 1'b0;\n      cnt <= " +
                  Str(cw) + "'d0;\n    end else begin\n";
  s += "      if (ov && out_ready) ov <= 1'b0;\n";
  s += "      if (busy && !last) begin\n        cnt <= cnt + " + Str(cw) + "'d1;\n";
  return s;
}

std::string SequencerAccept(int cw) {
  return "      if (accept) begin\n        busy <= 1'b1;\n        cnt <= " + Str(cw) +
         "'d0;\n        x <= in_data;\n        tag <= in_tag;\n";
}

// R > n_in: one input element per cycle; slot k computes neurons k, k + slots, k + 2*slots, ...
// (pass p = cnt / n_in handles neuron p*slots + k). A neuron finished before the last pass waits
// in res<o>; the last pass's neurons go straight to the output register with the others.
std::string FoldedBody(const LayerContext& ctx, const std::vector<std::int64_t>& w,
                       const std::vector<std::int64_t>& b, int bias_shift, int aw, int r,
                       std::int64_t g, std::int64_t slots) {
  const FixedFormat& xf = ctx.in.fixed();
  const FixedFormat& rf = ctx.precision.result.fixed();
  const std::int64_t n_in = ctx.n_in, n_out = ctx.n_out;
  const int cw = BitsFor(r);
  const int wsw = SignedWidth(ctx.precision.weight.fixed());  // weights: narrow multiplier operands
  auto neuron = [&](std::int64_t k, std::int64_t p) { return p * slots + k; };
  auto bias = [&](std::int64_t o) {
    return SignedLiteral(o < n_out ? static_cast<Wide>(b[o]) << bias_shift : 0, aw);
  };
  std::string s;
  int xsw = SignedWidth(xf);
  s += "  reg signed [" + Str(xsw - 1) + ":0] xl;\n  reg pend;\n";
  for (std::int64_t k = 0; k < slots; ++k) {
    s += "  reg signed [" + Str(aw - 1) + ":0] acc" + Str(k) + ", bn" + Str(k) + ";\n";
    s += "  reg signed [" + Str(wsw - 1) + ":0] wl" + Str(k) + ";\n";
  }
  for (std::int64_t o = 0; o < n_out; ++o) {
    if (o / slots < g - 1) s += "  reg [" + Str(rf.width - 1) + ":0] res" + Str(o) + ";\n";
  }
  s += "  always @* begin\n    case (cnt)\n";
  for (int c = 0; c < r; ++c) {
    const std::int64_t p = c / n_in, i = c % n_in;
    s += "      " + Str(cw) + "'d" + Str(c) + ": begin\n";
    s += "        xl = " + SignedElement("x", static_cast<int>(i), xf, &xsw) + ";\n";
    s += std::string("        pend = 1'b") + (i == n_in - 1 ? "1" : "0") + ";\n";
    for (std::int64_t k = 0; k < slots; ++k) {
      const std::int64_t o = neuron(k, p);
      s += "        wl" + Str(k) + " = " + SignedLiteral(o < n_out ? w[o * n_in + i] : 0, wsw) + ";\n";
      s += "        bn" + Str(k) + " = " + (p + 1 < g ? bias(neuron(k, p + 1)) : SignedLiteral(0, aw)) + ";\n";
    }
    s += "      end\n";
  }
  s += "      default: begin\n        xl = " + SignedLiteral(0, xsw) + ";\n        pend = 1'b0;\n";
  for (std::int64_t k = 0; k < slots; ++k) {
    s += "        wl" + Str(k) + " = " + SignedLiteral(0, wsw) + ";\n        bn" + Str(k) + " = " + SignedLiteral(0, aw) + ";\n";
  }
  s += "      end\n    endcase\n  end\n";
  for (std::int64_t k = 0; k < slots; ++k) {
    s += "  wire signed [" + Str(aw - 1) + ":0] cs" + Str(k) + " = xl * wl" + Str(k) + ";\n";
  }
  s += SequencerStart(cw);
  for (std::int64_t k = 0; k < slots; ++k) {
    s += "        acc" + Str(k) + " <= pend ? bn" + Str(k) + " : acc" + Str(k) + " + cs" + Str(k) + ";\n";
  }
  s += "      end\n";
  for (std::int64_t o = 0; o < n_out; ++o) {
    const std::int64_t p = o / slots, k = o % slots;
    if (p == g - 1) continue;
    s += "      if (busy && cnt == " + Str(cw) + "'d" + Str(p * n_in + n_in - 1) + ") res" + Str(o) +
         " <= rq(acc" + Str(k) + " + cs" + Str(k) + ");\n";
  }
  s += "      if (fire) begin\n        ov <= 1'b1;\n        otag <= tag;\n        busy <= 1'b0;\n";
  for (std::int64_t o = 0; o < n_out; ++o) {
    const std::int64_t p = o / slots, k = o % slots;
    s += "        od[" + Str(o * rf.width) + " +: " + Str(rf.width) + "] <= " +
         (p == g - 1 ? "rq(acc" + Str(k) + " + cs" + Str(k) + ")" : "res" + Str(o)) + ";\n";
  }
  s += "      end\n";
  s += SequencerAccept(cw);
  for (std::int64_t k = 0; k < slots; ++k) s += "        acc" + Str(k) + " <= " + bias(neuron(k, 0)) + ";\n";
  s += "      end\n    end\n  end\nendmodule\n\n";
  return s;
}

}  // namespace

Result<EmittedLayer> EmitAffineLayer(const LayerContext& ctx) {
  const model::Layer& layer = *ctx.layer;
  const FixedFormat& xf = ctx.in.fixed();
  const FixedFormat& wf = ctx.precision.weight.fixed();
  const FixedFormat& bf = ctx.precision.bias.fixed();
  const FixedFormat& af = ctx.precision.accum.fixed();
  const FixedFormat& rf = ctx.precision.result.fixed();
  const bool is_scale = layer.kind == model::LayerKind::kScale;
  const std::string who = "layer '" + layer.name + "' (" + layer.OpName() + ")";

  // Quantized parameters exactly as the emulator rounds them.
  std::vector<std::int64_t> w, b;
  const auto& wv = is_scale ? layer.scale().scale : layer.dense().weights;
  const auto& bv = is_scale ? layer.scale().shift : layer.dense().bias;
  for (double v : wv) w.push_back(nm::FromDouble(v, ctx.precision.weight).raw);
  for (double v : bv) b.push_back(nm::FromDouble(v, ctx.precision.bias).raw);

  // The hardware accumulates exactly: the accumulator must keep every product bit and hold
  // every possible sum (the default accumulator does; narrower ones would round per step).
  const int bias_shift = af.fraction_bits() - bf.fraction_bits();
  const double xmax = std::max(std::fabs(static_cast<double>(xf.min_raw())), static_cast<double>(xf.max_raw()));
  const std::int64_t n_in = ctx.n_in, n_out = ctx.n_out;
  double bound = 0;
  for (std::int64_t o = 0; o < n_out; ++o) {
    double s = std::ldexp(std::fabs(static_cast<double>(b[o])), bias_shift);
    if (is_scale) {
      s += xmax * std::fabs(static_cast<double>(w[o]));
    } else {
      for (std::int64_t i = 0; i < n_in; ++i) s += xmax * std::fabs(static_cast<double>(w[o * n_in + i]));
    }
    bound = std::max(bound, s);
  }
  if (af.fraction_bits() != xf.fraction_bits() + wf.fraction_bits() || bias_shift < 0 ||
      bound > static_cast<double>(af.max_raw()) || !af.is_signed) {
    return Unimplemented(who + ": accumulator " + af.ToString() +
                         " would round or overflow; hardware generation needs the exact default "
                         "accumulator (omit 'accum' in the precision configuration)");
  }
  const int aw = af.width;
  const int requested = is_scale ? 1 : std::max(1, ctx.reuse);
  // Neurons per multiplier: > 1 folds output neurons onto shared multipliers.
  const std::int64_t g =
      requested > n_in ? std::min<std::int64_t>(requested / n_in, n_out) : 1;
  const int r = g > 1 ? static_cast<int>(n_in * g) : std::min<int>(requested, static_cast<int>(n_in));
  const std::int64_t lanes = is_scale ? n_out : (n_in + r - 1) / r;
  const std::int64_t slots = (n_out + g - 1) / g;  // multipliers when g > 1
  const int cw = BitsFor(r);
  const int wsw = SignedWidth(wf);  // weight registers: narrow multiplier operands

  EmittedLayer out;
  // R = 1: the register after the multiply-accumulate; R > 1: latch the input, then R cycles.
  out.latency = r == 1 ? 1 : r + 1;
  out.initiation_interval = r;
  out.reuse = r;
  std::string& s = out.text;
  s += ModuleHead(ctx, who, r, aw);
  if (r == 1) {
    // One stage: every product of the incoming vector at once, requantized into the register.
    s += "  wire en = !ov || out_ready;\n  assign in_ready = en;\n";
  } else {
    s += SequencerRegs(n_in * xf.width, r);
  }
  if (g > 1) {
    out.multipliers = slots;
    s += FoldedBody(ctx, w, b, bias_shift, aw, r, g, slots);
    return out;
  }
  if (r > 1) {
    for (std::int64_t o = 0; o < n_out; ++o) s += "  reg signed [" + Str(aw - 1) + ":0] acc" + Str(o) + ";\n";
  }

  // Operands of the current cycle: R = 1 uses every input with constant weights; R > 1 selects
  // lane inputs and weights by `cnt` (a multiplexer and a small ROM per lane).
  int xsw = 0;
  std::vector<std::string> cs(static_cast<std::size_t>(n_out));
  std::int64_t multipliers = 0;
  if (r == 1) {
    for (std::int64_t o = 0; o < n_out; ++o) {
      std::string sum;
      auto term = [&](std::int64_t i, std::int64_t wraw) {
        if (wraw == 0) return;
        std::string xe = SignedElement("in_data", static_cast<int>(i), xf, &xsw);
        sum += (sum.empty() ? "" : " + ") + xe + " * " + SignedLiteral(wraw, aw);
        ++multipliers;
      };
      if (is_scale) {
        term(o, w[o]);
      } else {
        for (std::int64_t i = 0; i < n_in; ++i) term(i, w[o * n_in + i]);
      }
      cs[o] = sum.empty() ? SignedLiteral(0, aw) : sum;
    }
  } else {
    for (std::int64_t j = 0; j < lanes; ++j) {
      s += "  reg signed [" + Str(SignedWidth(xf) - 1) + ":0] xl" + Str(j) + ";\n";
      for (std::int64_t o = 0; o < n_out; ++o) s += "  reg signed [" + Str(wsw - 1) + ":0] wl" + Str(o) + "_" + Str(j) + ";\n";
    }
    s += "  always @* begin\n    case (cnt)\n";
    for (int c = 0; c < r; ++c) {
      s += "      " + Str(cw) + "'d" + Str(c) + ": begin\n";
      for (std::int64_t j = 0; j < lanes; ++j) {
        const std::int64_t i = c * lanes + j;
        if (i < n_in) {
          s += "        xl" + Str(j) + " = " + SignedElement("x", static_cast<int>(i), xf, &xsw) + ";\n";
        } else {
          s += "        xl" + Str(j) + " = " + SignedLiteral(0, SignedWidth(xf)) + ";\n";
        }
        for (std::int64_t o = 0; o < n_out; ++o) {
          s += "        wl" + Str(o) + "_" + Str(j) + " = " + SignedLiteral(i < n_in ? w[o * n_in + i] : 0, wsw) + ";\n";
        }
      }
      s += "      end\n";
    }
    s += "      default: begin\n";
    for (std::int64_t j = 0; j < lanes; ++j) {
      s += "        xl" + Str(j) + " = " + SignedLiteral(0, SignedWidth(xf)) + ";\n";
      for (std::int64_t o = 0; o < n_out; ++o) s += "        wl" + Str(o) + "_" + Str(j) + " = " + SignedLiteral(0, wsw) + ";\n";
    }
    s += "      end\n    endcase\n  end\n";
    for (std::int64_t o = 0; o < n_out; ++o) {
      std::string sum;
      for (std::int64_t j = 0; j < lanes; ++j) sum += (j ? " + " : "") + std::string("xl") + Str(j) + " * wl" + Str(o) + "_" + Str(j);
      cs[o] = sum;
      multipliers += lanes;
    }
  }
  for (std::int64_t o = 0; o < n_out; ++o) {
    s += "  wire signed [" + Str(aw - 1) + ":0] cs" + Str(o) + " = " + cs[o] + ";\n";
  }
  if (r == 1) {
    s += "  always @(posedge clk) begin\n    if (rst) ov <= 1'b0;\n    else if (en) begin\n";
    s += "      ov <= in_valid;\n      otag <= in_tag;\n";
    for (std::int64_t o = 0; o < n_out; ++o) {
      s += "      od[" + Str(o * rf.width) + " +: " + Str(rf.width) + "] <= rq(" +
           SignedLiteral(static_cast<Wide>(b[o]) << bias_shift, aw) + " + cs" + Str(o) + ");\n";
    }
    s += "    end\n  end\nendmodule\n\n";
    out.multipliers = multipliers;
    return out;
  }
  s += SequencerStart(cw);
  for (std::int64_t o = 0; o < n_out; ++o) s += "        acc" + Str(o) + " <= acc" + Str(o) + " + cs" + Str(o) + ";\n";
  s += "      end\n";
  s += "      if (fire) begin\n        ov <= 1'b1;\n        otag <= tag;\n        busy <= 1'b0;\n";
  for (std::int64_t o = 0; o < n_out; ++o) {
    s += "        od[" + Str(o * rf.width) + " +: " + Str(rf.width) + "] <= rq(acc" + Str(o) + " + cs" + Str(o) + ");\n";
  }
  s += "      end\n";
  s += SequencerAccept(cw);
  for (std::int64_t o = 0; o < n_out; ++o) {
    s += "        acc" + Str(o) + " <= " + SignedLiteral(static_cast<Wide>(b[o]) << bias_shift, aw) + ";\n";
  }
  s += "      end\n    end\n  end\nendmodule\n\n";
  out.multipliers = multipliers;
  return out;
}

}  // namespace fpgaserve::hw
