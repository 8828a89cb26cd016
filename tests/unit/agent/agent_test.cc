// The Agent composed with a test Env: a FakeClock and an HTTP transport that records what the
// InfluxDB sink sends. A point written to the agent's local endpoint (the HTTP write path into
// the group committer) reaches the sink's transport, stamped with the Env's clock, and Stop()
// leaves the agent state "stopped". MQTT points at a closed loopback port (never connected).
#include "agent/agent.h"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"
#include "tests/support/gunzip.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

constexpr int64_t kWallNs = 1764000000000000000;

// Every request the sink sends, answered 204.
class RecordingTransport final : public HttpTransport {
 public:
  struct Log {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<HttpRequest> requests;
  };
  explicit RecordingTransport(Log* log) : log_(log) {}
  Result<HttpResponse> Send(const HttpRequest& request) override {
    {
      std::lock_guard lock(log_->mu);
      log_->requests.push_back(request);
    }
    log_->cv.notify_all();
    HttpResponse response;
    response.status = 204;
    return response;
  }

 private:
  Log* log_;
};

class TestEnv final : public Env {
 public:
  const Clock* clock() override { return &clock_; }
  std::unique_ptr<HttpTransport> NewHttpTransport(const HttpTransportOptions&) override {
    ++transports;
    return std::make_unique<RecordingTransport>(&log);
  }
  Result<std::unique_ptr<Producer>> NewKafkaProducer(const KafkaConfig&) override {
    return Status::Unavailable("no Kafka in this test");
  }

  RecordingTransport::Log log;
  int transports = 0;

 private:
  FakeClock clock_{kWallNs};
};

Config AgentConfig(const TempDir& dir) {
  ConfigParseResult parsed = ParseConfig({
      {"EDGELINE_QUEUE_PATH", dir.File("queue.db")},
      {"EDGELINE_MQTT_URL", "tcp://127.0.0.1:1"},
      {"EDGELINE_INFLUX_URL", "http://127.0.0.1:1"},
      {"EDGELINE_INFLUX_API", "v2"},
      {"EDGELINE_INFLUX_ORG", "org"},
      {"EDGELINE_INFLUX_BUCKET", "raw"},
      {"EDGELINE_INFLUX_TOKEN", "token"},
      {"EDGELINE_HTTP_LISTEN", "127.0.0.1:0"},
  });
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.problems[0].message);
  return parsed.config;
}

TEST(AgentTest, ALocalWriteReachesTheInfluxSinkThroughTheEnvsTransportAndClock) {
  TempDir dir;
  TestEnv env;
  Agent agent(AgentConfig(dir), &env);
  ASSERT_TRUE(agent.Start().ok());
  EXPECT_EQ(env.transports, 1);  // one InfluxDB sink (raw)
  ASSERT_GT(agent.http_port(), 0);

  httplib::Client client("127.0.0.1", agent.http_port());
  auto answer = client.Post("/api/v2/write?org=org&bucket=raw", "genData,generatorID=g1 fuel=277", "text/plain");
  ASSERT_TRUE(answer) << httplib::to_string(answer.error());
  EXPECT_EQ(answer->status, 204) << answer->body;

  std::string body;
  {
    std::unique_lock lock(env.log.mu);
    ASSERT_TRUE(env.log.cv.wait_for(lock, std::chrono::seconds(30), [&] { return !env.log.requests.empty(); }));
    const HttpRequest& request = env.log.requests.front();
    EXPECT_NE(request.url.find("/api/v2/write"), std::string::npos) << request.url;
    body = Gunzip(request.body);
  }
  // Stamped once, at the endpoint, with the Env's wall clock.
  EXPECT_EQ(body, "genData,generatorID=g1 fuel=277 " + std::to_string(kWallNs) + "\n");

  agent.Stop();
  auto queue = OpenTestQueue(dir.File("queue.db"), &SystemClock::Instance());
  ASSERT_NE(queue, nullptr);
  auto state = queue->AgentState();
  ASSERT_TRUE(state.ok());
  bool stopped = false;
  for (const auto& [key, value] : *state) stopped |= key == "running" && value == "0";
  EXPECT_TRUE(stopped);
}

TEST(AgentTest, StartFailsWhenAConfiguredSinkCannotBeBuilt) {
  TempDir dir;
  TestEnv env;
  Config config = AgentConfig(dir);
  config.kafka.brokers = "127.0.0.1:1";  // the Env refuses to make a producer
  Agent agent(config, &env);
  Status started = agent.Start();
  EXPECT_FALSE(started.ok());
  EXPECT_NE(started.message().find("no Kafka in this test"), std::string::npos) << started.message();
}

}  // namespace
}  // namespace edgeline
