// Replicator against the real SQLite queue (storage/sqlite_queue.cc) and a scripted transport:
// the cursor, sink status and dead letters a sink leaves behind are what `edgeline status` reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <string>

#include "common/clock.h"
#include "replication/influx_writer.h"
#include "replication/replicator.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

class StatusScriptTransport final : public HttpTransport {
 public:
  Result<HttpResponse> Send(const HttpRequest& request) override {
    ++requests;
    bodies.push_back(request.body);
    HttpResponse r;
    r.status = 204;
    if (!bad_line.empty() && request.body.find(bad_line + "\n") != std::string::npos) {
      r.status = 400;
      r.body = R"({"error":"partial write: field type conflict dropped=1"})";
    }
    if (!string_field.empty() && request.body.find(" " + string_field + "=") != std::string::npos) {
      // influxd 1.x's answer when the shard holds `string_field` as a string.
      r.status = 400;
      r.body = R"({"error":"partial write: field type conflict: input field \")" + string_field +
               R"(\" on measurement \"m\" is type float, already exists as type string dropped=1"})";
    }
    if (max_lines > 0 && std::count(request.body.begin(), request.body.end(), '\n') > max_lines) r.status = 413;
    if (!script.empty()) {
      r.status = script.front();
      script.pop_front();
      if (!retry_after.empty()) r.headers.emplace_back("retry-after", retry_after);
    }
    return r;
  }
  std::string bad_line;
  std::string string_field;  // a float value of this field in measurement m gets a type conflict
  std::deque<int> script;
  std::string retry_after;  // sent with scripted answers
  int64_t max_lines = 0;    // bodies with more lines get 413
  int requests = 0;
  std::vector<std::string> bodies;  // every request's, in order
};

class ReplicatorSqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue_ = OpenTestQueue(dir_.File("queue.db"), &clock_);
    ASSERT_NE(queue_, nullptr);
    config_.api = InfluxApi::kV1;
    config_.database = "kafka";
    config_.gzip = false;  // the fake server looks for the bad line in the body
    writer_ = std::make_unique<InfluxWriter>(config_, &transport_, &clock_);
    MakeReplicator(ReplicatorOptions{});
  }
  void MakeReplicator(ReplicatorOptions ro) {
    ro.random = Backoff::SeededRandom(3);
    replicator_ =
        std::make_unique<Replicator>("influx", std::string(kRawStream), queue_.get(), writer_.get(), &clock_, ro);
    ASSERT_TRUE(replicator_->Start().ok());
  }
  void TearDown() override {
    replicator_.reset();
    queue_.reset();
  }
  SinkStatus Status() {
    auto statuses = queue_->SinkStatuses();
    EXPECT_TRUE(statuses.ok());
    for (const SinkStatus& s : *statuses) {
      if (s.sink == "influx") return s;
    }
    ADD_FAILURE() << "no sink status";
    return {};
  }
  void Append(std::vector<std::string> lines) {
    BatchInput in;
    in.lines = std::move(lines);
    in.min_ts_ns = 1;
    in.max_ts_ns = 2;
    ASSERT_TRUE(queue_->Append({in}, {}).ok());
  }

  TempDir dir_;
  FakeClock clock_;
  InfluxConfig config_;
  StatusScriptTransport transport_;
  std::unique_ptr<Queue> queue_;
  std::unique_ptr<InfluxWriter> writer_;
  std::unique_ptr<Replicator> replicator_;
};

TEST_F(ReplicatorSqliteTest, DrainsAndDeadLettersRejectedLine) {
  transport_.bad_line = "m v=\"s\" 3";
  Append({"m v=1 1", "m v=2 2"});
  Append({transport_.bad_line, "m v=4 4"});
  EXPECT_EQ(replicator_->Step(), 0);
  EXPECT_EQ(replicator_->Step(), 1'000'000'000);  // idle
  SinkStatus s = Status();
  EXPECT_EQ(s.cursor_seq, 2);
  EXPECT_EQ(s.state, "ok");
  EXPECT_EQ(s.sent_points, 3);
  EXPECT_EQ(s.pending_points, 0);
  auto dead = queue_->DeadLetters("influx", 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].payload, transport_.bad_line);
  EXPECT_EQ((*dead)[0].reason, "partial write: field type conflict dropped=1");
}

