#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

class QueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.config.path = dir_.File("queue.db");
    options_.clock = &clock_;
  }

  // Opens options_.config as the test set it; sync stays at the QueueConfig default (full).
  std::unique_ptr<Queue> Open() { return OpenTestQueue(options_.config.path, &clock_, options_.config); }

  static BatchInput Lines(int first, int n, std::string stream = std::string(kRawStream)) {
    BatchInput b;
    b.stream = std::move(stream);
    for (int i = first; i < first + n; ++i) {
      b.lines.push_back("m,g=a v=" + std::to_string(i) + " " + std::to_string(1000 + i));
    }
    b.min_ts_ns = 1000 + first;
    b.max_ts_ns = 1000 + first + n - 1;
    return b;
  }

  TempDir dir_;
  FakeClock clock_;
  QueueOpenOptions options_;
};

SinkAttempt Ok(int64_t sent) {
  SinkAttempt a;
  a.state = SinkState::kOk;
  a.last_code = 204;
  a.sent_points = sent;
  return a;
}

TEST_F(QueueTest, AppendReadAckRoundTrip) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  auto seqs = q->Append({Lines(0, 3), Lines(3, 2)}, {});
  ASSERT_TRUE(seqs.ok());
  ASSERT_EQ(seqs->size(), 2u);
  EXPECT_LT((*seqs)[0], (*seqs)[1]);

  auto batches = q->Read("influx", 100);
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 2u);
  EXPECT_EQ((*batches)[0].lines.size(), 3u);
  EXPECT_EQ((*batches)[0].lines[1], "m,g=a v=1 1001");
  EXPECT_EQ((*batches)[1].lines[1], "m,g=a v=4 1004");
  EXPECT_EQ((*batches)[1].min_ts_ns, 1003);

  ASSERT_TRUE(q->Ack("influx", (*batches)[0].seq, Ok(3), {}).ok());
  auto rest = q->Read("influx", 100);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].seq, (*seqs)[1]);

  auto statuses = q->SinkStatuses();
  ASSERT_EQ(statuses->size(), 1u);
  EXPECT_EQ((*statuses)[0].pending_points, 2);
  EXPECT_EQ((*statuses)[0].sent_points, 3);
  EXPECT_EQ((*statuses)[0].last_code, 204);
  EXPECT_EQ((*statuses)[0].last_success_ns, clock_.WallNowNs());
}

// A line-protocol string field may hold a line break; the stored batch must keep such a line whole,
// small (stored as is) or large (zstd), and batches without one keep the plain format.
TEST_F(QueueTest, LinesHoldingLineBreaksComeBackWhole) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  BatchInput small;
  small.lines = {"m note=\"4\n2\" 1", "m f=1 2", "m note=\"\n\r\n\" 3"};
  BatchInput large = Lines(0, 40);
  large.lines[7] = "m note=\"a\nb\nc\" 7";
  ASSERT_TRUE(q->Append({small, large, Lines(100, 1)}, {}).ok());
  q.reset();
  q = Open();  // read back from the file
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  auto batches = q->Read("influx", 1000);
  ASSERT_TRUE(batches.ok()) << batches.status().ToString();
  ASSERT_EQ(batches->size(), 3u);
  EXPECT_EQ((*batches)[0].lines, small.lines);
  EXPECT_EQ((*batches)[1].lines, large.lines);
  EXPECT_EQ((*batches)[2].lines, Lines(100, 1).lines);
}

TEST_F(QueueTest, ReadRespectsMaxPointsButReturnsAtLeastOneBatch) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  ASSERT_TRUE(q->Append({Lines(0, 5), Lines(5, 5), Lines(10, 5)}, {}).ok());
  EXPECT_EQ(q->Read("influx", 10)->size(), 2u);
  EXPECT_EQ(q->Read("influx", 9)->size(), 1u);
  EXPECT_EQ(q->Read("influx", 1)->size(), 1u);  // one oversize batch still goes
}

