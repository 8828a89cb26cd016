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
#include <map>
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

class ExactlyOnce : public ::testing::TestWithParam<int> {};

TEST_P(ExactlyOnce, EveryPublishedMessageStoredOnceAcrossSeededKills) {
  const int qos = GetParam();
  const int trials = static_cast<int>(EnvInt("EDGELINE_EXACTLY_ONCE_TRIALS", 100));
  const auto seed = static_cast<uint32_t>(EnvInt("EDGELINE_EXACTLY_ONCE_SEED", 14)) + static_cast<uint32_t>(qos);
  const int n = static_cast<int>(EnvInt("EDGELINE_EXACTLY_ONCE_MESSAGES", 5000));
  const int max_run_ms = static_cast<int>(EnvInt("EDGELINE_EXACTLY_ONCE_MAX_RUN_MS", 400));
  ASSERT_GT(trials, 0);
  ASSERT_GT(n, 0);
  const auto t0 = std::chrono::steady_clock::now();

  testing::Mosquitto mosquitto;  // max_inflight_messages 100, max_queued_messages 1000000
  const std::string dir = testing::MakeTempDir("edgeline-exactly-once");
  const std::string queue_path = dir + "/queue.db";
  const std::string log_path = dir + "/agent.log";
  const std::string client_id = "edgeline-eo-qos" + std::to_string(qos);
  const std::map<std::string, std::string> env = {
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
  const std::string status_topic = "edgeline/" + client_id + "/status";
  testing::Subscriber watch(mosquitto.url(), "eo-watch-qos" + std::to_string(qos), status_topic);
  auto start_agent = [&] {
    std::filesystem::remove(log_path);  // one run's log: tells whether it got past start-up
    return std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, log_path);
  };
  // The first run creates the persistent session (subscribed before "online" is published):
  // from then on the broker keeps the session's messages while the agent is down.
  auto agent = start_agent();
  ASSERT_TRUE(WaitFor([&] { return watch.Last(status_topic) == "online"; }, 20s)) << agent->Log();

  // The publisher, at the subscription's QoS, is paced by the kill loop: by trial t it may have
  // published (t + 1) / (0.8 * trials) of the messages, so they flow over the first 80% of the
  // kills and the rest hit the redelivery of what is left. Never blocked by the agent: the
  // broker queues for the session.
  std::atomic<int> trial_now{0};
  std::atomic<int> published{0};
  std::thread publisher([&] {
    testing::Publisher pub(mosquitto.url(), "eo-publisher-qos" + std::to_string(qos));
    int next = 0;
    while (next < n) {
      const int64_t allowed =
          std::min<int64_t>(n, (static_cast<int64_t>(trial_now.load()) + 1) * n * 10 / (std::max(1, trials) * 8));
      if (next >= allowed) {
        std::this_thread::sleep_for(5ms);  // waits for the kill loop to move on, not for a result
        continue;
      }
      std::vector<std::pair<std::string, std::string>> chunk;
      for (int i = 0; i < 10 && next < allowed; ++i, ++next) {
        chunk.emplace_back("emergency_generator/eo" + std::to_string(qos),
                           "{\"generatorID\":\"g" + std::to_string(qos) + "\",\"seq\":" + std::to_string(next) +
                               ",\"fuel\":" + std::to_string(next % 97) + "}");
      }
      pub.PublishAll(chunk, qos);  // returns once the broker acknowledged (PUBACK / PUBCOMP) each one
      published = next;
      std::this_thread::sleep_for(5ms);  // pacing of the load
    }
  });

  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> run_ms(0, max_run_ms);
  int connected_kills = 0;  // killed after the MQTT session was up
  int storing_kills = 0;    // ... and the queue had grown during that run
  int64_t stored_before = 0;
  for (int trial = 0; trial < trials; ++trial) {
    trial_now = trial;
    const auto started = std::chrono::steady_clock::now();
    if (trial > 0) agent = start_agent();
    std::this_thread::sleep_until(started + std::chrono::milliseconds(run_ms(rng)));  // the random kill moment
    agent->Kill();
    std::string integrity;
    const int64_t stored = StoredRawPoints(queue_path, &integrity);
    ASSERT_EQ(integrity, "ok") << "after kill #" << trial << "\n" << agent->Log();
    if (agent->Log().find("connected to") != std::string::npos) {
      ++connected_kills;
      if (stored > stored_before) ++storing_kills;
    }
    stored_before = std::max(stored_before, stored);
  }
  trial_now = trials;  // lets the publisher finish
  const double kill_loop_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  publisher.join();
  ASSERT_EQ(published.load(), n);

  // The last run drains what the broker still holds for the session: done when the stored count
  // holds still (for 2 s once it reached N, for 6 s below N: a lost message never comes).
  agent = start_agent();
  int64_t last = -1;
  auto last_change = std::chrono::steady_clock::now();
  const bool settled = WaitFor(
      [&] {
        const int64_t now_stored = StoredRawPoints(queue_path, nullptr);
        const auto now = std::chrono::steady_clock::now();
        if (now_stored != last) {
          last = now_stored;
          last_change = now;
          return false;
        }
        return now - last_change >= (now_stored >= n ? 2s : 6s);
      },
      90s, 200ms);
  EXPECT_TRUE(settled) << "the queue kept growing\n" << agent->Log();
  EXPECT_EQ(agent->Terminate(), 0) << agent->Log();
  EXPECT_EQ(testing::QueueIntegrity(queue_path), "ok");

  const SeqCount count = CountSeqs(queue_path, dir);
  ASSERT_EQ(count.error, "");
  std::vector<int64_t> lost, duplicated, foreign;
  int64_t duplicates = 0;
  for (int s = 0; s < n; ++s) {
    if (!count.per_seq.count(s)) lost.push_back(s);
  }
  for (const auto& [s, times] : count.per_seq) {
    if (s < 0 || s >= n) foreign.push_back(s);
    if (times > 1) {
      duplicated.push_back(s);
      duplicates += times - 1;
    }
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "exactly-once qos=%d: published=%d stored=%lld distinct=%zu lost=%zu duplicates=%lld kills=%d "
      "(after connect %d, while storing %d) seed=%u max_run_ms=%d kill loop %.1f s, total %.1f s\n",
      qos, n, static_cast<long long>(count.lines), count.per_seq.size(), lost.size(),
      static_cast<long long>(duplicates), trials, connected_kills, storing_kills, seed, max_run_ms, kill_loop_s,
      total_s);
  std::fflush(stdout);

  EXPECT_EQ(count.without_seq, 0) << "lines in the raw stream without a seq field";
  EXPECT_TRUE(foreign.empty()) << "seqs never published: " << FirstOf(foreign, 20);
  EXPECT_TRUE(lost.empty()) << lost.size() << " published messages (acknowledged to the publisher) not stored: "
                            << FirstOf(lost, 30);
  EXPECT_EQ(duplicates, 0) << duplicated.size() << " messages stored more than once: " << FirstOf(duplicated, 30);
  EXPECT_EQ(static_cast<int64_t>(count.per_seq.size()), n);
  EXPECT_EQ(count.lines, n);
  // The kills must have landed while messages were flowing, or the test proves nothing.
  EXPECT_GE(storing_kills, trials / 4) << "too few kills landed while the agent was storing messages";
}

INSTANTIATE_TEST_SUITE_P(Qos, ExactlyOnce, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& info) { return "QoS" + std::to_string(info.param); });

}  // namespace
}  // namespace edgeline
