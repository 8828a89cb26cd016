// Tests for replication/replicator.h: cursor, attempts, dead letters and delays per outcome,
// driven step by step with a FakeClock, an in-memory Queue and a scripted HttpTransport.
#include "replication/replicator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/clock.h"
#include "replication/http_transport.h"
#include "replication/influx_writer.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"

namespace edgeline {
namespace {

// In-memory Queue with just enough behaviour for a sink; fail_* switches inject queue errors.
class FakeQueue final : public Queue {
 public:
  Result<std::vector<int64_t>> Append(const std::vector<BatchInput>& inputs, const std::vector<DeadLetter>&) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int64_t> seqs;
    for (const BatchInput& in : inputs) {
      Batch b;
      b.seq = ++max_seq_;
      b.stream = in.stream;
      b.lines = in.lines;
      batches_.push_back(b);
      seqs.push_back(b.seq);
    }
    return seqs;
  }
  Status RegisterConsumer(const std::string& sink, const std::string& stream) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_register) return Status::IoError("disk I/O error");
    consumers_.emplace(sink, Consumer{stream, 0});
    return Status::Ok();
  }
  Result<std::vector<Batch>> Read(const std::string& sink, int64_t max_points) override {
    return ReadAfter(sink, 0, max_points);
  }
  // Like the SQLite queue: remembers the newest seq each sink read until it releases it.
  Result<std::vector<Batch>> ReadAfter(const std::string& sink, int64_t after_seq, int64_t max_points) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++reads;
    read_after.push_back(after_seq);
    if (ignore_after_seq) after_seq = 0;  // Queue's default ReadAfter
    if (fail_read) return Status::IoError("disk I/O error");
    auto it = consumers_.find(sink);
    if (it == consumers_.end()) return Status::NotFound("no consumer " + sink);
    std::vector<Batch> out;
    int64_t points = 0;
    for (const Batch& b : batches_) {
      if (b.seq <= std::max(it->second.cursor, after_seq) || b.stream != it->second.stream) continue;
      if (!out.empty() && points + static_cast<int64_t>(b.lines.size()) > max_points) break;
      points += static_cast<int64_t>(b.lines.size());
      out.push_back(b);
      it->second.held.insert(b.seq);
    }
    return out;
  }
  void Release(const std::string& sink) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++releases;
    auto it = consumers_.find(sink);
    if (it != consumers_.end()) it->second.held.clear();
  }
  Status Ack(const std::string& sink, int64_t seq, const SinkAttempt& attempt,
             const std::vector<DeadLetter>& dead_letters) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_ack) return Status::IoError("disk full");
    Consumer& c = consumers_.at(sink);
    EXPECT_GE(seq, c.cursor);
    // Only a seq read since the latest Release is acknowledged.
    EXPECT_EQ(c.held.count(seq), 1u) << "ack of " << seq << ", not read since the latest Release";
    c.held.erase(c.held.begin(), c.held.upper_bound(seq));
    acked_seqs.push_back(seq);
    c.cursor = seq;
    attempts.push_back(attempt);
    dead.insert(dead.end(), dead_letters.begin(), dead_letters.end());
    acked_.notify_all();
    return Status::Ok();
  }
  Status RecordAttempt(const std::string&, const SinkAttempt& attempt) override {
    std::lock_guard<std::mutex> lock(mu_);
    attempts.push_back(attempt);
    return Status::Ok();
  }
  Status AckWithOutput(const std::string&, int64_t, const SinkAttempt&, const std::vector<BatchInput>&,
                       std::string_view) override {
    return Status::Internal("not used by the replicator");
  }
  Result<std::string> ConsumerState(const std::string&) override { return std::string(); }
  Result<std::vector<Batch>> ReadNewest(const std::string&, int64_t) override {
    return Status::Internal("not used in these tests");
  }
  Status AckBatches(const std::string&, const std::vector<int64_t>&, const SinkAttempt&,
                    const std::vector<DeadLetter>&) override {
    return Status::Internal("not used in these tests");
  }
  Result<ReplayMarks> RequestReplay(const std::string&) override { return ReplayMarks{}; }
  Result<int64_t> PurgeDeadLetters(const std::string&) override { return int64_t{0}; }
  Result<std::vector<DeadLetter>> ReplayRequested(const std::string&, int64_t) override {
    return std::vector<DeadLetter>{};
  }
  Status FinishReplay(const std::vector<int64_t>&, const std::vector<DeadLetter>&) override { return Status::Ok(); }
  Result<int64_t> EnforceLimits() override { return int64_t{0}; }
  Result<std::vector<SinkStatus>> SinkStatuses() override { return std::vector<SinkStatus>{}; }
  Result<QueueStats> Stats() override { return QueueStats{}; }
  Result<std::vector<DeadLetter>> DeadLetters(const std::string&, int64_t) override { return dead; }
  Status SetAgentState(const std::vector<std::pair<std::string, std::string>>&) override { return Status::Ok(); }
  Result<std::vector<std::pair<std::string, std::string>>> AgentState() override {
    return std::vector<std::pair<std::string, std::string>>{};
  }
  Result<std::string> IntegrityCheck() override { return std::string("ok"); }

  int64_t Cursor(const std::string& sink) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = consumers_.find(sink);
    return it == consumers_.end() ? -1 : it->second.cursor;
  }
  bool WaitForCursor(const std::string& sink, int64_t seq) {
    std::unique_lock<std::mutex> lock(mu_);
    // Generous guard so a broken wake-up fails instead of hanging; never reached when correct.
    return acked_.wait_for(lock, std::chrono::seconds(30),
                           [&] { return consumers_.count(sink) && consumers_.at(sink).cursor >= seq; });
  }

  std::atomic<bool> fail_register{false};
  std::atomic<bool> fail_read{false};
  std::atomic<bool> fail_ack{false};
  bool ignore_after_seq = false;
  int reads = 0;
  std::vector<int64_t> read_after;  // after_seq of every read (0 = from the cursor)
  int releases = 0;
  std::vector<int64_t> acked_seqs;
  std::vector<SinkAttempt> attempts;
  std::vector<DeadLetter> dead;

 private:
  struct Consumer {
    std::string stream;
    int64_t cursor = 0;
    std::set<int64_t> held;  // read since the latest Release and not acknowledged
  };
  std::mutex mu_;
  std::condition_variable acked_;
  int64_t max_seq_ = 0;
  std::vector<Batch> batches_;
  std::map<std::string, Consumer> consumers_;
};

