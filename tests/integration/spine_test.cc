// End-to-end tests of the spine with REAL servers: mosquitto -> edgeline (the built binary, as
// a child process) -> influxd 1.6 (v1 API). One mosquitto and one influxd serve the suite; each
// test uses its own database, MQTT client id and queue file.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include "common/line_protocol.h"
#include "gtest/gtest.h"
#include "ingest/mapping.h"
#include "storage/queue.h"
#include "tests/support/harness.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::AgentEnv;
using testing::Influxd;
using testing::Mosquitto;
using testing::Process;
using testing::Publisher;
using testing::Subscriber;
using testing::WaitFor;

using Messages = std::vector<std::pair<std::string, std::string>>;

Messages FixtureMessages() {
  Messages out;
  for (const auto& line : testing::ReadFixtureLines("generators.jsonl")) {
    auto j = nlohmann::json::parse(line);
    out.emplace_back(j["topic"].get<std::string>(), j["payload"].get<std::string>());
  }
  return out;
}

std::string Number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

// A point without its timestamp, canonical: "measurement|k=v|k=v..." sorted.
std::string Canonical(const Point& p) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : p.tags) parts.push_back("tag:" + k + "=" + v);
  for (const auto& [k, v] : p.fields) {
    switch (v.type) {
      case FieldType::kFloat: parts.push_back(k + "=" + Number(v.f)); break;
      case FieldType::kInteger: parts.push_back(k + "=" + Number(static_cast<double>(v.i))); break;
      case FieldType::kUnsigned: parts.push_back(k + "=" + Number(static_cast<double>(v.u))); break;
      case FieldType::kString: parts.push_back(k + "=\"" + v.s + "\""); break;
      case FieldType::kBool: parts.push_back(k + "=" + (v.b ? "true" : "false")); break;
    }
  }
  std::sort(parts.begin(), parts.end());
  std::string out = p.measurement;
  for (const auto& s : parts) out += "|" + s;
  return out;
}

std::multiset<std::string> ExpectedRawPoints() {
  std::multiset<std::string> out;
  for (const auto& line : testing::ReadFixtureLines("generators_raw.lp")) {
    auto p = ParseLine(line);
    EXPECT_TRUE(p.ok()) << line;
    if (p.ok()) out.insert(Canonical(*p));
  }
  return out;
}

struct InfluxRows {
  std::multiset<std::string> points;  // canonical, without time
  std::set<int64_t> timestamps;
  size_t rows = 0;
};

// SELECT * returns tags and fields as columns; tag columns are those in `tag_keys`.
InfluxRows ReadMeasurement(const Influxd& influx, const std::string& db, const std::string& measurement,
                           const std::set<std::string>& tag_keys) {
  InfluxRows out;
  auto r = influx.Query("SELECT * FROM \"" + measurement + "\"", db);
  const auto& series = r["results"][0]["series"];
  if (!series.is_array()) return out;
  for (const auto& s : series) {
    std::vector<std::string> columns = s["columns"].get<std::vector<std::string>>();
    for (const auto& row : s["values"]) {
      Point p;
      p.measurement = measurement;
      for (size_t i = 0; i < columns.size(); ++i) {
        if (row[i].is_null()) continue;
        if (columns[i] == "time") {
          out.timestamps.insert(row[i].get<int64_t>());
        } else if (tag_keys.count(columns[i])) {
          p.tags.emplace_back(columns[i], row[i].get<std::string>());
        } else {
          FieldValue v;
          if (row[i].is_number()) {
            v.type = FieldType::kFloat;
            v.f = row[i].get<double>();
          } else if (row[i].is_boolean()) {
            v.type = FieldType::kBool;
            v.b = row[i].get<bool>();
          } else {
            v.type = FieldType::kString;
            v.s = row[i].get<std::string>();
          }
          p.fields.emplace_back(columns[i], v);
        }
      }
      out.points.insert(Canonical(p));
      out.rows++;
    }
  }
  return out;
}

class SpineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    mosquitto_ = new Mosquitto();
    influxd_ = new Influxd();
  }
  static void TearDownTestSuite() {
    delete influxd_;
    delete mosquitto_;
  }

  void SetUp() override {
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = testing::MakeTempDir("edgeline-spine");
    db_ = "db_" + name_;
    influxd_->Query("CREATE DATABASE \"" + db_ + "\"");
    env_ = AgentEnv(*mosquitto_, *influxd_, dir_ + "/queue.db", db_);
    env_["EDGELINE_MQTT_CLIENT_ID"] = "edgeline-" + name_;
    status_topic_ = "edgeline/edgeline-" + name_ + "/status";
  }
  void TearDown() override {
    agent_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  void StartAgent() {
    agent_ = std::make_unique<Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env_, dir_ + "/agent.log");
  }
  // The agent publishes "online" (retained) after it subscribed on session 0.
  void WaitOnline(Subscriber& sub) {
    ASSERT_TRUE(WaitFor([&] { return sub.Last(status_topic_) == "online"; }, 20s)) << "agent never came online; log:\n"
                                                                                   << agent_->Log();
  }
  int64_t Count(const std::string& field = "fuel") {
    return influxd_->QueryCount("SELECT count(\"" + field + "\") FROM genData", db_);
  }
  std::vector<SinkStatus> Sinks() {
    QueueOpenOptions o;
    o.config.path = dir_ + "/queue.db";
    o.read_only = true;
    auto q = OpenSqliteQueue(o);
    if (!q.ok()) return {};
    auto s = (*q)->SinkStatuses();
    return s.ok() ? *s : std::vector<SinkStatus>{};
  }
  testing::CommandResult Status(bool json = true) {
    std::vector<std::string> argv = {EDGELINE_BINARY, "status"};
    if (json) argv.push_back("--json");
    return testing::RunCommand(argv, env_);
  }

  static Mosquitto* mosquitto_;
  static Influxd* influxd_;
  std::string name_, dir_, db_, status_topic_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<Process> agent_;
};

Mosquitto* SpineTest::mosquitto_ = nullptr;
Influxd* SpineTest::influxd_ = nullptr;

