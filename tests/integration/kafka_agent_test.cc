// The Kafka mirror inside the agent, with REAL servers: mosquitto -> edgeline (the binary) ->
// influxd 1.6 and librdkafka's mock cluster (3 brokers, own process), read back with kcat.
// Checks every raw and downsampled record (topic, key, value), and that Kafka being down never
// blocks InfluxDB and InfluxDB being down never blocks Kafka.
#include <map>
#include <set>

#include "gtest/gtest.h"
#include "tests/integration/downsample_support.h"
#include "tests/support/kafka_mock.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

// A record value (JSON) as the canonical point text of downsample_support.h, or "" if unreadable.
std::string CanonicalRecord(const std::string& value) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (j.is_discarded()) return "";
  Point p;
  p.measurement = j.value("measurement", "");
  for (auto& [k, v] : j["tags"].items()) p.tags.emplace_back(k, v.get<std::string>());
  for (auto& [k, v] : j["fields"].items()) {
    FieldValue f;
    if (v.is_string()) {
      f.type = FieldType::kString;
      f.s = v.get<std::string>();
    } else {
      f.f = v.get<double>();
    }
    p.fields.emplace_back(k, f);
  }
  p.timestamp_ns = j["time"].get<int64_t>();
  return testing::CanonicalWithTime(p);
}

std::multiset<std::string> ExpectedRaw() {
  std::multiset<std::string> out;
  for (const auto& line : testing::ReadFixtureLines("generators_raw.lp")) {
    out.insert(testing::CanonicalWithTime(*ParseLine(line)));
  }
  return out;
}

// Records of `topic` from the fixture trace (closing messages excluded), as canonical points;
// `keys_ok` is false when a record's key is not its series key.
std::multiset<std::string> TraceRecords(const std::string& bootstrap, const std::string& topic, bool* keys_ok) {
  std::multiset<std::string> out;
  for (const auto& [key, value] : testing::ReadKafkaTopic(bootstrap, topic)) {
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (j.is_discarded() || j["time"].get<int64_t>() >= testing::kTraceEndNs) continue;
    std::string series = j["measurement"].get<std::string>();
    std::map<std::string, std::string> tags;
    for (auto& [k, v] : j["tags"].items()) tags[k] = v.get<std::string>();
    for (const auto& [k, v] : tags) series += "," + k + "=" + v;
    if (key != series) *keys_ok = false;
    out.insert(CanonicalRecord(value));
  }
  return out;
}

std::multiset<std::string> Distinct(const std::multiset<std::string>& s) {
  std::set<std::string> unique(s.begin(), s.end());
  return std::multiset<std::string>(unique.begin(), unique.end());
}

class KafkaAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    influxd_.Query("CREATE DATABASE kafka");
    influxd_.Query("CREATE DATABASE kafka_downsampled");
    dir_ = testing::MakeTempDir("edgeline-kafka-agent");
    env_ = testing::DownsampleAgentEnv(mosquitto_, influxd_, dir_ + "/queue.db", "kafka", "kafka_downsampled");
    env_["EDGELINE_KAFKA_BROKERS"] = cluster_.bootstrap();
    env_["EDGELINE_KAFKA_TOPIC_MAP"] = "generators:emergency_generator/.*";
    env_["EDGELINE_KAFKA_PROP_MESSAGE_TIMEOUT_MS"] = "5000";  // exercise the mirror's own retry
  }
  std::unique_ptr<testing::Process> StartAgent() {
    auto agent =
        std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env_, dir_ + "/agent.log");
    EXPECT_TRUE(WaitFor([&] { return status_.Last("edgeline/edgeline-test/status") == "online"; }, 20s))
        << agent->Log();
    return agent;
  }
  nlohmann::json Status() {
    return nlohmann::json::parse(testing::RunCommand({EDGELINE_BINARY, "status", "--json"}, env_).output);
  }
  nlohmann::json Sink(const std::string& name) {
    const nlohmann::json status = Status();  // kept: ranging over Status()["sinks"] would dangle
    for (const auto& s : status["sinks"]) {
      if (s["name"] == name) return s;
    }
    return {};
  }

  testing::Mosquitto mosquitto_;
  testing::Influxd influxd_;
  testing::MockCluster cluster_;
  testing::Subscriber status_{mosquitto_.url(), "status-watch", "edgeline/edgeline-test/status"};
  std::string dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(KafkaAgentTest, EveryRawAndDownsampledRecordWithTheRightTopicKeyAndValue) {
  auto agent = StartAgent();
  testing::Publisher publisher(mosquitto_.url(), "fixture-publisher");
  publisher.PublishAll(testing::TimestampedFixture());
  publisher.PublishAll(testing::ClosingMessages());
  const std::multiset<std::string> raw = ExpectedRaw();
  const std::vector<std::string> down_list = testing::ExpectedDownsampled();
  const std::multiset<std::string> down(down_list.begin(), down_list.end());
  bool keys_ok = true;
  EXPECT_TRUE(WaitFor([&] { return TraceRecords(cluster_.bootstrap(), "generators", &keys_ok).size() >= raw.size(); },
                      60s, 500ms))
      << agent->Log();
  EXPECT_TRUE(
      WaitFor([&] { return TraceRecords(cluster_.bootstrap(), "EGkafka_downsampled", &keys_ok).size() >= down.size(); },
              60s, 500ms))
      << agent->Log();
  EXPECT_EQ(TraceRecords(cluster_.bootstrap(), "generators", &keys_ok), raw);
  EXPECT_EQ(TraceRecords(cluster_.bootstrap(), "EGkafka_downsampled", &keys_ok), down);
  EXPECT_TRUE(keys_ok);
  EXPECT_TRUE(WaitFor([&] { return Sink("kafka-raw")["pending_points"] == 0; }, 20s));
  EXPECT_EQ(Sink("kafka-raw")["state"], "ok");
  EXPECT_EQ(Sink("kafka-downsampled")["state"], "ok");
  EXPECT_EQ(agent->Terminate(), 0);
}

TEST_F(KafkaAgentTest, KafkaDownNeverBlocksInfluxAndInfluxDownNeverBlocksKafka) {
  testing::Messages trace = testing::TimestampedFixture();
  const testing::Messages first(trace.begin(), trace.begin() + 200);
  const testing::Messages second(trace.begin() + 200, trace.end());
  auto agent = StartAgent();
  testing::Publisher publisher(mosquitto_.url(), "fixture-publisher");

  cluster_.Command("down");
  publisher.PublishAll(first);
  EXPECT_TRUE(WaitFor([&] { return influxd_.QueryCount("SELECT count(fuel) FROM genData", "kafka") == 200; }, 30s))
      << agent->Log();
  EXPECT_GT(Sink("kafka-raw")["pending_points"].get<int64_t>(), 0);  // held for Kafka, not lost

  cluster_.Command("up");
  influxd_.Stop();
  publisher.PublishAll(second);
  publisher.PublishAll(testing::ClosingMessages());
  bool keys_ok = true;
  const std::multiset<std::string> raw = ExpectedRaw();
  EXPECT_TRUE(
      WaitFor([&] { return Distinct(TraceRecords(cluster_.bootstrap(), "generators", &keys_ok)) == raw; }, 90s, 500ms))
      << agent->Log();
  EXPECT_GT(Sink("influx")["pending_points"].get<int64_t>(), 0);  // held for InfluxDB meanwhile

  influxd_.Start();
  EXPECT_TRUE(WaitFor([&] { return influxd_.QueryCount("SELECT count(fuel) FROM genData", "kafka") == 402; }, 60s))
      << agent->Log();
  EXPECT_TRUE(WaitFor([&] { return testing::DownsampledInInflux(influxd_, "kafka_downsampled").size() >= 45; }, 30s));
  EXPECT_EQ(testing::DownsampledInInflux(influxd_, "kafka_downsampled"), testing::ExpectedDownsampled());
  std::multiset<std::string> got = TraceRecords(cluster_.bootstrap(), "generators", &keys_ok);
  std::printf("kafka outage: %zu raw records for %zu points (%zu duplicates)\n", got.size(), raw.size(),
              got.size() - raw.size());
  EXPECT_TRUE(keys_ok);
  EXPECT_EQ(agent->Terminate(), 0);
}

}  // namespace
}  // namespace edgeline
