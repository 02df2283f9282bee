// One number format of either family — fixed<W,I> or float<E,M> — as a precision spec names it.
// Parsing accepts every spelling users write: fixed<16,6>, ufixed<8,0,RND,SAT>, float16, float<6,9>.
#pragma once

#include <cstdint>
#include <limits>
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
  // The raw words a format's values occupy: fixed raw integers (two's complement, or unsigned for
  // ufixed), or a float's bit pattern as an unsigned integer (0 .. 2^width - 1).
  std::int64_t min_raw() const { return is_fixed() ? fixed().min_raw() : 0; }
  std::int64_t max_raw() const {
    if (is_fixed()) return fixed().max_raw();
    const int w = floating().width();
    return w >= 63 ? std::numeric_limits<std::int64_t>::max() : (std::int64_t{1} << w) - 1;
  }
  // Whether raw words sign-extend (signed fixed formats only).
  bool raw_is_signed() const { return is_fixed() && fixed().is_signed; }
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