TEST_F(SpineTest, FixtureTraceArrivesInInfluxdWithTheExpectedPoints) {
  Subscriber sub(mosquitto_->url(), "watch-" + name_, status_topic_);
  const int64_t start_ns = SystemClock::Instance().WallNowNs();
  StartAgent();
  WaitOnline(sub);
  Messages messages = FixtureMessages();
  ASSERT_EQ(messages.size(), 399u);
  Publisher(mosquitto_->url(), "pub-" + name_).PublishAll(messages);

  ASSERT_TRUE(WaitFor([&] { return Count() >= 399; }, 60s)) << "count=" << Count() << "\n" << agent_->Log();
  InfluxRows rows = ReadMeasurement(*influxd_, db_, "genData", {"generatorID"});
  EXPECT_EQ(rows.rows, 399u);
  EXPECT_EQ(rows.points, ExpectedRawPoints());
  // Receive time, assigned once per message: distinct, and within the test's run.
  EXPECT_EQ(rows.timestamps.size(), 399u);
  EXPECT_GE(*rows.timestamps.begin(), start_ns);
  EXPECT_LE(*rows.timestamps.rbegin(), SystemClock::Instance().WallNowNs());

  // Status while running: the documented JSON fields.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = Sinks();
        return !s.empty() && s[0].pending_points == 0;
      },
      10s));
  // The agent records its counters once a second: wait for the record covering the trace.
  testing::CommandResult status;
  nlohmann::json report;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = Status();
        report = nlohmann::json::parse(status.output, nullptr, false);
        return !report.is_discarded() && report["agent"]["messages"] == 399;
      },
      10s))
      << status.output;
  ASSERT_EQ(status.exit_code, 0) << status.output;
  EXPECT_TRUE(report["agent"]["running"].get<bool>());
  EXPECT_TRUE(report["agent"]["mqtt_connected"].get<bool>());
  EXPECT_GT(report["agent"]["last_message_ns"].get<int64_t>(), start_ns);
  ASSERT_EQ(report["sinks"].size(), 1u);
  const auto& sink = report["sinks"][0];
  EXPECT_EQ(sink["name"], "influx");
  EXPECT_EQ(sink["state"], "ok");
  EXPECT_EQ(sink["pending_points"], 0);
  EXPECT_EQ(sink["pending_bytes"], 0);
  EXPECT_EQ(sink["last_code"], 204);
  EXPECT_EQ(sink["sent_points"], 399);
  EXPECT_EQ(sink["dropped_points"], 0);
  EXPECT_EQ(sink["last_error"], "");
  EXPECT_GT(sink["last_success_ns"].get<int64_t>(), start_ns);
  for (const char* key : {"oldest_pending_age_s", "lag_s", "dead_lettered", "consecutive_failures", "next_retry_ns"}) {
    EXPECT_TRUE(sink.contains(key)) << key;
  }
  EXPECT_EQ(report["queue"]["dead_letters"], 0);

  // Graceful stop: exit 0, "offline" published, status still readable and says not running.
  EXPECT_EQ(agent_->Terminate(), 0) << agent_->Log();
  EXPECT_TRUE(WaitFor([&] { return sub.Last(status_topic_) == "offline"; }, 10s));
  auto stopped = Status();
  EXPECT_EQ(stopped.exit_code, 3) << stopped.output;  // degraded: agent not running
  auto stopped_report = nlohmann::json::parse(stopped.output);
  EXPECT_FALSE(stopped_report["agent"]["running"].get<bool>());
  EXPECT_EQ(stopped_report["sinks"][0]["sent_points"], 399);
  auto text = Status(false);
  EXPECT_NE(text.output.find("NOT running"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("influx"), std::string::npos) << text.output;
}

TEST_F(SpineTest, InfluxdDownWhileMessagesFlowThenBackDeliversEachPointOnce) {
  Subscriber sub(mosquitto_->url(), "watch-" + name_, status_topic_);
  StartAgent();
  WaitOnline(sub);
  influxd_->Stop();
  Publisher(mosquitto_->url(), "pub-" + name_).PublishAll(FixtureMessages());
  // All committed locally, sink failing.
  bool queued = WaitFor(
      [&] {
        auto s = Sinks();
        return !s.empty() && s[0].pending_points == 399 && s[0].consecutive_failures > 0;
      },
      30s);
  auto status = Status();
  influxd_->Start();
  ASSERT_TRUE(queued) << agent_->Log();
  EXPECT_EQ(status.exit_code, 3) << status.output;
  auto report = nlohmann::json::parse(status.output);
  EXPECT_EQ(report["sinks"][0]["state"], "offline");
  EXPECT_EQ(report["sinks"][0]["last_code"], 0);
  EXPECT_NE(report["sinks"][0]["last_error"], "");

  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = Sinks();
        return !s.empty() && s[0].pending_points == 0;
      },
      60s))
      << agent_->Log();
  EXPECT_EQ(Count(), 399);
  InfluxRows rows = ReadMeasurement(*influxd_, db_, "genData", {"generatorID"});
  EXPECT_EQ(rows.points, ExpectedRawPoints());
  EXPECT_EQ(Status().exit_code, 0);
}

TEST_F(SpineTest, MessagesPublishedWhileAgentIsDownArriveAfterRestart) {
  Subscriber sub(mosquitto_->url(), "watch-" + name_, status_topic_);
  StartAgent();
  WaitOnline(sub);
  ASSERT_EQ(agent_->Terminate(), 0);
  ASSERT_TRUE(WaitFor([&] { return sub.Last(status_topic_) == "offline"; }, 10s));

  Publisher(mosquitto_->url(), "pub-" + name_).PublishAll(FixtureMessages());
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return Count() >= 399; }, 60s)) << "count=" << Count() << "\n" << agent_->Log();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = Sinks();
        return !s.empty() && s[0].pending_points == 0;
      },
      10s));
  EXPECT_EQ(Count(), 399);
}

