// Downsampling end to end with REAL servers: the fixture trace is published to mosquitto, the
// agent (the built binary) computes the seed's Flux task locally and replicates the rows to a
// second influxd 1.6 database; alarm changes are published back to mosquitto, retained.
#include <map>
#include <memory>

#include "gtest/gtest.h"
#include "tests/integration/downsample_support.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

// Real mosquitto and influxd (databases "raw" and "downsampled"); the agent with the seed task.
class DownsampleEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    influxd.Query("CREATE DATABASE raw");
    influxd.Query("CREATE DATABASE downsampled");
    dir_ = testing::MakeTempDir("edgeline-downsample");
    env = testing::DownsampleAgentEnv(mosquitto, influxd, dir_ + "/queue.db", "raw", "downsampled");
  }
  // Starts the agent with `env`, waits until it is online, publishes the trace and the closing
  // messages.
  void RunAgentOnTheTrace() {
    agent =
        std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, dir_ + "/agent.log");
    ASSERT_TRUE(WaitFor([&] { return status_.Last("edgeline/edgeline-test/status") == "online"; }, 20s))
        << agent->Log();
    testing::Publisher publisher(mosquitto.url(), "fixture-publisher");
    publisher.PublishAll(testing::TimestampedFixture());
    publisher.PublishAll(testing::ClosingMessages());
  }

  testing::Mosquitto mosquitto;
  testing::Influxd influxd;
  std::map<std::string, std::string> env;
  std::unique_ptr<testing::Process> agent;

 private:
  std::string dir_;
  testing::Subscriber status_{mosquitto.url(), "status-watch", "edgeline/edgeline-test/status"};
};

TEST_F(DownsampleEndToEnd, FixtureArrivesInTheDownsampledDatabaseWithAlarmsOnMqtt) {
  env["EDGELINE_ALARM_TOPIC"] = "site/alarms";
  testing::Subscriber alarms(mosquitto.url(), "alarm-watch", "site/alarms/#");
  ASSERT_NO_FATAL_FAILURE(RunAgentOnTheTrace());

  const std::vector<std::string> expected = testing::ExpectedDownsampled();
  ASSERT_EQ(expected.size(), 45u);
  bool arrived = WaitFor([&] { return testing::DownsampledInInflux(influxd, "downsampled").size() >= 45; }, 60s, 200ms);
  EXPECT_TRUE(arrived) << agent->Log();
  EXPECT_EQ(testing::DownsampledInInflux(influxd, "downsampled"), expected);
  // The raw stream went to its own database, all 399 points (plus the closing ones).
  EXPECT_TRUE(WaitFor([&] { return influxd.QueryCount("SELECT count(fuel) FROM genData", "raw") == 402; }, 30s));

  // The last alarm level of each generator, as retained messages.
  std::map<std::string, std::string> last_level;
  for (const auto& line : testing::ReadFixtureLines("generators_downsampled.lp")) {
    auto p = ParseLine(line);
    ASSERT_TRUE(p.ok());
    std::string generator;
    for (const auto& [k, v] : p->tags) {
      if (k == "generatorID") generator = v;
    }
    for (const auto& [k, v] : p->fields) {
      if (k == "alarm") last_level[generator] = v.s;
    }
  }
  for (const auto& [generator, level] : last_level) {
    const std::string topic = "site/alarms/" + generator + "/alarm";
    EXPECT_TRUE(WaitFor(
        [&] {
          std::string last = alarms.Last(topic);
          return !last.empty() && nlohmann::json::parse(last)["value"] == level;
        },
        20s))
        << topic << " last: " << alarms.Last(topic);
  }

  auto report = testing::RunCommand({EDGELINE_BINARY, "status", "--json"}, env);
  auto json = nlohmann::json::parse(report.output);
  const auto& d = json["downsample"];
  EXPECT_TRUE(d["enabled"].get<bool>());
  EXPECT_EQ(d["points_out"].get<int64_t>(), 45);
  EXPECT_EQ(d["points_in"].get<int64_t>(), 402);
  EXPECT_EQ(d["points_late"].get<int64_t>(), 0);
  EXPECT_EQ(d["open_windows"].get<int64_t>(), 3);  // the closing messages' own window
  EXPECT_EQ(d["closed_until_ns"].get<int64_t>(), testing::kTraceEndNs + 60'000'000'000);
  std::set<std::string> sinks;
  for (const auto& s : json["sinks"]) sinks.insert(s["name"].get<std::string>());
  EXPECT_EQ(sinks, (std::set<std::string>{"downsampler", "influx", "influx-downsampled", "mqtt-alarms"}));
  EXPECT_EQ(agent->Terminate(), 0);
}

TEST_F(DownsampleEndToEnd, MeteredLinkReplicatesOnlyTheDownsampledStream) {
  env["EDGELINE_INFLUX_STREAMS"] = "downsampled";
  ASSERT_NO_FATAL_FAILURE(RunAgentOnTheTrace());
  EXPECT_TRUE(WaitFor([&] { return testing::DownsampledInInflux(influxd, "downsampled").size() >= 45; }, 60s, 200ms))
      << agent->Log();
  EXPECT_EQ(testing::DownsampledInInflux(influxd, "downsampled"), testing::ExpectedDownsampled());
  EXPECT_LE(influxd.QueryCount("SELECT count(fuel) FROM genData", "raw"), 0);  // nothing raw sent
  // Raw batches are not kept for a sink that does not exist: the downsampler was their only reader.
  auto report = nlohmann::json::parse(testing::RunCommand({EDGELINE_BINARY, "status", "--json"}, env).output);
  EXPECT_EQ(report["queue"]["points"].get<int64_t>(), 0) << report.dump(2);
  EXPECT_EQ(agent->Terminate(), 0);
}

}  // namespace
}  // namespace edgeline
