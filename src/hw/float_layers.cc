// Float layers (float_layers.h). Every float layer module is a modulo-scheduled pipeline: an
// inference may start every P cycles (P is the layer's II) on a grid of slots, and its schedule —
// which unit gets which operand in which cycle, and when results are captured — is fixed relative
// to its start, so constant tables indexed by the phase (cycle mod P) drive the pipelined float
// units for every inference in flight. A value an inference needs after its own slot (its inputs,
// captured intermediates) moves along a register chain that shifts once per slot. When the output
// cannot be delivered the whole layer stops (one clock enable). docs/hardware.md ("Float
// datapaths") describes the schedules.
#include "hw/float_layers.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>

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

// One layer module under construction: its period, the values that outlive their slot, the phase
// tables, captures and outputs. Times are cycles from an inference's start (the cycle after the
// edge that latched its input into `x`); phase = time mod P.
class Pipe {
 public:
  explicit Pipe(std::int64_t period) : p_(std::max<std::int64_t>(1, period)) {}
  std::int64_t period() const { return p_; }

  // `name` (a wire or register, width bits) holds an inference's value during times
  // [from, from + P) of its schedule (a register captured at the edge ending time from - 1, or
  // a unit's output fed from such values).
  void Source(const std::string& name, int width, std::int64_t from) { sources_[name] = {width, from, 0}; }

  // An expression holding `name`'s value for the inference at time t: the source itself within
  // its slot, else the chain register that many slots behind it.
  std::string Read(const std::string& name, std::int64_t t) {
    auto it = sources_.find(name);
    if (it == sources_.end() || t < it->second.from) {
      if (error_.empty()) error_ = name + " read at time " + Str(t) + " before it is valid";
      return name;
    }
    const std::int64_t m = (t - it->second.from) / p_;
    it->second.depth = std::max(it->second.depth, m);
    return m == 0 ? name : name + "_d" + Str(m);
  }

  // A combinational table `reg [width-1:0] name` selected by the phase (0 outside the entries);
  // `at` is keyed by time, and two entries in one phase must be the same expression.
  void Table(const std::string& name, int width, const std::map<std::int64_t, std::string>& at) {
    std::map<std::int64_t, std::string> by_phase;
    for (const auto& [t, v] : at) {
      auto [it, fresh] = by_phase.emplace(t % p_, v);
      if (!fresh && it->second != v && error_.empty()) {
        error_ = "table " + name + ": two operands in phase " + Str(t % p_);
      }
    }
    if (p_ == 1) {
      body += "  wire [" + Str(width - 1) + ":0] " + name + " = " +
              (by_phase.empty() ? Str(width) + "'d0" : by_phase.begin()->second) + ";\n";
      return;
    }
    const std::string P = Str(PhaseWidth()) + "'d";
    body += "  reg [" + Str(width - 1) + ":0] " + name + ";\n  always @* begin\n    case (ph)\n";
    for (const auto& [ph, v] : by_phase) body += "      " + P + Str(ph) + ": " + name + " = " + v + ";\n";
    body += "      default: " + name + " = " + Str(width) + "'d0;\n    endcase\n  end\n";
  }

  // Nonblocking statements at the edge that ends time t (every slot; only an inference's own
  // times matter). A register is written at one time per inference.
  void Capture(std::int64_t t, const std::string& stmt) { captures_[t % p_] += stmt; }

  // Output element k (width bits) is `expr` at time t.
  void Output(int k, std::int64_t t, const std::string& expr) { outputs_[k] = {t, expr}; }

  std::string body;  // declarations, unit instances, tables (the emitters append)

  // The whole module; sets `latency` (in_valid && in_ready to out_valid, as the fixed layers
  // count: push time + 2) and fails on a scheduling conflict (an internal error).
  Result<std::string> Module(const LayerContext& ctx, const std::string& note, int* latency);

 private:
  int PhaseWidth() const { return fp::BitsFor(p_ - 1); }
  struct Src {
    int width;
    std::int64_t from, depth;
  };
  std::int64_t p_;
  std::map<std::string, Src> sources_;
  std::map<std::int64_t, std::string> captures_;
  std::map<int, std::pair<std::int64_t, std::string>> outputs_;
  std::string error_;
};

