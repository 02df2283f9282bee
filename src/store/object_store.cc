// URI dispatch, key validation and S3 settings from the environment (see object_store.h).
#include "store/object_store.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "core/text.h"

namespace fpgaserve::store {

// Defined in file_store.cc, s3_store.cc and http_store.cc.
namespace internal {
Result<std::unique_ptr<ObjectStore>> OpenFileStore(const std::string& uri, const std::string& root,
                                                   const StoreOptions& options);
Result<std::unique_ptr<ObjectStore>> OpenS3Store(const std::string& uri, const std::string& bucket,
                                                 const std::string& prefix, const StoreOptions& options);
Result<std::unique_ptr<ObjectStore>> OpenHttpStore(const std::string& uri, const StoreOptions& options);
}  // namespace internal

namespace {

constexpr const char* kSupportedSchemes = "file:///abs/dir, s3://bucket[/prefix], http(s)://host[/path]";

bool KeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/';
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The URI with any user:password@ removed, for messages.
std::string Redact(const std::string& uri) {
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos) return uri;
  auto auth_start = scheme_end + 3;
  auto auth_end = uri.find('/', auth_start);
  auto at = uri.rfind('@', auth_end == std::string::npos ? std::string::npos : auth_end);
  if (at == std::string::npos || at < auth_start) return uri;
  return uri.substr(0, auth_start) + "***@" + uri.substr(at + 1);
}

std::optional<std::string> Env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

Result<bool> EnvBool(const char* name, bool current) {
  auto v = Env(name);
  if (!v || Trim(*v).empty()) return current;
  std::string s = Lower(std::string(Trim(*v)));
  if (s == "1" || s == "true") return true;
  if (s == "0" || s == "false") return false;
  return InvalidArgument(std::string("environment variable ") + name + "=" + Quote(*v) +
                         ": expected 0, 1, true or false");
}

// Splits "s3://bucket/prefix/..." after the scheme into bucket and prefix.
Status ValidateBucket(const std::string& bucket, const std::string& uri) {
  bool ok = bucket.size() >= 3 && bucket.size() <= 63;
  for (char c : bucket) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) ok = false;
  }
  if (ok) return Status::Ok();
  return InvalidArgument("store URI " + Quote(Redact(uri), 200) + ": bucket name " + Quote(bucket) +
                         " is not a valid S3 bucket name (3 to 63 characters of [a-z0-9.-])");
}

}  // namespace

Status ValidateKey(const std::string& key) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("object key " + Quote(key, 120) + ": " + why);
  };
  if (key.empty()) return bad("is empty; expected a relative path like '<build_id>/metadata.json'");
  if (key.size() > 1024) return bad("is " + std::to_string(key.size()) + " bytes long; at most 1024 allowed");
  for (char c : key) {
    if (!KeyChar(c)) {
      std::string shown = std::isprint(static_cast<unsigned char>(c))
                              ? std::string("'") + c + "'"
                              : "byte " + std::to_string(static_cast<unsigned char>(c));
      return bad("contains " + shown + "; only letters, digits and . _ - / are allowed");
    }
  }
  if (key.front() == '/') return bad("is absolute; keys are relative to the store root");
  std::size_t start = 0;
  while (true) {
    auto end = key.find('/', start);
    std::string_view seg = std::string_view(key).substr(start, end == std::string::npos ? key.size() - start
                                                                                        : end - start);
    if (seg.empty()) return bad("has an empty path segment ('//' or a trailing '/')");
    if (seg == ".") return bad("has a '.' path segment");
    if (seg == "..") return bad("has a '..' path segment, which could escape the store root");
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return Status::Ok();
}

