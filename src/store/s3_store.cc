// s3://bucket[/prefix]: S3 or an S3-compatible server over libcurl, signed with AWS Signature V4
// (CURLOPT_AWS_SIGV4). Every request carries x-amz-content-sha256 (the payload's digest, which
// curl signs); PutObject and CreateMultipartUpload record the object's digest as
// x-amz-meta-sha256, and Get recomputes it. Requests are retried with exponential backoff on
// 5xx, 429, timeouts and broken connections. Responses are read with a small XML scan.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

#include "core/sha256.h"
#include "core/text.h"
#include "store/curl_transfer.h"
#include "store/object_store.h"

namespace fpgaserve::store {
namespace internal {

namespace {

constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::size_t kMaxErrorBody = 64 << 10;
constexpr std::uint64_t kMaxParts = 10000;

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// --- a small XML scan: S3 responses are flat enough that tag matching is all we need ---

std::string XmlUnescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    auto semi = s.find(';', i);
    if (semi == std::string_view::npos) {
      out += s[i];
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out += '&';
    else if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else if (!ent.empty() && ent[0] == '#') {
      unsigned long cp = 0;
      try {
        cp = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X') ? std::stoul(std::string(ent.substr(2)), nullptr, 16)
                                                                 : std::stoul(std::string(ent.substr(1)));
      } catch (...) {
        out += std::string(s.substr(i, semi - i + 1));
        i = semi;
        continue;
      }
      // UTF-8 encode
      if (cp < 0x80) {
        out += static_cast<char>(cp);
      } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    } else {
      out += std::string(s.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// The raw inner text of every <tag>...</tag> (or <tag attr="...">...</tag>) in order.
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> out;
  std::string open = "<" + std::string(tag);
  std::string close = "</" + std::string(tag) + ">";
  std::size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    std::size_t after = pos + open.size();
    if (after >= xml.size()) break;
    char c = xml[after];
    if (c != '>' && c != ' ' && c != '/') {  // a longer tag name (<KeyCount> for <Key>)
      pos = after;
      continue;
    }
    auto gt = xml.find('>', after);
    if (gt == std::string_view::npos) break;
    if (xml[gt - 1] == '/') {  // <tag/>
      out.emplace_back();
      pos = gt + 1;
      continue;
    }
    auto end = xml.find(close, gt + 1);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(gt + 1, end - gt - 1));
    pos = end + close.size();
  }
  return out;
}

std::optional<std::string> XmlFirst(std::string_view xml, std::string_view tag) {
  auto all = XmlElements(xml, tag);
  if (all.empty()) return std::nullopt;
  return XmlUnescape(all.front());
}

// --- one HTTP exchange over libcurl ---

struct Request {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;
  std::vector<std::string> headers;
  std::string payload_sha256 = kEmptySha256;
  // PUT/POST body: from memory, or a byte range of an open file.
  std::string_view body;
  int body_fd = -1;
  std::uint64_t body_offset = 0;
  std::uint64_t body_length = 0;
  // Where a 2xx body goes: a file (truncated per attempt), else memory (Response::body).
  int out_fd = -1;
  std::uint64_t max_body_bytes = 64 << 20;
};

struct Response {
  CURLcode curl = CURLE_OK;
  std::string curl_error;
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;                            // a 2xx body when not written to a file
  std::string error_body;                      // a non-2xx body (capped)
  std::uint64_t body_bytes = 0;
  std::string body_sha256;
  bool too_large = false;
  std::string local_error;  // writing the download failed
  int attempts = 0;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// Where an upload from a file has got to (CURLOPT_READFUNCTION).
struct BodyReader {
  const Request* req = nullptr;
  std::uint64_t read_pos = 0;
};

size_t OnRead(char* buf, size_t size, size_t n, void* p) {
  auto* t = static_cast<BodyReader*>(p);
  const Request& r = *t->req;
  std::size_t want = size * n;
  if (r.body_fd >= 0) {
    std::uint64_t left = r.body_length - t->read_pos;
    want = static_cast<std::size_t>(std::min<std::uint64_t>(want, left));
    if (want == 0) return 0;
    ssize_t got;
    do {
      got = ::pread(r.body_fd, buf, want, static_cast<off_t>(r.body_offset + t->read_pos));
    } while (got < 0 && errno == EINTR);
    if (got <= 0) return CURL_READFUNC_ABORT;
    t->read_pos += static_cast<std::uint64_t>(got);
    return static_cast<size_t>(got);
  }
  std::size_t left = r.body.size() - static_cast<std::size_t>(t->read_pos);
  want = std::min(want, left);
  std::memcpy(buf, r.body.data() + t->read_pos, want);
  t->read_pos += want;
  return want;
}

bool RetryableCurl(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

class S3Store : public ObjectStore {
 public:
  S3Store(std::string uri, std::string bucket, std::string prefix, S3Options o, std::uint64_t max_bytes)
      : uri_(std::move(uri)), bucket_(std::move(bucket)), prefix_(std::move(prefix)), o_(std::move(o)),
        max_bytes_(max_bytes) {}

  Status Init() {
    std::string ep = o_.endpoint;
    auto bad = [&](const std::string& why) {
      return InvalidArgument("S3 endpoint " + Quote(ep, 200) + ": " + why);
    };
    if (ep.empty()) {
      scheme_ = o_.use_https ? "https" : "http";
      host_ = "s3." + o_.region + ".amazonaws.com";
      path_style_ = o_.path_style.value_or(false);
    } else {
      auto se = ep.find("://");
      std::string rest = ep;
      if (se != std::string::npos) {
        scheme_ = Lower(ep.substr(0, se));
        rest = ep.substr(se + 3);
      } else {
        scheme_ = o_.use_https ? "https" : "http";
      }
      if (scheme_ != "http" && scheme_ != "https") return bad("expected an http:// or https:// URL");
      auto slash = rest.find('/');
      host_ = rest.substr(0, slash);
      if (slash != std::string::npos) base_path_ = rest.substr(slash);
      while (!base_path_.empty() && base_path_.back() == '/') base_path_.pop_back();
      if (host_.empty()) return bad("has no host");
      if (host_.find('@') != std::string::npos) return bad("must not contain credentials");
      path_style_ = o_.path_style.value_or(true);
    }
    endpoint_ = scheme_ + "://" + host_ + base_path_;
    if (!path_style_) {
      std::string h = host_.substr(0, host_.rfind(':'));
      bool ip = !h.empty() && (h.front() == '[' ||
                               std::all_of(h.begin(), h.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; }));
      if (ip || h == "localhost") {
        return bad("virtual-host addressing (S3_ADDRESSING_STYLE=virtual) needs a DNS name, not '" + h +
                   "'; use path-style addressing");
      }
    }
    if (!o_.access_key_id.empty() && o_.secret_access_key.empty()) {
      return InvalidArgument("S3 credentials for s3://" + bucket_ +
                             ": AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is empty");
    }
    if (o_.part_size == 0) return InvalidArgument("S3 options: part_size must be positive");
    if (o_.max_attempts < 1) o_.max_attempts = 1;
    return Status::Ok();
  }

  std::string Uri() const override { return uri_; }

  Result<ObjectInfo> Put(const std::string& key, const std::string& local_path) override {
    RETURN_IF_ERROR(ValidateKey(key));
    const std::string full = FullKey(key);
    int fd = ::open(local_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return NotFound("put " + Where(full) + ": no such local file " + local_path);
      return InvalidArgument("put " + Where(full) + ": cannot open " + local_path + ": " + std::strerror(errno));
    }
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      return InvalidArgument("put " + Where(full) + ": " + local_path + " is not a regular file");
    }
    auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > max_bytes_) return TooLarge("put", full, size);
    ASSIGN_OR_RETURN(std::string digest, Sha256File(local_path));
    RETURN_IF_ERROR(Upload(full, size, digest, std::string_view(), fd));
    return ObjectInfo{key, size, digest};
  }

