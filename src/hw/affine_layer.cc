// Dense and Scale layers: an accumulate-then-requantize datapath that processes ceil(n_in/R)
// inputs per cycle for R cycles (R = 1: every product at once, constant multipliers).
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

}  // namespace

Result<EmittedLayer> EmitAffineLayer(const LayerContext& ctx) {
  const model::Layer& layer = *ctx.layer;
  const FixedFormat& xf = ctx.in;
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
  const int r = is_scale ? 1 : ctx.reuse;
  const std::int64_t lanes = is_scale ? n_out : (n_in + r - 1) / r;
  const int cw = BitsFor(r);

  EmittedLayer out;
  // R = 1: the register after the multiply-accumulate; R > 1: latch the input, then R cycles.
  out.latency = r == 1 ? 1 : r + 1;
  out.initiation_interval = r;
  std::string& s = out.text;
  const std::string XW = Str(n_in * xf.width), OW = Str(n_out * rf.width);
  s += "// " + who + ": " + Str(n_in) + " -> " + Str(n_out) + ", reuse " + Str(r) + ", accum " +
       af.ToString() + ", result " + rf.ToString() + "\n";
  s += "module " + ctx.module + " (\n"
       "  input clk, input rst,\n"
       "  input in_valid, output in_ready, input [" + XW + "-1:0] in_data, input [63:0] in_tag,\n"
       "  output out_valid, input out_ready, output [" + OW + "-1:0] out_data, output [63:0] out_tag\n"
       ");\n";
  s += RequantizeFunction("rq", aw, af.fraction_bits(), rf);
  s += "  reg ov;\n  reg [" + OW + "-1:0] od;\n  reg [63:0] otag;\n";
  s += "  assign out_valid = ov;\n  assign out_data = od;\n  assign out_tag = otag;\n";
  if (r == 1) {
    // One stage: every product of the incoming vector at once, requantized into the register.
    s += "  wire en = !ov || out_ready;\n  assign in_ready = en;\n";
  } else {
    s += "  reg busy;\n  reg [" + Str(cw - 1) + ":0] cnt;\n";
    s += "  reg [" + XW + "-1:0] x;\n  reg [63:0] tag;\n";
    s += "  wire last = busy && (cnt == " + Str(cw) + "'d" + Str(r - 1) + ");\n";
    s += "  wire fire = last && (!ov || out_ready);\n";
    s += "  assign in_ready = !busy || fire;\n";
    s += "  wire accept = in_valid && in_ready;\n";
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
      for (std::int64_t o = 0; o < n_out; ++o) s += "  reg signed [" + Str(aw - 1) + ":0] wl" + Str(o) + "_" + Str(j) + ";\n";
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
          s += "        wl" + Str(o) + "_" + Str(j) + " = " + SignedLiteral(i < n_in ? w[o * n_in + i] : 0, aw) + ";\n";
        }
      }
      s += "      end\n";
    }
    s += "      default: begin\n";
    for (std::int64_t j = 0; j < lanes; ++j) {
      s += "        xl" + Str(j) + " = " + SignedLiteral(0, SignedWidth(xf)) + ";\n";
      for (std::int64_t o = 0; o < n_out; ++o) s += "        wl" + Str(o) + "_" + Str(j) + " = " + SignedLiteral(0, aw) + ";\n";
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
  s += "  always @(posedge clk) begin\n"
       "    if (rst) begin\n      busy <= 1'b0;\n      ov <= 1'b0;\n      cnt <= " + Str(cw) + "'d0;\n    end else begin\n";
  s += "      if (ov && out_ready) ov <= 1'b0;\n";
  s += "      if (busy && !last) begin\n        cnt <= cnt + " + Str(cw) + "'d1;\n";
  for (std::int64_t o = 0; o < n_out; ++o) s += "        acc" + Str(o) + " <= acc" + Str(o) + " + cs" + Str(o) + ";\n";
  s += "      end\n";
  s += "      if (fire) begin\n        ov <= 1'b1;\n        otag <= tag;\n        busy <= 1'b0;\n";
  for (std::int64_t o = 0; o < n_out; ++o) {
    s += "        od[" + Str(o * rf.width) + " +: " + Str(rf.width) + "] <= rq(acc" + Str(o) + " + cs" + Str(o) + ");\n";
  }
  s += "      end\n";
  s += "      if (accept) begin\n        busy <= 1'b1;\n        cnt <= " + Str(cw) + "'d0;\n        x <= in_data;\n        tag <= in_tag;\n";
  for (std::int64_t o = 0; o < n_out; ++o) {
    s += "        acc" + Str(o) + " <= " + SignedLiteral(static_cast<Wide>(b[o]) << bias_shift, aw) + ";\n";
  }
  s += "      end\n    end\n  end\nendmodule\n\n";
  out.multipliers = multipliers;
  return out;
}

}  // namespace fpgaserve::hw
