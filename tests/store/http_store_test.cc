// The read-only http(s):// store against Python's http.server on a loopback port (a child in its
// own process group, always killed), plus a tiny in-test server for redirects and errors.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/file_io.h"
#include "core/sha256.h"
#include "importers/test_files.h"
#include "store/object_store.h"
#include "store/test_servers.h"

namespace fpgaserve::store {
namespace {

namespace fs = std::filesystem;
using fpgaserve::testing::Accepting;
using fpgaserve::testing::ClosedPort;
using fpgaserve::testing::HttpResponse;
using fpgaserve::testing::KillGroup;
using fpgaserve::testing::RequestTarget;
using fpgaserve::testing::SpawnGroup;
using fpgaserve::testing::TempDir;
using fpgaserve::testing::TinyServer;
using namespace std::chrono_literals;

// `python3 -m http.server` serving `dir` on 127.0.0.1; retried on another port if the one picked
// was taken meanwhile.
class PythonHttpServer {
 public:
  explicit PythonHttpServer(const std::string& dir) {
    for (int attempt = 0; attempt < 3 && port_ == 0; ++attempt) {
      int port = ClosedPort();
      pid_ = SpawnGroup({"/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", std::to_string(port),
                         "--directory", dir},
                        "/dev/null");
      for (int i = 0; i < 200; ++i) {  // up to 10 s
        if (Accepting(port)) {
          port_ = port;
          break;
        }
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
          pid_ = 0;
          break;
        }
        std::this_thread::sleep_for(50ms);
      }
      if (port_ == 0) Stop();
    }
  }
  ~PythonHttpServer() { Stop(); }
  void Stop() { KillGroup(pid_); }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

class HttpStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 is needed for the HTTP server";
    fs::create_directories(dir_.path() + "/www/models");
    dir_.Write("www/models/m.onnx", data_);
    server_ = std::make_unique<PythonHttpServer>(dir_.path() + "/www");
    ASSERT_NE(server_->port(), 0) << "python3 -m http.server did not start";
  }
  std::unique_ptr<ObjectStore> Open(const std::string& uri, std::uint64_t max_bytes = kDefaultMaxObjectBytes) {
    StoreOptions o;
    o.max_object_bytes = max_bytes;
    auto s = OpenStore(uri, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  TempDir dir_;
  const std::string data_ = std::string(50000, 'm') + "end";
  std::unique_ptr<PythonHttpServer> server_;
};

TEST_F(HttpStoreTest, GetStatAndNotFound) {
  auto store = Open(server_->url() + "/models");
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->ReadOnly());
  auto bytes = store->GetBytes("m.onnx");
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_TRUE(*bytes == data_);
  const std::string local = dir_.path() + "/dl/m.onnx";
  auto got = store->Get("m.onnx", local);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->size, data_.size());
  EXPECT_EQ(got->sha256, Sha256Hex(data_));
  EXPECT_TRUE(*ReadFile(local) == data_);

  auto st = store->Stat("m.onnx");
  ASSERT_TRUE(st.ok() && st->has_value()) << st.status().ToString();
  EXPECT_EQ((*st)->size, data_.size());
  EXPECT_EQ((*st)->sha256, "");  // nothing recorded on a plain web server

  EXPECT_FALSE(store->Stat("missing.onnx")->has_value());
  auto nf = store->GetBytes("missing.onnx");
  EXPECT_EQ(nf.status().code(), StatusCode::kNotFound) << nf.status().ToString();
  EXPECT_NE(nf.status().message().find("/models/missing.onnx"), std::string::npos);
  EXPECT_EQ(store->Get("missing.onnx", dir_.path() + "/dl/x").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir_.path() + "/dl/x"));
  EXPECT_EQ(fs::directory_iterator(dir_.path() + "/dl")->path().filename(), "m.onnx") << "no temp files";

  auto ref = OpenObject(server_->url() + "/models/m.onnx");
  ASSERT_TRUE(ref.ok());
  EXPECT_TRUE(*ref->store->GetBytes(ref->key) == data_);
}

TEST_F(HttpStoreTest, WritesAreRefusedAndListIsUnimplemented) {
  auto store = Open(server_->url());
  ASSERT_TRUE(store);
  auto put = store->PutBytes("x", "y");
  EXPECT_EQ(put.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(put.status().message().find("read-only"), std::string::npos) << put.status().message();
  EXPECT_EQ(store->Put("x", dir_.Write("f", "y")).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(store->Delete("models/m.onnx").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(store->List("").status().code(), StatusCode::kUnimplemented);
  EXPECT_TRUE(fs::exists(dir_.path() + "/www/models/m.onnx"));
}

TEST_F(HttpStoreTest, SizeLimitWhileDownloading) {
  auto store = Open(server_->url() + "/models", 1000);
  ASSERT_TRUE(store);
  auto r = store->GetBytes("m.onnx");
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  EXPECT_NE(r.status().message().find("1000"), std::string::npos);
  const std::string local = dir_.path() + "/big.onnx";
  EXPECT_EQ(store->Get("m.onnx", local).status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(fs::exists(local));

  // Without a Content-Length the limit still holds while the bytes arrive.
  TinyServer chunked([](const std::string&, int) {
    std::string body(5000, 'c');
    return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body;  // ends at close
  });
  auto s2 = Open(chunked.endpoint(), 1000);
  auto r2 = s2->GetBytes("stream");
  EXPECT_EQ(r2.status().code(), StatusCode::kResourceExhausted) << r2.status().ToString();
}

TEST_F(HttpStoreTest, FollowsBoundedRedirectsAndMapsErrors) {
  const std::string target = server_->url() + "/models/m.onnx";
  TinyServer redirector([&](const std::string& request, int) {
    const std::string path = RequestTarget(request);
    if (path == "/moved.onnx") return HttpResponse(302, "Found", "", "Location: " + target + "\r\n");
    if (path == "/loop") return HttpResponse(302, "Found", "", "Location: /loop\r\n");
    if (path == "/broken") return HttpResponse(500, "Internal Server Error", "oops");
    if (path == "/secret") return HttpResponse(403, "Forbidden", "no");
    if (path == "/teapot") return HttpResponse(418, "I'm a teapot", "");
    return HttpResponse(404, "Not Found", "");
  });
  auto store = Open(redirector.endpoint());
  ASSERT_TRUE(store);
  auto moved = store->GetBytes("moved.onnx");
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_TRUE(*moved == data_);
  auto loop = store->GetBytes("loop");
  EXPECT_EQ(loop.status().code(), StatusCode::kFailedPrecondition) << loop.status().ToString();
  EXPECT_NE(loop.status().message().find("redirects"), std::string::npos);
  EXPECT_LE(redirector.requests().size(), 12u);
  EXPECT_EQ(store->GetBytes("broken").status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->GetBytes("secret").status().code(), StatusCode::kPermissionDenied);
  auto teapot = store->GetBytes("teapot");
  EXPECT_EQ(teapot.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(teapot.status().message().find("HTTP 418"), std::string::npos) << teapot.status().message();
}

TEST(HttpStoreNoServerTest, UnreachableIsUnavailable) {
  auto store = OpenStore("http://127.0.0.1:" + std::to_string(ClosedPort()) + "/x");
  ASSERT_TRUE(store.ok());
  auto r = (*store)->GetBytes("m.onnx");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_EQ((*store)->Stat("m.onnx").status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace fpgaserve::store
