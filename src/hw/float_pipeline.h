// Building blocks for the floating-point units' Verilog (internal to src/hw): cut points that are
// either pipeline registers or wires, and helper functions (leading-zero count, right shift with
// a sticky bit) emitted inside a unit's module.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "hw/float_units.h"
#include "numeric/float_format.h"

namespace fpgaserve::hw::fp {

// Which of `cut_points` cut points get a register for `stages` stages, spread evenly (stages
// 0..cut_points; the last cut point is registered first, then the middle ones). INVALID_ARGUMENT
// when stages is out of range.
Result<std::vector<bool>> SpreadStages(int stages, int cut_points, const std::string& unit);

// One signal crossing a cut point: `from` (declared before the cut) becomes `to` after it.
struct Carry {
  std::string from, to;
  int width = 1;
  bool is_signed = false;
};

// The Verilog of one cut point: registers `to <= from` advancing on `posedge clk` when `en` if
// `registered`, else wires `to = from`.
std::string Cut(bool registered, const std::vector<Carry>& signals);

// `function automatic [B-1:0] NAME(input [width-1:0] v)`: the number of leading zero bits of v
// (width when v is 0); B = bits for 0..width.
std::string ClzFunction(const std::string& name, int width);
int ClzWidth(int width);  // B above

// `function automatic [width-1:0] NAME(input [width-1:0] v, input [shift_bits-1:0] d)`: v >> d
// with every bit shifted out ORed into bit 0 (a sticky bit); d >= width leaves only the sticky.
std::string ShiftRightStickyFunction(const std::string& name, int width, int shift_bits);

// Replaces every $KEY in `text` by its value (longest keys first, so $MM is not taken for $M).
std::string Fill(std::string text, const std::map<std::string, std::string>& values);

// The comment and port list of a unit module: "// <what> in <f>, ...; latency L", then
// `module <module> (clk, en, a[, b], y)` with every operand and y f.width() bits wide.
std::string UnitHeader(const std::string& module, const std::string& what, const numeric::FloatFormat& f,
                       int latency, bool binary);

// How many cut points are registered.
int Latency(const std::vector<bool>& cuts);

// The FloatUnit record of a generated module whose operands and result are float f.
FloatUnit FloatFormatUnit(const std::string& module, std::string text, const std::vector<bool>& cuts, int operands,
                          const numeric::FloatFormat& f, int max_stages);

// Bits to hold 0..v (v >= 0), at least 1.
int BitsFor(long long v);

// "W'dV" / "W'b..." literals.
std::string Dec(int width, unsigned long long v);
std::string Ones(int width);  // W'b111...

// Checks E 2..11 and M 1..52 (the formats numeric::FloatFormat supports).
Status CheckFormat(const numeric::FloatFormat& f, const std::string& unit);

// The canonical quiet NaN of f as a Verilog literal.
std::string NaNLiteral(const numeric::FloatFormat& f);

}  // namespace fpgaserve::hw::fp
