// KafkaMirror against the real SQLite queue and a fake producer whose delivery reports the test
// hands out one by one, in any order: the cursor, sink status and dead letters the mirror leaves
// behind are what `edgeline status` reads. No threads, no sleeps: FakeClock.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "kafka/kafka_mirror.h"
#include "kafka/producer.h"
#include "kafka/record_format.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

class FakeProducer final : public Producer {
 public:
  struct Record {
    std::string topic;
    std::string key;
    std::string value;
    DeliveryListener* listener;
    uint64_t token;
    std::vector<std::pair<std::string, std::string>> headers;
  };

  Status Produce(std::string_view topic, std::string_view key, std::string_view value,
                 std::span<const RecordHeader> headers, DeliveryListener* listener, uint64_t token) override {
    if (fail_next_n > 0 && pass_first_n-- <= 0) {
      --fail_next_n;
      return fail_status;
    }
    std::vector<std::pair<std::string, std::string>> copied;
    for (const RecordHeader& h : headers) copied.emplace_back(std::string(h.name), std::string(h.value));
    all.push_back({std::string(topic), std::string(key), std::string(value), listener, token, std::move(copied)});
    outstanding.push_back(all.size() - 1);
    return Status::Ok();
  }
  int Poll(int) override { return 0; }
  Status Flush(int) override { return Status::Ok(); }
  Status LastError() const override { return last_error; }
  std::string Description() const override { return "fake"; }

  // Reports every outstanding record whose value satisfies `pred`; returns how many.
  int DeliverIf(const std::function<bool(const Record&)>& pred, const Status& status = Status::Ok()) {
    int n = 0;
    std::vector<size_t> keep;
    std::vector<size_t> report;
    for (size_t i : outstanding) (pred(all[i]) ? report : keep).push_back(i);
    outstanding = keep;
    for (size_t i : report) {
      all[i].listener->OnDelivery(all[i].token, status);
      if (status.ok()) delivered.push_back(all[i].value);
      ++n;
    }
    return n;
  }
  int DeliverValue(const std::string& value, const Status& status = Status::Ok()) {
    return DeliverIf([&](const Record& r) { return r.value == value; }, status);
  }
  int DeliverAll() {
    return DeliverIf([](const Record&) { return true; });
  }

  std::vector<Record> all;             // every record ever produced
  std::vector<size_t> outstanding;     // indexes into `all`, not yet reported
  std::vector<std::string> delivered;  // values reported OK, in report order
  int fail_next_n = 0;                 // fail this many Produce calls ...
  int pass_first_n = 0;                // ... after letting this many through
  Status fail_status = Status::ResourceExhausted("_QUEUE_FULL: Local: Queue full");
  Status last_error;
};

// The record's edgeline-id header ("" when it has none; "<several>" when it has it twice).
std::string Id(const FakeProducer::Record& r) {
  std::string id;
  int n = 0;
  for (const auto& [name, value] : r.headers) {
    if (name == "edgeline-id") id = value, ++n;
  }
  return n > 1 ? "<several>" : id;
}

const Status kTimedOut = Status::Unavailable("_MSG_TIMED_OUT: Local: Message timed out");

class KafkaMirrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue_ = OpenTestQueue(dir_.File("queue.db"), &clock_);
    ASSERT_NE(queue_, nullptr);
    options_.format = KafkaFormat::kLineProtocol;  // value = line: easy to tell records apart
    options_.max_in_flight = 100;
    options_.retry_min_ns = 100 * kNsPerMs;
    options_.retry_max_ns = 1 * kNsPerSec;
    options_.slow_retry_ns = 5 * kNsPerSec;
    options_.random = Backoff::SeededRandom(7);
  }
  void TearDown() override {
    mirrors_.clear();
    queue_.reset();
  }

  KafkaMirror& RawMirror() {
    Result<TopicRouter> router =
        TopicRouter::FromRoutes({{"EGgen1", "emergency_generator/generator1"}, {"EGgens", "emergency_generator/.*"}});
    EXPECT_TRUE(router.ok());
    mirrors_.push_back(std::make_unique<KafkaMirror>("kafka-raw", std::string(kRawStream), queue_.get(), &producer_,
                                                     &clock_, std::move(router).value(), options_));
    EXPECT_TRUE(mirrors_.back()->Start().ok());
    return *mirrors_.back();
  }

  // One batch on the raw stream; lines[i] came from topics[i] (consecutive equal topics = one run).
  int64_t AppendRaw(const std::vector<std::string>& lines, const std::vector<std::string>& topics) {
    BatchInput in;
    in.lines = lines;
    for (const std::string& t : topics) {
      if (!in.sources.empty() && in.sources.back().topic == t) {
        ++in.sources.back().lines;
      } else {
        in.sources.push_back({t, 1});
      }
    }
    return AppendInput(std::move(in));
  }
  int64_t AppendInput(BatchInput in) {
    auto seqs = queue_->Append({in}, {});
    EXPECT_TRUE(seqs.ok()) << seqs.status().ToString();
    return seqs.ok() ? seqs->front() : 0;
  }
  // A batch of `n` generator1 lines with unique values.
  int64_t AppendGen1(int n) {
    std::vector<std::string> lines, topics;
    for (int i = 0; i < n; ++i) lines.push_back(Line("generator1", next_value_++)), topics.push_back(kGen1);
    return AppendRaw(lines, topics);
  }
  static std::string Line(const std::string& generator, int value) {
    return "genData,generatorID=" + generator + " fuel=" + std::to_string(value) + " " +
           std::to_string(1764000000000000000 + value);
  }

  SinkStatus Sink(const std::string& name) {
    auto statuses = queue_->SinkStatuses();
    EXPECT_TRUE(statuses.ok());
    for (const SinkStatus& s : *statuses) {
      if (s.sink == name) return s;
    }
    ADD_FAILURE() << "no sink status for " << name;
    return {};
  }
  int64_t Cursor(const std::string& name = "kafka-raw") { return Sink(name).cursor_seq; }

  static constexpr const char* kGen1 = "emergency_generator/generator1";
  static constexpr const char* kGen2 = "emergency_generator/generator2";

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Queue> queue_;
  FakeProducer producer_;
  KafkaMirrorOptions options_;
  std::vector<std::unique_ptr<KafkaMirror>> mirrors_;
  int next_value_ = 1;
};