// Answers from a script of statuses (then 204), or with `handler` when set.
class ScriptedTransport final : public HttpTransport {
 public:
  Result<HttpResponse> Send(const HttpRequest& request) override {
    ++requests;
    if (handler) return handler(request);
    HttpResponse r;
    r.status = 204;
    if (!script.empty()) {
      r = script.front();
      script.pop_front();
    }
    if (r.status == 0) return Status::Unavailable("http: Connection refused");
    return r;
  }
  void Push(int status, std::string body = "", std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    script.push_back(std::move(r));
  }
  std::deque<HttpResponse> script;
  std::function<Result<HttpResponse>(const HttpRequest&)> handler;
  std::atomic<int> requests{0};
};

BatchInput MakeBatch(int first, int n) {
  BatchInput in;
  for (int i = first; i < first + n; ++i) in.lines.push_back("m,g=g1 v=" + std::to_string(i) + " " + std::to_string(i));
  return in;
}

class ReplicatorTest : public ::testing::Test {
 protected:
  ReplicatorTest() {
    config_.api = InfluxApi::kV1;
    config_.url = "http://127.0.0.1:8086";
    config_.database = "kafka";
    config_.gzip = false;
    options_.batch_points = 100;
    options_.retry_min_ns = kNsPerSec;
    options_.retry_max_ns = 300 * kNsPerSec;
    options_.idle_ns = kNsPerSec;
    options_.random = Backoff::SeededRandom(5);
  }
  std::unique_ptr<Replicator> Make() {
    writer_ = std::make_unique<InfluxWriter>(config_, &transport_, &clock_);
    return std::make_unique<Replicator>("influx", std::string(kRawStream), &queue_, writer_.get(), &clock_, options_);
  }
  void Append(int first, int n) { ASSERT_TRUE(queue_.Append({MakeBatch(first, n)}, {}).ok()); }

