// libcurl plumbing shared by the s3:// and http(s):// stores (see curl_transfer.h).
#include "store/curl_transfer.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "core/text.h"

namespace fpgaserve::store::internal {

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string UriEncode(std::string_view s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string DownloadTempPath(const std::string& local_path, std::string_view tag) {
  static std::atomic<unsigned> counter{0};
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(local_path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  return local_path + "~" + std::string(tag) + "." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

size_t CurlOnHeader(char* data, size_t size, size_t n, void* p) {
  auto* s = static_cast<CurlSink*>(p);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (line.substr(0, 5) == "HTTP/") {  // a new response (after 100 Continue or a redirect): start over
    s->headers.clear();
    auto sp = line.find(' ');
    s->status = sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(Trim(line.substr(0, colon)));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string& value = s->headers[name];
  value = std::string(Trim(line.substr(colon + 1)));
  if (name == "content-length" && !s->head && s->status >= 200 && s->status < 300 &&
      std::strtoull(value.c_str(), nullptr, 10) > s->max_bytes) {
    s->too_large = true;
    return 0;  // abort before downloading
  }
  return size * n;
}

size_t CurlOnWrite(char* data, size_t size, size_t n, void* p) {
  auto* s = static_cast<CurlSink*>(p);
  std::size_t len = size * n;
  if (s->status < 200 || s->status >= 300) {  // an error page: only its start is kept
    std::size_t room = s->max_error_body - std::min(s->max_error_body, s->error_body.size());
    s->error_body.append(data, std::min(len, room));
    return len;
  }
  if (s->bytes + len > s->max_bytes) {
    s->too_large = true;
    return 0;
  }
  s->bytes += len;
  s->sha.Update(std::string_view(data, len));
  if (s->out_fd < 0) {
    s->body.append(data, len);
    return len;
  }
  for (std::size_t done = 0; done < len;) {
    ssize_t w = ::write(s->out_fd, data + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      s->local_error = std::strerror(errno);
      return 0;
    }
    done += static_cast<std::size_t>(w);
  }
  return len;
}

CurlEasy::CurlEasy(const std::string& url, CurlSink* sink) {
  CurlGlobalInit();
  curl_ = curl_easy_init();
  if (curl_ == nullptr) return;
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errbuf_);
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl_, CURLOPT_USERAGENT, "fpgaserve-store");
  curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, CurlOnHeader);
  curl_easy_setopt(curl_, CURLOPT_HEADERDATA, sink);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, CurlOnWrite);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, sink);
  if (sink->head) curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
}

CurlEasy::~CurlEasy() {
  if (curl_ != nullptr) curl_easy_cleanup(curl_);
}

CURLcode CurlEasy::Perform(long* status, std::string* error) {
  CURLcode rc = curl_easy_perform(curl_);
  *status = 0;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, status);
  *error = errbuf_[0] ? errbuf_ : curl_easy_strerror(rc);
  return rc;
}

}  // namespace fpgaserve::store::internal
