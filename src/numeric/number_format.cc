#include "numeric/number_format.h"

#include <cmath>

#include "core/text.h"

namespace fpgaserve::numeric {

Result<NumberFormat> ParseNumberFormat(std::string_view spec) {
  std::string_view s = Trim(spec);
  if (s.rfind("fixed", 0) == 0 || s.rfind("ufixed", 0) == 0) {
    ASSIGN_OR_RETURN(FixedFormat f, ParseFixedFormat(s));
    return NumberFormat(f);
  }
  if (s.rfind("float", 0) == 0 || s == "bfloat16") {
    ASSIGN_OR_RETURN(FloatFormat f, ParseFloatFormat(s));
    return NumberFormat(f);
  }
  return InvalidArgument("precision " + Quote(spec) +
                         ": unknown number format; expected fixed<W,I[,Q[,O]]>, ufixed<W,I[,Q[,O]]>, "
                         "float32, float16, bfloat16 or float<E,M>");
}

double ToDouble(RawValue v, const NumberFormat& f) {
  if (f.is_fixed()) return FixedToDouble(v, f.fixed());
  return FloatToDouble(static_cast<FloatBits>(v), f.floating());
}

Quantized FromDouble(double x, const NumberFormat& f) {
  if (f.is_fixed()) {
    FixedValue q = FixedFromDouble(x, f.fixed());
    return {q.raw, q.overflowed};
  }
  FloatBits b = FloatFromDouble(x, f.floating());
  return {static_cast<RawValue>(b), std::isfinite(x) && IsInf(b, f.floating())};
}

Quantized Convert(RawValue v, const NumberFormat& from, const NumberFormat& to) {
  if (from.is_fixed() && to.is_fixed()) {
    FixedValue q = FixedConvert(v, from.fixed(), to.fixed());
    return {q.raw, q.overflowed};
  }
  if (from.is_fixed()) {
    FloatBits b = FloatFromFixed(v, from.fixed(), to.floating());
    return {static_cast<RawValue>(b), IsInf(b, to.floating())};
  }
  const auto bits = static_cast<FloatBits>(v);
  if (to.is_fixed()) {
    FixedValue q = FixedFromFloat(bits, from.floating(), to.fixed());
    return {q.raw, q.overflowed};
  }
  FloatBits b = FloatConvert(bits, from.floating(), to.floating());
  return {static_cast<RawValue>(b), !IsInf(bits, from.floating()) && IsInf(b, to.floating())};
}

}  // namespace fpgaserve::numeric
