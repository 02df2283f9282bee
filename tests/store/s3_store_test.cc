// The s3:// store against a real s3rver (npm, installed into build/npm by scripts/install-s3rver.sh)
// on an ephemeral loopback port, read back and written with Debian's awscli; retries, signatures
// and server errors against a tiny in-test HTTP server.
//
// What s3rver 3.x checks and what it does not (so what these tests can and cannot prove):
//   - it does NOT verify Signature V4 (only that the access key id exists: an unknown one is
//     403 InvalidAccessKeyId). SigV4SignatureMatchesBotocore therefore recomputes our requests'
//     signatures with the botocore that Debian's awscli ships.
//   - it does not enforce the 5 MiB minimum part size, and has no AbortMultipartUpload route.
//   - HEAD on a missing bucket says so in an x-amz-error-code header (real S3 does not).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/file_io.h"
#include "core/sha256.h"
#include "core/subprocess.h"
#include "importers/test_files.h"
#include "store/object_store.h"
#include "store/test_servers.h"

namespace fpgaserve::store {
namespace {

namespace fs = std::filesystem;
using fpgaserve::testing::ClosedPort;
using fpgaserve::testing::HttpResponse;
using fpgaserve::testing::S3rver;
using fpgaserve::testing::S3rverPath;
using fpgaserve::testing::TempDir;
using fpgaserve::testing::TinyServer;
using namespace std::chrono_literals;

std::string RandomBytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

S3Options FastOptions(const std::string& endpoint) {
  S3Options o;
  o.endpoint = endpoint;
  o.access_key_id = "S3RVER";
  o.secret_access_key = "S3RVER";
  o.max_attempts = 3;
  o.first_backoff = 10ms;
  o.connect_timeout = 2s;
  o.request_timeout = 30s;
  return o;
}

class S3StoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(S3rverPath())) return;
    server_ = new S3rver({"bucket", "interop", "listing"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!fs::exists(S3rverPath())) {
      GTEST_SKIP() << "s3rver not found at " << S3rverPath()
                   << "; run scripts/install-s3rver.sh (or set FPGASERVE_S3RVER)";
    }
    ASSERT_NE(server_->port(), 0) << "s3rver did not start; log:\n" << server_->Log();
  }

  std::unique_ptr<ObjectStore> Open(const std::string& uri, S3Options o, std::uint64_t max_bytes = kDefaultMaxObjectBytes) {
    StoreOptions so;
    so.s3 = std::move(o);
    so.max_object_bytes = max_bytes;
    auto s = OpenStore(uri, so);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::unique_ptr<ObjectStore> Open(const std::string& uri) { return Open(uri, FastOptions(server_->endpoint())); }

  // Debian's awscli (never a shim on PATH) against the s3rver.
  SubprocessResult Aws(const std::vector<std::string>& args, const std::string& stdin_data = "") {
    std::vector<std::string> argv{"/usr/bin/aws", "--endpoint-url", server_->endpoint()};
    argv.insert(argv.end(), args.begin(), args.end());
    SubprocessOptions o;
    o.timeout = 60s;
    o.stdin_data = stdin_data;
    o.env_set = {{"AWS_ACCESS_KEY_ID", "S3RVER"},
                 {"AWS_SECRET_ACCESS_KEY", "S3RVER"},
                 {"AWS_DEFAULT_REGION", "us-east-1"},
                 {"AWS_CONFIG_FILE", tmp_.path() + "/aws-config"},
                 {"AWS_SHARED_CREDENTIALS_FILE", tmp_.path() + "/aws-credentials"},
                 {"AWS_EC2_METADATA_DISABLED", "true"},
                 {"AWS_PAGER", ""}};
    auto r = RunSubprocess(argv, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : SubprocessResult{};
  }

  static S3rver* server_;
  TempDir tmp_;
};

S3rver* S3StoreTest::server_ = nullptr;

TEST_F(S3StoreTest, SmallRoundTripStatAndDelete) {
  auto store = Open("s3://bucket");
  ASSERT_TRUE(store);
  EXPECT_EQ(store->Uri(), "s3://bucket");
  const std::string data = "hello, s3\n";
  auto put = store->PutBytes("a/hello.txt", data);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->sha256, Sha256Hex(data));
  EXPECT_EQ(put->size, data.size());

  auto bytes = store->GetBytes("a/hello.txt");
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, data);

