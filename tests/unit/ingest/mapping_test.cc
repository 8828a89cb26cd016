#include "ingest/mapping.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/line_protocol.h"

namespace edgeline {
namespace {

using nlohmann::json;

std::vector<json> ReadJsonl(const std::string& name) {
  std::vector<json> rows;
  std::ifstream in(std::string(EDGELINE_FIXTURES_DIR) + "/" + name);
  EXPECT_TRUE(in) << "cannot open " << name;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

std::string Describe(const FieldValue& v) {
  switch (v.type) {
    case FieldType::kFloat: return "float:" + FormatPoint(Point{"m", {}, {{"f", v}}, {}}).substr(4);
    case FieldType::kInteger: return "int:" + std::to_string(v.i);
    case FieldType::kUnsigned: return "uint:" + std::to_string(v.u);
    case FieldType::kString: return "string:" + v.s;
    case FieldType::kBool: return v.b ? "bool:true" : "bool:false";
  }
  return "";
}

// A point as comparable sets: measurement, sorted tags, sorted fields with exact values, time.
struct Canonical {
  std::string measurement;
  std::set<std::pair<std::string, std::string>> tags;
  std::map<std::string, std::string> fields;
  std::optional<int64_t> ts;
  bool operator==(const Canonical&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Canonical& c) {
  os << c.measurement;
  for (const auto& [k, v] : c.tags) os << "," << k << "=" << v;
  for (const auto& [k, v] : c.fields) os << " " << k << "=" << v;
  if (c.ts) os << " @" << *c.ts;
  return os;
}

Canonical ToCanonical(std::string_view line) {
  Result<Point> p = ParseLine(line);
  EXPECT_TRUE(p.ok()) << line << ": " << p.status().ToString();
  Canonical c;
  if (!p.ok()) return c;
  c.measurement = p->measurement;
  c.tags.insert(p->tags.begin(), p->tags.end());
  for (const auto& [k, v] : p->fields) c.fields[k] = Describe(v);
  c.ts = p->timestamp_ns;
  return c;
}

Point ParsedOnlyLine(const MappedMessage& m) {
  EXPECT_EQ(m.lines.size(), 1u);
  if (m.lines.size() != 1) return Point{};
  Result<Point> p = ParseLine(m.lines[0]);
  EXPECT_TRUE(p.ok()) << m.lines[0];
  return p.ok() ? *p : Point{};
}

const FieldValue* FindField(const Point& p, std::string_view key) {
  for (const auto& [k, v] : p.fields) {
    if (k == key) return &v;
  }
  return nullptr;
}

const std::string* FindTag(const Point& p, std::string_view key) {
  for (const auto& [k, v] : p.tags) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool AnyContains(const std::vector<std::string>& v, std::string_view needle) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

TEST(MappingTest, GeneratorTraceMatchesRawFixture) {
  std::vector<json> messages = ReadJsonl("generators.jsonl");
  std::ifstream in(EDGELINE_FIXTURES_DIR "/generators_raw.lp");
  std::vector<std::string> expected;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) expected.push_back(line);
  }
  ASSERT_EQ(messages.size(), 399u);
  ASSERT_EQ(expected.size(), messages.size());
  Mapper mapper{MappingConfig{}};
  for (size_t i = 0; i < messages.size(); ++i) {
    const int64_t ts = messages[i]["ts_ns"].get<int64_t>();
    MappedMessage m =
        mapper.Map(messages[i]["topic"].get<std::string>(), messages[i]["payload"].get<std::string>(), ts);
    ASSERT_EQ(m.lines.size(), 1u) << "message " << i;
    EXPECT_TRUE(m.errors.empty()) << "message " << i;
    EXPECT_TRUE(m.warnings.empty()) << "message " << i;
    EXPECT_EQ(m.min_ts_ns, ts);
    EXPECT_EQ(m.max_ts_ns, ts);
    EXPECT_EQ(ToCanonical(m.lines[0]), ToCanonical(expected[i])) << "message " << i << ": " << m.lines[0];
  }
}

TEST(MappingTest, BadInputsEndAsExpected) {
  std::vector<json> rows = ReadJsonl("bad_inputs.jsonl");
  ASSERT_FALSE(rows.empty());
  Mapper mapper{MappingConfig{}};
  for (const json& row : rows) {
    const std::string payload = row["payload"].get<std::string>();
    const std::string expect = row["expect"].get<std::string>();
    const std::string why = row["why"].get<std::string>();
    SCOPED_TRACE(why);
    MappedMessage m = mapper.Map(row["topic"].get<std::string>(), payload, 1764000000000000000);
    if (why.rfind("number out of double range", 0) == 0) {
      // The fixture says accept-partial, but its only field is the one that overflows, and a
      // point without fields cannot be written: the drop is recorded as a warning and the
      // message is dead-lettered. OutOfRangeNumberDropsOnlyThatField covers the partial case.
      EXPECT_EQ(expect, "accept-partial");
      EXPECT_TRUE(m.lines.empty());
      EXPECT_TRUE(AnyContains(m.warnings, "field fuel dropped: number out of range"));
      EXPECT_TRUE(AnyContains(m.errors, "no fields"));
      continue;
    }
    for (const auto& line : m.lines) EXPECT_TRUE(ParseLine(line).ok()) << line;
    if (expect == "accept") {
      EXPECT_FALSE(m.lines.empty());
      EXPECT_TRUE(m.errors.empty()) << m.errors.front();
      EXPECT_TRUE(m.warnings.empty()) << m.warnings.front();
    } else if (expect == "accept-partial") {
      EXPECT_FALSE(m.lines.empty());
      EXPECT_FALSE(m.warnings.empty());
    } else {
      ASSERT_EQ(expect, "dlq");
      EXPECT_TRUE(m.lines.empty()) << m.lines.front();
      ASSERT_FALSE(m.errors.empty());
      for (const auto& e : m.errors) EXPECT_FALSE(e.empty());
    }
  }
}

TEST(MappingTest, BadInputSpecificRows) {
  Mapper mapper{MappingConfig{}};
  {
    Point p = ParsedOnlyLine(mapper.Map("emergency_generator/gen 1", R"({"generatorID": "gen 1,x=y", "fuel": 10})", 1));
    ASSERT_NE(FindTag(p, "generatorID"), nullptr);
    EXPECT_EQ(*FindTag(p, "generatorID"), "gen 1,x=y");
  }
  {
    Point p = ParsedOnlyLine(mapper.Map("t", R"({"generatorID": "generator1", "note": "say \"hi\"\\", "fuel": 1})", 1));
    ASSERT_NE(FindField(p, "note"), nullptr);
    EXPECT_EQ(FindField(p, "note")->s, "say \"hi\"\\");
  }
  {
    MappedMessage m = mapper.Map(
        "t", R"({"generatorID": "generator1", "fuel": 12, "ok": true, "nested": {"a": 1, "b": {"c": 2}}})", 1);
    Point p = ParsedOnlyLine(m);
    ASSERT_NE(FindField(p, "nested_a"), nullptr);
    ASSERT_NE(FindField(p, "nested_b_c"), nullptr);
    EXPECT_EQ(FindField(p, "nested_a")->f, 1.0);
    EXPECT_EQ(FindField(p, "nested_b_c")->f, 2.0);
    ASSERT_NE(FindField(p, "ok"), nullptr);
    EXPECT_EQ(FindField(p, "ok")->type, FieldType::kBool);
    EXPECT_TRUE(FindField(p, "ok")->b);
  }
  {
    Point p = ParsedOnlyLine(mapper.Map("t", R"({"generatorID": "", "fuel": 3})", 1));
    EXPECT_TRUE(p.tags.empty());
    EXPECT_EQ(p.fields.size(), 1u);
  }
  {
    MappedMessage m = mapper.Map("t", std::string(R"({"fuel": ")") + std::string(65536, 'x') + "\"}", 1);
    EXPECT_TRUE(m.lines.empty());
    EXPECT_TRUE(AnyContains(m.errors, "over the limit"));
    // Exactly at the limit is fine.
    m = mapper.Map("t", std::string(R"({"fuel": ")") + std::string(65535, 'x') + "\"}", 1);
    EXPECT_EQ(m.lines.size(), 1u);
  }
  {
    MappedMessage m = mapper.Map("t", "[1,2,3]", 1);
    ASSERT_EQ(m.errors.size(), 1u);
    EXPECT_EQ(m.errors[0], "JSON top level is not an object");
  }
  {
    // Raw Latin-1 bytes, the intent of the fixture's "\u00ff\u00fe" row.
    MappedMessage m = mapper.Map("t", "\xff\xfe", 1);
    EXPECT_TRUE(m.lines.empty());
    EXPECT_TRUE(AnyContains(m.errors, "invalid UTF-8"));
    m = mapper.Map("t", "{\"fuel\": 1, \"s\": \"\xff\"}", 1);
    EXPECT_TRUE(m.lines.empty());
    EXPECT_TRUE(AnyContains(m.errors, "malformed JSON"));
  }
}

TEST(MappingTest, OutOfRangeNumberDropsOnlyThatField) {
  Mapper mapper{MappingConfig{}};
  MappedMessage m = mapper.Map("t", R"({"generatorID": "g1", "fuel": 1e400, "load": 3, "nested": {"x": -1e999}})", 7);
  Point p = ParsedOnlyLine(m);
  EXPECT_EQ(FindField(p, "fuel"), nullptr);
  ASSERT_NE(FindField(p, "load"), nullptr);
  EXPECT_TRUE(m.errors.empty());
  EXPECT_TRUE(AnyContains(m.warnings, "field fuel dropped: number out of range"));
  EXPECT_TRUE(AnyContains(m.warnings, "field nested_x dropped: number out of range"));
  EXPECT_EQ(*p.timestamp_ns, 7);
}

TEST(MappingTest, TopicTemplateCapturesSegments) {
  MappingConfig config;
  config.json_tags = {"generatorID", "site"};
  config.topic_tags = "sites/{site}/+/{generatorID}";
  Mapper mapper(config);
  {
    Point p = ParsedOnlyLine(mapper.Map("sites/nyc/gen/g7", R"({"fuel": 1})", 1));
    ASSERT_NE(FindTag(p, "site"), nullptr);
    EXPECT_EQ(*FindTag(p, "site"), "nyc");
    EXPECT_EQ(*FindTag(p, "generatorID"), "g7");
  }
  {
    // JSON tags override topic tags with the same key.
    Point p = ParsedOnlyLine(mapper.Map("sites/nyc/gen/g7", R"({"generatorID": "g8", "fuel": 1})", 1));
    EXPECT_EQ(*FindTag(p, "generatorID"), "g8");
    EXPECT_EQ(*FindTag(p, "site"), "nyc");
  }
  for (const char* topic : {"sites/nyc/gen", "sites/nyc/gen/g7/extra", "other/nyc/gen/g7"}) {
    MappedMessage m = mapper.Map(topic, R"({"fuel": 1})", 1);
    Point p = ParsedOnlyLine(m);
    EXPECT_TRUE(p.tags.empty()) << topic;
    EXPECT_TRUE(m.warnings.empty()) << topic;
  }
  {
    // An empty segment is an absent tag.
    Point p = ParsedOnlyLine(mapper.Map("sites//gen/g7", R"({"fuel": 1})", 1));
    EXPECT_EQ(FindTag(p, "site"), nullptr);
    EXPECT_EQ(*FindTag(p, "generatorID"), "g7");
  }
}

TEST(MappingTest, DefaultTopicTemplateOnFixtureTopic) {
  MappingConfig config;
  config.json_tags = {};
  config.topic_tags = "emergency_generator/{generatorID}";
  Mapper mapper(config);
  Point p = ParsedOnlyLine(mapper.Map("emergency_generator/gen 1", R"({"fuel": 10})", 1));
  ASSERT_NE(FindTag(p, "generatorID"), nullptr);
  EXPECT_EQ(*FindTag(p, "generatorID"), "gen 1");
}

TEST(MappingTest, TagsFromNumbersAndBools) {
  MappingConfig config;
  config.json_tags = {"id", "flag", "ratio", "gone"};
  Mapper mapper(config);
  Point p = ParsedOnlyLine(mapper.Map("t", R"({"id": 42, "flag": false, "ratio": 0.5, "gone": null, "v": 1})", 1));
  EXPECT_EQ(*FindTag(p, "id"), "42");
  EXPECT_EQ(*FindTag(p, "flag"), "false");
  EXPECT_EQ(*FindTag(p, "ratio"), "0.5");
  EXPECT_EQ(FindTag(p, "gone"), nullptr);
}

TEST(MappingTest, JsonIntegers) {
  MappingConfig config;
  config.json_integers = {"load", "count", "nested_n", "big", "frac"};
  Mapper mapper(config);
  MappedMessage m = mapper.Map(
      "t",
      R"({"load": 67, "count": -3, "nested": {"n": 5}, "big": 18446744073709551615, "frac": 1.5, "fuel": 2, "x": 4.0})",
      1);
  Point p = ParsedOnlyLine(m);
  ASSERT_NE(FindField(p, "load"), nullptr);
  EXPECT_EQ(FindField(p, "load")->type, FieldType::kInteger);
  EXPECT_EQ(FindField(p, "load")->i, 67);
  EXPECT_EQ(FindField(p, "count")->i, -3);
  EXPECT_EQ(FindField(p, "nested_n")->type, FieldType::kInteger);
  EXPECT_EQ(FindField(p, "fuel")->type, FieldType::kFloat);
  EXPECT_EQ(FindField(p, "big"), nullptr);
  EXPECT_EQ(FindField(p, "frac"), nullptr);
  EXPECT_TRUE(AnyContains(m.warnings, "field big dropped: integer out of range"));
  EXPECT_TRUE(AnyContains(m.warnings, "field frac dropped: not an integer"));
  EXPECT_NE(m.lines[0].find("load=67i"), std::string::npos) << m.lines[0];

  // An integral float for an integer key is written as an integer.
  config.json_integers = {"x"};
  m = Mapper(config).Map("t", R"({"x": 4.0})", 1);
  EXPECT_TRUE(m.warnings.empty());
  EXPECT_EQ(m.lines, std::vector<std::string>{"genData x=4i 1"});
}

TEST(MappingTest, TimeKeyFormats) {
  struct Case {
    const char* format;
    const char* payload;
    int64_t want_ns;
  };
  const std::vector<Case> cases = {
      {"s", R"({"ts": 1764000000, "v": 1})", 1764000000000000000},
      {"s", R"({"ts": 1764000000.5, "v": 1})", 1764000000500000000},
      {"ms", R"({"ts": 1764000000123, "v": 1})", 1764000000123000000},
      {"us", R"({"ts": 1764000000123456, "v": 1})", 1764000000123456000},
      {"ns", R"({"ts": 1764000000123456789, "v": 1})", 1764000000123456789},
      {"rfc3339", R"({"ts": "2025-11-24T16:00:00Z", "v": 1})", 1764000000000000000},
      {"rfc3339", R"({"ts": "2025-11-24T17:00:00.123456789+01:00", "v": 1})", 1764000000123456789},
      {"rfc3339", R"({"ts": "1970-01-01T00:00:00.5Z", "v": 1})", 500000000},
  };
  for (const auto& c : cases) {
    MappingConfig config;
    config.time_key = "ts";
    config.time_format = c.format;
    // The formats alone: no device clock check against the receive time 99 (see below).
    config.time_max_ahead_ns = 0;
    config.time_floor_ns = INT64_MIN;
    MappedMessage m = Mapper(config).Map("t", c.payload, 99);
    Point p = ParsedOnlyLine(m);
    EXPECT_EQ(p.timestamp_ns, c.want_ns) << c.payload;
    EXPECT_EQ(FindField(p, "ts"), nullptr) << "time key must not become a field";
    EXPECT_TRUE(m.warnings.empty()) << c.payload;
    EXPECT_EQ(m.min_ts_ns, c.want_ns);
    EXPECT_EQ(m.max_ts_ns, c.want_ns);
  }
}

TEST(MappingTest, BadTimeValueFallsBackToReceiveTime) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"s", R"({"ts": "yesterday", "v": 1})"},
      {"s", R"({"ts": 1e300, "v": 1})"},
      {"ns", R"({"ts": 18446744073709551615, "v": 1})"},
      {"rfc3339", R"({"ts": 5, "v": 1})"},
      {"rfc3339", R"({"ts": "2025-02-30T00:00:00Z", "v": 1})"},
      {"rfc3339", R"({"ts": "2025-11-24T16:00:00", "v": 1})"},
  };
  for (const auto& [format, payload] : cases) {
    MappingConfig config;
    config.time_key = "ts";
    config.time_format = format;
    MappedMessage m = Mapper(config).Map("t", payload, 99);
    Point p = ParsedOnlyLine(m);
    EXPECT_EQ(p.timestamp_ns, 99) << payload;
    EXPECT_EQ(FindField(p, "ts"), nullptr) << payload;
    EXPECT_TRUE(AnyContains(m.warnings, "time key ts")) << payload;
  }
  // Absent key: receive time, silently.
  MappingConfig config;
  config.time_key = "ts";
  MappedMessage m = Mapper(config).Map("t", R"({"v": 1})", 99);
  EXPECT_EQ(ParsedOnlyLine(m).timestamp_ns, 99);
  EXPECT_TRUE(m.warnings.empty());
}

