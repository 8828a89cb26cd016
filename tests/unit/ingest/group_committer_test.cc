// GroupCommitter over the real SQLite queue, wrapped in a fake whose Append can be made to fail
// or to wait at a gate, so the tests can see that Submit returns only after the commit.
// Threads synchronize through condition variables; no test sleeps.
#include "ingest/group_committer.h"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "ingest/mapping.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

constexpr int64_t kReceiveNs = 1764000000000000000;  // FakeClock's default wall time

// The message as MQTT ingest hands it to the committer: mapped, stamped with the receive time.
IngestMessage Prepared(std::string_view topic, std::string_view payload, int64_t max_payload_bytes = 1 << 20) {
  return Mapper(MappingConfig{}, max_payload_bytes).Prepare(topic, payload, kReceiveNs);
}

// Delegates to a real queue. Append can fail the next N calls, fail until told otherwise, or
// block at a gate; every attempt is counted and announced on attempts_cv_.
class FlakyQueue final : public Queue {
 public:
  explicit FlakyQueue(std::unique_ptr<Queue> inner) : inner_(std::move(inner)) {}

  void FailNext(int n, Status status) {
    std::lock_guard lock(mu_);
    fail_next_n_ = n;
    failure_ = std::move(status);
  }
  void FailAlways(bool on, Status status = Status::IoError("injected disk error")) {
    std::lock_guard lock(mu_);
    fail_always_ = on;
    failure_ = std::move(status);
  }
  void CloseGate() {
    std::lock_guard lock(mu_);
    gate_open_ = false;
  }
  void OpenGate() {
    {
      std::lock_guard lock(mu_);
      gate_open_ = true;
    }
    cv_.notify_all();
  }
  // Blocks until Append has been entered at least `n` times, or `also` holds (checked whenever
  // Wake() is called), so that a broken committer fails the test instead of hanging it.
  void WaitForAttempts(
      int n, const std::function<bool()>& also = [] { return false; }) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return attempts_ >= n || also(); });
  }
  void Wake() {
    { std::lock_guard lock(mu_); }
    cv_.notify_all();
  }
  int attempts() {
    std::lock_guard lock(mu_);
    return attempts_;
  }
  int successes() {
    std::lock_guard lock(mu_);
    return successes_;
  }

  Result<std::vector<int64_t>> Append(const std::vector<BatchInput>& batches,
                                      const std::vector<DeadLetter>& dead_letters) override {
    {
      std::unique_lock lock(mu_);
      ++attempts_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return gate_open_; });
      if (fail_always_) return failure_;
      if (fail_next_n_ > 0) {
        --fail_next_n_;
        return failure_;
      }
    }
    auto result = inner_->Append(batches, dead_letters);
    if (result.ok()) {
      std::lock_guard lock(mu_);
      ++successes_;
    }
    return result;
  }
  Status RegisterConsumer(const std::string& sink, const std::string& stream) override {
    return inner_->RegisterConsumer(sink, stream);
  }
  void Watch(std::string_view stream, StreamWatcher* watcher) override { inner_->Watch(stream, watcher); }
  void Unwatch(StreamWatcher* watcher) override { inner_->Unwatch(watcher); }
  Result<std::vector<Batch>> Read(const std::string& sink, int64_t max_points) override {
    return inner_->Read(sink, max_points);
  }
  Status Ack(const std::string& sink, int64_t seq, const SinkAttempt& attempt,
             const std::vector<DeadLetter>& dead_letters) override {
    return inner_->Ack(sink, seq, attempt, dead_letters);
  }
  Status RecordAttempt(const std::string& sink, const SinkAttempt& attempt) override {
    return inner_->RecordAttempt(sink, attempt);
  }
  Status AckWithOutput(const std::string& sink, int64_t seq, const SinkAttempt& attempt,
                       const std::vector<BatchInput>& outputs, std::string_view state) override {
    return inner_->AckWithOutput(sink, seq, attempt, outputs, state);
  }
  Result<std::string> ConsumerState(const std::string& sink) override { return inner_->ConsumerState(sink); }
  Result<std::vector<Batch>> ReadNewest(const std::string& sink, int64_t max_points) override {
    return inner_->ReadNewest(sink, max_points);
  }
  Status AckBatches(const std::string& sink, const std::vector<int64_t>& seqs, const SinkAttempt& attempt,
                    const std::vector<DeadLetter>& dead_letters) override {
    return inner_->AckBatches(sink, seqs, attempt, dead_letters);
  }
  Result<ReplayMarks> RequestReplay(const std::string& sink) override { return inner_->RequestReplay(sink); }
  Result<int64_t> PurgeDeadLetters(const std::string& sink) override { return inner_->PurgeDeadLetters(sink); }
  Result<std::vector<DeadLetter>> ReplayRequested(const std::string& sink, int64_t limit) override {
    return inner_->ReplayRequested(sink, limit);
  }
  Status FinishReplay(const std::vector<int64_t>& ids, const std::vector<DeadLetter>& again) override {
    return inner_->FinishReplay(ids, again);
  }
  Result<int64_t> EnforceLimits() override { return inner_->EnforceLimits(); }
  Result<std::vector<SinkStatus>> SinkStatuses() override { return inner_->SinkStatuses(); }
  Result<QueueStats> Stats() override { return inner_->Stats(); }
  Result<std::vector<DeadLetter>> DeadLetters(const std::string& sink, int64_t limit) override {
    return inner_->DeadLetters(sink, limit);
  }
  Status SetAgentState(const std::vector<std::pair<std::string, std::string>>& kv) override {
    return inner_->SetAgentState(kv);
  }
  Result<std::vector<std::pair<std::string, std::string>>> AgentState() override { return inner_->AgentState(); }
  Result<std::string> IntegrityCheck() override { return inner_->IntegrityCheck(); }

 private:
  std::unique_ptr<Queue> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  int fail_next_n_ = 0;
  bool fail_always_ = false;
  bool gate_open_ = true;
  Status failure_;
  int attempts_ = 0;
  int successes_ = 0;
};