  Result<ObjectInfo> PutBytes(const std::string& key, std::string_view data) override {
    RETURN_IF_ERROR(ValidateKey(key));
    const std::string full = FullKey(key);
    if (data.size() > max_bytes_) return TooLarge("put", full, data.size());
    std::string digest = Sha256Hex(data);
    RETURN_IF_ERROR(Upload(full, data.size(), digest, data, -1));
    return ObjectInfo{key, data.size(), digest};
  }

  Result<ObjectInfo> Get(const std::string& key, const std::string& local_path) override {
    RETURN_IF_ERROR(ValidateKey(key));
    const std::string full = FullKey(key);
    const std::string tmp = DownloadTempPath(local_path, "s3tmp");
    int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      return InvalidArgument("get " + Where(full) + ": cannot create " + tmp + ": " + std::strerror(errno));
    }
    struct Cleanup {
      int fd;
      std::string path;
      bool keep = false;
      ~Cleanup() {
        if (fd >= 0) ::close(fd);
        if (!keep) ::unlink(path.c_str());
      }
    } cleanup{fd, tmp};
    Request r;
    r.url = ObjectUrl(full, "");
    r.out_fd = fd;
    r.max_body_bytes = max_bytes_;
    ASSIGN_OR_RETURN(Response resp, Send(r, "get", full));
    ASSIGN_OR_RETURN(ObjectInfo info, CheckDownload(resp, key, full));
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      cleanup.fd = -1;
      return InvalidArgument("get " + Where(full) + ": cannot write " + tmp + ": " + std::strerror(errno));
    }
    cleanup.fd = -1;
    if (::rename(tmp.c_str(), local_path.c_str()) != 0) {
      return InvalidArgument("get " + Where(full) + ": cannot rename " + tmp + " to " + local_path + ": " +
                             std::strerror(errno));
    }
    cleanup.keep = true;
    return info;
  }

