// Dead letters end to end with a REAL influxd 1.6: a real field type conflict (`v=1i`, then
// `v=2.5` in the same series) is isolated by bisection while the other points of the batch are
// written; `edgeline dlq list` shows it with influxd's message; after the cause is fixed (a new
// database, created by the agent with EDGELINE_INFLUX_CREATE_DB) `edgeline dlq replay` writes
// it; `edgeline dlq purge` deletes entries. Issue 13: a device that publishes a wrong type costs
// only that field, never the fleet's points (RealWrongTypeCosts*).
#include "gtest/gtest.h"
#include "tests/support/harness.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

nlohmann::json DlqList(const std::map<std::string, std::string>& env, const std::string& sink) {
  std::vector<std::string> argv = {EDGELINE_BINARY, "dlq", "list", "--json", "--limit", "10000"};
  if (!sink.empty()) argv.insert(argv.end(), {"--sink", sink});  // "" = every sink
  auto r = testing::RunCommand(argv, env);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output, nullptr, false);
}

TEST(DeadLetters, RealTypeConflictIsIsolatedListedReplayedAndPurged) {
  testing::Mosquitto mosquitto;
  testing::Influxd influxd;
  influxd.Query("CREATE DATABASE conflict");
  const std::string dir = testing::MakeTempDir("edgeline-dlq");
  auto env = testing::AgentEnv(mosquitto, influxd, dir + "/queue.db", "conflict");
  env["EDGELINE_MQTT_TOPICS"] = "lp/#";
  testing::Subscriber status(mosquitto.url(), "status-watch", "edgeline/edgeline-test/status");
  auto agent =
      std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, dir + "/agent.log");
  ASSERT_TRUE(WaitFor([&] { return status.Last("edgeline/edgeline-test/status") == "online"; }, 20s));
  testing::Publisher publisher(mosquitto.url(), "dlq-publisher");
  publisher.PublishAll({{"lp/a", "m,g=a v=1i 1764000000000000000"}});
  ASSERT_TRUE(WaitFor([&] { return influxd.QueryCount("SELECT count(v) FROM m", "conflict") == 1; }, 20s));

  // One payload of 64 lines, so they travel in one request: 63 good, 1 conflicting (a field's
  // type is fixed per measurement in influxd, so the good lines use another field).
  std::string payload;
  for (int i = 0; i < 64; ++i) {
    if (i == 40) {
      payload += "m,g=a v=2.5 1764000001000000000\n";
    } else {
      payload += "m,g=b w=" + std::to_string(i) + ".5 " + std::to_string(1764000000000000000 + i) + "\n";
    }
  }
  publisher.PublishAll({{"lp/batch", payload}});
  ASSERT_TRUE(WaitFor([&] { return DlqList(env, "influx").size() == 1; }, 30s)) << agent->Log();
  EXPECT_EQ(influxd.QueryCount("SELECT count(w) FROM m", "conflict"), 63);
  auto entry = DlqList(env, "influx")[0];
  EXPECT_NE(entry["reason"].get<std::string>().find("field type conflict"), std::string::npos) << entry.dump();
  EXPECT_NE(entry["payload"].get<std::string>().find("m,g=a v=2.5"), std::string::npos) << entry.dump();

  // The fix: a new database (the agent creates it). Replay sends the line there.
  agent->Terminate();
  env["EDGELINE_INFLUX_DB"] = "fixed";
  env["EDGELINE_INFLUX_CREATE_DB"] = "true";
  agent = std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, dir + "/agent.log");
  auto replay = testing::RunCommand({EDGELINE_BINARY, "dlq", "replay", "--sink", "influx"}, env);
  EXPECT_EQ(replay.exit_code, 0) << replay.output;
  EXPECT_NE(replay.output.find("1 dead letters"), std::string::npos) << replay.output;
  EXPECT_TRUE(WaitFor([&] { return influxd.QueryCount("SELECT count(v) FROM m WHERE g='a'", "fixed") == 1; }, 30s))
      << agent->Log();
  EXPECT_TRUE(WaitFor([&] { return DlqList(env, "influx").empty(); }, 10s));

  // Purge: explicit scope required; then every entry is gone.
  publisher.PublishAll({{"lp/bad", "not line protocol"}});
  ASSERT_TRUE(WaitFor([&] { return DlqList(env, "ingest").size() == 1; }, 20s));
  EXPECT_EQ(testing::RunCommand({EDGELINE_BINARY, "dlq", "purge"}, env).exit_code, 2);
  auto purge = testing::RunCommand({EDGELINE_BINARY, "dlq", "purge", "--all"}, env);
  EXPECT_EQ(purge.exit_code, 0) << purge.output;
  EXPECT_TRUE(DlqList(env, "ingest").empty());
  EXPECT_EQ(agent->Terminate(), 0);
}