// Device clock checks (EDGELINE_JSON_TIME_MAX_AHEAD, _FLOOR, _POLICY) against the receive time.
constexpr int64_t kReceive = 1764000000000000000;  // 2025-11-24T16:00:00Z
constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kFloor1986 = 504921600 * kSec;  // 1986-01-01T00:00:00Z

MappingConfig ClockConfig(const char* format, const char* policy) {
  MappingConfig config;  // defaults: 5m ahead, floor 2020-01-01
  config.time_key = "ts";
  config.time_format = format;
  config.time_policy = policy;
  return config;
}

TEST(MappingTest, DeviceTimeTooFarAheadKeepsThePointAtTheReceiveTime) {
  // Two hours ahead, in seconds.
  const std::string payload =
      R"({"generatorID": "g1", "fuel": 5, "ts": )" + std::to_string(kReceive / kSec + 7200) + "}";
  MappedMessage m = Mapper(ClockConfig("s", "receive-time")).Map("t", payload, kReceive);
  Point p = ParsedOnlyLine(m);
  EXPECT_EQ(p.timestamp_ns, kReceive);
  const FieldValue* device_time = FindField(p, "device_time");
  ASSERT_NE(device_time, nullptr) << m.lines[0];
  EXPECT_EQ(device_time->type, FieldType::kInteger);
  EXPECT_EQ(device_time->i, kReceive + 7200 * kSec);
  EXPECT_EQ(FindField(p, "fuel")->f, 5.0);
  // Nothing lost: no warning (a warning is a dead letter), no error; counted instead.
  EXPECT_TRUE(m.warnings.empty()) << m.warnings[0];
  EXPECT_TRUE(m.errors.empty());
  EXPECT_EQ(m.device_time_adjusted, 1);
  EXPECT_EQ(m.device_time_rejected, 0);
  EXPECT_EQ(m.min_ts_ns, kReceive);
  EXPECT_EQ(m.max_ts_ns, kReceive);
}