  InfluxConfig config_;
  ReplicatorOptions options_;
  FakeClock clock_;
  FakeQueue queue_;
  ScriptedTransport transport_;
  std::unique_ptr<InfluxWriter> writer_;
};

TEST_F(ReplicatorTest, StartRegistersConsumer) {
  auto r = Make();
  EXPECT_EQ(queue_.Cursor("influx"), -1);
  ASSERT_TRUE(r->Start().ok());
  EXPECT_EQ(queue_.Cursor("influx"), 0);
}

TEST_F(ReplicatorTest, IdleWhenEmpty) {
  auto r = Make();
  EXPECT_EQ(r->Step(), kNsPerSec);
  EXPECT_EQ(transport_.requests, 0);
  EXPECT_TRUE(queue_.attempts.empty());
}

TEST_F(ReplicatorTest, AdvancesCursorOn204) {
  auto r = Make();
  Append(0, 3);
  Append(3, 2);
  EXPECT_EQ(r->Step(), 0);
  EXPECT_EQ(transport_.requests, 1);
  EXPECT_EQ(queue_.Cursor("influx"), 2);
  ASSERT_EQ(queue_.attempts.size(), 1u);
  EXPECT_EQ(Name(queue_.attempts[0].state), "ok");
  EXPECT_EQ(queue_.attempts[0].last_code, 204);
  EXPECT_EQ(queue_.attempts[0].sent_points, 5);
  EXPECT_EQ(queue_.attempts[0].consecutive_failures, 0);
  EXPECT_EQ(Name(r->state()), "ok");
  EXPECT_EQ(r->Step(), kNsPerSec);  // drained
  EXPECT_EQ(transport_.requests, 1);
}

TEST_F(ReplicatorTest, ReadsAtMostBatchPoints) {
  options_.batch_points = 4;
  auto r = Make();
  Append(0, 3);
  Append(3, 3);
  EXPECT_EQ(r->Step(), 0);
  EXPECT_EQ(queue_.Cursor("influx"), 1);
  EXPECT_EQ(r->Step(), 0);
  EXPECT_EQ(queue_.Cursor("influx"), 2);
  EXPECT_EQ(transport_.requests, 2);
}

TEST_F(ReplicatorTest, Status500KeepsCursorAndBacksOff) {
  auto r = Make();
  Append(0, 3);
  Backoff reference(options_.retry_min_ns, options_.retry_max_ns, Backoff::SeededRandom(5));
  // Down: 500 for every request, the health endpoint included (a server that answers other
  // requests gets its batch bisected instead: PoisonLine* below).
  transport_.handler = [](const HttpRequest&) -> Result<HttpResponse> {
    HttpResponse resp;
    resp.status = 500;
    resp.body = R"({"error":"internal"})";
    return resp;
  };
  for (int attempt = 0; attempt < 6; ++attempt) {
    const int64_t delay = r->Step();
    EXPECT_GE(delay, 10 * kNsPerMs);
    EXPECT_LE(delay, reference.CapNs(attempt)) << attempt;
    EXPECT_EQ(delay, std::max<int64_t>(reference.DelayNs(attempt), 10 * kNsPerMs));
    EXPECT_EQ(r->consecutive_failures(), attempt + 1);
    EXPECT_EQ(queue_.Cursor("influx"), 0);
    const SinkAttempt& a = queue_.attempts.back();
    EXPECT_EQ(Name(a.state), "offline");
    EXPECT_EQ(a.last_code, 500);
    EXPECT_EQ(a.last_error, "HTTP 500: internal");
    EXPECT_EQ(a.consecutive_failures, attempt + 1);
    EXPECT_EQ(a.next_retry_ns, clock_.WallNowNs() + delay);
    EXPECT_EQ(a.sent_points, 0);
    clock_.AdvanceNs(delay);
  }
  EXPECT_EQ(Name(r->state()), "offline");
}

