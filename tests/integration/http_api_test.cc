// The agent's local HTTP endpoint with REAL servers: curl (as Telegraf would, gzip bodies)
// writes line protocol to edgeline's /api/v2/write and /write; the points must reach a real
// influxd 1.6 through the queue. Also /health and /metrics (checked by a strict Prometheus
// text-format parser here), token checks and InfluxDB's error answers. HttpApi also runs in
// process over a real SQLite queue and group committer, for what the agent cannot show on cue: a
// queue that refuses commits, a handler that throws, a fixed receive time (FakeClock).
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include "agent/http_api.h"
#include "gtest/gtest.h"
#include "ingest/group_committer.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/harness.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::RunCommand;
using testing::WaitFor;

using testing::Curl;
using testing::CurlResult;

// Exposition format 0.0.4: HELP/TYPE then samples of that family; names and labels well formed;
// every value a number. Returns the problems, and fills name{labels} -> value.
std::vector<std::string> ParsePrometheus(const std::string& text, std::map<std::string, double>* samples) {
  std::vector<std::string> problems;
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+)");
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf))");
  std::set<std::string> typed;
  std::string family;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      family = m[1];
    } else if (std::regex_match(line, m, kType)) {
      if (m[1] != family) problems.push_back("TYPE without HELP: " + line);
      if (!typed.insert(m[1]).second) problems.push_back("family declared twice: " + line);
    } else if (std::regex_match(line, m, kSample)) {
      if (m[1] != family) problems.push_back("sample outside its family: " + line);
      (*samples)[line.substr(0, line.rfind(' '))] = std::stod(line.substr(line.rfind(' ') + 1));
    } else {
      problems.push_back("malformed line: " + line);
    }
  }
  return problems;
}

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    influxd_.Query("CREATE DATABASE http");
    dir_ = testing::MakeTempDir("edgeline-http");
    env_ = testing::AgentEnv(mosquitto_, influxd_, dir_ + "/queue.db", "http");  // HTTP on port 0
    env_["EDGELINE_HTTP_TOKEN"] = "edge-secret-token";
    env_["EDGELINE_HTTP_MAX_BODY"] = "64KiB";
    agent_ =
        std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env_, dir_ + "/agent.log");
    ASSERT_TRUE(WaitFor([&] { return (port_ = testing::AgentHttpPort(*agent_)) > 0; }, 20s)) << agent_->Log();
    // Up, and its MQTT session connected (the metrics test counts on it).
    ASSERT_TRUE(WaitFor(
        [&] {
          CurlResult h = Curl({Url("/health")});
          auto j = nlohmann::json::parse(h.body, nullptr, false);
          return h.code == 200 && !j.is_discarded() && j["mqtt"]["connected"] == 1;
        },
        20s))
        << agent_->Log();
  }
  std::string Url(const std::string& path) { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  testing::Mosquitto mosquitto_;
  testing::Influxd influxd_;
  std::string dir_;
  int port_ = 0;
  std::map<std::string, std::string> env_;
  std::unique_ptr<testing::Process> agent_;
};

