// Poison lines end to end (issue 13, item 2): the agent binary, real mosquitto and the stand-in
// (a real influxd cannot be made to answer 500 for one chosen line on cue). With retry settings
// of seconds, a line the server answers 500 for is dead-lettered within a minute with the status
// and body while everything else arrives; a server that answers 500 to everything, its health
// endpoint included, costs no dead letter and everything arrives once it is back (then only a
// poison line among the backlog is isolated).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/harness.h"
#include "tests/support/influx_standin.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::WaitFor;

nlohmann::json DlqList(const std::map<std::string, std::string>& env) {
  auto r = testing::RunCommand({EDGELINE_BINARY, "dlq", "list", "--json", "--sink", "influx"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto json = nlohmann::json::parse(r.output, nullptr, false);
  return json.is_array() ? json : nlohmann::json::array();
}

std::map<std::string, std::string> Env(const testing::Mosquitto& mosquitto, const testing::InfluxStandin& server,
                                       const std::string& dir, const std::string& client) {
  return {
      {"EDGELINE_MQTT_URL", mosquitto.url()}, {"EDGELINE_MQTT_CLIENT_ID", client},
      {"EDGELINE_MQTT_TOPICS", "lp/#"},       {"EDGELINE_QUEUE_PATH", dir + "/queue.db"},
      {"EDGELINE_INFLUX_URL", server.url()},  {"EDGELINE_INFLUX_API", "v1"},
      {"EDGELINE_INFLUX_DB", "kafka"},        {"EDGELINE_RETRY_MIN", "1s"},  // retry settings of seconds
      {"EDGELINE_RETRY_MAX", "5s"},           {"EDGELINE_HTTP_LISTEN", "127.0.0.1:0"},
  };
}

std::string Line(int i) {
  return "genData,generatorID=g" + std::to_string(i % 5) + " fuel=" + std::to_string(i) + " " +
         std::to_string(1764000000000000000LL + i);
}

size_t Arrived(const testing::InfluxStandin& server, const std::vector<std::string>& expected) {
  std::set<std::string> stored;
  for (const auto& line : server.Lines()) stored.insert(line);
  size_t n = 0;
  for (const auto& line : expected) n += stored.count(line);
  return n;
}

TEST(PoisonLineTest, LineAnswered500IsDeadLetteredWithinAMinuteAndEverythingElseArrives) {
  testing::Mosquitto mosquitto;
  auto standin = testing::InfluxStandin::Start();
  ASSERT_TRUE(standin.ok()) << standin.status().ToString();
  testing::InfluxStandin& server = **standin;
  const std::string poison = "genData,generatorID=g3 fuel=999 1764000000000999999";
  server.FailLinesContaining("1764000000000999999");  // 500 "engine: unable to parse bool value"

  const std::string dir = testing::MakeTempDir("edgeline-poison");
  auto env = Env(mosquitto, server, dir, "edgeline-poison");
  testing::Subscriber watch(mosquitto.url(), "poison-watch", "edgeline/edgeline-poison/status");
  testing::Process agent({EDGELINE_BINARY, "run"}, env, dir + "/agent.log");
  ASSERT_TRUE(WaitFor([&] { return watch.Last("edgeline/edgeline-poison/status") == "online"; }, 20s)) << agent.Log();

  // 100 lines before the poison line, it, and 100 after, in several messages.
  std::vector<std::string> good;
  std::vector<std::pair<std::string, std::string>> messages;
  std::string payload;
  for (int i = 0; i < 200; ++i) {
    if (i == 100) {
      messages.push_back({"lp/a", payload});
      messages.push_back({"lp/poison", poison});
      payload.clear();
    }
    good.push_back(Line(i));
    payload += good.back() + "\n";
    if (i % 50 == 49 && i != 99) {
      messages.push_back({"lp/a", payload});
      payload.clear();
    }
  }
  const auto start = Clock::now();
  testing::Publisher(mosquitto.url(), "poison-publisher").PublishAll(messages);

  ASSERT_TRUE(WaitFor([&] { return DlqList(env).size() == 1; }, 60s)) << agent.Log();
  const double isolated_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("poison line isolated after %.1f s\n", isolated_s);
  EXPECT_LT(isolated_s, 60.0);
  const auto entry = DlqList(env)[0];
  EXPECT_EQ(entry["payload"].get<std::string>().find("1764000000000999999") != std::string::npos, true) << entry.dump();
  EXPECT_NE(entry["reason"].get<std::string>().find("HTTP 500: engine: unable to parse bool value"), std::string::npos)
      << entry.dump();
  EXPECT_TRUE(WaitFor([&] { return Arrived(server, good) == good.size(); }, 20s))
      << Arrived(server, good) << " of " << good.size() << "\n"
      << agent.Log();
  for (const auto& line : server.Lines()) EXPECT_EQ(line.find("1764000000000999999"), std::string::npos);
  // Nothing else was dead-lettered, and the sink is ok again.
  EXPECT_EQ(DlqList(env).size(), 1u);
  EXPECT_EQ(agent.Terminate(), 0) << agent.Log();
  std::error_code ignored;
  if (!HasFailure()) std::filesystem::remove_all(dir, ignored);
}

TEST(PoisonLineTest, ServerAnswering500ToEverythingCostsNoDeadLetterAndEverythingArrivesAfter) {
  testing::Mosquitto mosquitto;
  auto standin = testing::InfluxStandin::Start();
  ASSERT_TRUE(standin.ok()) << standin.status().ToString();
  testing::InfluxStandin& server = **standin;

  const std::string dir = testing::MakeTempDir("edgeline-down500");
  auto env = Env(mosquitto, server, dir, "edgeline-down500");
  testing::Subscriber watch(mosquitto.url(), "down500-watch", "edgeline/edgeline-down500/status");
  testing::Process agent({EDGELINE_BINARY, "run"}, env, dir + "/agent.log");
  ASSERT_TRUE(WaitFor([&] { return watch.Last("edgeline/edgeline-down500/status") == "online"; }, 20s)) << agent.Log();

  std::vector<std::string> lines;
  testing::Publisher publisher(mosquitto.url(), "down500-publisher");
  auto publish = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      lines.push_back(Line(i));
      publisher.PublishAll({{"lp/a", lines.back()}});  // one point per message: lone lines too
    }
  };
  publish(0, 10);
  ASSERT_TRUE(WaitFor([&] { return Arrived(server, lines) == lines.size(); }, 20s)) << agent.Log();

  // Down for 20 s: 500 to everything, /ping included, while single points keep arriving; one
  // of them is a line the server will keep refusing with 500 once it is back.
  const std::string poison = "genData,generatorID=g1 fuel=1 1764000000000999999";
  server.FailLinesContaining("1764000000000999999");
  server.SetDown(500);
  publisher.PublishAll({{"lp/poison", poison}});
  const auto down_until = Clock::now() + 20s;
  int next = 10;
  while (Clock::now() < down_until) {
    publish(next, next + 1);
    ++next;
    std::this_thread::sleep_for(500ms);  // pacing of the load
  }
  EXPECT_TRUE(DlqList(env).empty());
  server.SetDown(0);
  EXPECT_TRUE(WaitFor([&] { return Arrived(server, lines) == lines.size(); }, 30s))
      << Arrived(server, lines) << " of " << lines.size() << "\n"
      << agent.Log();
  // Only the poison line, isolated after the server answered again.
  ASSERT_TRUE(WaitFor([&] { return DlqList(env).size() == 1; }, 60s)) << agent.Log();
  EXPECT_NE(DlqList(env)[0]["payload"].get<std::string>().find("1764000000000999999"), std::string::npos);
  EXPECT_EQ(agent.Terminate(), 0) << agent.Log();
  std::error_code ignored;
  if (!HasFailure()) std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace edgeline