// Issue 13: a line influxd answers 500 for (engine: unable to parse bool value) blocked the sink
// for good. Retry settings of seconds: it is dead-lettered within a minute, the rest delivered.
TEST_F(ReplicatorTest, PoisonLineIsDeadLetteredWithinAMinuteAndTheRestDelivered) {
  options_.retry_min_ns = kNsPerSec;
  options_.retry_max_ns = 10 * kNsPerSec;
  options_.batch_points = 50;
  auto r = Make();
  const std::string poison = "m,g=g1 v=37 37";
  std::set<std::string> delivered;
  transport_.handler = [&](const HttpRequest& req) -> Result<HttpResponse> {
    HttpResponse resp;
    resp.status = 204;
    if (req.method == "GET") return resp;  // /ping
    if (req.body.find(poison + "\n") != std::string::npos) {
      resp.status = 500;
      resp.body = R"({"error":"engine: unable to parse bool value"})";
      return resp;
    }
    size_t start = 0;
    for (size_t nl = req.body.find('\n'); nl != std::string::npos; nl = req.body.find('\n', start)) {
      delivered.insert(req.body.substr(start, nl - start));
      start = nl + 1;
    }
    return resp;
  };
  for (int i = 0; i < 10; ++i) Append(i * 20, 20);  // 200 points, the poison in the 2nd batch
  const int64_t start = clock_.SteadyNowNs();
  int steps = 0;
  while (queue_.Cursor("influx") < 10 && steps < 1000) {
    clock_.AdvanceNs(r->Step());
    ++steps;
  }
  EXPECT_EQ(queue_.Cursor("influx"), 10);
  EXPECT_LT(clock_.SteadyNowNs() - start, 60 * kNsPerSec);
  EXPECT_EQ(delivered.size(), 199u);
  EXPECT_EQ(delivered.count(poison), 0u);
  ASSERT_EQ(queue_.dead.size(), 1u);
  EXPECT_EQ(queue_.dead[0].payload, poison);
  EXPECT_EQ(queue_.dead[0].kind, DeadLetterKind::kRejected);
  EXPECT_NE(queue_.dead[0].reason.find("HTTP 500: engine: unable to parse bool value"), std::string::npos)
      << queue_.dead[0].reason;
  EXPECT_EQ(Name(r->state()), "ok");
}

// A server down for 10 minutes (500 for everything, health included) never costs a dead letter;
// after it comes back everything arrives, and a poison line among the backlog is isolated.
TEST_F(ReplicatorTest, PoisonLineIsIsolatedOnlyOnceTheServerAnswersAgain) {
  options_.retry_min_ns = kNsPerSec;
  options_.retry_max_ns = 10 * kNsPerSec;
  auto r = Make();
  const std::string poison = "m,g=g1 v=5 5";
  bool down = true;
  std::set<std::string> delivered;
  transport_.handler = [&](const HttpRequest& req) -> Result<HttpResponse> {
    HttpResponse resp;
    resp.status = 204;
    if (down || (req.method != "GET" && req.body.find(poison + "\n") != std::string::npos)) {
      resp.status = 500;
      resp.body = R"({"error":"internal error"})";
      return resp;
    }
    size_t start = 0;
    for (size_t nl = req.body.find('\n'); nl != std::string::npos; nl = req.body.find('\n', start)) {
      delivered.insert(req.body.substr(start, nl - start));
      start = nl + 1;
    }
    return resp;
  };
  const int64_t outage_end = clock_.SteadyNowNs() + 600 * kNsPerSec;
  int appended = 0;
  while (clock_.SteadyNowNs() < outage_end) {
    if (appended < 50) {
      Append(appended, 1);  // lone points keep arriving
      ++appended;
    }
    clock_.AdvanceNs(r->Step());
    EXPECT_TRUE(queue_.dead.empty());
  }
  EXPECT_EQ(queue_.Cursor("influx"), 0);
  down = false;
  for (int steps = 0; queue_.Cursor("influx") < 50 && steps < 200; ++steps) clock_.AdvanceNs(r->Step());
  EXPECT_EQ(queue_.Cursor("influx"), 50);
  EXPECT_EQ(delivered.size(), 49u);
  ASSERT_EQ(queue_.dead.size(), 1u);
  EXPECT_EQ(queue_.dead[0].payload, poison);
}

