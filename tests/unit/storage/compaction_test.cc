// Compaction (Queue::CompactStep, ShrinkFile, Compactor::RunPass) on a real SQLite queue with a
// fake clock: merged batches hold the same lines in the same order for every consumer, never
// across a cursor or a read the sink still holds, the size bound follows, and the file shrinks.
#include <sqlite3.h>

#include <filesystem>
#include <set>
#include <stop_token>

#include "gtest/gtest.h"
#include "storage/compactor.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

constexpr int64_t kSettleNs = 10 * kNsPerSec;

class CompactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.path = dir_.File("queue.db");
    config_.sync = SyncMode::kNormal;
    options_.target_points = 100;
    options_.settle_ns = kSettleNs;
  }
  std::unique_ptr<Queue> Open() { return OpenTestQueue(config_.path, &clock_, config_); }

  // One line per batch, as MQTT ingest stores it; line i is "gen,g=<i%3> v=<i> <i>".
  static BatchInput One(int i, std::string topic = "t/a") {
    BatchInput b;
    b.lines = {"gen,g=" + std::to_string(i % 3) + " v=" + std::to_string(i) + " " + std::to_string(i)};
    b.min_ts_ns = b.max_ts_ns = i;
    if (!topic.empty()) b.sources = {{topic, 1}};
    return b;
  }
  static std::string LineOf(int i) {
    return "gen,g=" + std::to_string(i % 3) + " v=" + std::to_string(i) + " " + std::to_string(i);
  }
  void AppendOnes(Queue* q, int from, int to, std::string topic = "t/a") {
    for (int i = from; i < to; ++i) ASSERT_TRUE(q->Append({One(i, topic)}, {}).ok());
  }
  // Steps until nothing is left; returns the batches merged away.
  static int64_t CompactAll(Queue* q, const CompactOptions& options) {
    int64_t total = 0;
    for (int i = 0; i < 100000; ++i) {
      auto step = q->CompactStep(options);
      EXPECT_TRUE(step.ok()) << step.status().ToString();
      if (!step.ok() || *step == 0) break;
      total += *step;
    }
    return total;
  }
  // Everything after the sink's cursor, as its lines, acknowledging as it goes.
  static std::vector<std::string> Drain(Queue* q, const std::string& sink, int64_t max_points = 1000000) {
    std::vector<std::string> out;
    while (true) {
      auto batches = q->Read(sink, max_points);
      EXPECT_TRUE(batches.ok());
      if (!batches.ok() || batches->empty()) return out;
      for (const Batch& b : *batches) out.insert(out.end(), b.lines.begin(), b.lines.end());
      SinkAttempt ok;
      ok.state = SinkState::kOk;
      EXPECT_TRUE(q->Ack(sink, batches->back().seq, ok, {}).ok());
    }
  }
  static std::vector<std::string> Range(int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i) out.push_back(LineOf(i));
    return out;
  }
  int64_t Batches(Queue* q) { return q->Stats()->batches; }

  TempDir dir_;
  FakeClock clock_;
  QueueConfig config_;
  CompactOptions options_;
};

TEST_F(CompactionTest, MergesSettledRunsIntoTargetSizedBatchesWithTheSameLinesAndSources) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  AppendOnes(q.get(), 0, 150, "t/a");
  AppendOnes(q.get(), 150, 250, "t/b");
  const int64_t counted_before = q->Stats()->counted_bytes;

  // The full runs merge at once; the tail (50 young batches) waits for settle_ns.
  EXPECT_EQ(CompactAll(q.get(), options_), 2 * 99);
  EXPECT_EQ(Batches(q.get()), 2 + 50);
  clock_.AdvanceNs(kSettleNs);
  EXPECT_EQ(CompactAll(q.get(), options_), 49);
  EXPECT_EQ(Batches(q.get()), 3);

  auto stats = q->Stats();
  EXPECT_EQ(stats->points, 250);
  EXPECT_LT(stats->counted_bytes * 3, counted_before);
  auto batches = q->Read("influx", 1000000);
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 3u);
  EXPECT_EQ((*batches)[0].sources, (std::vector<SourceRun>{{"t/a", 100}}));
  EXPECT_EQ((*batches)[1].sources, (std::vector<SourceRun>{{"t/a", 50}, {"t/b", 50}}));
  EXPECT_EQ((*batches)[2].sources, (std::vector<SourceRun>{{"t/b", 50}}));
  EXPECT_EQ((*batches)[1].min_ts_ns, 100);
  EXPECT_EQ((*batches)[1].max_ts_ns, 199);
  std::vector<std::string> lines;
  for (const Batch& b : *batches) lines.insert(lines.end(), b.lines.begin(), b.lines.end());
  EXPECT_EQ(lines, Range(0, 250));
}