TEST(MappingTest, DeviceTimeTooFarAheadIsDeadLetteredUnderDlq) {
  const std::string payload =
      R"({"generatorID": "g1", "fuel": 5, "ts": )" + std::to_string(kReceive / kSec + 7200) + "}";
  MappedMessage m = Mapper(ClockConfig("s", "dlq")).Map("t", payload, kReceive);
  EXPECT_TRUE(m.lines.empty());
  ASSERT_EQ(m.errors.size(), 1u);
  EXPECT_EQ(m.errors[0],
            "device time 2025-11-24T18:00:00Z is 2h0m ahead of the receive time (EDGELINE_JSON_TIME_MAX_AHEAD 5m) "
            "(EDGELINE_JSON_TIME_POLICY dlq)");
  EXPECT_TRUE(m.warnings.empty());
  EXPECT_EQ(m.device_time_rejected, 1);
  EXPECT_EQ(m.device_time_adjusted, 0);
  // Prepare keeps the payload for the dead letter.
  IngestMessage prepared = Mapper(ClockConfig("s", "dlq")).Prepare("t", payload, kReceive);
  EXPECT_EQ(prepared.payload, payload);
}

TEST(MappingTest, DeviceTimeExactlyAtTheLimitsIsAcceptedAsIs) {
  for (const char* policy : {"receive-time", "dlq"}) {
    // Exactly EDGELINE_JSON_TIME_MAX_AHEAD ahead (in ns) is the device's time.
    MappingConfig config = ClockConfig("ns", policy);
    const int64_t at_limit = kReceive + config.time_max_ahead_ns;
    MappedMessage m = Mapper(config).Map("t", R"({"v": 1, "ts": )" + std::to_string(at_limit) + "}", kReceive);
    Point p = ParsedOnlyLine(m);
    EXPECT_EQ(p.timestamp_ns, at_limit) << policy;
    EXPECT_EQ(FindField(p, "device_time"), nullptr) << policy;
    EXPECT_EQ(m.device_time_adjusted + m.device_time_rejected, 0) << policy;
    // One ns more is a wrong clock.
    m = Mapper(config).Map("t", R"({"v": 1, "ts": )" + std::to_string(at_limit + 1) + "}", kReceive);
    EXPECT_EQ(m.device_time_adjusted + m.device_time_rejected, 1) << policy;
    // Exactly at the floor (2020-01-01T00:00:00Z) is the device's time; one ns before is not.
    m = Mapper(config).Map("t", R"({"v": 1, "ts": )" + std::to_string(config.time_floor_ns) + "}", kReceive);
    EXPECT_EQ(ParsedOnlyLine(m).timestamp_ns, config.time_floor_ns) << policy;
    EXPECT_EQ(m.device_time_adjusted + m.device_time_rejected, 0) << policy;
    m = Mapper(config).Map("t", R"({"v": 1, "ts": )" + std::to_string(config.time_floor_ns - 1) + "}", kReceive);
    EXPECT_EQ(m.device_time_adjusted + m.device_time_rejected, 1) << policy;
    // In the past but after the floor: the device's time (late data is not a wrong clock).
    m = Mapper(config).Map("t", R"({"v": 1, "ts": )" + std::to_string(kReceive - 86400 * kSec) + "}", kReceive);
    EXPECT_EQ(ParsedOnlyLine(m).timestamp_ns, kReceive - 86400 * kSec) << policy;
  }
}

