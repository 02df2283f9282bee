// Floating-point add/subtract and multiply units (float_units.h). Both compute the exact result
// (or the exact result up to a sticky bit) in integers and round it once, to nearest even, as
// numeric::FloatAdd / FloatMul do.
#include <algorithm>
#include <map>

#include "hw/float_pipeline.h"
#include "hw/float_units.h"

namespace fpgaserve::hw {
namespace {

}  // namespace

int FloatMulMaxStages() { return 2; }
int FloatAddMaxStages() { return 3; }

// Multiply. Steps (cut points between them):
//   0 unpack both operands (subnormals get exponent 1 and no hidden bit), flag NaN/Inf/zero,
//     multiply the (M+1)-bit significands exactly, add the exponents;
//   1 count the product's leading zeros, shift it left so its top bit is the leading one, and
//     right (with sticky) by the amount the exponent is below the smallest normal;
//   2 round to nearest even by adding the round increment to {exponent, mantissa} (a carry
//     moves into the exponent, and past the largest finite into Inf), pack, select specials.
Result<FloatUnit> EmitFloatMul(const std::string& module, const numeric::FloatFormat& f, int stages) {
  RETURN_IF_ERROR(fp::CheckFormat(f, "float multiplier"));
  auto cuts = fp::SpreadStages(stages, FloatMulMaxStages(), "float multiplier");
  if (!cuts.ok()) return cuts.status();
  const int e = f.exponent_bits, m = f.mantissa_bits, pw = 2 * m + 2;
  const int xw = std::max(e, fp::BitsFor(pw)) + 3;  // signed exponent arithmetic width
  const int dw = fp::BitsFor(pw + 1);               // subnormal shift amount (clamped to pw + 1)
  const std::map<std::string, std::string> v = {
      {"W1", std::to_string(f.width() - 1)}, {"E1", std::to_string(e - 1)}, {"E", std::to_string(e)},
      {"M1", std::to_string(m - 1)}, {"M", std::to_string(m)}, {"MM", std::to_string(2 * m)},
      {"P1", std::to_string(pw - 1)}, {"X1", std::to_string(xw - 1)}, {"XW", std::to_string(xw)},
      {"D1", std::to_string(dw - 1)}, {"DW", std::to_string(dw)}, {"LW1", std::to_string(fp::ClzWidth(pw) - 1)},
      {"LW", std::to_string(fp::ClzWidth(pw))}, {"BIAS", std::to_string(f.bias())},
      {"EMAX", std::to_string((1 << e) - 1)}, {"PW", std::to_string(pw)}, {"DMAX", std::to_string(pw + 1)},
      {"NAN", fp::NaNLiteral(f)}};
  std::string t = fp::UnitHeader(module, "a * b", f, fp::Latency(*cuts), true);
  t += fp::ClzFunction("clz", pw);
  t += fp::ShiftRightStickyFunction("srs", pw, dw);
  t += fp::Fill(R"(  // step 0: unpack, multiply significands, add exponents
  wire [$E1:0] ea = a[$W1-1:$M];
  wire [$E1:0] eb = b[$W1-1:$M];
  wire a_nan = (&ea) && (|a[$M1:0]);
  wire b_nan = (&eb) && (|b[$M1:0]);
  wire a_inf = (&ea) && !(|a[$M1:0]);
  wire b_inf = (&eb) && !(|b[$M1:0]);
  wire a_zero = !(|a[$W1-1:0]);
  wire b_zero = !(|b[$W1-1:0]);
  wire [$M:0] siga = {|ea, a[$M1:0]};
  wire [$M:0] sigb = {|eb, b[$M1:0]};
  wire [$E1:0] xa = (|ea) ? ea : $E'd1;
  wire [$E1:0] xb = (|eb) ? eb : $E'd1;
  wire [$P1:0] s0_prod = siga * sigb;
  wire signed [$X1:0] s0_exp = $signed({{($XW-$E){1'b0}}, xa}) + $signed({{($XW-$E){1'b0}}, xb}) - $XW'sd$BIAS;
  wire s0_nan = a_nan || b_nan || (a_inf && b_zero) || (b_inf && a_zero);
  wire s0_inf = a_inf || b_inf;
  wire s0_sign = a[$W1] ^ b[$W1];
)", v);
  t = fp::Fill(t, {{"W1-1", std::to_string(f.width() - 2)}});
  t += fp::Cut((*cuts)[0], {{"s0_prod", "s1_prod", pw}, {"s0_exp", "s1_exp", xw, true}, {"s0_nan", "s1_nan"},
                            {"s0_inf", "s1_inf"}, {"s0_sign", "s1_sign"}});
  t += fp::Fill(R"(  // step 1: normalize (leading one to the top), then denormalize below the smallest normal
  wire [$LW1:0] lz = clz(s1_prod);
  wire signed [$X1:0] er = s1_exp + $XW'sd1 - $signed({{($XW-$LW){1'b0}}, lz});
  wire [$P1:0] norm = s1_prod << lz;
  wire tiny = er < $XW'sd1;
  wire signed [$X1:0] dfull = $XW'sd1 - er;
  wire [$D1:0] dsh = !tiny ? $DW'd0 : (dfull > $XW'sd$DMAX) ? $DW'd$DMAX : dfull[$D1:0];
  // The top bit (the hidden 1 of a normal result) is implied by the exponent field: not carried.
  /* verilator lint_off UNUSEDSIGNAL */
  wire [$P1:0] s1_den = srs(norm, dsh);
  /* verilator lint_on UNUSEDSIGNAL */
  wire [$E1:0] s1_field = tiny ? $E'd0 : er[$E1:0];
  wire s1_over = er >= $XW'sd$EMAX;
  wire s1_zero = !(|s1_prod);
)", v);
  t += fp::Cut((*cuts)[1], {{"s1_den[" + std::to_string(pw - 2) + ":0]", "s2_den", pw - 1}, {"s1_field", "s2_field", e}, {"s1_over", "s2_over"},
                            {"s1_zero", "s2_zero"}, {"s1_nan", "s2_nan"}, {"s1_inf", "s2_inf"},
                            {"s1_sign", "s2_sign"}});
  t += fp::Fill(R"(  // step 2: round to nearest even, pack, specials
  wire guard = s2_den[$M];
  wire sticky = |s2_den[$M1:0];
  wire inc = guard && (sticky || s2_den[$M+1]);
  wire [$W1-1:0] rounded = {s2_field, s2_den[$MM:$M+1]} + {{($W1-1){1'b0}}, inc};
  assign y = s2_nan ? $NAN
           : (s2_inf || s2_over) ? {s2_sign, {$E{1'b1}}, {$M{1'b0}}}
           : s2_zero ? {s2_sign, {($W1){1'b0}}}
           : {s2_sign, rounded};
endmodule
)", {{"W1-1", std::to_string(f.width() - 2)}, {"W1", std::to_string(f.width() - 1)},
     {"M+1", std::to_string(m + 1)}, {"MM", std::to_string(2 * m)}, {"M1", std::to_string(m - 1)},
     {"M", std::to_string(m)}, {"E", std::to_string(e)}, {"NAN", fp::NaNLiteral(f)}});
  return fp::FloatFormatUnit(module, std::move(t), *cuts, 2, f, FloatMulMaxStages());
}

// Add / subtract. Steps:
//   0 unpack (b's sign flipped for a subtraction), order the operands by magnitude, align the
//     smaller to the larger's exponent with three extra bits (guard, round, sticky);
//   1 add or subtract the significands (the larger minus the smaller: never negative), count
//     leading zeros;
//   2 normalize: one right shift on a carry, else a left shift by the leading zeros but not below
//     the smallest normal's exponent (a subnormal result);
//   3 round to nearest even, pack, select specials (Inf - Inf and NaN operands give the canonical
//     NaN; an exact zero is +0 unless both operands are -0).
Result<FloatUnit> EmitFloatAdd(const std::string& module, const numeric::FloatFormat& f, int stages, bool subtract) {
  RETURN_IF_ERROR(fp::CheckFormat(f, subtract ? "float subtractor" : "float adder"));
  auto cuts = fp::SpreadStages(stages, FloatAddMaxStages(), subtract ? "float subtractor" : "float adder");
  if (!cuts.ok()) return cuts.status();
  const int e = f.exponent_bits, m = f.mantissa_bits, sw = m + 4;  // significand + GRS
  const int lw = fp::ClzWidth(sw);
  std::map<std::string, std::string> v = {
      {"W1", std::to_string(f.width() - 1)}, {"W2", std::to_string(f.width() - 2)}, {"E1", std::to_string(e - 1)},
      {"E", std::to_string(e)}, {"M1", std::to_string(m - 1)},
      {"M", std::to_string(m)}, {"S1", std::to_string(sw - 1)}, {"S", std::to_string(sw)},
      {"MG", std::to_string(m + 2)}, {"LW1", std::to_string(lw - 1)},
      {"EMAX", std::to_string((1 << e) - 1)}, {"NAN", fp::NaNLiteral(f)},
      {"SUB", subtract ? "1'b1" : "1'b0"}};
  std::string t = fp::UnitHeader(module, subtract ? "a - b" : "a + b", f, fp::Latency(*cuts), true);
  t += fp::ClzFunction("clz", sw);
  t += fp::ShiftRightStickyFunction("srs", sw, e);
  t += fp::Fill(R"(  // step 0: unpack, order by magnitude, align
  wire sa = a[$W1];
  wire sb = b[$W1] ^ $SUB;
  wire a_nan = (&a[$W2:$M]) && (|a[$M1:0]);
  wire b_nan = (&b[$W2:$M]) && (|b[$M1:0]);
  wire a_inf = (&a[$W2:$M]) && !(|a[$M1:0]);
  wire b_inf = (&b[$W2:$M]) && !(|b[$M1:0]);
  wire swap = b[$W2:0] > a[$W2:0];
  wire [$W2:0] mx = swap ? b[$W2:0] : a[$W2:0];
  wire [$W2:0] mn = swap ? a[$W2:0] : b[$W2:0];
  wire sx = swap ? sb : sa;
  wire sy = swap ? sa : sb;
  wire [$E1:0] ex = (|mx[$W2:$M]) ? mx[$W2:$M] : $E'd1;
  wire [$E1:0] ey = (|mn[$W2:$M]) ? mn[$W2:$M] : $E'd1;
  wire [$S1:0] s0_x = {|mx[$W2:$M], mx[$M1:0], 3'b000};
  wire [$S1:0] s0_y = srs({|mn[$W2:$M], mn[$M1:0], 3'b000}, ex - ey);
  wire [$E1:0] s0_ex = ex;
  wire s0_sub = sx ^ sy;
  wire s0_sign = sx;
  wire s0_nan = a_nan || b_nan || (a_inf && b_inf && (sa != sb));
  wire s0_inf = a_inf || b_inf;
  wire s0_inf_sign = a_inf ? sa : sb;
)", v);
  t += fp::Cut((*cuts)[0], {{"s0_x", "s1_x", sw}, {"s0_y", "s1_y", sw}, {"s0_ex", "s1_ex", e}, {"s0_sub", "s1_sub"},
                            {"s0_sign", "s1_sign"}, {"s0_nan", "s1_nan"}, {"s0_inf", "s1_inf"},
                            {"s0_inf_sign", "s1_inf_sign"}});
  t += fp::Fill(R"(  // step 1: add or subtract (|x| >= |y|, so never negative), count leading zeros
  wire [$S:0] s1_sum = s1_sub ? ({1'b0, s1_x} - {1'b0, s1_y}) : ({1'b0, s1_x} + {1'b0, s1_y});
  wire [$LW1:0] s1_lz = clz(s1_sum[$S1:0]);
)", v);
  t += fp::Cut((*cuts)[1], {{"s1_sum", "s2_sum", sw + 1}, {"s1_lz", "s2_lz", lw}, {"s1_ex", "s2_ex", e},
                            {"s1_sub", "s2_sub"}, {"s1_sign", "s2_sign"}, {"s1_nan", "s2_nan"},
                            {"s1_inf", "s2_inf"}, {"s1_inf_sign", "s2_inf_sign"}});
  // Exponent arithmetic of step 2 in cw bits (room for 2^E and for the leading-zero count).
  const int cw = std::max(lw, e + 1);
  auto zx = [](const std::string& x, int from, int to) {
    return from == to ? x : "{" + std::to_string(to - from) + "'d0, " + x + "}";
  };
  const std::string cws = std::to_string(cw), lz = zx("s2_lz", lw, cw), ex = zx("s2_ex", e, cw);
  t += fp::Fill(R"(  // step 2: normalize; a left shift stops at the smallest normal's exponent (subnormal)
  wire carry = s2_sum[$S];
  wire [$C1:0] room = $EX - $CW'd1;
  wire [$C1:0] sh = ($LZ > room) ? room : $LZ;
  // The top bit (the hidden 1) is implied by the exponent field: not carried.
  /* verilator lint_off UNUSEDSIGNAL */
  wire [$S1:0] s2_n = carry ? {s2_sum[$S:2], s2_sum[1] | s2_sum[0]} : (s2_sum[$S1:0] << sh);
  /* verilator lint_on UNUSEDSIGNAL */
  wire [$C1:0] nexp = carry ? ($EX + $CW'd1) : ($EX - sh);
  wire [$E1:0] s2_field = s2_n[$S1] ? nexp[$E1:0] : $E'd0;
  wire s2_over = s2_n[$S1] && (nexp >= $CW'd$EMAX);
  wire s2_zero = !(|s2_sum);
)", [&] {
    auto w = v;
    w["C1"] = std::to_string(cw - 1);
    w["CW"] = cws;
    w["LZ"] = lz;
    w["EX"] = ex;
    return w;
  }());
  t += fp::Cut((*cuts)[2], {{"s2_n[" + std::to_string(sw - 2) + ":0]", "s3_n", sw - 1}, {"s2_field", "s3_field", e}, {"s2_over", "s3_over"},
                            {"s2_zero", "s3_zero"}, {"s2_sub", "s3_sub"}, {"s2_sign", "s3_sign"},
                            {"s2_nan", "s3_nan"}, {"s2_inf", "s3_inf"}, {"s2_inf_sign", "s3_inf_sign"}});
  t += fp::Fill(R"(  // step 3: round to nearest even, pack, specials
  wire inc = s3_n[2] && (s3_n[1] || s3_n[0] || s3_n[3]);
  wire [$W1-1:0] rounded = {s3_field, s3_n[$MG:3]} + {{($W1-1){1'b0}}, inc};
  assign y = s3_nan ? $NAN
           : s3_inf ? {s3_inf_sign, {$E{1'b1}}, {$M{1'b0}}}
           : s3_over ? {s3_sign, {$E{1'b1}}, {$M{1'b0}}}
           : s3_zero ? {s3_sign && !s3_sub, {($W1){1'b0}}}
           : {s3_sign, rounded};
endmodule
)", {{"W1-1", std::to_string(f.width() - 2)}, {"W1", std::to_string(f.width() - 1)}, {"MG", std::to_string(m + 2)},
     {"M", std::to_string(m)}, {"E", std::to_string(e)}, {"NAN", fp::NaNLiteral(f)}});
  return fp::FloatFormatUnit(module, std::move(t), *cuts, 2, f, FloatAddMaxStages());
}

}  // namespace fpgaserve::hw
