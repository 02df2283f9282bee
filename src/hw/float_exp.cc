// Floating-point exp unit (float_units.h). It reproduces numeric::FloatExp step for step: x in
// fixed point with G = min(M + 12, 50) fraction bits, the range reduction x*log2(e) = k + r, the
// Taylor polynomial of e^(r*ln2) by Horner, all in signed integers with the reference's
// round-half-up products, and one final rounding of p*2^(k-G) into the format.
#include <algorithm>
#include <cmath>
#include <map>

#include "hw/float_pipeline.h"
#include "hw/float_units.h"
#include "numeric/fixed_format.h"
#include "numeric/float_functions.h"

namespace fpgaserve::hw {
namespace {

using numeric::Wide;

// Horner steps (multiplications) of the polynomial for G fraction bits.
int HornerSteps(int g) { return static_cast<int>(numeric::ExpFixedConstants(g).coefficients.size()) - 1; }

// A nonnegative constant as a sized hex literal ("W'h..." or, signed, "W'sh...").
std::string HexLiteral(int width, Wide v, bool is_signed) {
  static const char* digits = "0123456789abcdef";
  auto u = static_cast<unsigned __int128>(v);
  std::string h;
  do {
    h.insert(h.begin(), digits[static_cast<int>(u & 15)]);
    u >>= 4;
  } while (u != 0);
  return std::to_string(width) + (is_signed ? "'sh" : "'h") + h;
}

// x (a `from`-bit signal name) sign-extended to `to` bits, as a signed expression.
std::string SExt(const std::string& x, int from, int to) {
  if (to == from) return "$signed(" + x + ")";
  return "$signed({{" + std::to_string(to - from) + "{" + x + "[" + std::to_string(from - 1) + "]}}, " + x + "})";
}

// Declarations some of whose bits are unused by design (products whose low bits only round, sign
// bits of values known to be positive), kept quiet for verilator --lint-only -Wall.
std::string PartlyUsed(const std::string& declarations) {
  return "  /* verilator lint_off UNUSEDSIGNAL */\n" + declarations + "  /* verilator lint_on UNUSEDSIGNAL */\n";
}

// "{x, N'd0}" appending n zero bits (x itself when n is 0).
std::string ZeroLow(const std::string& x, int n) { return n == 0 ? x : "{" + x + ", " + fp::Dec(n, 0) + "}"; }

// The encoding (without sign) of the largest value of f that is <= 1100: |x| > 1100 exactly when
// |x|'s bits are above it (Inf and NaN included).
std::uint64_t ThresholdMagnitude(const numeric::FloatFormat& f) {
  const std::uint64_t sign = 1ULL << (f.width() - 1);
  std::uint64_t b = numeric::FloatFromDouble(1100.0, f) & ~sign;
  if (numeric::IsInf(b, f) || numeric::FloatToDouble(b, f) > 1100.0) --b;
  return b;
}

}  // namespace

// Cut points: after step 0, 1, 2, after each Horner step, after the normalize step.
int FloatExpMaxStages(const numeric::FloatFormat& f) {
  return HornerSteps(numeric::ExpInternalFractionBits(f)) + 4;
}

// Exp. Steps (cut points between them), G = min(M + 12, 50), H = the reference's Horner steps:
//   0 unpack; specials: NaN -> NaN, x > 1100 (and +Inf) -> +Inf, x < -1100 (and -Inf) -> +0 (a
//     magnitude compare with the largest value <= 1100); xq = x*2^G rounded half away from zero:
//     the significand shifted left by exponent + G + 2 (clamped), the top bits plus the half bit,
//     negated for negative x;
//   1 t = (xq*round(log2(e)*2^G) + 2^(G-1)) >> G (floor shift of the signed product);
//   2 k = (t + 2^(G-1)) >> G, r = t - k*2^G (the low G bits of t + 2^(G-1), minus 2^(G-1));
//     y = (r*round(ln2*2^G) + 2^(G-1)) >> G;
//   3..H+2 Horner: p = c[H], then p = ((p*y + 2^(G-1)) >> G) + c[n] for n = H-1 .. 0, one
//     product per step;
//   H+3 normalize p (in [0.7, 1.42)*2^G, so its leading one is bit G or G-1), the biased
//     exponent k + bias (minus one when the leading one is bit G-1); right shift with sticky by
//     the amount the exponent is below the smallest normal's;
//   H+4 round to nearest even by adding the increment to {exponent, mantissa} (a carry moves
//     into the exponent, and past the largest finite into Inf), pack, select specials. For E = 11
//     and M < 52 the reference rounds twice below 2^-1022 (ldexp into a double subnormal, then
//     into f), and so does this step: first at the double's subnormal grid, then at f's. The
//     special cases come first: the datapath's result for |x| > 1100 is meaningless.
Result<FloatUnit> EmitFloatExp(const std::string& module, const numeric::FloatFormat& f, int stages) {
  RETURN_IF_ERROR(fp::CheckFormat(f, "float exp"));
  const int max_stages = FloatExpMaxStages(f);
  auto cuts = fp::SpreadStages(stages, max_stages, "float exp");
  if (!cuts.ok()) return cuts.status();
  const int e = f.exponent_bits, m = f.mantissa_bits, w = f.width();
  const int g = numeric::ExpInternalFractionBits(f);
  const std::vector<Wide>& c = numeric::ExpFixedConstants(g).coefficients;
  const int terms = static_cast<int>(c.size()) - 1;
  const Wide half = static_cast<Wide>(1) << (g - 1);
  auto S = [](long long v) { return std::to_string(v); };

  // Widths (two's complement unless said otherwise). |x| <= 1100 < 2^11 wherever the datapath
  // result is used (everything larger is a special case).
  const int zmax = g + 12;                     // largest left shift of the significand
  const int zb = fp::BitsFor(zmax);            // its bits
  const int zw = std::max(e, 7) + 3;           // exponent + offset arithmetic (two's complement)
  const int ww = m + 1 + zmax;                 // the shifted significand
  const int xqw = g + 12;                      // xq: |x|*2^G + 1/2 < 2^(G+11)
  const int pt = xqw + g + 2;                  // xq*log2e (log2e*2^G < 2^(G+1))
  const int tw = g + 12;                       // t: |t| <= 1588*2^G
  const int kw = tw - g;                       // k: |k| <= 1588
  const int py = 2 * g + 1;                    // r*ln2: |r| <= 2^(G-1), ln2*2^G < 2^G
  const int yw = g + 1;                        // y: |y| <= 0.35*2^G
  const int pw = g + 2;                        // Horner p: 0 < p < 1.42*2^G (every n)
  const int ph = pw + yw;                      // p*y
  const bool twice = e == 11 && m < 52;        // the reference's double rounding (see above)
  const int nw = std::max(g + 1, (twice ? 52 : m) + 3);  // normalized significand + round bits
  const int xw = 14;                           // biased result exponent: k + bias in [-1589, 2612]
  const int dmax = nw + 1;                     // denormalizing shift, clamped
  const int dw = fp::BitsFor(dmax);
  const std::uint64_t tmag = ThresholdMagnitude(f);
  // xq's shift: exponent field (1 for subnormals) - bias + G + 2, as zw-bit two's complement.
  const long long zoff = static_cast<long long>(g) + 2 - f.bias();
  const unsigned long long zoff_bits = static_cast<unsigned long long>(zoff) & ((1ULL << zw) - 1);

  std::map<std::string, std::string> v = {
      {"W1", S(w - 1)}, {"W2", S(w - 2)}, {"E1", S(e - 1)}, {"E", S(e)}, {"M1", S(m - 1)}, {"M", S(m)},
      {"MP2", S(m + 2)}, {"MP1", S(m + 1)}, {"TMAG", fp::Dec(w - 1, tmag)}, {"ZW1", S(zw - 1)},
      {"ZEXT", fp::Dec(zw - e, 0)}, {"ZOFF", fp::Dec(zw, zoff_bits)}, {"ZMAXW", fp::Dec(zw, zmax)},
      {"ZB1", S(zb - 1)}, {"ZMAXB", fp::Dec(zb, zmax)}, {"ZBZ", fp::Dec(zb, 0)}, {"WW1", S(ww - 1)},
      {"SIGPAD", fp::Dec(ww - m - 1, 0)}, {"XM1", S(ww - m - 3)}, {"XMZ", fp::Dec(ww - m - 3, 0)},
      {"XQ1", S(xqw - 1)}, {"PT1", S(pt - 1)}, {"TW1", S(tw - 1)}, {"G1", S(g - 1)}, {"G2", S(g - 2)},
      {"TTOP", S(g + tw - 1)}, {"KW1", S(kw - 1)}, {"PY1", S(py - 1)}, {"YTOP", S(g + yw - 1)},
      {"YW1", S(yw - 1)}, {"G", S(g)}, {"NAN", fp::NaNLiteral(f)}};
  v["XQPROD"] = SExt("s1_xq", xqw, pt) + " * " + HexLiteral(pt, numeric::ExpFixedConstants(g).log2e, true);
  v["HALFPT"] = HexLiteral(pt, half, true);
  v["HALFTW"] = HexLiteral(tw, half, true);
  v["RPROD"] = SExt("r", g, py) + " * " + HexLiteral(py, numeric::ExpFixedConstants(g).ln2, true);
  v["HALFPY"] = HexLiteral(py, half, true);

  std::string t = fp::UnitHeader(module, "exp(a) (numeric::FloatExp's fixed-point algorithm, bit for bit)", f, fp::Latency(*cuts), false);
  t += fp::ShiftRightStickyFunction("srs", nw, dw);
  t += fp::Fill(R"(  // step 0: unpack, specials, xq = x*2^G rounded half away from zero
  wire sa = a[$W1];
  wire [$E1:0] ea = a[$W2:$M];
  wire a_nan = (&ea) && (|a[$M1:0]);
  wire big = a[$W2:0] > $TMAG;
  wire s0_nan = a_nan;
  wire s0_inf = !sa && big;
  wire s0_zero = sa && big;
  wire [$M:0] sig = {|ea, a[$M1:0]};
  wire [$ZW1:0] zs = {$ZEXT, (|ea) ? ea : $E'd1} + $ZOFF;
  wire [$ZB1:0] zc = zs[$ZW1] ? $ZBZ : (zs > $ZMAXW) ? $ZMAXB : zs[$ZB1:0];
  /* verilator lint_off UNUSEDSIGNAL */
  wire [$WW1:0] wide = {$SIGPAD, sig} << zc;
  /* verilator lint_on UNUSEDSIGNAL */
  wire [$XM1:0] xm = wide[$WW1:$MP2] + {$XMZ, wide[$MP1]};
  wire signed [$XQ1:0] s0_xq = sa ? -$signed({1'b0, xm}) : $signed({1'b0, xm});
)", v);
  t += fp::Cut((*cuts)[0], {{"s0_xq", "s1_xq", xqw, true}, {"s0_nan", "s1_nan"}, {"s0_inf", "s1_inf"},
                            {"s0_zero", "s1_zero"}});
  t += fp::Fill(R"(  // step 1: t = (xq*log2e + 2^(G-1)) >> G
  wire signed [$PT1:0] prod_t = $XQPROD;
  /* verilator lint_off UNUSEDSIGNAL */
  wire signed [$PT1:0] sum_t = prod_t + $HALFPT;
  /* verilator lint_on UNUSEDSIGNAL */
  wire signed [$TW1:0] s1_t = sum_t[$TTOP:$G];
)", v);
  t += fp::Cut((*cuts)[1], {{"s1_t", "s2_t", tw, true}, {"s1_nan", "s2_nan"}, {"s1_inf", "s2_inf"},
                            {"s1_zero", "s2_zero"}});
  t += fp::Fill(R"(  // step 2: k = (t + 2^(G-1)) >> G, r = t - k*2^G, y = (r*ln2 + 2^(G-1)) >> G
  wire signed [$TW1:0] th = s2_t + $HALFTW;
  wire signed [$KW1:0] s2_k = th[$TW1:$G];
  wire signed [$G1:0] r = {~th[$G1], th[$G2:0]};
  wire signed [$PY1:0] prod_y = $RPROD;
  /* verilator lint_off UNUSEDSIGNAL */
  wire signed [$PY1:0] sum_y = prod_y + $HALFPY;
  /* verilator lint_on UNUSEDSIGNAL */
  wire signed [$YW1:0] s2_y = sum_y[$YTOP:$G];
)", v);
  t += fp::Cut((*cuts)[2], {{"s2_k", "s3_k", kw, true}, {"s2_y", "s3_y", yw, true}, {"s2_nan", "s3_nan"},
                            {"s2_inf", "s3_inf"}, {"s2_zero", "s3_zero"}});
  // Horner steps 3 .. terms+2: step s computes the coefficient index n = terms - (s - 2).
  for (int i = 0; i < terms; ++i) {
    const int s = 3 + i, n = terms - 1 - i;
    const std::string cur = "s" + S(s) + "_", next = "s" + S(s + 1) + "_";
    std::string step = "  // step " + S(s) + ": p = ((p*y + 2^(G-1)) >> G) + c[" + S(n) + "]\n";
    if (i == 0) step += "  wire signed [" + S(pw - 1) + ":0] " + cur + "p = " + HexLiteral(pw, c[terms], true) + ";\n";
    const std::string prod = cur + "prod", sum = cur + "sum";
    step += "  wire signed [" + S(ph - 1) + ":0] " + prod + " = " + SExt(cur + "p", pw, ph) + " * " +
            SExt(cur + "y", yw, ph) + ";\n";
    step += PartlyUsed("  wire signed [" + S(ph - 1) + ":0] " + sum + " = " + prod + " + " +
                       HexLiteral(ph, half, true) + ";\n");
    step += "  wire signed [" + S(pw - 1) + ":0] " + cur + "pn = " + sum + "[" + S(g + pw - 1) + ":" + S(g) +
            "] + " + HexLiteral(pw, c[n], false) + ";\n";
    t += step;
    std::vector<fp::Carry> carry = {{cur + "pn", next + "p", pw, true}, {cur + "k", next + "k", kw, true}};
    if (i + 1 < terms) carry.push_back({cur + "y", next + "y", yw, true});
    carry.push_back({cur + "nan", next + "nan"});
    carry.push_back({cur + "inf", next + "inf"});
    carry.push_back({cur + "zero", next + "zero"});
    // The last p's sign bit is unused (p > 0).
    const std::string cut = fp::Cut((*cuts)[static_cast<std::size_t>(s)], carry);
    t += i + 1 < terms ? cut : PartlyUsed(cut);
  }
  const int sn = terms + 3, sr = terms + 4;  // the normalize and round steps
  const std::string a_ = "s" + S(sn) + "_", b_ = "s" + S(sr) + "_";
  std::map<std::string, std::string> nv = {
      {"P", a_ + "p"}, {"K", SExt(a_ + "k", kw, xw)}, {"G1", S(g - 1)}, {"G", S(g)}, {"XW1", S(xw - 1)},
      {"XW", S(xw)}, {"BIAS", S(f.bias())}, {"XLZ", fp::Dec(xw - 1, 0)}, {"NW1", S(nw - 1)},
      {"NX", ZeroLow("nrm", nw - g - 1)}, {"DW1", S(dw - 1)}, {"DW", S(dw)}, {"DMAX", S(dmax)},
      {"E1", S(e - 1)}, {"E", S(e)}, {"EMAX", S((1 << e) - 1)}, {"A", a_}};
  t += fp::Fill(R"(  // step $N: normalize p*2^(k-G), then denormalize below the smallest normal
  wire lz = !$P[$G];
  wire [$G:0] nrm = lz ? {$P[$G1:0], 1'b0} : $P[$G:0];
  wire signed [$XW1:0] er = $K + $XW'sd$BIAS - $signed({$XLZ, lz});
  wire tiny = er[$XW1] || (er == $XW'sd0);
  wire [$XW1:0] dfull = $XW'd1 - er;
  wire [$DW1:0] dsh = !tiny ? $DW'd0 : (dfull > $XW'd$DMAX) ? $DW'd$DMAX : dfull[$DW1:0];
  wire [$NW1:0] $Aden = srs($NX, dsh);
  wire [$E1:0] $Afield = tiny ? $E'd0 : er[$E1:0];
  wire $Aover = !tiny && (er >= $XW'sd$EMAX);
)", [&] {
    auto u = nv;
    u["N"] = S(sn);
    return u;
  }());
  std::vector<fp::Carry> norm_carry = {{a_ + "den", b_ + "den", nw}, {a_ + "field", b_ + "field", e},
                                       {a_ + "over", b_ + "over"}, {a_ + "nan", b_ + "nan"},
                                       {a_ + "inf", b_ + "inf"}, {a_ + "zero", b_ + "zero"}};
  if (twice) {
    t += "  wire " + a_ + "tiny = tiny;\n";
    norm_carry.push_back({a_ + "tiny", b_ + "tiny"});
  }
  t += PartlyUsed(fp::Cut((*cuts)[static_cast<std::size_t>(sn)], norm_carry));  // den's hidden bit
  // The significand to round to M bits: `sig` with the hidden bit at `top` and `low` bits below
  // the guard bit, and the exponent field that goes with it.
  std::string round = "  // step " + S(sr) + ": round to nearest even, pack, specials\n";
  std::string sig = b_ + "den", field = b_ + "field";
  int top = nw - 1;
  if (twice) {
    // The reference's ldexp rounds to the double's 52 mantissa bits first (only below 2^-1022,
    // where tiny: above it p's 51 bits are exact), then FloatFromDouble rounds to M bits.
    round += fp::Fill(R"(  wire inc1 = $Dden[$NG1] && ((|$Dden[$NS1:0]) || $Dden[$NL1]);
  wire [52:0] q = $Dden[$NW1:$NL1] + {52'd0, inc1};
  wire [$E1:0] field2 = $Dtiny ? {$EZ, q[52]} : $Dfield;
)", {{"D", b_}, {"NG1", S(nw - 54)}, {"NS1", S(nw - 55)}, {"NL1", S(nw - 53)}, {"NW1", S(nw - 1)},
     {"E1", S(e - 1)}, {"EZ", fp::Dec(e - 1, 0)}});
    sig = "q";
    field = "field2";
    top = 52;
  }
  const int lsb = top - m, guard = top - m - 1;  // bit positions in `sig`
  const std::string sticky = guard >= 1 ? "(|" + sig + "[" + S(guard - 1) + ":0])" : "1'b0";
  round += fp::Fill(R"(  wire inc = $SIG[$GB] && ($STICKY || $SIG[$LB]);
  wire [$W2:0] rounded = {$FIELD, $SIG[$T1:$LB]} + {$RZ, inc};
  assign y = $Bnan ? $NAN
           : $Binf ? {1'b0, {$E{1'b1}}, $MZ}
           : $Bzero ? $WZ
           : $Bover ? {1'b0, {$E{1'b1}}, $MZ}
           : {1'b0, rounded};
endmodule
)", {{"SIG", sig}, {"GB", S(guard)}, {"LB", S(lsb)}, {"STICKY", sticky}, {"W2", S(w - 2)}, {"FIELD", field},
     {"T1", S(top - 1)}, {"RZ", fp::Dec(w - 2, 0)}, {"B", b_}, {"NAN", fp::NaNLiteral(f)}, {"E", S(e)},
     {"MZ", fp::Dec(m, 0)}, {"WZ", fp::Dec(w, 0)}});
  t += round;
  return fp::FloatFormatUnit(module, std::move(t), *cuts, 1, f, max_stages);
}

}  // namespace fpgaserve::hw