TEST_F(KafkaMirrorTest, CursorMovesOnlyOverTheDeliveredPrefixWhateverTheReportOrder) {
  KafkaMirror& mirror = RawMirror();
  const int64_t s1 = AppendRaw({Line("generator1", 1), Line("generator2", 2)}, {kGen1, kGen2});
  const int64_t s2 = AppendRaw({Line("generator1", 3), Line("generator2", 4)}, {kGen1, kGen2});
  const int64_t s3 = AppendRaw({Line("generator1", 5), Line("generator2", 6)}, {kGen1, kGen2});
  EXPECT_GT(mirror.Step(), 0);
  ASSERT_EQ(producer_.all.size(), 6u);
  EXPECT_EQ(producer_.all[0].topic, "EGgen1");
  EXPECT_EQ(producer_.all[1].topic, "EGgens");
  EXPECT_EQ(producer_.all[1].key, "genData,generatorID=generator2");
  EXPECT_EQ(mirror.in_flight(), 6);

  // Later batches first (other partitions answer sooner): nothing may be acknowledged.
  EXPECT_EQ(producer_.DeliverValue(Line("generator1", 5)), 1);
  EXPECT_EQ(producer_.DeliverValue(Line("generator2", 6)), 1);
  EXPECT_EQ(producer_.DeliverValue(Line("generator2", 4)), 1);
  EXPECT_EQ(producer_.DeliverValue(Line("generator2", 2)), 1);
  mirror.Step();
  EXPECT_EQ(Cursor(), 0);
  EXPECT_EQ(Sink("kafka-raw").sent_points, 0);

  producer_.DeliverValue(Line("generator1", 1));
  mirror.Step();
  EXPECT_EQ(Cursor(), s1);  // batch 2 still has a record out
  EXPECT_EQ(Sink("kafka-raw").sent_points, 2);

  producer_.DeliverValue(Line("generator1", 3));
  mirror.Step();
  EXPECT_EQ(Cursor(), s3);
  EXPECT_NE(s2, s3);
  SinkStatus sink = Sink("kafka-raw");
  EXPECT_EQ(sink.sent_points, 6);
  EXPECT_EQ(sink.state, "ok");
  EXPECT_EQ(sink.pending_points, 0);
  EXPECT_EQ(Name(mirror.state()), "ok");
  EXPECT_EQ(mirror.in_flight(), 0);
  EXPECT_EQ(producer_.all.size(), 6u);  // nothing sent twice
}

TEST_F(KafkaMirrorTest, FailedDeliveryResendsTheBatchItHitOnceEveryReportIsIn) {
  KafkaMirror& mirror = RawMirror();
  const int64_t s1 = AppendGen1(2);
  AppendGen1(2);
  const int64_t s3 = AppendGen1(2);
  mirror.Step();
  ASSERT_EQ(producer_.all.size(), 6u);
  producer_.DeliverValue(Line("generator1", 1));
  producer_.DeliverValue(Line("generator1", 2));
  producer_.DeliverValue(Line("generator1", 3), kTimedOut);  // batch 2 fails
  const int64_t delay = mirror.Step();
  EXPECT_GT(delay, 0);
  EXPECT_LE(delay, options_.retry_min_ns);
  EXPECT_EQ(Cursor(), s1);  // the delivered prefix is kept
  EXPECT_EQ(Name(mirror.state()), "offline");
  EXPECT_EQ(mirror.consecutive_failures(), 1);
  SinkStatus sink = Sink("kafka-raw");
  EXPECT_EQ(sink.state, "offline");
  EXPECT_EQ(sink.last_code, 0);
  EXPECT_NE(sink.last_error.find("_MSG_TIMED_OUT"), std::string::npos);
  EXPECT_EQ(sink.consecutive_failures, 1);
  EXPECT_GT(sink.next_retry_ns, clock_.WallNowNs());

  // Past the backoff, but three records are still out: wait for them, so no batch is ever out
  // twice at once and librdkafka never holds more than the bound.
  clock_.AdvanceNs(options_.retry_max_ns);
  mirror.Step();
  EXPECT_EQ(producer_.all.size(), 6u);
  EXPECT_EQ(mirror.in_flight(), 3);

  // They succeed: batch 3 is done, but the cursor waits for batch 2, which goes again.
  EXPECT_EQ(producer_.DeliverAll(), 3);
  mirror.Step();
  EXPECT_EQ(Cursor(), s1);
  EXPECT_EQ(Sink("kafka-raw").state, "offline");
  ASSERT_EQ(producer_.all.size(), 8u);
  EXPECT_EQ(producer_.all[6].value, Line("generator1", 3));
  EXPECT_EQ(producer_.all[7].value, Line("generator1", 4));  // the whole batch, delivered or not
  producer_.DeliverAll();
  mirror.Step();
  EXPECT_EQ(Cursor(), s3);
  EXPECT_EQ(Name(mirror.state()), "ok");
  EXPECT_EQ(mirror.consecutive_failures(), 0);
  sink = Sink("kafka-raw");
  EXPECT_EQ(sink.state, "ok");
  EXPECT_EQ(sink.consecutive_failures, 0);
  EXPECT_EQ(sink.last_error, "");
  EXPECT_EQ(sink.sent_points, 6);
}