using Messages = std::vector<std::pair<std::string, std::string>>;

// `payload` as the line (today's `dlq list --json` wraps it in a JSON string once more).
std::string Payload(const nlohmann::json& entry) {
  std::string payload = entry["payload"].get<std::string>();
  auto inner = nlohmann::json::parse(payload, nullptr, false);
  return inner.is_string() ? inner.get<std::string>() : payload;
}

Messages FleetMessages() {
  Messages out;
  for (const auto& line : testing::ReadFixtureLines("generators.jsonl")) {
    auto j = nlohmann::json::parse(line);
    out.emplace_back(j["topic"].get<std::string>(), j["payload"].get<std::string>());
  }
  return out;
}

const std::pair<std::string, std::string> kG18 = {"emergency_generator/g18",
                                                  R"({"generatorID": "g18", "temperature": "hot", "fuel": 5})"};

struct FleetAgent {
  explicit FleetAgent(const std::string& db) {
    influxd.Query("CREATE DATABASE " + db);
    dir = testing::MakeTempDir("edgeline-g18");
    env = testing::AgentEnv(mosquitto, influxd, dir + "/queue.db", db);
    status = std::make_unique<testing::Subscriber>(mosquitto.url(), "status-watch", "edgeline/edgeline-test/status");
    agent =
        std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, dir + "/agent.log");
    EXPECT_TRUE(WaitFor([&] { return status->Last("edgeline/edgeline-test/status") == "online"; }, 20s));
    publisher = std::make_unique<testing::Publisher>(mosquitto.url(), "g18-publisher");
  }
  // The fix the user makes after reading the dead letters: another database, then replay.
  void ReplayInto(const std::string& db) {
    agent->Terminate();
    env["EDGELINE_INFLUX_DB"] = db;
    env["EDGELINE_INFLUX_CREATE_DB"] = "true";
    agent =
        std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, dir + "/agent.log");
    auto replay = testing::RunCommand({EDGELINE_BINARY, "dlq", "replay"}, env);
    EXPECT_EQ(replay.exit_code, 0) << replay.output;
  }

  testing::Mosquitto mosquitto;
  testing::Influxd influxd;
  std::string dir;
  std::map<std::string, std::string> env;
  std::unique_ptr<testing::Subscriber> status;
  std::unique_ptr<testing::Process> agent;
  std::unique_ptr<testing::Publisher> publisher;
};

