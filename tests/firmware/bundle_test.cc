// Bundle metadata: JSON round trip, validation messages that name the field, and precision.json
// reading back as exactly the configuration that was written.
#include "firmware/bundle.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "core/file_io.h"
#include "core/sha256.h"
#include "model/passes.h"

namespace fpgaserve::firmware {
namespace {

BundleMetadata Sample() {
  BundleMetadata m;
  m.id = Sha256Hex("x");
  m.board = "sim";
  m.precision = "fixed<16,6>";
  m.reuse = 2;
  m.interface = "axis";
  m.latency_cycles = 7;
  m.initiation_interval = 2;
  m.inputs = {{"input", {-1, 4}, "FP32", "fixed<16,6>"}};
  m.outputs = {{"probs", {-1, 2}, "FP32", "ufixed<8,0,RND,SAT>"}};
  m.layers = {{"fc1", "Dense", 2, 3, 2, 32}, {"act", "Softmax", 1, 4, 1, 0}};
  m.files = {{"bitstream.bin", Sha256Hex("b"), ""},
             {"model.json", Sha256Hex("m"), ""},
             {"rtl/fpgaserve_core.v", Sha256Hex("v"), ""}};
  m.n_inputs = 4;
  m.n_outputs = 2;
  m.flavor = FlavorOf("axis");
  m.generator_version = "9.9.9";
  m.resources = {812, 400, 4, -1, "LUT4", "nextpnr-ice40"};
  m.clock_mhz = 12;
  m.fmax_mhz = 31.5;
  m.bitstream = {"built", "bitstream.bin", "icepack top.asc bitstream.bin"};
  m.toolchain = {{"yosys", "0.23"}, {"nextpnr-ice40", "0.4"}};
  m.stages = {{"synth", 3.5}, {"place_route", 7.25}};
  return m;
}

TEST(BundleTest, MetadataRoundTrip) {
  const BundleMetadata m = Sample();
  const std::string text = MetadataToJson(m);
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["predictor"], "fpgaserve");
  EXPECT_EQ(j["flavor"], "axist");
  EXPECT_EQ(j["benchcore"], true);
  EXPECT_EQ(j["n_inputs"], 4);
  auto back = ParseBundleMetadata(text, "metadata.json");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id, m.id);
  EXPECT_EQ(back->reuse, 2);
  EXPECT_EQ(back->interface, "axis");
  EXPECT_EQ(back->latency_cycles, 7);
  EXPECT_EQ(back->initiation_interval, 2);
  EXPECT_EQ(back->inputs[0].shape, (std::vector<std::int64_t>{-1, 4}));
  EXPECT_EQ(back->outputs[0].format, "ufixed<8,0,RND,SAT>");
  EXPECT_EQ(back->output_format.width(), 8);
  EXPECT_FALSE(back->output_format.raw_is_signed());
  ASSERT_EQ(back->layers.size(), 2u);
  EXPECT_EQ(back->layers[0].multipliers, 32);
  ASSERT_EQ(back->files.size(), 3u);
  EXPECT_EQ(back->files[2].path, "rtl/fpgaserve_core.v");
  EXPECT_EQ(back->files[0].role, "bitstream");
  EXPECT_EQ(back->files[2].role, "rtl");
  EXPECT_EQ(j["schema_version"], kSchemaVersion);
  EXPECT_EQ(j["generator"], "fpgaserve 9.9.9");
  EXPECT_EQ(j["resources"]["lut"], 812);
  EXPECT_TRUE(j["resources"]["bram"].is_null());
  EXPECT_EQ(j["timing"]["clock_mhz"], 12.0);
  EXPECT_EQ(j["bitstream"]["status"], "built");
  EXPECT_EQ(back->resources.bram, -1);
  EXPECT_EQ(back->resources.source, "nextpnr-ice40");
  EXPECT_DOUBLE_EQ(back->fmax_mhz, 31.5);
  EXPECT_EQ(back->toolchain.at("yosys"), "0.23");
  ASSERT_EQ(back->stages.size(), 2u);
  EXPECT_DOUBLE_EQ(back->stages[1].seconds, 7.25);
  EXPECT_EQ(MetadataToJson(*back), text);
  EXPECT_EQ(FlavorOf("axilite"), "aximm");
  EXPECT_EQ(FlavorOf("stream"), "stream");
}

