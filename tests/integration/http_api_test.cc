// The agent's local HTTP endpoint with REAL servers: curl (as Telegraf would, gzip bodies)
// writes line protocol to edgeline's /api/v2/write and /write; the points must reach a real
// influxd 1.6 through the queue. Also /health and /metrics (checked by a strict Prometheus
// text-format parser here), token checks and InfluxDB's error answers. HttpApi also runs in
// process over a real SQLite queue and group committer, for what the agent cannot show on cue: a
// queue that refuses commits, a handler that throws, a fixed receive time (FakeClock).
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <barrier>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>

#include "agent/http_api.h"
#include "downsample/downsample_task.h"
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
             std::vector<std::pair<std::string, FieldType>> declared_types = {},
             const std::function<void(HttpApiOptions*)>& tune = {}) {
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
    api_options.queue_max_bytes = queue_max_bytes_;
    if (tune) tune(&api_options);
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
  int64_t queue_max_bytes_ = 0;
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

// The outage capacity: the headroom under the bound over the measured bytes per point and the
// ingest rate the agent recorded.
TEST_F(HttpApiInProcessTest, MetricsShowTheQueuesBytesAndOutageCapacity) {
  queue_max_bytes_ = 64 << 20;
  Start();
  BatchInput batch;
  for (int i = 0; i < 2000; ++i) batch.lines.push_back("m v=" + std::to_string(i) + " " + std::to_string(i));
  ASSERT_TRUE(queue_->Append({batch}, {}).ok());
  ASSERT_TRUE(queue_->SetAgentState({{"ingest_rate", "250.000"}}).ok());
  auto stats = queue_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(Sample("edgeline_queue_counted_bytes"), stats->counted_bytes);
  EXPECT_EQ(Sample("edgeline_queue_file_bytes"), stats->file_bytes);
  EXPECT_EQ(Sample("edgeline_queue_max_bytes"), 64 << 20);
  EXPECT_EQ(Sample("edgeline_ingest_rate_points_per_second"), 250);
  const double per_point = static_cast<double>(stats->counted_bytes) / 2000;
  EXPECT_DOUBLE_EQ(Sample("edgeline_queue_bytes_per_point"), per_point);
  EXPECT_NEAR(Sample("edgeline_queue_outage_capacity_seconds"),
              static_cast<double>((64 << 20) - stats->counted_bytes) / (per_point * 250), 1.0);
}

// Per-device last seen and stale state from the downsampler's stored state, at most 10,000
// devices (stale and longest silent first), the rest counted.
TEST_F(HttpApiInProcessTest, MetricsShowDevicesLastSeenAndStaleBoundedTo10000) {
  Start();
  ConfigParseResult parsed = ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_DOWNSAMPLE_PRESET", "seed"},
                                          {"EDGELINE_DOWNSAMPLE_STALE_AFTER", "30s"}});
  ASSERT_TRUE(parsed.ok());
  Downsampler engine(parsed.config.downsample);
  DownsampleOutput out;
  constexpr int64_t kSec = 1'000'000'000;
  auto report = [&](const std::string& generator, int64_t second) {
    Point p;
    p.measurement = "genData";
    p.tags = {{"generatorID", generator}};
    FieldValue fuel;
    fuel.f = 900;
    p.fields = {{"fuel", fuel}};
    p.timestamp_ns = kNowNs + second * kSec;
    engine.NoteArrival(kNowNs + second * kSec, (1 + second) * kSec);
    engine.Add(p, &out);
  };
  report("old", 0);
  for (int i = 0; i < 10'000; ++i) report("g" + std::to_string(i), 20);
  engine.CheckStale(kNowNs + 31 * kSec, 32 * kSec, &out);  // "old" silent for 31 s
  ASSERT_TRUE(queue_->RegisterConsumer(std::string(kDownsamplerSink), std::string(kRawStream)).ok());
  SinkAttempt attempt;
  attempt.state = SinkState::kOk;
  ASSERT_TRUE(queue_->AckWithOutput(std::string(kDownsamplerSink), 0, attempt, {}, engine.SaveState()).ok());
  EXPECT_EQ(Sample("edgeline_devices_tracked"), 10'001);
  EXPECT_EQ(Sample("edgeline_devices_stale"), 1);
  EXPECT_EQ(Sample("edgeline_devices_not_listed"), 1);
  EXPECT_EQ(Sample("edgeline_device_stale{measurement=\"genData\",device=\"generatorID=old\"}"), 1);
  EXPECT_DOUBLE_EQ(Sample("edgeline_device_last_seen_timestamp_seconds{measurement=\"genData\",device=\"generatorID=old\"}"),
                   kNowNs / 1e9);
  auto res = Client().Get("/metrics");
  ASSERT_TRUE(res);
  size_t series = 0;
  for (size_t at = res->body.find("\nedgeline_device_stale{"); at != std::string::npos;
       at = res->body.find("\nedgeline_device_stale{", at + 1)) {
    ++series;
  }
  EXPECT_EQ(series, 10'000u);
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

// A raw HTTP/1.1 connection, for a request whose body arrives in parts on cue.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      throw std::runtime_error("cannot connect");
    }
  }
  ~RawConnection() { ::close(fd_); }
  void Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  // The status line and headers of the next answer (its body, if any, is left unread).
  std::string ReadHead() {
    std::string head;
    char c;
    while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
      if (::recv(fd_, &c, 1, 0) != 1) break;
      head += c;
    }
    return head;
  }

 private:
  int fd_ = -1;
};

