// One number format of either family — fixed<W,I> or float<E,M> — as a precision spec names it.
// Parsing accepts every spelling users write: fixed<16,6>, ufixed<8,0,RND,SAT>, float16, float<6,9>.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "core/status.h"
#include "numeric/fixed_format.h"
#include "numeric/float_format.h"

namespace fpgaserve::numeric {

class NumberFormat {
 public:
  NumberFormat() = default;
  NumberFormat(FixedFormat f) : v_(f) {}  // NOLINT(google-explicit-constructor)
  NumberFormat(FloatFormat f) : v_(f) {}  // NOLINT(google-explicit-constructor)

  bool is_fixed() const { return std::holds_alternative<FixedFormat>(v_); }
  bool is_float() const { return !is_fixed(); }
  const FixedFormat& fixed() const { return std::get<FixedFormat>(v_); }
  const FloatFormat& floating() const { return std::get<FloatFormat>(v_); }
  int width() const { return is_fixed() ? fixed().width : floating().width(); }
  std::string ToString() const { return is_fixed() ? fixed().ToString() : floating().ToString(); }
  bool operator==(const NumberFormat&) const = default;

 private:
  std::variant<FixedFormat, FloatFormat> v_ = FixedFormat{};
};

// "fixed<...>" / "ufixed<...>" / "float..." / "bfloat16"; errors list the accepted forms.
Result<NumberFormat> ParseNumberFormat(std::string_view spec);

// A value held in some NumberFormat: fixed raw integers and float bit patterns share one word.
using RawValue = std::int64_t;

struct Quantized {
  RawValue raw = 0;
  bool overflowed = false;  // wrapped or saturated (fixed), or a finite value became Inf (float)
};

// The exact double nearest to a value (exact for every format of up to 53 significant bits).
double ToDouble(RawValue v, const NumberFormat& f);
// Rounds a double into a format by the format's own rules.
Quantized FromDouble(double x, const NumberFormat& f);
// Converts between any two formats (fixed rounding/overflow modes of the target; RNE for floats).
Quantized Convert(RawValue v, const NumberFormat& from, const NumberFormat& to);

}  // namespace fpgaserve::numeric
