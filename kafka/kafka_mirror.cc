#include "kafka/kafka_mirror.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string_view>
#include <utility>

#include "common/log.h"

namespace edgeline {

namespace {
constexpr std::string_view kLog = "kafka";
// A jittered delay can round to 0, which Step's contract reserves for "run again now".
constexpr int64_t kMinFailureDelayNs = 10 * kNsPerMs;
}  // namespace

KafkaMirrorOptions KafkaMirrorOptionsFromConfig(const KafkaConfig& config) {
  KafkaMirrorOptions options;
  options.format = config.format;
  options.max_in_flight = std::max(1, config.batch_points);
  options.retry_min_ns = config.retry_min_ns;
  options.retry_max_ns = config.retry_max_ns;
  return options;
}

KafkaMirror::KafkaMirror(std::string name, std::string stream, Queue* queue, Producer* producer, const Clock* clock,
                         TopicRouter router, KafkaMirrorOptions options)
    : QueueConsumer(std::move(name), std::move(stream), queue, std::string(kLog)),
      producer_(producer),
      clock_(clock),
      router_(std::move(router)),
      options_(std::move(options)),
      backoff_(options_.retry_min_ns, options_.retry_max_ns, options_.random) {}

int64_t KafkaMirror::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

int64_t KafkaMirror::Fail(SinkState state, const std::string& error, int64_t delay_ns) {
  delay_ns = std::max(delay_ns, kMinFailureDelayNs);
  SetState(state, error);
  last_error_ = error;
  retry_at_ns_ = clock_->SteadyNowNs() + delay_ns;
  SinkAttempt attempt;
  attempt.state = state;
  attempt.last_error = error;
  attempt.consecutive_failures = consecutive_failures_;
  attempt.next_retry_ns = clock_->WallNowNs() + delay_ns;
  Status recorded = queue()->RecordAttempt(name(), attempt);
  if (!recorded.ok()) {
    LOG_DEBUG(kLog) << "sink " << name() << ": could not record attempt: " << recorded.ToString();
  }
  return delay_ns;
}

void KafkaMirror::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.clear();
  out_.clear();
  failed_ = false;
  produced_seq_ = acked_seq_;
  recovering_ = true;
  release_due_ = true;
}

void KafkaMirror::OnDelivery(uint64_t token, const Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    auto out = out_.find(token);
    if (out == out_.end()) return;  // from before a Reset: that batch is produced again anyway
    OutRecord record = std::move(out->second);
    out_.erase(out);
    // A batch is produced again only once all its reports are in, so a report always belongs
    // to the batch's latest production.
    auto it = std::lower_bound(pending_.begin(), pending_.end(), record.seq,
                               [](const PendingBatch& b, int64_t s) { return b.seq < s; });
    if (it == pending_.end() || it->seq != record.seq) return;
    --it->remaining;
    if (!status.ok() && status.code() == StatusCode::kInvalidArgument) {
      // Refused for good (too large, invalid): retrying cannot help, and must not hold back
      // the records after it. Dead-lettered with the batch's acknowledgement.
      DeadLetter dl;
      dl.sink = name();
      dl.kind = DeadLetterKind::kRejected;
      dl.reason = status.message();
      dl.topic = std::move(record.mqtt_topic);
      dl.payload = std::move(record.line);
      dl.created_ns = clock_->WallNowNs();
      it->dead_letters.push_back(std::move(dl));
      --it->sent;
    } else if (!status.ok()) {
      it->failed = true;
      if (!failed_) {
        failed_ = true;
        failure_ = status;
      }
    }
  }
  WakeNow();
}

