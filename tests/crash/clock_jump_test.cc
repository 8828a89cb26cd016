// Wall-clock jumps under the real agent: libfaketime (LD_PRELOAD, offset re-read from a file on
// every call, monotonic clock left alone) moves the agent's wall clock while it ingests a steady
// QoS 1 stream stamped with receive time (no time key) and downsamples it (seed preset, 2 s
// windows), with real mosquitto, influxd and Kafka (mock cluster, an independent record of every
// downsampled row written). Sequence: true time, back 1 h, true time (= forward 1 h), forward
// 1 h, true time (= back 1 h). Claims: no crash, every PUBACKed message in influxd, no window
// written twice (Kafka shows every write, InfluxDB would hide a rewrite of the same series and
// time), the downsampler's counters account for every raw point (in + late), and no point
// stamped after a step back is late (each step back restarts event time once).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"
#include "tests/crash/crash_support.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

// Debian's libfaketime (package faketime), thread-safe build, under the multiarch directory.
std::string LibFaketime() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib", ec)) {
    const std::string path = entry.path().string() + "/faketime/libfaketimeMT.so.1";
    if (::access(path.c_str(), R_OK) == 0) return path;
  }
  return "";
}
constexpr int64_t kEveryNs = 2'000'000'000;

struct Phase {
  const char* name;
  const char* offset;  // libfaketime's relative offset, seconds
};
constexpr Phase kPhases[] = {
    {"true time", "+0"},
    {"back 1h", "-3600"},
    {"true time again (forward 1h)", "+0"},
    {"forward 1h", "+3600"},
    {"true time again (back 1h)", "+0"},
};

void WriteOffset(const std::string& path, const std::string& offset) {
  // Written whole then renamed: the agent re-reads the file on every clock call.
  std::ofstream(path + ".tmp") << offset << "\n";
  std::rename((path + ".tmp").c_str(), path.c_str());
}