Result<std::string> Pipe::Module(const LayerContext& ctx, const std::string& note, int* latency) {
  const int rw = ctx.precision.result.width();
  const std::string XW = Str(std::int64_t{ctx.n_in} * ctx.in.width());
  const std::string OW = Str(std::int64_t{ctx.n_out} * rw);
  if (static_cast<int>(outputs_.size()) != ctx.n_out) return Internal("layer '" + ctx.layer->name + "': outputs missing");
  std::int64_t push = 0;
  for (const auto& [k, o] : outputs_) push = std::max(push, o.first);
  // Outputs ready before the push time wait in registers captured when they are ready.
  std::string decl, out;
  for (const auto& [k, o] : outputs_) {
    std::string v = o.second;
    if (o.first < push) {
      const std::string r = "res" + Str(k);
      decl += "  reg [" + Str(rw - 1) + ":0] " + r + ";\n";
      Capture(o.first, "        " + r + " <= " + v + ";\n");
      Source(r, rw, o.first + 1);
      v = Read(r, push);
    }
    out += "        out_d[" + Str(std::int64_t{k} * rw) + " +: " + Str(rw) + "] <= " + v + ";\n";
  }
  Source("tag", kTagBits, 0);
  Source("v", 1, 0);
  const std::string tag = Read("tag", push), v = Read("v", push);
  if (!error_.empty()) return Internal("layer '" + ctx.layer->name + "' schedule: " + error_);
  // Chains: stage m holds the value from m slots back; each shifts at the end of its source's slot.
  // The valid bits' chain is reset (push and the in-flight count depend on it); data is not.
  std::string reset_valid;
  for (const auto& [name, s] : sources_) {
    if (s.depth == 0) continue;
    const std::string w = Str(s.width - 1);
    std::string shift;
    for (std::int64_t m = 1; m <= s.depth; ++m) {
      decl += "  reg [" + w + ":0] " + name + "_d" + Str(m) + ";\n";
      if (name == "v") reset_valid += "      v_d" + Str(m) + " <= 1'b0;\n";
      shift += "        " + name + "_d" + Str(m) + " <= " + (m == 1 ? name : name + "_d" + Str(m - 1)) + ";\n";
    }
    captures_[(s.from + p_ - 1) % p_] += shift;
  }
  const int pw = PhaseWidth();
  const std::string PW = Str(pw), last = PW + "'d" + Str(p_ - 1);
  const std::int64_t in_flight = (push + 1 + p_ - 1) / p_ + 1;
  const int cw = fp::BitsFor(in_flight);
  const std::string CW = Str(cw);
  std::string t = "// layer '" + ctx.layer->name + "' (" + ctx.layer->OpName() + ") in " +
                  ctx.precision.result.ToString() + note + "; a new inference every " + Str(p_) + " cycle(s)\n";
  t += "module " + ctx.module + " (\n"
       "  input clk, input rst,\n"
       "  input in_valid, output in_ready, input [" + XW + "-1:0] in_data, input [" + kTagRange + "] in_tag,\n"
       "  output out_valid, input out_ready, output [" + OW + "-1:0] out_data, output [" + kTagRange + "] out_tag\n"
       ");\n";
  t += "  reg [" + Str(pw - 1) + ":0] ph;\n  reg [" + Str(cw - 1) + ":0] inflight;\n";
  t += "  reg out_v;\n  reg [" + OW + "-1:0] out_d;\n  reg [" + kTagRange + "] out_t;\n";
  t += "  // Everything advances unless a result waits for the consumer; a new inference starts at a\n"
       "  // slot boundary (phase P-1), or at once when nothing is in flight.\n";
  t += "  wire en = !out_v || out_ready;\n  wire idle = inflight == " + CW + "'d0;\n";
  t += "  wire slot = idle || ph == " + last + ";\n";
  t += "  assign in_ready = en && slot;\n  wire take = in_valid && in_ready;\n";
  t += "  reg [" + XW + "-1:0] x;\n  reg [" + kTagRange + "] tag;\n  reg v;\n";
  t += "  assign out_valid = out_v;\n  assign out_data = out_d;\n  assign out_tag = out_t;\n";
  t += decl + body;
  t += "  wire push = " + v + (p_ == 1 ? "" : " && ph == " + PW + "'d" + Str(push % p_)) + ";\n";
  t += "  always @(posedge clk) begin\n    if (rst) begin\n      ph <= " + last + ";\n      inflight <= " + CW +
       "'d0;\n      out_v <= 1'b0;\n      v <= 1'b0;\n" + reset_valid + "    end else if (en) begin\n";
  t += "      if (slot) begin\n        x <= in_data;\n        tag <= in_tag;\n        v <= take;\n      end\n";
  if (p_ > 1) {
    t += "      ph <= take ? " + PW + "'d0 : idle ? " + last + " : ph == " + last + " ? " + PW + "'d0 : ph + " + PW +
         "'d1;\n";
  }
  t += "      if (take && !push) inflight <= inflight + " + CW + "'d1;\n"
       "      else if (push && !take) inflight <= inflight - " + CW + "'d1;\n";
  t += "      if (push) begin\n        out_v <= 1'b1;\n        out_t <= " + tag + ";\n" + out +
       "      end else if (out_ready) begin\n        out_v <= 1'b0;\n      end\n";
  if (p_ == 1) {
    for (const auto& [ph, stmts] : captures_) t += stmts;
  } else if (!captures_.empty()) {
    t += "      case (ph)\n";
    for (const auto& [ph, stmts] : captures_) t += "        " + PW + "'d" + Str(ph) + ": begin\n" + stmts + "        end\n";
    t += "        default: ;\n      endcase\n";
  }
  t += "    end\n  end\nendmodule\n\n";
  *latency = static_cast<int>(std::min<std::int64_t>(push + 2, std::numeric_limits<int>::max()));
  return t;
}

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

