// http(s)://host[/path]: a read-only store over libcurl. GET downloads (size-limited while the
// bytes arrive, redirects followed up to kMaxRedirects), HEAD stats; writes are refused.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "store/curl_transfer.h"
#include "store/object_store.h"

namespace fpgaserve::store {
namespace internal {

namespace {

constexpr long kMaxRedirects = 5;

class HttpStore : public ObjectStore {
 public:
  HttpStore(std::string uri, std::uint64_t max_bytes) : uri_(std::move(uri)), max_bytes_(max_bytes) {
    base_ = uri_;
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
    // Uri() and messages never show user:password@.
    shown_ = base_;
    auto se = shown_.find("://");
    auto path = shown_.find('/', se + 3);
    auto at = shown_.rfind('@', path == std::string::npos ? std::string::npos : path);
    if (at != std::string::npos && at > se) shown_ = shown_.substr(0, se + 3) + "***@" + shown_.substr(at + 1);
  }

  std::string Uri() const override { return shown_; }
  bool ReadOnly() const override { return true; }

  Result<ObjectInfo> Put(const std::string& key, const std::string&) override { return ReadOnlyError("put", key); }
  Result<ObjectInfo> PutBytes(const std::string& key, std::string_view) override {
    return ReadOnlyError("put", key);
  }
  Status Delete(const std::string& key) override { return ReadOnlyError("delete", key); }
  Result<std::vector<ObjectInfo>> List(const std::string&) override {
    return Unimplemented("list " + shown_ + ": an http(s) store cannot list objects; name them directly");
  }

  Result<ObjectInfo> Get(const std::string& key, const std::string& local_path) override {
    RETURN_IF_ERROR(ValidateKey(key));
    const std::string tmp = DownloadTempPath(local_path, "httptmp");
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return InvalidArgument("get " + Shown(key) + ": cannot create " + tmp + ": " + std::strerror(errno));
    CurlSink f;
    f.out_fd = fd;
    f.max_bytes = max_bytes_;
    Status st = Perform(key, f);
    if (st.ok() && (::fsync(fd) != 0)) st = InvalidArgument("get " + Shown(key) + ": cannot write " + tmp);
    if (::close(fd) != 0 && st.ok()) st = InvalidArgument("get " + Shown(key) + ": cannot write " + tmp);
    if (st.ok() && ::rename(tmp.c_str(), local_path.c_str()) != 0) {
      st = InvalidArgument("get " + Shown(key) + ": cannot rename " + tmp + " to " + local_path + ": " +
                           std::strerror(errno));
    }
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
    return ObjectInfo{key, f.bytes, f.sha.FinishHex()};
  }

  Result<std::string> GetBytes(const std::string& key) override {
    RETURN_IF_ERROR(ValidateKey(key));
    CurlSink f;
    f.max_bytes = max_bytes_;
    RETURN_IF_ERROR(Perform(key, f));
    return std::move(f.body);
  }

  Result<std::optional<ObjectInfo>> Stat(const std::string& key) override {
    RETURN_IF_ERROR(ValidateKey(key));
    CurlSink f;
    f.head = true;  // no body, no limit check
    Status st = Perform(key, f);
    if (st.code() == StatusCode::kNotFound) return std::optional<ObjectInfo>();
    RETURN_IF_ERROR(st);
    const std::uint64_t size = std::strtoull(f.Header("content-length").c_str(), nullptr, 10);
    return std::optional<ObjectInfo>(ObjectInfo{key, size, ""});
  }

 private:
  std::string Url(const std::string& key) const { return base_ + "/" + UriEncode(key, true); }
  std::string Shown(const std::string& key) const { return shown_ + "/" + key; }

  Status ReadOnlyError(const char* op, const std::string& key) const {
    return PermissionDenied(std::string(op) + " " + Shown(key) + ": the http(s) store " + shown_ +
                            " is read-only; expected a file:// or s3:// store for writes");
  }

  // GET (HEAD when f.head) of one key into f, redirects followed; the answer as a Status.
  Status Perform(const std::string& key, CurlSink& f) const {
    CurlEasy curl(Url(key), &f);
    if (curl.get() == nullptr) return Internal("curl_easy_init failed");
    curl_easy_setopt(curl.get(), CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, kMaxRedirects);
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);  // give up on a stalled transfer
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, 60L);
    long status = 0;
    std::string err;
    CURLcode rc = curl.Perform(&status, &err);
    const std::string content_length = f.Header("content-length");
    const std::string what = std::string(f.head ? "stat " : "get ") + Shown(key);
    if (f.too_large) {
      return ResourceExhausted(what + ": the object" +
                               (content_length.empty() ? "" : " is " + content_length + " bytes,") +
                               " above the limit of " + std::to_string(max_bytes_) + " bytes (max_object_bytes)");
    }
    if (!f.local_error.empty()) return InvalidArgument(what + ": cannot write the download: " + f.local_error);
    switch (rc) {
      case CURLE_OK:
        break;
      case CURLE_TOO_MANY_REDIRECTS:
        return FailedPrecondition(what + ": more than " + std::to_string(kMaxRedirects) + " redirects");
      case CURLE_COULDNT_CONNECT:
      case CURLE_COULDNT_RESOLVE_HOST:
        return Unavailable(what + ": cannot connect to the server (" + err + ")");
      case CURLE_OPERATION_TIMEDOUT:
        return Unavailable(what + ": timed out (" + err + ")");
      default:
        return Unavailable(what + ": transfer failed (" + err + ")");
    }
    if (status == 404 || status == 410) return NotFound(what + ": no such object (HTTP " + std::to_string(status) + ")");
    if (status == 401) return Unauthenticated(what + ": the server wants credentials (HTTP 401)");
    if (status == 403) return PermissionDenied(what + ": access denied (HTTP 403)");
    if (status >= 500 || status == 429) return Unavailable(what + ": server error (HTTP " + std::to_string(status) + ")");
    if (status != 200) {
      return FailedPrecondition(what + ": unexpected HTTP " + std::to_string(status) + "; expected 200");
    }
    if (!f.head && !content_length.empty() && std::strtoull(content_length.c_str(), nullptr, 10) != f.bytes) {
      return Unavailable(what + ": received " + std::to_string(f.bytes) + " bytes, expected Content-Length " +
                         content_length);
    }
    return Status::Ok();
  }

  std::string uri_, base_, shown_;
  std::uint64_t max_bytes_;
};

}  // namespace

Result<std::unique_ptr<ObjectStore>> OpenHttpStore(const std::string& uri, const StoreOptions& options) {
  return std::unique_ptr<ObjectStore>(std::make_unique<HttpStore>(uri, options.max_object_bytes));
}

}  // namespace internal
}  // namespace fpgaserve::store