TEST(BundleTest, ValidationNamesTheField) {
  auto expect_error = [](const std::string& key, const nlohmann::json& value,
                         const std::string& message) {
    auto j = nlohmann::json::parse(MetadataToJson(Sample()));
    if (value.is_null()) {
      j.erase(key);
    } else {
      j[key] = value;
    }
    auto r = ParseBundleMetadata(j.dump(), "m.json");
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_NE(r.status().message().find(message), std::string::npos) << r.status().message();
  };
  expect_error("interface", "pcie", "m.json.interface: 'pcie'; expected stream, axis or axilite");
  expect_error("reuse", 0, "m.json.reuse: 0; expected 1..");
  expect_error("latency_cycles", nullptr, "missing required field 'latency_cycles'");
  expect_error("id", "abc", "m.json.id");
  expect_error("predictor", "bondmachine", "expected 'fpgaserve'");
  expect_error("n_inputs", 5, "disagree with the tensor shapes");
  expect_error("files", nlohmann::json::array({{{"path", "../x"}, {"sha256", "0"}}}),
               "m.json.files[0].path");
  expect_error("files", nlohmann::json::array({{{"path", "model.json"}, {"sha256", "0"}}}),
               "m.json.bitstream.path: 'bitstream.bin' is not among the bundle's files");
  expect_error("schema_version", 1, "m.json.schema_version: 1; expected 2");
  expect_error("schema_version", nullptr, "missing required field 'schema_version'");
  expect_error("resources", nullptr, "missing required field 'resources'");
  expect_error("resources", {{"lut", -3}, {"lut_kind", ""}, {"source", ""}},
               "m.json.resources.lut: -3; expected >= 0 or null");
  expect_error("bitstream", {{"status", "maybe"}, {"path", ""}, {"command", ""}},
               "m.json.bitstream.status: 'maybe'; expected built or needs-vendor-tools");
  expect_error("timing", {{"clock_mhz", "fast"}}, "m.json.timing.clock_mhz: expected a number");
  auto j = nlohmann::json::parse(MetadataToJson(Sample()));
  j["inputs"][0]["format"] = "fixed<99,3>";
  auto r = ParseBundleMetadata(j.dump(), "m.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("m.json.inputs[0].format"), std::string::npos)
      << r.status().message();
  EXPECT_FALSE(ParseBundleMetadata("{", "m.json").ok());
}

TEST(BundleTest, PrecisionJsonReadsBackExactly) {
  model::Graph g;
  g.inputs.push_back({"x", {3}});
  g.layers.push_back(
      model::MakeDense("fc1", "x", "h", {3, 2, {0.5, -1.25, 2, 0.125, 3, -0.75}, {0.1, -0.2}}));
  g.layers.push_back(
      model::MakeActivation("lrelu", "h", "hl", model::ActivationKind::kLeakyReLU, 0.1));
  g.layers.push_back(model::MakeDense("fc2", "hl", "z", {2, 2, {1, -1, 0.5, 0.25}, {0, 0.5}}));
  g.layers.push_back(model::MakeActivation("sm", "z", "p", model::ActivationKind::kSoftmax));
  g.outputs.push_back({"p", {}});
  ASSERT_TRUE(model::Finalize(g).ok());
  const auto dir = std::filesystem::temp_directory_path() /
                   ("fpgaserve_bundle_test_" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  for (const std::string spec :
       {"fixed<16,6>", "fixed<12,4,RND,SAT>", "fixed<10,3,RND_CONV,WRAP>"}) {
    SCOPED_TRACE(spec);
    auto p = numeric::ResolvePrecision(g, {spec, ""}, nullptr);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    p->layers["sm"].table_size = 256;
    p->layers["fc2"].result =
        numeric::FixedFormat{9, 2, false, numeric::Quantization::kRnd, numeric::Overflow::kSat};
    p->softmax = numeric::SoftmaxMode::kArgmax;
    const std::string path = (dir / "precision.json").string();
    ASSERT_TRUE(WriteFileAtomic(path, PrecisionConfigJson(*p)).ok());
    auto back = numeric::ResolvePrecision(g, {"", path}, nullptr);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->input, p->input);
    EXPECT_EQ(back->softmax, p->softmax);
    ASSERT_EQ(back->layers.size(), p->layers.size());
    for (const auto& [name, lp] : p->layers) {
      SCOPED_TRACE(name);
      const auto& q = back->layers.at(name);
      EXPECT_EQ(q.weight, lp.weight);
      EXPECT_EQ(q.bias, lp.bias);
      EXPECT_EQ(q.accum, lp.accum);
      EXPECT_EQ(q.result, lp.result);
      EXPECT_EQ(q.table_size, lp.table_size);
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(BundleTest, ListAndVerifyFiles) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("fpgaserve_bundle_files_" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir / "rtl");
  ASSERT_TRUE(WriteFileAtomic((dir / "rtl" / "b.v").string(), "module b; endmodule\n").ok());
  ASSERT_TRUE(WriteFileAtomic((dir / "model.json").string(), "{}").ok());
  ASSERT_TRUE(WriteFileAtomic((dir / "metadata.json").string(), "{}").ok());
  auto files = ListBundleFiles(dir.string());
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path, "model.json");
  EXPECT_EQ((*files)[0].sha256, Sha256Hex("{}"));
  EXPECT_EQ((*files)[1].path, "rtl/b.v");
  BundleMetadata m = Sample();
  m.files = *files;
  m.bitstream = {"needs-vendor-tools", "", "vivado -mode batch -source vivado/build.tcl"};
  EXPECT_TRUE(VerifyBundleFile(dir.string(), m, "rtl/b.v").ok());
  EXPECT_FALSE(VerifyBundleFile(dir.string(), m, "sim/libfpgaserve_sim.so").ok());
  ASSERT_TRUE(WriteFileAtomic((dir / "model.json").string(), "{ }").ok());
  Status s = VerifyBundleFile(dir.string(), m, "model.json");
  EXPECT_NE(s.message().find("the bundle was modified"), std::string::npos) << s.message();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fpgaserve::firmware