TEST_F(ReplicatorTest, RecoveryResetsFailures) {
  auto r = Make();
  Append(0, 2);
  transport_.Push(0);  // connection refused
  transport_.Push(502);
  EXPECT_GT(r->Step(), 0);
  EXPECT_EQ(queue_.attempts.back().last_code, 0);
  EXPECT_NE(queue_.attempts.back().last_error.find("Connection refused"), std::string::npos);
  EXPECT_GT(r->Step(), 0);
  EXPECT_EQ(r->consecutive_failures(), 2);
  EXPECT_EQ(r->Step(), 0);
  EXPECT_EQ(r->consecutive_failures(), 0);
  EXPECT_EQ(Name(r->state()), "ok");
  EXPECT_EQ(queue_.Cursor("influx"), 1);
  EXPECT_EQ(Name(queue_.attempts.back().state), "ok");
  EXPECT_EQ(queue_.attempts.back().consecutive_failures, 0);
  EXPECT_EQ(queue_.attempts.back().next_retry_ns, 0);
}

TEST_F(ReplicatorTest, Status400DeadLettersAndAdvances) {
  auto r = Make();
  Append(0, 8);
  const std::string bad = "m,g=g1 v=5 5";
  transport_.handler = [&](const HttpRequest& req) -> Result<HttpResponse> {
    HttpResponse resp;
    resp.status = req.body.find(bad + "\n") != std::string::npos ? 400 : 204;
    if (resp.status == 400) resp.body = R"({"error":"partial write: field type conflict dropped=1"})";
    return resp;
  };
  EXPECT_EQ(r->Step(), 0);
  EXPECT_EQ(queue_.Cursor("influx"), 1);
  ASSERT_EQ(queue_.dead.size(), 1u);
  EXPECT_EQ(queue_.dead[0].sink, "influx");
  EXPECT_EQ(queue_.dead[0].kind, DeadLetterKind::kRejected);
  EXPECT_EQ(queue_.dead[0].payload, bad);
  EXPECT_EQ(queue_.dead[0].reason, "partial write: field type conflict dropped=1");
  EXPECT_EQ(queue_.dead[0].created_ns, clock_.WallNowNs());
  EXPECT_EQ(Name(queue_.attempts.back().state), "ok");
  EXPECT_EQ(queue_.attempts.back().sent_points, 7);
  EXPECT_EQ(queue_.attempts.back().last_code, 400);
  EXPECT_EQ(r->consecutive_failures(), 0);
}

TEST_F(ReplicatorTest, AuthFailureRetriesSlowlyAndKeepsData) {
  auto r = Make();
  Append(0, 2);
  transport_.Push(401, R"({"error":"authorization failed"})");
  transport_.Push(403);
  const int64_t d1 = r->Step();
  EXPECT_GE(d1, 60 * kNsPerSec);
  EXPECT_EQ(Name(queue_.attempts.back().state), "auth-failed");
  EXPECT_EQ(queue_.attempts.back().last_code, 401);
  EXPECT_GE(r->Step(), 60 * kNsPerSec);
  EXPECT_EQ(queue_.Cursor("influx"), 0);
  EXPECT_TRUE(queue_.dead.empty());
}

TEST_F(ReplicatorTest, NotFoundRetriesSlowly) {
  auto r = Make();
  Append(0, 2);
  transport_.Push(404, R"({"error":"database not found: \"kafka\""})");
  EXPECT_GE(r->Step(), 60 * kNsPerSec);
  EXPECT_EQ(Name(queue_.attempts.back().state), "not-found");
  EXPECT_EQ(queue_.Cursor("influx"), 0);
}

