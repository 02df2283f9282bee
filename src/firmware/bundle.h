// The firmware bundle: a directory (metadata.json, model.json, precision.json, rtl/, tb/, sim/)
// that `fpgaserve compile` writes and every board driver loads; metadata schema and validation.
#pragma once

#include <cstdint>
#include <map>
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
  // What the file is for, derived from its path (RoleOf): bitstream, sim-library, rtl,
  // testbench, model, precision, report, log, script, hwh, other.
  std::string role;
};

inline constexpr int kSchemaVersion = 2;

// Resources in the board family's units (boards/README: LUT4 on iCE40, LUT6 on AMD); -1 unknown.
struct ResourceFigures {
  std::int64_t lut = -1;
  std::int64_t ff = -1;
  std::int64_t dsp = -1;
  std::int64_t bram = -1;
  std::string lut_kind;  // "LUT4" | "LUT6"
  std::string source;    // "estimate", "yosys synth_ice40", "nextpnr-ice40", "vivado", ...
};

struct BitstreamInfo {
  std::string status = "built";  // "built" | "needs-vendor-tools"
  std::string path;              // relative to the bundle; set when built
  std::string command;           // how it was (or is to be) built
};

struct StageTime {
  std::string stage;
  double seconds = 0;
};

struct BundleMetadata {
  int schema_version = kSchemaVersion;
  std::string generator_version;  // fpgaserve's version that wrote the bundle
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
  ResourceFigures resources;
  double clock_mhz = 0;  // the clock the firmware was built for
  double fmax_mhz = 0;   // from static timing; 0 when not timed (sim, estimate only)
  BitstreamInfo bitstream;
  std::map<std::string, std::string> toolchain;  // tool -> version
  std::vector<StageTime> stages;                 // build stages and their wall-clock seconds
  // Derived from the fields above (the seed prototype's keys): n_inputs and n_outputs count
  // elements, flavor names the interface as the board server knows it.
  std::int64_t n_inputs = 0;
  std::int64_t n_outputs = 0;
  std::string flavor;

  // The format of the (single) input / output tensor. Valid after ParseBundleMetadata.
  numeric::NumberFormat input_format;
  numeric::NumberFormat output_format;
};

// The role of a bundle file from its path (see BundleFile::role).
std::string RoleOf(const std::string& path, const std::string& bitstream_path);

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