  const std::string local = tmp_.path() + "/out/hello.txt";
  auto got = store->Get("a/hello.txt", local);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->sha256, Sha256Hex(data));
  EXPECT_EQ(*ReadFile(local), data);

  auto st = store->Stat("a/hello.txt");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_TRUE(st->has_value());
  EXPECT_EQ((*st)->size, data.size());
  EXPECT_EQ((*st)->sha256, Sha256Hex(data));  // x-amz-meta-sha256 recorded on put

  // Put from a file, replacing.
  const std::string src = tmp_.Write("src.bin", RandomBytes(100000, 1));
  auto put2 = store->Put("a/hello.txt", src);
  ASSERT_TRUE(put2.ok()) << put2.status().ToString();
  EXPECT_EQ(*store->GetBytes("a/hello.txt"), *ReadFile(src));

  auto missing = store->Stat("a/missing.txt");
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_FALSE(missing->has_value());
  auto nf = store->GetBytes("a/missing.txt");
  EXPECT_EQ(nf.status().code(), StatusCode::kNotFound) << nf.status().ToString();
  EXPECT_NE(nf.status().message().find("s3://bucket/a/missing.txt"), std::string::npos) << nf.status().message();

  EXPECT_TRUE(store->Delete("a/hello.txt").ok());
  EXPECT_FALSE(store->Stat("a/hello.txt")->has_value());
  EXPECT_TRUE(store->Delete("a/hello.txt").ok()) << "deleting a missing object is OK";
  auto nf2 = store->Get("a/hello.txt", tmp_.path() + "/gone.txt");
  EXPECT_EQ(nf2.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(tmp_.path() + "/gone.txt"));

  EXPECT_EQ(store->PutBytes("../escape", "x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(S3StoreTest, MultipartRoundTripFromFileAndBytes) {
  S3Options o = FastOptions(server_->endpoint());
  o.multipart_threshold = 5 << 20;
  o.part_size = 5 << 20;
  auto store = Open("s3://bucket/mp", o);
  ASSERT_TRUE(store);
  const std::string data = RandomBytes((11 << 20) + 123, 42);  // 3 parts: 5 + 5 + 1 MiB
  const std::string src = tmp_.Write("big.bin", data);
  auto put = store->Put("big.bin", src);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->sha256, Sha256Hex(data));
  auto got = store->Get("big.bin", tmp_.path() + "/big.out");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->size, data.size());
  EXPECT_EQ(got->sha256, Sha256Hex(data));
  auto st = store->Stat("big.bin");
  ASSERT_TRUE(st.ok() && st->has_value());
  EXPECT_EQ((*st)->sha256, Sha256Hex(data)) << "CreateMultipartUpload records x-amz-meta-sha256";

  // s3rver accepts parts below S3's 5 MiB minimum; exercise many small parts from memory.
  S3Options small = o;
  small.multipart_threshold = 1 << 20;
  small.part_size = 1 << 20;
  auto store2 = Open("s3://bucket/mp", small);
  const std::string data2 = RandomBytes((3 << 20) + 7, 43);
  auto put2 = store2->PutBytes("small-parts.bin", data2);
  ASSERT_TRUE(put2.ok()) << put2.status().ToString();
  auto back = store2->GetBytes("small-parts.bin");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(*back == data2);

  // A file in s3rver's directory proves the object landed under the prefix, whole.
  EXPECT_EQ(fs::file_size(server_->data_dir() + "/bucket/mp/big.bin._S3rver_object"), data.size());
}

