// Store URIs, object URIs, key validation and S3 settings from the environment.
#include "store/object_store.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>

#include "importers/test_files.h"

namespace fpgaserve::store {
namespace {

using fpgaserve::testing::TempDir;

TEST(ValidateKeyTest, AcceptsRelativePaths) {
  for (const char* k : {"a", "model.onnx", "b1/metadata.json", "x/y/z/w.bin", "A-b_c.d", "..a", "a..", ".hidden",
                        "a/.b", "a/b..c"}) {
    EXPECT_TRUE(ValidateKey(k).ok()) << k << ": " << ValidateKey(k).ToString();
  }
  EXPECT_TRUE(ValidateKey(std::string(1024, 'k')).ok());
}

TEST(ValidateKeyTest, RejectsKeysThatCouldEscapeOrAreMalformed) {
  struct Case {
    std::string key;
    std::string why;
  };
  for (const Case& c : std::vector<Case>{{"", "empty"},
                                         {"/etc/passwd", "absolute"},
                                         {"..", "'..'"},
                                         {"../x", "'..'"},
                                         {"a/../../x", "'..'"},
                                         {"a/..", "'..'"},
                                         {".", "'.'"},
                                         {"a/./b", "'.'"},
                                         {"a//b", "empty path segment"},
                                         {"a/", "empty path segment"},
                                         {"a b", "' '"},
                                         {"a\\b", "'\\'"},
                                         {"a?b", "'?'"},
                                         {"a%2e", "'%'"},
                                         {std::string("a\0b", 3), "byte 0"},
                                         {"caf\xc3\xa9", "byte"},
                                         {std::string(1025, 'k'), "1025 bytes"}}) {
    Status st = ValidateKey(c.key);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.key;
    EXPECT_NE(st.message().find(c.why), std::string::npos) << c.key << ": " << st.message();
  }
}

TEST(OpenStoreTest, ParsesSchemesAndRejectsMalformedUris) {
  TempDir dir;
  StoreOptions o;
  o.s3 = S3Options{};  // never read the environment here
  o.s3->endpoint = "http://127.0.0.1:1";

  auto f = OpenStore("file://" + dir.path(), o);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->Uri(), "file://" + dir.path());
  EXPECT_FALSE((*f)->ReadOnly());
  EXPECT_TRUE(OpenStore("file://localhost" + dir.path(), o).ok());

  auto s = OpenStore("s3://my-bucket/models/v1/", o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Uri(), "s3://my-bucket/models/v1/");

  auto h = OpenStore("https://example.com/models", o);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_TRUE((*h)->ReadOnly());
  auto hc = OpenStore("https://user:hunter2@example.com/models", o);
  ASSERT_TRUE(hc.ok());
  EXPECT_EQ((*hc)->Uri().find("hunter2"), std::string::npos) << (*hc)->Uri();