TEST_F(QueueTest, BatchIsKeptUntilEveryConsumerOfItsStreamPassedIt) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
  ASSERT_TRUE(q->RegisterConsumer("b", "raw").ok());
  ASSERT_TRUE(q->RegisterConsumer("d", "downsampled").ok());
  auto seqs = q->Append({Lines(0, 2), Lines(2, 2, "downsampled")}, {});
  ASSERT_TRUE(seqs.ok());
  ASSERT_TRUE(q->Ack("a", (*seqs)[0], Ok(2), {}).ok());
  EXPECT_EQ(q->Stats()->batches, 2);  // b still needs it
  EXPECT_EQ(q->Read("b", 100)->size(), 1u);
  EXPECT_EQ(q->Read("a", 100)->size(), 0u);
  ASSERT_TRUE(q->Ack("b", (*seqs)[0], Ok(2), {}).ok());
  EXPECT_EQ(q->Stats()->batches, 1);  // only the downsampled one is left
  EXPECT_EQ(q->Read("d", 100)->size(), 1u);
}

TEST_F(QueueTest, SequenceNumbersAreNeverReusedAfterEverythingIsDeleted) {
  int64_t last = 0;
  {
    auto q = Open();
    ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
    auto seqs = q->Append({Lines(0, 1)}, {});
    last = (*seqs)[0];
    ASSERT_TRUE(q->Ack("a", last, Ok(1), {}).ok());
    EXPECT_EQ(q->Stats()->batches, 0);
  }
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
  auto seqs = q->Append({Lines(1, 1)}, {});
  EXPECT_GT((*seqs)[0], last);
  EXPECT_EQ(q->Read("a", 10)->size(), 1u);  // the cursor did not swallow the new batch
}

TEST_F(QueueTest, CursorCannotMoveBackwards) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
  auto seqs = q->Append({Lines(0, 1), Lines(1, 1)}, {});
  ASSERT_TRUE(q->Ack("a", (*seqs)[1], Ok(2), {}).ok());
  EXPECT_EQ(q->Ack("a", (*seqs)[0], Ok(0), {}).code(), StatusCode::kFailedPrecondition);
}

TEST_F(QueueTest, DropOldestWhenFullCountsDropsPerSinkThatHadNotPassed) {
  options_.config.max_bytes = 1500;
  options_.config.zstd_level = 1;
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("fast", "raw").ok());
  ASSERT_TRUE(q->RegisterConsumer("slow", "raw").ok());
  auto first = q->Append({Lines(0, 20)}, {});
  ASSERT_TRUE(first.ok());
  const int64_t one_batch = q->Stats()->bytes;
  ASSERT_GT(one_batch, 0);
  ASSERT_TRUE(q->Ack("fast", (*first)[0], Ok(20), {}).ok());
  // Keep appending until the first batch must go.
  int appended = 1;
  while (q->Stats()->dropped_points_total == 0 && appended < 100) {
    ASSERT_TRUE(q->Append({Lines(appended * 20, 20)}, {}).ok());
    ++appended;
  }
  auto stats = q->Stats();
  EXPECT_EQ(stats->dropped_points_total, 20);
  EXPECT_LE(stats->bytes, 1500);
  auto statuses = q->SinkStatuses();
  ASSERT_TRUE(statuses.ok());
  for (const auto& s : *statuses) {
    if (s.sink == "fast") {
      EXPECT_EQ(s.dropped_points, 0) << "fast had already sent it";
    } else {
      EXPECT_EQ(s.dropped_points, 20);
    }
  }
  // The newest data is what is kept.
  auto batches = q->Read("slow", 1000);
  ASSERT_FALSE(batches->empty());
  EXPECT_EQ(batches->back().lines.back(),
            "m,g=a v=" + std::to_string(appended * 20 - 1) + " " + std::to_string(1000 + appended * 20 - 1));
}

TEST_F(QueueTest, BackpressureRefusesAndWritesNothing) {
  options_.config.max_bytes = 400;
  options_.config.full_policy = QueueFullPolicy::kBackpressure;
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
  Status last;
  int accepted = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = q->Append({Lines(i * 10, 10)}, {});
    if (!r.ok()) {
      last = r.status();
      break;
    }
    ++accepted;
  }
  EXPECT_EQ(last.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(last.retriable());
  EXPECT_EQ(q->Stats()->batches, accepted);
  EXPECT_EQ(q->Stats()->dropped_points_total, 0);
  // Draining makes room again.
  auto batches = q->Read("a", 100000);
  ASSERT_TRUE(q->Ack("a", batches->back().seq, Ok(accepted * 10), {}).ok());
  EXPECT_TRUE(q->Append({Lines(0, 10)}, {}).ok());
}