TEST_F(S3StoreTest, ListWithPrefixAndPagination) {
  auto store = Open("s3://listing/root");
  ASSERT_TRUE(store);
  // More than one ListObjectsV2 page (s3rver returns at most 1000 keys per page).
  const int kMany = 1005;
  std::vector<std::string> expected;
  for (int i = 0; i < kMany; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "p/k%05d", i);
    expected.push_back(name);
    auto put = store->PutBytes(name, std::to_string(i));
    ASSERT_TRUE(put.ok()) << put.status().ToString();
  }
  ASSERT_TRUE(store->PutBytes("q/other", "x").ok());
  // Not "p-sibling": s3rver pages in directory-walk order, and that key sorts before "p/..." but is
  // walked after it, so s3rver itself would skip it on the second page.
  ASSERT_TRUE(store->PutBytes("pz-sibling", "xy").ok());
  auto outside = Open("s3://listing");
  ASSERT_TRUE(outside->PutBytes("elsewhere/p/k", "z").ok());

  auto all = store->List("p/");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), static_cast<std::size_t>(kMany));
  for (int i = 0; i < kMany; ++i) EXPECT_EQ((*all)[i].key, expected[i]);
  EXPECT_EQ((*all)[7].size, 1u);
  EXPECT_EQ((*all)[1000].size, 4u);

  auto p = store->List("p");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->size(), static_cast<std::size_t>(kMany) + 1);  // includes pz-sibling
  auto q = store->List("q/");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 1u);
  EXPECT_EQ((*q)[0].key, "q/other");
  auto none = store->List("zzz");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto everything = store->List("");
  ASSERT_TRUE(everything.ok());
  EXPECT_EQ(everything->size(), static_cast<std::size_t>(kMany) + 2);
  EXPECT_TRUE(std::is_sorted(everything->begin(), everything->end(),
                             [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; }));
}

TEST_F(S3StoreTest, PathAndVirtualHostAddressing) {
  S3Options path = FastOptions(server_->endpoint());
  path.path_style = true;
  auto ps = Open("s3://bucket/style", path);
  ASSERT_TRUE(ps);
  ASSERT_TRUE(ps->PutBytes("path.txt", "path-style").ok());

  // bucket.s3.localhost: curl resolves *.localhost to loopback, and s3rver was started with
  // --service-endpoint localhost so it takes the bucket from the Host header.
  S3Options vh = FastOptions("http://s3.localhost:" + std::to_string(server_->port()));
  vh.path_style = false;
  auto vs = Open("s3://bucket/style", vh);
  ASSERT_TRUE(vs);
  auto got = vs->GetBytes("path.txt");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "path-style");
  ASSERT_TRUE(vs->PutBytes("virtual.txt", "virtual-host").ok());
  EXPECT_EQ(*ps->GetBytes("virtual.txt"), "virtual-host");
  auto listed = vs->List("");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(listed->size(), 2u);

  // An IP address cannot be a virtual host.
  S3Options bad = FastOptions(server_->endpoint());
  bad.path_style = false;
  StoreOptions so;
  so.s3 = bad;
  auto r = OpenStore("s3://bucket", so);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
}

TEST_F(S3StoreTest, MissingBucketIsNotFoundNamingTheBucket) {
  auto store = Open("s3://no-such-bucket/x");
  ASSERT_TRUE(store);
  auto get = store->GetBytes("k");
  EXPECT_EQ(get.status().code(), StatusCode::kNotFound) << get.status().ToString();
  EXPECT_NE(get.status().message().find("bucket 'no-such-bucket' does not exist"), std::string::npos)
      << get.status().message();
  auto put = store->PutBytes("k", "v");
  EXPECT_EQ(put.status().code(), StatusCode::kNotFound) << put.status().ToString();
  EXPECT_NE(put.status().message().find("no-such-bucket"), std::string::npos);
  auto list = store->List("");
  EXPECT_EQ(list.status().code(), StatusCode::kNotFound) << list.status().ToString();
  auto stat = store->Stat("k");
  EXPECT_EQ(stat.status().code(), StatusCode::kNotFound) << stat.status().ToString();
  EXPECT_EQ(store->Delete("k").code(), StatusCode::kNotFound);
}