  struct Bad {
    std::string uri;
    std::string mentions;
  };
  for (const Bad& b : std::vector<Bad>{{"models/m.onnx", "no scheme"},
                                       {"ftp://host/x", "unknown scheme 'ftp'"},
                                       {"gs://bucket/x", "s3://bucket"},
                                       {"file://relative/dir", "absolute"},
                                       {"file:///a/../b", ".."},
                                       {"s3://", "no bucket"},
                                       {"s3:///prefix", "no bucket"},
                                       {"s3://ab", "bucket name"},
                                       {"s3://bad_bucket!/x", "bucket name"},
                                       {"s3://bucket/../x", "'..'"},
                                       {"s3://bucket/a//b", "empty path segment"},
                                       {"https://", "no host"},
                                       {"https://h/x?token=1", "no query"}}) {
    auto r = OpenStore(b.uri, o);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << b.uri;
    EXPECT_NE(r.status().message().find(b.mentions), std::string::npos) << b.uri << ": " << r.status().message();
  }
  auto file_root = OpenStore("file://" + dir.Write("plain", "x"), o);
  EXPECT_EQ(file_root.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(file_root.status().message().find("not a directory"), std::string::npos);
}

TEST(OpenStoreTest, ChecksS3SettingsButNotTheServer) {
  StoreOptions o;
  o.s3 = S3Options{};
  o.s3->endpoint = "ftp://x";
  EXPECT_EQ(OpenStore("s3://bucket", o).status().code(), StatusCode::kInvalidArgument);
  o.s3->endpoint = "http://127.0.0.1:1";  // nothing listens: still opens
  EXPECT_TRUE(OpenStore("s3://bucket", o).ok());
  o.s3->access_key_id = "AKID";
  auto r = OpenStore("s3://bucket", o);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("AWS_SECRET_ACCESS_KEY"), std::string::npos) << r.status().message();
  o.s3->secret_access_key = "secret";
  o.s3->path_style = false;  // virtual-host addressing on an IP address
  EXPECT_EQ(OpenStore("s3://bucket", o).status().code(), StatusCode::kInvalidArgument);
  o.s3->endpoint.clear();  // AWS itself: virtual-host by default
  o.s3->path_style.reset();
  EXPECT_TRUE(OpenStore("s3://bucket", o).ok());
}

TEST(OpenObjectTest, SplitsIntoParentStoreAndKey) {
  TempDir dir;
  StoreOptions o;
  o.s3 = S3Options{};
  o.s3->endpoint = "http://127.0.0.1:1";
  struct Case {
    std::string uri, store, key;
  };
  for (const Case& c : std::vector<Case>{{"s3://bucket/models/m.onnx", "s3://bucket/models", "m.onnx"},
                                         {"s3://bucket/m.onnx", "s3://bucket", "m.onnx"},
                                         {"file://" + dir.path() + "/x/m.onnx", "file://" + dir.path() + "/x", "m.onnx"},
                                         {"file:///m.onnx", "file:///", "m.onnx"},
                                         {"https://host/a/b/m.onnx", "https://host/a/b", "m.onnx"},
                                         {"http://host:8080/m.onnx", "http://host:8080", "m.onnx"}}) {
    auto r = OpenObject(c.uri, o);
    ASSERT_TRUE(r.ok()) << c.uri << ": " << r.status().ToString();
    EXPECT_EQ(r->store->Uri(), c.store) << c.uri;
    EXPECT_EQ(r->key, c.key) << c.uri;
  }
  for (const char* bad : {"s3://bucket", "s3://bucket/", "s3://bucket/dir/", "https://host", "https://host/",
                          "file:///", "https://host/m.onnx?sig=1", "s3://bucket/a/..", "m.onnx", "ftp://h/m.onnx"}) {
    auto r = OpenObject(bad, o);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

// Sets the S3 environment variables for one test and restores them afterwards.
class S3EnvTest : public ::testing::Test {
 protected:
  static constexpr const char* kVars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                          "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL", "S3_ENDPOINT",
                                          "S3_USE_HTTPS", "S3_VERIFY_SSL", "AWS_CA_BUNDLE", "S3_ADDRESSING_STYLE"};
  void SetUp() override {
    for (const char* v : kVars) {
      if (const char* old = std::getenv(v)) saved_[v] = old;
      ::unsetenv(v);
    }
  }
  void TearDown() override {
    for (const char* v : kVars) {
      auto it = saved_.find(v);
      if (it == saved_.end()) ::unsetenv(v);
      else ::setenv(v, it->second.c_str(), 1);
    }
  }
  void Set(const char* name, const std::string& value) { ::setenv(name, value.c_str(), 1); }
  std::map<std::string, std::string> saved_;
};

TEST_F(S3EnvTest, DefaultsWhenUnset) {
  auto o = S3Options::FromEnv();
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->endpoint, "");
  EXPECT_EQ(o->region, "us-east-1");
  EXPECT_EQ(o->access_key_id, "");
  EXPECT_TRUE(o->use_https);
  EXPECT_TRUE(o->verify_ssl);
  EXPECT_FALSE(o->path_style.has_value());
}

TEST_F(S3EnvTest, ReadsEveryVariable) {
  TempDir dir;
  const std::string ca = dir.Write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  Set("AWS_ACCESS_KEY_ID", "AKID");
  Set("AWS_SECRET_ACCESS_KEY", "SECRET");
  Set("AWS_SESSION_TOKEN", "TOKEN");
  Set("AWS_DEFAULT_REGION", "eu-west-1");
  Set("AWS_ENDPOINT_URL", "http://127.0.0.1:9000");
  Set("S3_USE_HTTPS", "0");
  Set("S3_VERIFY_SSL", "false");
  Set("AWS_CA_BUNDLE", ca);
  Set("S3_ADDRESSING_STYLE", "virtual");
  auto o = S3Options::FromEnv();
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->access_key_id, "AKID");
  EXPECT_EQ(o->secret_access_key, "SECRET");
  EXPECT_EQ(o->session_token, "TOKEN");
  EXPECT_EQ(o->region, "eu-west-1");
  EXPECT_EQ(o->endpoint, "http://127.0.0.1:9000");
  EXPECT_FALSE(o->use_https);
  EXPECT_FALSE(o->verify_ssl);
  EXPECT_EQ(o->ca_bundle, ca);
  EXPECT_EQ(o->path_style, std::optional<bool>(false));
}