// "u(.clk(clk), .en(en), .a(A), .b(B), .y(Y));"
std::string Inst(const FloatUnit& u, const std::string& name, const std::string& a, const std::string& b,
                 const std::string& y) {
  return "  " + u.module + " " + name + " (.clk(clk), .en(en), .a(" + a + ")" +
         (u.operands == 2 ? ", .b(" + b + ")" : std::string()) + ", .y(" + y + "));\n";
}

// Converts every latched input element `x[k]` into `to`, as the emulator does before a float
// layer's arithmetic: a fixed input first becomes the layer's result format (IntoLayerFamily),
// then (if different) `to`. Declares the sources xc<k> (to's width); returns their first time.
Result<int> ConvertInputs(UnitSet& units, const LayerContext& ctx, const NumberFormat& to, int n, Pipe& s) {
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
    s.Source("xc" + Str(k), wt, latency);
  }
  return latency;
}

// The smallest spacing sp >= la for which the times o + i*sp (o < npu, i < len) fall in distinct
// phases modulo P — npu neurons' running sums, each returning from the adder (after sp - la more
// cycles in a delay line) when its next product is ready; 0 when none of la..la+P works.
std::int64_t Spacing(std::int64_t npu, std::int64_t len, std::int64_t P, std::int64_t la) {
  std::vector<char> used(static_cast<std::size_t>(P));
  for (std::int64_t sp = std::max<std::int64_t>(1, la); sp <= la + P; ++sp) {
    std::fill(used.begin(), used.end(), 0);
    bool ok = true;
    for (std::int64_t i = 0; i < len && ok; ++i) {
      for (std::int64_t o = 0; o < npu && ok; ++o) {
        char& u = used[static_cast<std::size_t>((o + i * sp) % P)];
        ok = !u;
        u = 1;
      }
    }
    if (ok) return sp;
  }
  return 0;
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

// `out` = `in` delayed by `depth` enabled clock cycles (a shift register; depth 0 is a wire).
std::string DelayLine(const std::string& out, const std::string& in, int width, std::int64_t depth) {
  const std::string w = Str(width - 1);
  if (depth == 0) return "  wire [" + w + ":0] " + out + " = " + in + ";\n";
  std::string t = "  reg [" + w + ":0] " + out + "_q [0:" + Str(depth - 1) + "];\n";
  if (depth > 1) t += "  integer " + out + "_i;\n";
  t += "  always @(posedge clk) begin\n    if (en) begin\n      " + out + "_q[0] <= " + in + ";\n";
  if (depth > 1) {
    t += "      for (" + out + "_i = 1; " + out + "_i < " + Str(depth) + "; " + out + "_i = " + out + "_i + 1) " + out +
         "_q[" + out + "_i] <= " + out + "_q[" + out + "_i - 1];\n";
  }
  t += "    end\n  end\n  wire [" + w + ":0] " + out + " = " + out + "_q[" + Str(depth - 1) + "];\n";
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

  // Parameters exactly as the emulator holds them: rounded into weight/bias, then into accum.
  std::vector<std::uint64_t> w, b;
  const auto& wv = is_scale ? layer.scale().scale : layer.dense().weights;
  const auto& bv = is_scale ? layer.scale().shift : layer.dense().bias;
  for (double v : wv) w.push_back(static_cast<std::uint64_t>(nm::Convert(nm::FromDouble(v, p.weight).raw, p.weight, p.accum).raw));
  for (double v : bv) b.push_back(static_cast<std::uint64_t>(nm::Convert(nm::FromDouble(v, p.bias).raw, p.bias, p.accum).raw));

  auto mul = Mul(units, af);
  auto add = Add(units, af);
  if (!mul.ok()) return mul.status().WithContext(who);
  if (!add.ok()) return add.status().WithContext(who);
  const std::int64_t lm = mul->latency, la = add->latency;
  FloatUnit out_cvt;
  const bool convert_out = !(p.accum == p.result);
  if (convert_out) {
    auto c = Cvt(units, "cvt_out", p.accum, p.result);
    if (!c.ok()) return c.status().WithContext(who);
    out_cvt = *c;
  }
  const std::int64_t lr = convert_out ? out_cvt.latency : 0;

  // Units: one multiplier and one adder each, in `segs` segments of `lanes` units. Unit (s, l)
  // does terms i in [s*len, (s+1)*len) of the neurons o = j*lanes + l (j < npu): per inference npu
  // neurons x len terms, one multiply issued per cycle, so P = npu * len. R >= n_in: one segment,
  // R / n_in neurons per unit; R < n_in: one neuron per unit and a neuron's sum passes through
  // ceil(n_in / R) chained units. Term (j, i) of segment s issues at t0 + s*len*sp + j + i*sp:
  // the spacing sp (>= the adder's latency) makes the phases distinct, the running sum waits
  // sp - la cycles in a delay line, and the next segment takes it up where this one ends — the
  // emulator's order acc = bias; acc = acc + x[i]*w[i], i = 0, 1, ..., n_in - 1.
  const std::int64_t n_out = ctx.n_out, n_in = is_scale ? 1 : ctx.n_in;
  const std::int64_t reuse = std::max(1, ctx.reuse);
  std::int64_t len = n_in, segs = 1, npu = 1;
  if (reuse >= n_in) {
    npu = std::clamp<std::int64_t>(reuse / n_in, 1, n_out);
  } else {
    len = reuse;
    segs = (n_in + len - 1) / len;
  }
  std::int64_t lanes = (n_out + npu - 1) / npu;
  npu = (n_out + lanes - 1) / lanes;
  const std::int64_t period = ctx.period > 0 ? ctx.period : npu * len;
  if (period < npu * len) {
    return Internal(who + ": period " + Str(period) + " is below the layer's " + Str(npu * len) + " issues per unit");
  }
  std::int64_t sp = Spacing(npu, len, period, la);
  if (sp == 0) {  // one neuron per unit always has a spacing coprime with P
    npu = 1;
    lanes = n_out;
    sp = Spacing(1, len, period, la);
  }
  Pipe s(period);
  auto lx = ConvertInputs(units, ctx, p.accum, ctx.n_in, s);
  if (!lx.ok()) return lx.status().WithContext(who);
  const std::int64_t t0 = *lx;
  auto T = [&](std::int64_t seg, std::int64_t j, std::int64_t i) { return t0 + seg * len * sp + j + i * sp; };

  for (std::int64_t seg = 0; seg < segs; ++seg) {
    const std::int64_t seg_len = std::min(len, n_in - seg * len);
    const std::string G = Str(seg);
    std::map<std::int64_t, std::string> xs, first;
    for (std::int64_t j = 0; j < npu; ++j) {
      first[T(seg, j, 0) + lm] = "1'b1";
      if (!is_scale) {
        for (std::int64_t i = 0; i < seg_len; ++i) xs[T(seg, j, i)] = s.Read("xc" + Str(seg * len + i), T(seg, j, i));
      }
    }
    if (!is_scale) s.Table("xs" + G, aw, xs);
    s.Table("first" + G, 1, first);
    for (std::int64_t l = 0; l < lanes; ++l) {
      const std::string L = Str(l), U = G + "_" + L;
      std::map<std::int64_t, std::string> ws, bs, xl;
      for (std::int64_t j = 0; j < npu; ++j) {
        const std::int64_t o = j * lanes + l;
        if (o >= n_out) continue;
        for (std::int64_t i = 0; i < seg_len; ++i) {
          ws[T(seg, j, i)] = Hex(aw, w[static_cast<std::size_t>(o * n_in + seg * len + i)]);
        }
        if (is_scale) xl[T(seg, j, 0)] = s.Read("xc" + Str(o), T(seg, j, 0));
        if (seg == 0) bs[T(seg, j, 0) + lm] = Hex(aw, b[static_cast<std::size_t>(o)]);
      }
      if (is_scale) s.Table("xs" + U, aw, xl);
      s.Table("w" + U, aw, ws);
      if (seg == 0) s.Table("b" + L, aw, bs);
      const std::string carry = seg == 0 ? "b" + L : "fb" + Str(seg - 1) + "_" + L;
      s.body += "  wire [" + Str(aw - 1) + ":0] prod" + U + ", acc" + U + ";\n";
      s.body += Inst(*mul, "mul" + U, is_scale ? "xs" + U : "xs" + G, "w" + U, "prod" + U);
      s.body += Inst(*add, "add" + U, "first" + G + " ? " + carry + " : fb" + U, "prod" + U, "acc" + U);
      s.body += DelayLine("fb" + U, "acc" + U, aw, sp - la);
      if (seg + 1 < segs) continue;
      // The last segment's sums, converted into the result format.
      if (convert_out) {
        s.body += "  wire [" + Str(rw - 1) + ":0] r" + L + ";\n";
        s.body += Inst(out_cvt, "cvt_out" + L, "acc" + U, "", "r" + L);
      } else {
        s.body += "  wire [" + Str(rw - 1) + ":0] r" + L + " = acc" + U + ";\n";
      }
      for (std::int64_t j = 0; j < npu; ++j) {
        const std::int64_t o = j * lanes + l;
        if (o < n_out) s.Output(static_cast<int>(o), T(seg, j, seg_len - 1) + lm + la + lr, "r" + L);
      }
    }
  }
  EmittedLayer out;
  const std::string note = ", " + Str(segs * lanes) + " multiply-add unit(s): " + Str(lanes) + " lane(s) x " +
                           Str(segs) + " segment(s) of " + Str(len) + " term(s), " + Str(npu) + " neuron(s) per lane";
  auto text = s.Module(ctx, note, &out.latency);
  if (!text.ok()) return text.status();
  out.text = *text;
  out.initiation_interval = static_cast<int>(period);
  out.reuse = static_cast<int>(npu * len);
  out.multipliers = segs * lanes;
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
  const std::string zero = Hex(rw, 0);
  const std::string one = Hex(rw, nm::FloatFromDouble(1.0, rf));
  const std::string nan = fp::NaNLiteral(rf);
  auto is_nan = [&](const std::string& v) {
    return "((&" + v + "[" + Str(rw - 2) + ":" + Str(rf.mantissa_bits) + "]) && (|" + v + "[" +
           Str(rf.mantissa_bits - 1) + ":0]))";
  };
  // The smallest period of each schedule; ctx.period (a larger one) when the core asks for it.
  auto period_for = [&](std::int64_t least) -> Result<std::int64_t> {
    if (ctx.period <= 0) return least;
    if (ctx.period < least) {
      return Internal(who + ": period " + Str(ctx.period) + " is below the layer's " + Str(least));
    }
    return std::int64_t{ctx.period};
  };
  std::string note;
  std::int64_t chains = 0;  // unit chains (for the resource estimate)
  std::unique_ptr<Pipe> pipe;

  if (kind == ActivationKind::kSoftmax && ctx.softmax == nm::SoftmaxMode::kArgmax) {
    // One-hot of the largest input (FloatCompare > on the inputs in their family format; ties and
    // NaNs keep the earlier index), as the emulator's argmax mode.
    ASSIGN_OR_RETURN(const std::int64_t P, period_for(1));
    pipe = std::make_unique<Pipe>(P);
    Pipe& s = *pipe;
    NumberFormat xf = ctx.in.is_fixed() ? p.result : ctx.in;
    auto lx = ConvertInputs(units, ctx, xf, n, s);
    if (!lx.ok()) return lx.status().WithContext(who);
    const FloatFormat& f = xf.floating();
    const int w = f.width();
    s.body += GtFunction(f);
    // best_k: index of the maximum of xc0..xck, scanning upward.
    const int iw = fp::BitsFor(n);
    s.body += "  wire [" + Str(iw - 1) + ":0] best0 = " + Str(iw) + "'d0;\n  wire [" + Str(w - 1) +
              ":0] max0 = " + s.Read("xc0", *lx) + ";\n";
    for (int k = 1; k < n; ++k) {
      const std::string K = Str(k), P0 = Str(k - 1), x = s.Read("xc" + K, *lx);
      s.body += "  wire take" + K + " = gt(" + x + ", max" + P0 + ");\n";
      s.body += "  wire [" + Str(iw - 1) + ":0] best" + K + " = take" + K + " ? " + Str(iw) + "'d" + K + " : best" + P0 + ";\n";
      if (k + 1 < n) s.body += "  wire [" + Str(w - 1) + ":0] max" + K + " = take" + K + " ? " + x + " : max" + P0 + ";\n";
    }
    for (int k = 0; k < n; ++k) {
      s.Output(k, *lx, "(best" + Str(n - 1) + " == " + Str(iw) + "'d" + Str(k) + ") ? " + one + " : " + zero);
    }
    note = ", argmax: one-hot of the largest input";
  } else if (kind == ActivationKind::kSoftmax) {
    // max (the emulator's scan), e_k = exp(x_k - max) streamed, s = sum in index order (one
    // adder, its running sum spaced so that the phases differ), p_k = e_k / s streamed.
    ASSIGN_OR_RETURN(const std::int64_t P, period_for(n));
    pipe = std::make_unique<Pipe>(P);
    Pipe& s = *pipe;
    chains = 1;
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
    const std::string W = Str(w - 1);
    s.body += GtFunction(rf);
    // m = x0; m = (isnan(x_k) || x_k > m) ? x_k : m, k = 1..n-1.
    s.body += "  wire [" + W + ":0] max0 = " + s.Read("xc0", *lx) + ";\n";
    for (int k = 1; k < n; ++k) {
      const std::string K = Str(k), P0 = Str(k - 1), x = s.Read("xc" + K, *lx);
      s.body += "  wire [" + W + ":0] max" + K + " = (" + is_nan(x) + " || gt(" + x + ", max" + P0 + ")) ? " + x +
                " : max" + P0 + ";\n";
    }
    const std::int64_t ls = sub->latency, le = ex->latency, la = add->latency, ld = dv->latency;
    const std::int64_t t_max = *lx;            // mx captured at this edge
    const std::int64_t t_sub = t_max + 1;      // subtraction k issues at t_sub + k
    const std::int64_t t_e = t_sub + ls + le;  // e_k captured at t_e + k
    const std::int64_t sp = Spacing(1, n, P, la);
    const std::int64_t t_sum = t_e + 1;        // add k issues at t_sum + k*sp
    const std::int64_t t_s = t_sum + (n - 1) * sp + la;  // sum captured
    const std::int64_t t_div = t_s + 1;        // divide k issues at t_div + k
    s.body += "  reg [" + W + ":0] mx, sum;\n";
    s.Capture(t_max, "        mx <= max" + Str(n - 1) + ";\n");
    s.Source("mx", w, t_max + 1);
    std::map<std::int64_t, std::string> sa, sb, ab, da, db, first;
    first[t_sum] = "1'b1";
    for (int k = 0; k < n; ++k) {
      const std::string e = "e" + Str(k);
      s.body += "  reg [" + W + ":0] " + e + ";\n";
      sa[t_sub + k] = s.Read("xc" + Str(k), t_sub + k);
      sb[t_sub + k] = s.Read("mx", t_sub + k);
      s.Capture(t_e + k, "        " + e + " <= ex_y;\n");
      s.Source(e, w, t_e + k + 1);
      ab[t_sum + k * sp] = s.Read(e, t_sum + k * sp);
    }
    s.Capture(t_s, "        sum <= add_y;\n");
    s.Source("sum", w, t_s + 1);
    for (int k = 0; k < n; ++k) {
      da[t_div + k] = s.Read("e" + Str(k), t_div + k);
      db[t_div + k] = s.Read("sum", t_div + k);
      s.Output(k, t_div + k + ld, "dv_y");
    }
    s.Table("sub_a", w, sa);
    s.Table("sub_b", w, sb);
    s.Table("add_b", w, ab);
    s.Table("div_a", w, da);
    s.Table("div_b", w, db);
    s.Table("first", 1, first);
    s.body += "  wire [" + W + ":0] sub_y, ex_y, add_y, dv_y;\n";
    s.body += Inst(*sub, "sub0", "sub_a", "sub_b", "sub_y");
    s.body += Inst(*ex, "exp0", "sub_y", "", "ex_y");
    s.body += DelayLine("add_fb", "add_y", w, sp - la);
    s.body += Inst(*add, "add0", "first ? " + zero + " : add_fb", "add_b", "add_y");
    s.body += Inst(*dv, "div0", "div_a", "div_b", "dv_y");
    note = ", softmax: max, exp(x - max) streamed, sum in order, divide";
  } else if (kind == ActivationKind::kLinear || kind == ActivationKind::kReLU) {
    ASSIGN_OR_RETURN(const std::int64_t P, period_for(1));
    pipe = std::make_unique<Pipe>(P);
    Pipe& s = *pipe;
    auto lx = ConvertInputs(units, ctx, p.result, n, s);
    if (!lx.ok()) return lx.status().WithContext(who);
    for (int k = 0; k < n; ++k) {
      const std::string v = s.Read("xc" + Str(k), *lx);
      s.Output(k, *lx,
               kind == ActivationKind::kLinear
                   ? v
                   : "((!" + is_nan(v) + " && " + v + "[" + Str(rw - 1) + "]) ? " + zero + " : " + v + ")");
    }
    note = kind == ActivationKind::kReLU ? ", ReLU: negative (and -0) to +0, NaN kept" : "";
  } else if (kind == ActivationKind::kSigmoid || kind == ActivationKind::kLeakyReLU ||
             kind == ActivationKind::kTanh) {
    // Streamed elementwise functions: `chains` copies of the unit chain, element k on chain
    // k mod chains, entering at t0 + k / chains (as many chains as the reuse asks for).
    chains = (n + std::max(1, ctx.reuse) - 1) / std::max(1, ctx.reuse);
    const std::int64_t per = (n + chains - 1) / chains;
    ASSIGN_OR_RETURN(const std::int64_t P, period_for(per));
    pipe = std::make_unique<Pipe>(P);
    Pipe& s = *pipe;
    auto lx = ConvertInputs(units, ctx, p.result, n, s);
    if (!lx.ok()) return lx.status().WithContext(who);
    const std::int64_t t0 = *lx;
    const std::string W = Str(rw - 1);
    for (std::int64_t c = 0; c < chains; ++c) {
      const std::string C = "_c" + Str(c), xs = "xs" + C;
      std::map<std::int64_t, std::string> xsel;
      for (std::int64_t j = 0; c + j * chains < n; ++j) {
        xsel[t0 + j] = s.Read("xc" + Str(c + j * chains), t0 + j);
      }
      s.Table(xs, rw, xsel);
      std::int64_t lat = 0;
      std::string y;
      if (kind == ActivationKind::kSigmoid) {
        // 1 / (1 + exp(-x)), each step rounded in the format.
        auto ex = Exp(units, rf);
        auto add = Add(units, rf);
        auto dv = Div(units, rf);
        for (auto* u : {&ex, &add, &dv}) {
          if (!u->ok()) return u->status().WithContext(who);
        }
        lat = ex->latency + add->latency + dv->latency;
        s.body += "  wire [" + W + ":0] e_y" + C + ", s_y" + C + ", q_y" + C + ";\n";
        s.body += Inst(*ex, "exp" + C, "{~" + xs + "[" + W + "], " + xs + "[" + Str(rw - 2) + ":0]}", "", "e_y" + C);
        s.body += Inst(*add, "add" + C, one, "e_y" + C, "s_y" + C);
        s.body += Inst(*dv, "div" + C, one, "s_y" + C, "q_y" + C);
        y = "q_y" + C;
        note = ", sigmoid: 1 / (1 + exp(-x)) streamed";
      } else if (kind == ActivationKind::kLeakyReLU) {
        auto mul = Mul(units, rf);
        if (!mul.ok()) return mul.status().WithContext(who);
        const auto alpha = nm::Convert(nm::FromDouble(layer.activation().alpha, p.weight).raw, p.weight, p.result).raw;
        lat = mul->latency;
        // The input travels beside the multiplier for the select.
        s.body += "  wire [" + W + ":0] m_y" + C + ";\n";
        s.body += Inst(*mul, "mul" + C, xs, Hex(rw, static_cast<std::uint64_t>(alpha)), "m_y" + C);
        s.body += DelayLine("xd" + C, xs, rw, lat);
        s.body += "  wire [" + W + ":0] lk_y" + C + " = (!" + is_nan("xd" + C) + " && xd" + C + "[" + W + "]) ? m_y" + C +
                  " : xd" + C + ";\n";
        y = "lk_y" + C;
        note = ", LeakyReLU: x < 0 ? alpha * x : x streamed";
      } else {
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
        const std::int64_t lm = mul->latency, la = add->latency;
        const int count = nm::TanhSeriesTerms(rf);
        const std::vector<double> coeffs = nm::TanhSeriesCoefficients(count + 8);
        auto coef = [&](int i) { return Hex(rw, nm::FloatFromDouble(coeffs[static_cast<std::size_t>(i)], rf)); };
        const std::int64_t small = lm + (count - 1) * (lm + la) + lm;
        const std::int64_t big = lm + ex->latency + la + dv->latency + sub->latency;
        lat = std::max(small, big);
        // small path
        s.body += "  wire [" + W + ":0] z" + C + ";\n" + Inst(*mul, "mz" + C, xs, xs, "z" + C);
        std::string prev = coef(count - 1);
        for (int k = 1; k <= count - 1; ++k) {
          const std::string K = Str(k) + C;
          s.body += DelayLine("zd" + K, "z" + C, rw, (k - 1) * (lm + la));
          s.body += "  wire [" + W + ":0] hm" + K + ", hp" + K + ";\n";
          s.body += Inst(*mul, "hmul" + K, prev, "zd" + K, "hm" + K);
          s.body += Inst(*add, "hadd" + K, "hm" + K, coef(count - 1 - k), "hp" + K);
          prev = "hp" + K;
        }
        s.body += DelayLine("xsm" + C, xs, rw, lm + (count - 1) * (lm + la));
        s.body += "  wire [" + W + ":0] small_y" + C + ";\n" + Inst(*mul, "mx" + C, "xsm" + C, prev, "small_y" + C);
        // large path on |x|
        s.body += "  wire [" + W + ":0] ax" + C + " = {1'b0, " + xs + "[" + Str(rw - 2) + ":0]};\n";
        s.body += "  wire [" + W + ":0] ax2" + C + ", te" + C + ", ts" + C + ", tq" + C + ", tt" + C + ";\n";
        s.body += Inst(*mul, "m2" + C, "ax" + C, Hex(rw, nm::FloatFromDouble(2.0, rf)), "ax2" + C);
        s.body += Inst(*ex, "exp" + C, "ax2" + C, "", "te" + C);
        s.body += Inst(*add, "add" + C, "te" + C, one, "ts" + C);
        s.body += Inst(*dv, "div" + C, Hex(rw, nm::FloatFromDouble(2.0, rf)), "ts" + C, "tq" + C);
        s.body += Inst(*sub, "sub" + C, one, "tq" + C, "tt" + C);
        // align and select
        s.body += DelayLine("small_al" + C, "small_y" + C, rw, lat - small);
        s.body += DelayLine("big_al" + C, "tt" + C, rw, lat - big);
        s.body += DelayLine("xo" + C, xs, rw, lat);
        s.body += "  wire use_small" + C + " = {1'b0, xo" + C + "[" + Str(rw - 2) + ":0]} < " +
                  Hex(rw, nm::FloatFromDouble(0.5, rf)) + ";\n";
        s.body += "  wire [" + W + ":0] th_y" + C + " = " + is_nan("xo" + C) + " ? " + nan + " : use_small" + C +
                  " ? small_al" + C + " : {xo" + C + "[" + W + "] ^ big_al" + C + "[" + W + "], big_al" + C + "[" +
                  Str(rw - 2) + ":0]};\n";
        y = "th_y" + C;
        note = ", tanh: series below 1/2 and 1 - 2/(exp(2|x|) + 1) above, both streamed";
      }
      for (std::int64_t j = 0; c + j * chains < n; ++j) s.Output(static_cast<int>(c + j * chains), t0 + j + lat, y);
    }
    note += " on " + Str(chains) + " chain(s)";
  } else {
    return Unimplemented(who + ": " + layer.OpName() + " in a float format is not generated in hardware yet "
                         "(float Dense, Scale and every activation of the emulator are)");
  }
  EmittedLayer out;
  auto text = pipe->Module(ctx, note, &out.latency);
  if (!text.ok()) return text.status();
  out.text = *text;
  out.initiation_interval = static_cast<int>(pipe->period());
  out.multipliers = chains;
  out.unit_files = units.files();
  return out;
}

}  // namespace fpgaserve::hw
