#include "boards/board.h"

#include <gtest/gtest.h>

#include <set>

namespace fpgaserve::boards {
namespace {

TEST(CatalogTest, EveryBoardOfTheIssueIsThere) {
  auto all = AllBoards();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::set<std::string> ids;
  for (const auto& b : *all) ids.insert(b.id);
  for (const char* id : {"sim", "icebreaker", "ebaz4205", "zedboard", "pynq-z2", "alveo-u50"}) {
    EXPECT_TRUE(ids.count(id)) << id;
  }
  auto ice = FindBoard("icebreaker");
  ASSERT_TRUE(ice.ok());
  EXPECT_EQ(ice->part, "iCE40UP5K");
  EXPECT_EQ(ice->package, "sg48");
  EXPECT_EQ(ice->resources.lut, 5280);
  EXPECT_EQ(ice->resources.dsp, 8);
  EXPECT_DOUBLE_EQ(ice->clock_mhz, 12);
  EXPECT_EQ(ice->toolchain, "icestorm");
  EXPECT_EQ(FindBoard("ebaz4205")->part, "xc7z010clg400-1");
  EXPECT_EQ(FindBoard("zedboard")->part, "xc7z020clg484-1");
  EXPECT_EQ(FindBoard("pynq-z2")->part, "xc7z020clg400-1");
  EXPECT_EQ(FindBoard("alveo-u50")->part, "xcu50-fsvh2104-2-e");
  EXPECT_EQ(FindBoard("alveo-u50")->toolchain, "vitis");
  EXPECT_LT(FindBoard("sim")->resources.lut, 0);  // unlimited
}

TEST(CatalogTest, UnknownBoardListsTheKnownOnes) {
  auto b = FindBoard("de10-nano");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kNotFound);
  EXPECT_NE(b.status().message().find("unknown board 'de10-nano'"), std::string::npos);
  EXPECT_NE(b.status().message().find("icebreaker"), std::string::npos);
}

TEST(CatalogTest, BadBoardFilesNameTheField) {
  const std::string good = R"({"id": "x", "name": "X", "vendor": "Lattice", "family": "ice40",
    "part": "iCE40UP5K", "package": "sg48", "device": "up5k", "lut_kind": "LUT4",
    "resources": {"lut": 5280, "ff": 5280, "dsp": 8, "bram": 30}, "clock_mhz": 12,
    "toolchain": "icestorm", "host_interface": "uart", "default_interface": "stream",
    "pins": ["clk:35"]})";
  ASSERT_TRUE(ParseBoard(good, "b.json").ok()) << ParseBoard(good, "b.json").status().ToString();
  auto expect = [&](const std::string& from, const std::string& to, const std::string& message) {
    std::string text = good;
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    auto r = ParseBoard(text, "b.json");
    ASSERT_FALSE(r.ok()) << to;
    EXPECT_NE(r.status().message().find(message), std::string::npos) << r.status().message();
  };
  expect(R"("family": "ice40")", R"("family": "ecp5")", "b.json.family: 'ecp5'; expected one of");
  expect(R"("dsp": 8)", R"("dsp": -1)", "b.json.resources.dsp: -1; expected >= 0");
  expect(R"("lut": 5280)", R"("lut": "many")", "b.json.resources.lut");
  expect(R"("clock_mhz": 12)", R"("clock_mhz": 0)", "b.json.clock_mhz");
  expect(R"("id": "x")", R"("id": "X Y")", "b.json.id");
  expect(R"("pins": ["clk:35"])", R"("pins": ["clk"])", "b.json.pins[0]");
  expect(R"("toolchain": "icestorm")", R"("toolchain": "vivado")", "an ice40 board needs");
  expect(R"("dsp": 8)", R"("dsp": null)", "a real board needs lut, ff, dsp and bram");
  expect(R"("vendor": "Lattice",)", "", "missing required field 'vendor'");
  EXPECT_FALSE(ParseBoard("[1]", "b.json").ok());
  EXPECT_FALSE(ParseBoard("{", "b.json").ok());
}

}  // namespace
}  // namespace fpgaserve::boards
