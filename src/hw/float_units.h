// Generated, pipelined floating-point units for any float<E,M> (E 2..11, M 1..52): Verilog
// modules whose results equal numeric::Float* (src/numeric/float_format.h) bit for bit —
// round to nearest even, subnormals, signed zeros, Inf, and the canonical quiet NaN.
//
// Every unit is one self-contained module (its helper functions inside) with the ports
//   input  wire clk,
//   input  wire en,               // the pipeline advances on a rising edge where en is high
//   input  wire [IN_W-1:0] a,     // first operand
//   input  wire [IN_W-1:0] b,     // second operand (binary units only)
//   output wire [OUT_W-1:0] y
// and a fixed latency: an operand pair presented in the cycle of an enabled edge e has its
// result on y after `latency` further enabled edges (latency 0: y is combinational). A unit's
// datapath is a chain of combinational steps with cut points between them; `stages` picks how
// many cut points become registers (spread evenly), so more stages shorten the longest path and
// raise Fmax at the cost of flip-flops. docs/hardware.md lists each unit's steps.
#pragma once

#include <string>

#include "core/status.h"
#include "numeric/float_format.h"
#include "numeric/number_format.h"

namespace fpgaserve::hw {

struct FloatUnit {
  std::string module;
  std::string text;  // the Verilog module
  int latency = 0;   // register stages from operands to y
  int operands = 2;  // 1 (a) or 2 (a, b)
  int in_width = 0;  // bits of a (and b)
  int out_width = 0;  // bits of y
  bool out_signed = false;  // y is a signed fixed-point value (float bits are unsigned)
  int max_stages = 0;       // the unit's number of cut points
};

// a + b (or a - b) in float f: numeric::FloatAdd / FloatSub.
Result<FloatUnit> EmitFloatAdd(const std::string& module, const numeric::FloatFormat& f, int stages,
                               bool subtract = false);
// a * b in float f: numeric::FloatMul.
Result<FloatUnit> EmitFloatMul(const std::string& module, const numeric::FloatFormat& f, int stages);

// a / b in float f: numeric::FloatDiv (x/0 = signed Inf, 0/0 and Inf/Inf = NaN).
Result<FloatUnit> EmitFloatDiv(const std::string& module, const numeric::FloatFormat& f, int stages);

// exp(a) in float f (one operand): numeric::FloatExp, its fixed-point algorithm step for step.
Result<FloatUnit> EmitFloatExp(const std::string& module, const numeric::FloatFormat& f, int stages);

// One operand converted from `from` to `to` (any two formats, at least one of them float):
// numeric::FloatConvert, FloatFromFixed, or FixedFromFloat(...).raw (the fixed target's
// quantization and overflow modes; NaN -> 0, +/-Inf -> max/min under SAT, 0 under WRAP).
Result<FloatUnit> EmitNumberConvert(const std::string& module, const numeric::NumberFormat& from,
                                    const numeric::NumberFormat& to, int stages);

// The number of cut points of a unit kind (valid `stages` are 0..this).
int FloatAddMaxStages();
int FloatMulMaxStages();
int FloatDivMaxStages(const numeric::FloatFormat& f);
int FloatExpMaxStages(const numeric::FloatFormat& f);
int NumberConvertMaxStages(const numeric::NumberFormat& from, const numeric::NumberFormat& to);

}  // namespace fpgaserve::hw
