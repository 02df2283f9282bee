// libcurl plumbing shared by the s3:// and http(s):// stores (internal to fpgaserve_store): URI
// percent-encoding, the header/body callbacks that enforce the size limit while the bytes arrive,
// an easy handle with the options both stores set, and the temporary file a download goes to.
#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/sha256.h"

namespace fpgaserve::store::internal {

// curl_global_init, once per process.
void CurlGlobalInit();

// RFC 3986 percent-encoding (as SigV4 expects it): unreserved characters stay, '/' stays when
// encoding a path.
std::string UriEncode(std::string_view s, bool keep_slash);

// A fresh name beside local_path ("<local_path>~<tag>.<pid>.<n>") for a download to be written
// to and then renamed into place; creates local_path's directory.
std::string DownloadTempPath(const std::string& local_path, std::string_view tag);

// What one transfer received, filled by CurlOnHeader and CurlOnWrite. Headers are those of the
// last response (a new status line, as after 100 Continue or a redirect, starts over). A 2xx body
// goes to out_fd when set, else to `body`, and is counted and hashed as it arrives; a larger body
// than max_bytes (by its Content-Length, or while it arrives) aborts the transfer with too_large.
struct CurlSink {
  // Set before the transfer.
  std::uint64_t max_bytes = 0;
  bool head = false;                 // HEAD: Content-Length describes the object, not a body
  int out_fd = -1;                   // the 2xx body goes to this file, else to `body`
  std::size_t max_error_body = 0;    // how much of a non-2xx body to keep in error_body
  // Filled by the transfer.
  long status = 0;                              // from the last status line
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
  std::string error_body;
  std::uint64_t bytes = 0;  // 2xx body bytes received
  Sha256 sha;               // of those bytes
  bool too_large = false;
  std::string local_error;  // writing the download to out_fd failed

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// CURLOPT_HEADERFUNCTION and CURLOPT_WRITEFUNCTION callbacks; their data is a CurlSink*.
size_t CurlOnHeader(char* data, size_t size, size_t n, void* sink);
size_t CurlOnWrite(char* data, size_t size, size_t n, void* sink);

// A curl easy handle for one request to `url`, http(s) only, with an error buffer, no signals,
// the store's user agent, and `sink` receiving the headers and the body. Callers add their own
// options through get() before Perform().
class CurlEasy {
 public:
  CurlEasy(const std::string& url, CurlSink* sink);
  ~CurlEasy();
  CurlEasy(const CurlEasy&) = delete;
  CurlEasy& operator=(const CurlEasy&) = delete;

  CURL* get() const { return curl_; }  // null when curl_easy_init failed
  // Runs the transfer: the curl result, the HTTP status (0 without an answer) and the error text.
  CURLcode Perform(long* status, std::string* error);

 private:
  CURL* curl_ = nullptr;
  char errbuf_[CURL_ERROR_SIZE] = {0};
};

}  // namespace fpgaserve::store::internal
