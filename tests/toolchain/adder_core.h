// A hand-written core obeying the fpgaserve_core port contract, for testing the simulated board
// without the hardware generator: a two-stage adder pipeline with any port widths.
#pragma once

#include <string>

#include "toolchain/sim_core.h"

namespace fpgaserve::toolchain::testing {

// A two-stage pipeline: stage 1 registers the sum of the sign-extended inputs, stage 2 copies it;
// output j is (sum + j) truncated to the output width. Stalls as a whole when the output is held.
inline SimCoreSpec AdderCore(int n_in, int in_width, int n_out, int out_width, bool out_signed) {
  auto sext = [&](int i) {
    const std::string slice =
        "in_data[" + std::to_string(i * in_width) + " +: " + std::to_string(in_width) + "]";
    if (in_width == 64) return slice;
    return "{{" + std::to_string(64 - in_width) + "{in_data[" +
           std::to_string(i * in_width + in_width - 1) + "]}}, " + slice + "}";
  };
  std::string sum;
  for (int i = 0; i < n_in; ++i) sum += (i ? " + " : "") + sext(i);
  std::string outs;
  for (int j = 0; j < n_out; ++j) {
    outs += "  assign out_data[" + std::to_string(j * out_width) +
            " +: " + std::to_string(out_width) + "] = s2[" + std::to_string(out_width - 1) +
            ":0] + " + std::to_string(out_width) + "'d" + std::to_string(j) + ";\n";
  }
  std::string v = R"(// Test core: a two-stage adder pipeline.
module fpgaserve_core (
  input  wire clk,
  input  wire rst,
  input  wire in_valid,
  output wire in_ready,
  input  wire [NI-1:0] in_data,
  output wire out_valid,
  input  wire out_ready,
  output wire [NO-1:0] out_data,
  output wire [63:0] out_cycles,
  output reg  [63:0] cycle_count
);
  reg v1, v2;
  reg [63:0] s1, s2, t1, t2;
  wire advance = !v2 || out_ready;
  assign in_ready = advance;
  assign out_valid = v2;
  assign out_cycles = cycle_count - t2;
  always @(posedge clk) begin
    if (rst) begin
      cycle_count <= 64'd0;
      v1 <= 1'b0;
      v2 <= 1'b0;
    end else begin
      cycle_count <= cycle_count + 64'd1;
      if (advance) begin
        v1 <= in_valid;
        s1 <= SUM;
        t1 <= cycle_count;
        v2 <= v1;
        s2 <= s1;
        t2 <= t1;
      end
    end
  end
OUTS
endmodule
)";
  auto replace = [&](const std::string& from, const std::string& to) {
    v.replace(v.find(from), from.size(), to);
  };
  replace("NI-1", std::to_string(n_in * in_width - 1));
  replace("NO-1", std::to_string(n_out * out_width - 1));
  replace("SUM", sum);
  replace("OUTS\n", outs);
  SimCoreSpec spec;
  spec.verilog = {{"fpgaserve_core.v", v}};
  spec.n_in = n_in;
  spec.in_width = in_width;
  spec.n_out = n_out;
  spec.out_width = out_width;
  spec.out_signed = out_signed;
  spec.latency_cycles = 2;
  spec.initiation_interval = 1;
  return spec;
}

}  // namespace fpgaserve::toolchain::testing
