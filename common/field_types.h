// Line-protocol field types and their names, as InfluxDB spells them in its schema and error
// messages ("float", "integer", "unsigned", "string", "boolean"). Pure functions: thread-safe.
#pragma once

#include <optional>
#include <string_view>


namespace edgeline {

enum class FieldType { kFloat, kInteger, kUnsigned, kString, kBool };

std::string_view Name(FieldType type);

// InfluxDB's names, case-insensitive, plus the aliases users and other InfluxDB versions write:
// "bool", "int", "uint", "uinteger", "double", Arrow-style "Float64", "Int64", "UInt64", "Utf8",
// and IOx's "f64", "i64", "u64". nullopt for anything else.
std::optional<FieldType> FieldTypeFromName(std::string_view name);

}  // namespace edgeline
