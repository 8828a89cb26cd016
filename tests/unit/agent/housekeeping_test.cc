// Housekeeping's agent-state record for the outage capacity: the ingest rate (IngestRateMeter over
// the committer's committed points, on the injected steady clock) and the queue's bound and
// policy, read back by `edgeline status`. FakeClock, a real temporary queue, no threads, no sleeps.
#include "agent/housekeeping.h"

#include <map>
#include <memory>
#include <string>

#include "agent/status_report.h"
#include "gtest/gtest.h"
#include "ingest/group_committer.h"
#include "ingest/mapping.h"
#include "ingest/mqtt_ingest.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

TEST(IngestRateMeter, NoRateUntilTwoSamplesASecondApart) {
  IngestRateMeter meter(60 * kNsPerSec);
  EXPECT_FALSE(meter.Current());
  meter.Sample(10 * kNsPerSec, 0);
  EXPECT_FALSE(meter.Current());
  meter.Sample(10 * kNsPerSec + 500 * kNsPerMs, 400);
  EXPECT_FALSE(meter.Current());
  meter.Sample(11 * kNsPerSec, 1000);
  ASSERT_TRUE(meter.Current());
  EXPECT_DOUBLE_EQ(meter.Current()->points_per_s, 1000.0);
  EXPECT_DOUBLE_EQ(meter.Current()->window_s, 1.0);
}

TEST(IngestRateMeter, MeasuresOverTheRecentWindowOnly) {
  IngestRateMeter meter(60 * kNsPerSec);
  int64_t points = 0;
  // 120 s at 1,000 points/s, one sample a second.
  for (int s = 0; s <= 120; ++s) {
    meter.Sample(s * kNsPerSec, points);
    points += 1000;
  }
  points -= 1000;  // the count at t = 120 s
  ASSERT_TRUE(meter.Current());
  EXPECT_DOUBLE_EQ(meter.Current()->points_per_s, 1000.0);
  EXPECT_DOUBLE_EQ(meter.Current()->window_s, 60.0);
  // Then ingest stops: half the window later the rate is half, a window later it is 0.
  for (int s = 121; s <= 150; ++s) meter.Sample(s * kNsPerSec, points);
  EXPECT_DOUBLE_EQ(meter.Current()->points_per_s, 500.0);
  for (int s = 151; s <= 180; ++s) meter.Sample(s * kNsPerSec, points);
  EXPECT_DOUBLE_EQ(meter.Current()->points_per_s, 0.0);
  EXPECT_DOUBLE_EQ(meter.Current()->window_s, 60.0);
}

TEST(IngestRateMeter, ACounterThatGoesBackStartsOver) {
  IngestRateMeter meter;
  meter.Sample(0, 5000);
  meter.Sample(kNsPerSec, 6000);
  meter.Sample(2 * kNsPerSec, 10);  // another run's counter
  EXPECT_FALSE(meter.Current());
  meter.Sample(4 * kNsPerSec, 210);
  EXPECT_DOUBLE_EQ(meter.Current()->points_per_s, 100.0);
}

class HousekeepingStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    QueueOpenOptions o;
    o.config.path = dir_.File("queue.db");
    o.config.sync = SyncMode::kNormal;
    o.clock = &clock_;
    auto q = OpenSqliteQueue(o);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    queue_ = std::move(q).value();
    committer_ = std::make_unique<GroupCommitter>(queue_.get(), &clock_, GroupCommitterOptions{});
    mqtt_ = std::make_unique<MqttIngest>(MqttConfig{}, [](const MqttMessage&) { return Status::Ok(); });
    Housekeeping::Parts parts;
    parts.queue = queue_.get();
    parts.clock = &clock_;
    parts.remap = [this](std::string_view t, std::string_view p, int64_t ns) { return mapper_.Prepare(t, p, ns); };
    parts.committer = committer_.get();
    parts.mqtt = mqtt_.get();
    parts.queue_path = o.config.path;
    parts.started_ns = clock_.WallNowNs();
    parts.queue_max_bytes = 64 << 20;
    parts.queue_full_policy = QueueFullPolicy::kBackpressure;
    housekeeping_ = std::make_unique<Housekeeping>(std::move(parts));
  }

  // `n` MQTT messages of one point each, committed as the agent would.
  void Ingest(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(committer_
                      ->Submit(mapper_.Prepare("emergency_generator/g1",
                                               R"({"generatorID": "g1", "fuel": )" + std::to_string(i) + "}",
                                               clock_.WallNowNs()))
                      .ok());
    }
  }

  std::map<std::string, std::string> State() {
    auto kv = queue_->AgentState();
    EXPECT_TRUE(kv.ok());
    return kv.ok() ? std::map<std::string, std::string>(kv->begin(), kv->end()) : std::map<std::string, std::string>{};
  }

  TempDir dir_;
  FakeClock clock_;
  Mapper mapper_{MappingConfig{}};
  std::unique_ptr<Queue> queue_;
  std::unique_ptr<GroupCommitter> committer_;
  std::unique_ptr<MqttIngest> mqtt_;
  std::unique_ptr<Housekeeping> housekeeping_;
};