TEST_F(QueueTest, MaxAgeDropsOldBatchesAndCountsThem) {
  options_.config.max_age_ns = 60 * kNsPerSec;
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
  ASSERT_TRUE(q->Append({Lines(0, 4)}, {}).ok());
  clock_.AdvanceNs(30 * kNsPerSec);
  ASSERT_TRUE(q->Append({Lines(4, 1)}, {}).ok());
  EXPECT_EQ(*q->EnforceLimits(), 0);
  clock_.AdvanceNs(31 * kNsPerSec);
  EXPECT_EQ(*q->EnforceLimits(), 4);
  EXPECT_EQ((*q->SinkStatuses())[0].dropped_points, 4);
  EXPECT_EQ(q->Stats()->points, 1);
}

TEST_F(QueueTest, DeadLettersCommitWithTheBatch) {
  auto q = Open();
  DeadLetter d;
  d.sink = "ingest";
  d.reason = "malformed JSON";
  d.topic = "emergency_generator/g1";
  d.payload = "{\"fuel\": ";
  ASSERT_TRUE(q->Append({Lines(0, 1)}, {d}).ok());
  auto dl = q->DeadLetters("", 10);
  ASSERT_EQ(dl->size(), 1u);
  EXPECT_EQ((*dl)[0].reason, "malformed JSON");
  EXPECT_EQ((*dl)[0].payload, "{\"fuel\": ");
  EXPECT_EQ(q->Stats()->ingest_rejected, 1);
  EXPECT_EQ(q->DeadLetters("influx", 10)->size(), 0u);
}

TEST_F(QueueTest, HugeDeadLetterPayloadIsTruncatedAndSaysSo) {
  auto q = Open();
  DeadLetter d;
  d.sink = "ingest";
  d.reason = "payload too large";
  d.payload = std::string(300 * 1024, 'x');
  ASSERT_TRUE(q->Append({}, {d}).ok());
  auto dl = q->DeadLetters("ingest", 1);
  ASSERT_EQ(dl->size(), 1u);
  EXPECT_EQ((*dl)[0].payload.size(), 64u * 1024);
  EXPECT_NE((*dl)[0].reason.find("truncated to 65536 of 307200 bytes"), std::string::npos) << (*dl)[0].reason;
}

TEST_F(QueueTest, FailedAttemptKeepsCursorAndRecordsError) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  ASSERT_TRUE(q->Append({Lines(0, 2)}, {}).ok());
  SinkAttempt a;
  a.state = SinkState::kOffline;
  a.last_error = "connection refused";
  a.consecutive_failures = 3;
  ASSERT_TRUE(q->RecordAttempt("influx", a).ok());
  auto s = (*q->SinkStatuses())[0];
  EXPECT_EQ(s.state, "offline");
  EXPECT_EQ(s.last_error, "connection refused");
  EXPECT_EQ(s.consecutive_failures, 3);
  EXPECT_EQ(s.pending_points, 2);
  EXPECT_EQ(s.last_success_ns, 0);
  EXPECT_EQ(s.oldest_pending_ns, clock_.WallNowNs());
}

