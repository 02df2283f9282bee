// Small builders for generated Verilog text: sized signed literals, identifiers, and the
// requantization function that implements numeric::FixedFromWide in hardware.
#pragma once

#include <string>

#include "numeric/fixed_format.h"

namespace fpgaserve::hw {

// A sized signed decimal literal of `width` bits: "18'sd5", "-(18'sd5)".
std::string SignedLiteral(numeric::Wide value, int width);

// Bits needed to hold `value` as a signed two's complement number.
int SignedBitsFor(numeric::Wide value);

// A Verilog identifier derived from free text (layer names come from model files).
std::string Identifier(const std::string& text);

// Emits `function automatic [out.width-1:0] <name>(input signed [in_width-1:0] v);` computing
// exactly numeric::FixedFromWide(v, in_frac, out).raw's low out.width bits: rounding by
// out.quantization at the dropped bits, then SAT clamping or WRAP to the low bits.
std::string RequantizeFunction(const std::string& name, int in_width, int in_frac,
                               const numeric::FixedFormat& out);

// The element of a packed vector as a signed expression: unsigned formats gain a zero bit.
// Returns the expression and sets *signed_width.
std::string SignedElement(const std::string& bus, int index, const numeric::FixedFormat& f,
                          int* signed_width);

inline int SignedWidth(const numeric::FixedFormat& f) { return f.width + (f.is_signed ? 0 : 1); }

}  // namespace fpgaserve::hw
