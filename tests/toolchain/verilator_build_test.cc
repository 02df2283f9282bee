// Builds hand-written cores that obey the fpgaserve_core port contract into simulated-board
// libraries and drives them through the C ABI: packing of narrow and wide ports, sign handling,
// per-inference latency, batch cycles, the build cache, build errors and lint.
#include "toolchain/verilator_build.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "core/file_io.h"
#include "toolchain/adder_core.h"

namespace fpgaserve::toolchain {
namespace {

using ::fpgaserve::toolchain::testing::AdderCore;

namespace fs = std::filesystem;

// The loaded C ABI of one library.
struct SimLibrary {
  void* dl = nullptr;
  void* (*open)() = nullptr;
  int (*info)(void*, int*, int*, int*, int*) = nullptr;
  long long (*infer)(void*, const long long*, long long, long long*, unsigned long long*) = nullptr;
  unsigned long long (*cycles)(void*) = nullptr;
  void (*close)(void*) = nullptr;

  explicit SimLibrary(const std::string& path) {
    dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!dl) return;
    open = reinterpret_cast<decltype(open)>(dlsym(dl, "fs_open"));
    info = reinterpret_cast<decltype(info)>(dlsym(dl, "fs_info"));
    infer = reinterpret_cast<decltype(infer)>(dlsym(dl, "fs_infer"));
    cycles = reinterpret_cast<decltype(cycles)>(dlsym(dl, "fs_cycles"));
    close = reinterpret_cast<decltype(close)>(dlsym(dl, "fs_close"));
  }
  ~SimLibrary() {
    if (dl) dlclose(dl);
  }
  bool ok() const { return dl && open && info && infer && cycles && close; }
};

class VerilatorBuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("fpgaserve_verilator_test_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Builds the core, streams random rows through it and checks every output element.
  void BuildAndCheck(const SimCoreSpec& spec, const std::string& name, unsigned seed) {
    SCOPED_TRACE(name + " seed " + std::to_string(seed));
    auto built = BuildSimLibrary(spec, (dir_ / name).string());
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    EXPECT_TRUE(fs::exists(dir_ / name / "rtl" / "fpgaserve_core.v"));
    EXPECT_TRUE(fs::exists(dir_ / name / "sim" / "harness.cpp"));
    EXPECT_TRUE(fs::exists(built->log_path));
    SimLibrary lib(built->library_path);
    ASSERT_TRUE(lib.ok()) << dlerror();
    void* h = lib.open();
    ASSERT_NE(h, nullptr);
    int n_in = 0, n_out = 0, wi = 0, wo = 0;
    ASSERT_EQ(lib.info(h, &n_in, &n_out, &wi, &wo), 0);
    EXPECT_EQ(n_in, spec.n_in);
    EXPECT_EQ(n_out, spec.n_out);
    EXPECT_EQ(wi, spec.in_width);
    EXPECT_EQ(wo, spec.out_width);

    std::mt19937_64 rng(seed);
    const long long rows = 1000;
    std::vector<long long> in(rows * spec.n_in), out(rows * spec.n_out, 0x5555);
    std::vector<unsigned long long> latency(rows, 0);
    const std::int64_t lo =
        spec.in_width == 64 ? INT64_MIN : -(std::int64_t{1} << (spec.in_width - 1));
    const std::int64_t hi =
        spec.in_width == 64 ? INT64_MAX : (std::int64_t{1} << (spec.in_width - 1)) - 1;
    std::uniform_int_distribution<std::int64_t> dist(lo, hi);
    for (auto& v : in) v = dist(rng);
    const long long cycles = lib.infer(h, in.data(), rows, out.data(), latency.data());
    EXPECT_EQ(cycles, spec.latency_cycles + (rows - 1) * spec.initiation_interval);
    for (long long r = 0; r < rows; ++r) {
      std::uint64_t sum = 0;
      for (int i = 0; i < spec.n_in; ++i) sum += static_cast<std::uint64_t>(in[r * spec.n_in + i]);
      for (int j = 0; j < spec.n_out; ++j) {
        std::uint64_t bits = sum + static_cast<std::uint64_t>(j);
        if (spec.out_width < 64) {
          bits &= (std::uint64_t{1} << spec.out_width) - 1;
          if (spec.out_signed && (bits >> (spec.out_width - 1)) & 1) {
            bits |= ~((std::uint64_t{1} << spec.out_width) - 1);
          }
        }
        ASSERT_EQ(out[r * spec.n_out + j], static_cast<long long>(bits))
            << "row " << r << " output " << j;
      }
      ASSERT_EQ(latency[r], static_cast<unsigned long long>(spec.latency_cycles)) << "row " << r;
    }
    EXPECT_GE(lib.cycles(h), static_cast<unsigned long long>(rows));
    EXPECT_EQ(lib.infer(h, in.data(), 0, out.data(), nullptr), 0);
    // A second batch on the same instance behaves the same (the pipeline drained cleanly).
    std::vector<long long> again(rows * spec.n_out);
    EXPECT_EQ(lib.infer(h, in.data(), rows, again.data(), nullptr), cycles);
    EXPECT_EQ(again, out);
    lib.close(h);
  }

  fs::path dir_;
};

TEST_F(VerilatorBuildTest, NarrowPorts) {
  // 16-bit input port (SData), 36-bit output port (QData), signed and unsigned outputs.
  BuildAndCheck(AdderCore(2, 8, 3, 12, true), "narrow_signed", 1);
  BuildAndCheck(AdderCore(1, 5, 1, 7, false), "narrow_unsigned", 2);
}

TEST_F(VerilatorBuildTest, WidePorts) {
  // 100-bit input port and 128-bit output port (VlWide), 64-bit elements.
  BuildAndCheck(AdderCore(5, 20, 2, 64, true), "wide", 3);
  BuildAndCheck(AdderCore(3, 64, 3, 33, true), "wide64", 4);
}

TEST_F(VerilatorBuildTest, CacheHitCopiesTheLibrary) {
  SimBuildOptions o;
  o.cache_dir = (dir_ / "cache").string();
  const SimCoreSpec spec = AdderCore(2, 6, 1, 9, true);
  auto first = BuildSimLibrary(spec, (dir_ / "a").string(), o);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->cache_hit);
  EXPECT_FALSE(fs::exists(dir_ / "a" / "obj"));
  auto second = BuildSimLibrary(spec, (dir_ / "b").string(), o);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->cache_hit);
  EXPECT_EQ(second->cache_key, first->cache_key);
  EXPECT_EQ(*ReadFile(first->library_path), *ReadFile(second->library_path));
  // Any change to the sources is a different key.
  SimCoreSpec changed = spec;
  changed.verilog[0].text += "// changed\n";
  auto third = BuildSimLibrary(changed, (dir_ / "c").string(), o);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_FALSE(third->cache_hit);
  EXPECT_NE(third->cache_key, first->cache_key);
}

