#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "importers/import.h"
#include "model/passes.h"
#include "model/reference_evaluator.h"
#include "test_files.h"

namespace fpgaserve::importers {
namespace {

using nlohmann::json;

// BondMachine's own banknote layout: 4 inputs -> 1 linear -> 2 summation -> 2 softmax -> 2 outputs.
json BondMachineBanknote() {
  json nodes = json::array();
  for (int p = 0; p < 4; ++p) nodes.push_back({{"Layer", 0}, {"Pos", p}, {"Type", "input"}, {"Bias", 0}});
  nodes.push_back({{"Layer", 1}, {"Pos", 0}, {"Type", "linear"}, {"Bias", 0.25}});
  for (int p = 0; p < 2; ++p) {
    nodes.push_back({{"Layer", 2}, {"Pos", p}, {"Type", "summation"}, {"Bias", p ? -0.5 : 0.5}});
    nodes.push_back({{"Layer", 3}, {"Pos", p}, {"Type", "softmax"}, {"Bias", 0}});
    nodes.push_back({{"Layer", 4}, {"Pos", p}, {"Type", "output"}, {"Bias", 0}});
  }
  json w = json::array();
  const double w1[4] = {0.5, -1.0, 2.0, 0.125};
  for (int j = 0; j < 4; ++j) w.push_back({{"Layer", 1}, {"PosCurrLayer", 0}, {"PosPrevLayer", j}, {"Value", w1[j]}});
  w.push_back({{"Layer", 2}, {"PosCurrLayer", 0}, {"PosPrevLayer", 0}, {"Value", 1.5}});
  w.push_back({{"Layer", 2}, {"PosCurrLayer", 1}, {"PosPrevLayer", 0}, {"Value", -1.5}});
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      w.push_back({{"Layer", 3}, {"PosCurrLayer", i}, {"PosPrevLayer", j}, {"Value", 1.0}});
    }
    w.push_back({{"Layer", 4}, {"PosCurrLayer", i}, {"PosPrevLayer", i}, {"Value", 1.0}});
  }
  return {{"Nodes", nodes}, {"Weights", w}};
}

std::string ImportError(const json& doc) {
  testing::TempDir dir;
  auto g = ImportModel(dir.Write("nb.json", doc.dump()));
  return g.ok() ? "" : g.status().message();
}

TEST(NeuralbondTest, ImportsBondMachineBanknoteLayout) {
  testing::TempDir dir;
  auto g = ImportModel(dir.Write("nb.json", BondMachineBanknote().dump()));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->source_format, "neuralbond");
  ASSERT_EQ(g->layers.size(), 3u);  // Dense, Dense, Softmax
  auto out = model::EvaluateReference(*g, model::SampleBatch{1, 4, {1, 2, 3, 4}});
  ASSERT_TRUE(out.ok());
  const double h = 0.5 - 2 + 6 + 0.5 + 0.25;
  const double a = 1.5 * h + 0.5, b = -1.5 * h - 0.5;
  EXPECT_NEAR(out->values[0], std::exp(a) / (std::exp(a) + std::exp(b)), 1e-15);
}

TEST(NeuralbondTest, ExportThenImportGivesTheSameNetwork) {
  model::Graph g;
  g.inputs.push_back({"x", {3}});
  g.layers.push_back(model::MakeDense("fc1", "x", "h", {3, 4, {0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, -0.9, 1.0, 1.1, 1.2}, {0.01, 0.02, 0.03, 0.04}}));
  g.layers.push_back(model::MakeActivation("r", "h", "hr", model::ActivationKind::kReLU));
  g.layers.push_back(model::MakeDense("fc2", "hr", "l", {4, 2, {1, -1, 0.5, 0.25, -0.3, 0.7, 0.2, -0.1}, {0.3, -0.3}}));
  g.layers.push_back(model::MakeActivation("sm", "l", "p", model::ActivationKind::kSoftmax));
  g.outputs.push_back({"p", {}});
  ASSERT_TRUE(model::Finalize(g).ok());
  auto text = ExportNeuralbond(g);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  auto doc = json::parse(*text);
  EXPECT_EQ(doc["Nodes"].back()["Type"], "output");
  EXPECT_EQ(doc["Nodes"][3]["Type"], "relu");

  testing::TempDir dir;
  auto back = ImportModel(dir.Write("nb.json", *text));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  model::SampleBatch in{2, 3, {1, 2, 3, -1, 0.5, 4}};
  auto a = model::EvaluateReference(g, in);
  auto b = model::EvaluateReference(*back, in);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->values, b->values);  // shortest round-trip numbers: bit-identical weights
}

TEST(NeuralbondTest, ExportRejectsWhatNeuralbondCannotHold) {
  model::Graph g;
  g.inputs.push_back({"x", {2}});
  g.layers.push_back(model::MakeDense("fc", "x", "h", {2, 2, {1, 0, 0, 1}, {0, 0}}));
  g.layers.push_back(model::MakeActivation("leaky", "h", "y", model::ActivationKind::kLeakyReLU, 0.1));
  g.outputs.push_back({"y", {}});
  ASSERT_TRUE(model::Finalize(g).ok());
  auto text = ExportNeuralbond(g);
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("layer 'leaky' (LeakyReLU)"), std::string::npos);
}

TEST(NeuralbondTest, BadFilesGiveOneClearError) {
  json d = BondMachineBanknote();
  json no_nodes = d;
  no_nodes.erase("Nodes");
  EXPECT_NE(ImportError(no_nodes).find("missing required field 'Nodes'"), std::string::npos);

  json bad_type = d;
  bad_type["Nodes"][5]["Type"] = "maxpool";
  auto msg = ImportError(bad_type);
  EXPECT_NE(msg.find("node type 'maxpool' is not supported; supported: input"), std::string::npos) << msg;

  json dup = d;
  dup["Nodes"].push_back(d["Nodes"][4]);
  EXPECT_NE(ImportError(dup).find("listed twice"), std::string::npos);

  json edge = d;
  edge["Weights"][0]["PosPrevLayer"] = 9;
  msg = ImportError(edge);
  EXPECT_NE(msg.find("PosPrevLayer in 0..3"), std::string::npos) << msg;

  json soft = d;
  for (auto& w : soft["Weights"]) {
    if (w["Layer"] == 3) w["Value"] = 2.0;
  }
  msg = ImportError(soft);
  EXPECT_NE(msg.find("softmax"), std::string::npos) << msg;

  json mixed = d;
  mixed["Nodes"][5]["Type"] = "relu";  // layer 2 Pos 0 now differs from Pos 1
  EXPECT_NE(ImportError(mixed).find("one type per layer"), std::string::npos);

  json nan_w = d;
  nan_w["Weights"][0]["Value"] = "NaN";
  EXPECT_NE(ImportError(nan_w).find("expected a number, found a string"), std::string::npos);

  json input_late = d;
  input_late["Nodes"][4]["Type"] = "input";
  EXPECT_NE(ImportError(input_late).find("'input' nodes in layer 0"), std::string::npos);

  json hole = d;
  hole["Nodes"].erase(hole["Nodes"].begin() + 2);  // input Pos 2 missing
  EXPECT_NE(ImportError(hole).find("no node at Pos 2"), std::string::npos);

  testing::TempDir dir;
  auto truncated = ImportModel(dir.Write("t.json", d.dump().substr(0, 100)));
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace fpgaserve::importers