TEST_F(S3StoreTest, UnknownAccessKeyIsPermissionDeniedWithoutLeakingTheSecret) {
  S3Options o = FastOptions(server_->endpoint());
  o.access_key_id = "NOT-A-KNOWN-KEY";
  o.secret_access_key = "TopSecretValue123";
  auto store = Open("s3://bucket", o);
  ASSERT_TRUE(store);
  for (const Status& st : {store->GetBytes("k").status(), store->PutBytes("k", "v").status(),
                           store->List("").status()}) {
    EXPECT_EQ(st.code(), StatusCode::kPermissionDenied) << st.ToString();
    EXPECT_NE(st.message().find("InvalidAccessKeyId"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("s3://bucket"), std::string::npos) << st.message();
    EXPECT_EQ(st.message().find("TopSecretValue123"), std::string::npos) << st.message();
  }
}

TEST_F(S3StoreTest, UnreachableEndpointIsUnavailableFast) {
  const int port = ClosedPort();
  S3Options o = FastOptions("http://127.0.0.1:" + std::to_string(port));
  o.max_attempts = 2;
  auto store = Open("s3://bucket", o);
  ASSERT_TRUE(store);
  auto t0 = std::chrono::steady_clock::now();
  auto r = store->GetBytes("k");
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << r.status().message();
  EXPECT_LT(elapsed, 2s);

  S3Options unresolvable = FastOptions("http://no-such-host.invalid:9");
  unresolvable.max_attempts = 1;
  auto s2 = Open("s3://bucket", unresolvable);
  auto r2 = s2->Stat("k");
  EXPECT_EQ(r2.status().code(), StatusCode::kUnavailable) << r2.status().ToString();
  EXPECT_NE(r2.status().message().find("no-such-host.invalid"), std::string::npos) << r2.status().message();
}

TEST_F(S3StoreTest, CorruptedObjectIsDetectedBySha256) {
  auto store = Open("s3://bucket");
  ASSERT_TRUE(store);
  const std::string data = RandomBytes(4096, 7);
  ASSERT_TRUE(store->PutBytes("tamper/model.bin", data).ok());
  // Flip one byte of the stored object behind the server's back (same size, so only the digest
  // can tell).
  const std::string stored = server_->data_dir() + "/bucket/tamper/model.bin._S3rver_object";
  ASSERT_TRUE(fs::exists(stored));
  {
    std::fstream f(stored, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put(static_cast<char>(data[100] ^ 0x01));
  }
  auto bytes = store->GetBytes("tamper/model.bin");
  EXPECT_EQ(bytes.status().code(), StatusCode::kInternal) << bytes.status().ToString();
  EXPECT_NE(bytes.status().message().find("sha256 mismatch"), std::string::npos) << bytes.status().message();
  const std::string local = tmp_.path() + "/dl/model.bin";
  auto got = store->Get("tamper/model.bin", local);
  EXPECT_EQ(got.status().code(), StatusCode::kInternal) << got.status().ToString();
  EXPECT_FALSE(fs::exists(local)) << "never a corrupt file in place";
  EXPECT_TRUE(fs::is_empty(tmp_.path() + "/dl")) << "no temp file left behind";
}

TEST_F(S3StoreTest, SizeLimitOnPutAndGet) {
  auto big = Open("s3://bucket");
  ASSERT_TRUE(big->PutBytes("limit/2k.bin", std::string(2000, 'x')).ok());
  auto small = Open("s3://bucket", FastOptions(server_->endpoint()), 1000);
  ASSERT_TRUE(small);
  auto put = small->PutBytes("limit/new.bin", std::string(1001, 'x'));
  EXPECT_EQ(put.status().code(), StatusCode::kResourceExhausted) << put.status().ToString();
  const std::string src = tmp_.Write("1001.bin", std::string(1001, 'y'));
  EXPECT_EQ(small->Put("limit/new.bin", src).status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(big->Stat("limit/new.bin")->has_value());
  auto get = small->GetBytes("limit/2k.bin");
  EXPECT_EQ(get.status().code(), StatusCode::kResourceExhausted) << get.status().ToString();
  EXPECT_NE(get.status().message().find("1000"), std::string::npos);
  const std::string local = tmp_.path() + "/limit.bin";
  EXPECT_EQ(small->Get("limit/2k.bin", local).status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(fs::exists(local));
  EXPECT_TRUE(small->PutBytes("limit/ok.bin", std::string(1000, 'x')).ok());
}

TEST_F(S3StoreTest, AwsCliReadsWhatWeWroteAndWeReadWhatItWrote) {
  auto store = Open("s3://interop/models");
  ASSERT_TRUE(store);
  const std::string data = "written by fpgaserve\n" + RandomBytes(3000, 9);
  ASSERT_TRUE(store->PutBytes("ours.bin", data).ok());
  auto cp = Aws({"s3", "cp", "s3://interop/models/ours.bin", "-"});
  ASSERT_TRUE(cp.success()) << cp.Describe() << "\n" << cp.stderr_text;
  EXPECT_TRUE(cp.stdout_text == data);
  auto head = Aws({"s3api", "head-object", "--bucket", "interop", "--key", "models/ours.bin"});
  ASSERT_TRUE(head.success()) << head.stderr_text;
  EXPECT_NE(head.stdout_text.find(Sha256Hex(data)), std::string::npos) << head.stdout_text;

  // Ours, multipart: awscli reassembles the same bytes.
  S3Options o = FastOptions(server_->endpoint());
  o.multipart_threshold = 5 << 20;
  o.part_size = 5 << 20;
  auto mp = Open("s3://interop/models", o);
  const std::string big = RandomBytes((11 << 20) + 1, 10);
  ASSERT_TRUE(mp->PutBytes("ours-mp.bin", big).ok());
  auto cp2 = Aws({"s3", "cp", "s3://interop/models/ours-mp.bin", tmp_.path() + "/aws-mp.bin"});
  ASSERT_TRUE(cp2.success()) << cp2.stderr_text;
  EXPECT_EQ(*Sha256File(tmp_.path() + "/aws-mp.bin"), Sha256Hex(big));

  // Theirs: a foreign object has no recorded digest; Get still computes one.
  const std::string theirs = "written by awscli\n" + RandomBytes(5000, 11);
  auto up = Aws({"s3", "cp", "-", "s3://interop/models/theirs.bin"}, theirs);
  ASSERT_TRUE(up.success()) << up.stderr_text;
  auto back = store->GetBytes("theirs.bin");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(*back == theirs);
  auto st = store->Stat("theirs.bin");
  ASSERT_TRUE(st.ok() && st->has_value());
  EXPECT_EQ((*st)->size, theirs.size());
  EXPECT_EQ((*st)->sha256, "");
  auto got = store->Get("theirs.bin", tmp_.path() + "/theirs.bin");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->sha256, Sha256Hex(theirs));

  // awscli's own multipart upload (above its 8 MiB threshold).
  const std::string big2 = RandomBytes(9 << 20, 12);
  const std::string big2_path = tmp_.Write("aws-big.bin", big2);
  auto up2 = Aws({"s3", "cp", big2_path, "s3://interop/models/theirs-mp.bin"});
  ASSERT_TRUE(up2.success()) << up2.stderr_text;
  auto got2 = store->Get("theirs-mp.bin", tmp_.path() + "/theirs-mp.bin");
  ASSERT_TRUE(got2.ok()) << got2.status().ToString();
  EXPECT_EQ(got2->sha256, Sha256Hex(big2));

  auto listed = store->List("");
  ASSERT_TRUE(listed.ok());
  std::vector<std::string> keys;
  for (const auto& i : *listed) keys.push_back(i.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"ours-mp.bin", "ours.bin", "theirs-mp.bin", "theirs.bin"}));
}

// --- against a tiny server: retries, server errors, wire format, signatures ---

TEST(S3StoreFakeServerTest, RetriesOn503ThenSucceeds) {
  const std::string body = "finally";
  TinyServer server([&](const std::string&, int i) {
    if (i < 2) return HttpResponse(503, "Slow Down", "<Error><Code>SlowDown</Code></Error>");
    return HttpResponse(200, "OK", body, "x-amz-meta-sha256: " + Sha256Hex(body) + "\r\n");
  });
  StoreOptions so;
  so.s3 = FastOptions(server.endpoint());
  so.s3->max_attempts = 4;
  auto store = OpenStore("s3://bkt", so);
  ASSERT_TRUE(store.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto r = (*store)->GetBytes("k");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, body);
  EXPECT_EQ(server.requests().size(), 3u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms) << "backoff 10 ms + 20 ms";
}

TEST(S3StoreFakeServerTest, PersistentServerErrorsGiveUpAfterMaxAttempts) {
  TinyServer server([](const std::string&, int) {
    return HttpResponse(500, "Internal Server Error",
                        "<Error><Code>InternalError</Code><Message>We encountered an internal error</Message></Error>");
  });
  StoreOptions so;
  so.s3 = FastOptions(server.endpoint());
  so.s3->max_attempts = 3;
  auto store = OpenStore("s3://bkt", so);
  auto r = (*store)->PutBytes("k", "v");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("3 attempt"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("InternalError"), std::string::npos);
  EXPECT_EQ(server.requests().size(), 3u);

  // 429 is retried too; a 403 is not.
  TinyServer throttled([](const std::string&, int i) {
    return i == 0 ? HttpResponse(429, "Too Many Requests", "") : HttpResponse(200, "OK", "ok");
  });
  so.s3 = FastOptions(throttled.endpoint());
  auto s2 = OpenStore("s3://bkt", so);
  EXPECT_TRUE((*s2)->GetBytes("k").ok());
  EXPECT_EQ(throttled.requests().size(), 2u);

  TinyServer denied([](const std::string&, int) {
    return HttpResponse(403, "Forbidden", "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>");
  });
  so.s3 = FastOptions(denied.endpoint());
  auto s3 = OpenStore("s3://bkt", so);
  auto d = (*s3)->GetBytes("k");
  EXPECT_EQ(d.status().code(), StatusCode::kPermissionDenied) << d.status().ToString();
  EXPECT_NE(d.status().message().find("AccessDenied"), std::string::npos);
  EXPECT_EQ(denied.requests().size(), 1u);
}

TEST(S3StoreFakeServerTest, ConnectionResetIsRetried) {
  // The first connection is closed without an answer (curl: "empty reply"), then it works.
  std::atomic<int> calls{0};
  TinyServer server([&](const std::string&, int i) {
    ++calls;
    return i == 0 ? std::string() : HttpResponse(200, "OK", "after reset");
  });
  StoreOptions so;
  so.s3 = FastOptions(server.endpoint());
  auto store = OpenStore("s3://bkt", so);
  auto r = (*store)->GetBytes("k");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "after reset");
  EXPECT_EQ(calls.load(), 2);
}

