// Exactly once from the broker into the queue (issue 14), proved by killing, with REAL mosquitto
// and the real edgeline binary. For subscription QoS 1 and QoS 2: a publisher at the same QoS
// sends N messages, each with a unique integer "seq", while the agent (fixed client id, so its
// persistent session survives) is started and SIGKILLed at seeded random moments, PRAGMA
// integrity_check after every kill. The InfluxDB sink points at a closed port, so every stored
// line stays in the queue file. After the last kill one agent drains the broker; then the raw
// stream is read back through the Queue API and counted per seq.
// Claims: distinct seqs stored == N (none lost: QoS 2 must not PUBREC what it has not stored)
// and stored lines == N (no duplicate: a QoS 1 redelivery of a stored message is not stored
// again). EDGELINE_EXACTLY_ONCE_TRIALS (kills per QoS), _SEED, _MESSAGES and _MAX_RUN_MS scale
// it for long runs (scripts/crashloop.sh).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <ostream>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "storage/queue.h"
#include "tests/support/harness.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : fallback;
}

// Points of the raw stream the queue holds (the only raw consumer, the InfluxDB sink, never
// acknowledges anything: its server is a closed port), read-only; -1 when unreadable.
int64_t StoredRawPoints(const std::string& queue_path, std::string* integrity) {
  QueueOpenOptions o;
  o.config.path = queue_path;
  o.read_only = true;
  auto q = OpenSqliteQueue(o);
  if (!q.ok()) {
    if (integrity) *integrity = q.status().ToString();
    return -1;
  }
  if (integrity) {
    auto r = (*q)->IntegrityCheck();
    *integrity = r.ok() ? *r : r.status().ToString();
  }
  auto sinks = (*q)->SinkStatuses();
  if (!sinks.ok()) return -1;
  int64_t points = 0;
  for (const SinkStatus& s : *sinks) {
    if (s.stream == kRawStream) points = std::max(points, s.pending_points);
  }
  return points;
}

// Every line of the raw stream, counted per "seq" field. Reads a copy of the (closed) queue
// file through the Queue API with a consumer of its own, so the file itself is left as it was.
struct SeqCount {
  std::map<int64_t, int> per_seq;
  int64_t lines = 0;
  int64_t without_seq = 0;
  std::string error;
};
SeqCount CountSeqs(const std::string& queue_path, const std::string& scratch_dir) {
  SeqCount out;
  const std::string copy = scratch_dir + "/count.db";
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    std::filesystem::remove(copy + suffix, ec);
    if (std::filesystem::exists(queue_path + suffix)) {
      std::filesystem::copy_file(queue_path + suffix, copy + suffix, ec);
      if (ec) out.error = "copy " + queue_path + suffix + ": " + ec.message();
    }
  }
  if (!out.error.empty()) return out;
  QueueOpenOptions o;
  o.config.path = copy;
  auto q = OpenSqliteQueue(o);
  if (!q.ok()) {
    out.error = q.status().ToString();
    return out;
  }
  const std::string sink = "exactly-once-count";
  if (Status st = (*q)->RegisterConsumer(sink, std::string(kRawStream)); !st.ok()) {
    out.error = st.ToString();
    return out;
  }
  static const std::regex kSeq("[ ,]seq=([0-9]+)");
  while (true) {
    auto batches = (*q)->Read(sink, 1'000'000);
    if (!batches.ok()) {
      out.error = batches.status().ToString();
      return out;
    }
    if (batches->empty()) break;
    for (const Batch& b : *batches) {
      for (const std::string& line : b.lines) {
        ++out.lines;
        std::smatch m;
        if (std::regex_search(line, m, kSeq)) {
          ++out.per_seq[std::strtoll(m[1].str().c_str(), nullptr, 10)];
        } else {
          ++out.without_seq;
        }
      }
    }
    if (Status st = (*q)->Ack(sink, batches->back().seq, SinkAttempt{}, {}); !st.ok()) {
      out.error = st.ToString();
      return out;
    }
  }
  return out;
}