TEST_F(HttpApiTest, GzipWritesLikeTelegrafReachInfluxdAfterCommit) {
  // A Telegraf-style body: gzip, v2 endpoint, token, ns precision.
  std::string body;
  for (int i = 0; i < 500; ++i) {
    body += "cpu,host=edge1 usage=" + std::to_string(i) + ".5 " + std::to_string(1764000000000000000 + i) + "\n";
  }
  const std::string file = dir_ + "/body.lp";
  std::ofstream(file) << body;
  ASSERT_EQ(RunCommand({"gzip", "-k", file}, {}).exit_code, 0);
  auto v2 = Curl({"-X", "POST", Url("/api/v2/write?org=o&bucket=b&precision=ns"), "-H",
                  "Authorization: Token edge-secret-token", "-H", "Content-Encoding: gzip", "--data-binary",
                  "@" + file + ".gz"});
  EXPECT_EQ(v2.code, 204) << v2.body;
  // 204 means committed: each point is pending in the queue or already delivered (the sink's
  // counter and cursor move in the same transaction), whatever the timing.
  auto report = nlohmann::json::parse(RunCommand({EDGELINE_BINARY, "status", "--json"}, env_).output);
  const auto& sink = report["sinks"][0];
  EXPECT_EQ(sink["name"], "influx");
  EXPECT_EQ(sink["pending_points"].get<int64_t>() + sink["sent_points"].get<int64_t>(), 500) << report.dump(2);
  EXPECT_TRUE(WaitFor([&] { return influxd_.QueryCount("SELECT count(usage) FROM cpu", "http") == 500; }, 30s));

  // v1 endpoint, seconds precision, token as the password.
  auto v1 = Curl({"-X", "POST", Url("/write?db=mydb&precision=s&u=any&p=edge-secret-token"), "--data-binary",
                  "mem,host=edge1 used=42 1764000000"});
  EXPECT_EQ(v1.code, 204) << v1.body;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto r = influxd_.Query("SELECT used FROM mem", "http");
        return r["results"][0]["series"][0]["values"][0][0] == 1764000000000000000;
      },
      30s))
      << influxd_.Query("SELECT used FROM mem", "http").dump();
}

TEST_F(HttpApiTest, AuthBadLinesAndLimitsAnswerLikeInfluxDB) {
  auto no_token = Curl({"-X", "POST", Url("/api/v2/write?org=o&bucket=b"), "--data-binary", "m v=1 1"});
  EXPECT_EQ(no_token.code, 401);
  EXPECT_EQ(no_token.body.find("edge-secret-token"), std::string::npos);
  auto wrong = Curl({"-X", "POST", Url("/write?db=d"), "-H", "Authorization: Token nope", "--data-binary", "m v=1 1"});
  EXPECT_EQ(wrong.code, 401);

  // One bad line: 400 partial write naming it; the good ones are committed and delivered.
  auto partial =
      Curl({"-X", "POST", Url("/api/v2/write?org=o&bucket=b"), "-H", "Authorization: Token edge-secret-token",
            "--data-binary", "good,k=1 v=1 1764000000000000001\nbad line here\ngood,k=2 v=2 1764000000000000002"});
  EXPECT_EQ(partial.code, 400);
  EXPECT_NE(partial.body.find("partial write"), std::string::npos) << partial.body;
  EXPECT_NE(partial.body.find("bad line here"), std::string::npos) << partial.body;
  EXPECT_TRUE(WaitFor([&] { return influxd_.QueryCount("SELECT count(v) FROM good", "http") == 2; }, 30s));

  const std::string big = dir_ + "/big.lp";
  {
    std::ofstream out(big);
    for (int i = 0; i < 3000; ++i) out << "big,k=1 v=" << i << " " << 1764000000000000000 + i << "\n";
  }
  EXPECT_EQ(Curl({"-X", "POST", Url("/api/v2/write?org=o&bucket=b"), "-H", "Authorization: Token edge-secret-token",
                  "--data-binary", "@" + big})
                .code,
            413);
  EXPECT_LE(influxd_.QueryCount("SELECT count(v) FROM big", "http"), 0);  // nothing of it kept

  auto precision = Curl({"-X", "POST", Url("/api/v2/write?org=o&bucket=b&precision=fortnights"), "-H",
                         "Authorization: Token edge-secret-token", "--data-binary", "m v=1 1"});
  EXPECT_EQ(precision.code, 400);
  EXPECT_EQ(Curl({"-X", "POST", Url("/api/v2/write?org=o"), "-H", "Authorization: Token edge-secret-token",
                  "--data-binary", "m v=1 1"})
                .code,
            400);  // no bucket
}

