// Fleet health end to end with REAL servers: generators publish to mosquitto (receive-time
// stamps, 5 s windows, stale after the default 3 windows = 15 s); one goes silent and gets a
// retained `stale` alarm and a `stale` row in influxd, then loses it when it reports again; one
// says `offline` on its status topic and is stale at once; a SIGKILL and a restart after longer
// than the stale time neither raise a false alarm nor forget the stale one. Device clocks: a
// 1986 and a two-hours-ahead timestamp are stamped with the receive time (the device's time kept
// as a field) by default, and dead-lettered with the reason under EDGELINE_JSON_TIME_POLICY=dlq.
#include <atomic>
#include <map>
#include <memory>
#include <thread>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/harness.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

std::string Value(const std::string& payload) {
  if (payload.empty()) return "";
  return nlohmann::json::parse(payload)["value"].get<std::string>();
}

std::vector<std::string> Values(const std::vector<std::string>& payloads) {
  std::vector<std::string> out;
  for (const auto& p : payloads) out.push_back(Value(p));
  return out;
}

class FleetHealthEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    influxd.Query("CREATE DATABASE raw");
    influxd.Query("CREATE DATABASE downsampled");
    dir_ = testing::MakeTempDir("edgeline-fleet");
    env = testing::AgentEnv(mosquitto, influxd, dir_ + "/queue.db", "raw");
    env["EDGELINE_DOWNSAMPLE_PRESET"] = "seed";
    env["EDGELINE_DOWNSAMPLE_EVERY"] = "5s";
    env["EDGELINE_DOWNSAMPLE_LATENESS"] = "1s";
    env["EDGELINE_DOWNSAMPLE_BUCKET"] = "downsampled";
    env["EDGELINE_ALARM_TOPIC"] = "site/alarms";
    env["EDGELINE_DEVICE_STATUS_TOPICS"] = "emergency_generator/+/status";
  }
  void TearDown() override {
    stop_ = true;
    if (publisher_.joinable()) publisher_.join();
  }

  void StartAgent() {
    agent = std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env,
                                               dir_ + "/agent" + std::to_string(++runs_) + ".log");
    ASSERT_TRUE(WaitFor([&] { return status_.Last("edgeline/edgeline-test/status") == "online"; }, 20s))
        << agent->Log();
  }

  // generator1 and generator2 publish every 500 ms while their flag is set.
  void StartGenerators() {
    publisher_ = std::thread([this] {
      testing::Publisher publisher(mosquitto.url(), "generators");
      while (!stop_) {
        std::vector<std::pair<std::string, std::string>> batch;
        for (auto* g : {&g1_, &g2_}) {
          const char* name = g == &g1_ ? "generator1" : "generator2";
          if (g->load() == 0) continue;
          nlohmann::json p = {{"generatorID", name}, {"temperature", 180}, {"power", 180},
                              {"load", 2},           {"fuel", g->load()}};
          batch.emplace_back(std::string("emergency_generator/") + name, p.dump());
        }
        if (!batch.empty()) publisher.PublishAll(batch);
        std::this_thread::sleep_for(500ms);
      }
    });
  }

  std::string Alarm(const std::string& generator) const { return Value(alarms.Last(Topic(generator))); }
  static std::string Topic(const std::string& generator) { return "site/alarms/" + generator + "/alarm"; }

  testing::Mosquitto mosquitto;
  testing::Influxd influxd;
  std::map<std::string, std::string> env;
  std::unique_ptr<testing::Process> agent;
  testing::Subscriber alarms{mosquitto.url(), "alarm-watch", "site/alarms/#"};
  std::atomic<int> g1_{900}, g2_{900};  // fuel; 0 = silent

 private:
  std::string dir_;
  int runs_ = 0;
  std::atomic<bool> stop_{false};
  std::thread publisher_;
  testing::Subscriber status_{mosquitto.url(), "status-watch", "edgeline/edgeline-test/status"};
};

