// Test support for the floating-point units: wraps one unit in a core that obeys the
// fpgaserve_core port contract (operands in, result out, the whole pipeline stalling when the
// output is held), builds it with Verilator into a sim library (cached by content) and streams
// operand rows through it at one per clock.
#pragma once

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "hw/float_units.h"
#include "numeric/float_format.h"
#include "toolchain/sim_core.h"
#include "toolchain/verilator_build.h"

namespace fpgaserve::hw::testing {

// fpgaserve_core around `unit`: in_data = operands (a at element 0, b at 1), out_data = y, with an
// output register (latency unit.latency + 1).
inline toolchain::SimCoreSpec FloatUnitCore(const FloatUnit& unit) {
  const int w = unit.in_width, wo = unit.out_width, l = unit.latency;
  const std::string W = std::to_string(w), WO = std::to_string(wo), L = std::to_string(l);
  std::string v = "// Test core around " + unit.module + " (latency " + L + " + output register).\n" +
                  "module fpgaserve_core (\n"
                  "  input  wire clk,\n"
                  "  input  wire rst,\n"
                  "  input  wire in_valid,\n"
                  "  output wire in_ready,\n"
                  "  input  wire [" + std::to_string(unit.operands * w - 1) + ":0] in_data,\n"
                  "  output wire out_valid,\n"
                  "  input  wire out_ready,\n"
                  "  output wire [" + std::to_string(wo - 1) + ":0] out_data,\n"
                  "  output wire [63:0] out_cycles,\n"
                  "  output reg  [63:0] cycle_count\n"
                  ");\n"
                  "  reg [" + L + ":0] v;\n"
                  "  reg [" + std::to_string(wo - 1) + ":0] y_q;\n"
                  "  wire [" + std::to_string(wo - 1) + ":0] y;\n"
                  "  wire en = !v[" + L + "] || out_ready;\n"
                  "  assign in_ready = en;\n"
                  "  assign out_valid = v[" + L + "];\n"
                  "  assign out_data = y_q;\n"
                  "  assign out_cycles = 64'd0;\n" +
                  "  " + unit.module + " u (.clk(clk), .en(en), .a(in_data[0 +: " + W + "])" +
                  (unit.operands == 2 ? ", .b(in_data[" + W + " +: " + W + "])" : std::string()) + ", .y(y));\n" +
                  "  always @(posedge clk) begin\n"
                  "    if (rst) begin\n"
                  "      cycle_count <= 64'd0;\n"
                  "      v <= 0;\n"
                  "    end else begin\n"
                  "      cycle_count <= cycle_count + 64'd1;\n"
                  "      if (en) begin\n" +
                  (l > 0 ? "        v <= {v[" + std::to_string(l - 1) + ":0], in_valid};\n" : "        v <= in_valid;\n") +
                  "        y_q <= y;\n"
                  "      end\n"
                  "    end\n"
                  "  end\n"
                  "endmodule\n";
  toolchain::SimCoreSpec spec;
  spec.verilog = {{"fpgaserve_core.v", v}, {unit.module + ".v", unit.text}};
  spec.n_in = unit.operands;
  spec.n_out = 1;
  spec.in_width = w;
  spec.out_width = wo;
  spec.out_signed = unit.out_signed;
  spec.latency_cycles = l + 1;
  spec.initiation_interval = 1;
  return spec;
}

// A built unit core, loaded.
class FloatUnitSim {
 public:
  // Builds into `dir` (a fresh directory per unit); ok() tells whether it worked, error() why.
  FloatUnitSim(const FloatUnit& unit, const std::string& dir) : operands_(unit.operands) {
    auto built = toolchain::BuildSimLibrary(FloatUnitCore(unit), dir);
    if (!built.ok()) {
      error_ = built.status().ToString();
      return;
    }
    dl_ = dlopen(built->library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!dl_) {
      error_ = dlerror();
      return;
    }
    open_ = reinterpret_cast<void* (*)()>(dlsym(dl_, "fs_open"));
    infer_ = reinterpret_cast<long long (*)(void*, const long long*, long long, long long*, unsigned long long*)>(
        dlsym(dl_, "fs_infer"));
    close_ = reinterpret_cast<void (*)(void*)>(dlsym(dl_, "fs_close"));
    if (!open_ || !infer_ || !close_) {
      error_ = "the sim library lacks the fs_* entry points";
      return;
    }
    handle_ = open_();
    if (!handle_) error_ = "fs_open failed";
  }
  ~FloatUnitSim() {
    if (handle_) close_(handle_);
    if (dl_) dlclose(dl_);
  }
  FloatUnitSim(const FloatUnitSim&) = delete;
  FloatUnitSim& operator=(const FloatUnitSim&) = delete;