TEST_F(HttpApiTest, HealthAndMetricsAreWellFormed) {
  auto health = Curl({Url("/health")});
  ASSERT_EQ(health.code, 200);
  auto h = nlohmann::json::parse(health.body);
  EXPECT_TRUE(h["queue"]["writable"].get<bool>());
  EXPECT_EQ(h["mqtt"]["sessions"], 1);
  EXPECT_TRUE(h["sinks"].contains("influx"));

  Curl({"-X", "POST", Url("/write?db=d"), "-H", "Authorization: Token edge-secret-token", "--data-binary",
        "m v=1 1764000000000000000"});
  auto metrics = Curl({Url("/metrics")});
  ASSERT_EQ(metrics.code, 200);
  std::map<std::string, double> samples;
  std::vector<std::string> problems = ParsePrometheus(metrics.body, &samples);
  EXPECT_TRUE(problems.empty()) << problems[0] << "\n" << metrics.body;
  EXPECT_EQ(samples["edgeline_mqtt_sessions_connected"], 1);
  EXPECT_GE(samples["edgeline_ingest_committed_points_total"], 1);
  EXPECT_EQ(samples["edgeline_http_requests_total{path=\"/write\",code=\"204\"}"], 1);
  EXPECT_TRUE(samples.count("edgeline_sink_sent_points_total{sink=\"influx\",stream=\"raw\"}"));
  EXPECT_TRUE(samples.count("edgeline_queue_bytes"));
  EXPECT_EQ(metrics.body.find("edge-secret-token"), std::string::npos);
  EXPECT_EQ(agent_->Log().find("edge-secret-token"), std::string::npos);
}

// Regression (issue 13): invalid UTF-8 in one line answered an empty 500 after the good lines
// were committed, so every client retry wrote them again.
TEST_F(HttpApiTest, InvalidUtf8LineGets400NamingItAndTheGoodLinesAreCommittedOnce) {
  const std::string file = dir_ + "/utf8.lp";
  std::ofstream(file) << "utf,k=1 v=1 1764000000000000001\n"
                      << "utf,k=caf\xC3\xA9\xFF v=2 1764000000000000002\n"
                      << "utf,k=3 v=3 1764000000000000003\n";
  auto r = Curl({"-X", "POST", Url("/api/v2/write?org=o&bucket=b"), "-H", "Authorization: Token edge-secret-token",
                 "--data-binary", "@" + file});
  EXPECT_EQ(r.code, 400) << r.body;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.body;
  EXPECT_EQ(j["code"], "invalid");
  const std::string message = j["message"].get<std::string>();
  EXPECT_NE(message.find("partial write"), std::string::npos) << message;
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  EXPECT_NE(message.find("utf,k=caf\xC3\xA9\\xFF v=2"), std::string::npos) << message;  // escaped, never raw
  EXPECT_NE(message.find("dropped=1"), std::string::npos) << message;
  // Committed once: a 4xx is not retried by InfluxDB clients, and there was no 5xx.
  auto report = nlohmann::json::parse(RunCommand({EDGELINE_BINARY, "status", "--json"}, env_).output);
  const auto& sink = report["sinks"][0];
  EXPECT_EQ(sink["pending_points"].get<int64_t>() + sink["sent_points"].get<int64_t>(), 2) << report.dump(2);
  EXPECT_TRUE(WaitFor([&] { return influxd_.QueryCount("SELECT count(v) FROM utf", "http") == 2; }, 30s));
  std::map<std::string, double> samples;
  ParsePrometheus(Curl({Url("/metrics")}).body, &samples);
  EXPECT_EQ(samples["edgeline_http_requests_total{path=\"/api/v2/write\",code=\"400\"}"], 1);
  EXPECT_EQ(samples.count("edgeline_http_requests_total{path=\"/api/v2/write\",code=\"500\"}"), 0u);
}