// Batches with and without sources, and lines holding a line break (stored framed).
TEST_F(CompactionTest, KeepsBatchesWithoutSourcesApartAndFramedLinesWhole) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  AppendOnes(q.get(), 0, 10, "t/a");
  AppendOnes(q.get(), 10, 20, "");
  BatchInput broken;
  broken.lines = {"note s=\"two\nlines\" 5"};
  ASSERT_TRUE(q->Append({broken}, {}).ok());
  clock_.AdvanceNs(kSettleNs);
  CompactAll(q.get(), options_);
  auto batches = q->Read("influx", 1000000);
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 2u);
  EXPECT_EQ((*batches)[0].sources, (std::vector<SourceRun>{{"t/a", 10}}));
  EXPECT_TRUE((*batches)[1].sources.empty());
  std::vector<std::string> expected = Range(10, 20);
  expected.push_back("note s=\"two\nlines\" 5");
  EXPECT_EQ((*batches)[1].lines, expected);
}

// Two sinks at different places: each reads exactly what it had not acknowledged.
TEST_F(CompactionTest, NeverMergesAcrossACursor) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("slow", "raw").ok());
  ASSERT_TRUE(q->RegisterConsumer("fast", "raw").ok());
  AppendOnes(q.get(), 0, 300);
  // "fast" acknowledges the first 130 batches, one at a time.
  for (int i = 0; i < 130; ++i) {
    auto b = q->Read("fast", 1);
    SinkAttempt ok;
    ok.state = SinkState::kOk;
    ASSERT_TRUE(q->Ack("fast", b->back().seq, ok, {}).ok());
  }
  clock_.AdvanceNs(kSettleNs);
  EXPECT_GT(CompactAll(q.get(), options_), 0);
  EXPECT_EQ(Drain(q.get(), "fast"), Range(130, 300));
  EXPECT_EQ(Drain(q.get(), "slow"), Range(0, 300));
  EXPECT_EQ(Batches(q.get()), 0);
}

// A sink that read batches and has not acknowledged them keeps them as they are; after it
// acknowledges (or releases them) the rest is merged, and it sees each line once.
TEST_F(CompactionTest, LeavesWhatASinkHoldsUntilItAcknowledgesOrReleases) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  AppendOnes(q.get(), 0, 400);
  clock_.AdvanceNs(kSettleNs);
  auto held = q->Read("influx", 150);  // in flight
  ASSERT_EQ(held->size(), 150u);
  CompactAll(q.get(), options_);
  EXPECT_EQ(Batches(q.get()), 150 + 3);  // the rest merged, the held batches untouched
  SinkAttempt ok;
  ok.state = SinkState::kOk;
  ASSERT_TRUE(q->Ack("influx", held->back().seq, ok, {}).ok());
  EXPECT_EQ(Drain(q.get(), "influx"), Range(150, 400));

  // A failed attempt: the sink releases what it read; compaction may then merge it.
  AppendOnes(q.get(), 400, 600);
  clock_.AdvanceNs(kSettleNs);
  auto failed = q->Read("influx", 150);
  ASSERT_EQ(failed->size(), 150u);
  CompactAll(q.get(), options_);
  EXPECT_EQ(Batches(q.get()), 150 + 1);
  q->Release("influx");
  CompactAll(q.get(), options_);
  EXPECT_EQ(Batches(q.get()), 2);
  EXPECT_EQ(Drain(q.get(), "influx"), Range(400, 600));
}

// A read held over more batches than one step scans does not stop compaction behind it.
TEST_F(CompactionTest, AHeldReadLongerThanOneScanIsSkipped) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  AppendOnes(q.get(), 0, 500);
  clock_.AdvanceNs(kSettleNs);
  auto held = q->Read("influx", 200);
  ASSERT_EQ(held->size(), 200u);
  options_.max_batches_per_step = 50;
  EXPECT_EQ(CompactAll(q.get(), options_), 300 - 3);
  EXPECT_EQ(Batches(q.get()), 200 + 3);
}

// A pipelining sink reads ahead with ReadAfter; both reads are held.
TEST_F(CompactionTest, ReadAfterHoldsThePipelinedReadToo) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  AppendOnes(q.get(), 0, 300);
  clock_.AdvanceNs(kSettleNs);
  auto first = q->Read("influx", 50);
  auto second = q->ReadAfter("influx", first->back().seq, 50);
  ASSERT_EQ(second->size(), 50u);
  EXPECT_EQ(second->front().lines[0], LineOf(50));
  CompactAll(q.get(), options_);
  EXPECT_EQ(Batches(q.get()), 100 + 2);
  SinkAttempt ok;
  ok.state = SinkState::kOk;
  ASSERT_TRUE(q->Ack("influx", first->back().seq, ok, {}).ok());
  ASSERT_TRUE(q->Ack("influx", second->back().seq, ok, {}).ok());
  EXPECT_EQ(Drain(q.get(), "influx"), Range(100, 300));
}