TEST_F(VerilatorBuildTest, FailingBuildShowsToolMessageAndLogPath) {
  SimCoreSpec spec = AdderCore(2, 8, 1, 8, true);
  spec.verilog[0].text += "module broken(input wire a; endmodule\n";
  SimBuildOptions o;
  o.use_cache = false;
  auto r = BuildSimLibrary(spec, (dir_ / "bad").string(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  const std::string log = (dir_ / "bad" / "sim" / "build.log").string();
  EXPECT_NE(r.status().message().find("%Error"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(log), std::string::npos) << r.status().message();
  // The message names the bundle's copy of the source, not the private build directory.
  EXPECT_NE(r.status().message().find((dir_ / "bad" / "rtl").string()), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(fs::exists(log));
}

TEST_F(VerilatorBuildTest, RejectsBadSpecs) {
  SimCoreSpec spec = AdderCore(2, 8, 1, 8, true);
  spec.in_width = 65;
  EXPECT_EQ(BuildSimLibrary(spec, dir_.string()).status().code(), StatusCode::kInvalidArgument);
  spec = AdderCore(2, 8, 1, 8, true);
  spec.verilog[0].name = "../escape.v";
  EXPECT_EQ(BuildSimLibrary(spec, dir_.string()).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(VerilatorBuildTest, Lint) {
  const std::string clean = (dir_ / "top.v").string();
  ASSERT_TRUE(WriteFileAtomic(clean, R"(module top (
  input  wire clk,
  input  wire [7:0] a,
  output reg  [7:0] q
);
  always @(posedge clk) q <= a + 8'd1;
endmodule
)")
                  .ok());
  EXPECT_TRUE(LintVerilog({clean}, "top").ok()) << LintVerilog({clean}, "top").ToString();
  fs::create_directories(dir_ / "unused");
  const std::string unused = (dir_ / "unused" / "top.v").string();
  ASSERT_TRUE(WriteFileAtomic(unused, R"(module top (
  input  wire clk,
  input  wire [7:0] a,
  input  wire [7:0] b,
  output reg  [7:0] q
);
  always @(posedge clk) q <= a + 8'd1;
endmodule
)")
                  .ok());
  Status s = LintVerilog({unused}, "top");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("UNUSED"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace fpgaserve::toolchain
