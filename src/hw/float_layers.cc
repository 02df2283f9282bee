// Float layers (float_layers.h). Every float layer module runs one inference at a time on a fixed
// schedule: the input vector is latched (and converted to the layer's format by conversion units
// if it arrives in another one), then a cycle counter `cyc` drives constant tables (weights,
// biases, operand selects) into pipelined float units, and results are captured into the output
// register at the cycles the schedule computes from the units' latencies. docs/hardware.md
// ("Float datapaths") describes the schedules.
#include "hw/float_layers.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>

#include "hw/float_pipeline.h"
#include "hw/float_units.h"
#include "hw/verilog_text.h"
#include "numeric/float_format.h"
#include "numeric/float_functions.h"

namespace fpgaserve::hw {
namespace {

using model::ActivationKind;
using numeric::FloatFormat;
using numeric::NumberFormat;
namespace nm = numeric;

std::string Str(std::int64_t v) { return std::to_string(v); }

std::string Hex(int width, std::uint64_t v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%d'h%llx", width, static_cast<unsigned long long>(v));
  return buf;
}

// The pieces of one scheduled layer module.
struct Schedule {
  std::string body;   // declarations, unit instances, combinational tables
  std::map<int, std::string> captures;  // cyc -> statements executed at that edge
  int last = 0;       // the cyc of the last capture
};

// Instantiates a unit emitted with `emit`, named <layer>_<suffix>, adding its module once.
class UnitSet {
 public:
  explicit UnitSet(std::string prefix) : prefix_(std::move(prefix)) {}
  // Returns the unit (module added to the text on first use of `key`).
  Result<FloatUnit> Get(const std::string& key, const std::function<Result<FloatUnit>(const std::string&)>& emit) {
    auto it = units_.find(key);
    if (it != units_.end()) return it->second;
    auto u = emit(prefix_ + "_" + key);
    if (!u.ok()) return u.status();
    units_[key] = *u;
    files_.emplace_back(u->module + ".v", u->text);
    return *u;
  }
  const std::vector<std::pair<std::string, std::string>>& files() const { return files_; }