// Recomputes the Signature V4 of captured requests with the botocore that Debian's awscli ships:
// s3rver does not check V4 signatures, so this is what shows real S3 would accept them.
TEST(S3StoreFakeServerTest, SigV4SignatureMatchesBotocore) {
  if (!fs::exists("/usr/bin/aws")) GTEST_SKIP() << "Debian's awscli (/usr/bin/aws) is not installed";
  TinyServer server([](const std::string& req, int) {
    if (req.find("?uploads=") != std::string::npos) {
      return HttpResponse(200, "OK", "<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>");
    }
    if (req.rfind("GET /bkt/?", 0) == 0) {
      return HttpResponse(200, "OK",
                          "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>pre/a/x</Key>"
                          "<Size>3</Size></Contents></ListBucketResult>");
    }
    return HttpResponse(200, "OK", "", "ETag: \"abc\"\r\n");
  });
  StoreOptions so;
  so.s3 = FastOptions(server.endpoint());
  so.s3->access_key_id = "AKIDEXAMPLE";
  so.s3->secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  so.s3->session_token = "session-token-value";
  so.s3->region = "eu-west-1";
  auto store = OpenStore("s3://bkt/pre", so);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->PutBytes("a/x", "abc").ok());
  auto listed = (*store)->List("a/");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, "a/x");
  (void)(*store)->Stat("a/x");
  // A streamed file upload (CURLOPT_UPLOAD) and a multipart upload: create, 2 parts, complete.
  TempDir src;
  ASSERT_TRUE((*store)->Put("from-file", src.Write("f", "file body")).ok());
  so.s3->multipart_threshold = 4;
  so.s3->part_size = 4;
  auto mp = OpenStore("s3://bkt/pre", so);
  ASSERT_TRUE((*mp)->PutBytes("multi", "12345678").ok());
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 8u);
  EXPECT_EQ(reqs[4].rfind("POST /bkt/pre/multi?uploads= ", 0), 0u) << reqs[4];
  EXPECT_NE(reqs[7].find("<Part><PartNumber>2</PartNumber><ETag>&quot;abc&quot;</ETag></Part>"), std::string::npos)
      << reqs[7];
  EXPECT_NE(reqs[0].find("x-amz-meta-sha256: " + Sha256Hex("abc")), std::string::npos) << reqs[0];
  EXPECT_NE(reqs[0].find("x-amz-content-sha256: " + Sha256Hex("abc")), std::string::npos) << reqs[0];
  EXPECT_EQ(reqs[0].find("wJalrXUtnFEMI"), std::string::npos) << "the secret never goes on the wire";

  TempDir dir;
  const std::string script = dir.Write("verify.py", R"PY(
import sys
import awscli  # noqa: F401  (puts awscli's vendored botocore on the path)
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
raw = open(sys.argv[1], 'rb').read()
head, _, body = raw.partition(b'\r\n\r\n')
lines = head.decode().split('\r\n')
method, target, _ = lines[0].split(' ')
hdrs = {}
for l in lines[1:]:
    k, v = l.split(':', 1)
    hdrs[k.strip().lower()] = v.strip()
auth = hdrs['authorization']
signed = auth.split('SignedHeaders=')[1].split(',')[0].split(';')
scope = auth.split('Credential=')[1].split(',')[0].split('/')
req = AWSRequest(method=method, url='http://' + hdrs['host'] + target, data=body,
                 headers={k: v for k, v in hdrs.items() if k in signed})
req.context['timestamp'] = hdrs['x-amz-date']
signer = S3SigV4Auth(Credentials(sys.argv[2], sys.argv[3]), 's3', scope[2])
canonical = signer.canonical_request(req)
sig = signer.signature(signer.string_to_sign(req, canonical), req)
sent = auth.split('Signature=')[1].strip()
print('OK' if sig == sent else 'MISMATCH\n' + canonical + '\ncomputed ' + sig + '\nsent ' + sent)
)PY");
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    const std::string path = dir.Write("req" + std::to_string(i), reqs[i]);
    auto r = RunSubprocess({"/usr/bin/python3", script, path, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->stdout_text, "OK\n") << r->stderr_text << "\nrequest:\n" << reqs[i].substr(0, 2000);
    EXPECT_NE(reqs[i].find("Credential=AKIDEXAMPLE/"), std::string::npos);
    EXPECT_NE(reqs[i].find("/eu-west-1/s3/aws4_request"), std::string::npos);
    EXPECT_NE(reqs[i].find("x-amz-security-token: session-token-value"), std::string::npos);
  }
}