// The server's type, as its conflict message names it, is kept in the queue for ingest, once
// per change (and again after an hour, to show the server still holds it).
TEST_F(ReplicatorSqliteTest, TypeConflictsTeachTheQueueTheServersFieldType) {
  transport_.string_field = "temperature";
  Append({"m,g=a temperature=1,fuel=2 1", "m,g=b fuel=3 2"});
  EXPECT_EQ(replicator_->Step(), 0);
  auto types = queue_->FieldTypes();
  ASSERT_TRUE(types.ok());
  ASSERT_EQ(types->size(), 1u);
  EXPECT_EQ((*types)[0], (KnownFieldType{"m", "temperature", FieldType::kString, "influx", clock_.WallNowNs()}));
  const int64_t version = queue_->FieldTypesVersion();

  Append({"m,g=a temperature=5 3"});
  EXPECT_EQ(replicator_->Step(), 0);
  EXPECT_EQ(queue_->FieldTypesVersion(), version);  // nothing new

  clock_.AdvanceNs(3601 * kNsPerSec);
  Append({"m,g=a temperature=6 4"});
  EXPECT_EQ(replicator_->Step(), 0);
  EXPECT_GT(queue_->FieldTypesVersion(), version);
  EXPECT_EQ((*queue_->FieldTypes())[0].updated_ns, clock_.WallNowNs());
}

TEST_F(ReplicatorSqliteTest, OfflineKeepsDataAndRecordsAttempt) {
  Append({"m v=1 1"});
  transport_.script = {503, 500};
  EXPECT_GT(replicator_->Step(), 0);
  const int64_t delay = replicator_->Step();
  EXPECT_GT(delay, 0);
  SinkStatus s = Status();
  EXPECT_EQ(s.cursor_seq, 0);
  EXPECT_EQ(s.state, "offline");
  EXPECT_EQ(s.last_code, 500);
  EXPECT_EQ(s.consecutive_failures, 2);
  EXPECT_EQ(s.next_retry_ns, clock_.WallNowNs() + delay);
  EXPECT_EQ(s.pending_points, 1);
  clock_.AdvanceNs(delay);
  EXPECT_EQ(replicator_->Step(), 0);
  s = Status();
  EXPECT_EQ(s.cursor_seq, 1);
  EXPECT_EQ(s.state, "ok");
  EXPECT_EQ(s.consecutive_failures, 0);
  EXPECT_EQ(s.sent_points, 1);
  EXPECT_EQ(s.last_success_ns, clock_.WallNowNs());
}

