// The self-checking Verilog testbench of a generated core: random and edge input vectors, the
// emulator's exact expected outputs, random bubbles and back-pressure, PASS/FAIL on stdout.
#pragma once

#include <vector>

#include "core/status.h"
#include "hw/design.h"
#include "numeric/emulator.h"
#include "numeric/number_format.h"

namespace fpgaserve::hw {

inline constexpr const char* kTestbenchModule = "tb_fpgaserve_core";
inline constexpr const char* kTestbenchFile = "tb_fpgaserve_core.v";
inline constexpr const char* kVectorsInFile = "vectors_in.hex";
inline constexpr const char* kVectorsOutFile = "vectors_out.hex";

// Raw element values, one row per vector: inputs in design.in_format (n_in per row), expected
// outputs in design.out_format (n_out per row).
struct TestVectors {
  std::vector<std::vector<numeric::RawValue>> inputs;
  std::vector<std::vector<numeric::RawValue>> outputs;
};

// Edge vectors (all elements at the format's minimum, at its maximum, then zero unless zero is
// the minimum, as in unsigned formats) followed by `random` vectors whose elements are uniform over
// [min_raw, max_raw] of design.in_format. Deterministic in `seed`.
std::vector<std::vector<numeric::RawValue>> MakeInputVectors(const HwDesign& design, int random,
                                                             unsigned seed);

// Inputs from MakeInputVectors(design, vectors, seed) and their outputs from model.RunRaw.
// INVALID_ARGUMENT when the model's input/output formats or element counts differ from the
// design's.
Result<TestVectors> MakeTestVectors(const HwDesign& design, const numeric::QuantizedModel& model,
                                    int vectors, unsigned seed);

// The testbench (tb_fpgaserve_core.v) and its $readmemh files (vectors_in.hex, vectors_out.hex: one
// line per vector, the packed port value in hex). The bench drives the vectors with random input
// bubbles and output back-pressure from an LFSR seeded by `seed`, checks every output in order and
// that out_cycles >= design.latency_cycles, prints "PASS <n> vectors" or
// "FAIL vector <i>: expected <hex> got <hex>" (or another "FAIL ..." line) and calls $finish; a
// cycle limit turns a stuck core into "FAIL timeout ...". Run it from the folder holding the hex
// files: iverilog -g2005 -s tb_fpgaserve_core -o tb.vvp tb_fpgaserve_core.v <rtl files> && vvp
// tb.vvp
Result<std::vector<VerilogFile>> GenerateTestbench(const HwDesign& design,
                                                   const TestVectors& vectors, unsigned seed);

// MakeTestVectors then GenerateTestbench: `vectors` random vectors plus the edge vectors.
Result<std::vector<VerilogFile>> GenerateTestbench(const HwDesign& design,
                                                   const numeric::QuantizedModel& model,
                                                   int vectors, unsigned seed);

}  // namespace fpgaserve::hw
