#include "importers/format.h"

#include <cstring>

#include "core/file_io.h"
#include "core/json_fields.h"
#include "core/text.h"

namespace fpgaserve::importers {

const char* ModelFormatName(ModelFormat f) {
  switch (f) {
    case ModelFormat::kOnnx: return "onnx";
    case ModelFormat::kKeras: return "keras";
    case ModelFormat::kNeuralbond: return "neuralbond";
    case ModelFormat::kNative: return "native";
  }
  return "?";
}

Result<ModelFormat> ParseModelFormat(std::string_view name) {
  for (auto f : {ModelFormat::kOnnx, ModelFormat::kKeras, ModelFormat::kNeuralbond,
                 ModelFormat::kNative}) {
    if (name == ModelFormatName(f)) return f;
  }
  return InvalidArgument("unknown model format " + Quote(name) +
                         "; expected one of onnx, keras, neuralbond, native");
}

namespace {

constexpr char kHdf5Signature[] = "\x89HDF\r\n\x1a\n";

bool HasHdf5Signature(const std::string& prefix) {
  // HDF5 allows a user block: the superblock may start at 0, 512, 1024, 2048, ...
  for (std::size_t off = 0; off + 8 <= prefix.size(); off = off ? off * 2 : 512) {
    if (std::memcmp(prefix.data() + off, kHdf5Signature, 8) == 0) return true;
  }
  return false;
}

// Protobuf wire format of an ONNX ModelProto starts with a field key; the common first fields are
// ir_version (1, varint: 0x08), opset_import (8: 0x42), producer_name (2: 0x12), graph (7: 0x3a).
bool LooksLikeOnnx(const std::string& prefix) {
  if (prefix.empty()) return false;
  const auto b = static_cast<unsigned char>(prefix[0]);
  return b == 0x08 || b == 0x12 || b == 0x1a || b == 0x22 || b == 0x2a || b == 0x32 ||
         b == 0x3a || b == 0x42 || b == 0x52 || b == 0x72;
}

}  // namespace

Result<ModelFormat> DetectModelFormat(const std::string& path) {
  ASSIGN_OR_RETURN(std::string prefix, ReadFilePrefix(path, 4096));
  if (prefix.empty()) return InvalidArgument(path + ": empty file; expected a model file");
  if (HasHdf5Signature(prefix)) return ModelFormat::kKeras;
  std::string_view trimmed = Trim(prefix);
  if (!trimmed.empty() && trimmed.front() == '{') {
    // Only the document's keys decide; the whole file is parsed (and validated) by the importer.
    ASSIGN_OR_RETURN(std::string text, ReadFile(path));
    auto doc = json_fields::Parse(text, path);
    if (!doc.ok()) return doc.status();
    const auto& j = *doc;
    if (j.is_object()) {
      if (j.contains("Nodes") || j.contains("Weights")) return ModelFormat::kNeuralbond;
      if (j.contains("format") && j["format"] == "fpgaserve-model") return ModelFormat::kNative;
      if (j.contains("class_name") && j.contains("config")) return ModelFormat::kKeras;
    }
    return InvalidArgument(path +
                           ": JSON document is not a model this tool reads; expected a neuralbond "
                           "file (Nodes/Weights), a native model (\"format\":\"fpgaserve-model\") or "
                           "a Keras model.to_json() (class_name/config)");
  }
  if (LooksLikeOnnx(prefix)) return ModelFormat::kOnnx;
  return InvalidArgument(path +
                         ": unrecognized file content; expected an ONNX model, a Keras .h5 or "
                         ".json, a neuralbond .json or a native .json (use --format to force one)");
}

}  // namespace fpgaserve::importers
