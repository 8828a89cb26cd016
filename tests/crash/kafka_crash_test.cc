// The Kafka mirror under SIGKILL, with REAL servers (mosquitto, influxd 1.6, librdkafka's mock
// cluster): the fixture trace is published while the agent is killed at seeded random moments,
// 12 times. Claim: every acknowledged message reaches Kafka (at-least-once: the cursor moves
// only on delivery reports, so a kill re-sends what was in flight) and InfluxDB. Duplicates are
// counted and printed, not failed.
#include <atomic>
#include <cstdio>
#include <random>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "tests/integration/downsample_support.h"
#include "tests/support/kafka_mock.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

constexpr int kTrials = 12;
constexpr uint32_t kSeed = 4;

// Distinct raw points of the trace in the topic, and the number of records read.
std::set<std::string> TracePoints(const std::string& bootstrap, size_t* records) {
  std::set<std::string> out;
  *records = 0;
  for (const auto& [key, value] : testing::ReadKafkaTopic(bootstrap, "generators")) {
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (j.is_discarded() || j["time"].get<int64_t>() >= testing::kTraceEndNs) continue;
    ++*records;
    out.insert(key + "@" + std::to_string(j["time"].get<int64_t>()));
  }
  return out;
}

TEST(KafkaCrash, EveryAcknowledgedMessageReachesKafkaAcrossRandomKills) {
  testing::Mosquitto mosquitto;
  testing::Influxd influxd;
  testing::MockCluster cluster;
  influxd.Query("CREATE DATABASE kafka");
  influxd.Query("CREATE DATABASE kafka_downsampled");
  const std::string dir = testing::MakeTempDir("edgeline-kafka-crash");
  auto env = testing::DownsampleAgentEnv(mosquitto, influxd, dir + "/queue.db", "kafka", "kafka_downsampled");
  env["EDGELINE_KAFKA_BROKERS"] = cluster.bootstrap();
  env["EDGELINE_KAFKA_TOPIC_MAP"] = "generators:emergency_generator/.*";
  env["EDGELINE_KAFKA_BATCH_POINTS"] = "20";  // small in-flight windows: more moments to be killed in
  const std::string status_topic = "edgeline/edgeline-test/status";
  testing::Subscriber watch(mosquitto.url(), "crash-watch", status_topic);
  auto start_agent = [&] {
    return std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env,
                                              dir + "/agent.log");
  };
  auto agent = start_agent();
  ASSERT_TRUE(WaitFor([&] { return watch.Last(status_topic) == "online"; }, 20s)) << agent->Log();

  std::thread publisher([&] {
    testing::Publisher pub(mosquitto.url(), "crash-publisher");
    testing::Messages all = testing::TimestampedFixture();
    for (size_t i = 0; i < all.size(); i += 5) {
      pub.PublishAll(testing::Messages(all.begin() + i, all.begin() + std::min(all.size(), i + 5)));
      std::this_thread::sleep_for(40ms);  // spreads the trace over the kills; not a wait for a result
    }
    pub.PublishAll(testing::ClosingMessages());
  });
  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<int> kill_after_ms(50, 500);
  for (int trial = 0; trial < kTrials; ++trial) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms(rng)));  // the random kill moment
    agent->Kill();
    agent = start_agent();
  }
  publisher.join();

  std::set<std::string> expected;
  for (const auto& line : testing::ReadFixtureLines("generators_raw.lp")) {
    auto p = ParseLine(line);
    expected.insert(line.substr(0, line.find(' ')) + "@" + std::to_string(*p->timestamp_ns));
  }
  size_t records = 0;
  bool all = WaitFor([&] { return TracePoints(cluster.bootstrap(), &records) == expected; }, 90s, 500ms);
  std::set<std::string> got = TracePoints(cluster.bootstrap(), &records);
  std::printf("kafka crash: kills=%d points=%zu distinct_in_kafka=%zu records=%zu duplicates=%zu\n", kTrials,
              expected.size(), got.size(), records, records - got.size());
  EXPECT_TRUE(all) << "missing " << expected.size() - got.size() << "\n" << agent->Log();
  EXPECT_TRUE(WaitFor([&] { return influxd.QueryCount("SELECT count(fuel) FROM genData", "kafka") == 402; }, 60s));
  EXPECT_EQ(agent->Terminate(), 0);
}

}  // namespace
}  // namespace edgeline