TEST_F(KafkaMirrorTest, ProgressWhileRecoveringKeepsTheFailureInStatus) {
  KafkaMirror& mirror = RawMirror();
  const int64_t s1 = AppendGen1(1);
  AppendGen1(1);
  mirror.Step();
  producer_.DeliverValue(Line("generator1", 2), kTimedOut);  // batch 2 fails, batch 1 still out
  mirror.Step();
  EXPECT_EQ(Sink("kafka-raw").state, "offline");
  producer_.DeliverValue(Line("generator1", 1));
  mirror.Step();
  SinkStatus sink = Sink("kafka-raw");
  EXPECT_EQ(sink.cursor_seq, s1);
  EXPECT_EQ(sink.state, "offline");
  EXPECT_NE(sink.last_error.find("_MSG_TIMED_OUT"), std::string::npos);
  EXPECT_EQ(sink.consecutive_failures, 1);
}

TEST_F(KafkaMirrorTest, BackoffGrowsWhileDeliveriesKeepFailing) {
  options_.retry_min_ns = kNsPerSec;
  options_.retry_max_ns = 8 * kNsPerSec;
  options_.random = [] { return 0.999; };  // the cap itself
  KafkaMirror& mirror = RawMirror();
  AppendGen1(1);
  std::vector<int64_t> delays;
  for (int i = 0; i < 5; ++i) {
    mirror.Step();
    ASSERT_EQ(producer_.outstanding.size(), 1u) << i;
    producer_.DeliverIf([](const FakeProducer::Record&) { return true; }, kTimedOut);
    delays.push_back(mirror.Step());
    clock_.AdvanceNs(delays.back());
  }
  EXPECT_EQ(mirror.consecutive_failures(), 5);
  EXPECT_LT(delays[0], delays[2]);
  EXPECT_LE(delays[4], options_.retry_max_ns);
  EXPECT_GT(delays[4], options_.retry_max_ns / 2);
}

TEST_F(KafkaMirrorTest, RandomReportOrderAndFailuresNeverLoseOrPassAnUndeliveredRecord) {
  options_.max_in_flight = 10;
  KafkaMirror& mirror = RawMirror();
  std::mt19937 rng(42);
  std::map<int64_t, std::vector<std::string>> batches;  // seq -> values
  int64_t last_seq = 0;
  for (int b = 0; b < 40; ++b) {
    const int n = 1 + static_cast<int>(rng() % 4);
    const int first = next_value_;
    last_seq = AppendGen1(n);
    for (int v = first; v < next_value_; ++v) batches[last_seq].push_back(Line("generator1", v));
  }
  std::set<std::string> delivered;
  int failures = 0;
  for (int round = 0; round < 5000 && Cursor() != last_seq; ++round) {
    mirror.Step();
    ASSERT_LE(static_cast<int64_t>(producer_.outstanding.size()), options_.max_in_flight);
    ASSERT_EQ(mirror.in_flight(), static_cast<int64_t>(producer_.outstanding.size()));
    // Every batch up to the cursor is fully delivered.
    const int64_t cursor = Cursor();
    for (const auto& [seq, values] : batches) {
      if (seq > cursor) break;
      for (const std::string& v : values) ASSERT_TRUE(delivered.count(v)) << "cursor " << cursor << " passed " << v;
    }
    // Report a random subset, in random order; now and then a failure.
    std::vector<size_t> order = producer_.outstanding;
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(std::min(order.size(), order.size() / 2 + (rng() % 2)));
    for (size_t index : order) {
      const bool fail = rng() % 20 == 0;
      failures += fail;
      const std::string value = producer_.all[index].value;
      producer_.outstanding.erase(std::find(producer_.outstanding.begin(), producer_.outstanding.end(), index));
      producer_.all[index].listener->OnDelivery(producer_.all[index].token, fail ? kTimedOut : Status::Ok());
      if (!fail) delivered.insert(value);
    }
    clock_.AdvanceNs(options_.retry_max_ns / 4);
  }
  EXPECT_EQ(Cursor(), last_seq);
  EXPECT_GT(failures, 0);
  for (const auto& [seq, values] : batches) {
    for (const std::string& v : values) EXPECT_TRUE(delivered.count(v)) << v;
  }
}

TEST_F(KafkaMirrorTest, AtMostMaxInFlightRecordsOut) {
  options_.max_in_flight = 10;
  KafkaMirror& mirror = RawMirror();
  for (int i = 0; i < 10; ++i) AppendGen1(3);
  mirror.Step();
  EXPECT_EQ(producer_.outstanding.size(), 9u);  // a fourth batch would make 12
  mirror.Step();
  EXPECT_EQ(producer_.outstanding.size(), 9u);
  // Reports free room, but a new read waits until at most half the window is pending.
  producer_.DeliverValue(Line("generator1", 1));
  producer_.DeliverValue(Line("generator1", 2));
  producer_.DeliverValue(Line("generator1", 3));
  mirror.Step();
  EXPECT_EQ(producer_.all.size(), 9u);
  producer_.DeliverValue(Line("generator1", 4));
  producer_.DeliverValue(Line("generator1", 5));
  producer_.DeliverValue(Line("generator1", 6));
  mirror.Step();
  // The window moved two batches: batch 3 is still out, batches 4 and 5 join it.
  EXPECT_EQ(producer_.all.size(), 15u);
  EXPECT_EQ(producer_.outstanding.size(), 9u);
}

TEST_F(KafkaMirrorTest, LargerBatchThanTheBoundIsSentWhole) {
  options_.max_in_flight = 4;
  KafkaMirror& mirror = RawMirror();
  const int64_t seq = AppendGen1(7);
  mirror.Step();
  EXPECT_EQ(producer_.outstanding.size(), 7u);
  producer_.DeliverAll();
  mirror.Step();
  EXPECT_EQ(Cursor(), seq);
}

