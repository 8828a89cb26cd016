// `edgeline simulate` against a real mosquitto (tests/support/harness.h): every message arrives
// on its generator's topic with the seed's payload, and an unreachable broker is exit code 1.
#include "tools/simulator.h"

#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "tests/support/harness.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;

// Keeps every message (the harness Subscriber keeps only the last per topic).
class Recorder {
 public:
  Recorder(const std::string& url, const std::string& filter) : client_(url, "simulator-test-recorder") {
    client_.set_message_callback([this](mqtt::const_message_ptr msg) {
      std::lock_guard lock(mu_);
      messages_.emplace_back(msg->get_topic(), msg->to_string());
    });
    mqtt::connect_options opts;
    opts.set_clean_session(true);
    client_.connect(opts)->wait();
    client_.subscribe(filter, 1)->wait();
  }
  ~Recorder() {
    try {
      client_.disconnect()->wait();
    } catch (const mqtt::exception&) {
    }
  }
  std::vector<std::pair<std::string, std::string>> Messages() const {
    std::lock_guard lock(mu_);
    return messages_;
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return messages_.size();
  }

 private:
  mqtt::async_client client_;
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> messages_;
};

TEST(SimulatorIntegrationTest, ThirtyMessagesArriveOnTheirGeneratorsTopics) {
  testing::Mosquitto broker;
  Recorder recorder(broker.url(), "emergency_generator/#");
  auto options = ParseSimulatorArgs({"--count", "30", "--generators", "3", "--rate", "100", "--seed", "1"},
                                    {{"EDGELINE_MQTT_URL", broker.url()}});
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(RunSimulator(*options, std::stop_token()), 0);
  ASSERT_TRUE(testing::WaitFor([&] { return recorder.size() >= 30; }, 10s)) << recorder.size();

  std::map<std::string, int> per_topic;
  for (const auto& [topic, payload] : recorder.Messages()) {
    auto j = nlohmann::json::parse(payload);
    EXPECT_EQ(topic, "emergency_generator/" + j["generatorID"].get<std::string>());
    EXPECT_TRUE(j["fuel"].is_number_integer());
    per_topic[topic]++;
  }
  EXPECT_EQ(recorder.size(), 30u);
  EXPECT_EQ(per_topic, (std::map<std::string, int>{{"emergency_generator/generator1", 10},
                                                   {"emergency_generator/generator2", 10},
                                                   {"emergency_generator/generator3", 10}}));
}

TEST(SimulatorIntegrationTest, RateMaxAtQos0AndQos2DeliversEverything) {
  testing::Mosquitto broker;
  for (int qos : {0, 2}) {
    Recorder recorder(broker.url(), "bench/#");
    SimulatorOptions options;
    options.url = broker.url();
    options.rate = kRateMax;
    options.qos = qos;
    options.count = 2000;
    options.topic_prefix = "bench";
    options.generators = 4;
    EXPECT_EQ(RunSimulator(options, std::stop_token()), 0) << "qos " << qos;
    EXPECT_TRUE(testing::WaitFor([&] { return recorder.size() >= 2000; }, 10s))
        << "qos " << qos << ": " << recorder.size();
  }
}

TEST(SimulatorIntegrationTest, StopTokenEndsAnUnlimitedRun) {
  testing::Mosquitto broker;
  SimulatorOptions options;
  options.url = broker.url();
  options.rate = 200;
  std::stop_source stop;
  int code = -1;
  std::thread runner([&] { code = RunSimulator(options, stop.get_token()); });
  Recorder recorder(broker.url(), "emergency_generator/#");
  EXPECT_TRUE(testing::WaitFor([&] { return recorder.size() >= 10; }, 10s));
  stop.request_stop();
  runner.join();
  EXPECT_EQ(code, 0);
}

// --silence: the named generator publishes nothing from its delay on; the others go on.
TEST(SimulatorIntegrationTest, ASilencedGeneratorPublishesNothingAfterItsDelay) {
  testing::Mosquitto broker;
  Recorder recorder(broker.url(), "emergency_generator/#");
  auto options = ParseSimulatorArgs({"--count", "20", "--generators", "2", "--rate", "100", "--silence", "generator2@0s"},
                                    {{"EDGELINE_MQTT_URL", broker.url()}});
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  EXPECT_EQ(RunSimulator(*options, std::stop_token()), 0);
  ASSERT_TRUE(testing::WaitFor([&] { return recorder.size() >= 20; }, 10s)) << recorder.size();
  for (const auto& [topic, payload] : recorder.Messages()) EXPECT_EQ(topic, "emergency_generator/generator1");
  EXPECT_EQ(recorder.size(), 20u);
}

TEST(SimulatorIntegrationTest, UnreachableBrokerIsExitCode1) {
  SimulatorOptions options;
  options.url = "tcp://127.0.0.1:" + std::to_string(testing::FreePort());
  options.count = 1;
  EXPECT_EQ(RunSimulator(options, std::stop_token()), 1);
}

}  // namespace
}  // namespace edgeline
