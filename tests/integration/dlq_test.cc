// Dead letters end to end with a REAL influxd 1.6: a real field type conflict (`v=1i`, then
// `v=2.5` in the same series) is isolated by bisection while the other points of the batch are
// written; `edgeline dlq list` shows it with influxd's message; after the cause is fixed (a new
// database, created by the agent with EDGELINE_INFLUX_CREATE_DB) `edgeline dlq replay` writes
// it; `edgeline dlq purge` deletes entries.
#include "gtest/gtest.h"
#include "tests/support/harness.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

nlohmann::json DlqList(const std::map<std::string, std::string>& env, const std::string& sink) {
  auto r = testing::RunCommand({EDGELINE_BINARY, "dlq", "list", "--json", "--sink", sink}, env);
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

}  // namespace
}  // namespace edgeline
