#include "agent/group_committer.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"

namespace edgeline {
namespace {
constexpr int64_t kFailureLogEveryNs = 30'000'000'000;
}  // namespace

GroupCommitter::GroupCommitter(Queue* queue, const Mapper* mapper, const Clock* clock,
                               GroupCommitterOptions options)
    : queue_(queue), mapper_(mapper), clock_(clock), options_(options) {}

GroupCommitter::~GroupCommitter() { Stop(); }

Status GroupCommitter::Submit(std::string_view topic, std::string_view payload, int64_t receive_ns) {
  auto item = std::make_shared<Item>();
  item->topic = std::string(topic);
  // Assigned once, so a replay rewrites the same point; a dead letter replayed keeps its own.
  if (receive_ns == 0) receive_ns = clock_->WallNowNs();
  counters_.messages++;
  counters_.last_message_ns = receive_ns;
  if (static_cast<int64_t>(payload.size()) > options_.max_payload_bytes) {
    item->mapped.errors.push_back("payload of " + std::to_string(payload.size()) +
                                  " bytes exceeds EDGELINE_MQTT_MAX_PAYLOAD (" +
                                  std::to_string(options_.max_payload_bytes) + ")");
    // Keep a prefix for diagnosis; the whole thing is what was refused.
    item->payload = std::string(payload.substr(0, 1024));
  } else {
    item->mapped = mapper_->Map(topic, payload, receive_ns);
    if (!item->mapped.errors.empty() || !item->mapped.warnings.empty()) item->payload = std::string(payload);
  }

  std::unique_lock lock(mu_);
  if (stopping_) return Status::Unavailable("ingest is shutting down");
  // LevelDB-style writer queue: the producer at the front is the leader and commits for
  // everyone queued behind it; the others wait until a leader marks them done. A lone
  // producer commits on its own thread, with no handoff.
  writers_.push_back(item.get());
  item->cv.wait(lock, [&] { return item->done || writers_.front() == item.get(); });
  if (item->done) return item->result;

  if (options_.commit_interval_ns > 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(options_.commit_interval_ns);
    while (!stopping_ && static_cast<int>(writers_.size()) < producers_.load() &&
           static_cast<int>(writers_.size()) < options_.commit_max_messages) {
      if (item->cv.wait_until(lock, deadline) == std::cv_status::timeout) break;
    }
  }
  std::vector<Item*> group;
  for (Item* w : writers_) {
    if (static_cast<int>(group.size()) >= options_.commit_max_messages) break;
    group.push_back(w);
  }

  Status st;
  while (true) {
    lock.unlock();
    st = CommitGroup(group);
    lock.lock();
    if (st.ok()) break;
    counters_.commit_failures++;
    counters_.commit_error = static_cast<int>(st.code());
    // Once per failure streak, then every 30 s: this loop runs every retry_delay.
    const int64_t now = clock_->SteadyNowNs();
    if (!counters_.commit_failing.exchange(true) || now - last_failure_log_ns_ >= kFailureLogEveryNs) {
      last_failure_log_ns_ = now;
      LOG_WARN("ingest") << "commit failed, holding " << group.size()
                         << " message(s) unacknowledged and retrying: " << st.ToString();
    }
    // Nothing was written. Keep the producers blocked (the broker keeps their messages) and
    // retry, unless we are shutting down: then they are refused, never acknowledged.
    if (stopping_) {
      st = Status::Unavailable("not committed before shutdown: " + st.message());
      break;
    }
    stop_cv_.wait_for(lock, std::chrono::nanoseconds(options_.retry_delay_ns), [&] { return stopping_; });
  }
  if (st.ok() && counters_.commit_failing.exchange(false)) LOG_INFO("ingest") << "commits succeed again";

  for (Item* w : group) {
    writers_.pop_front();
    w->result = st;
    w->done = true;
    if (w != item.get()) w->cv.notify_one();
  }
  if (!writers_.empty()) writers_.front()->cv.notify_one();  // the next leader
  if (writers_.empty()) stop_cv_.notify_all();
  lock.unlock();
  if (st.ok() && on_commit_) on_commit_();
  return st;
}

std::string CommitProblem(const IngestCounters& counters) {
  if (!counters.commit_failing.load()) return "";
  switch (static_cast<StatusCode>(counters.commit_error.load())) {
    case StatusCode::kResourceExhausted:
      return "queue-full";
    case StatusCode::kCorruption:
      return "corrupt";
    default:
      return "disk-error";
  }
}

void GroupCommitter::Stop() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  stop_cv_.notify_all();
  // Producers already queued finish (their leader commits or refuses them); new ones are refused.
  stop_cv_.wait(lock, [&] { return writers_.empty(); });
}

Status GroupCommitter::CommitGroup(const std::vector<Item*>& group) {
  BatchInput batch;
  std::vector<DeadLetter> dead_letters;
  int64_t rejected = 0;
  int64_t partial = 0;
  for (const auto& item : group) {
    const MappedMessage& m = item->mapped;
    for (const auto& line : m.lines) batch.lines.push_back(line);
    if (!m.lines.empty()) {
      // Kept per run of lines so topic-routed sinks (Kafka) know each line's MQTT topic.
      if (!batch.sources.empty() && batch.sources.back().topic == item->topic) {
        batch.sources.back().lines += static_cast<int64_t>(m.lines.size());
      } else {
        batch.sources.push_back({item->topic, static_cast<int64_t>(m.lines.size())});
      }
      batch.min_ts_ns = batch.min_ts_ns == 0 ? m.min_ts_ns : std::min(batch.min_ts_ns, m.min_ts_ns);
      batch.max_ts_ns = std::max(batch.max_ts_ns, m.max_ts_ns);
    }
    // One dead letter per message and kind, its reasons joined: the payload is stored once
    // (a 1 MiB message of bad lines must not become 21 copies) and a replay maps it once.
    auto dead_letter = [&](const std::vector<std::string>& reasons, DeadLetterKind kind) {
      if (reasons.empty()) return int64_t{0};
      DeadLetter d;
      d.sink = "ingest";
      d.kind = kind;
      for (const auto& reason : reasons) d.reason += (d.reason.empty() ? "" : "; ") + reason;
      d.topic = item->topic;
      d.payload = item->payload;
      dead_letters.push_back(std::move(d));
      return int64_t{1};
    };
    rejected += dead_letter(m.errors, DeadLetterKind::kRejected);
    partial += dead_letter(m.warnings, DeadLetterKind::kPartial);
  }
  auto seqs = queue_->Append({batch}, dead_letters);
  if (!seqs.ok()) return seqs.status();
  counters_.commits++;
  counters_.committed_points += static_cast<int64_t>(batch.lines.size());
  counters_.rejected += rejected;
  counters_.partial += partial;
  return Status::Ok();
}

}  // namespace edgeline
