#include "core/json_fields.h"

#include <cmath>

#include "core/text.h"

namespace fpgaserve::json_fields {

Result<Json> Parse(std::string_view text, const std::string& origin) {
  Json doc;
  try {
    doc = Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return InvalidArgument(origin + ": not valid JSON (byte " + std::to_string(e.byte) +
                           "): " + e.what());
  } catch (const std::exception& e) {
    return InvalidArgument(origin + ": not valid JSON: " + e.what());
  }
  return doc;
}

std::string Child(const std::string& where, std::string_view key) {
  return where + "." + std::string(key);
}

std::string Child(const std::string& where, std::size_t index) {
  return where + "[" + std::to_string(index) + "]";
}

std::string TypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

Result<const Json*> OptionalMember(const Json& obj, std::string_view key, const std::string& where) {
  if (!obj.is_object()) {
    return InvalidArgument(where + ": expected an object, found " + TypeName(obj));
  }
  auto it = obj.find(key);
  if (it == obj.end()) return static_cast<const Json*>(nullptr);
  return &*it;
}

Result<const Json*> Member(const Json& obj, std::string_view key, const std::string& where) {
  ASSIGN_OR_RETURN(const Json* m, OptionalMember(obj, key, where));
  if (m == nullptr) {
    return InvalidArgument(where + ": missing required field '" + std::string(key) + "'");
  }
  return m;
}

Result<double> Number(const Json& v, const std::string& where) {
  if (!v.is_number()) return InvalidArgument(where + ": expected a number, found " + TypeName(v));
  double d = v.get<double>();
  if (!std::isfinite(d)) return InvalidArgument(where + ": " + FormatDouble(d) + " is not finite");
  return d;
}

Result<std::int64_t> Integer(const Json& v, const std::string& where) {
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) return InvalidArgument(where + ": integer too large");
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
      return static_cast<std::int64_t>(d);
    }
  }
  return InvalidArgument(where + ": expected an integer, found " +
                         (v.is_number() ? "the number " + v.dump() : TypeName(v)));
}

Result<std::string> String(const Json& v, const std::string& where) {
  if (!v.is_string()) return InvalidArgument(where + ": expected a string, found " + TypeName(v));
  return v.get<std::string>();
}

Result<bool> Bool(const Json& v, const std::string& where) {
  if (!v.is_boolean()) return InvalidArgument(where + ": expected true or false, found " + TypeName(v));
  return v.get<bool>();
}

Result<const Json::array_t*> Array(const Json& v, const std::string& where) {
  if (!v.is_array()) return InvalidArgument(where + ": expected an array, found " + TypeName(v));
  return v.get_ptr<const Json::array_t*>();
}

Result<std::vector<double>> NumberArray(const Json& v, const std::string& where) {
  ASSIGN_OR_RETURN(const Json::array_t* arr, Array(v, where));
  std::vector<double> out;
  out.reserve(arr->size());
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const Json& e = (*arr)[i];
    // Non-finite values are reported by the verifier with the layer name; here only types matter.
    if (!e.is_number()) {
      return InvalidArgument(Child(where, i) + ": expected a number, found " + TypeName(e));
    }
    out.push_back(e.get<double>());
  }
  return out;
}

Result<std::vector<std::int64_t>> IntegerArray(const Json& v, const std::string& where) {
  ASSIGN_OR_RETURN(const Json::array_t* arr, Array(v, where));
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    ASSIGN_OR_RETURN(auto x, Integer((*arr)[i], Child(where, i)));
    out.push_back(x);
  }
  return out;
}

Result<std::vector<std::string>> StringArray(const Json& v, const std::string& where) {
  ASSIGN_OR_RETURN(const Json::array_t* arr, Array(v, where));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    ASSIGN_OR_RETURN(auto s, String((*arr)[i], Child(where, i)));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace fpgaserve::json_fields
