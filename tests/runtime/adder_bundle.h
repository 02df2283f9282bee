// A firmware bundle assembled by hand around the adder test core, for driver tests that must not
// depend on the hardware generator: Dense(W = 1, b_j = j * 2^-10) under fixed<16,6> computes
// exactly what the adder core computes (sum of the raw inputs + j, wrapped to 16 bits).
#pragma once

#include <filesystem>
#include <string>

#include "core/file_io.h"
#include "core/sha256.h"
#include "firmware/bundle.h"
#include "importers/import.h"
#include "model/passes.h"
#include "numeric/precision.h"
#include "toolchain/adder_core.h"
#include "toolchain/verilator_build.h"

namespace fpgaserve::runtime::testing {

inline model::Graph AdderGraph(int n_in, int n_out) {
  model::Graph g;
  g.name = "adder";
  g.inputs.push_back({"x", {n_in}});
  model::DenseParams d;
  d.in_features = n_in;
  d.out_features = n_out;
  d.weights.assign(static_cast<std::size_t>(n_in * n_out), 1.0);
  for (int j = 0; j < n_out; ++j) d.bias.push_back(j / 1024.0);
  g.layers.push_back(model::MakeDense("fc", "x", "y", d));
  g.outputs.push_back({"y", {}});
  return g;
}

// Writes the adder model and its resolved precision (model.json, precision.json) into `dir`.
inline Status WriteAdderModel(const std::string& dir, int n_in, int n_out) {
  model::Graph g = AdderGraph(n_in, n_out);
  RETURN_IF_ERROR(model::Finalize(g));
  ASSIGN_OR_RETURN(numeric::PrecisionConfig p,
                   numeric::ResolvePrecision(g, {"fixed<16,6>", ""}, nullptr));
  std::filesystem::create_directories(dir);
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + firmware::kModelFile, importers::ExportNative(g)));
  return WriteFileAtomic(dir + "/" + firmware::kPrecisionFile, firmware::PrecisionConfigJson(p));
}

// The adder bundle's metadata for `board` (id from `id_text`); bitstream and files are the caller's.
inline firmware::BundleMetadata AdderMetadata(const std::string& id_text, const std::string& board, int n_in,
                                              int n_out) {
  firmware::BundleMetadata m;
  m.id = Sha256Hex(id_text);
  m.board = board;
  m.precision = "fixed<16,6>";
  m.reuse = 1;
  m.interface = "stream";
  m.latency_cycles = 2;
  m.initiation_interval = 1;
  m.inputs = {{"x", {-1, n_in}, "FP32", "fixed<16,6>"}};
  m.outputs = {{"y", {-1, n_out}, "FP32", "fixed<16,6>"}};
  m.layers = {{"fc", "Dense", 1, 2, 1, 0}};
  m.n_inputs = n_in;
  m.n_outputs = n_out;
  m.flavor = "stream";
  m.generator_version = "test";
  m.input_format = numeric::FixedFormat{};
  m.output_format = numeric::FixedFormat{};
  return m;
}

// Writes the bundle (with the adder core's sim library) into `dir` and returns its metadata.
inline Result<firmware::BundleMetadata> WriteAdderBundle(const std::string& dir, int n_in,
                                                         int n_out) {
  RETURN_IF_ERROR(WriteAdderModel(dir, n_in, n_out));
  toolchain::SimCoreSpec spec = toolchain::testing::AdderCore(n_in, 16, n_out, 16, true);
  ASSIGN_OR_RETURN(auto built, toolchain::BuildSimLibrary(spec, dir));
  (void)built;
  firmware::BundleMetadata m =
      AdderMetadata("adder bundle " + std::to_string(n_in) + "x" + std::to_string(n_out), "sim", n_in, n_out);
  m.bitstream = {"built", firmware::kSimLibraryFile, "verilator"};
  m.clock_mhz = 100;
  ASSIGN_OR_RETURN(m.files, firmware::ListBundleFiles(dir));
  RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/" + firmware::kMetadataFile, firmware::MetadataToJson(m)));
  return m;
}

}  // namespace fpgaserve::runtime::testing
