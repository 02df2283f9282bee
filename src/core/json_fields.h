// Typed, validated access to fields of parsed JSON documents (nlohmann::json) without exceptions.
// Each getter names the JSON path that failed and the type that was expected.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace fpgaserve::json_fields {

using Json = nlohmann::json;

// Parses text; a syntax error names `origin` and the byte offset.
Result<Json> Parse(std::string_view text, const std::string& origin);

// "where.key" / "where[3]": builds the path strings used in messages.
std::string Child(const std::string& where, std::string_view key);
std::string Child(const std::string& where, std::size_t index);

// A human name of the JSON value's type: "a string", "an array", ...
std::string TypeName(const Json& v);

// The member `key` of object `obj`; NOT_FOUND-style INVALID_ARGUMENT when missing.
Result<const Json*> Member(const Json& obj, std::string_view key, const std::string& where);
// The member or nullptr when absent (still fails when obj is not an object).
Result<const Json*> OptionalMember(const Json& obj, std::string_view key, const std::string& where);

Result<double> Number(const Json& v, const std::string& where);  // finite numbers only
Result<std::int64_t> Integer(const Json& v, const std::string& where);
Result<std::string> String(const Json& v, const std::string& where);
Result<bool> Bool(const Json& v, const std::string& where);
Result<const Json::array_t*> Array(const Json& v, const std::string& where);
Result<std::vector<double>> NumberArray(const Json& v, const std::string& where);
Result<std::vector<std::int64_t>> IntegerArray(const Json& v, const std::string& where);
Result<std::vector<std::string>> StringArray(const Json& v, const std::string& where);

}  // namespace fpgaserve::json_fields
