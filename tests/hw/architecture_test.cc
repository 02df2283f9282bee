#include "hw/design.h"

#include <gtest/gtest.h>

#include <set>

#include <filesystem>
#include <fstream>

#include "core/subprocess.h"
#include "importers/import.h"
#include "model/passes.h"

namespace fpgaserve::hw {
namespace {

model::Graph Banknote() {
  auto g = importers::ImportModel(std::string(FPGASERVE_SOURCE_DIR) + "/examples/banknote/banknote.onnx");
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return *g;
}

numeric::PrecisionConfig Precision(const model::Graph& g, const std::string& spec) {
  auto cfg = numeric::ResolvePrecision(g, {spec, ""}, nullptr);
  EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
  return *cfg;
}

TEST(ArchitectureTest, BanknoteScheduleAtReuseOne) {
  auto g = Banknote();
  auto d = GenerateDesign(g, Precision(g, "fixed<16,6>"), {1});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->n_in, 4);
  EXPECT_EQ(d->n_out, 2);
  EXPECT_EQ(d->latency_cycles, 6);  // Dense 1 + ReLU 1 + Dense 1 + softmax 3
  EXPECT_EQ(d->initiation_interval, 1);
  ASSERT_EQ(d->layers.size(), 4u);
  EXPECT_EQ(d->layers[0].multipliers, 4 * 16);
  EXPECT_EQ(d->files[0].name, "fpgaserve_core.v");
  EXPECT_NE(d->files[0].text.find("module fpgaserve_core"), std::string::npos);
}

TEST(ArchitectureTest, ReuseTradesMultipliersForCycles) {
  auto g = Banknote();
  for (int r : {2, 4, 8}) {
    auto d = GenerateDesign(g, Precision(g, "fixed<16,6>"), {r});
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->initiation_interval, r);  // the 16-input layer uses the full reuse
    EXPECT_EQ(d->layers[0].reuse, r);      // 4 inputs: R = 8 folds 2 neurons per multiplier
    EXPECT_EQ(d->layers[0].multipliers, r <= 4 ? 16 * ((4 + r - 1) / r) : 16 / (r / 4));
    EXPECT_EQ(d->layers[2].multipliers, 2 * ((16 + r - 1) / r));
    EXPECT_EQ(d->layers[0].latency, r + 1);
  }
}

TEST(ArchitectureTest, ReuseAboveTheInputWidthSharesMultipliersAcrossNeurons) {
  auto g = Banknote();  // 4 -> 16 -> 2
  struct Want {
    int r, reuse0, mult0, reuse2, mult2;
  };
  // Layer 0: g = min(R / 4, 16) neurons per multiplier, effective reuse 4 g, ceil(16 / g)
  // multipliers. Layer 2 (16 inputs): R <= 16 keeps lanes; R = 48 folds 2 neurons (reuse 32);
  // R = 64 is as far as either layer goes.
  for (const Want& w : {Want{16, 16, 4, 16, 2}, Want{20, 20, 4, 16, 2}, Want{48, 48, 2, 32, 1},
                        Want{64, 64, 1, 32, 1}}) {
    SCOPED_TRACE(w.r);
    auto d = GenerateDesign(g, Precision(g, "fixed<16,6>"), {w.r});
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->layers[0].reuse, w.reuse0);
    EXPECT_EQ(d->layers[0].multipliers, w.mult0);
    EXPECT_EQ(d->layers[2].reuse, w.reuse2);
    EXPECT_EQ(d->layers[2].multipliers, w.mult2);
    EXPECT_EQ(d->initiation_interval, std::max(w.reuse0, w.reuse2));
  }
}

TEST(ArchitectureTest, RejectsWhatHardwareCannotDo) {
  auto g = Banknote();
  auto zero = GenerateDesign(g, Precision(g, "fixed<16,6>"), {0});
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("reuse factor 0"), std::string::npos);
  auto huge = GenerateDesign(g, Precision(g, "fixed<16,6>"), {1000});
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("larger than the largest layer (64 weights)"), std::string::npos);
  // Float layers feeding a fixed-point layer: the float -> fixed conversion is not generated.
  auto mixed = Precision(g, "float16");
  const auto fixed = Precision(g, "fixed<16,6>");
  for (std::size_t k = 2; k < g.layers.size(); ++k) mixed.layers.at(g.layers[k].name) = fixed.layers.at(g.layers[k].name);
  auto fl = GenerateDesign(g, mixed, {1});
  ASSERT_FALSE(fl.ok());
  EXPECT_EQ(fl.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(fl.status().message().find("not float to fixed"), std::string::npos) << fl.status().message();
  auto narrow = Precision(g, "fixed<16,6>");
  narrow.layers.at(g.layers[0].name).accum = numeric::FixedFormat{16, 6};
  auto na = GenerateDesign(g, narrow, {1});
  ASSERT_FALSE(na.ok());
  EXPECT_NE(na.status().message().find("exact default accumulator"), std::string::npos);
}

