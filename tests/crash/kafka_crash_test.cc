// The Kafka mirror under SIGKILL, with REAL servers (mosquitto, influxd 1.6, librdkafka's mock
// cluster): the fixture trace is published while the agent is killed at seeded random moments,
// 12 times. Claim: every acknowledged message reaches Kafka (at-least-once: the cursor moves
// only on delivery reports, so a kill re-sends what was in flight) and InfluxDB. Records
// duplicated by value are counted and printed, not failed; deduplicated by their edgeline-id
// header (issue 14 item 4), the records are exactly the published points: each once.
#include <atomic>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>
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

// The "generators" topic read back by kcat with each record's edgeline-id header.
struct Tally {
  size_t records = 0;                        // every record read
  size_t without_id = 0;                     // records with no edgeline-id header
  size_t id_conflicts = 0;                   // records whose id an earlier record with another key or value had
  std::map<std::string, std::string> by_id;  // id -> "key@time", first record of each id
  std::set<std::string> trace_points;        // distinct "key@time" of the trace (closing points excluded)
  std::set<std::string> points;              // distinct "key@time", all
};

Tally ReadGenerators(const std::string& bootstrap) {
  Tally t;
  testing::CommandResult r = testing::RunCommand(
      {"kcat", "-C", "-b", bootstrap, "-t", "generators", "-e", "-q", "-f", "%h\t%k\t%s\n"}, {}, 30s);
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    const size_t tab1 = line.find('\t');
    const size_t tab2 = tab1 == std::string::npos ? tab1 : line.find('\t', tab1 + 1);
    if (tab2 == std::string::npos) continue;  // kcat notices (e.g. unknown topic yet)
    auto j = nlohmann::json::parse(line.substr(tab2 + 1), nullptr, false);
    if (j.is_discarded() || !j["time"].is_number_integer()) continue;
    ++t.records;
    const int64_t time = j["time"].get<int64_t>();
    const std::string point = line.substr(tab1 + 1, tab2 - tab1 - 1) + "@" + std::to_string(time);
    t.points.insert(point);
    if (time < testing::kTraceEndNs) t.trace_points.insert(point);
    std::string id;
    std::istringstream headers(line.substr(0, tab1));
    for (std::string h; std::getline(headers, h, ',');) {
      if (h.rfind("edgeline-id=", 0) == 0) id = h.substr(12);
    }
    if (id.empty()) {
      ++t.without_id;
      continue;
    }
    auto [it, fresh] = t.by_id.emplace(id, point);
    if (!fresh && it->second != point) ++t.id_conflicts;
  }
  return t;
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
  Tally got;
  bool all = WaitFor(
      [&] {
        got = ReadGenerators(cluster.bootstrap());
        return got.trace_points == expected;
      },
      90s, 500ms);
  got = ReadGenerators(cluster.bootstrap());
  std::printf(
      "kafka crash: kills=%d points=%zu distinct_in_kafka=%zu records=%zu duplicates=%zu | deduplicated by "
      "edgeline-id: records=%zu re-sends dropped=%zu\n",
      kTrials, expected.size(), got.trace_points.size(), got.records, got.records - got.points.size(), got.by_id.size(),
      got.records - got.by_id.size());
  EXPECT_TRUE(all) << "missing " << expected.size() - got.trace_points.size() << "\n" << agent->Log();
  // Deduplicated by the header: every published point exactly once (none lost, none twice).
  EXPECT_EQ(got.without_id, 0u);
  EXPECT_EQ(got.id_conflicts, 0u);
  EXPECT_EQ(got.by_id.size(), got.points.size());
  std::set<std::string> deduplicated_points;
  for (const auto& [id, point] : got.by_id) deduplicated_points.insert(point);
  EXPECT_EQ(deduplicated_points, got.points);
  EXPECT_TRUE(WaitFor([&] { return influxd.QueryCount("SELECT count(fuel) FROM genData", "kafka") == 402; }, 60s));
  EXPECT_EQ(agent->Terminate(), 0);
}

}  // namespace
}  // namespace edgeline