 private:
  std::string prefix_;
  std::map<std::string, FloatUnit> units_;
  std::vector<std::pair<std::string, std::string>> files_;
};

// Maximum pipelining for every unit (the highest Fmax).
Result<FloatUnit> Mul(UnitSet& u, const FloatFormat& f) {
  return u.Get("fmul", [&](const std::string& m) { return EmitFloatMul(m, f, FloatMulMaxStages()); });
}
Result<FloatUnit> Add(UnitSet& u, const FloatFormat& f) {
  return u.Get("fadd", [&](const std::string& m) { return EmitFloatAdd(m, f, FloatAddMaxStages()); });
}
Result<FloatUnit> Sub(UnitSet& u, const FloatFormat& f) {
  return u.Get("fsub", [&](const std::string& m) { return EmitFloatAdd(m, f, FloatAddMaxStages(), true); });
}
Result<FloatUnit> Div(UnitSet& u, const FloatFormat& f) {
  return u.Get("fdiv", [&](const std::string& m) { return EmitFloatDiv(m, f, FloatDivMaxStages(f)); });
}
Result<FloatUnit> Exp(UnitSet& u, const FloatFormat& f) {
  return u.Get("fexp", [&](const std::string& m) { return EmitFloatExp(m, f, FloatExpMaxStages(f)); });
}
Result<FloatUnit> Cvt(UnitSet& u, const std::string& key, const NumberFormat& from, const NumberFormat& to) {
  return u.Get(key, [&](const std::string& m) {
    return EmitNumberConvert(m, from, to, NumberConvertMaxStages(from, to));
  });
}

// "u(.clk(clk), .en(1'b1), .a(A), .b(B), .y(Y));"
std::string Inst(const FloatUnit& u, const std::string& name, const std::string& a, const std::string& b,
                 const std::string& y) {
  return "  " + u.module + " " + name + " (.clk(clk), .en(1'b1), .a(" + a + ")" +
         (u.operands == 2 ? ", .b(" + b + ")" : std::string()) + ", .y(" + y + "));\n";
}

// Converts every latched input element `x[k]` into `to`, as the emulator does before a float
// layer's arithmetic: a fixed input first becomes the layer's result format (IntoLayerFamily),
// then (if different) `to`. Declares wires xc<k> of to's width; returns the latency.
Result<int> ConvertInputs(UnitSet& units, const LayerContext& ctx, const NumberFormat& to, int n, Schedule& s) {
  const NumberFormat& result = ctx.precision.result;
  const int wi = ctx.in.width(), wt = to.width();
  std::vector<std::pair<NumberFormat, NumberFormat>> steps;
  NumberFormat xf = ctx.in;
  if (ctx.in.is_fixed()) {
    steps.emplace_back(ctx.in, result);
    xf = result;
  }
  if (!(xf == to)) steps.emplace_back(xf, to);
  int latency = 0;
  std::vector<FloatUnit> chain;
  for (std::size_t k = 0; k < steps.size(); ++k) {
    auto u = Cvt(units, "cvt_in" + Str(static_cast<std::int64_t>(k)), steps[k].first, steps[k].second);
    if (!u.ok()) return u.status();
    chain.push_back(*u);
    latency += u->latency;
  }
  for (int k = 0; k < n; ++k) {
    std::string cur = "x[" + Str(std::int64_t{k} * wi) + " +: " + Str(wi) + "]";
    for (std::size_t j = 0; j < chain.size(); ++j) {
      const std::string y = "xc" + Str(k) + (j + 1 == chain.size() ? "" : "_" + Str(static_cast<std::int64_t>(j)));
      s.body += "  wire [" + Str(chain[j].out_width - 1) + ":0] " + y + ";\n";
      s.body += Inst(chain[j], "cvt" + Str(k) + "_" + Str(static_cast<std::int64_t>(j)), cur, "", y);
      cur = y;
    }
    if (chain.empty()) s.body += "  wire [" + Str(wt - 1) + ":0] xc" + Str(k) + " = " + cur + ";\n";
  }
  return latency;
}

// The module around a schedule: ports, the latch, the run counter and the captures.
std::string Assemble(const LayerContext& ctx, const std::string& note, const Schedule& s) {
  const std::string XW = Str(std::int64_t{ctx.n_in} * ctx.in.width());
  const std::string OW = Str(std::int64_t{ctx.n_out} * ctx.precision.result.width());
  const int cw = fp::BitsFor(s.last + 1);
  std::string t = "// layer '" + ctx.layer->name + "' (" + ctx.layer->OpName() + ") in " + ctx.precision.result.ToString() +
       note + "\n";
  t += "module " + ctx.module + " (\n"
       "  input clk, input rst,\n"
       "  input in_valid, output in_ready, input [" + XW + "-1:0] in_data, input [" + kTagRange + "] in_tag,\n"
       "  output out_valid, input out_ready, output [" + OW + "-1:0] out_data, output [" + kTagRange + "] out_tag\n"
       ");\n";
  t += "  reg busy, done;\n  reg [" + Str(cw - 1) + ":0] cyc;\n  reg [" + XW + "-1:0] x;\n";
  t += "  reg [" + kTagRange + "] tag;\n  reg [" + OW + "-1:0] res;\n";
  t += "  // One inference at a time; the next is accepted as the finished one leaves.\n";
  t += "  assign in_ready = !busy && (!done || out_ready);\n";
  t += "  assign out_valid = done;\n  assign out_data = res;\n  assign out_tag = tag;\n";
  t += s.body;
  t += "  always @(posedge clk) begin\n    if (rst) begin\n      busy <= 1'b0;\n      done <= 1'b0;\n"
       "      cyc <= " + Str(cw) + "'d0;\n    end else begin\n";
  t += "      if (done && out_ready) done <= 1'b0;\n";
  t += "      if (in_valid && in_ready) begin\n        x <= in_data;\n        tag <= in_tag;\n"
       "        busy <= 1'b1;\n        cyc <= " + Str(cw) + "'d0;\n      end else if (busy) begin\n"
       "        cyc <= cyc + " + Str(cw) + "'d1;\n";
  t += "        if (cyc == " + Str(cw) + "'d" + Str(s.last) + ") begin\n          busy <= 1'b0;\n"
       "          done <= 1'b1;\n        end\n";
  t += "        case (cyc)\n";
  for (const auto& [at, stmts] : s.captures) {
    t += "          " + Str(cw) + "'d" + Str(at) + ": begin\n" + stmts + "          end\n";
  }
  t += "          default: ;\n        endcase\n      end\n    end\n  end\nendmodule\n\n";
  return t;
}

// A combinational table: `reg [w-1:0] name;` set by cyc (default 0).
std::string Table(const std::string& name, int width, int cw, const std::map<int, std::string>& entries) {
  std::string t = "  reg [" + Str(width - 1) + ":0] " + name + ";\n  always @* begin\n    case (cyc)\n";
  for (const auto& [at, v] : entries) t += "      " + Str(cw) + "'d" + Str(at) + ": " + name + " = " + v + ";\n";
  t += "      default: " + name + " = " + Str(width) + "'d0;\n    endcase\n  end\n";
  return t;
}

// `function gt(a, b)`: numeric::FloatCompare(a, b, f) == 1 (a > b; NaNs unordered, -0 == +0).
std::string GtFunction(const FloatFormat& f) {
  const std::string w1 = Str(f.width() - 1), w2 = Str(f.width() - 2), m = Str(f.mantissa_bits),
                    m1 = Str(f.mantissa_bits - 1);
  return "  function automatic gt(input [" + w1 + ":0] a, input [" + w1 + ":0] b);\n"
         "    reg an, bn, az, bz;\n    begin\n"
         "      an = (&a[" + w2 + ":" + m + "]) && (|a[" + m1 + ":0]);\n"
         "      bn = (&b[" + w2 + ":" + m + "]) && (|b[" + m1 + ":0]);\n"
         "      az = !(|a[" + w2 + ":0]);\n      bz = !(|b[" + w2 + ":0]);\n"
         "      if (an || bn || (az && bz)) gt = 1'b0;\n"
         "      else if (a[" + w1 + "] != b[" + w1 + "]) gt = !a[" + w1 + "];\n"
         "      else if (!a[" + w1 + "]) gt = a[" + w2 + ":0] > b[" + w2 + ":0];\n"
         "      else gt = a[" + w2 + ":0] < b[" + w2 + ":0];\n"
         "    end\n  endfunction\n";
}

// `out` = `in` delayed by `depth` clock cycles (a shift register; depth 0 is a wire).
std::string DelayLine(const std::string& out, const std::string& in, int width, int depth) {
  const std::string w = Str(width - 1);
  if (depth == 0) return "  wire [" + w + ":0] " + out + " = " + in + ";\n";
  std::string t = "  reg [" + w + ":0] " + out + "_q [0:" + Str(depth - 1) + "];\n";
  if (depth > 1) t += "  integer " + out + "_i;\n";
  t += "  always @(posedge clk) begin\n    " + out + "_q[0] <= " + in + ";\n";
  if (depth > 1) {
    t += "    for (" + out + "_i = 1; " + out + "_i < " + Str(depth) + "; " + out + "_i = " + out + "_i + 1) " + out +
         "_q[" + out + "_i] <= " + out + "_q[" + out + "_i - 1];\n";
  }
  t += "  end\n  wire [" + w + ":0] " + out + " = " + out + "_q[" + Str(depth - 1) + "];\n";
  return t;
}

}  // namespace

Result<EmittedLayer> EmitFloatAffineLayer(const LayerContext& ctx) {
  const model::Layer& layer = *ctx.layer;
  const bool is_scale = layer.kind == model::LayerKind::kScale;
  const std::string who = "layer '" + layer.name + "' (" + layer.OpName() + ")";
  const auto& p = ctx.precision;
  if (!p.accum.is_float() || !p.weight.is_float() || !p.bias.is_float() || !p.result.is_float()) {
    return InvalidArgument(who + ": a float layer needs float weight, bias, accumulator and result formats");
  }
  const FloatFormat& af = p.accum.floating();
  const int aw = af.width(), rw = p.result.width();
  UnitSet units(ctx.module);
  Schedule s;

  // Parameters exactly as the emulator holds them: rounded into weight/bias, then into accum.
  std::vector<std::uint64_t> w, b;
  const auto& wv = is_scale ? layer.scale().scale : layer.dense().weights;
  const auto& bv = is_scale ? layer.scale().shift : layer.dense().bias;
  for (double v : wv) w.push_back(static_cast<std::uint64_t>(nm::Convert(nm::FromDouble(v, p.weight).raw, p.weight, p.accum).raw));
  for (double v : bv) b.push_back(static_cast<std::uint64_t>(nm::Convert(nm::FromDouble(v, p.bias).raw, p.bias, p.accum).raw));

  const std::int64_t n_out = ctx.n_out, n_in = is_scale ? 1 : ctx.n_in;
  auto lx = ConvertInputs(units, ctx, p.accum, ctx.n_in, s);
  if (!lx.ok()) return lx.status().WithContext(who);
  auto mul = Mul(units, af);
  auto add = Add(units, af);
  if (!mul.ok()) return mul.status().WithContext(who);
  if (!add.ok()) return add.status().WithContext(who);
  const int lm = mul->latency, la = add->latency;
  FloatUnit out_cvt;
  const bool convert_out = !(p.accum == p.result);
  if (convert_out) {
    auto c = Cvt(units, "cvt_out", p.accum, p.result);
    if (!c.ok()) return c.status().WithContext(who);
    out_cvt = *c;
  }
  const int lr = convert_out ? out_cvt.latency : 0;

  // Lanes: each has one multiplier and one adder and computes neurons p, p + P, p + 2P, ... one
  // after another; G = adder latency neurons are interleaved so that a neuron's running sum comes
  // back from the adder exactly when its next product is ready (the sum order stays i = 0, 1, ...).
  // Reuse R asks for about R / n_in neurons per lane; a lane never does fewer than n_in products,
  // so the effective reuse is at least n_in (the accumulation is sequential, as in the emulator).
  const std::int64_t per_lane = std::max<std::int64_t>(1, std::max(1, ctx.reuse) / n_in);
  const std::int64_t lanes = is_scale ? n_out : (n_out + per_lane - 1) / per_lane;
  const std::int64_t slots = (n_out + lanes - 1) / lanes;  // neurons per lane
  const int g = std::max(1, la);
  const std::int64_t groups = (slots + g - 1) / g;
  const std::int64_t items = groups * n_in * g;  // multiply issues per lane
  const int t0 = *lx;                            // first multiply issue
  const int last = static_cast<int>(t0 + items - 1 + lm + la + lr);
  const int cw = fp::BitsFor(last + 1);
  s.last = last;

  // Tables keyed by cyc: operand selects and constants.
  auto neuron = [&](std::int64_t lane, std::int64_t grp, std::int64_t j) { return (grp * g + j) * lanes + lane; };
  std::map<int, std::string> xsel_shared, first;
  std::vector<std::map<int, std::string>> xsel(static_cast<std::size_t>(lanes)), wsel(static_cast<std::size_t>(lanes)),
      bsel(static_cast<std::size_t>(lanes));
  for (std::int64_t c = 0; c < items; ++c) {
    const std::int64_t grp = c / (n_in * g), i = (c / g) % n_in, j = c % g;
    const int issue = static_cast<int>(t0 + c), add_at = issue + lm;
    if (!is_scale) xsel_shared[issue] = "xc" + Str(i);
    if (i == 0) first[add_at] = "1'b1";
    for (std::int64_t l = 0; l < lanes; ++l) {
      const std::int64_t o = neuron(l, grp, j);
      if (o >= n_out) continue;
      const auto lu = static_cast<std::size_t>(l);
      if (is_scale) xsel[lu][issue] = "xc" + Str(o);
      wsel[lu][issue] = Hex(aw, w[static_cast<std::size_t>(o * n_in + i)]);
      if (i == 0) bsel[lu][add_at] = Hex(aw, b[static_cast<std::size_t>(o)]);
      if (i == n_in - 1) {
        const int at = add_at + la + lr;
        s.captures[at] += "            res[" + Str(o * rw) + " +: " + Str(rw) + "] <= r" + Str(l) + ";\n";
      }
    }
  }
  if (!is_scale) s.body += Table("xs", aw, cw, xsel_shared);
  s.body += Table("first", 1, cw, first);
  for (std::int64_t l = 0; l < lanes; ++l) {
    const std::string L = Str(l);
    const auto lu = static_cast<std::size_t>(l);
    if (is_scale) s.body += Table("xs" + L, aw, cw, xsel[lu]);
    s.body += Table("w" + L, aw, cw, wsel[lu]);
    s.body += Table("b" + L, aw, cw, bsel[lu]);
    s.body += "  wire [" + Str(aw - 1) + ":0] prod" + L + ", acc" + L + ";\n";
    s.body += Inst(*mul, "mul" + L, is_scale ? "xs" + L : "xs", "w" + L, "prod" + L);
    s.body += Inst(*add, "add" + L, "first ? b" + L + " : acc" + L, "prod" + L, "acc" + L);
    if (convert_out) {
      s.body += "  wire [" + Str(rw - 1) + ":0] r" + L + ";\n";
      s.body += Inst(out_cvt, "cvt_out" + L, "acc" + L, "", "r" + L);
    } else {
      s.body += "  wire [" + Str(rw - 1) + ":0] r" + L + " = acc" + L + ";\n";
    }
  }
  EmittedLayer out;
  out.text = Assemble(ctx, ", " + Str(lanes) + " lane(s) of multiply-add, " + Str(g) + " neurons interleaved", s);
  out.latency = last + 2;
  out.initiation_interval = last + 2;
  out.reuse = static_cast<int>(std::min<std::int64_t>(items, std::numeric_limits<int>::max()));
  out.multipliers = lanes;
  out.unit_files = units.files();
  return out;
}

Result<EmittedLayer> EmitFloatActivationLayer(const LayerContext& ctx) {
  const model::Layer& layer = *ctx.layer;
  const std::string who = "layer '" + layer.name + "' (" + layer.OpName() + ")";
  const auto& p = ctx.precision;
  if (!p.result.is_float()) return InvalidArgument(who + ": a float layer needs a float result format");
  const FloatFormat& rf = p.result.floating();
  const int rw = rf.width();
  const int n = ctx.n_out;
  const auto kind = layer.activation().kind;
  UnitSet units(ctx.module);
  Schedule s;
  const std::string zero = Hex(rw, 0);
  const std::string one = Hex(rw, nm::FloatFromDouble(1.0, rf));
  const std::string nan = fp::NaNLiteral(rf);
  auto is_nan = [&](const std::string& v) {
    return "((&" + v + "[" + Str(rw - 2) + ":" + Str(rf.mantissa_bits) + "]) && (|" + v + "[" +
           Str(rf.mantissa_bits - 1) + ":0]))";
  };
  std::string note;

  if (kind == ActivationKind::kSoftmax && ctx.softmax == nm::SoftmaxMode::kArgmax) {
    // One-hot of the largest input (FloatCompare > on the inputs in their family format; ties and
    // NaNs keep the earlier index), as the emulator's argmax mode.
    NumberFormat xf = ctx.in.is_fixed() ? p.result : ctx.in;
    auto lx = ConvertInputs(units, ctx, xf, n, s);
    if (!lx.ok()) return lx.status().WithContext(who);
    const FloatFormat& f = xf.floating();
    const int w = f.width();
    s.body += GtFunction(f);
    // best_k: index of the maximum of xc0..xck, scanning upward.
    const int iw = fp::BitsFor(n);
    s.body += "  wire [" + Str(iw - 1) + ":0] best0 = " + Str(iw) + "'d0;\n  wire [" + Str(w - 1) + ":0] max0 = xc0;\n";
    for (int k = 1; k < n; ++k) {
      const std::string K = Str(k), P = Str(k - 1);
      s.body += "  wire take" + K + " = gt(xc" + K + ", max" + P + ");\n";
      s.body += "  wire [" + Str(iw - 1) + ":0] best" + K + " = take" + K + " ? " + Str(iw) + "'d" + K + " : best" + P + ";\n";
      if (k + 1 < n) s.body += "  wire [" + Str(w - 1) + ":0] max" + K + " = take" + K + " ? xc" + K + " : max" + P + ";\n";
    }
    for (int k = 0; k < n; ++k) {
      s.captures[*lx] += "            res[" + Str(std::int64_t{k} * rw) + " +: " + Str(rw) + "] <= (best" + Str(n - 1) +
                         " == " + Str(iw) + "'d" + Str(k) + ") ? " + one + " : " + zero + ";\n";
    }
    s.last = *lx;
    note = ", argmax: one-hot of the largest input";
  } else if (kind == ActivationKind::kSoftmax) {
    // max (sequential compare), e_i = exp(x_i - max) streamed, s = sum in order, p_i = e_i / s.
    auto lx = ConvertInputs(units, ctx, p.result, n, s);
    if (!lx.ok()) return lx.status().WithContext(who);
    auto sub = Sub(units, rf);
    auto add = Add(units, rf);
    auto ex = Exp(units, rf);
    auto dv = Div(units, rf);
    for (auto* u : {&sub, &add, &ex, &dv}) {
      if (!u->ok()) return u->status().WithContext(who);
    }
    const int w = rw;
    s.body += GtFunction(rf);
    // m = x0; m = (isnan(x_k) || x_k > m) ? x_k : m, k = 1..n-1 (the emulator's scan).
    s.body += "  wire [" + Str(w - 1) + ":0] max0 = xc0;\n";
    for (int k = 1; k < n; ++k) {
      const std::string K = Str(k), P = Str(k - 1);
      s.body += "  wire [" + Str(w - 1) + ":0] max" + K + " = (" + is_nan("xc" + K) + " || gt(xc" + K + ", max" + P +
                ")) ? xc" + K + " : max" + P + ";\n";
    }
    s.body += "  reg [" + Str(w - 1) + ":0] mx, sum;\n  reg [" + Str(std::int64_t{n} * w) + "-1:0] e;\n";
    const int t_max = *lx;            // max valid; registered at this edge
    const int t_sub = t_max + 1;      // first subtraction issue
    const int ls = sub->latency, le = ex->latency, la = add->latency, ld = dv->latency;
    s.captures[t_max] += "            mx <= max" + Str(n - 1) + ";\n";
    const int t_e = t_sub + ls + le;  // e_0 captured at this edge
    const int t_sum = t_e + n;        // first add issue (all e captured)
    const int t_div = t_sum + n * la + 1;  // sum registered at t_sum + n*la; first divide
    s.last = t_div + n - 1 + ld;
    const int cw = fp::BitsFor(s.last + 1);
    std::map<int, std::string> dsel, esel, first, qsel;
    for (int k = 0; k < n; ++k) {
      dsel[t_sub + k] = "xc" + Str(k);
      s.captures[t_e + k] += "            e[" + Str(std::int64_t{k} * w) + " +: " + Str(w) + "] <= ex_y;\n";
      esel[t_sum + k * la] = "e[" + Str(std::int64_t{k} * w) + " +: " + Str(w) + "]";
      if (k == 0) first[t_sum] = "1'b1";
      qsel[t_div + k] = "e[" + Str(std::int64_t{k} * w) + " +: " + Str(w) + "]";
      s.captures[t_div + k + ld] += "            res[" + Str(std::int64_t{k} * w) + " +: " + Str(w) + "] <= dv_y;\n";
    }
    s.captures[t_sum + n * la] += "            sum <= add_y;\n";
    s.body += Table("sub_a", w, cw, dsel);
    s.body += Table("add_b", w, cw, esel);
    s.body += Table("div_a", w, cw, qsel);
    s.body += Table("first", 1, cw, first);
    s.body += "  wire [" + Str(w - 1) + ":0] sub_y, ex_y, add_y, dv_y;\n";
    s.body += Inst(*sub, "sub0", "sub_a", "mx", "sub_y");
    s.body += Inst(*ex, "exp0", "sub_y", "", "ex_y");
    s.body += Inst(*add, "add0", "first ? " + zero + " : add_y", "add_b", "add_y");
    s.body += Inst(*dv, "div0", "div_a", "sum", "dv_y");
    note = ", softmax: max, exp(x - max) streamed, sum in order, divide";
  } else if (kind == ActivationKind::kLinear || kind == ActivationKind::kReLU) {
    auto lx = ConvertInputs(units, ctx, p.result, n, s);
    if (!lx.ok()) return lx.status().WithContext(who);
    for (int k = 0; k < n; ++k) {
      const std::string v = "xc" + Str(k);
      const std::string y = kind == ActivationKind::kLinear
                                ? v
                                : "((!" + is_nan(v) + " && " + v + "[" + Str(rw - 1) + "]) ? " + zero + " : " + v + ")";
      s.captures[*lx] += "            res[" + Str(std::int64_t{k} * rw) + " +: " + Str(rw) + "] <= " + y + ";\n";
    }
    s.last = *lx;
    note = kind == ActivationKind::kReLU ? ", ReLU: negative (and -0) to +0, NaN kept" : "";
  } else {
    // Streamed elementwise functions: element k enters the unit chain at cyc t0 + k.
    auto lx = ConvertInputs(units, ctx, p.result, n, s);
    if (!lx.ok()) return lx.status().WithContext(who);
    const int t0 = *lx;
    int lat = 0;
    std::string y;
    std::map<int, std::string> xsel;
    for (int k = 0; k < n; ++k) xsel[t0 + k] = "xc" + Str(k);
    if (kind == ActivationKind::kSigmoid) {
      // 1 / (1 + exp(-x)), each step rounded in the format.
      auto ex = Exp(units, rf);
      auto add = Add(units, rf);
      auto dv = Div(units, rf);
      for (auto* u : {&ex, &add, &dv}) {
        if (!u->ok()) return u->status().WithContext(who);
      }
      lat = ex->latency + add->latency + dv->latency;
      const int cw = fp::BitsFor(t0 + n - 1 + lat + 1);
      s.body += Table("xs", rw, cw, xsel);
      s.body += "  wire [" + Str(rw - 1) + ":0] e_y, s_y, q_y;\n";
      s.body += Inst(*ex, "exp0", "{~xs[" + Str(rw - 1) + "], xs[" + Str(rw - 2) + ":0]}", "", "e_y");
      s.body += Inst(*add, "add0", one, "e_y", "s_y");
      s.body += Inst(*dv, "div0", one, "s_y", "q_y");
      y = "q_y";
      note = ", sigmoid: 1 / (1 + exp(-x)) streamed";
    } else if (kind == ActivationKind::kLeakyReLU) {
      auto mul = Mul(units, rf);
      if (!mul.ok()) return mul.status().WithContext(who);
      const auto alpha = nm::Convert(nm::FromDouble(layer.activation().alpha, p.weight).raw, p.weight, p.result).raw;
      lat = mul->latency;
      const int cw = fp::BitsFor(t0 + n - 1 + lat + 1);
      s.body += Table("xs", rw, cw, xsel);
      // The input travels beside the multiplier for the select.
      s.body += "  wire [" + Str(rw - 1) + ":0] m_y;\n";
      s.body += Inst(*mul, "mul0", "xs", Hex(rw, static_cast<std::uint64_t>(alpha)), "m_y");
      s.body += DelayLine("xd", "xs", rw, lat);
      s.body += "  wire [" + Str(rw - 1) + ":0] lk_y = (!" + is_nan("xd") + " && xd[" + Str(rw - 1) + "]) ? m_y : xd;\n";
      y = "lk_y";
      note = ", LeakyReLU: x < 0 ? alpha * x : x streamed";
    } else if (kind == ActivationKind::kTanh) {
      // Both of FloatTanh's paths run side by side and the result is selected at the end:
      //   |x| < 1/2: x * P(x^2), P by Horner (each multiply and add rounded);
      //   otherwise: sign(x) * (1 - 2 / (exp(2|x|) + 1)).
      auto mul = Mul(units, rf);
      auto add = Add(units, rf);
      auto sub = Sub(units, rf);
      auto ex = Exp(units, rf);
      auto dv = Div(units, rf);
      for (auto* u : {&mul, &add, &sub, &ex, &dv}) {
        if (!u->ok()) return u->status().WithContext(who);
      }
      const int lm = mul->latency, la = add->latency;
      const int count = nm::TanhSeriesTerms(rf);
      const std::vector<double> coeffs = nm::TanhSeriesCoefficients(count + 8);
      auto coef = [&](int i) { return Hex(rw, nm::FloatFromDouble(coeffs[static_cast<std::size_t>(i)], rf)); };
      const int small = lm + (count - 1) * (lm + la) + lm;
      const int big = lm + ex->latency + la + dv->latency + sub->latency;
      lat = std::max(small, big);
      const int cw = fp::BitsFor(t0 + n - 1 + lat + 1);
      s.body += Table("xs", rw, cw, xsel);
      const std::string W = Str(rw - 1);
      // small path
      s.body += "  wire [" + W + ":0] z;\n" + Inst(*mul, "mz", "xs", "xs", "z");
      std::string prev = coef(count - 1);
      for (int k = 1; k <= count - 1; ++k) {
        const std::string K = Str(k);
        s.body += DelayLine("zd" + K, "z", rw, (k - 1) * (lm + la));
        s.body += "  wire [" + W + ":0] hm" + K + ", hp" + K + ";\n";
        s.body += Inst(*mul, "hmul" + K, prev, "zd" + K, "hm" + K);
        s.body += Inst(*add, "hadd" + K, "hm" + K, coef(count - 1 - k), "hp" + K);
        prev = "hp" + K;
      }
      s.body += DelayLine("xsm", "xs", rw, lm + (count - 1) * (lm + la));
      s.body += "  wire [" + W + ":0] small_y;\n" + Inst(*mul, "mx", "xsm", prev, "small_y");
      // large path on |x|
      s.body += "  wire [" + W + ":0] ax = {1'b0, xs[" + Str(rw - 2) + ":0]};\n";
      s.body += "  wire [" + W + ":0] ax2, te, ts, tq, tt;\n";
      s.body += Inst(*mul, "m2", "ax", Hex(rw, nm::FloatFromDouble(2.0, rf)), "ax2");
      s.body += Inst(*ex, "exp0", "ax2", "", "te");
      s.body += Inst(*add, "add1", "te", one, "ts");
      s.body += Inst(*dv, "div0", Hex(rw, nm::FloatFromDouble(2.0, rf)), "ts", "tq");
      s.body += Inst(*sub, "sub0", one, "tq", "tt");
      // align and select
      s.body += DelayLine("small_al", "small_y", rw, lat - small);
      s.body += DelayLine("big_al", "tt", rw, lat - big);
      s.body += DelayLine("xo", "xs", rw, lat);
      s.body += "  wire use_small = {1'b0, xo[" + Str(rw - 2) + ":0]} < " + Hex(rw, nm::FloatFromDouble(0.5, rf)) + ";\n";
      s.body += "  wire [" + W + ":0] th_y = " + is_nan("xo") + " ? " + nan + " : use_small ? small_al : {xo[" + W +
                "] ^ big_al[" + W + "], big_al[" + Str(rw - 2) + ":0]};\n";
      y = "th_y";
      note = ", tanh: series below 1/2 and 1 - 2/(exp(2|x|) + 1) above, both streamed";
    } else {
      return Unimplemented(who + ": " + layer.OpName() + " in a float format is not generated in hardware yet "
                           "(float Dense, Scale and every activation of the emulator are)");
    }
    for (int k = 0; k < n; ++k) {
      s.captures[t0 + k + lat] += "            res[" + Str(std::int64_t{k} * rw) + " +: " + Str(rw) + "] <= " + y + ";\n";
    }
    s.last = t0 + n - 1 + lat;
  }
  EmittedLayer out;
  out.text = Assemble(ctx, note, s);
  out.latency = s.last + 2;
  out.initiation_interval = s.last + 2;
  out.unit_files = units.files();
  return out;
}

}  // namespace fpgaserve::hw