Status KafkaMirror::ProduceBatch(const Batch& batch, bool again) {
  struct Record {
    const std::string* topic;
    RecordContent content;
    size_t line;
    std::string id;  // kRecordIdHeader's value
  };
  PendingBatch pending;
  pending.seq = batch.seq;
  auto dead_letter = [&](size_t line, std::string_view mqtt_topic, std::string reason) {
    DeadLetter dl;
    dl.sink = name();
    dl.kind = DeadLetterKind::kRejected;
    dl.reason = std::move(reason);
    dl.topic = std::string(mqtt_topic);
    dl.payload = batch.lines[line];
    dl.created_ns = clock_->WallNowNs();
    return dl;
  };

  std::vector<Record> records;
  records.reserve(batch.lines.size());
  std::vector<std::string_view> line_topics(batch.lines.size());  // MQTT topic of each line
  size_t run = 0;
  int64_t used = 0;
  size_t routed_run = SIZE_MAX;
  const std::string* topic = nullptr;
  for (size_t i = 0; i < batch.lines.size(); ++i) {
    while (run < batch.sources.size() && used >= batch.sources[run].lines) {
      ++run;
      used = 0;
    }
    ++used;
    // Lines past the runs (or a batch without sources) have an unknown topic: "".
    const std::string_view mqtt_topic = run < batch.sources.size() ? std::string_view(batch.sources[run].topic) : "";
    line_topics[i] = mqtt_topic;
    if (routed_run != run) {
      topic = router_.Route(mqtt_topic);
      routed_run = run;
    }
    if (topic == nullptr) {
      ++pending.skipped;
      continue;
    }
    Result<RecordContent> content = FormatRecord(batch.lines[i], options_.format);
    if (!content.ok()) {
      pending.dead_letters.push_back(dead_letter(i, mqtt_topic, content.status().message()));
      continue;
    }
    records.push_back({topic, std::move(content).value(), i, RecordId(stream(), batch.lines[i])});
  }

  // Counted (and registered) before producing: a report may arrive before Produce returns.
  const auto count = static_cast<int64_t>(records.size());
  std::vector<uint64_t> tokens(records.size());
  auto entry = [&]() -> PendingBatch& {  // REQUIRES: mu_ held
    return *std::lower_bound(pending_.begin(), pending_.end(), batch.seq,
                             [](const PendingBatch& b, int64_t s) { return b.seq < s; });
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending.remaining = count;
    pending.sent = count;
    if (again) {
      entry() = std::move(pending);
    } else {
      pending_.push_back(std::move(pending));
    }
    in_flight_ += count;
    for (size_t r = 0; r < records.size(); ++r) {
      tokens[r] = next_token_++;
      out_[tokens[r]] = {batch.seq, batch.lines[records[r].line], std::string(line_topics[records[r].line])};
    }
  }
  for (size_t r = 0; r < records.size(); ++r) {
    const Record& record = records[r];
    const RecordHeader headers[] = {{kRecordIdHeader, record.id}};
    Status status =
        producer_->Produce(*record.topic, record.content.key, record.content.value, headers, this, tokens[r]);
    if (status.ok()) continue;
    // Not queued, so never reported: uncount it, and the rest too when giving up on the batch
    // (which is then produced again, whole, after the backoff).
    const bool give_up = status.code() != StatusCode::kInvalidArgument;
    const auto uncounted = give_up ? static_cast<int64_t>(records.size() - r) : 1;
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t u = r; u < r + static_cast<size_t>(uncounted); ++u) out_.erase(tokens[u]);
    PendingBatch& b = entry();
    in_flight_ -= uncounted;
    b.remaining -= uncounted;
    b.sent -= uncounted;
    if (give_up) {
      b.failed = true;
      if (!again) produced_seq_ = batch.seq;
      return status;
    }
    // This record can never be sent (e.g. too large): dead-letter it and go on with the rest.
    b.dead_letters.push_back(dead_letter(record.line, line_topics[record.line], status.message()));
  }
  if (!again) produced_seq_ = batch.seq;
  return Status::Ok();
}