TEST(MappingTest, DeviceTimeBeforeTheFloor) {
  const std::string payload = R"({"generatorID": "g1", "fuel": 5, "ts": 504921600})";  // 1986-01-01
  MappedMessage m = Mapper(ClockConfig("s", "receive-time")).Map("t", payload, kReceive);
  Point p = ParsedOnlyLine(m);
  EXPECT_EQ(p.timestamp_ns, kReceive);
  ASSERT_NE(FindField(p, "device_time"), nullptr);
  EXPECT_EQ(FindField(p, "device_time")->i, kFloor1986);
  EXPECT_TRUE(m.warnings.empty());
  EXPECT_EQ(m.device_time_adjusted, 1);

  m = Mapper(ClockConfig("s", "dlq")).Map("t", payload, kReceive);
  EXPECT_TRUE(m.lines.empty());
  EXPECT_EQ(m.errors, std::vector<std::string>{"device time 1986-01-01T00:00:00Z is before EDGELINE_JSON_TIME_FLOOR "
                                               "2020-01-01: device clock not set (EDGELINE_JSON_TIME_POLICY dlq)"});
  EXPECT_EQ(m.device_time_rejected, 1);

  // A time before 1970 is shown as such.
  m = Mapper(ClockConfig("ms", "dlq")).Map("t", R"({"v": 1, "ts": -1500})", kReceive);
  ASSERT_EQ(m.errors.size(), 1u);
  EXPECT_NE(m.errors[0].find("device time 1969-12-31T23:59:58.5Z is before"), std::string::npos) << m.errors[0];
}

