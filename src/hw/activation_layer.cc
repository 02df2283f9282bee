// Activation layers: one pipeline stage for elementwise functions (requantize, ReLU, LeakyReLU,
// sigmoid/tanh tables) and three for the table softmax; argmax softmax is one stage.
#include <algorithm>

#include "hw/layer_emitters.h"
#include "hw/verilog_text.h"
#include "numeric/lookup_tables.h"
#include "numeric/number_format.h"

namespace fpgaserve::hw {

namespace {

using model::ActivationKind;
using numeric::FixedFormat;
namespace nm = numeric;

std::string Str(std::int64_t v) { return std::to_string(v); }

int Log2(int v) { return __builtin_ctz(static_cast<unsigned>(v)); }

std::string Header(const LayerContext& ctx, const std::string& note) {
  const std::string XW = Str(ctx.n_in * ctx.in.width());
  const std::string OW = Str(ctx.n_out * ctx.precision.result.fixed().width);
  return "// layer '" + ctx.layer->name + "' (" + ctx.layer->OpName() + ")" + note + "\n" +
         "module " + ctx.module + " (\n"
         "  input clk, input rst,\n"
         "  input in_valid, output in_ready, input [" + XW + "-1:0] in_data, input [" + kTagRange + "] in_tag,\n"
         "  output out_valid, input out_ready, output [" + OW + "-1:0] out_data, output [" + kTagRange + "] out_tag\n"
         ");\n";
}

// A function mapping a signed value to a table index: clamp(floor(v·2^sh) + offset, 0, n-1),
// exactly numeric::TableIndex / SoftmaxExpIndex.
std::string IndexFunction(const std::string& name, int in_width, int sh, int offset, int n) {
  sh = std::min(sh, 40);  // larger shifts clamp every nonzero input anyway (as the emulator)
  const int iw = Log2(n);
  const int vw = in_width + std::max(sh, 0) + iw + 3;
  std::string s = "  function automatic [" + Str(iw - 1) + ":0] " + name + "(input signed [" +
                  Str(in_width - 1) + ":0] v);\n    reg signed [" + Str(vw - 1) + ":0] t;\n    begin\n";
  s += "      t = {{" + Str(vw - in_width) + "{v[" + Str(in_width - 1) + "]}}, v};\n";
  if (sh > 0) s += "      t = t <<< " + Str(sh) + ";\n";
  if (sh < 0) s += "      t = t >>> " + Str(-sh) + ";\n";
  s += "      t = t + " + SignedLiteral(offset, vw) + ";\n";
  s += "      if (t < " + SignedLiteral(0, vw) + ") " + name + " = " + Str(iw) + "'d0;\n";
  s += "      else if (t > " + SignedLiteral(n - 1, vw) + ") " + name + " = " + Str(iw) + "'d" + Str(n - 1) + ";\n";
  s += "      else " + name + " = t[" + Str(iw - 1) + ":0];\n    end\n  endfunction\n";
  return s;
}

std::string RomFunction(const std::string& name, const std::vector<std::int64_t>& entries, int width) {
  const int iw = Log2(static_cast<int>(entries.size()));
  std::string s = "  function automatic [" + Str(width - 1) + ":0] " + name + "(input [" + Str(iw - 1) +
                  ":0] i);\n    begin\n      case (i)\n";
  const std::uint64_t mask = width >= 64 ? ~0ULL : ((1ULL << width) - 1);
  for (std::size_t k = 0; k < entries.size(); ++k) {
    s += "        " + Str(iw) + "'d" + Str(static_cast<std::int64_t>(k)) + ": " + name + " = " + Str(width) +
         "'h" + [&] {
           char buf[32];
           snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(static_cast<std::uint64_t>(entries[k]) & mask));
           return std::string(buf);
         }() + ";\n";
  }
  s += "        default: " + name + " = " + Str(width) + "'d0;\n      endcase\n    end\n  endfunction\n";
  return s;
}

// One registered stage applying `expr_of(i)` to every element.
std::string SingleStage(const LayerContext& ctx, const std::vector<std::string>& exprs) {
  const int ow = ctx.precision.result.fixed().width;
  std::string s;
  s += "  reg ov;\n  reg [" + Str(ctx.n_out * ow) + "-1:0] od;\n  reg [" + kTagRange + "] otag;\n";
  s += "  wire en = !ov || out_ready;\n  assign in_ready = en;\n";
  s += "  assign out_valid = ov;\n  assign out_data = od;\n  assign out_tag = otag;\n";
  s += "  always @(posedge clk) begin\n    if (rst) ov <= 1'b0;\n    else if (en) begin\n";
  s += "      ov <= in_valid;\n      otag <= in_tag;\n";
  for (std::size_t i = 0; i < exprs.size(); ++i) {
    s += "      od[" + Str(static_cast<std::int64_t>(i) * ow) + " +: " + Str(ow) + "] <= " + exprs[i] + ";\n";
  }
  s += "    end\n  end\nendmodule\n\n";
  return s;
}

Result<EmittedLayer> EmitSoftmax(const LayerContext& ctx) {
  const FixedFormat& xf = ctx.in.fixed();
  const FixedFormat& rf = ctx.precision.result.fixed();
  const int n = ctx.n_in;
  const int xw = SignedWidth(xf);
  EmittedLayer out;
  std::string& s = out.text;
  int w = 0;
  if (ctx.softmax == nm::SoftmaxMode::kArgmax) {
    s += Header(ctx, ": argmax one-hot, 1 stage");
    s += "  integer k;\n";
    s += "  reg signed [" + Str(xw - 1) + ":0] m;\n";
    s += "  always @* begin\n    k = 0;\n    m = " + SignedElement("in_data", 0, xf, &w) + ";\n";
    for (int i = 1; i < n; ++i) {
      s += "    if (" + SignedElement("in_data", i, xf, &w) + " > m) begin m = " +
           SignedElement("in_data", i, xf, &w) + "; k = " + Str(i) + "; end\n";
    }
    s += "  end\n";
    const std::int64_t one = nm::FromDouble(1.0, rf).raw, zero = nm::FromDouble(0.0, rf).raw;
    const std::uint64_t mask = rf.width >= 64 ? ~0ULL : ((1ULL << rf.width) - 1);
    auto lit = [&](std::int64_t v) { return Str(rf.width) + "'d" + std::to_string(static_cast<std::uint64_t>(v) & mask); };
    std::vector<std::string> exprs;
    for (int i = 0; i < n; ++i) exprs.push_back("(k == " + Str(i) + ") ? " + lit(one) + " : " + lit(zero));
    s += SingleStage(ctx, exprs);
    out.latency = 1;
    return out;
  }
  const int size = ctx.precision.table_size;
  const int lg = Log2(size);
  const int ef = nm::kSoftmaxFractionBits;  // 17
  const int ew = nm::kSoftmaxInternal.width;  // 18
  int grow = 0;
  while ((1 << grow) < n) ++grow;
  const int sw = ew + grow + 1;
  s += Header(ctx, ": exp table, sum, reciprocal table; 3 stages");
  s += IndexFunction("exp_index", xw + 1, lg - 3 - xf.fraction_bits(), size, size);
  s += RomFunction("exp_rom", nm::MakeSoftmaxExpTable(size), ew);
  s += RomFunction("rcp_rom", nm::MakeReciprocalTable(size), ew);
  for (int k = 0; k < sw; ++k) s += RequantizeFunction("rq" + Str(k), 2 * ew + 1, ef + k, rf);
  // Stage 1: max, differences, exp lookups.
  s += "  reg v1, v2, v3;\n  reg [" + kTagRange + "] t1, t2, t3;\n";
  s += "  wire en = !v3 || out_ready;\n  assign in_ready = en;\n";
  s += "  assign out_valid = v3;\n  assign out_tag = t3;\n";
  for (int i = 0; i < n; ++i) {
    s += "  wire signed [" + Str(xw - 1) + ":0] xe" + Str(i) + " = " + SignedElement("in_data", i, xf, &w) + ";\n";
  }
  s += "  reg signed [" + Str(xw - 1) + ":0] m;\n";
  s += "  always @* begin\n    m = xe0;\n";
  for (int i = 1; i < n; ++i) s += "    if (xe" + Str(i) + " > m) m = xe" + Str(i) + ";\n";
  s += "  end\n";
  for (int i = 0; i < n; ++i) {
    s += "  wire signed [" + Str(xw) + ":0] d" + Str(i) + " = $signed({xe" + Str(i) + "[" + Str(xw - 1) + "], xe" +
         Str(i) + "}) - $signed({m[" + Str(xw - 1) + "], m});\n";
    s += "  reg [" + Str(ew - 1) + ":0] e1_" + Str(i) + ", e2_" + Str(i) + ";\n";
  }
  // Stage 2: sum, leading one, reciprocal of the normalized sum.
  std::string sum;
  for (int i = 0; i < n; ++i) sum += (i ? " + " : "") + std::string("{") + Str(sw - ew) + "'d0, e1_" + Str(i) + "}";
  s += "  wire [" + Str(sw - 1) + ":0] sum = " + sum + ";\n";
  s += "  reg [7:0] top, top2;\n  reg [" + Str(lg - 1) + ":0] j;\n  reg [" + Str(ew - 1) + ":0] rcp2;\n";
  s += "  integer b;\n";
  s += "  always @* begin\n    top = 8'd0;\n    for (b = 0; b < " + Str(sw) + "; b = b + 1) if (sum[b]) top = b[7:0];\n";
  s += "    case (top)\n";
  for (int k = 0; k < sw; ++k) {
    // j = the lg bits below the leading one at position k.
    std::string expr;
    if (k >= lg) {
      expr = "sum[" + Str(k - 1) + ":" + Str(k - lg) + "]";
    } else if (k == 0) {
      expr = Str(lg) + "'d0";
    } else {
      expr = "{sum[" + Str(k - 1) + ":0], " + Str(lg - k) + "'d0}";
    }
    s += "      8'd" + Str(k) + ": j = " + expr + ";\n";
  }
  s += "      default: j = " + Str(lg) + "'d0;\n    endcase\n  end\n";
  // Stage 3: p = e · rcp · 2^-top, requantized with the shift chosen by top.
  s += "  reg [" + Str(n * rf.width) + "-1:0] od;\n  assign out_data = od;\n";
  for (int i = 0; i < n; ++i) {
    s += "  wire [" + Str(2 * ew - 1) + ":0] prod" + Str(i) + " = e2_" + Str(i) + " * rcp2;\n";
    s += "  wire signed [" + Str(2 * ew) + ":0] pr" + Str(i) + " = $signed({1'b0, prod" + Str(i) + "});\n";
    s += "  reg [" + Str(rf.width - 1) + ":0] p" + Str(i) + ";\n";
  }
  s += "  always @* begin\n    case (top2)\n";
  for (int k = 0; k < sw; ++k) {
    s += "      8'd" + Str(k) + ": begin";
    for (int i = 0; i < n; ++i) s += " p" + Str(i) + " = rq" + Str(k) + "(pr" + Str(i) + ");";
    s += " end\n";
  }
  s += "      default: begin";
  for (int i = 0; i < n; ++i) s += " p" + Str(i) + " = " + Str(rf.width) + "'d0;";
  s += " end\n    endcase\n  end\n";
  s += "  always @(posedge clk) begin\n    if (rst) begin\n      v1 <= 1'b0;\n      v2 <= 1'b0;\n      v3 <= 1'b0;\n"
       "    end else if (en) begin\n";
  s += "      v1 <= in_valid;\n      t1 <= in_tag;\n      v2 <= v1;\n      t2 <= t1;\n      v3 <= v2;\n      t3 <= t2;\n";
  s += "      top2 <= top;\n      rcp2 <= rcp_rom(j);\n";
  for (int i = 0; i < n; ++i) {
    s += "      e1_" + Str(i) + " <= exp_rom(exp_index(d" + Str(i) + "));\n";
    s += "      e2_" + Str(i) + " <= e1_" + Str(i) + ";\n";
    s += "      od[" + Str(i * rf.width) + " +: " + Str(rf.width) + "] <= p" + Str(i) + ";\n";
  }
  s += "    end\n  end\nendmodule\n\n";
  out.latency = 3;
  out.multipliers = n;
  return out;
}

}  // namespace