TEST_F(SpineTest, LastWillSaysOfflineWhenTheAgentIsKilled) {
  Subscriber sub(mosquitto_->url(), "watch-" + name_, status_topic_);
  StartAgent();
  WaitOnline(sub);
  agent_->Kill();
  EXPECT_TRUE(WaitFor([&] { return sub.Last(status_topic_) == "offline"; }, 15s));
}

TEST_F(SpineTest, BadInputsAreDeadLetteredAndDoNotBlockGoodOnes) {
  Subscriber sub(mosquitto_->url(), "watch-" + name_, status_topic_);
  StartAgent();
  WaitOnline(sub);
  // What each row must become is checked against the fixture's `expect` by mapping_test; here
  // we check that the running pipeline routes each outcome: points to InfluxDB, reasons to the DLQ.
  Mapper mapper{MappingConfig{}};
  Messages messages;
  int dlq = 0, partial = 0, accepted = 0;
  for (const auto& line : testing::ReadFixtureLines("bad_inputs.jsonl")) {
    auto j = nlohmann::json::parse(line);
    messages.emplace_back(j["topic"].get<std::string>(), j["payload"].get<std::string>());
    MappedMessage m = mapper.Map(messages.back().first, messages.back().second, 1);
    dlq += static_cast<int>(m.errors.size());
    partial += static_cast<int>(m.warnings.size());
    for (const auto& l : m.lines) accepted += l.find("fuel=") != std::string::npos ? 1 : 0;
  }
  ASSERT_GE(dlq, 5);
  ASSERT_GE(accepted, 5);
  // A good message after the bad ones must not be blocked by them.
  messages.emplace_back("emergency_generator/generator9", R"({"generatorID": "generator9", "fuel": 42})");
  ++accepted;
  Publisher(mosquitto_->url(), "pub-" + name_).PublishAll(messages);
  ASSERT_TRUE(WaitFor([&] { return Count() >= accepted; }, 30s)) << "count=" << Count() << "\n" << agent_->Log();
  EXPECT_EQ(Count(), accepted);
  auto r = influxd_->Query("SELECT fuel FROM genData WHERE generatorID='generator9'", db_);
  EXPECT_EQ(r["results"][0]["series"][0]["values"][0][1].get<double>(), 42.0);

  auto list = testing::RunCommand({EDGELINE_BINARY, "dlq", "list", "--json"}, env_);
  ASSERT_EQ(list.exit_code, 0) << list.output;
  auto entries = nlohmann::json::parse(list.output);
  int rejected = 0, partial_seen = 0;
  for (const auto& e : entries) {
    EXPECT_FALSE(e["reason"].get<std::string>().empty());
    if (e["kind"] == "rejected") ++rejected;
    if (e["kind"] == "partial") ++partial_seen;
  }
  EXPECT_EQ(rejected, dlq);
  EXPECT_EQ(partial_seen, partial);
}

// One device sends a wrong type first, then the fleet reports (issue 13's 0-of-399 case). The
// agent must keep every other point and every good field.
struct FieldTypeRun {
  int64_t fuel = 0, temperature = 0;
  std::vector<nlohmann::json> dead_letters;
};

