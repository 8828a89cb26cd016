// Exactly-once downsampling under SIGKILL, with REAL servers: the fixture trace is published
// while the agent is killed at seeded random moments and restarted, 24 times. The windows and
// the downsampler's state are committed with its cursor in one SQLite transaction, so the rows
// in influxd must be exactly the seed task's 45: none missing, none twice with other values
// (a repeated window with other contents would show as an extra row or a changed value).
#include <atomic>
#include <cstdio>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "storage/queue.h"
#include "tests/integration/downsample_support.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

constexpr int kTrials = 24;
constexpr uint32_t kSeed = 1124;

TEST(DownsampleCrash, SeedOutputIsExactAcrossRandomKills) {
  testing::Mosquitto mosquitto;
  testing::Influxd influxd;
  influxd.Query("CREATE DATABASE raw");
  influxd.Query("CREATE DATABASE downsampled");
  const std::string dir = testing::MakeTempDir("edgeline-downsample-crash");
  const std::string queue_path = dir + "/queue.db";
  auto env = testing::DownsampleAgentEnv(mosquitto, influxd, queue_path, "raw", "downsampled");
  env["EDGELINE_INFLUX_BATCH_POINTS"] = "20";  // many small acks: more moments to be killed in
  const std::string status_topic = "edgeline/edgeline-test/status";
  testing::Subscriber watch(mosquitto.url(), "crash-watch", status_topic);
  auto start_agent = [&] {
    return std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env,
                                              dir + "/agent.log");
  };
  auto agent = start_agent();  // creates the persistent session
  ASSERT_TRUE(WaitFor([&] { return watch.Last(status_topic) == "online"; }, 20s)) << agent->Log();

  std::atomic<bool> done{false};
  std::thread publisher([&] {
    testing::Publisher pub(mosquitto.url(), "crash-publisher");
    testing::Messages all = testing::TimestampedFixture();
    for (size_t i = 0; i < all.size(); i += 5) {
      pub.PublishAll(testing::Messages(all.begin() + i, all.begin() + std::min(all.size(), i + 5)));
      std::this_thread::sleep_for(60ms);  // spreads the trace over the kills; not a wait for a result
    }
    pub.PublishAll(testing::ClosingMessages());
    done = true;
  });

  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<int> kill_after_ms(20, 400);
  for (int trial = 0; trial < kTrials; ++trial) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms(rng)));  // the random kill moment
    agent->Kill();
    ASSERT_EQ(testing::QueueIntegrity(queue_path), "ok") << "after kill #" << trial;
    agent = start_agent();
  }
  publisher.join();
  ASSERT_TRUE(done);

  const std::vector<std::string> expected = testing::ExpectedDownsampled();
  bool arrived =
      WaitFor([&] { return testing::DownsampledInInflux(influxd, "downsampled").size() >= 45; }, 120s, 250ms);
  std::vector<std::string> got = testing::DownsampledInInflux(influxd, "downsampled");
  EXPECT_TRUE(arrived) << agent->Log();
  EXPECT_EQ(got, expected);

  auto report = nlohmann::json::parse(testing::RunCommand({EDGELINE_BINARY, "status", "--json"}, env).output);
  const auto& d = report["downsample"];
  std::printf("downsample crash: kills=%d rows_in_influxd=%zu expected=%zu points_in=%lld late=%lld rows_out=%lld\n",
              kTrials, got.size(), expected.size(), static_cast<long long>(d["points_in"].get<int64_t>()),
              static_cast<long long>(d["points_late"].get<int64_t>()),
              static_cast<long long>(d["points_out"].get<int64_t>()));
  // Every row is produced exactly once by the engine, whatever MQTT redelivered.
  EXPECT_EQ(d["points_out"].get<int64_t>(), 45);
  EXPECT_EQ(agent->Terminate(), 0);
  EXPECT_EQ(testing::QueueIntegrity(queue_path), "ok");
}

}  // namespace
}  // namespace edgeline