TEST_F(FleetHealthEndToEnd, SilenceAndOfflineRaiseStaleWhichReportingClearsAndARestartKeeps) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  StartGenerators();
  ASSERT_TRUE(WaitFor([&] { return Alarm("generator1") == "no action"; }, 30s)) << agent->Log();

  // generator1 goes silent: stale after 15 s of silence, not before.
  g1_ = 0;
  const auto silent_from = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return Alarm("generator1") == "stale"; }, 45s)) << agent->Log();
  EXPECT_GE(std::chrono::steady_clock::now() - silent_from, 14s);
  EXPECT_EQ(Alarm("generator2"), "no action");
  auto stale = nlohmann::json::parse(alarms.Last(Topic("generator1")));
  EXPECT_EQ(stale["previous"], "no action");
  EXPECT_EQ(stale["reason"].get<std::string>().rfind("silent for ", 0), 0u) << stale.dump();
  {
    testing::Subscriber late(mosquitto.url(), "late-watch", "site/alarms/#");  // retained
    EXPECT_TRUE(WaitFor([&] { return Value(late.Last(Topic("generator1"))) == "stale"; }, 10s));
  }
  EXPECT_TRUE(WaitFor(
      [&] {
        return influxd.QueryCount("SELECT count(alarm) FROM genData WHERE alarm = 'stale' AND generatorID = 'generator1'",
                                  "downsampled") == 1;
      },
      20s))
      << agent->Log();

  // It reports again, low on fuel: the alarm is what the rule says, at once.
  g1_ = 100;
  ASSERT_TRUE(WaitFor([&] { return Alarm("generator1") == "refuel"; }, 10s)) << agent->Log();

  // generator2's Last Will: offline, stale at once (well before 15 s of silence).
  g2_ = 0;
  testing::Publisher will(mosquitto.url(), "generator2-will");
  will.PublishAll({{"emergency_generator/generator2/status", "offline"}});
  ASSERT_TRUE(WaitFor([&] { return Alarm("generator2") == "stale"; }, 8s)) << agent->Log();
  EXPECT_EQ(nlohmann::json::parse(alarms.Last(Topic("generator2")))["reason"], "offline");
  EXPECT_TRUE(WaitFor(
      [&] {
        return influxd.QueryCount(
                   "SELECT count(status) FROM deviceStatus WHERE status = 'offline' AND generatorID = 'generator2'",
                   "raw") == 1;
      },
      20s));
  auto report = nlohmann::json::parse(testing::RunCommand({EDGELINE_BINARY, "status", "--json"}, env).output);
  const auto& devices = report["devices"];
  EXPECT_EQ(devices["tracked"], 2) << report.dump(2);
  EXPECT_EQ(devices["stale"], 1);
  ASSERT_FALSE(devices["top"].empty());
  EXPECT_EQ(devices["top"][0]["tags"]["generatorID"], "generator2");
  EXPECT_EQ(devices["top"][0]["reason"], "offline");
  EXPECT_GT(devices["top"][0]["last_seen_ns"].get<int64_t>(), 0);

  // Killed, and down for longer than the stale time while generator1 goes on publishing into
  // its persistent session: after the restart generator1 is not stale, generator2 still is, and
  // neither alarm changes.
  const std::vector<std::string> g1_before = Values(alarms.All(Topic("generator1")));
  const std::vector<std::string> g2_before = Values(alarms.All(Topic("generator2")));
  agent->Kill();
  std::this_thread::sleep_for(20s);
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  std::this_thread::sleep_for(20s);  // longer than the stale time after the restart
  EXPECT_EQ(Values(alarms.All(Topic("generator1"))), g1_before) << agent->Log();
  EXPECT_EQ(Values(alarms.All(Topic("generator2"))), g2_before);
  EXPECT_EQ(g1_before, (std::vector<std::string>{"no action", "stale", "refuel"}));
  EXPECT_EQ(g2_before, (std::vector<std::string>{"no action", "stale"}));
  EXPECT_EQ(agent->Terminate(), 0);
}

size_t DlqCount(const std::map<std::string, std::string>& env) {
  return nlohmann::json::parse(testing::RunCommand({EDGELINE_BINARY, "dlq", "list", "--json"}, env).output).size();
}