std::string FirstOf(const std::vector<int64_t>& v, size_t max) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) out += (i ? " " : "") + std::to_string(v[i]);
  if (v.size() > max) out += " ... (" + std::to_string(v.size() - max) + " more)";
  return out;
}

// One crash run's settings, from the environment (scripts/crashloop.sh) or the CI defaults.
struct LoopSettings {
  int qos = 1;
  int trials = 100;  // kills
  uint32_t seed = 14;
  int messages = 5000;
  int max_run_ms = 400;  // each run lives a uniform [0, max_run_ms] before its SIGKILL
};
LoopSettings Settings(int qos, int default_trials) {
  LoopSettings s;
  s.qos = qos;
  s.trials = static_cast<int>(EnvInt("EDGELINE_EXACTLY_ONCE_TRIALS", default_trials));
  s.seed = static_cast<uint32_t>(EnvInt("EDGELINE_EXACTLY_ONCE_SEED", 14)) + static_cast<uint32_t>(qos);
  s.messages = static_cast<int>(EnvInt("EDGELINE_EXACTLY_ONCE_MESSAGES", 5000));
  s.max_run_ms = static_cast<int>(EnvInt("EDGELINE_EXACTLY_ONCE_MAX_RUN_MS", 400));
  return s;
}

struct LoopOutcome {
  int connected_kills = 0;  // killed after the MQTT session was up
  int storing_kills = 0;    // ... and the raw backlog had grown during that run
  double kill_loop_s = 0;
};

// The seeded kill loop, with the publisher running. The agent (already started by the caller,
// its session created) is killed `trials` times at random moments and started again in between,
// PRAGMA integrity_check after every kill (failures are reported through gtest; check
// HasFatalFailure). Returns with the agent killed and every message PUBACKed/PUBCOMPed to the
// publisher. The publisher, at the subscription's QoS, is paced by the kill loop: by trial t it
// may have published (t + 1) / (0.8 * trials) of the messages, so they flow over the first 80% of
// the kills and the rest hit the redelivery of what is left. The agent never blocks it: the
// broker queues for the persistent session.
LoopOutcome KillLoop(const LoopSettings& s, const testing::Mosquitto& mosquitto,
                     const std::function<std::unique_ptr<testing::Process>()>& start_agent,
                     std::unique_ptr<testing::Process>& agent, const std::string& queue_path,
                     const std::function<std::string(int)>& payload) {
  LoopOutcome out;
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<int> trial_now{0};
  std::atomic<int> published{0};
  std::thread publisher([&] {
    testing::Publisher pub(mosquitto.url(), "eo-publisher-qos" + std::to_string(s.qos));
    int next = 0;
    while (next < s.messages) {
      const int64_t allowed = std::min<int64_t>(
          s.messages, (static_cast<int64_t>(trial_now.load()) + 1) * s.messages * 10 / (std::max(1, s.trials) * 8));
      if (next >= allowed) {
        std::this_thread::sleep_for(5ms);  // waits for the kill loop to move on, not for a result
        continue;
      }
      std::vector<std::pair<std::string, std::string>> chunk;
      for (int i = 0; i < 10 && next < allowed; ++i, ++next) {
        chunk.emplace_back("emergency_generator/eo" + std::to_string(s.qos), payload(next));
      }
      pub.PublishAll(chunk, s.qos);  // returns once the broker acknowledged (PUBACK / PUBCOMP) each one
      published = next;
      std::this_thread::sleep_for(5ms);  // pacing of the load
    }
  });

  std::mt19937 rng(s.seed);
  std::uniform_int_distribution<int> run_ms(0, s.max_run_ms);
  int64_t stored_before = 0;
  for (int trial = 0; trial < s.trials; ++trial) {
    trial_now = trial;
    const auto started = std::chrono::steady_clock::now();
    if (trial > 0) agent = start_agent();
    std::this_thread::sleep_until(started + std::chrono::milliseconds(run_ms(rng)));  // the random kill moment
    agent->Kill();
    std::string integrity;
    const int64_t stored = StoredRawPoints(queue_path, &integrity);
    EXPECT_EQ(integrity, "ok") << "after kill #" << trial << "\n" << agent->Log();
    if (integrity != "ok") break;
    if (agent->Log().find("connected to") != std::string::npos) {
      ++out.connected_kills;
      if (stored > stored_before) ++out.storing_kills;
    }
    stored_before = stored;
  }
  trial_now = s.trials;  // lets the publisher finish
  out.kill_loop_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  publisher.join();
  EXPECT_EQ(published.load(), s.messages);
  return out;
}