// Runs Submit on its own thread and records when it returns.
class AsyncSubmit {
 public:
  AsyncSubmit(GroupCommitter* committer, FlakyQueue* queue, std::string topic, std::string payload)
      : thread_([this, committer, queue, topic = std::move(topic), payload = std::move(payload)] {
          Status st = committer->Submit(Prepared(topic, payload));
          {
            std::lock_guard lock(mu_);
            result_ = st;
            done_ = true;
          }
          queue->Wake();
        }) {}
  ~AsyncSubmit() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() {
    std::lock_guard lock(mu_);
    return done_;
  }
  Status Join() {
    thread_.join();
    std::lock_guard lock(mu_);
    return result_;
  }

 private:
  std::mutex mu_;
  bool done_ = false;
  Status result_;
  std::thread thread_;
};

// True if the Submit has still not returned after giving its thread many chances to run: a
// bounded spin (no sleep) that only ever observes, so a correct committer never fails it.
bool StaysBlocked(AsyncSubmit& submit) {
  for (int i = 0; i < 20000; ++i) {
    if (submit.done()) return false;
    std::this_thread::yield();
  }
  return !submit.done();
}

class GroupCommitterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto inner = OpenTestQueue(dir_.File("queue.db"), &clock_);
    ASSERT_NE(inner, nullptr);
    queue_ = std::make_unique<FlakyQueue>(std::move(inner));
    ASSERT_TRUE(queue_->RegisterConsumer("influx", std::string(kRawStream)).ok());
    options_.retry_delay_ns = kNsPerMs;
  }
  void TearDown() override {
    committer_.reset();
    queue_.reset();
  }

  GroupCommitter& Committer() {
    if (!committer_) committer_ = std::make_unique<GroupCommitter>(queue_.get(), &clock_, options_);
    return *committer_;
  }

  std::vector<std::string> ReadLines() {
    auto batches = queue_->Read("influx", 1'000'000);
    EXPECT_TRUE(batches.ok()) << batches.status().ToString();
    std::vector<std::string> lines;
    if (!batches.ok()) return lines;
    for (const auto& b : *batches) lines.insert(lines.end(), b.lines.begin(), b.lines.end());
    return lines;
  }

  std::vector<DeadLetter> IngestDeadLetters() {
    auto dl = queue_->DeadLetters("ingest", 100);
    EXPECT_TRUE(dl.ok()) << dl.status().ToString();
    return dl.ok() ? *dl : std::vector<DeadLetter>{};
  }

  // Maps and commits one message, as MQTT ingest does.
  Status Submit(std::string_view topic, std::string_view payload) {
    return Committer().Submit(Prepared(topic, payload, max_payload_bytes_));
  }

  TempDir dir_;
  FakeClock clock_;
  int64_t max_payload_bytes_ = 1 << 20;
  GroupCommitterOptions options_;
  std::unique_ptr<FlakyQueue> queue_;
  std::unique_ptr<GroupCommitter> committer_;
};

