// AlarmPublisher over a real temporary SQLite queue with a scripted publisher: records go out in
// order, the cursor moves only after every record of a batch was acknowledged, and a broker
// outage delays (with growing waits) but loses nothing.
#include <deque>

#include "agent/alarm_publisher.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

class ScriptedPublisher final : public MessagePublisher {
 public:
  Status Publish(const std::string& topic, const std::string& payload, int qos, bool retained) override {
    calls.push_back({topic, payload, qos, retained});
    if (!failures.empty() && failures.front()) {
      failures.pop_front();
      return Status::Unavailable("broker down");
    }
    if (!failures.empty()) failures.pop_front();
    published.push_back(topic + " " + payload);
    return Status::Ok();
  }
  struct Call {
    std::string topic, payload;
    int qos;
    bool retained;
  };
  std::vector<Call> calls;
  std::vector<std::string> published;
  std::deque<bool> failures;  // per call: true = fail
};

class AlarmPublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue_ = OpenTestQueue(dir_.File("queue.db"), &clock_);
    ASSERT_NE(queue_, nullptr);
  }
  void AppendRecords(std::vector<std::pair<std::string, std::string>> records) {
    BatchInput b;
    b.stream = std::string(kAlarmStream);
    for (auto& [topic, payload] : records) {
      b.lines.push_back(nlohmann::json({{"topic", topic}, {"payload", payload}}).dump());
    }
    ASSERT_TRUE(queue_->Append({b}, {}).ok());
  }
  SinkStatus Sink() {
    auto statuses = queue_->SinkStatuses();  // kept alive: ranging over *SinkStatuses() would dangle
    EXPECT_TRUE(statuses.ok());
    for (const auto& s : *statuses) {
      if (s.sink == kAlarmSink) return s;
    }
    return {};
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Queue> queue_;
  ScriptedPublisher publisher_;
};

TEST_F(AlarmPublisherTest, PublishesRetainedQos1InOrderAndAcksAfterTheBroker) {
  AlarmPublisher alarms(queue_.get(), &publisher_, &clock_);
  ASSERT_TRUE(alarms.Start().ok());
  AppendRecords({{"a/g1/alarm", "{\"value\":\"no action\"}"}, {"a/g2/alarm", "{\"value\":\"refuel\"}"}});
  AppendRecords({{"a/g1/alarm", "{\"value\":\"refuel\"}"}});
  EXPECT_EQ(alarms.Step(), 0);
  EXPECT_EQ(publisher_.published,
            (std::vector<std::string>{"a/g1/alarm {\"value\":\"no action\"}", "a/g2/alarm {\"value\":\"refuel\"}",
                                      "a/g1/alarm {\"value\":\"refuel\"}"}));
  for (const auto& c : publisher_.calls) {
    EXPECT_EQ(c.qos, 1);
    EXPECT_TRUE(c.retained);
  }
  EXPECT_EQ(Sink().pending_points, 0);
  EXPECT_EQ(Sink().sent_points, 3);
  EXPECT_GT(alarms.Step(), 0);  // idle
}

TEST_F(AlarmPublisherTest, BrokerOutageKeepsTheBatchAndBacksOff) {
  AlarmPublisher alarms(queue_.get(), &publisher_, &clock_);
  ASSERT_TRUE(alarms.Start().ok());
  AppendRecords({{"a/g1/alarm", "1"}, {"a/g2/alarm", "2"}});
  publisher_.failures = {false, true, true};  // the second record fails twice
  int64_t first_wait = alarms.Step();
  EXPECT_GT(first_wait, 0);
  EXPECT_EQ(Sink().pending_points, 2);  // half a batch is not acknowledged
  EXPECT_EQ(Sink().state, "offline");
  EXPECT_EQ(Sink().consecutive_failures, 1);
  int64_t second_wait = alarms.Step();
  EXPECT_GT(second_wait, first_wait);
  EXPECT_EQ(alarms.Step(), 0);
  EXPECT_EQ(Sink().pending_points, 0);
  EXPECT_EQ(Sink().state, "ok");
  // The first record went out again with the retry (retained, so harmless); none was lost.
  EXPECT_EQ(publisher_.published, (std::vector<std::string>{"a/g1/alarm 1", "a/g1/alarm 1", "a/g2/alarm 2"}));
}

}  // namespace
}  // namespace edgeline