// The agent's environment without a reachable sink: `influx_url` nobody listens on.
std::map<std::string, std::string> QueueOnlyEnv(const testing::Mosquitto& mosquitto, const std::string& client_id,
                                                int qos, const std::string& queue_path) {
  return {
      {"EDGELINE_MQTT_URL", mosquitto.url()},
      {"EDGELINE_MQTT_CLIENT_ID", client_id},  // fixed: the persistent session outlives each run
      {"EDGELINE_MQTT_QOS", std::to_string(qos)},
      {"EDGELINE_MQTT_RECONNECT_MIN", "1s"},
      {"EDGELINE_MQTT_RECONNECT_MAX", "2s"},
      {"EDGELINE_MQTT_KEEPALIVE", "5s"},
      {"EDGELINE_QUEUE_PATH", queue_path},
      // Nobody listens there: the sink retries forever and every stored line stays queued.
      {"EDGELINE_INFLUX_URL", "http://127.0.0.1:" + std::to_string(testing::FreePort())},
      {"EDGELINE_INFLUX_API", "v1"},
      {"EDGELINE_INFLUX_DB", "unreachable"},
      {"EDGELINE_RETRY_MIN", "100ms"},
      {"EDGELINE_RETRY_MAX", "1s"},
      {"EDGELINE_LOG_LEVEL", "info"},
      {"EDGELINE_HTTP_LISTEN", "127.0.0.1:0"},
  };
}

// Waits until `measure` has held still for `quiet_done` once it reached `target`, or for
// `quiet_short` below it (what was lost never comes). False when it kept changing.
bool WaitUntilStill(const std::function<int64_t()>& measure, int64_t target, std::chrono::milliseconds quiet_done,
                    std::chrono::milliseconds quiet_short, std::chrono::milliseconds timeout) {
  int64_t last = -1;
  auto last_change = std::chrono::steady_clock::now();
  return WaitFor(
      [&] {
        const int64_t v = measure();
        const auto now = std::chrono::steady_clock::now();
        if (v != last) {
          last = v;
          last_change = now;
          return false;
        }
        return now - last_change >= (v >= target ? quiet_done : quiet_short);
      },
      timeout, 200ms);
}

class ExactlyOnce : public ::testing::TestWithParam<int> {};

