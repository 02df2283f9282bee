#include "importers/format.h"

#include <gtest/gtest.h>

#include "test_files.h"

namespace fpgaserve::importers {
namespace {

TEST(FormatTest, ParseModelFormat) {
  EXPECT_EQ(*ParseModelFormat("onnx"), ModelFormat::kOnnx);
  EXPECT_EQ(*ParseModelFormat("neuralbond"), ModelFormat::kNeuralbond);
  auto bad = ParseModelFormat("tflite");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("onnx, keras, neuralbond, native"), std::string::npos);
}

TEST(FormatTest, DetectsByContentNotExtension) {
  testing::TempDir dir;
  EXPECT_EQ(*DetectModelFormat(dir.Write("a.onnx", "{\"Nodes\":[],\"Weights\":[]}")),
            ModelFormat::kNeuralbond);
  EXPECT_EQ(*DetectModelFormat(dir.Write("b.json", " {\"format\":\"fpgaserve-model\"}")),
            ModelFormat::kNative);
  EXPECT_EQ(*DetectModelFormat(dir.Write("c.json", "{\"class_name\":\"Sequential\",\"config\":{}}")),
            ModelFormat::kKeras);
  EXPECT_EQ(*DetectModelFormat(dir.Write("d.bin", std::string("\x89HDF\r\n\x1a\n", 8) + "rest")),
            ModelFormat::kKeras);
  EXPECT_EQ(*DetectModelFormat(dir.Write("e.json", std::string("\x08\x07\x12\x07pytorch", 11))),
            ModelFormat::kOnnx);
}

TEST(FormatTest, RejectsUnknownContent) {
  testing::TempDir dir;
  auto empty = DetectModelFormat(dir.Write("empty.onnx", ""));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty file"), std::string::npos);
  auto text = DetectModelFormat(dir.Write("notes.txt", "hello world"));
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("notes.txt: unrecognized file content"), std::string::npos);
  auto other_json = DetectModelFormat(dir.Write("x.json", "{\"hello\":1}"));
  ASSERT_FALSE(other_json.ok());
  EXPECT_NE(other_json.status().message().find("not a model"), std::string::npos);
  auto broken_json = DetectModelFormat(dir.Write("y.json", "{\"Nodes\":[1,"));
  ASSERT_FALSE(broken_json.ok());
  EXPECT_NE(broken_json.status().message().find("not valid JSON"), std::string::npos);
  EXPECT_EQ(DetectModelFormat(dir.path() + "/missing.onnx").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fpgaserve::importers