TEST_F(QueueTest, SourcesRoundTripWithTheBatch) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("kafka-raw", "raw").ok());
  BatchInput b = Lines(0, 3);
  b.sources = {{"emergency_generator/generator1", 2}, {"emergency_generator/generator2", 1}};
  ASSERT_TRUE(q->Append({b, Lines(3, 1)}, {}).ok());
  auto read = q->Read("kafka-raw", 100);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].sources, b.sources);
  EXPECT_TRUE((*read)[1].sources.empty());

  // Many runs (over 256 bytes of text): stored as a zstd frame, read back the same.
  BatchInput big = Lines(100, 40);
  for (int i = 0; i < 40; ++i) big.sources.push_back({"emergency_generator/generator" + std::to_string(i), 1});
  ASSERT_TRUE(q->Append({big}, {}).ok());
  auto read_big = q->Read("kafka-raw", 1000);
  ASSERT_TRUE(read_big.ok());
  ASSERT_EQ(read_big->size(), 3u);
  EXPECT_EQ((*read_big)[2].sources, big.sources);
  EXPECT_EQ((*read_big)[2].lines, big.lines);

  BatchInput bad = Lines(4, 2);
  bad.sources = {{"t", 1}};
  auto refused = q->Append({bad}, {});
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(QueueTest, AckWithOutputMovesCursorAppendsOutputAndStoresStateAtomically) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("downsampler", "raw").ok());
  ASSERT_TRUE(q->RegisterConsumer("influx-downsampled", "downsampled").ok());
  auto seqs = q->Append({Lines(0, 3), Lines(3, 3)}, {});
  ASSERT_TRUE(seqs.ok());
  EXPECT_EQ(*q->ConsumerState("downsampler"), "");

  ASSERT_TRUE(q->AckWithOutput("downsampler", (*seqs)[0], Ok(3), {Lines(100, 1, "downsampled")}, "state-1").ok());
  EXPECT_EQ(*q->ConsumerState("downsampler"), "state-1");
  auto out = q->Read("influx-downsampled", 100);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].lines, Lines(100, 1).lines);
  // The raw batch the downsampler passed is gone (it was its only consumer); the next is not.
  EXPECT_EQ(q->Read("downsampler", 100)->size(), 1u);

  // Equal seq is allowed (a window closed by the clock with no new input); backwards is not.
  ASSERT_TRUE(q->AckWithOutput("downsampler", (*seqs)[0], Ok(0), {}, "state-2").ok());
  EXPECT_EQ(*q->ConsumerState("downsampler"), "state-2");
  EXPECT_FALSE(q->AckWithOutput("downsampler", (*seqs)[0] - 1, Ok(0), {}, "x").ok());
  EXPECT_EQ(*q->ConsumerState("downsampler"), "state-2");

  // Under backpressure with no room, nothing of the transaction lands.
  q.reset();
  options_.config.max_bytes = 1;
  options_.config.full_policy = QueueFullPolicy::kBackpressure;
  q = Open();
  ASSERT_TRUE(q->RegisterConsumer("downsampler", "raw").ok());
  ASSERT_TRUE(q->RegisterConsumer("influx-downsampled", "downsampled").ok());
  Status full = q->AckWithOutput("downsampler", (*seqs)[1], Ok(3), {Lines(200, 50, "downsampled")}, "state-3");
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(*q->ConsumerState("downsampler"), "state-2");
  EXPECT_EQ(q->Read("downsampler", 100)->size(), 1u);
}

TEST_F(QueueTest, SkippedPointsAccumulateInSinkStatus) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("kafka-raw", "raw").ok());
  auto seqs = q->Append({Lines(0, 3)}, {});
  SinkAttempt a = Ok(1);
  a.skipped_points = 2;
  ASSERT_TRUE(q->Ack("kafka-raw", (*seqs)[0], a, {}).ok());
  ASSERT_TRUE(q->Ack("kafka-raw", (*seqs)[0], a, {}).ok());
  auto statuses = q->SinkStatuses();
  ASSERT_TRUE(statuses.ok());
  ASSERT_EQ(statuses->size(), 1u);
  EXPECT_EQ((*statuses)[0].skipped_points, 4);
  EXPECT_EQ((*statuses)[0].sent_points, 2);
}