TEST(ClockJump, WallClockStepsLoseNoRawPointAndWriteNoWindowTwice) {
  const std::string lib_faketime = LibFaketime();
  ASSERT_FALSE(lib_faketime.empty()) << "libfaketime missing: apt-get install faketime";
  const auto t0 = std::chrono::steady_clock::now();
  testing::Mosquitto mosquitto;
  testing::Influxd influxd;
  testing::MockCluster cluster;
  influxd.Query("CREATE DATABASE raw");
  influxd.Query("CREATE DATABASE downsampled");
  const std::string dir = testing::MakeTempDir("edgeline-clock-jump");
  const std::string offset_file = dir + "/faketime";
  WriteOffset(offset_file, "+0");
  auto env = testing::AgentEnv(mosquitto, influxd, dir + "/queue.db", "raw");
  env["EDGELINE_DOWNSAMPLE_PRESET"] = "seed";
  env["EDGELINE_DOWNSAMPLE_BUCKET"] = "downsampled";
  env["EDGELINE_DOWNSAMPLE_EVERY"] = "2s";
  env["EDGELINE_DOWNSAMPLE_LATENESS"] = "1s";
  env["EDGELINE_KAFKA_BROKERS"] = cluster.bootstrap();
  env["EDGELINE_KAFKA_TOPIC_MAP"] = "generators:emergency_generator/.*";
  auto agent_env = env;
  agent_env["LD_PRELOAD"] = lib_faketime;
  agent_env["FAKETIME_TIMESTAMP_FILE"] = offset_file;
  agent_env["FAKETIME_NO_CACHE"] = "1";
  agent_env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1";
  const std::string status_topic = "edgeline/edgeline-test/status";
  testing::Subscriber watch(mosquitto.url(), "clock-watch", status_topic);
  testing::Process agent({EDGELINE_BINARY, "run"}, agent_env, dir + "/agent.log");
  ASSERT_TRUE(WaitFor([&] { return watch.Last(status_topic) == "online"; }, 20s)) << agent.Log();

  std::atomic<bool> stop{false};
  std::atomic<int> acked{0};  // seq 0..acked-1 were PUBACKed
  std::thread publisher([&] {
    testing::Publisher pub(mosquitto.url(), "clock-publisher");
    for (int seq = 0; !stop;) {
      testing::Messages chunk;
      for (const char* g : {"generator1", "generator2", "generator3"}) {
        nlohmann::json p = {{"generatorID", g}, {"seq", seq}, {"fuel", 300 + seq % 400}, {"power", seq % 97}};
        chunk.emplace_back(std::string("emergency_generator/") + g, p.dump());
        ++seq;
      }
      pub.PublishAll(chunk);
      acked = seq;
      std::this_thread::sleep_for(100ms);  // the steady rate of the load, not a wait for a result
    }
  });

  auto status = [&] {
    return nlohmann::json::parse(testing::RunCommand({EDGELINE_BINARY, "status", "--json"}, env).output, nullptr,
                                 false);
  };
  std::vector<std::string> lines;
  int64_t late_before = 0, in_before = 0, acked_before = 0;
  for (const Phase& phase : kPhases) {
    WriteOffset(offset_file, phase.offset);
    std::this_thread::sleep_for(4s);  // the phase's length: the agent runs under this clock
    // The downsampler steps once a second: let it take in what this phase ingested.
    WaitFor(
        [&] {
          auto s = status();
          for (const auto& sink : s["sinks"]) {
            if (sink["name"] == "downsampler") return sink["pending_points"].get<int64_t>() == 0;
          }
          return false;
        },
        5s, 100ms);
    auto d = status()["downsample"];
    const int64_t late = d["points_late"].get<int64_t>(), in = d["points_in"].get<int64_t>();
    char line[256];
    std::snprintf(line, sizeof(line),
                  "clock jump: %-30s offset %6ss: published ~%lld, downsampled in %lld, late %lld; closed through "
                  "%+.0f s from true time",
                  phase.name, phase.offset, static_cast<long long>(acked - acked_before),
                  static_cast<long long>(in - in_before), static_cast<long long>(late - late_before),
                  (d["closed_until_ns"].get<int64_t>() - std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                             std::chrono::system_clock::now().time_since_epoch())
                                                             .count()) /
                      1e9);
    lines.push_back(line);
    late_before = late;
    in_before = in;
    acked_before = acked;
  }
  stop = true;
  publisher.join();
  const int64_t total = acked.load();

  const std::string distinct_q = "SELECT count(distinct(seq)) FROM genData";
  const bool all_raw = WaitFor([&] { return influxd.QueryCount(distinct_q, "raw") == total; }, 30s, 250ms);
  // Event time has to pass the last windows for them to close; "+0" is in force, so the rows of
  // every window before the forward jump's end have been written once the sinks caught up.
  WaitFor(
      [&] {
        auto s = status();
        for (const auto& sink : s["sinks"]) {
          if (sink["pending_points"].get<int64_t>() != 0) return false;
        }
        return true;
      },
      30s, 250ms);
  for (const auto& l : lines) std::printf("%s\n", l.c_str());

  // Every downsampled write, as Kafka recorded it: series + time and series + window, once each.
  std::map<std::string, int> by_time, by_window;
  size_t records = 0;
  for (const auto& [key, value] : testing::ReadKafkaTopic(cluster.bootstrap(), "EGdownsampled")) {
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (j.is_discarded()) continue;
    ++records;
    const int64_t t = j["time"].get<int64_t>();
    ++by_time[key + "@" + std::to_string(t)];
    ++by_window[key + "@" + std::to_string(t - t % kEveryNs)];
  }
  std::vector<std::string> twice;
  for (const auto& [k, n] : by_window) {
    if (n > 1) twice.push_back(k + " x" + std::to_string(n));
  }
  const int64_t influx_rows = influxd.QueryCount("SELECT count(fuel) FROM genData", "downsampled");
  auto d = status()["downsample"];
  const int64_t raw_points = influxd.QueryCount("SELECT count(seq) FROM genData", "raw");
  std::printf(
      "clock jump: published=%lld raw_in_influxd=%lld downsampled_writes=%zu (distinct series+time %zu, "
      "series+window %zu) influx_rows=%lld points_in=%lld points_late=%lld points_out=%lld windows_closed=%lld "
      "(%.1f s)\n",
      static_cast<long long>(total), static_cast<long long>(raw_points), records, by_time.size(), by_window.size(),
      static_cast<long long>(influx_rows), static_cast<long long>(d["points_in"].get<int64_t>()),
      static_cast<long long>(d["points_late"].get<int64_t>()), static_cast<long long>(d["points_out"].get<int64_t>()),
      static_cast<long long>(d["windows_closed"].get<int64_t>()),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  EXPECT_TRUE(agent.running()) << "the agent died\n" << agent.Log();
  EXPECT_TRUE(all_raw) << "missing " << total - influxd.QueryCount(distinct_q, "raw") << " acknowledged messages\n"
                       << agent.Log();
  EXPECT_EQ(raw_points, total) << "no kill, so no redelivery: one raw point per message";
  EXPECT_EQ(by_time.size(), records) << "a downsampled series+time was written twice";
  EXPECT_TRUE(twice.empty()) << "windows written twice:\n" << testing::Join(twice, 20);
  // Every raw point is either in a window or counted late: the counters explain the output.
  EXPECT_EQ(d["points_in"].get<int64_t>() + d["points_late"].get<int64_t>(), total);
  // Regression: after each step back event time restarts at the first point stamped after it
  // (downsample/downsampler.h, ExpectClockStepBack); before, the ~300 points of both phases
  // after a step back were late (an hour's worth in real life: no rows, no alarms).
  EXPECT_EQ(d["points_late"].get<int64_t>(), 0);
  const std::string log = agent.Log();
  size_t warnings = 0;
  for (size_t at = 0; (at = log.find("event time restarted after the clock step", at)) != std::string::npos; ++at) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 2u) << log;
  EXPECT_EQ(d["points_out"].get<int64_t>(), static_cast<int64_t>(records));
  EXPECT_EQ(agent.Terminate(), 0);
}

}  // namespace
}  // namespace edgeline
