// Model file formats fpgaserve reads, and detection of a file's format from its content.
// Detection looks at bytes, not extensions, so a misnamed file is still read (or rejected) correctly.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fpgaserve::importers {

enum class ModelFormat { kOnnx, kKeras, kNeuralbond, kNative };

const char* ModelFormatName(ModelFormat f);  // "onnx", "keras", "neuralbond", "native"
// Parses "onnx|keras|neuralbond|native"; the error lists the accepted names.
Result<ModelFormat> ParseModelFormat(std::string_view name);

// Detects the format of the file at `path` from its content: HDF5 signature -> keras;
// JSON with Nodes/Weights -> neuralbond, with "format":"fpgaserve-model" -> native, with
// class_name/config (a Keras model.to_json()) -> keras; a protobuf ModelProto -> onnx.
// Fails naming the file and what was seen when it is none of those.
Result<ModelFormat> DetectModelFormat(const std::string& path);

}  // namespace fpgaserve::importers