TEST_F(KafkaMirrorTest, UnmatchedTopicsAreSkippedAndCounted) {
  KafkaMirror& mirror = RawMirror();
  const int64_t s1 = AppendRaw(
      {Line("generator1", 1), Line("generator1", 2), Line("x", 3), Line("x", 4), Line("x", 5), Line("generator2", 6)},
      {kGen1, kGen1, "factory/other", "factory/other", "site/emergency_generator/g", kGen2});
  mirror.Step();
  ASSERT_EQ(producer_.all.size(), 3u);
  EXPECT_EQ(producer_.all[0].topic, "EGgen1");
  EXPECT_EQ(producer_.all[1].topic, "EGgen1");
  EXPECT_EQ(producer_.all[2].topic, "EGgens");
  producer_.DeliverAll();
  mirror.Step();
  EXPECT_EQ(Cursor(), s1);
  SinkStatus sink = Sink("kafka-raw");
  EXPECT_EQ(sink.sent_points, 3);
  EXPECT_EQ(sink.skipped_points, 3);

  // A batch nothing routes (and one without sources: unknown topic) is acknowledged with no
  // record at all.
  const int64_t s2 = AppendRaw({Line("x", 7)}, {"factory/other"});
  BatchInput unknown;
  unknown.lines = {Line("generator1", 8)};
  const int64_t s3 = AppendInput(unknown);
  EXPECT_EQ(mirror.Step(), 0);  // acknowledge at once
  mirror.Step();
  EXPECT_EQ(Cursor(), s3);
  EXPECT_NE(s2, 0);
  EXPECT_EQ(producer_.all.size(), 3u);
  EXPECT_EQ(Sink("kafka-raw").skipped_points, 5);
}

