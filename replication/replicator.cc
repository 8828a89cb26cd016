#include "replication/replicator.h"

#include <algorithm>
#include <chrono>
#include <string_view>
#include <vector>

#include "common/log.h"

namespace edgeline {

namespace {
constexpr std::string_view kLog = "replication";
// A jittered delay can round to 0, which Step's contract reserves for "run again now".
constexpr int64_t kMinFailureDelayNs = 10 * kNsPerMs;
}  // namespace

Replicator::Replicator(std::string name, std::string stream, Queue* queue, InfluxWriter* writer,
                       const Clock* clock, ReplicatorOptions options)
    : name_(std::move(name)),
      stream_(std::move(stream)),
      queue_(queue),
      writer_(writer),
      clock_(clock),
      options_(std::move(options)),
      backoff_(options_.retry_min_ns, options_.retry_max_ns, options_.random) {}

Status Replicator::Start() {
  if (registered_) return Status::Ok();
  Status status = queue_->RegisterConsumer(name_, stream_);
  if (status.ok()) registered_ = true;
  return status;
}

void Replicator::SetState(const std::string& state, const std::string& detail) {
  if (state == state_) return;
  if (state == "ok") {
    LOG_INFO(kLog) << "sink " << name_ << " (" << writer_->TargetDescription() << "): ok"
                   << (state_ == "starting" ? "" : " again after " + state_);
  } else {
    LOG_WARN(kLog) << "sink " << name_ << " (" << writer_->TargetDescription() << "): " << state
                   << ": " << detail;
  }
  state_ = state;
}

int64_t Replicator::Fail(const std::string& state, int code, const std::string& error, int64_t delay_ns) {
  delay_ns = std::max(delay_ns, kMinFailureDelayNs);
  SetState(state, error);
  SinkAttempt attempt;
  attempt.state = state;
  attempt.last_code = code;
  attempt.last_error = error;
  attempt.consecutive_failures = consecutive_failures_;
  attempt.next_retry_ns = clock_->WallNowNs() + delay_ns;
  Status recorded = queue_->RecordAttempt(name_, attempt);
  if (!recorded.ok()) {
    LOG_DEBUG(kLog) << "sink " << name_ << ": could not record attempt: " << recorded.ToString();
  }
  return delay_ns;
}

int64_t Replicator::Step() {
  if (!registered_) {
    Status status = Start();
    if (!status.ok()) {
      ++consecutive_failures_;
      SetState("queue-error", status.ToString());
      return std::max(backoff_.DelayNs(consecutive_failures_ - 1), kMinFailureDelayNs);
    }
  }

  Result<std::vector<Batch>> batches = queue_->Read(name_, options_.batch_points);
  if (!batches.ok()) {
    ++consecutive_failures_;
    SetState("queue-error", batches.status().ToString());
    return std::max(backoff_.DelayNs(consecutive_failures_ - 1), kMinFailureDelayNs);
  }
  if (batches->empty()) return options_.idle_ns;

  std::vector<std::string_view> lines;
  for (const Batch& batch : *batches) {
    for (const std::string& line : batch.lines) lines.emplace_back(line);
  }
  const int64_t last_seq = batches->back().seq;
  WriteOutcome outcome = writer_->Write(lines);

  if (outcome.kind == WriteOutcomeKind::kOk) {
    std::vector<DeadLetter> dead_letters;
    dead_letters.reserve(outcome.rejected.size());
    for (RejectedLine& rejected : outcome.rejected) {
      DeadLetter dl;
      dl.sink = name_;
      dl.kind = DeadLetterKind::kRejected;
      dl.reason = std::move(rejected.reason);
      dl.payload = std::move(rejected.line);
      dl.created_ns = clock_->WallNowNs();
      dead_letters.push_back(std::move(dl));
    }
    SinkAttempt attempt;
    attempt.state = "ok";
    attempt.last_code = outcome.http_status;
    attempt.last_error = outcome.error;
    attempt.sent_points = outcome.accepted;
    Status acked = queue_->Ack(name_, last_seq, attempt, dead_letters);
    if (!acked.ok()) {
      // The points are in InfluxDB but the cursor did not move: they will be re-sent, which
      // InfluxDB deduplicates.
      ++consecutive_failures_;
      SetState("queue-error", acked.ToString());
      return std::max(backoff_.DelayNs(consecutive_failures_ - 1), kMinFailureDelayNs);
    }
    if (!dead_letters.empty()) {
      LOG_WARN(kLog) << "sink " << name_ << ": to the dead-letter queue: " << outcome.error;
    }
    consecutive_failures_ = 0;
    SetState("ok", "");
    return 0;  // more may be pending; an empty Read will say idle
  }

  ++consecutive_failures_;
  const int64_t backoff = backoff_.DelayNs(consecutive_failures_ - 1);
  switch (outcome.kind) {
    case WriteOutcomeKind::kAuthFailed:
      return Fail("auth-failed", outcome.http_status, outcome.error, std::max(options_.slow_retry_ns, backoff));
    case WriteOutcomeKind::kNotFound:
      return Fail("not-found", outcome.http_status, outcome.error, std::max(options_.slow_retry_ns, backoff));
    case WriteOutcomeKind::kRetryLater:
      return Fail("throttled", outcome.http_status, outcome.error,
                  outcome.retry_after_ns > 0 ? std::min(outcome.retry_after_ns, options_.retry_max_ns) : backoff);
    case WriteOutcomeKind::kUnavailable:
    case WriteOutcomeKind::kOk:
      break;
  }
  return Fail("offline", outcome.http_status, outcome.error, backoff);
}

void Replicator::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

void Replicator::Run(std::stop_token stop) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop.stop_requested()) {
    notified_ = false;  // a Notify arriving during Step stays set and shortens the next idle wait
    lock.unlock();
    const int64_t delay_ns = Step();
    const bool failing = consecutive_failures_ > 0;
    lock.lock();
    if (delay_ns <= 0) continue;
    cv_.wait_for(lock, stop, std::chrono::nanoseconds(delay_ns),
                 [&] { return notified_ && !failing; });
  }
}

}  // namespace edgeline