TEST_F(HttpApiTest, MetricsCountEveryAnswerByPathAndStatus) {
  const std::string auth = "Authorization: Token edge-secret-token";
  EXPECT_EQ(Curl({"-X", "POST", Url("/write?db=d"), "--data-binary", "m v=1 1"}).code, 401);
  EXPECT_EQ(Curl({"-X", "POST", Url("/write?db=d&precision=fortnights"), "-H", auth, "--data-binary", "m v=1 1"}).code,
            400);
  EXPECT_EQ(Curl({"-X", "POST", Url("/write?db=d"), "-H", auth, "--data-binary", "only garbage"}).code, 400);
  const std::string big = dir_ + "/big.lp";
  {
    std::ofstream out(big);
    for (int i = 0; i < 3000; ++i) out << "big,k=1 v=" << i << " " << 1764000000000000000 + i << "\n";
  }
  EXPECT_EQ(Curl({"-X", "POST", Url("/write?db=d"), "-H", auth, "--data-binary", "@" + big}).code, 413);
  EXPECT_EQ(Curl({Url("/no/such/path/" + std::to_string(port_))}).code, 404);
  EXPECT_EQ(Curl({"-X", "POST", Url("/write?db=d"), "-H", auth, "--data-binary", "m v=1 1764000000000000000"}).code,
            204);
  std::map<std::string, double> samples;
  auto problems = ParsePrometheus(Curl({Url("/metrics")}).body, &samples);
  EXPECT_TRUE(problems.empty()) << problems[0];
  EXPECT_EQ(samples["edgeline_http_requests_total{path=\"/write\",code=\"401\"}"], 1);
  EXPECT_EQ(samples["edgeline_http_requests_total{path=\"/write\",code=\"400\"}"], 2);
  EXPECT_EQ(samples["edgeline_http_requests_total{path=\"/write\",code=\"413\"}"], 1);
  EXPECT_EQ(samples["edgeline_http_requests_total{path=\"other\",code=\"404\"}"], 1);
  EXPECT_EQ(samples["edgeline_http_requests_total{path=\"/write\",code=\"204\"}"], 1);
}

// HttpApi in process: a real SQLite queue and group committer, a fake clock.
class HttpApiInProcessTest : public ::testing::Test {
 protected:
  static constexpr int64_t kNowNs = 1764001234123456789;

  void SetUp() override {
    dir_ = testing::MakeTempDir("edgeline-http-inproc");
    clock_.SetWallNs(kNowNs);
  }
  void Start(QueueConfig config = {}, AgentProbe probe = {},
             std::vector<std::pair<std::string, FieldType>> declared_types = {}) {
    QueueOpenOptions options;
    options.config = std::move(config);
    options.config.path = dir_ + "/queue.db";
    options.config.sync = SyncMode::kNormal;
    options.clock = &clock_;
    auto queue = OpenSqliteQueue(options);
    ASSERT_TRUE(queue.ok()) << queue.status().ToString();
    queue_ = std::move(queue).value();
    ASSERT_TRUE(queue_->RegisterConsumer("influx", std::string(kRawStream)).ok());
    GroupCommitterOptions committer_options;
    committer_options.retry_delay_ns = kNsPerMs;
    committer_ = std::make_unique<GroupCommitter>(queue_.get(), &clock_, committer_options);
    probe.ingest = &committer_->counters();
    HttpApiOptions api_options;
    api_options.listen = "127.0.0.1:0";
    api_options.max_lines_per_commit = 5;
    guard_ = std::make_unique<FieldTypeGuard>(std::move(declared_types), queue_.get(), &clock_);
    api_ = std::make_unique<HttpApi>(api_options, queue_.get(), committer_.get(), &clock_, std::move(probe),
                                     guard_.get());
    ASSERT_TRUE(api_->Start().ok());
  }
  void TearDown() override {
    api_.reset();
    committer_.reset();
    guard_.reset();
    queue_.reset();
    std::filesystem::remove_all(dir_);
  }
  httplib::Client Client() {
    httplib::Client c("127.0.0.1", api_->port());
    c.set_read_timeout(60, 0);
    return c;
  }
  std::vector<std::string> QueuedLines() {
    auto batches = queue_->Read("influx", 1'000'000);
    EXPECT_TRUE(batches.ok());
    std::vector<std::string> lines;
    if (batches.ok()) {
      for (const Batch& b : *batches) lines.insert(lines.end(), b.lines.begin(), b.lines.end());
    }
    return lines;
  }
  double Sample(const std::string& name) {
    std::map<std::string, double> samples;
    ParsePrometheus(api_->Metrics(), &samples);
    return samples[name];
  }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<Queue> queue_;
  std::unique_ptr<GroupCommitter> committer_;
  std::unique_ptr<FieldTypeGuard> guard_;
  std::unique_ptr<HttpApi> api_;
};