Result<S3Options> S3Options::FromEnv() {
  S3Options o;
  if (auto v = Env("AWS_ACCESS_KEY_ID")) o.access_key_id = std::string(Trim(*v));
  if (auto v = Env("AWS_SECRET_ACCESS_KEY")) o.secret_access_key = std::string(Trim(*v));
  if (auto v = Env("AWS_SESSION_TOKEN")) o.session_token = std::string(Trim(*v));
  for (const char* name : {"AWS_DEFAULT_REGION", "AWS_REGION"}) {
    auto v = Env(name);
    if (!v || Trim(*v).empty()) continue;
    std::string region(Trim(*v));
    bool ok = true;
    for (char c : region) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) ok = false;
    }
    if (!ok) {
      return InvalidArgument(std::string("environment variable ") + name + "=" + Quote(*v) +
                             ": expected an AWS region like 'us-east-1'");
    }
    o.region = region;
    break;
  }
  ASSIGN_OR_RETURN(o.use_https, EnvBool("S3_USE_HTTPS", o.use_https));
  ASSIGN_OR_RETURN(o.verify_ssl, EnvBool("S3_VERIFY_SSL", o.verify_ssl));
  for (const char* name : {"AWS_ENDPOINT_URL", "S3_ENDPOINT"}) {
    auto v = Env(name);
    if (!v || Trim(*v).empty()) continue;
    std::string ep(Trim(*v));
    auto fail = [&](const std::string& why) {
      return InvalidArgument(std::string("environment variable ") + name + "=" + Quote(Redact(ep), 200) +
                             ": " + why);
    };
    std::string rest = ep;
    auto scheme_end = ep.find("://");
    if (scheme_end != std::string::npos) {
      std::string scheme = Lower(ep.substr(0, scheme_end));
      if (scheme != "http" && scheme != "https") return fail("expected an http:// or https:// URL");
      rest = ep.substr(scheme_end + 3);
    }
    std::string host = rest.substr(0, rest.find('/'));
    if (host.empty()) return fail("has no host; expected e.g. 'http://127.0.0.1:9000'");
    for (char c : ep) {
      if (std::isspace(static_cast<unsigned char>(c)) || !std::isprint(static_cast<unsigned char>(c))) {
        return fail("contains whitespace or control characters");
      }
    }
    if (host.find('@') != std::string::npos) {
      return fail("must not contain credentials; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    }
    auto colon = host.rfind(':');
    if (colon != std::string::npos && host.find(']') == std::string::npos) {
      std::string port = host.substr(colon + 1);
      bool digits = !port.empty() && port.size() <= 5 &&
                    std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
      if (!digits || std::stoi(port) == 0 || std::stoi(port) > 65535) return fail("has an invalid port");
    }
    o.endpoint = ep;
    break;
  }
  if (auto v = Env("AWS_CA_BUNDLE"); v && !Trim(*v).empty()) {
    std::string path(Trim(*v));
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      return InvalidArgument("environment variable AWS_CA_BUNDLE=" + Quote(path, 200) +
                             ": no such file; expected a PEM file of CA certificates");
    }
    o.ca_bundle = path;
  }
  if (auto v = Env("S3_ADDRESSING_STYLE"); v && !Trim(*v).empty()) {
    std::string s = Lower(std::string(Trim(*v)));
    if (s == "path") {
      o.path_style = true;
    } else if (s == "virtual") {
      o.path_style = false;
    } else if (s == "auto") {
      o.path_style.reset();
    } else {
      return InvalidArgument("environment variable S3_ADDRESSING_STYLE=" + Quote(*v) +
                             ": expected 'path' or 'virtual'");
    }
  }
  return o;
}