  Result<std::string> GetBytes(const std::string& key) override {
    RETURN_IF_ERROR(ValidateKey(key));
    const std::string full = FullKey(key);
    Request r;
    r.url = ObjectUrl(full, "");
    r.max_body_bytes = max_bytes_;
    ASSIGN_OR_RETURN(Response resp, Send(r, "get", full));
    ASSIGN_OR_RETURN(ObjectInfo info, CheckDownload(resp, key, full));
    return std::move(resp.body);
  }

  Result<std::optional<ObjectInfo>> Stat(const std::string& key) override {
    RETURN_IF_ERROR(ValidateKey(key));
    const std::string full = FullKey(key);
    Request r;
    r.method = "HEAD";
    r.url = ObjectUrl(full, "");
    ASSIGN_OR_RETURN(Response resp, Send(r, "stat", full));
    if (resp.status == 404) {
      // HEAD answers have no body to say whether the key or the bucket is missing: ask the
      // bucket (HeadBucket), so that a wrong bucket is not mistaken for a missing object.
      if (resp.Header("x-amz-error-code").empty()) {
        Request hb;
        hb.method = "HEAD";
        hb.url = BucketUrl("");
        ASSIGN_OR_RETURN(Response bucket_resp, Send(hb, "stat", full));
        if (bucket_resp.status == 404) resp.headers["x-amz-error-code"] = "NoSuchBucket";
      }
      if (resp.Header("x-amz-error-code") == "NoSuchBucket") return ErrorFor(resp, "stat", full);
      return std::optional<ObjectInfo>();
    }
    if (resp.status != 200) return ErrorFor(resp, "stat", full);
    ObjectInfo info;
    info.key = key;
    info.size = std::strtoull(resp.Header("content-length").c_str(), nullptr, 10);
    info.sha256 = Lower(resp.Header("x-amz-meta-sha256"));
    return std::optional<ObjectInfo>(std::move(info));
  }

  // ListObjectsV2, page by page. Digests are left empty: listings carry no user metadata.
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    std::string full_prefix = prefix_.empty() ? prefix : prefix_ + "/" + prefix;
    std::vector<ObjectInfo> out;
    std::string token;
    for (int page = 0;; ++page) {
      // Query parameters sorted by name and fully encoded: that is the canonical form SigV4 signs.
      std::string query;
      if (!token.empty()) query += "continuation-token=" + UriEncode(token, false) + "&";
      query += "list-type=2&prefix=" + UriEncode(full_prefix, false);
      Request r;
      r.url = BucketUrl(query);
      ASSIGN_OR_RETURN(Response resp, Send(r, "list", full_prefix + "*"));
      if (resp.status != 200) return ErrorFor(resp, "list", full_prefix + "*");
      for (std::string_view c : XmlElements(resp.body, "Contents")) {
        auto k = XmlFirst(c, "Key");
        auto s = XmlFirst(c, "Size");
        if (!k) continue;
        std::string rel = *k;
        if (!prefix_.empty()) {
          if (rel.compare(0, prefix_.size() + 1, prefix_ + "/") != 0) continue;
          rel = rel.substr(prefix_.size() + 1);
        }
        out.push_back(ObjectInfo{rel, s ? std::strtoull(s->c_str(), nullptr, 10) : 0, ""});
      }
      auto truncated = XmlFirst(resp.body, "IsTruncated");
      auto next = XmlFirst(resp.body, "NextContinuationToken");
      if (!truncated || *truncated != "true") break;
      if (!next || next->empty()) {
        return Internal("list " + Where(full_prefix + "*") +
                        ": the listing is truncated but has no NextContinuationToken");
      }
      if (page > 1000000) return Internal("list " + Where(full_prefix + "*") + ": too many pages");
      token = *next;
    }
    std::sort(out.begin(), out.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return out;
  }