Result<EmittedLayer> EmitActivationLayer(const LayerContext& ctx) {
  const auto kind = ctx.layer->activation().kind;
  if (kind == ActivationKind::kSoftmax) return EmitSoftmax(ctx);
  const FixedFormat& xf = ctx.in.fixed();
  const FixedFormat& rf = ctx.precision.result.fixed();
  const int xw = SignedWidth(xf);
  EmittedLayer out;
  std::string& s = out.text;
  s += Header(ctx, ": 1 stage");
  std::vector<std::string> exprs;
  int w = 0;
  switch (kind) {
    case ActivationKind::kLinear:
    case ActivationKind::kReLU: {
      s += RequantizeFunction("rq", xw, xf.fraction_bits(), rf);
      for (int i = 0; i < ctx.n_in; ++i) {
        const std::string x = SignedElement("in_data", i, xf, &w);
        // ReLU tests the sign bit directly: a `< 0` compare costs a carry chain per element on iCE40.
        const std::string sign = "in_data[" + Str(i * xf.width + xf.width - 1) + "]";
        exprs.push_back(kind == ActivationKind::kReLU && xf.is_signed
                            ? "rq(" + sign + " ? " + SignedLiteral(0, xw) + " : " + x + ")"
                            : "rq(" + x + ")");
      }
      break;
    }
    case ActivationKind::kLeakyReLU: {
      const FixedFormat& af = ctx.precision.weight.fixed();
      const std::int64_t alpha = nm::FromDouble(ctx.layer->activation().alpha, ctx.precision.weight).raw;
      const int pw = xw + SignedWidth(af) + 1;
      s += RequantizeFunction("rq", xw, xf.fraction_bits(), rf);
      s += RequantizeFunction("rqn", pw, xf.fraction_bits() + af.fraction_bits(), rf);
      for (int i = 0; i < ctx.n_in; ++i) {
        const std::string x = SignedElement("in_data", i, xf, &w);
        s += "  wire signed [" + Str(pw - 1) + ":0] neg" + Str(i) + " = " + x + " * " + SignedLiteral(alpha, pw) + ";\n";
        exprs.push_back("(" + x + " >= " + SignedLiteral(0, xw) + ") ? rq(" + x + ") : rqn(neg" + Str(i) + ")");
      }
      out.multipliers = ctx.n_in;
      break;
    }
    case ActivationKind::kSigmoid:
    case ActivationKind::kTanh: {
      const auto fn = kind == ActivationKind::kSigmoid ? nm::TableFunction::kSigmoid : nm::TableFunction::kTanh;
      const nm::FunctionTable table = nm::MakeFunctionTable(fn, ctx.precision.table_size, rf);
      const int lg = Log2(table.size);
      const int range_log = Log2(static_cast<int>(2 * table.range));
      s += IndexFunction("tab_index", xw, lg - range_log - xf.fraction_bits(), table.size / 2, table.size);
      s += RomFunction("tab_rom", table.entries, rf.width);
      for (int i = 0; i < ctx.n_in; ++i) exprs.push_back("tab_rom(tab_index(" + SignedElement("in_data", i, xf, &w) + "))");
      break;
    }
    case ActivationKind::kSoftmax: break;
  }
  s += SingleStage(ctx, exprs);
  out.latency = 1;
  return out;
}

}  // namespace fpgaserve::hw