TEST(S3StoreFakeServerTest, MultipartFailureAbortsTheUpload) {
  // Create works, part 2 is refused: the store must send AbortMultipartUpload (DELETE ?uploadId).
  TinyServer server([](const std::string& req, int) {
    if (req.rfind("POST /bkt/k?uploads=", 0) == 0) {
      return HttpResponse(200, "OK", "<InitiateMultipartUploadResult><UploadId>up+1/x</UploadId></InitiateMultipartUploadResult>");
    }
    if (req.rfind("PUT /bkt/k?partNumber=1&uploadId=up%2B1%2Fx", 0) == 0) {
      return HttpResponse(200, "OK", "", "ETag: \"e1\"\r\n");
    }
    if (req.rfind("DELETE /bkt/k?uploadId=up%2B1%2Fx", 0) == 0) return HttpResponse(204, "No Content", "");
    return HttpResponse(400, "Bad Request", "<Error><Code>InvalidPart</Code><Message>nope</Message></Error>");
  });
  StoreOptions so;
  so.s3 = FastOptions(server.endpoint());
  so.s3->multipart_threshold = 10;
  so.s3->part_size = 10;
  auto store = OpenStore("s3://bkt", so);
  auto r = (*store)->PutBytes("k", std::string(25, 'z'));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("upload part 2"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("InvalidPart"), std::string::npos) << r.status().message();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs.back().rfind("DELETE /bkt/k?uploadId=up%2B1%2Fx", 0), 0u) << reqs.back();
}

}  // namespace
}  // namespace fpgaserve::store