TEST_P(ExactlyOnce, EveryPublishedMessageStoredOnceAcrossSeededKills) {
  const LoopSettings s = Settings(GetParam(), 100);
  const int n = s.messages;
  ASSERT_GT(s.trials, 0);
  ASSERT_GT(n, 0);
  const auto t0 = std::chrono::steady_clock::now();

  testing::Mosquitto mosquitto;  // max_inflight_messages 100, max_queued_messages 1000000
  const std::string dir = testing::MakeTempDir("edgeline-exactly-once");
  const std::string queue_path = dir + "/queue.db";
  const std::string log_path = dir + "/agent.log";
  const std::string client_id = "edgeline-eo-qos" + std::to_string(s.qos);
  const auto env = QueueOnlyEnv(mosquitto, client_id, s.qos, queue_path);
  const std::string status_topic = "edgeline/" + client_id + "/status";
  testing::Subscriber watch(mosquitto.url(), "eo-watch-qos" + std::to_string(s.qos), status_topic);
  auto start_agent = [&] {
    std::filesystem::remove(log_path);  // one run's log: tells whether it got past start-up
    return std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, log_path);
  };
  // The first run creates the persistent session (subscribed before "online" is published):
  // from then on the broker keeps the session's messages while the agent is down.
  auto agent = start_agent();
  ASSERT_TRUE(WaitFor([&] { return watch.Last(status_topic) == "online"; }, 20s)) << agent->Log();

  const LoopOutcome loop = KillLoop(s, mosquitto, start_agent, agent, queue_path, [&](int seq) {
    return "{\"generatorID\":\"g" + std::to_string(s.qos) + "\",\"seq\":" + std::to_string(seq) +
           ",\"fuel\":" + std::to_string(seq % 97) + "}";
  });
  if (HasFatalFailure() || HasFailure()) return;

  // The last run drains what the broker still holds for the session: done when the stored count
  // holds still (for 2 s once it reached N, for 6 s below N).
  agent = start_agent();
  const bool settled = WaitUntilStill([&] { return StoredRawPoints(queue_path, nullptr); }, n, 2s, 6s, 90s);
  EXPECT_TRUE(settled) << "the queue kept growing\n" << agent->Log();
  EXPECT_EQ(agent->Terminate(), 0) << agent->Log();
  EXPECT_EQ(testing::QueueIntegrity(queue_path), "ok");

  const SeqCount count = CountSeqs(queue_path, dir);
  ASSERT_EQ(count.error, "");
  std::vector<int64_t> lost, duplicated, foreign;
  int64_t duplicates = 0;
  for (int seq = 0; seq < n; ++seq) {
    if (!count.per_seq.count(seq)) lost.push_back(seq);
  }
  for (const auto& [seq, times] : count.per_seq) {
    if (seq < 0 || seq >= n) foreign.push_back(seq);
    if (times > 1) {
      duplicated.push_back(seq);
      duplicates += times - 1;
    }
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "exactly-once qos=%d: published=%d stored=%lld distinct=%zu lost=%zu duplicates=%lld kills=%d "
      "(after connect %d, while storing %d) seed=%u max_run_ms=%d kill loop %.1f s, total %.1f s\n",
      s.qos, n, static_cast<long long>(count.lines), count.per_seq.size(), lost.size(),
      static_cast<long long>(duplicates), s.trials, loop.connected_kills, loop.storing_kills, s.seed, s.max_run_ms,
      loop.kill_loop_s, total_s);
  std::fflush(stdout);

  EXPECT_EQ(count.without_seq, 0) << "lines in the raw stream without a seq field";
  EXPECT_TRUE(foreign.empty()) << "seqs never published: " << FirstOf(foreign, 20);
  EXPECT_TRUE(lost.empty()) << lost.size()
                            << " published messages (acknowledged to the publisher) not stored: " << FirstOf(lost, 30);
  EXPECT_EQ(duplicates, 0) << duplicated.size() << " messages stored more than once: " << FirstOf(duplicated, 30);
  EXPECT_EQ(static_cast<int64_t>(count.per_seq.size()), n);
  EXPECT_EQ(count.lines, n);
  // The kills must have landed while messages were flowing, or the test proves nothing.
  EXPECT_GE(loop.storing_kills, s.trials / 5) << "too few kills landed while the agent was storing messages";
}

// End to end with influxd 1.6 as the sink and the seed downsampling preset, windows of 5 s on
// the messages' own event time ("ts": seq * 10 ms after an aligned start, so window w holds
// seqs [500w, 500w + 500)) and "seq" counted per window ("last,seq=count"). After the kills
// influxd must hold exactly the published points, and each window's row must be exact: the
// `last` fuel and time of its highest seq, and the `count` of its seqs (a duplicate stored
// twice counts twice there, though influxd's raw points dedupe on the timestamp).
constexpr int64_t kEventStartNs = 1764000000'000'000'000;  // on a 5 s boundary
constexpr int64_t kEventStepNs = 10'000'000;               // 10 ms per seq
constexpr int64_t kWindowNs = 5'000'000'000;

