#include "services/bundle_fetch.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "core/file_io.h"
#include "core/sha256.h"
#include "core/text.h"

namespace fpgaserve::services {
namespace fs = std::filesystem;
namespace {

// Large enough for any metadata.json we write (a few KiB per layer and file).
constexpr std::uint64_t kMaxMetadataBytes = 16 << 20;

std::string TempName(const std::string& cache_dir) {
  static std::atomic<unsigned> counter{0};
  return (fs::path(cache_dir) / (".fetch-" + std::to_string(::getpid()) + "-" + std::to_string(counter++))).string();
}

}  // namespace

Result<FetchedBundle> FetchBundle(store::ObjectStore& store, const std::string& prefix,
                                  const std::string& cache_dir, const std::string& origin) {
  if (cache_dir.empty()) return InvalidArgument("no cache directory for firmware from " + origin);
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) return InvalidArgument("cache directory " + cache_dir + ": " + ec.message());

  auto text = store.GetBytes(prefix + firmware::kMetadataFile);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return NotFound(origin + " is not a firmware bundle: no " + firmware::kMetadataFile + " (" +
                      text.status().message() + ")");
    }
    return text.status().WithContext("fetching " + origin);
  }
  if (text->size() > kMaxMetadataBytes) {
    return ResourceExhausted(origin + ": metadata.json has " + std::to_string(text->size()) + " bytes; the limit is " +
                             std::to_string(kMaxMetadataBytes));
  }
  ASSIGN_OR_RETURN(firmware::BundleMetadata meta,
                   firmware::ParseBundleMetadata(*text, origin + "/" + firmware::kMetadataFile));
  FetchedBundle out;
  out.firmware_id = Sha256Hex(*text);
  out.dir = (fs::path(cache_dir) / out.firmware_id).string();
  out.metadata = std::move(meta);
  if (fs::exists(fs::path(out.dir) / firmware::kMetadataFile, ec)) {
    out.cached = true;
    return out;
  }

  const std::string tmp = TempName(cache_dir);
  fs::remove_all(tmp, ec);
  auto cleanup = [&] { fs::remove_all(tmp, ec); };
  fs::create_directories(tmp, ec);
  for (const auto& f : out.metadata.files) {
    if (Status st = store::ValidateKey(f.path); !st.ok()) {
      cleanup();
      return InvalidArgument(origin + ": metadata.json lists file " + Quote(f.path, 200) + ": " + st.message());
    }
    const fs::path local = fs::path(tmp) / f.path;
    fs::create_directories(local.parent_path(), ec);
    auto got = store.Get(prefix + f.path, local.string());
    if (!got.ok()) {
      cleanup();
      return got.status().WithContext("fetching " + f.path + " of " + origin);
    }
    if (Status st = firmware::VerifyBundleFile(tmp, out.metadata, f.path); !st.ok()) {
      cleanup();
      return st.WithContext(origin);
    }
  }
  if (Status st = WriteFileAtomic((fs::path(tmp) / firmware::kMetadataFile).string(), *text); !st.ok()) {
    cleanup();
    return st;
  }
  fs::rename(tmp, out.dir, ec);
  if (ec) {
    cleanup();
    // Another fetch of the same bundle won the race: its copy is complete, use it.
    if (fs::exists(fs::path(out.dir) / firmware::kMetadataFile)) {
      out.cached = true;
      return out;
    }
    return Internal("cannot move the fetched bundle into " + out.dir + ": " + ec.message());
  }
  return out;
}

Result<FetchedBundle> FetchBundleUri(const std::string& uri, const std::string& cache_dir) {
  std::string root = uri;
  while (root.size() > 1 && root.back() == '/' && root.find("://") + 3 < root.size()) root.pop_back();
  auto store = store::OpenStore(root);
  if (!store.ok()) return store.status().WithContext("firmware URI");
  return FetchBundle(**store, "", cache_dir, root);
}

}  // namespace fpgaserve::services
