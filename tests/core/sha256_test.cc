// SHA-256 against the FIPS 180-4 / NIST CAVP example vectors, including block-boundary lengths.
#include "core/sha256.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace fpgaserve {
namespace {

TEST(Sha256Test, FipsVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(
      Sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                "klmnopqrlmnopqrsmnopqrstnopqrstu"),
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(Sha256Hex(std::string(1'000'000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, IncrementalEqualsOneShotAcrossBlockBoundaries) {
  std::string text;
  for (int i = 0; i < 300; ++i) text.push_back(static_cast<char>(i * 7 + 3));
  for (std::size_t len : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 119u, 120u, 128u, 300u}) {
    const std::string part = text.substr(0, len);
    Sha256 h;
    for (std::size_t i = 0; i < part.size(); i += 13)
      h.Update(std::string_view(part).substr(i, 13));
    EXPECT_EQ(h.FinishHex(), Sha256Hex(part)) << "length " << len;
  }
}

TEST(Sha256Test, File) {
  auto path = std::filesystem::temp_directory_path() / "fpgaserve_sha256_test.bin";
  std::ofstream(path, std::ios::binary) << "abc";
  auto digest = Sha256File(path.string());
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  EXPECT_EQ(*digest, Sha256Hex("abc"));
  std::filesystem::remove(path);
  EXPECT_EQ(Sha256File(path.string()).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fpgaserve
