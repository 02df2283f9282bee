// The file:// store: a directory tree with atomic writes.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "core/file_io.h"
#include "core/sha256.h"
#include "importers/test_files.h"
#include "store/object_store.h"

namespace fpgaserve::store {
namespace {

namespace fs = std::filesystem;
using fpgaserve::testing::TempDir;

std::unique_ptr<ObjectStore> OpenDir(const std::string& dir, std::uint64_t max_bytes = kDefaultMaxObjectBytes) {
  StoreOptions o;
  o.max_object_bytes = max_bytes;
  auto s = OpenStore("file://" + dir, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

// Every file under dir, relative (temp files would show up here).
std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().lexically_relative(dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(FileStoreTest, RoundTripStatAndDelete) {
  TempDir tmp;
  const std::string root = tmp.path() + "/store";  // created on the first write
  auto store = OpenDir(root);
  ASSERT_TRUE(store);
  auto empty = store->List("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  const std::string data = "firmware bytes";
  auto put = store->PutBytes("b1/firmware.bin", data);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->key, "b1/firmware.bin");
  EXPECT_EQ(put->size, data.size());
  EXPECT_EQ(put->sha256, Sha256Hex(data));
  EXPECT_EQ(*ReadFile(root + "/b1/firmware.bin"), data);

  EXPECT_EQ(*store->GetBytes("b1/firmware.bin"), data);
  auto got = store->Get("b1/firmware.bin", tmp.path() + "/dl/f.bin");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->sha256, Sha256Hex(data));
  EXPECT_EQ(*ReadFile(tmp.path() + "/dl/f.bin"), data);

  std::mt19937 rng(5);
  std::string big(3 << 20, '\0');
  for (auto& c : big) c = static_cast<char>(rng());
  const std::string src = tmp.Write("big.bin", big);
  auto put2 = store->Put("b1/big.bin", src);
  ASSERT_TRUE(put2.ok()) << put2.status().ToString();
  EXPECT_EQ(put2->sha256, Sha256Hex(big));
  auto st = store->Stat("b1/big.bin");
  ASSERT_TRUE(st.ok() && st->has_value());
  EXPECT_EQ((*st)->size, big.size());
  EXPECT_EQ((*st)->sha256, Sha256Hex(big));

  EXPECT_FALSE(store->Stat("b1/nope")->has_value());
  auto nf = store->GetBytes("b1/nope");
  EXPECT_EQ(nf.status().code(), StatusCode::kNotFound);
  EXPECT_NE(nf.status().message().find("b1/nope"), std::string::npos);
  EXPECT_EQ(store->Get("b1/nope", tmp.path() + "/x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Put("k", tmp.path() + "/no-such-local-file").status().code(), StatusCode::kNotFound);

  EXPECT_TRUE(store->Delete("b1/firmware.bin").ok());
  EXPECT_TRUE(store->Delete("b1/big.bin").ok());
  EXPECT_TRUE(store->Delete("b1/big.bin").ok()) << "missing is OK";
  EXPECT_FALSE(fs::exists(root + "/b1")) << "empty directories are pruned";
  EXPECT_TRUE(fs::exists(root));
  EXPECT_TRUE(Files(tmp.path() + "/dl") == std::vector<std::string>{"f.bin"}) << "no temp files left";
}

TEST(FileStoreTest, ListIsRecursiveSortedAndFiltersByPrefix) {
  TempDir tmp;
  auto store = OpenDir(tmp.path());
  for (const char* k : {"b2/z.json", "b1/metadata.json", "b1/fw/top.bit", "b10/a", "a.txt"}) {
    ASSERT_TRUE(store->PutBytes(k, k).ok());
  }
  // Foreign files that are not valid keys, and a leftover temp file, are not objects.
  tmp.Write("has space.txt", "x");
  tmp.Write("b1/metadata.json~tmp.1.2", "partial");
  auto all = store->List("");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> keys;
  for (const auto& o : *all) keys.push_back(o.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a.txt", "b1/fw/top.bit", "b1/metadata.json", "b10/a", "b2/z.json"}));
  EXPECT_EQ((*all)[0].size, 5u);

  auto b1 = store->List("b1/");
  ASSERT_TRUE(b1.ok());
  ASSERT_EQ(b1->size(), 2u);
  EXPECT_EQ((*b1)[0].key, "b1/fw/top.bit");
  auto b1x = store->List("b1");
  ASSERT_TRUE(b1x.ok());
  EXPECT_EQ(b1x->size(), 3u);  // b1/... and b10/a
  auto fw = store->List("b1/fw/to");
  ASSERT_TRUE(fw.ok());
  EXPECT_EQ(fw->size(), 1u);
  EXPECT_TRUE(store->List("nothing/")->empty());
  EXPECT_TRUE(store->List("../")->empty());
}

TEST(FileStoreTest, SizeLimitAndKeyValidation) {
  TempDir tmp;
  auto store = OpenDir(tmp.path() + "/s", 100);
  EXPECT_EQ(store->PutBytes("k", std::string(101, 'x')).status().code(), StatusCode::kResourceExhausted);
  const std::string src = tmp.Write("101.bin", std::string(101, 'x'));
  auto put = store->Put("k", src);
  EXPECT_EQ(put.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(put.status().message().find("100"), std::string::npos);
  EXPECT_FALSE(fs::exists(tmp.path() + "/s/k"));
  EXPECT_TRUE(store->PutBytes("k", std::string(100, 'x')).ok());

  // Too large on the way out: an object placed by someone else.
  tmp.Write("s/big", std::string(200, 'y'));
  EXPECT_EQ(store->GetBytes("big").status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(store->Get("big", tmp.path() + "/out").status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(fs::exists(tmp.path() + "/out"));

  for (const char* bad : {"../escape", "/abs", "a//b", "a/./b", ""}) {
    EXPECT_EQ(store->PutBytes(bad, "x").status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(store->GetBytes(bad).status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(store->Delete(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(fs::exists(tmp.path() + "/escape"));
}

TEST(FileStoreTest, ConflictsBetweenObjectsAndDirectories) {
  TempDir tmp;
  auto store = OpenDir(tmp.path());
  ASSERT_TRUE(store->PutBytes("a/b", "x").ok());
  auto dir_in_way = store->PutBytes("a", "y");
  EXPECT_EQ(dir_in_way.status().code(), StatusCode::kAlreadyExists) << dir_in_way.status().ToString();
  auto file_in_way = store->PutBytes("a/b/c", "z");
  EXPECT_EQ(file_in_way.status().code(), StatusCode::kAlreadyExists) << file_in_way.status().ToString();
  EXPECT_EQ(*store->GetBytes("a/b"), "x");
}

TEST(FileStoreTest, ReplacingIsAtomic) {
  TempDir tmp;
  auto store = OpenDir(tmp.path());
  ASSERT_TRUE(store->PutBytes("m.onnx", "old").ok());
  ASSERT_TRUE(store->PutBytes("m.onnx", "new contents").ok());
  EXPECT_EQ(*store->GetBytes("m.onnx"), "new contents");
  EXPECT_EQ(Files(tmp.path()), std::vector<std::string>{"m.onnx"});
}

TEST(FileStoreTest, OpenObjectOnAFile) {
  TempDir tmp;
  tmp.Write("model.json", "{}");
  auto ref = OpenObject("file://" + tmp.path() + "/model.json");
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(*ref->store->GetBytes(ref->key), "{}");
}

}  // namespace
}  // namespace fpgaserve::store
