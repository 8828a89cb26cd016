#include "common/field_types.h"

#include "common/strings.h"

namespace edgeline {

std::string_view Name(FieldType type) {
  switch (type) {
    case FieldType::kFloat: return "float";
    case FieldType::kInteger: return "integer";
    case FieldType::kUnsigned: return "unsigned";
    case FieldType::kString: return "string";
    case FieldType::kBool: return "boolean";
  }
  return "unknown";
}

std::optional<FieldType> FieldTypeFromName(std::string_view name) {
  struct Alias {
    std::string_view name;
    FieldType type;
  };
  static constexpr Alias kAliases[] = {
      {"float", FieldType::kFloat},      {"double", FieldType::kFloat},      {"float64", FieldType::kFloat},
      {"integer", FieldType::kInteger},  {"int", FieldType::kInteger},       {"int64", FieldType::kInteger},
      {"unsigned", FieldType::kUnsigned}, {"uint", FieldType::kUnsigned},    {"uint64", FieldType::kUnsigned},
      {"uinteger", FieldType::kUnsigned}, {"u64", FieldType::kUnsigned},     {"f64", FieldType::kFloat},
      {"i64", FieldType::kInteger},
      {"string", FieldType::kString},    {"utf8", FieldType::kString},       {"boolean", FieldType::kBool},
      {"bool", FieldType::kBool},
  };
  for (const Alias& a : kAliases) {
    if (EqualsIgnoreCase(name, a.name)) return a.type;
  }
  return std::nullopt;
}

}  // namespace edgeline