TEST_F(HttpApiInProcessTest, MetricsShowEachMqttSessionsHeldQos2AndSuppressedDuplicates) {
  Start();
  ASSERT_TRUE(queue_->PutMqttState("e tcp://b:1", "r-1", "p").ok());
  ASSERT_TRUE(queue_->PutMqttState("e tcp://b:1", "r-2", "p").ok());
  ASSERT_TRUE(queue_->CountSuppressedDuplicate("e tcp://b:1").ok());
  EXPECT_EQ(Sample("edgeline_mqtt_inbound_qos2{session=\"e tcp://b:1\"}"), 2);
  EXPECT_EQ(Sample("edgeline_mqtt_duplicates_suppressed_total{session=\"e tcp://b:1\"}"), 1);
}

// InfluxDB accepts a line break inside a quoted string field; the point must reach the queue
// whole, and the lines around it too.
TEST_F(HttpApiInProcessTest, AStringFieldWithALineBreakIsOnePoint) {
  Start();
  const std::string ts = std::to_string(kNowNs);
  auto answer = Client().Post("/api/v2/write?bucket=b", "m note=\"4\n2\" " + ts + "\r\nm v=1 " + ts + "\n", "text/plain");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 204) << answer->body;
  EXPECT_EQ(QueuedLines(), (std::vector<std::string>{"m note=\"4\n2\" " + ts, "m v=1 " + ts}));
}

// With declared types, a wrong-typed field costs that field only: the rest of its point is
// committed, the field is a replayable dead letter, and the client is told in a 400.
TEST_F(HttpApiInProcessTest, AFieldOfTheWrongDeclaredTypeIsRefusedAloneAndNamed) {
  Start({}, {}, {{"temperature", FieldType::kFloat}});
  const std::string ts = std::to_string(kNowNs);
  const std::string body = "genData,generatorID=g18 temperature=\"hot\",fuel=5 " + ts + "\n" +
                           "genData,generatorID=g1 temperature=186,fuel=277 " + ts + "\n" +
                           "genData,generatorID=g19 temperature=true " + ts + "\n";
  auto answer = Client().Post("/api/v2/write?bucket=b", body, "text/plain");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 400) << answer->body;
  auto j = nlohmann::json::parse(answer->body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << answer->body;
  const std::string message = j["message"].get<std::string>();
  EXPECT_EQ(message.rfind("partial write: line 1: ", 0), 0u) << message;
  EXPECT_NE(message.find("field temperature is string, expected float"), std::string::npos) << message;
  EXPECT_NE(message.find("line 3: "), std::string::npos) << message;
  EXPECT_NE(message.find("dropped=1"), std::string::npos) << message;  // only g19 lost every field
  EXPECT_EQ(QueuedLines(), (std::vector<std::string>{"genData,generatorID=g18 fuel=5 " + ts,
                                                     "genData,generatorID=g1 temperature=186,fuel=277 " + ts}));
  auto dead = queue_->DeadLetters("ingest", 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 2u);
  std::set<std::string> payloads = {(*dead)[0].payload, (*dead)[1].payload};
  EXPECT_EQ(payloads, (std::set<std::string>{"genData,generatorID=g18 temperature=\"hot\" " + ts,
                                             "genData,generatorID=g19 temperature=true " + ts}));
  EXPECT_EQ((*dead)[0].topic, "http/b");
  EXPECT_EQ(Sample("edgeline_ingest_refused_fields_total"), 2);
}