TEST(DeviceClocksEndToEnd, WrongClocksKeepThePointAtTheReceiveTimeOrGoToTheDeadLetterQueue) {
  testing::Mosquitto mosquitto;
  testing::Influxd influxd;
  influxd.Query("CREATE DATABASE raw");
  const std::string dir = testing::MakeTempDir("edgeline-clocks");
  auto env = testing::AgentEnv(mosquitto, influxd, dir + "/queue.db", "raw");
  env["EDGELINE_JSON_TIME_KEY"] = "ts";
  env["EDGELINE_JSON_TIME_FORMAT"] = "s";
  testing::Subscriber status(mosquitto.url(), "status-watch", "edgeline/edgeline-test/status");
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  auto messages = [&](const std::string& suffix) {
    return std::vector<std::pair<std::string, std::string>>{
        {"emergency_generator/old" + suffix, R"({"generatorID":"old)" + suffix + R"(","fuel":277,"ts":504921600})"},
        {"emergency_generator/ahead" + suffix,
         R"({"generatorID":"ahead)" + suffix + R"(","fuel":300,"ts":)" + std::to_string(now_s + 7200) + "}"},
        {"emergency_generator/right" + suffix,
         R"({"generatorID":"right)" + suffix + R"(","fuel":310,"ts":)" + std::to_string(now_s) + "}"}};
  };
  auto run = [&](const std::string& log) {
    auto agent = std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, dir + log);
    EXPECT_TRUE(WaitFor([&] { return status.Last("edgeline/edgeline-test/status") == "online"; }, 20s)) << agent->Log();
    return agent;
  };

  auto agent = run("/agent1.log");
  testing::Publisher publisher(mosquitto.url(), "devices");
  publisher.PublishAll(messages("1"));
  ASSERT_TRUE(WaitFor([&] { return influxd.QueryCount("SELECT count(fuel) FROM genData", "raw") == 3; }, 30s))
      << agent->Log();
  auto rows = influxd.Query("SELECT fuel, device_time, generatorID FROM genData WHERE time < now() + 1h", "raw");
  const auto& values = rows["results"][0]["series"][0]["values"];
  ASSERT_EQ(values.size(), 3u) << rows.dump();
  std::map<std::string, nlohmann::json> by_device;
  for (const auto& v : values) by_device[v[3].get<std::string>()] = v;
  EXPECT_EQ(by_device["old1"][2].get<int64_t>(), 504921600'000'000'000);
  EXPECT_EQ(by_device["ahead1"][2].get<int64_t>(), (now_s + 7200) * 1'000'000'000);
  EXPECT_TRUE(by_device["right1"][2].is_null());  // a right clock keeps its own time, no field
  // The agent records its counters in the queue file every second.
  auto agent_counter = [&](const char* name) {
    auto report = nlohmann::json::parse(testing::RunCommand({EDGELINE_BINARY, "status", "--json"}, env).output);
    return report["agent"].value(name, int64_t{-1});
  };
  EXPECT_TRUE(WaitFor([&] { return agent_counter("device_time_adjusted") == 2; }, 10s));
  EXPECT_EQ(DlqCount(env), 0);
  EXPECT_EQ(agent->Terminate(), 0);

  env["EDGELINE_JSON_TIME_POLICY"] = "dlq";
  agent = run("/agent2.log");
  publisher.PublishAll(messages("2"));
  ASSERT_TRUE(WaitFor([&] { return influxd.QueryCount("SELECT count(fuel) FROM genData", "raw") == 4; }, 30s))
      << agent->Log();
  auto dlq = nlohmann::json::parse(testing::RunCommand({EDGELINE_BINARY, "dlq", "list", "--json"}, env).output);
  ASSERT_EQ(dlq.size(), 2u) << dlq.dump();
  std::map<std::string, std::string> reasons;
  for (const auto& entry : dlq) reasons[entry["topic"].get<std::string>()] = entry["reason"].get<std::string>();
  EXPECT_NE(reasons["emergency_generator/old2"].find("before EDGELINE_JSON_TIME_FLOOR"), std::string::npos)
      << reasons["emergency_generator/old2"];
  EXPECT_NE(reasons["emergency_generator/ahead2"].find("ahead of the receive time"), std::string::npos)
      << reasons["emergency_generator/ahead2"];
  EXPECT_TRUE(WaitFor([&] { return agent_counter("device_time_rejected") == 2; }, 10s));
  EXPECT_EQ(agent->Terminate(), 0);
}

}  // namespace
}  // namespace edgeline