TEST(MappingTest, EmptyFloorAndZeroMaxAheadDisableTheChecks) {
  for (const char* policy : {"receive-time", "dlq"}) {
    MappingConfig config = ClockConfig("s", policy);
    config.time_floor_text = "";
    config.time_floor_ns = INT64_MIN;  // what config parsing makes of an empty EDGELINE_JSON_TIME_FLOOR
    config.time_max_ahead_ns = 0;
    for (int64_t ts_s : {int64_t{0}, int64_t{504921600}, kReceive / kSec + 365 * 86400}) {
      MappedMessage m = Mapper(config).Map("t", R"({"v": 1, "ts": )" + std::to_string(ts_s) + "}", kReceive);
      Point p = ParsedOnlyLine(m);
      EXPECT_EQ(p.timestamp_ns, ts_s * kSec) << policy << " " << ts_s;
      EXPECT_EQ(FindField(p, "device_time"), nullptr);
      EXPECT_EQ(m.device_time_adjusted + m.device_time_rejected, 0);
    }
  }
  // Each check disables alone.
  MappingConfig config = ClockConfig("s", "dlq");
  config.time_max_ahead_ns = 0;
  EXPECT_EQ(Mapper(config).Map("t", R"({"v": 1, "ts": 504921600})", kReceive).device_time_rejected, 1);
  config = ClockConfig("s", "dlq");
  config.time_floor_ns = INT64_MIN;
  EXPECT_EQ(Mapper(config).Map("t", R"({"v": 1, "ts": 504921600})", kReceive).device_time_rejected, 0);
  EXPECT_EQ(Mapper(config).Map("t", R"({"v": 1, "ts": 1764007200})", kReceive).device_time_rejected, 1);
}

