#include "replication/replicator.h"

#include <algorithm>
#include <future>
#include <string_view>
#include <utility>
#include <vector>

#include "common/field_types.h"
#include "common/log.h"

namespace edgeline {

namespace {
constexpr std::string_view kLog = "replication";
// A jittered delay can round to 0, which Step's contract reserves for "run again now".
constexpr int64_t kMinFailureDelayNs = 10 * kNsPerMs;

}  // namespace

Replicator::Replicator(std::string name, std::string stream, Queue* queue, InfluxWriter* writer, const Clock* clock,
                       ReplicatorOptions options)
    : QueueConsumer(std::move(name), std::move(stream), queue, std::string(kLog)),
      writer_(writer),
      clock_(clock),
      options_(std::move(options)),
      backoff_(options_.retry_min_ns, options_.retry_max_ns, options_.random),
      batch_points_(options_.batch_points) {}

std::string Replicator::Description() const { return writer_->TargetDescription(); }

int64_t Replicator::Fail(SinkState state, int code, const std::string& error, int64_t delay_ns,
                         int64_t retry_after_ns) {
  delay_ns = std::max(delay_ns, kMinFailureDelayNs);
  DropRead();
  SetState(state, error);
  SinkAttempt attempt;
  attempt.state = state;
  attempt.last_code = code;
  attempt.last_error = error;
  attempt.consecutive_failures = consecutive_failures_;
  attempt.next_retry_ns = clock_->WallNowNs() + delay_ns;
  attempt.retry_after_ns = retry_after_ns;
  attempt.batch_points = batch_points_;
  Status recorded = queue()->RecordAttempt(name(), attempt);
  if (!recorded.ok()) {
    LOG_DEBUG(kLog) << "sink " << name() << ": could not record attempt: " << recorded.ToString();
  }
  return delay_ns;
}

void Replicator::DropRead() {
  ahead_.reset();
  queue()->Release(name());
}

int64_t Replicator::QueueError(const Status& status) {
  DropRead();
  ++consecutive_failures_;
  SetState(SinkState::kQueueError, status.ToString());
  return std::max(backoff_.DelayNs(consecutive_failures_ - 1), kMinFailureDelayNs);
}

std::vector<DeadLetter> Replicator::DeadLettersOf(std::vector<RejectedLine> rejected) const {
  std::vector<DeadLetter> dead_letters;
  dead_letters.reserve(rejected.size());
  for (RejectedLine& r : rejected) {
    DeadLetter dl;
    dl.sink = name();
    dl.kind = DeadLetterKind::kRejected;
    dl.reason = std::move(r.reason);
    dl.payload = std::move(r.line);
    dl.created_ns = clock_->WallNowNs();
    dead_letters.push_back(std::move(dl));
  }
  return dead_letters;
}

void Replicator::RecordLearnedTypes(const std::vector<LearnedFieldType>& learned_types) {
  // Recorded when new or changed, and again after an hour, so that the queue's updated_ns (which
  // bounds how long ingest trusts it) follows the server's latest confirmation.
  constexpr int64_t kRefreshNs = 3600 * kNsPerSec;
  const int64_t now = clock_->SteadyNowNs();
  std::vector<KnownFieldType> changed;
  for (const LearnedFieldType& learned : learned_types) {
    auto it = recorded_types_.find({learned.measurement, learned.field});
    if (it != recorded_types_.end() && it->second.first == learned.server_type && now - it->second.second < kRefreshNs) {
      continue;
    }
    if (it == recorded_types_.end() || it->second.first != learned.server_type) {
      LOG_WARN(kLog) << "sink " << name() << ": the server holds field " << learned.field << " of "
                     << learned.measurement << " as " << Name(learned.server_type)
                     << "; ingest now refuses values of another type for that field";
    }
    changed.push_back({learned.measurement, learned.field, learned.server_type, name(), 0});
  }
  if (changed.empty()) return;
  Status recorded = queue()->RecordFieldTypes(changed);
  if (!recorded.ok()) {
    LOG_WARN(kLog) << "sink " << name() << ": could not record learned field types: " << recorded.ToString();
    return;  // the next conflict tries again
  }
  for (const KnownFieldType& t : changed) recorded_types_[{t.measurement, t.field}] = {t.type, now};
}

void Replicator::Account(const WriteOutcome& outcome) {
  RecordLearnedTypes(outcome.learned_types);
  const int64_t now = clock_->SteadyNowNs();
  if (options_.max_bytes_per_sec > 0 && outcome.bytes_sent > 0) {
    // Virtual-time pacing: each request pushes the next one back by its size at the capped rate.
    const int64_t cost_ns = static_cast<int64_t>(static_cast<double>(outcome.bytes_sent) * 1e9 /
                                                 static_cast<double>(options_.max_bytes_per_sec));
    send_allowed_steady_ns_ = std::max(send_allowed_steady_ns_, now) + cost_ns;
  }
  if (outcome.lines_fitting_413 > 0 && outcome.lines_fitting_413 < batch_points_) {
    LOG_WARN(kLog) << "sink " << name() << ": the server refused large requests (413); sending at most "
                   << outcome.lines_fitting_413 << " points per request from now on";
    batch_points_ = outcome.lines_fitting_413;
  }
  if (outcome.kind != WriteOutcomeKind::kOk) return;
  if (rate_window_start_ns_ == 0) rate_window_start_ns_ = now;
  rate_window_points_ += outcome.accepted;
  if (now - rate_window_start_ns_ >= 5 * kNsPerSec) {
    drain_rate_ = static_cast<double>(rate_window_points_) * 1e9 / static_cast<double>(now - rate_window_start_ns_);
    rate_window_start_ns_ = now;
    rate_window_points_ = 0;
  }
}

int64_t Replicator::Replay(std::vector<DeadLetter> dead_letters) {
  std::vector<std::string_view> lines;
  std::vector<int64_t> ids;
  for (const DeadLetter& d : dead_letters) {
    lines.emplace_back(d.payload);
    ids.push_back(d.id);
  }
  WriteOutcome outcome = writer_->Write(lines);
  Account(outcome);
  if (outcome.kind != WriteOutcomeKind::kOk) return FailWrite(outcome);
  std::vector<DeadLetter> again = DeadLettersOf(std::move(outcome.rejected));
  Status settled = queue()->FinishReplay(ids, again);
  if (!settled.ok()) return QueueError(settled);
  LOG_INFO(kLog) << "sink " << name() << ": replayed " << ids.size() << " dead letters: " << outcome.accepted
                 << " written, " << again.size() << " rejected again";
  SinkAttempt attempt;
  attempt.state = SinkState::kOk;
  attempt.last_code = outcome.http_status;
  attempt.sent_points = outcome.accepted;
  attempt.batch_points = batch_points_;
  (void)queue()->RecordAttempt(name(), attempt);
  consecutive_failures_ = 0;
  SetState(SinkState::kOk, "");
  return 0;
}

int64_t Replicator::points_ahead() const { return ahead_ == nullptr ? 0 : static_cast<int64_t>(ahead_->lines.size()); }

std::unique_ptr<Replicator::Unit> Replicator::MakeUnit(std::vector<Batch> batches) {
  auto unit = std::make_unique<Unit>();
  unit->batches = std::move(batches);
  size_t lines = 0;
  for (const Batch& batch : unit->batches) lines += batch.lines.size();
  unit->lines.reserve(lines);
  for (const Batch& batch : unit->batches) {
    for (const std::string& line : batch.lines) unit->lines.emplace_back(line);
  }
  return unit;
}

Replicator::Beside Replicator::WorkBeside(std::optional<Written> written, int64_t after, bool read_ahead,
                                          size_t chunk) const {
  Beside out;
  if (written) out.acked = queue()->Ack(name(), written->seq, written->attempt, written->dead_letters);
  out.written = std::move(written);
  if (!out.acked.ok() || !read_ahead) return out;
  // A failed read is not reported here: the next Step reads at the cursor and meets it.
  Result<std::vector<Batch>> batches = queue()->ReadAfter(name(), after, static_cast<int64_t>(chunk));
  if (!batches.ok() || batches->empty()) return out;
  if (batches->front().seq <= after) {  // a Queue without ReadAfter: what it returned is in flight
    out.read_after_ignored = true;
    return out;
  }
  std::unique_ptr<Unit> unit = MakeUnit(std::move(batches).value());
  unit->chunk = chunk;
  for (size_t begin = 0; begin < unit->lines.size(); begin += chunk) {
    const size_t end = std::min(unit->lines.size(), begin + chunk);
    Result<std::string> body =
        writer_->EncodeBody(std::vector<std::string_view>(unit->lines.begin() + begin, unit->lines.begin() + end));
    if (!body.ok()) {  // Write encodes again, and reports the failure
      unit->bodies.clear();
      break;
    }
    unit->bodies.push_back(std::move(body).value());
  }
  out.next = std::move(unit);
  return out;
}

WriteOutcome Replicator::WriteUnit(Unit& unit) {
  // In requests of at most batch_points_ lines: a batch can hold more (one group commit), and
  // after a 413 the smaller size must hold for every request, not only for reads.
  WriteOutcome outcome;
  const size_t chunk = static_cast<size_t>(batch_points_);  // fixed for this unit (a 413 shrinks the next)
  const bool prepared = unit.chunk == chunk && !unit.bodies.empty();
  size_t index = 0;
  for (size_t begin = 0; begin < unit.lines.size(); begin += chunk, ++index) {
    const size_t end = std::min(unit.lines.size(), begin + chunk);
    std::vector<std::string_view> lines(unit.lines.begin() + begin, unit.lines.begin() + end);
    WriteOutcome part = prepared ? writer_->Write(lines, std::move(unit.bodies[index])) : writer_->Write(lines);
    Account(part);
    // A failure retries the whole unit later; what was written deduplicates in InfluxDB.
    if (part.kind != WriteOutcomeKind::kOk) return part;
    if (begin == 0) {
      outcome.http_status = part.http_status;
      outcome.error = part.error;
    } else if (outcome.error.empty()) {
      outcome.error = part.error;
    }
    outcome.accepted += part.accepted;
    for (RejectedLine& r : part.rejected) outcome.rejected.push_back(std::move(r));
  }
  return outcome;
}

Replicator::Written Replicator::Settle(const Unit& unit, WriteOutcome outcome) const {
  Written written;
  written.seq = unit.batches.back().seq;
  written.dead_letters = DeadLettersOf(std::move(outcome.rejected));
  written.attempt.state = SinkState::kOk;
  written.attempt.last_code = outcome.http_status;
  written.attempt.last_error = outcome.error;
  written.attempt.sent_points = outcome.accepted;
  written.attempt.batch_points = batch_points_;
  written.attempt.drain_rate = drain_rate_;
  written.error = std::move(outcome.error);
  return written;
}

void Replicator::Acked(const Written& written) {
  if (!written.dead_letters.empty()) {
    LOG_WARN(kLog) << "sink " << name() << ": to the dead-letter queue: " << written.error;
  }
  consecutive_failures_ = 0;
  SetState(SinkState::kOk, "");
}

int64_t Replicator::Step() {
  if (!started()) {
    Status status = Start();
    if (!status.ok()) return QueueError(status);
  }
  const int64_t pace_ns = send_allowed_steady_ns_ - clock_->SteadyNowNs();
  if (pace_ns > 0) return pace_ns;  // EDGELINE_INFLUX_MAX_BYTES_PER_SEC

  // Dead letters the user asked to replay go first: they are few and someone is waiting.
  Result<std::vector<DeadLetter>> replay = queue()->ReplayRequested(name(), batch_points_);
  if (replay.ok() && !replay->empty()) return Replay(std::move(replay).value());
  if (options_.newest_first) return StepNewestFirst();

  std::unique_ptr<Unit> unit = std::move(ahead_);
  if (unit == nullptr) {
    Result<std::vector<Batch>> batches = queue()->Read(name(), batch_points_);
    if (!batches.ok()) return QueueError(batches.status());
    if (batches->empty()) return options_.idle_ns;
    unit = MakeUnit(std::move(batches).value());
  }
  const int64_t step_start_ns = clock_->SteadyNowNs();
  std::optional<Written> written;  // sent; acknowledged beside the next request, or below
  for (int requests = 1;; ++requests) {
    // A large read means a backlog: the next points are read and encoded while these are sent.
    const int64_t points = static_cast<int64_t>(unit->lines.size());
    const bool read_ahead = read_after_supported_ && points * 2 >= batch_points_;
    std::future<Beside> beside;
    if (read_ahead || written) {
      beside = std::async(std::launch::async, &Replicator::WorkBeside, this, std::move(written),
                          unit->batches.back().seq, read_ahead, static_cast<size_t>(batch_points_));
      written.reset();
    }
    WriteOutcome outcome = WriteUnit(*unit);
    Beside done = beside.valid() ? beside.get() : Beside{};
    if (done.read_after_ignored) read_after_supported_ = false;
    // On failure the unit's points may be in InfluxDB already: they are re-sent from the cursor,
    // which InfluxDB deduplicates.
    if (!done.acked.ok()) return QueueError(done.acked);
    if (done.written) Acked(*done.written);
    if (outcome.kind != WriteOutcomeKind::kOk) return FailWrite(outcome);
    written = Settle(*unit, std::move(outcome));
    const bool full = points >= batch_points_;
    unit = std::move(done.next);
    if (unit == nullptr) break;
    // The backlog goes on in this Step while reads are full, within bounds (Run checks its stop
    // token between Steps; the bandwidth cap paces each request).
    if (!full || requests >= kMaxRequestsPerStep || clock_->SteadyNowNs() - step_start_ns >= kStepBudgetNs ||
        send_allowed_steady_ns_ > clock_->SteadyNowNs()) {
      ahead_ = std::move(unit);
      break;
    }
  }
  Status acked = queue()->Ack(name(), written->seq, written->attempt, written->dead_letters);
  if (!acked.ok()) return QueueError(acked);
  Acked(*written);
  return std::max<int64_t>(0, send_allowed_steady_ns_ - clock_->SteadyNowNs());  // 0: more may be pending
}

int64_t Replicator::StepNewestFirst() {
  Result<std::vector<Batch>> batches = queue()->ReadNewest(name(), batch_points_);
  if (!batches.ok()) return QueueError(batches.status());
  if (batches->empty()) return options_.idle_ns;
  std::unique_ptr<Unit> unit = MakeUnit(std::move(batches).value());
  WriteOutcome outcome = WriteUnit(*unit);
  if (outcome.kind != WriteOutcomeKind::kOk) return FailWrite(outcome);
  Written written = Settle(*unit, std::move(outcome));
  std::vector<int64_t> seqs;
  for (const Batch& batch : unit->batches) seqs.push_back(batch.seq);
  Status acked = queue()->AckBatches(name(), seqs, written.attempt, written.dead_letters);
  if (!acked.ok()) return QueueError(acked);
  Acked(written);
  return std::max<int64_t>(0, send_allowed_steady_ns_ - clock_->SteadyNowNs());
}

int64_t Replicator::FailWrite(const WriteOutcome& outcome) {
  ++consecutive_failures_;
  const int64_t backoff = backoff_.DelayNs(consecutive_failures_ - 1);
  switch (outcome.kind) {
    case WriteOutcomeKind::kAuthFailed:
      return Fail(SinkState::kAuthFailed, outcome.http_status, outcome.error,
                  std::max(options_.slow_retry_ns, backoff));
    case WriteOutcomeKind::kNotFound:
      return Fail(SinkState::kNotFound, outcome.http_status, outcome.error, std::max(options_.slow_retry_ns, backoff));
    case WriteOutcomeKind::kBadRequest:
      return Fail(SinkState::kBadRequest, outcome.http_status, outcome.error,
                  std::max(options_.slow_retry_ns, backoff));
    case WriteOutcomeKind::kRetryLater:
      if (outcome.retry_after_ns > 0) {
        const int64_t wait = std::min(outcome.retry_after_ns, options_.retry_max_ns);
        return Fail(SinkState::kThrottled, outcome.http_status, outcome.error, wait, wait);
      }
      return Fail(SinkState::kThrottled, outcome.http_status, outcome.error, backoff);
    case WriteOutcomeKind::kUnavailable:
    case WriteOutcomeKind::kOk: break;
  }
  return Fail(SinkState::kOffline, outcome.http_status, outcome.error, backoff);
}

}  // namespace edgeline