struct WindowRow {
  int64_t time_ns = 0;
  double fuel = 0;
  double count = 0;
  auto operator<=>(const WindowRow&) const = default;
};

void PrintTo(const WindowRow& r, std::ostream* os) {
  *os << "@" << r.time_ns << " fuel=" << r.fuel << " count=" << r.count;
}

class ExactlyOnceInflux : public ::testing::TestWithParam<int> {};

TEST_P(ExactlyOnceInflux, InfluxdHoldsEachPublishedPointOnceAndWindowsAreExact) {
  const LoopSettings s = Settings(GetParam(), 50);
  const int n = s.messages;
  ASSERT_GT(s.trials, 0);
  ASSERT_GT(n, 0);
  const auto t0 = std::chrono::steady_clock::now();

  testing::Mosquitto mosquitto;
  testing::Influxd influxd;
  influxd.Query("CREATE DATABASE raw");
  influxd.Query("CREATE DATABASE downsampled");
  const std::string dir = testing::MakeTempDir("edgeline-exactly-once-influx");
  const std::string queue_path = dir + "/queue.db";
  const std::string log_path = dir + "/agent.log";
  const std::string client_id = "edgeline-eo-influx-qos" + std::to_string(s.qos);
  const std::string generator = "e" + std::to_string(s.qos);
  auto env = QueueOnlyEnv(mosquitto, client_id, s.qos, queue_path);
  env["EDGELINE_INFLUX_URL"] = influxd.url();
  env["EDGELINE_INFLUX_DB"] = "raw";
  env["EDGELINE_INFLUX_BATCH_POINTS"] = "50";  // many small acks: more moments to die in
  env["EDGELINE_DOWNSAMPLE_PRESET"] = "seed";
  env["EDGELINE_DOWNSAMPLE_BUCKET"] = "downsampled";
  env["EDGELINE_DOWNSAMPLE_EVERY"] = "5s";
  env["EDGELINE_DOWNSAMPLE_AGGREGATE"] = "last,seq=count";
  env["EDGELINE_DOWNSAMPLE_LATENESS"] = "5s";     // 500 seqs: far more than the broker's in-flight window
  env["EDGELINE_DOWNSAMPLE_IDLE_TIMEOUT"] = "0";  // windows close on event time only
  env["EDGELINE_JSON_TIME_KEY"] = "ts";
  env["EDGELINE_JSON_TIME_FORMAT"] = "ns";
  const std::string status_topic = "edgeline/" + client_id + "/status";
  testing::Subscriber watch(mosquitto.url(), "eo-influx-watch-qos" + std::to_string(s.qos), status_topic);
  auto start_agent = [&] {
    std::filesystem::remove(log_path);
    return std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, log_path);
  };
  auto agent = start_agent();  // creates the persistent session
  ASSERT_TRUE(WaitFor([&] { return watch.Last(status_topic) == "online"; }, 20s)) << agent->Log();

  const LoopOutcome loop = KillLoop(s, mosquitto, start_agent, agent, queue_path, [&](int seq) {
    return "{\"generatorID\":\"" + generator + "\",\"seq\":" + std::to_string(seq) +
           ",\"fuel\":" + std::to_string(seq % 97) + ",\"ts\":" + std::to_string(kEventStartNs + seq * kEventStepNs) +
           "}";
  });
  if (HasFatalFailure() || HasFailure()) return;
  // Another generator a minute after the last seq: its event time closes every window.
  const int64_t close_ns = kEventStartNs + n * kEventStepNs + 60'000'000'000;
  testing::Publisher(mosquitto.url(), "eo-influx-closer")
      .PublishAll({{"emergency_generator/closer",
                    "{\"generatorID\":\"closer\",\"fuel\":1000,\"ts\":" + std::to_string(close_ns) + "}"}},
                  s.qos);

  std::vector<WindowRow> expected;
  for (int first = 0; first < n; first += static_cast<int>(kWindowNs / kEventStepNs)) {
    const int last = std::min<int>(n, first + static_cast<int>(kWindowNs / kEventStepNs)) - 1;
    expected.push_back(
        {kEventStartNs + last * kEventStepNs, static_cast<double>(last % 97), static_cast<double>(last - first + 1)});
  }
  const std::string where = " WHERE generatorID='" + generator + "'";
  auto raw_count = [&] { return influxd.QueryCount("SELECT count(seq) FROM genData" + where, "raw"); };
  auto rows_in_influx = [&] {
    std::vector<WindowRow> rows;
    auto r = influxd.Query("SELECT fuel, seq FROM genData" + where, "downsampled");
    const auto& series = r["results"][0]["series"];
    if (!series.is_array()) return rows;
    for (const auto& row : series[0]["values"]) {
      if (row[1].is_number() && row[2].is_number()) {
        rows.push_back({row[0].get<int64_t>(), row[1].get<double>(), row[2].get<double>()});
      }
    }
    return rows;
  };

  // The last run drains the broker, replicates and closes every window.
  agent = start_agent();
  const int64_t target = static_cast<int64_t>(n) * 1000 + static_cast<int64_t>(expected.size());
  const bool settled = WaitUntilStill(
      [&] { return raw_count() * 1000 + static_cast<int64_t>(rows_in_influx().size()); }, target, 2s, 8s, 120s);
  const int64_t points = raw_count();
  const int64_t distinct = influxd.QueryCount("SELECT count(distinct(seq)) FROM genData" + where, "raw");
  const std::vector<WindowRow> rows = rows_in_influx();
  double counted = 0;
  for (const auto& r : rows) counted += r.count;
  auto report =
      nlohmann::json::parse(testing::RunCommand({EDGELINE_BINARY, "status", "--json"}, env).output, nullptr, false);
  ASSERT_FALSE(report.is_discarded());
  const auto& d = report["downsample"];
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "exactly-once influx qos=%d: published=%d raw_points=%lld raw_distinct=%lld windows=%zu (expected %zu) "
      "sum_of_window_counts=%.0f points_in=%lld late=%lld rows_out=%lld kills=%d (after connect %d) seed=%u "
      "kill loop %.1f s, total %.1f s\n",
      s.qos, n, static_cast<long long>(points), static_cast<long long>(distinct), rows.size(), expected.size(), counted,
      static_cast<long long>(d.value("points_in", int64_t{-1})),
      static_cast<long long>(d.value("points_late", int64_t{-1})),
      static_cast<long long>(d.value("points_out", int64_t{-1})), s.trials, loop.connected_kills, s.seed,
      loop.kill_loop_s, total_s);
  std::fflush(stdout);

  EXPECT_TRUE(settled) << agent->Log();
  EXPECT_EQ(distinct, n) << "published points missing in influxd";
  EXPECT_EQ(points, n) << "points in influxd that were never published";
  EXPECT_EQ(counted, n) << "the windows' counts add up to another number than the messages published";
  EXPECT_EQ(rows, expected) << "the downsampled rows (last fuel and time, count of seq per 5 s window)";
  EXPECT_EQ(d.value("points_out", int64_t{-1}), static_cast<int64_t>(expected.size()))
      << "a window was emitted twice or skipped";
  EXPECT_EQ(d.value("points_late", int64_t{-1}), 0);
  EXPECT_EQ(agent->Terminate(), 0);
  EXPECT_EQ(testing::QueueIntegrity(queue_path), "ok");
}

INSTANTIATE_TEST_SUITE_P(Qos, ExactlyOnceInflux, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& info) { return "QoS" + std::to_string(info.param); });

INSTANTIATE_TEST_SUITE_P(Qos, ExactlyOnce, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& info) { return "QoS" + std::to_string(info.param); });

}  // namespace
}  // namespace edgeline