TEST(ArchitectureTest, FloatPrecisionsGenerateFloatLayersWithTheirUnits) {
  auto g = Banknote();
  auto d = GenerateDesign(g, Precision(g, "float16"), {1});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->in_format.ToString(), "float16");
  EXPECT_EQ(d->out_format.ToString(), "float16");
  EXPECT_EQ(d->layers.size(), 4u);
  // Dense 4 -> 16 at R = 1: each neuron's sum passes through 4 chained multiply-add units (one
  // term each), 64 units, a new inference every cycle; 16 -> 2: 2 x 16 units. Softmax on 2
  // outputs has one exp and one divider: II 2, the core's.
  EXPECT_EQ(d->layers[0].multipliers, 64);
  EXPECT_EQ(d->layers[0].initiation_interval, 1);
  EXPECT_EQ(d->layers[2].multipliers, 32);
  EXPECT_EQ(d->layers[2].initiation_interval, 1);
  EXPECT_EQ(d->layers[3].initiation_interval, 2);
  EXPECT_EQ(d->initiation_interval, 2);
  int latency = 0;
  for (const auto& l : d->layers) latency += l.latency;
  EXPECT_EQ(d->latency_cycles, latency);
  std::set<std::string> names;
  for (const auto& f : d->files) names.insert(f.name);
  for (const char* unit : {"fs_l1__hidden_Gemm_fmul.v", "fs_l1__hidden_Gemm_fadd.v", "fs_l4__Softmax_fexp.v",
                           "fs_l4__Softmax_fdiv.v"}) {
    EXPECT_TRUE(names.count(unit)) << unit;
  }
}

// Float Dense reuse R: R >= n_in gives R / n_in neurons per unit (one segment), R < n_in splits a
// neuron over ceil(n_in / R) chained units; the layer's II is the issues per unit. A float layer
// whose II does not divide the core's is rebuilt with the core's II as its period.
TEST(ArchitectureTest, FloatDenseReuseSetsUnitsAndII) {
  auto g = Banknote();
  struct Want {
    int reuse, units0, ii0, units2, ii2, core_ii;
  };
  for (const Want& w : {Want{2, 32, 2, 16, 2, 2}, Want{4, 16, 4, 8, 4, 4}, Want{8, 8, 8, 4, 8, 8},
                        Want{16, 4, 16, 2, 16, 16}, Want{32, 2, 32, 1, 32, 32}, Want{3, 32, 3, 12, 3, 3}}) {
    SCOPED_TRACE("reuse " + std::to_string(w.reuse));
    auto d = GenerateDesign(g, Precision(g, "float32"), {w.reuse});
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->layers[0].multipliers, w.units0);
    EXPECT_EQ(d->layers[0].initiation_interval, w.ii0);
    EXPECT_EQ(d->layers[2].multipliers, w.units2);
    EXPECT_EQ(d->layers[2].initiation_interval, w.ii2);
    EXPECT_EQ(d->initiation_interval, w.core_ii);
    for (const auto& l : d->layers) EXPECT_EQ(d->initiation_interval % l.initiation_interval, 0) << l.name;
  }
}

TEST(ArchitectureTest, GeneratedVerilogIsLintClean) {
  if (!RunSubprocess({"verilator", "--version"}).ok()) GTEST_SKIP() << "verilator not installed";
  auto g = Banknote();
  auto dir = std::filesystem::temp_directory_path() / ("fpgaserve_lint_" + std::to_string(::getpid()));
  for (const char* spec : {"fixed<16,6>", "fixed<12,4,RND_CONV,SAT>"}) {
    for (int r : {1, 3}) {
      auto d = GenerateDesign(g, Precision(g, spec), {r});
      ASSERT_TRUE(d.ok());
      std::filesystem::create_directories(dir);
      std::vector<std::string> argv{"verilator", "--lint-only", "-Wall", "--top-module", kCoreModule};
      for (const auto& f : d->files) {
        std::ofstream((dir / f.name).string()) << f.text;
        argv.push_back((dir / f.name).string());
      }
      auto r2 = RunSubprocess(argv);
      ASSERT_TRUE(r2.ok());
      EXPECT_TRUE(r2->success()) << spec << " R=" << r << "\n" << r2->stderr_text;
      EXPECT_EQ(r2->stderr_text, "") << spec;
      std::filesystem::remove_all(dir);
    }
  }
}

}  // namespace
}  // namespace fpgaserve::hw