// Regression: a body over max_lines_per_commit was committed chunk by chunk, and a failure of a
// later chunk answered 503 after the first was committed (the client's retry duplicated it).
TEST_F(HttpApiInProcessTest, CommitFailureAnswers503WithNothingCommitted) {
  QueueConfig config;
  config.full_policy = QueueFullPolicy::kBackpressure;
  config.max_bytes = 4096;
  Start(config);
  // Chunk 1 (5 short lines) fits the queue's bound; chunk 2 (5 lines of incompressible text)
  // does not, so the queue refuses it (backpressure) until the committer stops.
  std::string body;
  for (int i = 0; i < 5; ++i) body += "small v=" + std::to_string(i) + " " + std::to_string(kNowNs + i) + "\n";
  std::mt19937 random(7);
  for (int i = 0; i < 5; ++i) {
    std::string text;
    for (int k = 0; k < 4000; ++k) text += static_cast<char>('a' + random() % 26);
    body += "large s=\"" + text + "\" " + std::to_string(kNowNs + i) + "\n";
  }
  int status = 0;
  std::string answer;
  std::thread client([&] {
    auto r = Client().Post("/api/v2/write?bucket=b", body, "text/plain");
    if (r) status = r->status, answer = r->body;
  });
  const bool refused = testing::WaitFor([&] { return committer_->counters().commit_failures.load() >= 1; }, 20s);
  committer_->Stop();  // the waiting commit is refused: Unavailable
  client.join();
  ASSERT_TRUE(refused);
  EXPECT_EQ(status, 503) << answer;
  EXPECT_FALSE(nlohmann::json::parse(answer, nullptr, false).is_discarded()) << answer;
  EXPECT_TRUE(QueuedLines().empty()) << QueuedLines().size() << " line(s) committed before a 503";
  auto stats = queue_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->points, 0);
  EXPECT_EQ(Sample("edgeline_http_requests_total{path=\"/api/v2/write\",code=\"503\"}"), 1);
}

TEST_F(HttpApiInProcessTest, ABodyOverTheChunkSizeIsCommittedAsBatchesOfOneTransaction) {
  Start();
  std::string body;
  for (int i = 0; i < 12; ++i) body += "m v=" + std::to_string(i) + " " + std::to_string(kNowNs + i) + "\n";
  auto answer = Client().Post("/api/v2/write?bucket=b", body, "text/plain");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 204) << answer->body;
  auto batches = queue_->Read("influx", 1'000'000);
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 3u);  // 5 + 5 + 2
  EXPECT_EQ((*batches)[2].lines.size(), 2u);
  EXPECT_EQ(committer_->counters().commits.load(), 1);
}

// Regression: a handler's exception became httplib's empty 500, neither logged nor counted.
TEST_F(HttpApiInProcessTest, HandlerExceptionAnswersJson500AndIsCounted) {
  auto throws = std::make_shared<std::atomic<bool>>(true);
  AgentProbe probe;
  probe.mqtt_sessions = [throws]() -> int {
    if (throws->exchange(false)) throw std::runtime_error("probe broke \xFF");
    return 1;
  };
  Start({}, probe);
  auto answer = Client().Get("/metrics");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 500);
  auto j = nlohmann::json::parse(answer->body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << answer->body;
  EXPECT_EQ(j["code"], "internal error");
  EXPECT_NE(j["message"].get<std::string>().find("probe broke \\xFF"), std::string::npos) << answer->body;
  EXPECT_EQ(Sample("edgeline_http_requests_total{path=\"/metrics\",code=\"500\"}"), 1);
}

// Lines without a timestamp get the request's receive time truncated to its precision, as
// InfluxDB does (models.Point.SetPrecision: time.Truncate).
TEST_F(HttpApiInProcessTest, ReceiveTimeIsTruncatedToTheRequestsPrecision) {
  Start();
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"/api/v2/write?bucket=b&precision=ns", 1764001234123456789},
      {"/api/v2/write?bucket=b&precision=us", 1764001234123456000},
      {"/api/v2/write?bucket=b&precision=ms", 1764001234123000000},
      {"/api/v2/write?bucket=b&precision=s", 1764001234000000000},
      {"/write?db=d&precision=u", 1764001234123456000},
      {"/write?db=d&precision=m", 1764001200000000000},
      {"/write?db=d&precision=h", 1764000000000000000},
  };
  for (const auto& [path, expected] : cases) {
    auto answer = Client().Post(path, "nots v=1", "text/plain");
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 204) << path << ": " << answer->body;
  }
  std::vector<std::string> lines = QueuedLines();
  ASSERT_EQ(lines.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(lines[i], "nots v=1 " + std::to_string(cases[i].second)) << cases[i].first;
  }
}

}  // namespace
}  // namespace edgeline
