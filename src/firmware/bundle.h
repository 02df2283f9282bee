// The firmware bundle: a directory (metadata.json, model.json, precision.json, rtl/, tb/, sim/)
// that `fpgaserve compile` writes and every board driver loads; metadata schema and validation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "hw/design.h"
#include "numeric/fixed_format.h"
#include "numeric/precision.h"

namespace fpgaserve::firmware {

inline constexpr const char* kMetadataFile = "metadata.json";
inline constexpr const char* kModelFile = "model.json";
inline constexpr const char* kPrecisionFile = "precision.json";
inline constexpr const char* kSimLibraryFile = "sim/libfpgaserve_sim.so";

struct TensorMetadata {
  std::string name;
  std::vector<std::int64_t> shape;  // KServe style: -1 (the batch) first
  std::string datatype;             // "FP32"
  std::string format;               // every element's number format: "fixed<16,6>"
};

struct BundleFile {
  std::string path;  // relative to the bundle directory, '/'-separated
  std::string sha256;
};

struct BundleMetadata {
  std::string id;  // content address: sha256 over model, precision, RTL, reuse and interface
  std::string board;
  std::string precision;  // the spec the user asked for
  int reuse = 1;
  std::string interface;  // stream | axis | axilite
  int latency_cycles = 0;
  int initiation_interval = 1;
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
  std::vector<hw::LayerSchedule> layers;
  std::vector<BundleFile> files;
  // Derived from the fields above (the seed prototype's keys): n_inputs and n_outputs count
  // elements, flavor names the interface as the board server knows it.
  std::int64_t n_inputs = 0;
  std::int64_t n_outputs = 0;
  std::string flavor;

  // The fixed format of the (single) input / output tensor. Valid after ParseBundleMetadata.
  numeric::FixedFormat input_format;
  numeric::FixedFormat output_format;
};

// "axist" for axis, "aximm" for axilite, "stream" otherwise.
std::string FlavorOf(const std::string& interface);

std::string MetadataToJson(const BundleMetadata& m);

// Validates every field (names the JSON path, the value and what was expected); `origin` names
// the file in messages.
Result<BundleMetadata> ParseBundleMetadata(std::string_view text, const std::string& origin);

// Reads <dir>/metadata.json. A missing file is NOT_FOUND naming the directory as not a bundle.
Result<BundleMetadata> ReadBundleMetadata(const std::string& dir);

// Checks that <dir>/<path> exists and matches the sha256 recorded in the metadata (drivers call
// it before loading a file, so a damaged or tampered bundle never reaches a board).
Status VerifyBundleFile(const std::string& dir, const BundleMetadata& m, const std::string& path);

// Every regular file under `dir` except metadata.json and hidden top-level files (the compile
// marker), sorted by path, with its sha256.
Result<std::vector<BundleFile>> ListBundleFiles(const std::string& dir);

// precision.json: the resolved configuration in the --precision-config file format with every
// variable of every layer spelled out, so ResolvePrecision reads back exactly this configuration.
std::string PrecisionConfigJson(const numeric::PrecisionConfig& precision);

}  // namespace fpgaserve::firmware