  Status Delete(const std::string& key) override {
    RETURN_IF_ERROR(ValidateKey(key));
    const std::string full = FullKey(key);
    Request r;
    r.method = "DELETE";
    r.url = ObjectUrl(full, "");
    ASSIGN_OR_RETURN(Response resp, Send(r, "delete", full));
    if (resp.status == 200 || resp.status == 204) return Status::Ok();
    if (resp.status == 404 && ErrorCode(resp) != "NoSuchBucket") return Status::Ok();
    return ErrorFor(resp, "delete", full);
  }

 private:
  std::string FullKey(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "/" + key; }

  std::string BucketUrl(const std::string& query) const {
    std::string url = path_style_ ? endpoint_ + "/" + UriEncode(bucket_, false) + "/"
                                  : scheme_ + "://" + bucket_ + "." + host_ + base_path_ + "/";
    if (!query.empty()) url += "?" + query;
    return url;
  }
  std::string ObjectUrl(const std::string& full_key, const std::string& query) const {
    std::string url = path_style_ ? endpoint_ + "/" + UriEncode(bucket_, false) + "/"
                                  : scheme_ + "://" + bucket_ + "." + host_ + base_path_ + "/";
    url += UriEncode(full_key, true);
    if (!query.empty()) url += "?" + query;
    return url;
  }
  // "s3://bucket/key at http://endpoint"
  std::string Where(const std::string& full_key) const {
    return "s3://" + bucket_ + (full_key.empty() ? "" : "/" + full_key) + " at " + endpoint_;
  }

  Status TooLarge(const std::string& op, const std::string& full, std::uint64_t size) const {
    return ResourceExhausted(op + " " + Where(full) + ": the object is " + std::to_string(size) +
                             " bytes, above the limit of " + std::to_string(max_bytes_) +
                             " bytes (max_object_bytes)");
  }

  static std::string ErrorCode(const Response& r) {
    auto c = XmlFirst(r.error_body, "Code");
    return c ? *c : r.Header("x-amz-error-code");
  }

  // A non-success HTTP answer as a Status: what failed, where, and what was expected.
  Status ErrorFor(const Response& r, const std::string& op, const std::string& full) const {
    std::string code = ErrorCode(r);
    auto msg = XmlFirst(r.error_body, "Message");
    std::string detail = "HTTP " + std::to_string(r.status);
    if (!code.empty()) detail += " " + code;
    if (msg && !msg->empty()) detail += ": " + Quote(*msg, 200);
    else if (!r.Header("x-amz-error-message").empty()) detail += ": " + Quote(r.Header("x-amz-error-message"), 200);
    const std::string what = op + " " + Where(full);
    if (r.status == 403) {
      return PermissionDenied(what + ": access denied (" + detail +
                              "); expected credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) allowed to " + op +
                              " in bucket '" + bucket_ + "'");
    }
    if (r.status == 401) return Unauthenticated(what + ": not authenticated (" + detail + ")");
    if (r.status == 404 && code == "NoSuchBucket") {
      return NotFound(what + ": bucket '" + bucket_ + "' does not exist (" + detail + ")");
    }
    if (r.status == 404) return NotFound(what + ": no such object (" + detail + ")");
    if (r.status == 301 || r.status == 307 || code == "AuthorizationHeaderMalformed" ||
        code == "PermanentRedirect") {
      return FailedPrecondition(what + ": the bucket is not served here (" + detail + "); expected region '" +
                                o_.region + "' to be the bucket's region (set AWS_DEFAULT_REGION) or another endpoint");
    }
    if (r.status == 429 || r.status >= 500) {
      return Unavailable(what + ": server error after " + std::to_string(r.attempts) + " attempt(s) (" + detail + ")");
    }
    return FailedPrecondition(what + ": unexpected answer (" + detail + ")");
  }