TEST_F(GroupCommitterTest, SubmitReturnsOkWithThePointInTheQueue) {
  ASSERT_TRUE(Submit("emergency_generator/g1", R"({"generatorID":"g1","fuel":42})").ok());
  auto lines = ReadLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("generatorID=g1"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("fuel=42"), std::string::npos) << lines[0];
  // The receive time was assigned once, from the injected clock.
  EXPECT_NE(lines[0].find(" " + std::to_string(kReceiveNs)), std::string::npos) << lines[0];
  EXPECT_EQ(Committer().counters().messages.load(), 1);
  EXPECT_EQ(Committer().counters().committed_points.load(), 1);
  EXPECT_EQ(Committer().counters().commits.load(), 1);
  EXPECT_EQ(Committer().counters().last_message_ns.load(), kReceiveNs);
  EXPECT_TRUE(IngestDeadLetters().empty());
}

TEST_F(GroupCommitterTest, SubmitDoesNotReturnBeforeTheAppendCompletes) {
  GroupCommitter& committer = Committer();
  queue_->CloseGate();
  AsyncSubmit submit(&committer, queue_.get(), "t", R"({"generatorID":"g1","fuel":1})");
  queue_->WaitForAttempts(1, [&] { return submit.done(); });  // the writer is inside Append, at the gate
  EXPECT_TRUE(StaysBlocked(submit));
  EXPECT_EQ(queue_->successes(), 0);
  queue_->OpenGate();
  ASSERT_TRUE(submit.Join().ok());
  EXPECT_EQ(queue_->successes(), 1);
  EXPECT_EQ(ReadLines().size(), 1u);
}

TEST_F(GroupCommitterTest, BadPayloadIsCommittedAsRejectedDeadLetter) {
  const std::string payload = "{not json";
  ASSERT_TRUE(Submit("emergency_generator/g1", payload).ok());
  EXPECT_TRUE(ReadLines().empty());
  auto dl = IngestDeadLetters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].kind, DeadLetterKind::kRejected);
  EXPECT_EQ(dl[0].sink, "ingest");
  EXPECT_EQ(dl[0].topic, "emergency_generator/g1");
  EXPECT_EQ(dl[0].payload, payload);
  EXPECT_FALSE(dl[0].reason.empty());
  EXPECT_EQ(Committer().counters().rejected.load(), 1);
  EXPECT_EQ(Committer().counters().committed_points.load(), 0);
  auto stats = queue_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->ingest_rejected, 1);
  EXPECT_EQ(stats->batches, 0);
}

TEST_F(GroupCommitterTest, PartialPayloadGivesPointAndPartialDeadLetter) {
  const std::string payload = R"({"generatorID":"g","fuel":1e400,"load":1})";
  ASSERT_TRUE(Submit("emergency_generator/g", payload).ok());
  auto lines = ReadLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("load=1"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("fuel"), std::string::npos) << lines[0];
  auto dl = IngestDeadLetters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].kind, DeadLetterKind::kPartial);
  EXPECT_EQ(dl[0].payload, payload);
  EXPECT_NE(dl[0].reason.find("fuel"), std::string::npos) << dl[0].reason;
  EXPECT_EQ(Committer().counters().partial.load(), 1);
  EXPECT_EQ(Committer().counters().rejected.load(), 0);
  EXPECT_EQ(Committer().counters().committed_points.load(), 1);
  auto stats = queue_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->ingest_rejected, 0);  // partial letters are informational
}