TEST_F(KafkaMirrorTest, AnUnsendableRecordIsDeadLetteredAndTheRestGoes) {
  KafkaMirror& mirror = RawMirror();
  const int64_t seq = AppendGen1(3);
  producer_.fail_next_n = 1;
  producer_.fail_status = Status::InvalidArgument("MSG_SIZE_TOO_LARGE: Broker: Message size too large");
  mirror.Step();
  EXPECT_EQ(producer_.all.size(), 2u);
  producer_.DeliverAll();
  mirror.Step();
  EXPECT_EQ(Cursor(), seq);
  EXPECT_EQ(Sink("kafka-raw").sent_points, 2);
  auto dead = queue_->DeadLetters("kafka-raw", 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ(dead->front().payload, Line("generator1", 1));
  EXPECT_EQ(dead->front().topic, kGen1);
  EXPECT_NE(dead->front().reason.find("MSG_SIZE_TOO_LARGE"), std::string::npos);
}

// Regression (issue 13): a record the broker refused for good was retried as "rejecting"
// forever, holding back every record after it.
TEST_F(KafkaMirrorTest, ARecordTheBrokerRefusesForGoodIsDeadLetteredNotRetried) {
  KafkaMirror& mirror = RawMirror();
  const int64_t s1 = AppendGen1(3);
  const int64_t s2 = AppendGen1(2);
  mirror.Step();
  ASSERT_EQ(producer_.all.size(), 5u);
  EXPECT_EQ(producer_.DeliverValue(Line("generator1", 2),
                                   Status::InvalidArgument("MSG_SIZE_TOO_LARGE: Broker: Message size too large")),
            1);
  producer_.DeliverAll();
  mirror.Step();
  EXPECT_EQ(Cursor(), s2);
  EXPECT_NE(s1, s2);
  EXPECT_EQ(Name(mirror.state()), "ok");
  EXPECT_EQ(mirror.consecutive_failures(), 0);
  EXPECT_EQ(Sink("kafka-raw").sent_points, 4);
  auto dead = queue_->DeadLetters("kafka-raw", 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ(dead->front().payload, Line("generator1", 2));
  EXPECT_EQ(dead->front().kind, DeadLetterKind::kRejected);
  EXPECT_EQ(dead->front().topic, kGen1);
  EXPECT_NE(dead->front().reason.find("MSG_SIZE_TOO_LARGE"), std::string::npos);
  // Nothing is produced again.
  clock_.AdvanceNs(options_.slow_retry_ns);
  mirror.Step();
  EXPECT_EQ(producer_.all.size(), 5u);
}

TEST_F(KafkaMirrorTest, ARefusalForEveryRecordIsRetriedSlowlyNotDeadLettered) {
  KafkaMirror& mirror = RawMirror();
  const int64_t seq = AppendGen1(2);
  mirror.Step();
  producer_.DeliverIf([](const FakeProducer::Record&) { return true; },
                      Status::FailedPrecondition("INVALID_TIMESTAMP: Broker: Invalid timestamp"));
  EXPECT_GE(mirror.Step(), options_.slow_retry_ns);
  EXPECT_EQ(Name(mirror.state()), "rejecting");
  auto dead = queue_->DeadLetters("kafka-raw", 10);
  ASSERT_TRUE(dead.ok());
  EXPECT_TRUE(dead->empty());
  clock_.AdvanceNs(options_.slow_retry_ns);
  mirror.Step();
  EXPECT_EQ(producer_.all.size(), 4u);  // the batch again, whole
  producer_.DeliverAll();
  mirror.Step();
  EXPECT_EQ(Cursor(), seq);
}

TEST_F(KafkaMirrorTest, LocalQueueFullBacksOffAndLosesNothing) {
  KafkaMirror& mirror = RawMirror();
  const int64_t s1 = AppendGen1(2);
  const int64_t s2 = AppendGen1(2);
  mirror.Step();
  ASSERT_EQ(producer_.all.size(), 4u);
  producer_.DeliverAll();
  mirror.Step();
  EXPECT_EQ(Cursor(), s2);
  const int64_t s3 = AppendGen1(3);
  producer_.pass_first_n = 1;  // the first record of batch 3 is queued, the second is not
  producer_.fail_next_n = 1;
  EXPECT_GT(mirror.Step(), 0);
  EXPECT_EQ(Name(mirror.state()), "offline");
  EXPECT_EQ(mirror.in_flight(), 1);  // the third was never tried
  EXPECT_EQ(producer_.all.size(), 5u);
  producer_.DeliverAll();
  EXPECT_NE(Sink("kafka-raw").last_error.find("_QUEUE_FULL"), std::string::npos);
  mirror.Step();  // still backing off
  EXPECT_EQ(producer_.all.size(), 5u);
  mirror.Step();
  EXPECT_EQ(Cursor(), s2);
  clock_.AdvanceNs(options_.retry_max_ns);
  mirror.Step();
  EXPECT_EQ(producer_.all.size(), 8u);  // batch 3 again, whole
  producer_.DeliverAll();
  mirror.Step();
  EXPECT_EQ(Cursor(), s3);
  EXPECT_NE(s1, s3);
}

TEST_F(KafkaMirrorTest, AuthorizationFailureRetriesSlowly) {
  KafkaMirror& mirror = RawMirror();
  AppendGen1(1);
  mirror.Step();
  producer_.DeliverIf([](const FakeProducer::Record&) { return true; },
                      Status::PermissionDenied("TOPIC_AUTHORIZATION_FAILED: Broker: Topic authorization failed"));
  EXPECT_GE(mirror.Step(), options_.slow_retry_ns);
  EXPECT_EQ(Name(mirror.state()), "auth-failed");
  EXPECT_EQ(Sink("kafka-raw").state, "auth-failed");
}

TEST_F(KafkaMirrorTest, RecordsOutWithNoReportShowOfflineUntilDelivered) {
  options_.stall_ns = 10 * kNsPerSec;
  KafkaMirror& mirror = RawMirror();
  const int64_t seq = AppendGen1(2);
  mirror.Step();
  producer_.last_error = Status::Unavailable("_ALL_BROKERS_DOWN: 3/3 brokers are down");
  clock_.AdvanceNs(options_.stall_ns / 2);
  mirror.Step();
  EXPECT_EQ(Sink("kafka-raw").state, "");  // not yet: a slow answer is not an outage
  clock_.AdvanceNs(options_.stall_ns);
  mirror.Step();
  EXPECT_EQ(Name(mirror.state()), "offline");
  SinkStatus sink = Sink("kafka-raw");
  EXPECT_EQ(sink.state, "offline");
  EXPECT_EQ(sink.last_error, "_ALL_BROKERS_DOWN: 3/3 brokers are down");
  EXPECT_EQ(producer_.all.size(), 2u);  // librdkafka retries them itself; nothing re-produced
  producer_.last_error = Status::Ok();
  producer_.DeliverAll();
  mirror.Step();
  EXPECT_EQ(Cursor(), seq);
  EXPECT_EQ(Sink("kafka-raw").state, "ok");
}

TEST_F(KafkaMirrorTest, RefusedCredentialsWithRecordsOutShowAuthFailed) {
  KafkaMirror& mirror = RawMirror();
  AppendGen1(1);
  mirror.Step();
  producer_.last_error = Status::PermissionDenied("_AUTHENTICATION: SASL authentication error: Authentication failed");
  clock_.AdvanceNs(options_.stall_ns);
  mirror.Step();
  EXPECT_EQ(Name(mirror.state()), "auth-failed");
  EXPECT_EQ(Sink("kafka-raw").state, "auth-failed");
  EXPECT_EQ(Sink("kafka-raw").last_error, "_AUTHENTICATION: SASL authentication error: Authentication failed");
}

TEST_F(KafkaMirrorTest, TwoMirrorsShareOneProducerAndEachGetsItsOwnReports) {
  options_.format = KafkaFormat::kJson;
  KafkaMirror& raw = RawMirror();
  KafkaConfig kafka;
  DownsampleConfig downsample;
  Result<TopicRouter> router = TopicRouterForStream(kDownsampledStream, kafka, downsample.bucket);
  ASSERT_TRUE(router.ok());
  KafkaMirror down("kafka-downsampled", std::string(kDownsampledStream), queue_.get(), &producer_, &clock_,
                   std::move(router).value(), options_);
  ASSERT_TRUE(down.Start().ok());

  const int64_t raw_seq = AppendGen1(2);
  BatchInput ds;
  ds.stream = std::string(kDownsampledStream);
  ds.lines = {"genData,region=US,generatorID=generator1 alarm=\"no action\",fuel=888.0 1764000054952000000"};
  const int64_t down_seq = AppendInput(ds);

  raw.Step();
  down.Step();
  ASSERT_EQ(producer_.all.size(), 3u);
  const FakeProducer::Record& d = producer_.all[2];
  EXPECT_EQ(d.topic, "EGkafka_downsampled");
  EXPECT_EQ(d.key, "genData,generatorID=generator1,region=US");
  nlohmann::json value = nlohmann::json::parse(d.value);
  EXPECT_EQ(value["fields"]["alarm"], "no action");
  EXPECT_EQ(value["tags"]["region"], "US");

  // Only the downsampled record is reported: only that mirror moves.
  producer_.DeliverIf([](const FakeProducer::Record& r) { return r.topic == "EGkafka_downsampled"; });
  raw.Step();
  down.Step();
  EXPECT_EQ(Cursor("kafka-raw"), 0);
  EXPECT_EQ(Cursor("kafka-downsampled"), down_seq);
  producer_.DeliverAll();
  raw.Step();
  EXPECT_EQ(Cursor("kafka-raw"), raw_seq);
  EXPECT_EQ(raw.in_flight(), 0);
  EXPECT_EQ(down.in_flight(), 0);
}

TEST(KafkaMirrorOptionsTest, FromConfig) {
  KafkaConfig config;
  config.format = KafkaFormat::kLineProtocol;
  config.batch_points = 123;
  config.retry_min_ns = 5;
  config.retry_max_ns = 50;
  KafkaMirrorOptions options = KafkaMirrorOptionsFromConfig(config);
  EXPECT_EQ(options.format, KafkaFormat::kLineProtocol);
  EXPECT_EQ(options.max_in_flight, 123);
  EXPECT_EQ(options.retry_min_ns, 5);
  EXPECT_EQ(options.retry_max_ns, 50);
}

// Queue decorator: runs a hook right after Ack (to interleave a delivery report mid-Step);
// refuses Acks while `fail_ack`; counts Releases and checks that no Ack follows a Release
// without a Read in between (what was read before a Release is never acknowledged).
class HookQueue final : public Queue {
 public:
  explicit HookQueue(Queue* q) : q_(q) {}
  std::function<void()> after_ack;
  bool fail_ack = false;
  int releases = 0;
  bool read_since_release = true;
  void Release(const std::string& s) override {
    ++releases;
    read_since_release = false;
    q_->Release(s);
  }
  Result<std::vector<Batch>> ReadAfter(const std::string& s, int64_t after, int64_t m) override {
    read_since_release = true;
    return q_->ReadAfter(s, after, m);
  }
  Result<std::vector<int64_t>> Append(const std::vector<BatchInput>& b, const std::vector<DeadLetter>& d) override {
    return q_->Append(b, d);
  }
  Status RegisterConsumer(const std::string& s, const std::string& st) override { return q_->RegisterConsumer(s, st); }
  Result<std::vector<Batch>> Read(const std::string& s, int64_t m) override {
    read_since_release = true;
    return q_->Read(s, m);
  }
  Result<std::vector<Batch>> ReadNewest(const std::string& s, int64_t m) override { return q_->ReadNewest(s, m); }
  Status AckBatches(const std::string& s, const std::vector<int64_t>& q, const SinkAttempt& a,
                    const std::vector<DeadLetter>& d) override {
    return q_->AckBatches(s, q, a, d);
  }
  Status Ack(const std::string& s, int64_t seq, const SinkAttempt& a, const std::vector<DeadLetter>& d) override {
    EXPECT_TRUE(read_since_release) << "Ack of " << seq << " after a Release without a Read since";
    if (fail_ack) return Status::IoError("disk full");
    Status st = q_->Ack(s, seq, a, d);
    if (after_ack) {
      auto f = after_ack;
      after_ack = nullptr;
      f();
    }
    return st;
  }
  Status AckWithOutput(const std::string& s, int64_t seq, const SinkAttempt& a, const std::vector<BatchInput>& o,
                       std::string_view st) override {
    return q_->AckWithOutput(s, seq, a, o, st);
  }
  Result<std::string> ConsumerState(const std::string& s) override { return q_->ConsumerState(s); }
  Status RecordAttempt(const std::string& s, const SinkAttempt& a) override { return q_->RecordAttempt(s, a); }
  Result<int64_t> EnforceLimits() override { return q_->EnforceLimits(); }
  Result<std::vector<SinkStatus>> SinkStatuses() override { return q_->SinkStatuses(); }
  Result<QueueStats> Stats() override { return q_->Stats(); }
  Result<std::vector<DeadLetter>> DeadLetters(const std::string& s, int64_t l) override {
    return q_->DeadLetters(s, l);
  }
  Result<ReplayMarks> RequestReplay(const std::string& s) override { return q_->RequestReplay(s); }
  Result<int64_t> PurgeDeadLetters(const std::string& s) override { return q_->PurgeDeadLetters(s); }
  Result<std::vector<DeadLetter>> ReplayRequested(const std::string& s, int64_t l) override {
    return q_->ReplayRequested(s, l);
  }
  Status FinishReplay(const std::vector<int64_t>& i, const std::vector<DeadLetter>& r) override {
    return q_->FinishReplay(i, r);
  }
  Status SetAgentState(const std::vector<std::pair<std::string, std::string>>& kv) override {
    return q_->SetAgentState(kv);
  }
  Result<std::vector<std::pair<std::string, std::string>>> AgentState() override { return q_->AgentState(); }
  Result<std::string> IntegrityCheck() override { return q_->IntegrityCheck(); }

 private:
  Queue* q_;
};

// Regression (review): a failed batch that the queue's age bound drops during the outage must
// not hold the cursor back forever.
TEST_F(KafkaMirrorTest, FailedBatchDroppedByTheQueueBoundsDoesNotWedgeTheCursor) {
  KafkaMirror& mirror = RawMirror();
  AppendGen1(2);
  mirror.Step();
  ASSERT_EQ(producer_.all.size(), 2u);
  producer_.DeliverIf([](const FakeProducer::Record&) { return true; }, kTimedOut);
  mirror.Step();                                  // takes the failure: offline, backoff
  clock_.AdvanceNs(8LL * 24 * 3600 * kNsPerSec);  // past EDGELINE_QUEUE_MAX_AGE (7d)
  auto dropped = queue_->EnforceLimits();
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 2);
  const int64_t s2 = AppendGen1(2);
  for (int i = 0; i < 20 && Cursor() != s2; ++i) {
    clock_.AdvanceNs(2 * kNsPerSec);
    mirror.Step();
    producer_.DeliverAll();
  }
  EXPECT_EQ(Cursor(), s2);
  EXPECT_EQ(Name(mirror.state()), "ok");
}

// Regression (review): a failure report that arrives while Step acknowledges an earlier batch
// must not make that Step re-produce the failed batch while another of its records is out.
TEST_F(KafkaMirrorTest, FailedBatchIsNotProducedAgainWhileARecordIsStillOut) {
  HookQueue hook(queue_.get());
  Result<TopicRouter> router = TopicRouter::FromRoutes({{"EGgen1", "emergency_generator/generator1"}});
  ASSERT_TRUE(router.ok());
  KafkaMirror mirror("kafka-raw", std::string(kRawStream), &hook, &producer_, &clock_, std::move(router).value(),
                     options_);
  ASSERT_TRUE(mirror.Start().ok());
  AppendGen1(1);
  const int64_t s2 = AppendRaw({Line("generator1", 100), Line("generator1", 101)}, {kGen1, kGen1});
  mirror.Step();
  ASSERT_EQ(producer_.all.size(), 3u);
  producer_.DeliverValue(Line("generator1", 1));                                         // s1 delivered
  hook.after_ack = [&] { producer_.DeliverValue(Line("generator1", 100), kTimedOut); };  // mid-Step
  mirror.Step();
  EXPECT_EQ(producer_.all.size(), 3u);  // not produced again: record 101 is still out
  producer_.DeliverValue(Line("generator1", 101));
  // The retry sends s2 whole once its reports are all in; failing that too keeps the cursor.
  for (int i = 0; i < 5; ++i) {
    clock_.AdvanceNs(70 * kNsPerSec);
    mirror.Step();
    producer_.DeliverIf([](const FakeProducer::Record&) { return true; }, kTimedOut);
  }
  EXPECT_LT(Cursor(), s2);
  for (int i = 0; i < 5 && Cursor() != s2; ++i) {
    clock_.AdvanceNs(70 * kNsPerSec);
    mirror.Step();
    producer_.DeliverAll();
    mirror.Step();
  }
  EXPECT_EQ(Cursor(), s2);
  EXPECT_NE(std::find(producer_.delivered.begin(), producer_.delivered.end(), Line("generator1", 100)),
            producer_.delivered.end());
}

// The queue refused an Ack: the mirror drops what it read (Reset) and, once no record of it is
// out any more, gives it back to the queue (Release) before it reads again at the cursor.
TEST_F(KafkaMirrorTest, ARefusedAckIsReleasedOnceNoRecordIsOutAndReadAgainAtTheCursor) {
  HookQueue hook(queue_.get());
  Result<TopicRouter> router = TopicRouter::FromRoutes({{"EGgen1", "emergency_generator/generator1"}});
  ASSERT_TRUE(router.ok());
  KafkaMirror mirror("kafka-raw", std::string(kRawStream), &hook, &producer_, &clock_, std::move(router).value(),
                     options_);
  ASSERT_TRUE(mirror.Start().ok());
  AppendGen1(2);
  const int64_t s2 = AppendGen1(2);
  mirror.Step();
  ASSERT_EQ(producer_.all.size(), 4u);
  producer_.DeliverValue(Line("generator1", 1));
  producer_.DeliverValue(Line("generator1", 2));
  hook.fail_ack = true;
  EXPECT_GT(mirror.Step(), 0);  // the Ack of the first batch fails: queue error
  EXPECT_EQ(Name(mirror.state()), "queue-error");
  hook.fail_ack = false;
  EXPECT_EQ(hook.releases, 0);  // records of the second batch are still out
  clock_.AdvanceNs(2 * kNsPerSec);
  mirror.Step();
  EXPECT_EQ(hook.releases, 0);
  EXPECT_EQ(producer_.all.size(), 4u);  // nothing produced while records are out
  producer_.DeliverAll();               // their reports come in (and are ignored)
  clock_.AdvanceNs(2 * kNsPerSec);
  mirror.Step();
  EXPECT_EQ(hook.releases, 1);
  EXPECT_EQ(producer_.all.size(), 8u);  // both batches again, from the cursor
  EXPECT_EQ(Cursor(), 0);
  producer_.DeliverAll();
  mirror.Step();
  EXPECT_EQ(Cursor(), s2);
  EXPECT_EQ(hook.releases, 1);
  EXPECT_EQ(Name(mirror.state()), "ok");
}

// A failed delivery keeps its batch pending (it is produced again and acknowledged later):
// nothing is released.
TEST_F(KafkaMirrorTest, AFailedDeliveryKeepsWhatItReadAndReleasesNothing) {
  HookQueue hook(queue_.get());
  Result<TopicRouter> router = TopicRouter::FromRoutes({{"EGgen1", "emergency_generator/generator1"}});
  ASSERT_TRUE(router.ok());
  KafkaMirror mirror("kafka-raw", std::string(kRawStream), &hook, &producer_, &clock_, std::move(router).value(),
                     options_);
  ASSERT_TRUE(mirror.Start().ok());
  const int64_t s1 = AppendGen1(2);
  mirror.Step();
  producer_.DeliverIf([](const FakeProducer::Record&) { return true; }, kTimedOut);
  for (int i = 0; i < 10 && Cursor() != s1; ++i) {
    clock_.AdvanceNs(2 * kNsPerSec);
    mirror.Step();
    producer_.DeliverAll();
  }
  EXPECT_EQ(Cursor(), s1);
  EXPECT_EQ(hook.releases, 0);
}

// Each record carries edgeline-id = RecordId of its line, the same on every send of a line (a
// retry, a restart after a crash, after compaction merged its batch), so a consumer can drop the
// re-sends of at-least-once delivery.
TEST_F(KafkaMirrorTest, EachRecordCarriesTheIdOfItsQueuedLine) {
  KafkaMirror& mirror = RawMirror();
  // The middle line's topic has no route: skipped.
  const std::string l1 = Line("generator1", 1), l3 = Line("generator2", 2);
  AppendRaw({l1, "press,line=3 p=1 1764000000000000001", l3}, {kGen1, "factory/press3", kGen2});
  mirror.Step();
  ASSERT_EQ(producer_.all.size(), 2u);
  EXPECT_EQ(Id(producer_.all[0]), RecordId(kRawStream, l1));
  EXPECT_EQ(Id(producer_.all[1]), RecordId(kRawStream, l3));
  EXPECT_NE(Id(producer_.all[0]), Id(producer_.all[1]));
  for (const FakeProducer::Record& r : producer_.all) EXPECT_EQ(r.headers.size(), 1u) << r.value;
}

TEST_F(KafkaMirrorTest, ARecordSentAgainCarriesTheSameIdAfterARetryAndAfterARestart) {
  KafkaMirror* mirror = &RawMirror();
  for (int b = 0; b < 4; ++b) {
    AppendGen1(3);
    clock_.AdvanceNs(kNsPerMs);
  }
  mirror->Step();
  ASSERT_EQ(producer_.all.size(), 12u);
  std::map<std::string, std::string> id_of;  // value -> id, from the first send
  std::set<std::string> ids;
  for (const FakeProducer::Record& r : producer_.all) {
    id_of[r.value] = Id(r);
    ids.insert(Id(r));
  }
  EXPECT_EQ(ids.size(), 12u);  // distinct lines, distinct ids
  EXPECT_EQ(ids.count(""), 0u);

  // Batch 2's second line fails; the rest is delivered: batch 2 goes again, whole.
  producer_.DeliverValue(Line("generator1", 5), kTimedOut);
  producer_.DeliverAll();
  mirror->Step();
  clock_.AdvanceNs(options_.retry_max_ns);
  mirror->Step();
  ASSERT_EQ(producer_.all.size(), 15u);
  for (size_t i = 12; i < 15; ++i) {
    EXPECT_EQ(Id(producer_.all[i]), id_of.at(producer_.all[i].value)) << producer_.all[i].value;
  }
  producer_.DeliverAll();
  mirror->Step();
  const int64_t acked = Cursor();

  // A crash with records out: their reports never come; the next run sends again everything
  // after the cursor (a new batch too), and the lines sent before keep their ids.
  AppendGen1(2);
  mirror->Step();
  ASSERT_EQ(producer_.all.size(), 17u);
  producer_.outstanding.clear();
  mirrors_.clear();
  clock_.AdvanceNs(kNsPerSec);
  mirror = &RawMirror();
  mirror->Step();
  ASSERT_EQ(producer_.all.size(), 19u);
  EXPECT_EQ(Id(producer_.all[17]), Id(producer_.all[15]));
  EXPECT_EQ(Id(producer_.all[18]), Id(producer_.all[16]));
  EXPECT_EQ(producer_.all[17].value, producer_.all[15].value);
  producer_.DeliverAll();
  mirror->Step();
  EXPECT_GT(Cursor(), acked);

  // Deduplicated by id, the delivered records are each queued line once.
  std::map<std::string, std::string> by_id;
  for (const FakeProducer::Record& r : producer_.all) {
    auto [it, fresh] = by_id.emplace(Id(r), r.value);
    if (!fresh) {
      EXPECT_EQ(it->second, r.value) << "one id, two lines: " << it->first;
    }
  }
  EXPECT_EQ(by_id.size(), 14u);
  std::set<std::string> values;
  for (const auto& [id, value] : by_id) values.insert(value);
  EXPECT_EQ(values.size(), 14u);
}

TEST_F(KafkaMirrorTest, TheIdIsTheSameInBothFormatsAndNamesTheStream) {
  // Two mirrors of the raw stream (own cursors), one per format, and one of the downsampled.
  options_.format = KafkaFormat::kJson;
  RawMirror();
  options_.format = KafkaFormat::kLineProtocol;
  Result<TopicRouter> router = TopicRouter::FromRoutes({{"EGgens", "emergency_generator/.*"}});
  ASSERT_TRUE(router.ok());
  KafkaMirror lp("kafka-raw-lp", std::string(kRawStream), queue_.get(), &producer_, &clock_, std::move(router).value(),
                 options_);
  ASSERT_TRUE(lp.Start().ok());
  KafkaConfig kafka;
  Result<TopicRouter> down_router = TopicRouterForStream(kDownsampledStream, kafka, "kafka_downsampled");
  ASSERT_TRUE(down_router.ok());
  KafkaMirror down("kafka-downsampled", std::string(kDownsampledStream), queue_.get(), &producer_, &clock_,
                   std::move(down_router).value(), options_);
  ASSERT_TRUE(down.Start().ok());

  AppendGen1(2);
  BatchInput ds;
  ds.stream = std::string(kDownsampledStream);
  ds.lines = {"genData,generatorID=generator1 fuel=1.0 1764000000000000000",
              "genData,generatorID=generator1 fuel=2.0 1764000060000000000"};
  AppendInput(ds);
  mirrors_.front()->Step();
  lp.Step();
  down.Step();
  ASSERT_EQ(producer_.all.size(), 6u);
  EXPECT_EQ(producer_.all[0].value.front(), '{');  // JSON
  EXPECT_EQ(producer_.all[2].value.front(), 'g');  // line protocol
  EXPECT_EQ(Id(producer_.all[0]).rfind("raw/", 0), 0u);
  EXPECT_NE(Id(producer_.all[0]), Id(producer_.all[1]));
  EXPECT_EQ(Id(producer_.all[2]), Id(producer_.all[0]));
  EXPECT_EQ(Id(producer_.all[3]), Id(producer_.all[1]));
  EXPECT_EQ(Id(producer_.all[4]), RecordId(kDownsampledStream, ds.lines[0]));
  EXPECT_EQ(Id(producer_.all[5]), RecordId(kDownsampledStream, ds.lines[1]));
  producer_.DeliverAll();
}

// A queue file that replaced another (e.g. a corrupt one moved aside) restarts its seqs at 1:
// ids depend on the lines, so new points get new ids.
TEST_F(KafkaMirrorTest, ANewQueueFileDoesNotReuseTheIdsOfTheOldOne) {
  KafkaMirror& old_mirror = RawMirror();
  AppendGen1(2);
  old_mirror.Step();
  producer_.DeliverAll();
  old_mirror.Step();
  mirrors_.clear();
  queue_.reset();
  clock_.AdvanceNs(kNsPerSec);
  queue_ = OpenTestQueue(dir_.File("queue-new.db"), &clock_);
  ASSERT_NE(queue_, nullptr);
  KafkaMirror& new_mirror = RawMirror();
  AppendGen1(2);
  new_mirror.Step();
  ASSERT_EQ(producer_.all.size(), 4u);
  std::set<std::string> ids;
  for (const FakeProducer::Record& r : producer_.all) ids.insert(Id(r));
  EXPECT_EQ(ids.size(), 4u);
  producer_.DeliverAll();
}

}  // namespace
}  // namespace edgeline