std::string Lines(const std::string& measurement, int first, int count, int64_t base_ns) {
  std::string body;
  for (int i = first; i < first + count; ++i) {
    body += measurement + ",src=s seq=" + std::to_string(i) + "i " + std::to_string(base_ns + i) + "\n";
  }
  return body;
}

// Issue 16: 40 keep-alive clients at once (as the InfluxDB JavaScript client opens them), all
// connected at the same time, each posting several batches on its connection: every request is
// answered 204 and every point is committed exactly once. (httplib's own 8 threads stayed pinned
// to idle keep-alive connections and left the others unanswered; how fast is bench/http_burst.sh.)
TEST_F(HttpApiInProcessTest, FortyConcurrentKeepAliveClientsAreAllAnsweredAndCommittedOnce) {
  Start();
  constexpr int kClients = 40, kBatches = 5, kLines = 100;
  std::barrier all_connected(kClients);
  std::vector<std::vector<int>> statuses(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client client = Client();
      client.set_keep_alive(true);
      for (int b = 0; b < kBatches; ++b) {
        auto r = client.Post("/api/v2/write?bucket=b&precision=ns",
                             Lines("burst", (c * kBatches + b) * kLines, kLines, kNowNs), "text/plain");
        statuses[c].push_back(r ? r->status : -100 - static_cast<int>(r.error()));
        // Every client holds its connection open before any sends its second batch.
        if (b == 0) all_connected.arrive_and_wait();
      }
    });
  }
  for (std::thread& t : clients) t.join();
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(statuses[c], std::vector<int>(kBatches, 204)) << "client " << c;
  std::vector<std::string> lines = QueuedLines();
  EXPECT_EQ(lines.size(), static_cast<size_t>(kClients * kBatches * kLines));
  std::set<std::string> distinct(lines.begin(), lines.end());
  std::string all = Lines("burst", 0, kClients * kBatches * kLines, kNowNs);
  std::set<std::string> expected;
  for (size_t at = 0, end; (end = all.find('\n', at)) != std::string::npos; at = end + 1) {
    expected.insert(all.substr(at, end - at));
  }
  EXPECT_EQ(distinct, expected);
  EXPECT_EQ(Sample("edgeline_http_requests_total{path=\"/api/v2/write\",code=\"204\"}"), kClients * kBatches);
  EXPECT_EQ(Sample("edgeline_http_points_written_total"), kClients * kBatches * kLines);
}