// The mapper marks points whose device clock was wrong (EDGELINE_JSON_TIME_POLICY); the
// committer sums them over the messages it commits.
TEST_F(GroupCommitterTest, WrongDeviceClocksAreCounted) {
  IngestMessage adjusted = Prepared("emergency_generator/g", R"({"generatorID":"g","fuel":1})");
  adjusted.mapped.device_time_adjusted = 1;
  IngestMessage rejected = Prepared("emergency_generator/g", "{not json");
  rejected.mapped.device_time_rejected = 1;
  std::vector<IngestMessage> both;
  both.push_back(std::move(adjusted));
  both.push_back(std::move(rejected));
  ASSERT_TRUE(Committer().SubmitAll(std::move(both)).ok());
  ASSERT_TRUE(Submit("emergency_generator/g", R"({"generatorID":"g","fuel":2})").ok());
  EXPECT_EQ(Committer().counters().device_time_adjusted.load(), 1);
  EXPECT_EQ(Committer().counters().device_time_rejected.load(), 1);
  EXPECT_EQ(Committer().counters().committed_points.load(), 2);
  EXPECT_EQ(Committer().counters().rejected.load(), 1);
}

TEST_F(GroupCommitterTest, OversizePayloadIsRejectedWithTruncatedCopy) {
  max_payload_bytes_ = 4096;
  std::string payload = R"({"generatorID":"g","note":")" + std::string(8000, 'x') + R"("})";
  ASSERT_TRUE(Submit("emergency_generator/g", payload).ok());
  EXPECT_TRUE(ReadLines().empty());
  auto dl = IngestDeadLetters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].kind, DeadLetterKind::kRejected);
  EXPECT_LT(dl[0].payload.size(), payload.size());
  EXPECT_FALSE(dl[0].payload.empty());
  EXPECT_EQ(dl[0].payload, payload.substr(0, dl[0].payload.size()));
  EXPECT_NE(dl[0].reason.find(std::to_string(payload.size())), std::string::npos) << dl[0].reason;
}

TEST_F(GroupCommitterTest, PayloadAtTheLimitIsAccepted) {
  const std::string payload = R"({"generatorID":"g","fuel":5})";
  max_payload_bytes_ = static_cast<int64_t>(payload.size());
  ASSERT_TRUE(Submit("t", payload).ok());
  EXPECT_EQ(ReadLines().size(), 1u);
  EXPECT_TRUE(IngestDeadLetters().empty());
}

TEST_F(GroupCommitterTest, RetriesFailedAppendAndCommitsExactlyOnce) {
  queue_->FailNext(3, Status::IoError("injected disk error"));
  ASSERT_TRUE(Submit("t", R"({"generatorID":"g1","fuel":7})").ok());
  EXPECT_EQ(queue_->attempts(), 4);
  EXPECT_EQ(queue_->successes(), 1);
  EXPECT_EQ(Committer().counters().commit_failures.load(), 3);
  EXPECT_EQ(Committer().counters().commits.load(), 1);
  EXPECT_EQ(ReadLines().size(), 1u);
}

TEST_F(GroupCommitterTest, SubmitStaysBlockedWhileAppendsFail) {
  GroupCommitter& committer = Committer();
  queue_->FailAlways(true, Status::ResourceExhausted("queue full"));
  AsyncSubmit submit(&committer, queue_.get(), "t", R"({"generatorID":"g1","fuel":7})");
  queue_->WaitForAttempts(3, [&] { return submit.done(); });
  // Three failed transactions and no success: the producer must still be waiting (it would
  // otherwise PUBACK a message that is not stored).
  EXPECT_TRUE(StaysBlocked(submit));
  EXPECT_EQ(queue_->successes(), 0);
  queue_->FailAlways(false);
  ASSERT_TRUE(submit.Join().ok());
  EXPECT_EQ(queue_->successes(), 1);
  EXPECT_GE(committer.counters().commit_failures.load(), 3);
  auto lines = ReadLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("fuel=7"), std::string::npos);
}