TEST_F(HousekeepingStateTest, RecordsTheIngestRateAndTheBoundForStatus) {
  ASSERT_TRUE(housekeeping_->WriteState(true).ok());
  auto state = State();
  EXPECT_EQ(state["ingest_rate"], "");  // one sample: not measured yet
  EXPECT_EQ(state["queue_max_bytes"], std::to_string(64 << 20));
  EXPECT_EQ(state["queue_full_policy"], "backpressure");

  // 20 points a second for 5 s, one state write a second (the housekeeping loop's pace).
  for (int s = 0; s < 5; ++s) {
    Ingest(20);
    clock_.AdvanceNs(kNsPerSec);
    ASSERT_TRUE(housekeeping_->WriteState(true).ok());
  }
  state = State();
  EXPECT_EQ(state["ingest_rate"], "20.000");
  EXPECT_EQ(state["ingest_rate_window_s"], "5.0");

  // `edgeline status` reads it back.
  auto report = BuildStatusReport(queue_.get(), dir_.File("queue.db"), clock_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const nlohmann::json& c = (*report)["capacity"];
  EXPECT_DOUBLE_EQ(c["ingest_rate"].get<double>(), 20.0);
  EXPECT_EQ(c["bound_source"], "agent");
  EXPECT_EQ((*report)["queue"]["max_bytes"].get<int64_t>(), 64 << 20);
  EXPECT_EQ((*report)["queue"]["full_policy"], "backpressure");
  EXPECT_EQ((*report)["queue"]["points"].get<int64_t>(), 100);
  EXPECT_EQ(c["state"], "not-enough-data");  // 100 points held: no bytes-per-point estimate yet
}

// Wrong device clocks, from the mapper through the committer's counters to `edgeline status`.
TEST_F(HousekeepingStateTest, RecordsWrongDeviceClocksForStatus) {
  MappingConfig config;
  config.time_key = "ts";
  config.time_format = "s";
  const int64_t now = clock_.WallNowNs();
  const std::string ahead = std::to_string(now / kNsPerSec + 7200);
  for (const char* policy : {"receive-time", "dlq"}) {
    config.time_policy = policy;
    Mapper mapper(config);
    for (const std::string& ts : {std::string("504921600"), ahead, std::to_string(now / kNsPerSec)}) {
      ASSERT_TRUE(
          committer_->Submit(mapper.Prepare("emergency_generator/g1", R"({"fuel": 1, "ts": )" + ts + "}", now)).ok());
    }
  }
  ASSERT_TRUE(housekeeping_->WriteState(true).ok());
  auto state = State();
  EXPECT_EQ(state["device_time_adjusted"], "2");
  EXPECT_EQ(state["device_time_rejected"], "2");

  auto report = BuildStatusReport(queue_.get(), dir_.File("queue.db"), clock_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ((*report)["agent"]["device_time_adjusted"].get<int64_t>(), 2);
  EXPECT_EQ((*report)["agent"]["device_time_rejected"].get<int64_t>(), 2);
  EXPECT_EQ((*report)["agent"]["committed_points"].get<int64_t>(), 4);
  EXPECT_EQ((*report)["queue"]["ingest_rejected"].get<int64_t>(), 2);
}

TEST_F(HousekeepingStateTest, WithoutABoundInItsPartsNothingIsRecordedForIt) {
  Housekeeping::Parts parts;
  parts.queue = queue_.get();
  parts.clock = &clock_;
  parts.remap = [this](std::string_view t, std::string_view p, int64_t ns) { return mapper_.Prepare(t, p, ns); };
  parts.committer = committer_.get();
  parts.mqtt = mqtt_.get();
  Housekeeping bare(std::move(parts));
  ASSERT_TRUE(bare.WriteState(true).ok());
  auto state = State();
  EXPECT_EQ(state.count("queue_max_bytes"), 0u);
  EXPECT_EQ(state.count("queue_full_policy"), 0u);
}

}  // namespace
}  // namespace edgeline