TEST(MappingTest, DeviceClockChecksInEveryFormat) {
  struct Case {
    const char* format;
    const char* ahead;   // 2h ahead of kReceive
    const char* before;  // 1986-01-01
    int64_t ahead_ns;
  };
  const std::vector<Case> cases = {
      {"s", "1764007200", "504921600", kReceive + 7200 * kSec},
      {"s", "1764007200.5", "504921600.0", kReceive + 7200 * kSec + 500'000'000},
      {"ms", "1764007200123", "504921600000", kReceive + 7200 * kSec + 123'000'000},
      {"rfc3339", R"("2025-11-24T18:00:00.5Z")", R"("1986-01-01T00:00:00Z")", kReceive + 7200 * kSec + 500'000'000},
      {"rfc3339", R"("2025-11-24T19:00:00+01:00")", R"("1986-01-01T01:00:00+01:00")", kReceive + 7200 * kSec},
  };
  for (const auto& c : cases) {
    const std::string ahead = std::string(R"({"v": 1, "ts": )") + c.ahead + "}";
    const std::string before = std::string(R"({"v": 1, "ts": )") + c.before + "}";
    MappedMessage m = Mapper(ClockConfig(c.format, "receive-time")).Map("t", ahead, kReceive);
    Point p = ParsedOnlyLine(m);
    EXPECT_EQ(p.timestamp_ns, kReceive) << c.format << " " << c.ahead;
    ASSERT_NE(FindField(p, "device_time"), nullptr) << c.format;
    EXPECT_EQ(FindField(p, "device_time")->i, c.ahead_ns) << c.format << " " << c.ahead;
    EXPECT_EQ(FindField(p, "ts"), nullptr);

    m = Mapper(ClockConfig(c.format, "receive-time")).Map("t", before, kReceive);
    p = ParsedOnlyLine(m);
    EXPECT_EQ(p.timestamp_ns, kReceive) << c.format << " " << c.before;
    ASSERT_NE(FindField(p, "device_time"), nullptr) << c.format;
    EXPECT_EQ(FindField(p, "device_time")->i, kFloor1986) << c.format << " " << c.before;

    m = Mapper(ClockConfig(c.format, "dlq")).Map("t", ahead, kReceive);
    ASSERT_EQ(m.errors.size(), 1u) << c.format;
    EXPECT_NE(m.errors[0].find("2h0m ahead"), std::string::npos) << m.errors[0];
    m = Mapper(ClockConfig(c.format, "dlq")).Map("t", before, kReceive);
    ASSERT_EQ(m.errors.size(), 1u) << c.format;
    EXPECT_NE(m.errors[0].find("device time 1986-01-01T00:00:00Z is before"), std::string::npos) << m.errors[0];
  }
}

