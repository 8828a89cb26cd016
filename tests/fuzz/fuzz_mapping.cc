// libFuzzer target for ingest/mapping: one MQTT message -> line protocol, checking what the rest
// of the agent relies on, not just "no crash":
//  - every produced line re-parses with the strict LP parser (so: non-empty measurement and
//    fields, no NaN/Inf, valid escapes, valid UTF-8) and is in canonical form (format(parse(l))
//    == l), carries a timestamp, and min/max_ts_ns match the lines;
//  - a message yields lines or at least one error (nothing is silently lost); a JSON message is
//    all or nothing (at most one line, none when there is an error);
//  - errors and warnings are few, short, one line, printable ASCII (they go to logs and the DLQ);
//  - mapping is deterministic (a replay writes identical points);
//  - top-level JSON members arrive unchanged (tags, strings, bools, floats, integers) or were
//    dropped with a warning.
// Input layout: byte 0 selects the MappingConfig variant, then the topic up to the first '\n',
// then the payload.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/line_protocol.h"
#include "ingest/mapping.h"
#include "tests/fuzz/fuzz_check.h"

namespace edgeline {
namespace {

using fuzz::Show;

constexpr int64_t kReceiveNs = 1764000000000000000;

MappingConfig ConfigFor(uint8_t flags) {
  MappingConfig c;
  if (flags & 0x01) c.json_integers = {"load", "power", "n", "a_b"};
  if (flags & 0x02) c.json_tags = {"generatorID", "site", "a_b", "t"};
  switch ((flags >> 2) & 0x03) {
    case 1: c.topic_tags = "emergency_generator/{generatorID}"; break;
    case 2: c.topic_tags = "+/{site}/{generatorID}"; break;
    case 3: c.topic_tags = "{a}/{b}/+/{c}"; break;
    default: break;
  }
  static constexpr const char* kFormats[] = {"", "s", "ms", "us", "ns", "rfc3339", "ns", ""};
  const char* format = kFormats[(flags >> 4) & 0x07];
  if (*format != '\0') {
    c.time_key = "ts";
    c.time_format = format;
  }
  if (flags & 0x80) c.max_string_field_bytes = 16;
  return c;
}

void CheckReasons(const std::vector<std::string>& reasons, std::string_view what, std::string_view payload) {
  // 20 kept plus one "... and N more" summary (see kMaxReasons in mapping.cc).
  FUZZ_CHECK(reasons.size() <= 21,
             std::string(what) + ": " + std::to_string(reasons.size()) + " entries for " + Show(payload, 100));
  for (const auto& r : reasons) {
    FUZZ_CHECK(!r.empty() && r.size() <= 400, std::string(what) + " empty or too long: " + Show(r));
    for (char c : r) {
      FUZZ_CHECK(c >= 0x20 && c < 0x7F, std::string(what) + " not one printable ASCII line: " + Show(r));
    }
  }
}

const FieldValue* FindField(const Point& p, const std::string& key) {
  for (const auto& [k, v] : p.fields) {
    if (k == key) return &v;
  }
  return nullptr;
}

// Semantic oracle on top-level members (no '_', so flattening cannot collide with them): what
// the line says is what the JSON said, or the member was dropped with a warning.
void CheckAgainstJson(const MappingConfig& config, std::string_view payload, const Point& p, const MappedMessage& m) {
  nlohmann::json doc = nlohmann::json::parse(payload, nullptr, false);
  if (!doc.is_object()) return;
  for (const auto& [key, value] : doc.items()) {
    if (key.find('_') != std::string::npos || key == config.time_key || value.is_null() || value.is_structured()) {
      continue;
    }
    const bool is_tag = std::find(config.json_tags.begin(), config.json_tags.end(), key) != config.json_tags.end();
    if (is_tag) {
      if (!value.is_string() || value.get<std::string>().empty()) continue;
      std::optional<std::string> tag;
      for (const auto& [k, v] : p.tags) {
        if (k == key) tag = v;
      }
      // A dropped JSON tag leaves the topic template's value, if any, in place.
      FUZZ_CHECK((tag && *tag == value.get<std::string>()) || !m.warnings.empty(),
                 "tag " + Show(key) + " lost or changed: " + Show(payload));
      continue;
    }
    const FieldValue* f = FindField(p, key);
    if (f == nullptr) {
      FUZZ_CHECK(!m.warnings.empty(), "field " + Show(key) + " dropped without a warning: " + Show(payload));
      continue;
    }
    if (value.is_boolean()) {
      FUZZ_CHECK(f->type == FieldType::kBool && f->b == value.get<bool>(), "bool changed: " + Show(key));
    } else if (value.is_string()) {
      FUZZ_CHECK(f->type == FieldType::kString && f->s == value.get<std::string>(),
                 "string changed: " + Show(key) + " in " + Show(payload));
    } else if (std::find(config.json_integers.begin(), config.json_integers.end(), key) != config.json_integers.end()) {
      FUZZ_CHECK(f->type == FieldType::kInteger, "integer key not an integer: " + Show(key));
      if (value.is_number_integer()) {
        FUZZ_CHECK(f->i == value.get<int64_t>(), "integer changed: " + Show(key) + " in " + Show(payload));
      }
    } else {
      FUZZ_CHECK(f->type == FieldType::kFloat && f->f == value.get<double>(),
                 "float changed: " + Show(key) + " in " + Show(payload));
    }
  }
}

bool Same(const MappedMessage& a, const MappedMessage& b) {
  return a.lines == b.lines && a.warnings == b.warnings && a.errors == b.errors && a.min_ts_ns == b.min_ts_ns &&
         a.max_ts_ns == b.max_ts_ns;
}

}  // namespace
}  // namespace edgeline

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgeline;
  if (size == 0) return 0;
  const MappingConfig config = ConfigFor(data[0]);
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t nl = rest.find('\n');
  std::string_view topic = nl == std::string_view::npos ? std::string_view() : rest.substr(0, nl);
  std::string_view payload = nl == std::string_view::npos ? rest : rest.substr(nl + 1);

  const Mapper mapper(config);
  const MappedMessage m = mapper.Map(topic, payload, kReceiveNs);

  const size_t first = payload.find_first_not_of(" \t\r\n");
  const bool is_json = first != std::string_view::npos && (payload[first] == '{' || payload[first] == '[');

  FUZZ_CHECK(!m.lines.empty() || !m.errors.empty(), "no lines and no error for " + Show(payload));
  if (is_json) {
    FUZZ_CHECK(m.lines.size() <= 1, "JSON gave several lines: " + Show(payload));
    FUZZ_CHECK(m.errors.empty() || m.lines.empty(), "JSON gave a line and an error: " + Show(payload));
  }
  CheckReasons(m.errors, "errors", payload);
  CheckReasons(m.warnings, "warnings", payload);

  int64_t min_ts = 0, max_ts = 0;
  for (size_t i = 0; i < m.lines.size(); ++i) {
    const std::string& line = m.lines[i];
    Result<Point> p = ParseLine(line);
    FUZZ_CHECK(p.ok(), "produced line does not parse: " + Show(line) + " (" +
                           (p.ok() ? std::string() : p.status().message()) + ") from " + Show(payload));
    FUZZ_CHECK(!p->measurement.empty() && !p->fields.empty(), "empty measurement or fields: " + Show(line));
    FUZZ_CHECK(p->timestamp_ns.has_value(), "line without timestamp: " + Show(line));
    FUZZ_CHECK(FormatPoint(*p) == line, "line is not canonical: " + Show(line));
    if (is_json) {
      FUZZ_CHECK(p->measurement == config.measurement, "JSON line with another measurement: " + Show(line));
      FUZZ_CHECK(config.time_key.empty() ? *p->timestamp_ns == kReceiveNs : true,
                 "receive time not used: " + Show(line));
    }
    if (is_json) CheckAgainstJson(config, payload, *p, m);
    const int64_t ts = *p->timestamp_ns;
    min_ts = i == 0 ? ts : std::min(min_ts, ts);
    max_ts = i == 0 ? ts : std::max(max_ts, ts);
  }
  FUZZ_CHECK(m.min_ts_ns == min_ts && m.max_ts_ns == max_ts, "min/max_ts_ns do not match the lines");

  FUZZ_CHECK(Same(m, mapper.Map(topic, payload, kReceiveNs)), "mapping is not deterministic: " + Show(payload));
  return 0;
}
