// InfluxDB line protocol: escaping, formatting, a strict validating parser and a body splitter
// (https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/). Accept and
// reject decisions follow influxdata/line-protocol v2's decoder; where InfluxDB's own server
// parser (models/points.go, what reads what we forward) would read a line differently, the line is
// rejected. tests/unit/common/line_protocol_conformance_test.cc holds the rules as a table.
// Pure functions, no state: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/field_types.h"
#include "common/status.h"

namespace edgeline {


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

// Escaping per element kind: a backslash goes before each special byte and nowhere else. A
// backslash that precedes a special byte in the text always escapes it (so "a\\ b" reads as the
// three bytes a, backslash, space); any other backslash is literal. A name ending in a backslash
// therefore cannot be written (see UnrepresentableReason).
void AppendEscapedMeasurement(std::string* out, std::string_view s);  // comma, space
void AppendEscapedKey(std::string* out, std::string_view s);  // comma, equals, space (tag keys/values, field keys)
void AppendEscapedStringField(std::string* out, std::string_view s);  // wraps in quotes, escapes " and backslash

// Serializes a point; tags are sorted by key (InfluxDB's canonical series key order), fields
// keep their order. Floats use the shortest representation that round-trips exactly.
// REQUIRES: at least one field; all float fields finite.
std::string FormatPoint(const Point& point);

// Parses one line as SplitBodyLines returns it (leading spaces and one final '\r' are allowed; a
// string field may hold line breaks). Rejects: empty measurement, tag or field key, empty tag
// value, no fields, duplicate tag keys, control characters (0x00-0x1F, 0x7F) outside string
// fields, a field key with a backslash run before an escaped separator that InfluxDB reads
// differently, unterminated strings, invalid numbers, NaN/Inf, integers out of range, trailing
// garbage, invalid UTF-8, comment and blank lines. The message says what and where (byte offset)
// and never echoes input bytes.
Result<Point> ParseLine(std::string_view line);

// One line of a request body, as InfluxDB splits it.
struct LpLine {
  std::string_view text;  // without its '\n' or "\r\n"; may hold line breaks inside a string field
  size_t offset = 0;      // byte offset of `text` in the body
  size_t number = 1;      // 1-based number of the physical line `text` starts on
};

// Splits a write body into the lines to parse, as InfluxDB does: a '\n' ends a line unless it is
// inside a quoted string field value; one '\r' before it (or at the end of the body) is dropped;
// blank lines (spaces only) and comment lines ('#' after optional spaces, no control characters)
// are skipped. A comment with a control character is returned, and ParseLine rejects it. Every
// returned line goes to ParseLine; a body is valid when every line parses. Views point into `body`.
std::vector<LpLine> SplitBodyLines(std::string_view body);

// The series key: escaped measurement plus sorted escaped tags, e.g. "genData,generatorID=g1".
std::string SeriesKey(const Point& point);

// Why `s` cannot be written exactly as the given kind of element, or an empty view when it can.
// Names (measurement, keys, tag values): no control characters (line protocol has no escape for
// them), no final backslash (it would escape the separator after it), valid UTF-8, and a
// measurement must not start with '#' (the line would be a comment). Field keys
// also must not hold an odd run of backslashes before ',', '=' or ' ': InfluxDB's field scanner
// pairs backslashes there and would split the key elsewhere. kKey is the strictest rule (any of
// tag key, tag value, field key). String fields: valid UTF-8 and, although a quoted line break is
// valid line protocol, no '\r' or '\n', so that every mapped line stays one physical line.
// Emptiness is not checked here. Formatters' callers check this; every name ParseLine accepts
// passes its own kind's rule.
enum class LpElement {
  kMeasurement,
  kKey,  // tag key, tag value or field key: the strictest of kTag and kFieldKey
  kStringField,
  kTag,       // tag key or tag value
  kFieldKey,
};
std::string_view UnrepresentableReason(LpElement kind, std::string_view s);

}  // namespace edgeline
