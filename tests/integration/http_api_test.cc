// The agent's local HTTP endpoint with REAL servers: curl (as Telegraf would, gzip bodies)
// writes line protocol to edgeline's /api/v2/write and /write; the points must reach a real
// influxd 1.6 through the queue. Also /health and /metrics (checked by a strict Prometheus
// text-format parser here), token checks and InfluxDB's error answers.
#include <fstream>
#include <regex>
#include <set>

#include "gtest/gtest.h"
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

}  // namespace
}  // namespace edgeline