int64_t KafkaMirror::Step() {
  if (!started()) {
    Status status = Start();
    if (!status.ok()) {
      ++consecutive_failures_;
      return Fail(SinkState::kQueueError, status.ToString(), backoff_.DelayNs(consecutive_failures_ - 1));
    }
  }

  // 1. Acknowledge the delivered prefix; take a failure.
  int64_t ack_seq = 0;
  SinkAttempt attempt;
  attempt.state = SinkState::kOk;
  std::vector<DeadLetter> dead_letters;
  bool failed = false;
  Status failure;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!pending_.empty() && pending_.front().remaining == 0 && !pending_.front().failed) {
      PendingBatch& done = pending_.front();
      ack_seq = done.seq;
      attempt.sent_points += done.sent;
      attempt.skipped_points += done.skipped;
      for (DeadLetter& dl : done.dead_letters) dead_letters.push_back(std::move(dl));
      pending_.pop_front();
    }
    if (failed_) {
      failed = true;
      failure = failure_;
      failed_ = false;
    }
  }
  const int64_t now = clock_->SteadyNowNs();
  if (ack_seq > 0) {
    if (recovering_) {
      // Delivered before the failure: progress, but the sink is not healthy yet.
      attempt.state = state();
      attempt.last_error = last_error_;
      attempt.consecutive_failures = consecutive_failures_;
      attempt.next_retry_ns = retry_at_ns_ > now ? clock_->WallNowNs() + (retry_at_ns_ - now) : 0;
    }
    Status acked = queue()->Ack(name(), ack_seq, attempt, dead_letters);
    if (!acked.ok()) {
      // Delivered but not acknowledged: they are sent again (Kafka sees duplicates).
      Reset();
      ++consecutive_failures_;
      return Fail(SinkState::kQueueError, acked.ToString(), backoff_.DelayNs(consecutive_failures_ - 1));
    }
    acked_seq_ = ack_seq;
    last_progress_ns_ = now;
    if (!dead_letters.empty()) {
      LOG_WARN(kLog) << "sink " << name() << ": " << dead_letters.size()
                     << " line(s) to the dead-letter queue: " << dead_letters.front().reason;
    }
    if (!failed && !recovering_) {
      consecutive_failures_ = 0;
      SetState(SinkState::kOk, "");
    }
  }

  // 2. A failed delivery: the batches it hit are sent again after a backoff.
  if (failed) {
    recovering_ = true;
    ++consecutive_failures_;
    const int64_t backoff = backoff_.DelayNs(consecutive_failures_ - 1);
    switch (failure.code()) {
      case StatusCode::kPermissionDenied:
        return Fail(SinkState::kAuthFailed, failure.message(), std::max(options_.slow_retry_ns, backoff));
      case StatusCode::kNotFound:
        return Fail(SinkState::kNotFound, failure.message(), std::max(options_.slow_retry_ns, backoff));
      case StatusCode::kFailedPrecondition:  // refused for every record (configuration, clock)
        return Fail(SinkState::kRejecting, failure.message(), std::max(options_.slow_retry_ns, backoff));
      default: return Fail(SinkState::kOffline, failure.message(), backoff);
    }
  }
  if (now < retry_at_ns_) return retry_at_ns_ - now;

  // 3. Produce while under the bound. The Read window starts at the cursor, so it holds the
  // pending batches again; reading only once at most half of it is pending bounds the re-read
  // cost. After a failure, every report must be in first: a batch is never out twice at once.
  int64_t in_flight = 0;
  int64_t pending_points = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight = in_flight_;
    for (const PendingBatch& b : pending_) {
      pending_points += b.sent + b.skipped + static_cast<int64_t>(b.dead_letters.size());
    }
  }
  if ((recovering_ && in_flight > 0) || (!recovering_ && pending_points > options_.max_in_flight / 2)) {
    return WaitForReports(in_flight, now);
  }

  if (release_due_) {
    // A Reset dropped every batch read and not acknowledged, and no record of them is out any
    // more (in_flight is 0 here after a Reset): the queue may merge them now (Release), and the
    // Read below starts at the cursor, so nothing read before it is acknowledged.
    queue()->Release(name());
    release_due_ = false;
  }
  Result<std::vector<Batch>> batches = queue()->Read(name(), options_.max_in_flight);
  if (!batches.ok()) {
    ++consecutive_failures_;
    return Fail(SinkState::kQueueError, batches.status().ToString(), backoff_.DelayNs(consecutive_failures_ - 1));
  }
  {
    // A failed batch the queue no longer has (dropped by its size/age bounds during the outage)
    // can never be re-produced: count it as done, or the cursor would wait for it forever. The
    // Read window starts at the cursor, so a pending seq up to its last batch that it did not
    // return is gone (the queue counts the drop).
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t window_end = batches->empty() ? INT64_MAX : batches->back().seq;
    for (PendingBatch& b : pending_) {
      if (!b.failed || b.remaining > 0 || b.seq > window_end) continue;
      const bool present =
          std::any_of(batches->begin(), batches->end(), [&](const Batch& x) { return x.seq == b.seq; });
      if (present) continue;
      LOG_WARN(kLog) << "sink " << name() << ": batch " << b.seq << " was dropped by the queue's bounds before it "
                     << "reached Kafka";
      b.failed = false;
      b.sent = 0;
      b.skipped = 0;
      b.dead_letters.clear();
    }
  }
  const bool was_recovering = recovering_;
  recovering_ = false;
  bool produced_any = false;
  for (const Batch& batch : *batches) {
    bool again = false;
    if (batch.seq <= produced_seq_) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = std::lower_bound(pending_.begin(), pending_.end(), batch.seq,
                                 [](const PendingBatch& b, int64_t s) { return b.seq < s; });
      // Only once every report of its previous attempt is in: a batch is never out twice.
      again = it != pending_.end() && it->seq == batch.seq && it->failed && it->remaining == 0;
      if (!again) continue;  // out, delivered, or (after a Reset) not ours to judge
    }
    produced_any = true;
    Status produced = ProduceBatch(batch, again);
    if (!produced.ok()) {
      recovering_ = true;
      ++consecutive_failures_;
      const int64_t backoff = backoff_.DelayNs(consecutive_failures_ - 1);
      if (produced.code() == StatusCode::kNotFound) {
        return Fail(SinkState::kNotFound, produced.message(), std::max(options_.slow_retry_ns, backoff));
      }
      return Fail(SinkState::kOffline, produced.message(), backoff);
    }
  }
  if (!produced_any) return WaitForReports(in_flight, now);
  if (in_flight == 0 || was_recovering) last_progress_ns_ = now;  // the stall clock restarts
  // A first batch with nothing to send (all skipped) is acknowledged by the next Step, at once;
  // otherwise the reports wake Run.
  std::lock_guard<std::mutex> lock(mu_);
  return !pending_.empty() && pending_.front().remaining == 0 && !pending_.front().failed ? 0 : options_.idle_ns;
}