TEST(MappingTest, DeviceClockEdgeCases) {
  // A payload's own device_time gives way to the time key's value, with a warning (it is lost).
  MappedMessage m =
      Mapper(ClockConfig("s", "receive-time")).Map("t", R"({"v": 1, "device_time": 7, "ts": 504921600})", kReceive);
  Point p = ParsedOnlyLine(m);
  ASSERT_NE(FindField(p, "device_time"), nullptr);
  EXPECT_EQ(FindField(p, "device_time")->i, kFloor1986);
  EXPECT_EQ(p.fields.size(), 2u);
  EXPECT_TRUE(AnyContains(m.warnings, "field device_time dropped")) << m.lines[0];
  // A time that cannot be converted at all is the "time key ignored" path, not a wrong clock.
  m = Mapper(ClockConfig("s", "dlq")).Map("t", R"({"v": 1, "ts": 1e300})", kReceive);
  EXPECT_EQ(ParsedOnlyLine(m).timestamp_ns, kReceive);
  EXPECT_TRUE(AnyContains(m.warnings, "time key ts ignored"));
  EXPECT_EQ(m.device_time_adjusted + m.device_time_rejected, 0);
  // Far ahead of a receive time before 1970: the difference overflows int64, still ahead.
  m = Mapper(ClockConfig("ns", "dlq")).Map("t", R"({"v": 1, "ts": 9223372036854775000})", -9000000000000000000);
  ASSERT_EQ(m.errors.size(), 1u);
  EXPECT_NE(m.errors[0].find("ahead of the receive time"), std::string::npos) << m.errors[0];
  // Line protocol carries its own timestamps: the JSON time checks do not apply to it.
  m = Mapper(ClockConfig("ns", "dlq")).Map("t", "genData v=1 504921600000000000", kReceive);
  EXPECT_EQ(m.lines, std::vector<std::string>{"genData v=1 504921600000000000"});
  EXPECT_EQ(m.device_time_rejected, 0);
}

TEST(MappingTest, ArraysAndUnwritableKeysAreDroppedWithWarnings) {
  Mapper mapper{MappingConfig{}};
  MappedMessage m = mapper.Map(
      "t",
      R"({"fuel": 1, "list": [1, 2], "a\nb": 2, "": 3, "note": "two\nlines", "back\\": 4, "nested": {"deep": [1]}})",
      1);
  Point p = ParsedOnlyLine(m);
  EXPECT_EQ(p.fields.size(), 1u);
  EXPECT_TRUE(m.errors.empty());
  EXPECT_TRUE(AnyContains(m.warnings, "key list dropped: arrays are not supported"));
  EXPECT_TRUE(AnyContains(m.warnings, "key nested_deep dropped: arrays"));
  EXPECT_TRUE(AnyContains(m.warnings, "empty key dropped"));
  EXPECT_TRUE(AnyContains(m.warnings, "line break"));
  EXPECT_TRUE(AnyContains(m.warnings, "field note dropped"));
  EXPECT_TRUE(AnyContains(m.warnings, "ends with a backslash"));
  for (const auto& w : m.warnings) EXPECT_EQ(w.find('\n'), std::string::npos) << w;

  // Nothing but arrays left: no fields.
  m = mapper.Map("t", R"({"generatorID": "g", "list": [1]})", 1);
  EXPECT_TRUE(m.lines.empty());
  EXPECT_TRUE(AnyContains(m.errors, "no fields"));
  EXPECT_FALSE(m.warnings.empty());
}