// Batches a newest-first sink acknowledged out of order are not merged with others.
TEST_F(CompactionTest, LeavesOutOfOrderAcknowledgementsAlone) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  AppendOnes(q.get(), 0, 300);
  clock_.AdvanceNs(kSettleNs);
  auto newest = q->ReadNewest("influx", 20);
  std::vector<int64_t> seqs;
  for (const Batch& b : *newest) seqs.push_back(b.seq);
  SinkAttempt ok;
  ok.state = SinkState::kOk;
  ASSERT_TRUE(q->AckBatches("influx", seqs, ok, {}).ok());
  q->Release("influx");
  CompactAll(q.get(), options_);
  EXPECT_EQ(Drain(q.get(), "influx"), Range(0, 280));
}

// Drop-oldest counts a merged batch's points for each sink that had not passed it.
TEST_F(CompactionTest, DropsOfMergedBatchesAreCountedPerSink) {
  config_.max_age_ns = 3600 * kNsPerSec;
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  ASSERT_TRUE(q->RegisterConsumer("kafka", "raw").ok());
  AppendOnes(q.get(), 0, 200);
  auto passed = q->Read("kafka", 100);
  SinkAttempt ok;
  ok.state = SinkState::kOk;
  ASSERT_TRUE(q->Ack("kafka", passed->back().seq, ok, {}).ok());
  clock_.AdvanceNs(kSettleNs);
  CompactAll(q.get(), options_);
  ASSERT_EQ(Batches(q.get()), 2);
  clock_.AdvanceNs(3600 * kNsPerSec);
  EXPECT_EQ(*q->EnforceLimits(), 200);
  std::map<std::string, int64_t> dropped;
  auto sinks = q->SinkStatuses();
  ASSERT_TRUE(sinks.ok());
  for (const SinkStatus& s : *sinks) dropped[s.sink] = s.dropped_points;
  EXPECT_EQ(dropped["influx"], 200);
  EXPECT_EQ(dropped["kafka"], 100);
}

// What the size bound counts is close to the pages the data uses, for one line per batch and
// after compaction; ShrinkFile gives the freed pages back and empties the WAL.
TEST_F(CompactionTest, TheBoundCountsWhatTheFileUsesAndShrinkFileReturnsTheRest) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  for (int i = 0; i < 5000; ++i) {
    BatchInput b = One(i, "emergency_generator/generator" + std::to_string(i % 10));
    b.lines[0] = "genData,generatorID=generator" + std::to_string(i % 10) +
                 " lat=40.68066,lon=-73.47429,temperature=186,power=186,load=2,fuel=" + std::to_string(i) + " " +
                 std::to_string(1764000000000000000 + i * 1000000LL);
    ASSERT_TRUE(q->Append({b}, {}).ok());
  }
  auto used_bytes = [&] {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(config_.path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    int64_t pages = 0, free_pages = 0, page_size = 0;
    auto one = [&](const char* sql) {
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(db, sql, -1, &st, nullptr);
      int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
      sqlite3_finalize(st);
      return v;
    };
    pages = one("PRAGMA page_count");
    free_pages = one("PRAGMA freelist_count");
    page_size = one("PRAGMA page_size");
    sqlite3_close(db);
    return (pages - free_pages) * page_size;
  };
  auto stats = q->Stats();
  const double one_per_batch = static_cast<double>(stats->counted_bytes) / static_cast<double>(used_bytes());
  EXPECT_GT(one_per_batch, 0.85) << stats->counted_bytes << " counted, " << used_bytes() << " used";
  EXPECT_LT(one_per_batch, 1.15) << stats->counted_bytes << " counted, " << used_bytes() << " used";

  clock_.AdvanceNs(kSettleNs);
  options_.target_points = 1000;
  Compactor compactor(q.get(), options_);
  EXPECT_EQ(*compactor.RunPass(std::stop_token()), 5000 - 5);
  stats = q->Stats();
  // The line protocol held vs the file and WAL on disk, beyond what an empty queue file takes
  // (a page per table and index, about 90 KiB).
  auto empty = OpenTestQueue(dir_.File("empty.db"), &clock_, config_);
  ASSERT_TRUE(empty->ShrinkFile().ok());
  const int64_t empty_bytes = empty->Stats()->file_bytes;
  EXPECT_LT(static_cast<double>(stats->file_bytes - empty_bytes), 0.15 * static_cast<double>(stats->raw_bytes))
      << stats->file_bytes << " on disk (" << empty_bytes << " when empty) for " << stats->raw_bytes
      << " bytes of line protocol";
  EXPECT_LT(stats->counted_bytes, stats->file_bytes);
  EXPECT_EQ(stats->file_bytes, static_cast<int64_t>(std::filesystem::file_size(config_.path)) +
                                   static_cast<int64_t>(std::filesystem::file_size(config_.path + "-wal")));
}

}  // namespace
}  // namespace edgeline