TEST_F(ReplicatorSqliteTest, ReplayedDeadLettersAreSentAgainAndSettled) {
  transport_.bad_line = "m v=\"s\" 3";
  Append({"m v=1 1", transport_.bad_line, "m v=\"t\" 4"});
  EXPECT_EQ(replicator_->Step(), 0);
  transport_.bad_line = "m v=\"t\" 4";  // the cause of one is fixed, the other still refused
  // Not replayed until asked for.
  EXPECT_EQ(replicator_->Step(), 1'000'000'000);
  ASSERT_EQ(queue_->DeadLetters("influx", 10)->size(), 1u);
  transport_.bad_line = "m v=\"s\" 3";
  ASSERT_EQ(queue_->RequestReplay("influx")->marked, 1);
  transport_.bad_line = "";  // fixed
  const int before = transport_.requests;
  EXPECT_EQ(replicator_->Step(), 0);
  EXPECT_EQ(transport_.requests, before + 1);
  EXPECT_TRUE(queue_->DeadLetters("influx", 10)->empty());
  EXPECT_EQ(Status().sent_points, 3);
  // A line rejected again becomes a fresh dead letter, not marked for replay.
  Append({"m v=\"u\" 5"});
  transport_.bad_line = "m v=\"u\" 5";
  EXPECT_EQ(replicator_->Step(), 0);
  ASSERT_EQ(queue_->RequestReplay("")->marked, 1);
  EXPECT_EQ(replicator_->Step(), 0);
  auto again = queue_->DeadLetters("influx", 10);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ(queue_->RequestReplay("nobody")->marked, 0);
  EXPECT_EQ(replicator_->Step(), 1'000'000'000);  // nothing left to replay
}

TEST_F(ReplicatorSqliteTest, A413ShrinksTheBatchSizeForGood) {
  transport_.max_lines = 30;
  std::vector<std::string> lines;
  for (int i = 0; i < 100; ++i) lines.push_back("m v=" + std::to_string(i) + " " + std::to_string(i + 1));
  Append(lines);
  EXPECT_EQ(replicator_->Step(), 0);
  EXPECT_EQ(Status().sent_points, 100);
  EXPECT_EQ(replicator_->batch_points(), 25);  // 100 -> 50 -> 25 fits
  EXPECT_EQ(Status().batch_points, 25);
  // Later reads take 25 points at most: no more 413 round trips.
  Append(std::vector<std::string>(lines.begin(), lines.begin() + 20));
  Append(std::vector<std::string>(lines.begin() + 20, lines.begin() + 40));
  const int before = transport_.requests;
  EXPECT_EQ(replicator_->Step(), 0);
  EXPECT_EQ(transport_.requests, before + 1);  // one batch of 20 (two would exceed 25)
  // A single batch larger than the learned size goes out in requests of that size, no 413.
  EXPECT_EQ(replicator_->Step(), 0);  // the second 20-point batch
  Append(lines);
  const int more = transport_.requests;
  EXPECT_EQ(replicator_->Step(), 0);
  EXPECT_EQ(transport_.requests, more + 4);  // 100 points in 4 requests of 25
  EXPECT_EQ(Status().pending_points, 0);
}

TEST_F(ReplicatorSqliteTest, BandwidthCapPacesRequests) {
  ReplicatorOptions ro;
  ro.batch_points = 1;
  ro.max_bytes_per_sec = 1000;
  MakeReplicator(ro);
  Append({"m v=1 1"});
  Append({"m v=2 2"});
  EXPECT_EQ(replicator_->Step(), 8'000'000);  // "m v=1 1\n" is 8 bytes: 8 ms at 1000 B/s
  EXPECT_EQ(transport_.requests, 1);
  clock_.AdvanceNs(5'000'000);
  EXPECT_EQ(replicator_->Step(), 3'000'000);  // not yet: no request
  EXPECT_EQ(transport_.requests, 1);
  clock_.AdvanceNs(3'000'000);
  EXPECT_EQ(replicator_->Step(), 8'000'000);
  EXPECT_EQ(transport_.requests, 2);
  EXPECT_EQ(Status().pending_points, 0);
}

TEST_F(ReplicatorSqliteTest, RetryAfterIsObeyedAndShownInStatus) {
  Append({"m v=1 1"});
  transport_.script = {503};
  transport_.retry_after = "120";
  EXPECT_EQ(replicator_->Step(), 120'000'000'000);
  SinkStatus s = Status();
  EXPECT_EQ(s.state, "throttled");
  EXPECT_EQ(s.retry_after_ns, 120'000'000'000);
  EXPECT_EQ(s.next_retry_ns, clock_.WallNowNs() + 120'000'000'000);
}

TEST_F(ReplicatorSqliteTest, NewestFirstSendsTheNewestBacklogFirstAndLosesNothing) {
  ReplicatorOptions ro;
  ro.batch_points = 1;
  ro.newest_first = true;
  MakeReplicator(ro);
  Append({"m v=1 1"});
  Append({"m v=2 2"});
  transport_.script = {503};  // an outage: the backlog builds up
  EXPECT_GT(replicator_->Step(), 0);
  Append({"m v=3 3"});
  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) {
    auto before = queue_->ReadNewest("influx", 1);
    ASSERT_FALSE(before->empty());
    order.push_back(before->front().lines[0]);
    EXPECT_EQ(replicator_->Step(), 0);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"m v=3 3", "m v=2 2", "m v=1 1"}));
  SinkStatus s = Status();
  EXPECT_EQ(s.cursor_seq, 3);
  EXPECT_EQ(s.pending_points, 0);
  EXPECT_EQ(s.sent_points, 3);
}

// The lines of the 2xx-answered request bodies, in order (gzip off).
std::vector<std::string> SentLines(const std::vector<std::string>& bodies, size_t from = 0) {
  std::vector<std::string> lines;
  for (size_t i = from; i < bodies.size(); ++i) {
    size_t start = 0;
    for (size_t nl = bodies[i].find('\n'); nl != std::string::npos; nl = bodies[i].find('\n', start)) {
      lines.push_back(bodies[i].substr(start, nl - start));
      start = nl + 1;
    }
  }
  return lines;
}

// A backlog of one point per batch (as MQTT ingest stores it), drained with the next read made
// while a request is in flight: every point once, in order, and the cursor at the end.
TEST_F(ReplicatorSqliteTest, PipelinedDrainSendsEveryPointOnceInOrder) {
  ReplicatorOptions ro;
  ro.batch_points = 10;
  MakeReplicator(ro);
  std::vector<std::string> lines;
  for (int i = 0; i < 95; ++i) {
    lines.push_back("m v=" + std::to_string(i) + " " + std::to_string(i + 1));
    Append({lines.back()});
  }
  for (int steps = 0; Status().cursor_seq < 95 && steps < 20; ++steps) EXPECT_EQ(replicator_->Step(), 0);
  EXPECT_EQ(SentLines(transport_.bodies), lines);
  EXPECT_EQ(transport_.requests, 10);
  SinkStatus s = Status();
  EXPECT_EQ(s.cursor_seq, 95);
  EXPECT_EQ(s.pending_points, 0);
  EXPECT_EQ(s.sent_points, 95);
}

// A sink that failed gives back what it read (Queue::Release): compaction may then merge those
// batches, and the next Step reads the merged batch at the cursor and sends every point.
TEST_F(ReplicatorSqliteTest, AFailingSinkReleasesWhatItReadSoCompactionCanMergeIt) {
  ReplicatorOptions ro;
  ro.batch_points = 10;
  MakeReplicator(ro);
  std::vector<std::string> lines;
  for (int i = 0; i < 30; ++i) {
    lines.push_back("m v=" + std::to_string(i) + " " + std::to_string(i + 1));
    Append({lines.back()});
  }
  transport_.script = {503};
  EXPECT_GT(replicator_->Step(), 0);  // read 10 (and 10 more ahead), then throttled
  EXPECT_EQ(Status().cursor_seq, 0);
  CompactOptions co;
  co.settle_ns = 0;
  co.target_points = 1000;
  int64_t merged = 0;
  for (int i = 0; i < 10; ++i) {
    Result<int64_t> step = queue_->CompactStep(co);
    ASSERT_TRUE(step.ok()) << step.status().ToString();
    if (*step == 0) break;
    merged += *step;
  }
  EXPECT_EQ(merged, 29);  // one batch: nothing is held any more
  auto stats = queue_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->batches, 1);
  const size_t before = transport_.bodies.size();
  clock_.AdvanceNs(2 * kNsPerSec);
  for (int steps = 0; Status().cursor_seq < 30 && steps < 10; ++steps) EXPECT_EQ(replicator_->Step(), 0);
  EXPECT_EQ(SentLines(transport_.bodies, before), lines);
  SinkStatus s = Status();
  EXPECT_EQ(s.pending_points, 0);
  EXPECT_EQ(s.sent_points, 30);
}

}  // namespace
}  // namespace edgeline