TEST(MappingTest, DeepNestingIsBoundedNotFatal) {
  Mapper mapper{MappingConfig{}};
  std::string payload = R"({"fuel": 1, "x": )";
  const int depth = 200000;  // ~1 MiB, the default MQTT payload limit
  for (int i = 0; i < depth; ++i) payload += R"({"a": )";
  payload += "1e400";
  payload += std::string(depth, '}');
  payload += "}";
  MappedMessage m = mapper.Map("t", payload, 1);
  Point p = ParsedOnlyLine(m);
  EXPECT_EQ(p.fields.size(), 1u);
  EXPECT_TRUE(AnyContains(m.warnings, "nested deeper than"));

  // Within the limit, nested keys flatten fully.
  m = mapper.Map("t", R"({"a": {"b": {"c": {"d": 4}}}})", 1);
  EXPECT_NE(FindField(ParsedOnlyLine(m), "a_b_c_d"), nullptr);
}

TEST(MappingTest, NullFieldsAreSkippedSilently) {
  Mapper mapper{MappingConfig{}};
  MappedMessage m = mapper.Map("t", R"({"fuel": 1, "x": null})", 1);
  Point p = ParsedOnlyLine(m);
  EXPECT_EQ(p.fields.size(), 1u);
  EXPECT_TRUE(m.warnings.empty());
}

TEST(MappingTest, LineProtocolPassThrough) {
  Mapper mapper{MappingConfig{}};
  MappedMessage m = mapper.Map("t",
                               "# comment\r\n"
                               "m,t=a f=1 50\r\n"
                               "\n"
                               "m,t=b f=2\n"
                               "m,t=c f=\n"
                               "   \n"
                               "m f=3i 10",
                               1000);
  ASSERT_EQ(m.lines.size(), 3u);
  EXPECT_EQ(ToCanonical(m.lines[0]), ToCanonical("m,t=a f=1 50"));
  EXPECT_EQ(ToCanonical(m.lines[1]), ToCanonical("m,t=b f=2 1000"));
  EXPECT_EQ(ToCanonical(m.lines[2]), ToCanonical("m f=3i 10"));
  ASSERT_EQ(m.errors.size(), 1u);
  EXPECT_NE(m.errors[0].find("line 5"), std::string::npos) << m.errors[0];
  EXPECT_NE(m.errors[0].find("empty field value"), std::string::npos) << m.errors[0];
  EXPECT_EQ(m.min_ts_ns, 10);
  EXPECT_EQ(m.max_ts_ns, 1000);
}

// InfluxDB splits a body on line breaks outside quoted string fields only.
TEST(MappingTest, LineProtocolStringFieldsMayHoldLineBreaks) {
  Mapper mapper{MappingConfig{}};
  MappedMessage m = mapper.Map("t", "m note=\"4\n2\" 5\nm f=1 6\nm,dup=a,dup=b f=1 7", 1000);
  ASSERT_EQ(m.lines.size(), 2u);
  Result<Point> p = ParseLine(m.lines[0]);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->fields[0].second.s, "4\n2");
  EXPECT_EQ(ToCanonical(m.lines[1]), ToCanonical("m f=1 6"));
  ASSERT_EQ(m.errors.size(), 1u);
  EXPECT_NE(m.errors[0].find("line 4"), std::string::npos) << m.errors[0];
}

TEST(MappingTest, EmptyPayloadIsRejected) {
  Mapper mapper{MappingConfig{}};
  for (const char* payload : {"", "\n\n", "# only a comment"}) {
    MappedMessage m = mapper.Map("t", payload, 1);
    EXPECT_TRUE(m.lines.empty());
    EXPECT_FALSE(m.errors.empty()) << payload;
    EXPECT_EQ(m.min_ts_ns, 0);
  }
}

TEST(MappingTest, MalformedJsonReasonIsOneLine) {
  Mapper mapper{MappingConfig{}};
  MappedMessage m = mapper.Map("t", "{\"generatorID\": \"generator1\", \"fuel\": 277", 1);
  ASSERT_EQ(m.errors.size(), 1u);
  EXPECT_EQ(m.errors[0].rfind("malformed JSON", 0), 0u) << m.errors[0];
  EXPECT_EQ(m.errors[0].find('\n'), std::string::npos);
}

}  // namespace
}  // namespace edgeline