// The fleet's readings come first (temperature is a float field), then g18's wrong type, then
// the rest: only g18's temperature is dead-lettered; its fuel and every fleet point arrive; the
// dead letter is a replayable line. (Listed from every sink: the InfluxDB sink isolates it today;
// once types learned from the server reach ingest, ingest may refuse it first.)
TEST(DeadLetters, RealWrongTypeCostsOnlyThatDevicesField) {
  FleetAgent f("fleet");
  const Messages fleet = FleetMessages();
  f.publisher->PublishAll({fleet.begin(), fleet.begin() + 30});
  ASSERT_TRUE(
      WaitFor([&] { return f.influxd.QueryCount("SELECT count(temperature) FROM genData", "fleet") == 30; }, 20s))
      << f.agent->Log();
  f.publisher->PublishAll({kG18});
  f.publisher->PublishAll({fleet.begin() + 30, fleet.end()});
  ASSERT_TRUE(WaitFor([&] { return f.influxd.QueryCount("SELECT count(fuel) FROM genData", "fleet") == 400; }, 30s))
      << f.influxd.QueryCount("SELECT count(fuel) FROM genData", "fleet") << "\n"
      << f.agent->Log();
  EXPECT_EQ(f.influxd.QueryCount("SELECT count(temperature) FROM genData", "fleet"), 399);
  EXPECT_EQ(f.influxd.QueryCount("SELECT count(load) FROM genData", "fleet"), 399);
  EXPECT_EQ(f.influxd.QueryCount("SELECT count(fuel) FROM genData WHERE generatorID='g18'", "fleet"), 1);
  ASSERT_TRUE(WaitFor([&] { return DlqList(f.env, "").size() == 1; }, 10s)) << f.agent->Log();
  auto entry = DlqList(f.env, "")[0];
  const std::string payload = Payload(entry);
  EXPECT_EQ(payload.rfind("genData,generatorID=g18 temperature=\"hot\" ", 0), 0u) << entry.dump();
  EXPECT_EQ(payload.find("fuel"), std::string::npos) << entry.dump();
  EXPECT_NE(entry["reason"].get<std::string>().find("field type conflict"), std::string::npos) << entry.dump();

  f.ReplayInto("fixed");
  EXPECT_TRUE(WaitFor(
      [&] {
        return f.influxd.QueryCount("SELECT count(temperature) FROM genData WHERE generatorID='g18'", "fixed") == 1;
      },
      30s))
      << f.agent->Log();
  EXPECT_TRUE(WaitFor([&] { return DlqList(f.env, "").empty(); }, 10s));
  EXPECT_EQ(f.agent->Terminate(), 0);
}

// The issue's order: g18's "hot" comes FIRST and fixes temperature as a string in that shard.
// The 399 fleet points still arrive with every other field; only their temperature values (which
// the server refuses) are dead-lettered, each as a replayable temperature-only line.
TEST(DeadLetters, RealWrongTypeFirstNeverCostsTheFleetsOtherFields) {
  FleetAgent f("fleet");
  f.publisher->PublishAll({kG18});
  ASSERT_TRUE(WaitFor([&] { return f.influxd.QueryCount("SELECT count(fuel) FROM genData", "fleet") == 1; }, 20s))
      << f.agent->Log();
  f.publisher->PublishAll(FleetMessages());
  ASSERT_TRUE(WaitFor([&] { return f.influxd.QueryCount("SELECT count(fuel) FROM genData", "fleet") == 400; }, 30s))
      << f.influxd.QueryCount("SELECT count(fuel) FROM genData", "fleet") << "\n"
      << f.agent->Log();
  EXPECT_EQ(f.influxd.QueryCount("SELECT count(load) FROM genData", "fleet"), 399);
  EXPECT_EQ(f.influxd.QueryCount("SELECT count(power) FROM genData", "fleet"), 399);
  ASSERT_TRUE(WaitFor([&] { return DlqList(f.env, "").size() == 399; }, 10s)) << DlqList(f.env, "").size() << "\n"
                                                                              << f.agent->Log();
  int64_t from_sink = 0;  // the rest may be refused at ingest once the sink learned the type
  for (const auto& entry : DlqList(f.env, "")) {
    const std::string payload = Payload(entry);
    EXPECT_EQ(payload.rfind("genData,generatorID=generator", 0), 0u) << entry.dump();
    EXPECT_NE(payload.find(" temperature="), std::string::npos) << entry.dump();
    EXPECT_EQ(payload.find("fuel"), std::string::npos) << entry.dump();
    from_sink += entry["sink"] == "influx";
  }
  EXPECT_GE(from_sink, 1);
  // Every dead letter replays into the fixed database: the sink's, and ingest's (a replay is
  // checked against declared types only, not against the type learned from the old database).
  f.ReplayInto("fixed");
  EXPECT_TRUE(WaitFor(
      [&] { return f.influxd.QueryCount("SELECT count(temperature) FROM genData", "fixed") == 399; }, 30s))
      << f.influxd.QueryCount("SELECT count(temperature) FROM genData", "fixed") << "\n"
      << f.agent->Log();
  EXPECT_EQ(f.agent->Terminate(), 0);
}

}  // namespace
}  // namespace edgeline