  // Checks a finished download: status, size limit, and the digest against x-amz-meta-sha256.
  Result<ObjectInfo> CheckDownload(const Response& resp, const std::string& key, const std::string& full) const {
    if (resp.too_large) {
      std::string len = resp.Header("content-length");
      return ResourceExhausted("get " + Where(full) + ": the object" + (len.empty() ? "" : " is " + len + " bytes,") +
                               " above the limit of " + std::to_string(max_bytes_) + " bytes (max_object_bytes)");
    }
    if (!resp.local_error.empty()) {
      return InvalidArgument("get " + Where(full) + ": cannot write the download: " + resp.local_error);
    }
    if (resp.status != 200) return ErrorFor(resp, "get", full);
    std::string len = resp.Header("content-length");
    if (!len.empty() && std::strtoull(len.c_str(), nullptr, 10) != resp.body_bytes) {
      return Unavailable("get " + Where(full) + ": received " + std::to_string(resp.body_bytes) +
                         " bytes, expected Content-Length " + len);
    }
    std::string recorded = Lower(resp.Header("x-amz-meta-sha256"));
    if (!recorded.empty() && recorded != resp.body_sha256) {
      return Internal("get " + Where(full) + ": sha256 mismatch: the object records " + recorded +
                      " (x-amz-meta-sha256) but the " + std::to_string(resp.body_bytes) + " downloaded bytes hash to " +
                      resp.body_sha256);
    }
    return ObjectInfo{key, resp.body_bytes, resp.body_sha256};
  }