TEST_F(QueueTest, NewestFirstReadsAndOutOfOrderAcksKeepCursorAndGcRight) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  ASSERT_TRUE(q->RegisterConsumer("kafka-raw", "raw").ok());
  auto seqs = q->Append({Lines(0, 2), Lines(2, 2), Lines(4, 2), Lines(6, 2)}, {});
  ASSERT_TRUE(seqs.ok());
  auto newest = q->ReadNewest("influx", 3);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 1u);  // 2 points; two batches would exceed 3
  EXPECT_EQ((*newest)[0].seq, (*seqs)[3]);
  ASSERT_TRUE(q->AckBatches("influx", {(*seqs)[3]}, Ok(2), {}).ok());
  auto status = [&] {
    auto statuses = q->SinkStatuses();  // kept: ranging over *SinkStatuses() would dangle
    for (const auto& s : *statuses) {
      if (s.sink == "influx") return s;
    }
    return SinkStatus{};
  };
  EXPECT_EQ(status().cursor_seq, 0);      // the oldest three are still pending
  EXPECT_EQ(status().pending_points, 6);  // the acknowledged newest one does not count
  // Both orders skip what was acknowledged out of order.
  auto oldest = q->Read("influx", 100);
  ASSERT_EQ(oldest->size(), 3u);
  EXPECT_EQ(oldest->back().seq, (*seqs)[2]);
  auto next = q->ReadNewest("influx", 4);
  ASSERT_EQ(next->size(), 2u);
  EXPECT_EQ((*next)[0].seq, (*seqs)[2]);
  EXPECT_EQ((*next)[1].seq, (*seqs)[1]);
  ASSERT_TRUE(q->AckBatches("influx", {(*seqs)[2], (*seqs)[1]}, Ok(4), {}).ok());
  EXPECT_EQ(status().cursor_seq, 0);  // seq 1 still pending
  ASSERT_TRUE(q->AckBatches("influx", {(*seqs)[0]}, Ok(2), {}).ok());
  EXPECT_EQ(status().cursor_seq, (*seqs)[3]);  // contiguous again: the cursor jumps to the end
  EXPECT_EQ(status().pending_points, 0);
  EXPECT_EQ(status().sent_points, 8);
  EXPECT_EQ(q->Stats()->batches, 4);  // kafka-raw has none of them yet
  ASSERT_TRUE(q->Ack("kafka-raw", (*seqs)[3], Ok(8), {}).ok());
  EXPECT_EQ(q->Stats()->batches, 0);
  EXPECT_TRUE(q->ReadNewest("influx", 10)->empty());
}

TEST_F(QueueTest, ReplayLeavesTruncatedPayloadsAndNonReplayingSinksAlone) {
  auto q = Open();
  auto dl = [](std::string sink, std::string reason, std::string payload) {
    DeadLetter d;
    d.sink = std::move(sink);
    d.reason = std::move(reason);
    d.payload = std::move(payload);
    return d;
  };
  ASSERT_TRUE(q->Append({}, {dl("influx", "type conflict", "m v=1 1"),
                             dl("influx", "type conflict", std::string(70 * 1024, 'x')),  // stored truncated
                             dl("ingest", "payload of 2000000 bytes exceeds EDGELINE_MQTT_MAX_PAYLOAD (1048576)", "{"),
                             dl("ingest", "malformed JSON", "{"), dl("kafka-raw", "too large", "m v=2 2")})
                  .ok());
  auto marks = q->RequestReplay("");
  ASSERT_TRUE(marks.ok());
  EXPECT_EQ(marks->marked, 2);
  EXPECT_EQ(marks->unreplayable, 3);
  EXPECT_EQ(q->ReplayRequested("influx", 10)->size(), 1u);
  EXPECT_EQ(q->ReplayRequested("ingest", 10)->front().reason, "malformed JSON");
  EXPECT_TRUE(q->ReplayRequested("kafka-raw", 10)->empty());
}

TEST_F(QueueTest, StatePersistsAcrossReopenAndReadOnlyOpenSeesIt) {
  {
    auto q = Open();
    ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
    auto seqs = q->Append({Lines(0, 2), Lines(2, 3)}, {});
    ASSERT_TRUE(q->Ack("influx", (*seqs)[0], Ok(2), {}).ok());
    ASSERT_TRUE(q->SetAgentState({{"mqtt_connected", "1"}}).ok());
  }
  QueueOpenOptions ro = options_;
  ro.read_only = true;
  auto q = OpenSqliteQueue(ro);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  auto s = (*q)->SinkStatuses();
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ((*s)[0].pending_points, 3);
  EXPECT_EQ((*s)[0].sent_points, 2);
  EXPECT_EQ((*(*q)->AgentState())[0].second, "1");
  EXPECT_NE((*q)->Append({Lines(0, 1)}, {}).status().code(), StatusCode::kOk);
}