TEST_F(ReplicatorTest, ThrottledHonoursRetryAfterCappedAtMax) {
  auto r = Make();
  Append(0, 2);
  transport_.Push(429, "", {{"retry-after", "5"}});
  transport_.Push(503, "", {{"retry-after", "3600"}});
  transport_.Push(503);
  EXPECT_EQ(r->Step(), 5 * kNsPerSec);
  EXPECT_EQ(Name(queue_.attempts.back().state), "throttled");
  EXPECT_EQ(r->Step(), options_.retry_max_ns);
  const int64_t d = r->Step();  // no Retry-After: backoff, third failure
  EXPECT_GT(d, 0);
  EXPECT_LE(d, 4 * kNsPerSec);
  EXPECT_EQ(queue_.Cursor("influx"), 0);
}

TEST_F(ReplicatorTest, QueueErrorsBackOff) {
  auto r = Make();
  queue_.fail_register = true;
  EXPECT_GT(r->Step(), 0);
  queue_.fail_register = false;
  queue_.fail_read = true;
  EXPECT_GT(r->Step(), 0);
  EXPECT_EQ(r->consecutive_failures(), 2);
  EXPECT_EQ(Name(r->state()), "queue-error");
  queue_.fail_read = false;
  Append(0, 2);
  queue_.fail_ack = true;
  EXPECT_GT(r->Step(), 0);
  EXPECT_EQ(queue_.Cursor("influx"), 0);
  queue_.fail_ack = false;
  EXPECT_EQ(r->Step(), 0);  // re-sent (InfluxDB deduplicates), acknowledged
  EXPECT_EQ(queue_.Cursor("influx"), 1);
  EXPECT_EQ(r->consecutive_failures(), 0);
}

TEST_F(ReplicatorTest, RunWakesOnNotifyAndStops) {
  options_.idle_ns = 3600 * kNsPerSec;  // only Notify can end the idle wait in time
  auto r = Make();
  std::jthread thread([&](std::stop_token stop) { r->Run(stop); });
  Append(0, 2);
  r->Notify();
  EXPECT_TRUE(queue_.WaitForCursor("influx", 1));
  Append(2, 2);
  r->Notify();
  EXPECT_TRUE(queue_.WaitForCursor("influx", 2));
  thread.request_stop();
  thread.join();  // returns promptly: the stop token ends the hour-long wait
  EXPECT_EQ(transport_.requests, 2);
}

