#include "core/file_io.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace fpgaserve {
namespace {

TEST(FileIoTest, WriteReadAndLimits) {
  auto dir = std::filesystem::temp_directory_path() / "fpgaserve_file_io_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "f.bin").string();
  ASSERT_TRUE(WriteFileAtomic(path, std::string("ab\0cd", 5)).ok());
  auto r = ReadFile(path);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 5u);
  EXPECT_EQ(*ReadFilePrefix(path, 2), "ab");
  auto limited = ReadFile(path, 4);
  ASSERT_FALSE(limited.ok());
  EXPECT_EQ(limited.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ReadFile((dir / "missing").string()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadFile(dir.string()).status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fpgaserve