int64_t KafkaMirror::WaitForReports(int64_t in_flight, int64_t now) {
  const bool reported = state() == SinkState::kOffline || state() == SinkState::kAuthFailed;
  if (in_flight == 0 || reported || now - last_progress_ns_ < options_.stall_ns) {
    return options_.idle_ns;
  }
  // Records are out but nothing comes back (brokers down, credentials refused): librdkafka
  // keeps retrying until message.timeout.ms, and status should say so meanwhile.
  const Status producer_error = producer_->LastError();
  std::string error = producer_error.message();
  if (producer_error.ok()) {
    error = "no delivery report for " + std::to_string((now - last_progress_ns_) / kNsPerSec) + " s";
  }
  const SinkState state =
      producer_error.code() == StatusCode::kPermissionDenied ? SinkState::kAuthFailed : SinkState::kOffline;
  SetState(state, error);
  SinkAttempt attempt;
  attempt.state = state;
  attempt.last_error = error;
  attempt.consecutive_failures = consecutive_failures_;
  Status recorded = queue()->RecordAttempt(name(), attempt);
  if (!recorded.ok()) {
    LOG_DEBUG(kLog) << "sink " << name() << ": could not record attempt: " << recorded.ToString();
  }
  return options_.idle_ns;
}

}  // namespace edgeline