// Memory bound: while one request holds more body bytes than max_inflight_body_bytes (allowed:
// it is alone), a second write is answered 503 with Retry-After and nothing of it is committed;
// once the first is done, the same write is accepted.
TEST_F(HttpApiInProcessTest, AWriteOverTheInflightBodyBudgetGets503WithRetryAfterAndNothingCommitted) {
  Start({}, {}, {}, [](HttpApiOptions* o) {
    o->max_inflight_body_bytes = 64;
    o->retry_after_s = 7;
  });
  const std::string first = Lines("first", 0, 10, kNowNs);
  ASSERT_GT(first.size(), 128u);
  RawConnection slow(api_->port());
  slow.Send("POST /api/v2/write?bucket=b HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: " +
            std::to_string(first.size()) + "\r\n\r\n" + first.substr(0, 100));
  ASSERT_TRUE(testing::WaitFor([&] { return api_->inflight_body_bytes() == 100; }, 20s, 1ms))
      << api_->inflight_body_bytes();

  const std::string second = Lines("second", 0, 1, kNowNs);
  auto refused = Client().Post("/api/v2/write?bucket=b", second, "text/plain");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_EQ(refused->get_header_value("Retry-After"), "7");
  auto j = nlohmann::json::parse(refused->body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << refused->body;
  EXPECT_EQ(j["code"], "unavailable");
  EXPECT_EQ(api_->inflight_body_bytes(), 100);  // the refused body's bytes were given back
  EXPECT_TRUE(QueuedLines().empty());

  slow.Send(first.substr(100));
  EXPECT_EQ(slow.ReadHead().rfind("HTTP/1.1 204", 0), 0u);
  EXPECT_EQ(api_->inflight_body_bytes(), 0);
  auto accepted = Client().Post("/api/v2/write?bucket=b", second, "text/plain");
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 204) << accepted->body;
  std::vector<std::string> lines = QueuedLines();
  EXPECT_EQ(lines.size(), 11u);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "second,src=s seq=0i " + std::to_string(kNowNs)), 1);
  EXPECT_EQ(Sample("edgeline_http_requests_total{path=\"/api/v2/write\",code=\"503\"}"), 1);
}

// Thread bound: with max_connections connections open (idle keep-alive ones pin their threads),
// one more is still answered at once: a write gets 503 with Retry-After and "Connection: close",
// nothing committed; /health is served (with "Connection: close"). When a connection closes, its
// thread serves the next one.
TEST_F(HttpApiInProcessTest, AConnectionOverMaxConnectionsIsAnswered503WithRetryAfterAndClosed) {
  Start({}, {}, {}, [](HttpApiOptions* o) {
    o->max_connections = 2;
    o->keep_alive_timeout_s = 120;  // the two stay pinned for the whole test
  });
  auto held1 = std::make_unique<httplib::Client>("127.0.0.1", api_->port());
  httplib::Client held2("127.0.0.1", api_->port());
  for (httplib::Client* c : {held1.get(), &held2}) {
    c->set_keep_alive(true);
    auto r = c->Get("/ping");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 204);
  }

  const std::string line = Lines("over", 0, 1, kNowNs);
  auto refused = Client().Post("/api/v2/write?bucket=b", line, "text/plain");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  EXPECT_EQ(refused->get_header_value("Connection"), "close");
  auto health = Client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;
  EXPECT_EQ(health->get_header_value("Connection"), "close");
  EXPECT_TRUE(QueuedLines().empty());

  // The held connections are still served.
  auto on_held = held2.Post("/api/v2/write?bucket=b", Lines("held", 0, 1, kNowNs), "text/plain");
  ASSERT_TRUE(on_held);
  EXPECT_EQ(on_held->status, 204);

  held1.reset();  // its thread is free once the server sees the close
  int status = 0;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        auto r = Client().Post("/api/v2/write?bucket=b", line, "text/plain");
        status = r ? r->status : -1;
        return status != 503;
      },
      20s, 1ms));
  EXPECT_EQ(status, 204);
  std::vector<std::string> lines = QueuedLines();
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "over,src=s seq=0i " + std::to_string(kNowNs)), 1);
  EXPECT_EQ(lines.size(), 2u);
}

}  // namespace
}  // namespace edgeline