TEST_F(GroupCommitterTest, ConcurrentProducersAreAllCommitted) {
  constexpr int kProducers = 8;
  constexpr int kPerProducer = 50;
  GroupCommitter& committer = Committer();
  committer.SetProducerCount(kProducers);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        std::string payload = R"({"generatorID":"g)" + std::to_string(p) + R"(","seq":)" + std::to_string(i) + "}";
        if (!committer.Submit(Prepared("t", payload)).ok()) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto lines = ReadLines();
  EXPECT_EQ(lines.size(), static_cast<size_t>(kProducers * kPerProducer));
  std::set<std::string> unique(lines.begin(), lines.end());
  EXPECT_EQ(unique.size(), lines.size());
  const auto& c = committer.counters();
  EXPECT_EQ(c.messages.load(), kProducers * kPerProducer);
  EXPECT_EQ(c.committed_points.load(), kProducers * kPerProducer);
  EXPECT_GE(c.commits.load(), 1);
  EXPECT_LE(c.commits.load(), c.messages.load());
}

TEST_F(GroupCommitterTest, MixedGroupKeepsGoodPointsAndDeadLetters) {
  // Messages committed while another transaction is in progress (usually together, in one
  // group): the bad message's dead letter must not take the good messages down with it.
  GroupCommitter& committer = Committer();
  committer.SetProducerCount(3);
  queue_->CloseGate();
  AsyncSubmit first(&committer, queue_.get(), "t", R"({"generatorID":"a","fuel":1})");
  queue_->WaitForAttempts(1, [&] { return first.done(); });  // the writer holds `first`
  AsyncSubmit good(&committer, queue_.get(), "t", R"({"generatorID":"b","fuel":2})");
  AsyncSubmit bad(&committer, queue_.get(), "t", "garbage{");
  queue_->OpenGate();
  EXPECT_TRUE(first.Join().ok());
  EXPECT_TRUE(good.Join().ok());
  EXPECT_TRUE(bad.Join().ok());
  EXPECT_EQ(ReadLines().size(), 2u);
  auto dl = IngestDeadLetters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].payload, "garbage{");
}

TEST_F(GroupCommitterTest, StopWithFailingQueueReturnsUnavailable) {
  GroupCommitter& committer = Committer();
  queue_->FailAlways(true);
  AsyncSubmit submit(&committer, queue_.get(), "t", R"({"generatorID":"g1","fuel":7})");
  queue_->WaitForAttempts(1, [&] { return submit.done(); });
  EXPECT_TRUE(StaysBlocked(submit));
  committer.Stop();
  Status st = submit.Join();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_EQ(queue_->successes(), 0);
  // After Stop nothing is accepted, so nothing can be acknowledged.
  Status later = committer.Submit(Prepared("t", R"({"generatorID":"g1","fuel":8})"));
  EXPECT_EQ(later.code(), StatusCode::kUnavailable);
  queue_->FailAlways(false);
  EXPECT_TRUE(ReadLines().empty());
}

TEST_F(GroupCommitterTest, StopCommitsWhatIsPending) {
  GroupCommitter& committer = Committer();
  queue_->CloseGate();
  AsyncSubmit submit(&committer, queue_.get(), "t", R"({"generatorID":"g1","fuel":7})");
  queue_->WaitForAttempts(1, [&] { return submit.done(); });
  EXPECT_TRUE(StaysBlocked(submit));
  std::thread stopper([&] { committer.Stop(); });
  queue_->OpenGate();
  stopper.join();
  EXPECT_TRUE(submit.Join().ok());
  EXPECT_EQ(ReadLines().size(), 1u);
  EXPECT_EQ(committer.Submit(Prepared("t", "{}")).code(), StatusCode::kUnavailable);
}