  // One attempt; fills resp.
  void Attempt(const Request& req, Response& resp) const {
    CurlSink sink;
    sink.head = req.method == "HEAD";
    sink.max_bytes = req.max_body_bytes;
    sink.out_fd = req.out_fd;
    sink.max_error_body = kMaxErrorBody;
    CurlEasy easy(req.url, &sink);
    CURL* curl = easy.get();
    if (curl == nullptr) {
      resp.curl = CURLE_FAILED_INIT;
      resp.curl_error = "curl_easy_init failed";
      return;
    }
    BodyReader reader;
    reader.req = &req;
    struct curl_slist* headers = nullptr;
    std::vector<std::string> hs = req.headers;
    hs.push_back("x-amz-content-sha256: " + req.payload_sha256);
    if (!o_.session_token.empty()) hs.push_back("x-amz-security-token: " + o_.session_token);
    // No "Expect:" header to suppress 100-continue: curl would sign the empty header without
    // sending it, and the signature would not match (SigV4SignatureMatchesBotocore).
    for (const auto& h : hs) headers = curl_slist_append(headers, h.c_str());

    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o_.connect_timeout.count() * 1000));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(o_.request_timeout.count() * 1000));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    // Servers that ignore "Expect: 100-continue" (large bodies) cost at most this much.
    curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 200L);
    if (!o_.verify_ssl) {
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!o_.ca_bundle.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, o_.ca_bundle.c_str());
    std::string sigv4 = "aws:amz:" + o_.region + ":s3";
    if (!o_.access_key_id.empty()) {
      curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.c_str());
      curl_easy_setopt(curl, CURLOPT_USERNAME, o_.access_key_id.c_str());
      curl_easy_setopt(curl, CURLOPT_PASSWORD, o_.secret_access_key.c_str());
    }
    // HEAD needs nothing more: CurlEasy asks for no body.
    if (req.method == "PUT" && req.body_fd < 0) {
      // An in-memory body goes as POSTFIELDS under a PUT: curl adds no 100-continue round trip
      // below 1 MiB, as it does for every CURLOPT_UPLOAD.
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
    } else if (req.method == "PUT") {
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_READFUNCTION, OnRead);
      curl_easy_setopt(curl, CURLOPT_READDATA, &reader);
      curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                       static_cast<curl_off_t>(req.body_fd >= 0 ? req.body_length : req.body.size()));
    } else if (req.method == "POST") {
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    } else if (req.method != "GET" && !sink.head) {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    resp.curl = easy.Perform(&resp.status, &resp.curl_error);
    curl_slist_free_all(headers);
    resp.headers = std::move(sink.headers);
    resp.body = std::move(sink.body);
    resp.error_body = std::move(sink.error_body);
    resp.body_bytes = sink.bytes;
    resp.body_sha256 = sink.sha.FinishHex();
    resp.too_large = sink.too_large;
    resp.local_error = std::move(sink.local_error);
  }

  // Sends with retries; fails only on transport errors (an HTTP error status is returned).
  Result<Response> Send(const Request& req, const std::string& op, const std::string& full) const {
    auto backoff = o_.first_backoff;
    Response resp;
    for (int attempt = 1; attempt <= o_.max_attempts; ++attempt) {
      resp = Response();
      resp.attempts = attempt;
      if (req.out_fd >= 0) {
        if (::ftruncate(req.out_fd, 0) != 0 || ::lseek(req.out_fd, 0, SEEK_SET) != 0) {
          return InvalidArgument(op + " " + Where(full) + ": cannot reset the download file: " + std::strerror(errno));
        }
      }
      Attempt(req, resp);
      if (resp.too_large || !resp.local_error.empty()) return resp;
      bool retry = resp.curl != CURLE_OK ? RetryableCurl(resp.curl)
                                         : (resp.status == 429 || resp.status >= 500);
      if (!retry || attempt == o_.max_attempts) break;
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
    if (resp.curl == CURLE_OK || resp.too_large || !resp.local_error.empty()) return resp;
    const std::string what = op + " " + Where(full);
    const std::string tries = " after " + std::to_string(resp.attempts) + " attempt(s)";
    switch (resp.curl) {
      case CURLE_COULDNT_CONNECT:
        return Unavailable(what + ": cannot connect to the S3 endpoint " + endpoint_ + tries + " (" + resp.curl_error +
                           "); expected a reachable S3 server (check AWS_ENDPOINT_URL)");
      case CURLE_COULDNT_RESOLVE_HOST:
        return Unavailable(what + ": cannot resolve the S3 endpoint's host (" + resp.curl_error +
                           "); expected a resolvable endpoint (check AWS_ENDPOINT_URL)");
      case CURLE_OPERATION_TIMEDOUT:
        return Unavailable(what + ": timed out" + tries + " (" + resp.curl_error + ")");
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_SSL_CACERT_BADFILE:
        return Unavailable(what + ": TLS failed (" + resp.curl_error +
                           "); check AWS_CA_BUNDLE, S3_VERIFY_SSL or S3_USE_HTTPS");
      default:
        return Unavailable(what + ": transfer failed" + tries + " (" + resp.curl_error + ")");
    }
  }

  // Uploads `size` bytes with the given digest, from the open file `fd` when fd >= 0, else from
  // `data`: one PutObject, or a multipart upload above multipart_threshold.
  Status Upload(const std::string& full, std::uint64_t size, const std::string& digest, std::string_view data,
                int fd) const {
    if (size > o_.multipart_threshold) return Multipart(full, size, digest, data, fd);
    Request r;
    r.method = "PUT";
    r.url = ObjectUrl(full, "");
    r.payload_sha256 = digest;
    r.headers = {"x-amz-meta-sha256: " + digest, "Content-Type: application/octet-stream"};
    if (fd >= 0) {
      r.body_fd = fd;
      r.body_length = size;
    } else {
      r.body = data;
    }
    ASSIGN_OR_RETURN(Response resp, Send(r, "put", full));
    if (resp.status != 200) return ErrorFor(resp, "put", full);
    return Status::Ok();
  }

  // CreateMultipartUpload, UploadPart per part (each with its own payload digest), then
  // CompleteMultipartUpload; AbortMultipartUpload when anything fails.
  Status Multipart(const std::string& full, std::uint64_t size, const std::string& digest, std::string_view data,
                   int fd) const {
    std::uint64_t part_size = std::max<std::uint64_t>(o_.part_size, (size + kMaxParts - 1) / kMaxParts);
    Request create;
    create.method = "POST";
    create.url = ObjectUrl(full, "uploads=");
    create.headers = {"x-amz-meta-sha256: " + digest, "Content-Type: application/octet-stream"};
    ASSIGN_OR_RETURN(Response cr, Send(create, "create multipart upload for", full));
    if (cr.status != 200) return ErrorFor(cr, "create multipart upload for", full);
    auto upload_id = XmlFirst(cr.body, "UploadId");
    if (!upload_id || upload_id->empty()) {
      return Internal("create multipart upload for " + Where(full) + ": the answer has no UploadId");
    }
    Status st = UploadParts(full, size, part_size, data, fd, *upload_id);
    if (!st.ok()) {
      Request abort;
      abort.method = "DELETE";
      abort.url = ObjectUrl(full, "uploadId=" + UriEncode(*upload_id, false));
      (void)Send(abort, "abort multipart upload for", full);  // best effort
    }
    return st;
  }

  Status UploadParts(const std::string& full, std::uint64_t size, std::uint64_t part_size, std::string_view data,
                     int fd, const std::string& upload_id) const {
    const std::string id = UriEncode(upload_id, false);
    std::string complete = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
    std::string buf;
    int part = 1;
    for (std::uint64_t off = 0; off < size; off += part_size, ++part) {
      std::uint64_t len = std::min(part_size, size - off);
      std::string_view chunk;
      if (fd >= 0) {
        buf.resize(static_cast<std::size_t>(len));
        std::size_t got = 0;
        while (got < len) {
          ssize_t n = ::pread(fd, buf.data() + got, len - got, static_cast<off_t>(off + got));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            return InvalidArgument("put " + Where(full) + ": reading part " + std::to_string(part) +
                                   " of the local file failed (it changed while being uploaded?)");
          }
          got += static_cast<std::size_t>(n);
        }
        chunk = buf;
      } else {
        chunk = data.substr(static_cast<std::size_t>(off), static_cast<std::size_t>(len));
      }
      Request r;
      r.method = "PUT";
      r.url = ObjectUrl(full, "partNumber=" + std::to_string(part) + "&uploadId=" + id);
      r.payload_sha256 = Sha256Hex(chunk);
      r.headers = {"Content-Type: application/octet-stream"};
      r.body = chunk;
      const std::string op = "upload part " + std::to_string(part) + " of";
      ASSIGN_OR_RETURN(Response resp, Send(r, op, full));
      if (resp.status != 200) return ErrorFor(resp, op, full);
      std::string etag = resp.Header("etag");
      if (etag.empty()) return Internal(op + " " + Where(full) + ": the answer has no ETag header");
      complete += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" + XmlEscape(etag) +
                  "</ETag></Part>";
    }
    complete += "</CompleteMultipartUpload>";
    Request done;
    done.method = "POST";
    done.url = ObjectUrl(full, "uploadId=" + id);
    done.headers = {"Content-Type: application/xml"};
    done.body = complete;
    done.payload_sha256 = Sha256Hex(complete);
    ASSIGN_OR_RETURN(Response resp, Send(done, "complete multipart upload for", full));
    // S3 may answer 200 with an <Error> body when completing fails late.
    if (resp.status == 200 && resp.body.find("<Error>") != std::string::npos) {
      resp.error_body = resp.body;
      resp.status = 500;
    }
    if (resp.status != 200) return ErrorFor(resp, "complete multipart upload for", full);
    return Status::Ok();
  }

  std::string uri_, bucket_, prefix_;
  S3Options o_;
  std::uint64_t max_bytes_;
  std::string scheme_, host_, base_path_, endpoint_;
  bool path_style_ = true;
};

}  // namespace

Result<std::unique_ptr<ObjectStore>> OpenS3Store(const std::string& uri, const std::string& bucket,
                                                 const std::string& prefix, const StoreOptions& options) {
  S3Options o;
  if (options.s3) {
    o = *options.s3;
  } else {
    ASSIGN_OR_RETURN(o, S3Options::FromEnv());
  }
  auto store = std::make_unique<S3Store>(uri, bucket, prefix, std::move(o), options.max_object_bytes);
  RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<ObjectStore>(std::move(store));
}

}  // namespace internal
}  // namespace fpgaserve::store
