// Object stores behind one interface (docs/store.md): where models are fetched from and where
// built firmware is uploaded to.
//   file:///abs/dir            the embedded default: a directory tree (writes are atomic renames)
//   s3://bucket[/prefix]       S3 or an S3-compatible server (libcurl, AWS Signature V4)
//   http(s)://host[/path]      read-only (GET/HEAD)
// Keys are relative paths ("<build_id>/metadata.json"): ValidateKey rejects anything that could
// escape the store root. Every transfer is checked with SHA-256: uploads record the digest with
// the object (S3: the x-amz-meta-sha256 header, file: computed), downloads recompute it and fail
// with INTERNAL ("sha256 mismatch") when it differs from the recorded one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fpgaserve::store {

inline constexpr std::uint64_t kDefaultMaxObjectBytes = 4ULL << 30;  // 4 GiB

struct ObjectInfo {
  std::string key;     // relative to the store root
  std::uint64_t size = 0;
  std::string sha256;  // lowercase hex; empty when the store has no digest recorded (a foreign object)
};

// S3 settings; S3Options::FromEnv reads them as KServe's storage initializer does.
struct S3Options {
  std::string endpoint;   // "http://127.0.0.1:4568", "https://s3.eu-west-1.amazonaws.com"; empty: AWS
  std::string region = "us-east-1";
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // optional (AWS_SESSION_TOKEN)
  bool use_https = true;      // when the endpoint has no scheme
  bool verify_ssl = true;
  std::string ca_bundle;      // AWS_CA_BUNDLE
  // Path-style (endpoint/bucket/key) or virtual-host (bucket.endpoint/key) addressing. Default:
  // path-style for a custom endpoint (IP addresses and localhost cannot be virtual hosts),
  // virtual-host for AWS. S3_ADDRESSING_STYLE=path|virtual overrides.
  std::optional<bool> path_style;
  std::uint64_t multipart_threshold = 16ULL << 20;  // uploads above this use multipart upload
  std::uint64_t part_size = 8ULL << 20;             // >= 5 MiB except in tests
  int max_attempts = 4;                    // per request: 1 + retries on 5xx, 429, timeouts, resets
  std::chrono::milliseconds first_backoff{200};     // doubled per retry
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds request_timeout{300};

  // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION (or AWS_REGION),
  // AWS_ENDPOINT_URL (or S3_ENDPOINT), S3_USE_HTTPS (0/1/true/false), S3_VERIFY_SSL, AWS_CA_BUNDLE,
  // S3_ADDRESSING_STYLE. A malformed value is INVALID_ARGUMENT naming the variable.
  static Result<S3Options> FromEnv();
};

struct StoreOptions {
  std::uint64_t max_object_bytes = kDefaultMaxObjectBytes;  // Get/Put refuse larger objects
  std::optional<S3Options> s3;  // s3:// stores; empty: S3Options::FromEnv()
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // The store's root URI as given (never with credentials).
  virtual std::string Uri() const = 0;
  virtual bool ReadOnly() const { return false; }

  // Uploads the local file to `key`, replacing any object there. Returns what was stored (its
  // sha256 computed while reading the file). PERMISSION_DENIED on a read-only store.
  virtual Result<ObjectInfo> Put(const std::string& key, const std::string& local_path) = 0;
  virtual Result<ObjectInfo> PutBytes(const std::string& key, std::string_view data) = 0;

  // Downloads `key` into local_path (a temp file renamed into place: never a partial file),
  // NOT_FOUND when missing, RESOURCE_EXHAUSTED above max_object_bytes, INTERNAL on a sha256
  // mismatch with the recorded digest. Returns the downloaded object's size and sha256.
  virtual Result<ObjectInfo> Get(const std::string& key, const std::string& local_path) = 0;
  virtual Result<std::string> GetBytes(const std::string& key) = 0;

  // Size and recorded digest, or nullopt when there is no such object.
  virtual Result<std::optional<ObjectInfo>> Stat(const std::string& key) = 0;

  // Objects whose key starts with `prefix` (all when empty), sorted by key.
  virtual Result<std::vector<ObjectInfo>> List(const std::string& prefix) = 0;

  // Removes the object; OK when it does not exist.
  virtual Status Delete(const std::string& key) = 0;
};

// Opens a store root. INVALID_ARGUMENT for a malformed URI or an unknown scheme (naming the
// schemes we support); s3:// fails here only for bad settings, not for an unreachable server.
Result<std::unique_ptr<ObjectStore>> OpenStore(const std::string& uri, const StoreOptions& options = {});

// One object's URI ("s3://bucket/models/m.onnx", "file:///x/m.onnx", "https://h/m.onnx") split
// into a store on its parent and the key within it.
struct ObjectRef {
  std::unique_ptr<ObjectStore> store;
  std::string key;
};
Result<ObjectRef> OpenObject(const std::string& uri, const StoreOptions& options = {});

// A key is 1..1024 bytes of [A-Za-z0-9._-/], no leading '/', no empty, '.' or '..' segment.
Status ValidateKey(const std::string& key);

}  // namespace fpgaserve::store