TEST_F(QueueTest, ReadOnlyOpenOfMissingFileIsNotFound) {
  QueueOpenOptions ro = options_;
  ro.read_only = true;
  auto q = OpenSqliteQueue(ro);
  EXPECT_EQ(q.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(options_.config.path));
}

TEST_F(QueueTest, FileIsCreatedWithMode0600) {
  auto q = Open();
  ASSERT_TRUE(q->Append({Lines(0, 1)}, {}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(options_.config.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  std::string wal = options_.config.path + "-wal";
  ASSERT_EQ(::stat(wal.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0);
}

TEST_F(QueueTest, CorruptFileIsMovedAsideAndReported) {
  {
    std::ofstream f(options_.config.path, std::ios::binary);
    f << "this is not a database, just garbage bytes" << std::string(5000, 'x');
  }
  auto q = Open();
  ASSERT_NE(q, nullptr);
  auto stats = q->Stats();
  ASSERT_FALSE(stats->recovered_from.empty());
  EXPECT_TRUE(std::filesystem::exists(stats->recovered_from));
  ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
  EXPECT_TRUE(q->Append({Lines(0, 1)}, {}).ok());
  EXPECT_EQ(*q->IntegrityCheck(), "ok");
}

// Records each OnAppended call and, when given a second (read-only) connection to the file,
// the batch count that connection sees at that moment.
class RecordingWatcher final : public StreamWatcher {
 public:
  explicit RecordingWatcher(Queue* observer = nullptr) : observer_(observer) {}
  void OnAppended(std::string_view stream) override {
    streams.emplace_back(stream);
    if (observer_ != nullptr) batches_seen.push_back(observer_->Stats()->batches);
  }

  std::vector<std::string> streams;
  std::vector<int64_t> batches_seen;

 private:
  Queue* observer_;
};

TEST_F(QueueTest, AppendWakesTheWatchersOfItsStreamOnceAfterTheCommit) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  QueueOpenOptions ro = options_;
  ro.read_only = true;
  auto observer = OpenSqliteQueue(ro);
  ASSERT_TRUE(observer.ok()) << observer.status().ToString();
  RecordingWatcher raw(observer->get());
  RecordingWatcher downsampled;
  q->Watch(kRawStream, &raw);
  q->Watch(kRawStream, &raw);  // a second registration is not a second call
  q->Watch(kDownsampledStream, &downsampled);

  // Two raw batches and an empty downsampled one in one transaction: one call, for raw only,
  // and the batches are visible to another connection when it comes.
  ASSERT_TRUE(q->Append({Lines(0, 2), Lines(2, 2), BatchInput{.stream = "downsampled"}}, {}).ok());
  EXPECT_EQ(raw.streams, std::vector<std::string>{"raw"});
  EXPECT_EQ(raw.batches_seen, std::vector<int64_t>{2});
  EXPECT_TRUE(downsampled.streams.empty());

  // Dead letters alone append no batch.
  DeadLetter dl;
  dl.sink = "ingest";
  dl.reason = "malformed JSON";
  dl.payload = "{";
  ASSERT_TRUE(q->Append({}, {dl}).ok());
  EXPECT_EQ(raw.streams.size(), 1u);

  ASSERT_TRUE(q->Append({Lines(4, 1)}, {}).ok());
  EXPECT_EQ(raw.streams, (std::vector<std::string>{"raw", "raw"}));
  EXPECT_EQ(raw.batches_seen, (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(downsampled.streams.empty());
}

TEST_F(QueueTest, AckWithOutputWakesTheWatchersOfItsOutputStreams) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("downsampler", "raw").ok());
  ASSERT_TRUE(q->RegisterConsumer("influx-downsampled", "downsampled").ok());
  RecordingWatcher raw, downsampled, alarms;
  q->Watch(kRawStream, &raw);
  q->Watch(kDownsampledStream, &downsampled);
  q->Watch(kAlarmStream, &alarms);
  auto seqs = q->Append({Lines(0, 3), Lines(3, 3)}, {});
  ASSERT_TRUE(seqs.ok());
  ASSERT_EQ(raw.streams.size(), 1u);

  ASSERT_TRUE(q->AckWithOutput("downsampler", (*seqs)[0], Ok(3),
                               {Lines(100, 1, "downsampled"), Lines(200, 1, "alarms"), Lines(101, 1, "downsampled")},
                               "state-1")
                  .ok());
  EXPECT_EQ(downsampled.streams, std::vector<std::string>{"downsampled"});
  EXPECT_EQ(alarms.streams, std::vector<std::string>{"alarms"});
  EXPECT_EQ(raw.streams.size(), 1u);  // acknowledging raw does not make it grow

  // An ack without output wakes nobody.
  ASSERT_TRUE(q->AckWithOutput("downsampler", (*seqs)[1], Ok(3), {}, "state-2").ok());
  EXPECT_EQ(downsampled.streams.size(), 1u);
  EXPECT_EQ(alarms.streams.size(), 1u);
  EXPECT_EQ(raw.streams.size(), 1u);
}

TEST_F(QueueTest, FailedAppendOrAckWithOutputWakesNobody) {
  options_.config.max_bytes = 400;
  options_.config.full_policy = QueueFullPolicy::kBackpressure;
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("downsampler", "raw").ok());
  RecordingWatcher raw, downsampled;
  q->Watch(kRawStream, &raw);
  q->Watch(kDownsampledStream, &downsampled);

  // Sources that do not cover the lines: refused before the transaction.
  BatchInput bad = Lines(0, 2);
  bad.sources = {{"t", 1}};
  EXPECT_EQ(q->Append({bad}, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(raw.streams.empty());

  // Backpressure: the transaction that finds the queue full is rolled back.
  size_t accepted = 0;
  Status full;
  for (int i = 0; i < 100 && full.ok(); ++i) {
    auto r = q->Append({Lines(i * 10, 10)}, {});
    if (r.ok()) {
      ++accepted;
    } else {
      full = r.status();
    }
  }
  ASSERT_EQ(full.code(), StatusCode::kResourceExhausted);
  ASSERT_GT(accepted, 0u);
  EXPECT_EQ(raw.streams.size(), accepted);

  // An output that does not fit, and a cursor that would move back: no output, no call.
  auto batches = q->Read("downsampler", 1);
  ASSERT_FALSE(batches->empty());
  const int64_t first = batches->front().seq;
  EXPECT_EQ(q->AckWithOutput("downsampler", first, Ok(10), {Lines(100, 2000, "downsampled")}, "s").code(),
            StatusCode::kResourceExhausted);
  ASSERT_TRUE(q->AckWithOutput("downsampler", first, Ok(10), {}, "s").ok());
  EXPECT_EQ(q->AckWithOutput("downsampler", first - 1, Ok(0), {Lines(100, 1, "downsampled")}, "s").code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(downsampled.streams.empty());
  EXPECT_EQ(raw.streams.size(), accepted);
}

TEST_F(QueueTest, UnwatchStopsTheCallsOnEveryStream) {
  auto q = Open();
  RecordingWatcher kept, removed;
  q->Watch(kRawStream, &kept);
  q->Watch(kRawStream, &removed);
  q->Watch(kDownsampledStream, &removed);
  ASSERT_TRUE(q->Append({Lines(0, 1), Lines(1, 1, "downsampled")}, {}).ok());
  EXPECT_EQ(kept.streams, std::vector<std::string>{"raw"});
  EXPECT_EQ(removed.streams, (std::vector<std::string>{"raw", "downsampled"}));

  q->Unwatch(&removed);
  ASSERT_TRUE(q->Append({Lines(2, 1), Lines(3, 1, "downsampled")}, {}).ok());
  EXPECT_EQ(kept.streams, (std::vector<std::string>{"raw", "raw"}));
  EXPECT_EQ(removed.streams.size(), 2u);
}

}  // namespace
}  // namespace edgeline