// The lines of a request body (gzip off), in order.
std::vector<std::string> BodyLines(const std::string& body) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl = body.find('\n'); nl != std::string::npos; nl = body.find('\n', start)) {
    lines.push_back(body.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

std::vector<std::string> LinesOf(int first, int n) { return MakeBatch(first, n).lines; }

TEST_F(ReplicatorTest, FailedWriteReleasesWhatItRead) {
  auto r = Make();
  Append(0, 3);
  transport_.Push(0);  // connection refused
  EXPECT_GT(r->Step(), 0);
  EXPECT_EQ(queue_.releases, 1);  // compaction may merge what it read again
  EXPECT_EQ(queue_.Cursor("influx"), 0);
  EXPECT_EQ(r->Step(), 0);  // read again at the cursor, sent, acknowledged
  EXPECT_EQ(queue_.read_after.back(), 0);
  EXPECT_EQ(queue_.Cursor("influx"), 1);
  EXPECT_EQ(queue_.releases, 1);
}

TEST_F(ReplicatorTest, QueueErrorReleasesWhatItRead) {
  auto r = Make();
  Append(0, 3);
  queue_.fail_ack = true;
  EXPECT_GT(r->Step(), 0);
  EXPECT_EQ(queue_.releases, 1);
  queue_.fail_ack = false;
  EXPECT_EQ(r->Step(), 0);
  EXPECT_EQ(queue_.Cursor("influx"), 1);
}

// A backlog: each request's successor is read (ReadAfter) and encoded while it is in flight,
// and acknowledged beside the next one; acknowledgements stay in order.
TEST_F(ReplicatorTest, BacklogDrainsWithTheNextReadPreparedAndAcksInOrder) {
  options_.batch_points = 2;
  auto r = Make();
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) {
    Append(i * 2, 2);
    for (const std::string& line : LinesOf(i * 2, 2)) expected.push_back(line);
  }
  std::vector<std::string> sent;
  transport_.handler = [&](const HttpRequest& req) -> Result<HttpResponse> {
    for (std::string& line : BodyLines(req.body)) sent.push_back(std::move(line));
    HttpResponse resp;
    resp.status = 204;
    return resp;
  };
  EXPECT_EQ(r->Step(), 0);  // the whole backlog in one Step (under kMaxRequestsPerStep)
  EXPECT_EQ(queue_.Cursor("influx"), 10);
  EXPECT_EQ(transport_.requests, 10);
  EXPECT_EQ(sent, expected);
  EXPECT_EQ(queue_.acked_seqs, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  // The first read at the cursor, then each after the request in flight (the last finds nothing).
  EXPECT_EQ(queue_.read_after, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  ASSERT_EQ(queue_.attempts.size(), 10u);
  for (const SinkAttempt& a : queue_.attempts) {
    EXPECT_EQ(Name(a.state), "ok");
    EXPECT_EQ(a.sent_points, 2);
  }
  EXPECT_EQ(queue_.releases, 0);
  EXPECT_EQ(r->Step(), kNsPerSec);  // drained
}

TEST_F(ReplicatorTest, ABacklogLongerThanOneStepIsHeldAheadForTheNext) {
  options_.batch_points = 1;
  auto r = Make();
  const int n = Replicator::kMaxRequestsPerStep + 5;
  for (int i = 0; i < n; ++i) Append(i, 1);
  EXPECT_EQ(r->Step(), 0);
  EXPECT_EQ(queue_.Cursor("influx"), Replicator::kMaxRequestsPerStep);
  EXPECT_EQ(r->points_ahead(), 1);  // read and encoded, sent by the next Step
  EXPECT_EQ(r->Step(), 0);
  EXPECT_EQ(queue_.Cursor("influx"), n);
  EXPECT_EQ(transport_.requests, n);
  EXPECT_EQ(queue_.releases, 0);
}

// A failure in the middle of a pipelined drain: the request acknowledged beside it stays
// acknowledged; what was read after it is dropped and released, and the next Step reads at
// the cursor again.
TEST_F(ReplicatorTest, FailureInAPipelinedDrainReleasesAndReadsAgainAtTheCursor) {
  options_.batch_points = 2;
  auto r = Make();
  std::vector<std::string> expected;
  for (int i = 0; i < 6; ++i) {
    Append(i * 2, 2);
    for (const std::string& line : LinesOf(i * 2, 2)) expected.push_back(line);
  }
  std::vector<std::vector<std::string>> bodies;
  int calls = 0;
  transport_.handler = [&](const HttpRequest& req) -> Result<HttpResponse> {
    if (++calls == 3) return Status::Unavailable("http: Connection refused");
    bodies.push_back(BodyLines(req.body));
    HttpResponse resp;
    resp.status = 204;
    return resp;
  };
  const int64_t delay = r->Step();
  EXPECT_GT(delay, 0);
  EXPECT_EQ(Name(r->state()), "offline");
  EXPECT_EQ(queue_.Cursor("influx"), 2);  // the second request was acknowledged beside the third
  EXPECT_EQ(queue_.releases, 1);
  EXPECT_EQ(r->points_ahead(), 0);
  const size_t reads_before = queue_.read_after.size();
  clock_.AdvanceNs(delay);
  EXPECT_EQ(r->Step(), 0);
  ASSERT_GT(queue_.read_after.size(), reads_before);
  EXPECT_EQ(queue_.read_after[reads_before], 0);  // at the cursor
  ASSERT_EQ(bodies.size(), 6u);
  EXPECT_EQ(bodies[2], LinesOf(4, 2));  // the failed request's points come first
  EXPECT_EQ(queue_.Cursor("influx"), 6);
  std::vector<std::string> sent;
  for (const auto& b : bodies) sent.insert(sent.end(), b.begin(), b.end());
  EXPECT_EQ(sent, expected);
  for (size_t i = 1; i < queue_.acked_seqs.size(); ++i) EXPECT_GT(queue_.acked_seqs[i], queue_.acked_seqs[i - 1]);
}

TEST_F(ReplicatorTest, AckFailureBesideARequestDropsItsResult) {
  options_.batch_points = 2;
  auto r = Make();
  for (int i = 0; i < 4; ++i) Append(i * 2, 2);
  int calls = 0;
  transport_.handler = [&](const HttpRequest&) -> Result<HttpResponse> {
    if (++calls == 2) queue_.fail_ack = true;  // the first request's Ack runs beside this one
    HttpResponse resp;
    resp.status = 204;
    return resp;
  };
  // The Ack beside the second request may run before or after the switch: either way the
  // Step fails without acknowledging the second request, and releases.
  EXPECT_GT(r->Step(), 0);
  EXPECT_EQ(Name(r->state()), "queue-error");
  EXPECT_LE(queue_.Cursor("influx"), 1);
  EXPECT_EQ(queue_.releases, 1);
  EXPECT_EQ(r->points_ahead(), 0);
  queue_.fail_ack = false;
  transport_.handler = nullptr;
  for (int steps = 0; queue_.Cursor("influx") < 4 && steps < 10; ++steps) r->Step();
  EXPECT_EQ(queue_.Cursor("influx"), 4);
}

// A Queue that ignores ReadAfter's after_seq (the interface's default) returns what is in
// flight again; the replicator notices and reads only at the cursor from then on.
TEST_F(ReplicatorTest, QueueWithoutReadAfterIsReadAtTheCursorOnly) {
  options_.batch_points = 2;
  queue_.ignore_after_seq = true;
  auto r = Make();
  std::vector<std::string> expected;
  for (int i = 0; i < 4; ++i) {
    Append(i * 2, 2);
    for (const std::string& line : LinesOf(i * 2, 2)) expected.push_back(line);
  }
  std::vector<std::string> sent;
  transport_.handler = [&](const HttpRequest& req) -> Result<HttpResponse> {
    for (std::string& line : BodyLines(req.body)) sent.push_back(std::move(line));
    HttpResponse resp;
    resp.status = 204;
    return resp;
  };
  for (int steps = 0; queue_.Cursor("influx") < 4 && steps < 10; ++steps) EXPECT_EQ(r->Step(), 0);
  EXPECT_EQ(sent, expected);  // nothing twice
  EXPECT_EQ(queue_.acked_seqs, (std::vector<int64_t>{1, 2, 3, 4}));
}

// A 413 in a pipelined drain: the next read, encoded for the old size, is cut again.
TEST_F(ReplicatorTest, A413InAPipelinedDrainShrinksTheRequestsAlreadyPrepared) {
  options_.batch_points = 4;
  auto r = Make();
  std::vector<std::string> expected;
  for (int i = 0; i < 12; ++i) {
    Append(i, 1);
    expected.push_back(LinesOf(i, 1)[0]);
  }
  std::vector<std::string> sent;
  size_t largest_after_413 = 0;
  bool saw_413 = false;
  transport_.handler = [&](const HttpRequest& req) -> Result<HttpResponse> {
    std::vector<std::string> lines = BodyLines(req.body);
    HttpResponse resp;
    resp.status = 204;
    if (lines.size() > 2) {
      resp.status = 413;
      saw_413 = true;
      return resp;
    }
    if (saw_413) largest_after_413 = std::max(largest_after_413, lines.size());
    sent.insert(sent.end(), lines.begin(), lines.end());
    return resp;
  };
  for (int steps = 0; queue_.Cursor("influx") < 12 && steps < 20; ++steps) EXPECT_EQ(r->Step(), 0);
  EXPECT_EQ(r->batch_points(), 2);
  EXPECT_EQ(sent, expected);
  EXPECT_EQ(largest_after_413, 2u);
  EXPECT_EQ(transport_.requests, 1 + 6);  // one 413, then 2 lines a request
}

}  // namespace
}  // namespace edgeline
