// The crash loop, with REAL servers (mosquitto, influxd 1.6, librdkafka's mock cluster) and the
// real edgeline binary: 200 seeded trials (EDGELINE_CRASHLOOP_TRIALS / _SEED, see
// scripts/crashloop.sh) of "start the agent on the same queue file, let it run 0-300 ms, SIGKILL,
// PRAGMA integrity_check" while a publisher sends the fixture trace, loop after loop, at QoS 1.
// The agent ingests, downsamples (seed preset), replicates raw + downsampled to influxd and
// mirrors raw to Kafka the whole time. After the last kill one agent drains everything. Claims:
// every PUBACKed message is in influxd and in Kafka (exact sets), the downsampled rows are the
// seed task's rows exactly (each window once, none skipped), the queue passes integrity_check
// after every kill, and MQTT redeliveries stay within the broker's in-flight window per kill.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "tests/crash/crash_support.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

// mosquitto's max_inflight_messages in the harness: the most messages that can be committed
// but not yet PUBACKed when the agent dies, so the most the broker can redeliver per kill.
constexpr int64_t kMaxRedeliveriesPerKill = 100;
// The downsampler steps once a second, so it nearly always has raw batches pending; a backlog
// of its own does not make a kill "while replicating".
constexpr const char* kDownsamplerSinkName = "downsampler";