  bool ok() const { return handle_ != nullptr; }
  const std::string& error() const { return error_; }

  // Streams the operand rows (operands() values each) through the unit; one result per row.
  // Empty on a simulation failure.
  std::vector<std::uint64_t> Run(const std::vector<std::uint64_t>& operands) {
    const long long rows = static_cast<long long>(operands.size()) / operands_;
    std::vector<long long> in(operands.begin(), operands.end());
    std::vector<long long> out(static_cast<std::size_t>(rows));
    if (infer_(handle_, in.data(), rows, out.data(), nullptr) < 0) return {};
    return {out.begin(), out.end()};
  }

 private:
  int operands_ = 2;
  void* dl_ = nullptr;
  void* handle_ = nullptr;
  void* (*open_)() = nullptr;
  long long (*infer_)(void*, const long long*, long long, long long*, unsigned long long*) = nullptr;
  void (*close_)(void*) = nullptr;
  std::string error_;
};

// The special-value grid of a format: ±0, ±min subnormal, ±max subnormal, ±min normal, ±1,
// ±max finite, ±Inf, NaN (canonical and another payload), values either side of 1 and 2, and a
// few values whose sums and products land on rounding ties.
inline std::vector<std::uint64_t> SpecialValues(const numeric::FloatFormat& f) {
  using namespace numeric;
  const int m = f.mantissa_bits, e = f.exponent_bits;
  const std::uint64_t sign = 1ULL << (f.width() - 1);
  const std::uint64_t mant_mask = (1ULL << m) - 1;
  const std::uint64_t exp_all = ((1ULL << e) - 1) << m;
  const std::uint64_t one = static_cast<std::uint64_t>(f.bias()) << m;
  std::vector<std::uint64_t> pos = {
      0,                         // +0
      1,                         // min subnormal
      mant_mask,                 // max subnormal
      1ULL << m,                 // min normal
      (1ULL << m) | 1,           // just above min normal
      one,                       // 1
      one | 1,                   // 1 + ulp
      one - 1,                   // 1 - ulp/2 (largest below 1)
      one + (1ULL << m),         // 2
      one | (1ULL << (m - 1)),   // 1.5 (ties when halved/doubled)
      (one + (1ULL << m)) | 1,   // 2 + ulp
      exp_all - 1,               // max finite
      exp_all - (1ULL << m),     // max finite's exponent, mantissa 0
      exp_all,                   // Inf
      CanonicalNaN(f),           // NaN
      exp_all | 1,               // NaN with another payload
      (1ULL << (m - 1)),         // half the subnormal range
  };
  std::vector<std::uint64_t> all;
  for (auto v : pos) {
    all.push_back(v);
    all.push_back(v | sign);
  }
  return all;
}

// Random operands that reach every part of a unit: uniformly random bit patterns (mostly large
// and small exponents), and values with nearby exponents (cancellation, ties).
inline std::uint64_t RandomOperand(const numeric::FloatFormat& f, std::mt19937_64& rng) {
  const std::uint64_t mask = f.width() >= 64 ? ~0ULL : (1ULL << f.width()) - 1;
  const std::uint64_t bits = rng() & mask;
  switch (rng() % 4) {
    case 0: return bits;  // anything
    case 1: {             // exponent near the bias: values around 1
      const int m = f.mantissa_bits;
      const std::uint64_t sign = bits & (1ULL << (f.width() - 1));
      const std::int64_t exp = f.bias() + static_cast<std::int64_t>(rng() % 9) - 4;
      return sign | (static_cast<std::uint64_t>(exp) << m) | (bits & ((1ULL << m) - 1));
    }
    case 2: {  // few mantissa bits set: exact results and ties
      const int m = f.mantissa_bits;
      const std::uint64_t keep = ~((1ULL << (m > 3 ? m - 3 : 0)) - 1);
      return bits & keep & mask;
    }
    default: {  // small exponents: subnormal inputs and results
      const int m = f.mantissa_bits;
      const std::uint64_t sign = bits & (1ULL << (f.width() - 1));
      const std::uint64_t exp = rng() % 4;
      return sign | (exp << m) | (bits & ((1ULL << m) - 1));
    }
  }
}

// A parameterized unit test with a fresh temporary directory (removed afterwards) for its build.
template <typename Param>
class FloatUnitTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fpgaserve_float_unit_" + std::to_string(::getpid()) + "_" + std::to_string(std::random_device{}()));
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path dir_;
};

// NaN results compare equal only when both are the canonical NaN: units must produce exactly it.
inline std::string Hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace fpgaserve::hw::testing
