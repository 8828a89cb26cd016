// InfluxDB line protocol: escaping, formatting and a strict validating parser
// (https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/).
// Pure functions, no state: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace edgeline {

enum class FieldType { kFloat, kInteger, kUnsigned, kString, kBool };

struct FieldValue {
  FieldType type = FieldType::kFloat;
  double f = 0;    // kFloat
  int64_t i = 0;   // kInteger
  uint64_t u = 0;  // kUnsigned
  std::string s;   // kString (unescaped)
  bool b = false;  // kBool
};

struct Point {
  std::string measurement;                                 // unescaped
  std::vector<std::pair<std::string, std::string>> tags;   // unescaped, in line order
  std::vector<std::pair<std::string, FieldValue>> fields;  // unescaped, in line order
  std::optional<int64_t> timestamp_ns;
};

// Escaping per element kind.
void AppendEscapedMeasurement(std::string* out, std::string_view s);  // comma, space
void AppendEscapedKey(std::string* out, std::string_view s);  // comma, equals, space (tag keys/values, field keys)
void AppendEscapedStringField(std::string* out, std::string_view s);  // wraps in quotes, escapes " and backslash

// Serializes a point; tags are sorted by key (InfluxDB's canonical series key order), fields
// keep their order. Floats use the shortest representation that round-trips exactly.
// REQUIRES: at least one field; all float fields finite.
std::string FormatPoint(const Point& point);

// Parses one line (no trailing newline). Rejects: empty measurement, no fields, bad escapes,
// unterminated strings, invalid numbers, NaN/Inf, integers out of range, trailing garbage,
// invalid UTF-8. The message says what and where (byte offset).
Result<Point> ParseLine(std::string_view line);

// The series key: escaped measurement plus sorted escaped tags, e.g. "genData,generatorID=g1".
std::string SeriesKey(const Point& point);

// Why `s` cannot be written exactly as the given kind of element, or an empty view when it can.
// Line protocol has no escape for line breaks, InfluxDB reads a backslash before a separator
// (or at the end) as an escape, and a line must be valid UTF-8. Emptiness is not checked here. Formatters' callers
// check this.
enum class LpElement { kMeasurement, kKey /* tag key, tag value, field key */, kStringField };
std::string_view UnrepresentableReason(LpElement kind, std::string_view s);

}  // namespace edgeline