TEST(CrashLoop, AcknowledgedDataSurvivesSeededKillsAcrossIngestDownsampleReplicateAndMirror) {
  const int trials = static_cast<int>(testing::EnvInt("EDGELINE_CRASHLOOP_TRIALS", 200));
  const auto seed = static_cast<uint32_t>(testing::EnvInt("EDGELINE_CRASHLOOP_SEED", 8));
  const auto t0 = std::chrono::steady_clock::now();
  testing::Mosquitto mosquitto;
  testing::Influxd influxd;
  testing::MockCluster cluster;
  influxd.Query("CREATE DATABASE raw");
  influxd.Query("CREATE DATABASE downsampled");
  const std::string dir = testing::MakeTempDir("edgeline-crashloop");
  const std::string queue_path = dir + "/queue.db";
  const std::string log_path = dir + "/agent.log";
  auto env = testing::DownsampleAgentEnv(mosquitto, influxd, queue_path, "raw", "downsampled");
  env["EDGELINE_KAFKA_BROKERS"] = cluster.bootstrap();
  env["EDGELINE_KAFKA_TOPIC_MAP"] = "generators:emergency_generator/.*";
  // Small batches: more commits and acknowledgements in flight, so more moments to die in.
  env["EDGELINE_INFLUX_BATCH_POINTS"] = "50";
  env["EDGELINE_KAFKA_BATCH_POINTS"] = "50";
  const std::string status_topic = "edgeline/edgeline-test/status";
  testing::Subscriber watch(mosquitto.url(), "crashloop-watch", status_topic);
  auto start_agent = [&] {
    std::filesystem::remove(log_path);  // one run's log: tells whether it got past start-up
    return std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, log_path);
  };
  auto agent = start_agent();  // creates the persistent session: from then on the broker keeps our messages
  ASSERT_TRUE(WaitFor([&] { return watch.Last(status_topic) == "online"; }, 20s)) << agent->Log();

  // The publisher: whole loops of the trace, paced, until told to stop; then it finishes its loop.
  std::atomic<bool> stop{false};
  std::atomic<int> loops{0};
  std::mutex acked_mu;
  std::vector<std::string> acked;  // keys of messages whose PUBACK came back
  std::thread publisher([&] {
    testing::Publisher pub(mosquitto.url(), "crashloop-publisher");
    for (int k = 0; !stop; ++k) {
      testing::Messages all = testing::FixtureLoop(k);
      for (size_t i = 0; i < all.size(); i += 10) {
        testing::Messages chunk(all.begin() + i, all.begin() + std::min(all.size(), i + 10));
        pub.PublishAll(chunk);  // returns once the broker acknowledged each one
        std::lock_guard lock(acked_mu);
        for (const auto& [topic, payload] : chunk) acked.push_back(testing::MessageKey(payload));
        std::this_thread::sleep_for(30ms);  // pacing of the load, not a wait for a result
      }
      loops = k + 1;
    }
  });

  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> run_ms(0, 300);
  std::map<std::string, int> kills_by_phase;
  int connected_kills = 0;
  for (int trial = 0; trial < trials; ++trial) {
    auto started = std::chrono::steady_clock::now();
    if (trial > 0) agent = start_agent();
    std::this_thread::sleep_until(started + std::chrono::milliseconds(run_ms(rng)));  // the random kill moment
    agent->Kill();
    testing::QueueLook look = testing::LookAtQueue(queue_path);
    ASSERT_EQ(look.integrity, "ok") << "after kill #" << trial << "\n" << agent->Log();
    // Phase: before the MQTT session was up; with an InfluxDB or Kafka sink behind (sending or
    // about to); or with those caught up (ingest, group commit and the downsampler running).
    std::string phase = "startup";
    if (agent->Log().find("connected to") != std::string::npos) {
      ++connected_kills;
      phase = "ingest";
      for (const auto& [sink, pending] : look.pending) {
        if (pending > 0 && sink != kDownsamplerSinkName) phase = "replicating";
      }
    }
    ++kills_by_phase[phase];
  }
  const double loop_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  publisher.join();
  const int n_loops = loops.load();
  ASSERT_GT(n_loops, 0);
  const int64_t end_ns = testing::kTraceEndNs + (n_loops - 1) * testing::kLoopNs;
  // Closes every window of the last loop on event time.
  testing::Messages closing = testing::ClosingMessages();
  for (auto& [topic, payload] : closing) {
    auto j = nlohmann::json::parse(payload);
    j["ts"] = j["ts"].get<int64_t>() + (n_loops - 1) * testing::kLoopNs;
    payload = j.dump();
  }
  testing::Publisher(mosquitto.url(), "crashloop-closer").PublishAll(closing);

  // The final run drains what the broker and the queue still hold.
  agent = start_agent();
  const std::set<std::string> expected_raw(acked.begin(), acked.end());
  ASSERT_EQ(expected_raw.size(), acked.size()) << "fixture keys must be unique per message";
  const std::vector<std::string> expected_rows = testing::ExpectedDownsampledLoops(n_loops);
  std::set<std::string> raw;
  std::vector<std::string> rows;
  testing::KafkaPoints kafka;
  const bool drained = WaitFor(
      [&] {
        raw = testing::RawKeysInInflux(influxd, "raw", end_ns);
        if (raw.size() < expected_raw.size()) return false;
        rows = testing::RowsInInflux(influxd, "downsampled", testing::kTraceStartNs, end_ns);
        if (rows.size() < expected_rows.size()) return false;
        kafka = testing::KafkaTracePoints(cluster.bootstrap(), "generators", end_ns);
        return kafka.distinct.size() >= expected_raw.size();
      },
      120s, 500ms);
  raw = testing::RawKeysInInflux(influxd, "raw", end_ns);
  rows = testing::RowsInInflux(influxd, "downsampled", testing::kTraceStartNs, end_ns);
  kafka = testing::KafkaTracePoints(cluster.bootstrap(), "generators", end_ns);
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  auto report =
      nlohmann::json::parse(testing::RunCommand({EDGELINE_BINARY, "status", "--json"}, env).output, nullptr, false);
  ASSERT_FALSE(report.is_discarded());
  const auto& d = report["downsample"];
  // The downsampler reads the raw stream exactly once (its cursor and counters commit together),
  // so what it saw is what the queue took in: acknowledged messages plus MQTT redeliveries.
  const int64_t raw_in_queue =
      d["points_in"].get<int64_t>() + d["points_late"].get<int64_t>() + d["points_filtered"].get<int64_t>();
  const int64_t redeliveries = raw_in_queue - static_cast<int64_t>(acked.size() + closing.size());
  std::printf(
      "crashloop: trials=%d seed=%u loops=%d published=%zu acked=%zu raw_in_influxd=%zu downsampled_rows=%zu "
      "(expected %zu) kafka_records=%zu kafka_distinct=%zu kafka_duplicates=%zu queue_points=%lld "
      "mqtt_redeliveries=%lld (%.2f per kill after connect) late=%lld\n",
      trials, seed, n_loops, acked.size(), acked.size(), raw.size(), rows.size(), expected_rows.size(), kafka.records,
      kafka.distinct.size(), kafka.records - kafka.distinct.size(), static_cast<long long>(raw_in_queue),
      static_cast<long long>(redeliveries), connected_kills ? static_cast<double>(redeliveries) / connected_kills : 0.0,
      static_cast<long long>(d["points_late"].get<int64_t>()));
  std::printf("crashloop: kills by phase:");
  for (const auto& [phase, n] : kills_by_phase) std::printf(" %s=%d", phase.c_str(), n);
  std::printf("\ncrashloop: kill loop %.1f s, total %.1f s\n", loop_s, total_s);

  EXPECT_TRUE(drained) << agent->Log();
  auto missing_raw = testing::Missing(expected_raw, raw);
  EXPECT_TRUE(missing_raw.empty()) << missing_raw.size() << " acknowledged messages missing in influxd:\n"
                                   << testing::Join(missing_raw, 20);
  EXPECT_EQ(raw.size(), expected_raw.size()) << "points in influxd that were never published";
  EXPECT_EQ(rows, expected_rows);
  auto missing_kafka = testing::Missing(expected_raw, kafka.distinct);
  EXPECT_TRUE(missing_kafka.empty()) << missing_kafka.size() << " acknowledged messages missing in Kafka:\n"
                                     << testing::Join(missing_kafka, 20);
  EXPECT_EQ(kafka.distinct.size(), expected_raw.size());
  EXPECT_GE(redeliveries, 0);
  EXPECT_LE(redeliveries, kMaxRedeliveriesPerKill * connected_kills);
  EXPECT_EQ(d["points_out"].get<int64_t>(), static_cast<int64_t>(expected_rows.size()))
      << "a window was emitted twice or skipped";
  EXPECT_EQ(agent->Terminate(), 0);
  EXPECT_EQ(testing::LookAtQueue(queue_path).integrity, "ok");
}

}  // namespace
}  // namespace edgeline