class FieldTypeSpineTest : public SpineTest {
 protected:
  FieldTypeRun PublishWrongTypeThenFleet() {
    Subscriber sub(mosquitto_->url(), "watch-" + name_, status_topic_);
    StartAgent();
    WaitOnline(sub);
    Publisher publisher(mosquitto_->url(), "pub-" + name_);
    publisher.PublishAll({{"emergency_generator/g18", R"({"generatorID": "g18", "temperature": "hot", "fuel": 5})"}});
    // The wrong type reaches the server first when nothing stops it at ingest.
    EXPECT_TRUE(WaitFor([&] { return Count() >= 1; }, 30s)) << agent_->Log();
    publisher.PublishAll(FixtureMessages());
    EXPECT_TRUE(WaitFor([&] { return Count() >= 400; }, 60s)) << "count=" << Count() << "\n" << agent_->Log();
    FieldTypeRun run;
    run.fuel = Count();
    run.temperature = Count("temperature");
    // Every refused temperature is a dead letter (at ingest or in the sink) once the sink is idle.
    WaitFor(
        [&] {
          auto list = testing::RunCommand({EDGELINE_BINARY, "dlq", "list", "--json", "--limit", "1000"}, env_);
          if (list.exit_code != 0) return false;
          run.dead_letters = nlohmann::json::parse(list.output).get<std::vector<nlohmann::json>>();
          return static_cast<int64_t>(run.dead_letters.size()) + run.temperature >= 400;
        },
        30s);
    return run;
  }
};

TEST_F(FieldTypeSpineTest, DeclaredTypesCostOnlyTheWrongDevicesField) {
  env_["EDGELINE_FIELD_TYPES"] = "temperature=float";
  FieldTypeRun run = PublishWrongTypeThenFleet();
  EXPECT_EQ(run.fuel, 400);
  EXPECT_EQ(run.temperature, 399);
  ASSERT_EQ(run.dead_letters.size(), 1u);
  EXPECT_EQ(run.dead_letters[0]["sink"], "ingest");
  EXPECT_EQ(run.dead_letters[0]["kind"], "rejected");
  EXPECT_EQ(run.dead_letters[0]["payload"].get<std::string>().rfind(R"(genData,generatorID=g18 temperature="hot" )", 0),
            0u)
      << run.dead_letters[0].dump();
  EXPECT_EQ(influxd_->Query("SHOW FIELD KEYS FROM genData", db_).dump().find("\"temperature\",\"string\""),
            std::string::npos);
}

TEST_F(FieldTypeSpineTest, UndeclaredTypesLetTheFirstWriterWinButLoseNoOtherField) {
  FieldTypeRun run = PublishWrongTypeThenFleet();
  EXPECT_EQ(run.fuel, 400);
  EXPECT_EQ(run.temperature, 1);  // g18's "hot": the server fixed the type as string
  int64_t temperatures = 0;
  for (const auto& d : run.dead_letters) {
    const std::string payload = d["payload"].get<std::string>();
    EXPECT_NE(payload.find(" temperature="), std::string::npos) << d.dump();
    EXPECT_EQ(payload.find("fuel="), std::string::npos) << "a good field was dead-lettered: " << d.dump();
    ++temperatures;
  }
  EXPECT_EQ(temperatures, 399);
}

TEST_F(SpineTest, SecondAgentOnTheSameQueueRefusesToStart) {
  Subscriber sub(mosquitto_->url(), "watch-" + name_, status_topic_);
  StartAgent();
  WaitOnline(sub);
  auto second = testing::RunCommand({EDGELINE_BINARY, "run"}, env_, 20s);
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find("another edgeline is already running"), std::string::npos) << second.output;
  EXPECT_TRUE(agent_->running());
}

