// Firmware bundles fetched from an object store into a local cache: the board server's and the
// predictor's way to get firmware they did not build (docs/board-server.md). A bundle in a
// store is a prefix holding metadata.json and every file it lists; the cache directory of a
// bundle is named after the sha256 of its metadata.json, which records every file's sha256,
// so one name means one exact firmware.
#pragma once

#include <string>

#include "core/status.h"
#include "firmware/bundle.h"
#include "store/object_store.h"

namespace fpgaserve::services {

struct FetchedBundle {
  std::string dir;       // <cache>/<firmware_id>
  std::string firmware_id;  // sha256 of metadata.json
  firmware::BundleMetadata metadata;
  bool cached = false;   // already in the cache: nothing was downloaded
};

// Downloads the bundle at `prefix` ("" or "<build_id>/") of `store` into `cache_dir`, checking
// every file against the sha256 in metadata.json (and every transfer against the store's digest).
// Files land in a temporary directory renamed into place, so the cache never holds a partial
// bundle; concurrent fetches of one bundle are safe. `origin` names the bundle in errors.
Result<FetchedBundle> FetchBundle(store::ObjectStore& store, const std::string& prefix,
                                  const std::string& cache_dir, const std::string& origin);

// The same for a bundle directory URI: file:///abs/dir, s3://bucket/prefix, http(s)://host/path.
Result<FetchedBundle> FetchBundleUri(const std::string& uri, const std::string& cache_dir);

}  // namespace fpgaserve::services
