// Shared by the downsampling end-to-end and crash tests: the fixture trace as MQTT messages that
// carry their event time (payload key "ts", so the agent's output does not depend on when the
// test runs), the expected downsampled rows, and reading them back from influxd as points.
#pragma once

#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "common/line_protocol.h"
#include "tests/support/harness.h"

namespace edgeline::testing {

using Messages = std::vector<std::pair<std::string, std::string>>;

inline constexpr int64_t kTraceEndNs = 1764000900'000'000'000;  // end of the fixture's last window

// The fixture with each payload's receive time as "ts" (ns), in publish order.
inline Messages TimestampedFixture() {
  Messages out;
  for (const auto& line : ReadFixtureLines("generators.jsonl")) {
    auto j = nlohmann::json::parse(line);
    auto payload = nlohmann::json::parse(j["payload"].get<std::string>());
    payload["ts"] = j["ts_ns"].get<int64_t>();
    out.emplace_back(j["topic"].get<std::string>(), payload.dump());
  }
  return out;
}

// One message per generator two windows after the trace: its event time closes every window of
// the trace without relying on wall-clock idleness. Its own window stays open (and is excluded
// from comparisons by time).
inline Messages ClosingMessages() {
  Messages out;
  for (const char* g : {"generator1", "generator2", "generator3"}) {
    nlohmann::json p = {{"generatorID", g}, {"lat", 0.0}, {"lon", 0.0},   {"temperature", 0},
                        {"power", 0},       {"load", 0},  {"fuel", 1000}, {"ts", kTraceEndNs + 120'000'000'000}};
    out.emplace_back(std::string("emergency_generator/") + g, p.dump());
  }
  return out;
}

inline std::string CanonicalWithTime(const Point& p) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : p.tags) parts.push_back("tag:" + k + "=" + v);
  for (const auto& [k, v] : p.fields) {
    char buf[64];
    switch (v.type) {
      case FieldType::kFloat: std::snprintf(buf, sizeof(buf), "%.17g", v.f); break;
      case FieldType::kInteger: std::snprintf(buf, sizeof(buf), "%.17g", static_cast<double>(v.i)); break;
      case FieldType::kUnsigned: std::snprintf(buf, sizeof(buf), "%.17g", static_cast<double>(v.u)); break;
      case FieldType::kString: std::snprintf(buf, sizeof(buf), "\"%s\"", v.s.c_str()); break;
      case FieldType::kBool: std::snprintf(buf, sizeof(buf), "%s", v.b ? "true" : "false"); break;
    }
    parts.push_back(k + "=" + buf);
  }
  std::sort(parts.begin(), parts.end());
  std::string out = p.measurement;
  for (const auto& s : parts) out += "|" + s;
  return out + "|@" + std::to_string(p.timestamp_ns.value_or(-1));
}

inline std::vector<std::string> ExpectedDownsampled() {
  std::vector<std::string> out;
  for (const auto& line : ReadFixtureLines("generators_downsampled.lp")) {
    auto p = ParseLine(line);
    if (p.ok()) out.push_back(CanonicalWithTime(*p));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Every genData row in `db` with time in [from_ns, until_ns), canonical, sorted (duplicates kept).
inline std::vector<std::string> RowsInInflux(const Influxd& influx, const std::string& db, int64_t from_ns,
                                             int64_t until_ns) {
  std::vector<std::string> out;
  auto r = influx.Query(
      "SELECT * FROM genData WHERE time >= " + std::to_string(from_ns) + " AND time < " + std::to_string(until_ns), db);
  const auto& series = r["results"][0]["series"];
  if (!series.is_array()) return out;
  const std::set<std::string> tag_keys = {"generatorID", "region"};
  for (const auto& s : series) {
    auto columns = s["columns"].get<std::vector<std::string>>();
    for (const auto& row : s["values"]) {
      Point p;
      p.measurement = "genData";
      for (size_t i = 0; i < columns.size(); ++i) {
        if (row[i].is_null()) continue;
        if (columns[i] == "time") {
          p.timestamp_ns = row[i].get<int64_t>();
        } else if (tag_keys.count(columns[i])) {
          p.tags.emplace_back(columns[i], row[i].get<std::string>());
        } else {
          FieldValue v;
          if (row[i].is_number()) {
            v.f = row[i].get<double>();
          } else {
            v.type = FieldType::kString;
            v.s = row[i].get<std::string>();
          }
          p.fields.emplace_back(columns[i], v);
        }
      }
      out.push_back(CanonicalWithTime(p));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// "generatorID@time" of every genData point in `db` before `until_ns` (InfluxDB keeps one point
// per series and time, so this is a set).

// Rows of genData in `db` before the end of the trace, canonical, sorted.
inline std::vector<std::string> DownsampledInInflux(const Influxd& influx, const std::string& db) {
  return RowsInInflux(influx, db, 0, kTraceEndNs);
}

inline std::map<std::string, std::string> DownsampleAgentEnv(const Mosquitto& mqtt, const Influxd& influx,
                                                             const std::string& queue_path, const std::string& raw_db,
                                                             const std::string& downsampled_db) {
  auto env = AgentEnv(mqtt, influx, queue_path, raw_db);
  env["EDGELINE_DOWNSAMPLE_PRESET"] = "seed";
  env["EDGELINE_DOWNSAMPLE_BUCKET"] = downsampled_db;
  env["EDGELINE_DOWNSAMPLE_LATENESS"] = "5s";
  env["EDGELINE_DOWNSAMPLE_IDLE_TIMEOUT"] = "0";  // windows close on event time only
  env["EDGELINE_JSON_TIME_KEY"] = "ts";
  env["EDGELINE_JSON_TIME_FORMAT"] = "ns";
  return env;
}

}  // namespace edgeline::testing
