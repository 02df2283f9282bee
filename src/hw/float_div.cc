// Floating-point divider unit (float_units.h). It computes the quotient of the significands
// exactly up to a sticky bit (the final remainder of a restoring long division) and rounds it
// once, to nearest even, as numeric::FloatDiv does.
#include <algorithm>
#include <map>

#include "hw/float_pipeline.h"
#include "hw/float_units.h"

namespace fpgaserve::hw {
namespace {

// Quotient bits of the significand division: the integer part (weight 1) and M+2 fraction bits,
// so a quotient below 1 still has M+1 significant bits and a guard bit above the sticky bit.
int QuotientBits(const numeric::FloatFormat& f) { return f.mantissa_bits + 3; }

// Quotient bits (iterations of the digit recurrence) computed between two cut points.
constexpr int kBitsPerStep = 2;

// Steps of the digit recurrence.
int RecurrenceSteps(const numeric::FloatFormat& f) {
  return (QuotientBits(f) + kBitsPerStep - 1) / kBitsPerStep;
}

// "{N'd0, x}" widening x by n zero bits (x itself when n is 0).
std::string ZeroPad(int n, const std::string& x) { return n == 0 ? x : "{" + fp::Dec(n, 0) + ", " + x + "}"; }

std::string Range(int width) { return width > 1 ? "[" + std::to_string(width - 1) + ":0] " : ""; }

}  // namespace

int FloatDivMaxStages(const numeric::FloatFormat& f) {
  // After the unpack step, after each recurrence step, after the normalize step.
  return RecurrenceSteps(numeric::FloatFormat{f.exponent_bits, std::max(f.mantissa_bits, 1)}) + 2;
}

// Divide. Steps (cut points between them), with G = ceil((M+3)/2) recurrence steps:
//   0 unpack both operands (subnormals get exponent 1 and no hidden bit), flag the special
//     results (NaN operand, 0/0, Inf/Inf -> NaN; Inf/x, x/0 -> Inf; 0/x, x/Inf -> zero), shift
//     both (M+1)-bit significands left by their leading zeros so their top bits are set (the
//     exponents absorb the shifts), subtract the exponents;
//   1..G restoring radix-2 division of the significands, two quotient bits per step: the first
//     bit (weight 1) is dividend >= divisor, each further bit doubles the partial remainder and
//     subtracts the divisor when it fits, for M+3 quotient bits in all (the quotient is in
//     (1/2, 2)); step G also reduces the final remainder to a sticky bit;
//   G+1 normalize: a quotient below 1 moves up one bit (its exponent down one), giving leading
//     one, M mantissa bits, guard, round, sticky; then right (with sticky) by the amount the
//     exponent is below the smallest normal's (exponent field 0 unless the leading one stays);
//   G+2 round to nearest even by adding the round increment to {exponent, mantissa} (a carry
//     moves into the exponent, and past the largest finite into Inf), pack, select specials.
Result<FloatUnit> EmitFloatDiv(const std::string& module, const numeric::FloatFormat& f, int stages) {
  RETURN_IF_ERROR(fp::CheckFormat(f, "float divider"));
  const int n_cuts = FloatDivMaxStages(f);
  auto cuts = fp::SpreadStages(stages, n_cuts, "float divider");
  if (!cuts.ok()) return cuts.status();
  const int e = f.exponent_bits, m = f.mantissa_bits, qn = QuotientBits(f), g = RecurrenceSteps(f);
  const int lw = fp::ClzWidth(m + 1);
  const int xw = std::max(e, fp::BitsFor(m + 1)) + 3;  // signed exponent arithmetic width
  const int sw = m + 4;                                // leading one, mantissa, guard, round, sticky
  const int dw = fp::BitsFor(sw);                      // subnormal shift amount (clamped to sw)
  const std::map<std::string, std::string> v = {
      {"W1", std::to_string(f.width() - 1)}, {"W2", std::to_string(f.width() - 2)},
      {"E1", std::to_string(e - 1)}, {"E", std::to_string(e)}, {"M1", std::to_string(m - 1)},
      {"M", std::to_string(m)}, {"MP1", std::to_string(m + 1)}, {"MP2", std::to_string(m + 2)},
      {"X1", std::to_string(xw - 1)}, {"XW", std::to_string(xw)}, {"LW1", std::to_string(lw - 1)},
      {"S1", std::to_string(sw - 1)}, {"SM1", std::to_string(sw - 2)}, {"D1", std::to_string(dw - 1)},
      {"DW", std::to_string(dw)}, {"DMAX", std::to_string(sw)}, {"BIAS", std::to_string(f.bias())}, {"EMAX", std::to_string((1 << e) - 1)},
      {"XA", ZeroPad(xw - e, "xa")}, {"XB", ZeroPad(xw - e, "xb")}, {"LZA", ZeroPad(xw - lw, "lza")},
      {"LZB", ZeroPad(xw - lw, "lzb")}, {"ZEROS", fp::Dec(f.width() - 1, 0)},
      {"INC", ZeroPad(f.width() - 2, "inc")}, {"MZERO", fp::Dec(m, 0)}, {"EONES", fp::Ones(e)},
      {"NAN", fp::NaNLiteral(f)}};
  std::string t = fp::UnitHeader(module, "a / b", f, fp::Latency(*cuts), true);
  t += fp::ClzFunction("clz", m + 1);
  t += fp::ShiftRightStickyFunction("srs", sw, dw);
  t += fp::Fill(R"(  // step 0: unpack, specials, normalize significands, subtract exponents
  wire [$E1:0] ea = a[$W2:$M];
  wire [$E1:0] eb = b[$W2:$M];
  wire a_nan = (&ea) && (|a[$M1:0]);
  wire b_nan = (&eb) && (|b[$M1:0]);
  wire a_inf = (&ea) && !(|a[$M1:0]);
  wire b_inf = (&eb) && !(|b[$M1:0]);
  wire a_zero = !(|a[$W2:0]);
  wire b_zero = !(|b[$W2:0]);
  wire [$M:0] siga = {|ea, a[$M1:0]};
  wire [$M:0] sigb = {|eb, b[$M1:0]};
  wire [$E1:0] xa = (|ea) ? ea : $E'd1;
  wire [$E1:0] xb = (|eb) ? eb : $E'd1;
  wire [$LW1:0] lza = clz(siga);
  wire [$LW1:0] lzb = clz(sigb);
  wire [$M:0] s0_r = siga << lza;
  wire [$M:0] s0_b = sigb << lzb;
  wire signed [$X1:0] s0_exp = $signed($XA) - $signed($LZA) - $signed($XB) + $signed($LZB) + $XW'sd$BIAS;
  wire s0_nan = a_nan || b_nan || (a_inf && b_inf) || (a_zero && b_zero);
  wire s0_inf = a_inf || b_zero;
  wire s0_zero = a_zero || b_inf;
  wire s0_sign = a[$W1] ^ b[$W1];
)", v);
  // The flags every step passes on.
  auto flags = [&](int k) {
    const std::string from = "s" + std::to_string(k) + "_", to = "s" + std::to_string(k + 1) + "_";
    return std::vector<fp::Carry>{{from + "nan", to + "nan"}, {from + "inf", to + "inf"},
                                  {from + "zero", to + "zero"}, {from + "sign", to + "sign"}};
  };
  auto exp_carry = [&](int k) {
    return fp::Carry{"s" + std::to_string(k) + "_exp", "s" + std::to_string(k + 1) + "_exp", xw, true};
  };
  {
    auto c = flags(0);
    c.insert(c.begin(), {{"s0_r", "s1_r", m + 1}, {"s0_b", "s1_b", m + 1}, exp_carry(0)});
    t += fp::Cut((*cuts)[0], c);
  }
  // Steps 1..g: the digit recurrence. Iteration i yields quotient bit i (weight 2^-i) and the
  // partial remainder r_i < divisor; r_{-1} is the dividend (< 2 * divisor).
  for (int k = 1; k <= g; ++k) {
    const std::string s = "s" + std::to_string(k) + "_";
    const int first = (k - 1) * kBitsPerStep, last = std::min(qn, k * kBitsPerStep) - 1;
    t += "  // step " + std::to_string(k) + ": quotient bits " + std::to_string(first) + ".." + std::to_string(last) +
         (k == g ? ", sticky bit from the final remainder\n" : "\n");
    std::string prev = s + "r", bits = first > 0 ? s + "q" : "";
    for (int i = first; i <= last; ++i) {
      const std::map<std::string, std::string> w = {
          {"S", s}, {"I", std::to_string(i)}, {"P", prev}, {"M", std::to_string(m)},
          {"M1", std::to_string(m - 1)}, {"MP1", std::to_string(m + 1)}, {"MP2", std::to_string(m + 2)}};
      if (i == 0) {
        t += fp::Fill(R"(  wire [$MP1:0] $Sd$I = {1'b0, $P} - {1'b0, $Sb};
  wire $Sq$I = !$Sd$I[$MP1];
  wire [$M:0] $Sr$I = $Sq$I ? $Sd$I[$M:0] : $P;
)", w);
      } else {
        // 2r >= 2^(M+1) > divisor when r's top bit is set; then 2r - divisor < divisor is the
        // difference of the low bits modulo 2^(M+1), so the subtractor needs only M+2 bits.
        t += fp::Fill(R"(  wire [$MP1:0] $Sd$I = {1'b0, $P[$M1:0], 1'b0} - {1'b0, $Sb};
  wire $Sq$I = $P[$M] || !$Sd$I[$MP1];
  wire [$M:0] $Sr$I = $Sq$I ? $Sd$I[$M:0] : {$P[$M1:0], 1'b0};
)", w);
      }
      prev = s + "r" + std::to_string(i);
      bits += (bits.empty() ? "" : ", ") + s + "q" + std::to_string(i);
    }
    const int have = last + 1;  // quotient bits after this step
    t += "  wire " + Range(have) + s + "qo = {" + bits + "};\n";
    const std::string next = "s" + std::to_string(k + 1) + "_";
    auto c = flags(k);
    if (k < g) {
      c.insert(c.begin(), {{prev, next + "r", m + 1}, {s + "b", next + "b", m + 1}, {s + "qo", next + "q", have},
                           exp_carry(k)});
    } else {
      t += "  wire " + s + "sticky = |" + prev + ";\n";
      c.insert(c.begin(), {{s + "qo", next + "q", have}, {s + "sticky", next + "sticky"}, exp_carry(k)});
    }
    t += fp::Cut((*cuts)[static_cast<std::size_t>(k)], c);
  }
  {
    const int k = g + 1;
    auto w = v;
    w["S"] = "s" + std::to_string(k) + "_";
    t += fp::Fill("  // step " + std::to_string(k) + R"(: normalize (leading one to the top), then denormalize below the smallest normal
  wire top = $Sq[$MP2];
  wire [$S1:0] nq = top ? {$Sq, $Ssticky} : {$Sq[$MP1:0], 1'b0, $Ssticky};
  wire signed [$X1:0] er = $Sexp - (top ? $XW'sd0 : $XW'sd1);
  wire tiny = er < $XW'sd1;
  wire signed [$X1:0] dfull = $XW'sd1 - er;
  wire [$D1:0] dsh = !tiny ? $DW'd0 : (dfull > $XW'sd$DMAX) ? $DW'd$DMAX : dfull[$D1:0];
  wire [$S1:0] den = srs(nq, dsh);
  wire [$SM1:0] $Sden = den[$SM1:0];
  wire [$E1:0] $Sfield = den[$S1] ? er[$E1:0] : $E'd0;
  wire $Sover = er >= $XW'sd$EMAX;
)", w);
    const std::string s = w["S"], next = "s" + std::to_string(k + 1) + "_";
    auto c = flags(k);
    c.insert(c.begin(), {{s + "den", next + "den", sw - 1},
                         {s + "field", next + "field", e}, {s + "over", next + "over"}});
    t += fp::Cut((*cuts)[static_cast<std::size_t>(k)], c);
  }
  {
    auto w = v;
    w["S"] = "s" + std::to_string(g + 2) + "_";
    t += fp::Fill("  // step " + std::to_string(g + 2) + R"(: round to nearest even, pack, specials
  wire inc = $Sden[2] && ($Sden[1] || $Sden[0] || $Sden[3]);
  wire [$W2:0] rounded = {$Sfield, $Sden[$MP2:3]} + $INC;
  assign y = $Snan ? $NAN
           : ($Sinf || $Sover) ? {$Ssign, $EONES, $MZERO}
           : $Szero ? {$Ssign, $ZEROS}
           : {$Ssign, rounded};
endmodule
)", w);
  }
  return fp::FloatFormatUnit(module, std::move(t), *cuts, 2, f, n_cuts);
}

}  // namespace fpgaserve::hw