Result<std::unique_ptr<ObjectStore>> OpenStore(const std::string& uri, const StoreOptions& options) {
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos) {
    return InvalidArgument("store URI " + Quote(Redact(uri), 200) + " has no scheme; expected one of " +
                           kSupportedSchemes);
  }
  std::string scheme = Lower(uri.substr(0, scheme_end));
  std::string rest = uri.substr(scheme_end + 3);
  if (scheme == "file") {
    // file:///abs/dir or file://localhost/abs/dir
    if (StartsWith(rest, "localhost/")) rest = rest.substr(9);
    if (rest.empty() || rest.front() != '/') {
      return InvalidArgument("store URI " + Quote(uri, 200) +
                             ": expected an absolute path, 'file:///abs/dir' (three slashes)");
    }
    if (rest.find('?') != std::string::npos || rest.find('#') != std::string::npos) {
      return InvalidArgument("store URI " + Quote(uri, 200) + ": a file:// URI takes no query or fragment");
    }
    for (const auto& part : std::filesystem::path(rest)) {
      if (part == "..") {
        return InvalidArgument("store URI " + Quote(uri, 200) + ": the root path must not contain '..'");
      }
    }
    std::filesystem::path root = std::filesystem::path(rest).lexically_normal();
    std::string root_s = root.string();
    while (root_s.size() > 1 && root_s.back() == '/') root_s.pop_back();
    return internal::OpenFileStore(uri, root_s, options);
  }
  if (scheme == "s3") {
    auto slash = rest.find('/');
    std::string bucket = rest.substr(0, slash);
    std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    if (bucket.empty()) {
      return InvalidArgument("store URI " + Quote(uri, 200) + " has no bucket; expected s3://bucket[/prefix]");
    }
    RETURN_IF_ERROR(ValidateBucket(bucket, uri));
    if (!prefix.empty()) {
      Status st = ValidateKey(prefix);
      if (!st.ok()) {
        return InvalidArgument("store URI " + Quote(uri, 200) + ": the prefix after the bucket: " + st.message());
      }
    }
    return internal::OpenS3Store(uri, bucket, prefix, options);
  }
  if (scheme == "http" || scheme == "https") {
    auto host_end = rest.find_first_of("/?#");
    if (rest.substr(0, host_end).empty()) {
      return InvalidArgument("store URI " + Quote(Redact(uri), 200) + " has no host");
    }
    if (rest.find_first_of("?#") != std::string::npos) {
      return InvalidArgument("store URI " + Quote(Redact(uri), 200) +
                             ": an http(s) store root takes no query or fragment");
    }
    return internal::OpenHttpStore(uri, options);
  }
  return InvalidArgument("store URI " + Quote(Redact(uri), 200) + ": unknown scheme '" + scheme +
                         "'; supported: " + kSupportedSchemes);
}

Result<ObjectRef> OpenObject(const std::string& uri, const StoreOptions& options) {
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos) {
    return InvalidArgument("object URI " + Quote(Redact(uri), 200) + " has no scheme; expected one of " +
                           kSupportedSchemes);
  }
  std::string scheme = Lower(uri.substr(0, scheme_end));
  std::size_t path_start;  // where the part that may be split begins
  if (scheme == "file") {
    path_start = scheme_end + 3;
  } else {
    // s3://bucket/..., http(s)://host/...: the key is never part of the authority.
    path_start = uri.find('/', scheme_end + 3);
    if (path_start == std::string::npos) {
      return InvalidArgument("object URI " + Quote(Redact(uri), 200) +
                             " names no object; expected e.g. s3://bucket/models/model.onnx");
    }
  }
  if ((scheme == "http" || scheme == "https") && uri.find_first_of("?#", path_start) != std::string::npos) {
    return InvalidArgument("object URI " + Quote(Redact(uri), 200) + ": query strings are not supported");
  }
  auto last = uri.rfind('/');
  if (last == std::string::npos || last < path_start || last + 1 >= uri.size()) {
    return InvalidArgument("object URI " + Quote(Redact(uri), 200) +
                           " names no object (it is empty or ends with '/')");
  }
  std::string key = uri.substr(last + 1);
  Status st = ValidateKey(key);
  if (!st.ok()) return InvalidArgument("object URI " + Quote(Redact(uri), 200) + ": " + st.message());
  std::string root = uri.substr(0, last);
  if (scheme == "file" && root.size() == path_start) root += "/";  // file:///m.onnx: the root is '/'
  ASSIGN_OR_RETURN(auto store, OpenStore(root, options));
  return ObjectRef{std::move(store), std::move(key)};
}

}  // namespace fpgaserve::store