// Queue full under `backpressure` with InfluxDB unreachable: the agent stops acknowledging, the
// broker keeps the rest, nothing is dropped; after a restart with room, every message arrives once.
TEST_F(SpineTest, BackpressureLeavesMessagesAtTheBrokerUntilThereIsRoom) {
  env_["EDGELINE_QUEUE_MAX_BYTES"] = "64KiB";
  env_["EDGELINE_QUEUE_FULL_POLICY"] = "backpressure";
  env_["EDGELINE_INFLUX_URL"] = "http://127.0.0.1:" + std::to_string(testing::FreePort());  // nobody listens
  Subscriber sub(mosquitto_->url(), "watch-" + name_, status_topic_);
  StartAgent();
  WaitOnline(sub);
  int http_port = 0;  // EDGELINE_HTTP_LISTEN from AgentEnv: port 0
  ASSERT_TRUE(WaitFor([&] { return (http_port = testing::AgentHttpPort(*agent_)) > 0; }, 20s)) << agent_->Log();
  const std::string health_url = "http://127.0.0.1:" + std::to_string(http_port) + "/health";
  constexpr int kMessages = 1500;  // ~120 bytes each on disk: about three times what fits
  Messages messages;
  for (int i = 0; i < kMessages; ++i) {
    messages.emplace_back("emergency_generator/bp", "{\"generatorID\": \"bp\", \"seq\": " + std::to_string(i) +
                                                        ", \"fuel\": " + std::to_string(i * 7 % 1000) + "}");
  }
  Publisher(mosquitto_->url(), "pub-" + name_).PublishAll(messages);

  nlohmann::json report;
  ASSERT_TRUE(WaitFor(
      [&] {
        report = nlohmann::json::parse(Status().output, nullptr, false);
        return !report.is_discarded() && report["agent"]["commit_failing"] == true;
      },
      30s))
      << agent_->Log();
  EXPECT_FALSE(report["healthy"].get<bool>());
  EXPECT_EQ(report["agent"]["state"], "queue-full") << report.dump(2);
  // /health says the queue cannot be written, and why: 503, queue-full (not a disk error).
  auto health = testing::Curl({health_url});
  EXPECT_EQ(health.code, 503) << health.body;
  EXPECT_NE(health.body.find("\"queue-full\""), std::string::npos) << health.body;
  EXPECT_LE(report["queue"]["bytes"].get<int64_t>(), 64 * 1024);
  EXPECT_EQ(report["queue"]["dropped_points_total"], 0);
  const int64_t stored = report["queue"]["points"].get<int64_t>();
  EXPECT_GT(stored, 100);
  EXPECT_LT(stored, kMessages);

  // A message callback is blocked on a commit that cannot happen; a graceful stop cannot finish,
  // so the agent ends itself at the shutdown deadline without acknowledging that message.
  EXPECT_EQ(agent_->Terminate(40s), 1) << agent_->Log();
  EXPECT_NE(agent_->Log().find("shutdown did not finish"), std::string::npos) << agent_->Log();

  env_["EDGELINE_QUEUE_MAX_BYTES"] = "64MiB";
  env_["EDGELINE_INFLUX_URL"] = influxd_->url();
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return Count("seq") >= kMessages; }, 60s)) << "count=" << Count("seq") << "\n"
                                                                       << agent_->Log();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = Sinks();
        return !s.empty() && s[0].pending_points == 0;
      },
      20s));
  EXPECT_EQ(Count("seq"), kMessages);
  EXPECT_EQ(influxd_->QueryCount("SELECT count(distinct(seq)) FROM genData", db_), kMessages);
}

TEST(ConfigCommandTest, BadEnvironmentListsEveryProblemAndExits2) {
  auto r = testing::RunCommand({EDGELINE_BINARY, "config"}, {{"EDGELINE_QUEUE_MAX_BYTES", "lots"},
                                                             {"EDGELINE_MQTT_KEEPALIVE", "soon"},
                                                             {"EDGELINE_INFLUX_API", "v9"},
                                                             {"EDGELINE_INFLUX_TOKEN", "s3cr3t-token-value"},
                                                             {"EDGELINE_NOT_A_SETTING", "1"}});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  for (const char* name :
       {"EDGELINE_QUEUE_MAX_BYTES", "EDGELINE_MQTT_KEEPALIVE", "EDGELINE_INFLUX_API", "EDGELINE_NOT_A_SETTING"}) {
    EXPECT_NE(r.output.find(name), std::string::npos) << name << " not reported:\n" << r.output;
  }
  EXPECT_EQ(r.output.find("s3cr3t-token-value"), std::string::npos) << "secret leaked:\n" << r.output;

  auto run = testing::RunCommand({EDGELINE_BINARY, "run"}, {{"EDGELINE_QUEUE_MAX_BYTES", "lots"}});
  EXPECT_EQ(run.exit_code, 2) << run.output;
}

}  // namespace
}  // namespace edgeline