TEST_F(S3EnvTest, FallbacksAndPrecedence) {
  Set("AWS_REGION", "ap-south-1");
  Set("S3_ENDPOINT", "minio:9000");  // KServe style: no scheme, S3_USE_HTTPS decides
  Set("S3_USE_HTTPS", "true");
  Set("S3_ADDRESSING_STYLE", "path");
  auto o = S3Options::FromEnv();
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->region, "ap-south-1");
  EXPECT_EQ(o->endpoint, "minio:9000");
  EXPECT_TRUE(o->use_https);
  EXPECT_EQ(o->path_style, std::optional<bool>(true));
  Set("AWS_DEFAULT_REGION", "us-west-2");
  Set("AWS_ENDPOINT_URL", "https://s3.example.com");
  o = S3Options::FromEnv();
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->region, "us-west-2");
  EXPECT_EQ(o->endpoint, "https://s3.example.com");
}

TEST_F(S3EnvTest, MalformedValuesNameTheVariable) {
  struct Case {
    const char* var;
    std::string value;
  };
  for (const Case& c : std::vector<Case>{{"S3_USE_HTTPS", "maybe"},
                                         {"S3_VERIFY_SSL", "2"},
                                         {"S3_ADDRESSING_STYLE", "dns"},
                                         {"AWS_DEFAULT_REGION", "us east 1"},
                                         {"AWS_REGION", "eu/west"},
                                         {"AWS_ENDPOINT_URL", "ftp://host"},
                                         {"AWS_ENDPOINT_URL", "http://"},
                                         {"AWS_ENDPOINT_URL", "http://host:99999"},
                                         {"S3_ENDPOINT", "host:port"},
                                         {"AWS_CA_BUNDLE", "/no/such/ca.pem"}}) {
    SetUp();
    Set(c.var, c.value);
    auto o = S3Options::FromEnv();
    EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument) << c.var << "=" << c.value;
    EXPECT_NE(o.status().message().find(c.var), std::string::npos) << o.status().message();
    ::unsetenv(c.var);
  }
}

TEST_F(S3EnvTest, OpenStoreReadsTheEnvironmentWhenNoS3OptionsAreGiven) {
  Set("S3_ADDRESSING_STYLE", "sideways");
  auto r = OpenStore("s3://bucket");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("S3_ADDRESSING_STYLE"), std::string::npos);
  Set("S3_ADDRESSING_STYLE", "path");
  Set("AWS_ENDPOINT_URL", "http://127.0.0.1:1");
  EXPECT_TRUE(OpenStore("s3://bucket").ok());
}

}  // namespace
}  // namespace fpgaserve::store