// The chunks of one HTTP write request: all in one transaction, each its own batch.
TEST_F(GroupCommitterTest, SubmitAllCommitsEveryChunkInOneTransactionEachAsItsOwnBatch) {
  std::vector<IngestMessage> chunks;
  for (int i = 0; i < 3; ++i) chunks.push_back(Prepared("http/b", R"({"generatorID":"g)" + std::to_string(i) + R"(","fuel":1})"));
  ASSERT_TRUE(Committer().SubmitAll(std::move(chunks)).ok());
  EXPECT_EQ(queue_->attempts(), 1);
  EXPECT_EQ(Committer().counters().commits.load(), 1);
  EXPECT_EQ(Committer().counters().messages.load(), 3);
  EXPECT_EQ(Committer().counters().committed_points.load(), 3);
  auto batches = queue_->Read("influx", 1'000'000);
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ((*batches)[i].lines.size(), 1u);
    EXPECT_NE((*batches)[i].lines[0].find("generatorID=g" + std::to_string(i)), std::string::npos);
  }
  EXPECT_TRUE(Committer().SubmitAll({}).ok());
}

// commit_max_messages cuts groups, but never through one SubmitAll: its chunks are committed
// together or not at all.
TEST_F(GroupCommitterTest, SubmitAllIsNeverSplitBetweenGroups) {
  options_.commit_max_messages = 2;
  GroupCommitter& committer = Committer();
  committer.SetProducerCount(2);
  queue_->CloseGate();
  AsyncSubmit first(&committer, queue_.get(), "t", R"({"generatorID":"a","fuel":1})");
  queue_->WaitForAttempts(1, [&] { return first.done(); });  // the writer holds `first`
  Status all_result;
  std::atomic<bool> all_done{false};
  std::thread all([&] {
    std::vector<IngestMessage> chunks;
    for (int i = 0; i < 3; ++i) chunks.push_back(Prepared("http/b", R"({"generatorID":"c)" + std::to_string(i) + R"(","fuel":1})"));
    all_result = committer.SubmitAll(std::move(chunks));
    all_done = true;
    queue_->Wake();
  });
  // Queued behind `first` (the leader is still in Append): opening the gate commits them.
  for (int i = 0; i < 20000 && committer.counters().messages.load() < 4; ++i) std::this_thread::yield();
  ASSERT_EQ(committer.counters().messages.load(), 4);
  queue_->OpenGate();
  EXPECT_TRUE(first.Join().ok());
  all.join();
  EXPECT_TRUE(all_result.ok());
  // `first` alone, then the three chunks in one transaction (not 2 + 1).
  EXPECT_EQ(queue_->successes(), 2);
  EXPECT_EQ(ReadLines().size(), 4u);
}

TEST_F(GroupCommitterTest, SubmitAllRefusedAtStopCommitsNoChunk) {
  GroupCommitter& committer = Committer();
  queue_->FailAlways(true, Status::ResourceExhausted("queue full"));
  Status result;
  std::thread all([&] {
    std::vector<IngestMessage> chunks;
    for (int i = 0; i < 3; ++i) chunks.push_back(Prepared("http/b", R"({"generatorID":"c)" + std::to_string(i) + R"(","fuel":1})"));
    result = committer.SubmitAll(std::move(chunks));
    queue_->Wake();
  });
  queue_->WaitForAttempts(2);
  committer.Stop();
  all.join();
  EXPECT_EQ(result.code(), StatusCode::kUnavailable) << result.ToString();
  queue_->FailAlways(false);
  EXPECT_TRUE(ReadLines().empty());
}

// The sinks of stream "raw" are woken by the queue after each commit.
TEST_F(GroupCommitterTest, EachCommitWakesTheRawStreamsWatchers) {
  struct Counter final : StreamWatcher {
    std::atomic<int> calls{0};
    void OnAppended(std::string_view stream) override {
      if (stream == kRawStream) calls++;
    }
  } counter;
  queue_->Watch(kRawStream, &counter);
  GroupCommitter& committer = Committer();
  ASSERT_TRUE(committer.Submit(Prepared("t", R"({"generatorID":"g1","fuel":1})")).ok());
  ASSERT_TRUE(committer.Submit(Prepared("t", R"({"generatorID":"g1","fuel":2})")).ok());
  committer.Stop();
  queue_->Unwatch(&counter);
  EXPECT_EQ(counter.calls.load(), committer.counters().commits.load());
  EXPECT_GE(counter.calls.load(), 1);
}

}  // namespace
}  // namespace edgeline
