// Shared by the crash-loop and clock-jump tests: the fixture trace replayed as consecutive
// 15-minute loops (each shifted by whole loops of event time, so the seed task's expected output
// shifts with it), reading raw keys / downsampled rows back from influxd and Kafka as sets, and a
// cheap read-only look at the queue file after a kill (integrity_check + per-sink backlog).
// Header-only test support; one test thread owns what it returns.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "storage/queue.h"
#include "tests/integration/downsample_support.h"
#include "tests/support/harness.h"
#include "tests/support/kafka_mock.h"

namespace edgeline::testing {

inline constexpr int64_t kTraceStartNs = 1764000000'000'000'000;  // first window of the fixture
inline constexpr int64_t kLoopNs = kTraceEndNs - kTraceStartNs;   // 900 s: 15 whole windows

inline int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : fallback;
}

// Loop `k` of the fixture: every "ts" moved by k loops.
inline Messages FixtureLoop(int k) {
  Messages out = TimestampedFixture();
  for (auto& [topic, payload] : out) {
    auto j = nlohmann::json::parse(payload);
    j["ts"] = j["ts"].get<int64_t>() + k * kLoopNs;
    payload = j.dump();
  }
  return out;
}

// "generatorID@ts" of every message of a set of messages (the unique key of a fixture message).
inline std::string MessageKey(const std::string& payload) {
  auto j = nlohmann::json::parse(payload);
  return j["generatorID"].get<std::string>() + "@" + std::to_string(j["ts"].get<int64_t>());
}

// The seed task's rows for loops [0, loops), canonical (see CanonicalWithTime), sorted.
inline std::vector<std::string> ExpectedDownsampledLoops(int loops) {
  std::vector<std::string> out;
  for (const auto& line : ReadFixtureLines("generators_downsampled.lp")) {
    auto p = ParseLine(line);
    if (!p.ok()) continue;
    for (int k = 0; k < loops; ++k) {
      Point shifted = *p;
      shifted.timestamp_ns = *p->timestamp_ns + k * kLoopNs;
      out.push_back(CanonicalWithTime(shifted));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::set<std::string> RawKeysInInflux(const Influxd& influx, const std::string& db, int64_t until_ns) {
  std::set<std::string> out;
  auto r = influx.Query("SELECT fuel, generatorID FROM genData WHERE time < " + std::to_string(until_ns), db);
  const auto& series = r["results"][0]["series"];
  if (!series.is_array()) return out;
  for (const auto& s : series) {
    for (const auto& row : s["values"]) {
      if (row[2].is_string()) out.insert(row[2].get<std::string>() + "@" + std::to_string(row[0].get<int64_t>()));
    }
  }
  return out;
}

// Raw records of a Kafka topic before `until_ns`: distinct "generatorID@time" and the record count.
struct KafkaPoints {
  std::set<std::string> distinct;
  size_t records = 0;
};
inline KafkaPoints KafkaTracePoints(const std::string& bootstrap, const std::string& topic, int64_t until_ns) {
  KafkaPoints out;
  for (const auto& [key, value] : ReadKafkaTopic(bootstrap, topic)) {
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (j.is_discarded() || !j.contains("time") || j["time"].get<int64_t>() >= until_ns) continue;
    ++out.records;
    out.distinct.insert(j["tags"].value("generatorID", std::string("?")) + "@" +
                        std::to_string(j["time"].get<int64_t>()));
  }
  return out;
}

// The queue file as a reader sees it right after a kill: a read-only connection (no recovery,
// no checkpoint, nothing written), so the check is cheap and cannot repair what it looks at.
struct QueueLook {
  std::string integrity;                   // "ok" when healthy
  std::map<std::string, int64_t> pending;  // sink -> pending points
};
inline QueueLook LookAtQueue(const std::string& path) {
  QueueLook out;
  QueueOpenOptions o;
  o.config.path = path;
  o.read_only = true;
  auto q = OpenSqliteQueue(o);
  if (!q.ok()) {
    out.integrity = q.status().ToString();
    return out;
  }
  auto r = (*q)->IntegrityCheck();
  out.integrity = r.ok() ? *r : r.status().ToString();
  if (auto sinks = (*q)->SinkStatuses(); sinks.ok()) {
    for (const SinkStatus& s : *sinks) out.pending[s.sink] = s.pending_points;
  }
  return out;
}

// The first `max` of `v`, one an indented line, for failure messages.
inline std::string Join(const std::vector<std::string>& v, size_t max) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) out += "  " + v[i] + "\n";
  if (v.size() > max) out += "  ... " + std::to_string(v.size() - max) + " more\n";
  return out;
}

// Keys of `expected` not in `got`, in order.
template <typename Set>
inline std::vector<std::string> Missing(const Set& expected, const std::set<std::string>& got) {
  std::vector<std::string> out;
  for (const auto& k : expected) {
    if (!got.count(k)) out.push_back(k);
  }
  return out;
}

}  // namespace edgeline::testing
