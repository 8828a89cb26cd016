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
    : queue_(queue), mapper_(mapper), clock_(clock), options_(options) {
  writer_ = std::thread([this] { WriterLoop(); });
}

GroupCommitter::~GroupCommitter() { Stop(); }

Status GroupCommitter::Submit(std::string_view topic, std::string_view payload) {
  auto item = std::make_shared<Item>();
  item->topic = std::string(topic);
  const int64_t receive_ns = clock_->WallNowNs();  // assigned once: a replay rewrites the same point
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
  pending_.push_back(item);
  work_cv_.notify_one();
  done_cv_.wait(lock, [&] { return item->done; });
  return item->result;
}

void GroupCommitter::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !writer_.joinable()) return;
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void GroupCommitter::WriterLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (pending_.empty()) break;  // stopping and drained

    // Linger briefly for more messages unless every producer is already waiting.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(options_.commit_interval_ns);
    while (!stopping_ && static_cast<int>(pending_.size()) < producers_.load() &&
           static_cast<int>(pending_.size()) < options_.commit_max_messages) {
      if (work_cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
    }

    std::deque<std::shared_ptr<Item>> group;
    const size_t n = std::min<size_t>(pending_.size(), static_cast<size_t>(options_.commit_max_messages));
    for (size_t i = 0; i < n; ++i) {
      group.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }

    lock.unlock();
    Status st = CommitGroup(group);
    lock.lock();
    if (!st.ok()) {
      counters_.commit_failures++;
      // Nothing was written: put the group back in front and retry after a pause. The
      // producers stay blocked, so the broker keeps (and will redeliver) these messages.
      for (auto it = group.rbegin(); it != group.rend(); ++it) pending_.push_front(std::move(*it));
      // Once per failure streak, then every 30 s: the retry loop runs every retry_delay.
      const int64_t now = clock_->SteadyNowNs();
      if (!counters_.commit_failing.exchange(true) || now - last_failure_log_ns_ >= kFailureLogEveryNs) {
        last_failure_log_ns_ = now;
        LOG_WARN("ingest") << "commit failed, holding " << group.size()
                           << " message(s) unacknowledged and retrying: " << st.ToString();
      }
      if (stopping_) {
        // Shutting down with the disk refusing: these messages are NOT acknowledged.
        for (auto& item : pending_) {
          item->done = true;
          item->result = Status::Unavailable("not committed before shutdown: " + st.message());
        }
        pending_.clear();
        done_cv_.notify_all();
        break;
      }
      work_cv_.wait_for(lock, std::chrono::nanoseconds(options_.retry_delay_ns), [&] { return stopping_; });
      continue;
    }
    if (counters_.commit_failing.exchange(false)) LOG_INFO("ingest") << "commits succeed again";
    for (auto& item : group) {
      item->done = true;
      item->result = Status::Ok();
    }
    done_cv_.notify_all();
    if (on_commit_) {
      lock.unlock();
      on_commit_();
      lock.lock();
    }
  }
}

Status GroupCommitter::CommitGroup(std::deque<std::shared_ptr<Item>>& group) {
  BatchInput batch;
  std::vector<DeadLetter> dead_letters;
  int64_t rejected = 0;
  int64_t partial = 0;
  for (const auto& item : group) {
    const MappedMessage& m = item->mapped;
    for (const auto& line : m.lines) batch.lines.push_back(line);
    if (!m.lines.empty()) {
      batch.min_ts_ns = batch.min_ts_ns == 0 ? m.min_ts_ns : std::min(batch.min_ts_ns, m.min_ts_ns);
      batch.max_ts_ns = std::max(batch.max_ts_ns, m.max_ts_ns);
    }
    auto dead_letter_each = [&](const std::vector<std::string>& reasons, DeadLetterKind kind) {
      for (const auto& reason : reasons) {
        DeadLetter d;
        d.sink = "ingest";
        d.kind = kind;
        d.reason = reason;
        d.topic = item->topic;
        d.payload = item->payload;
        dead_letters.push_back(std::move(d));
      }
      return static_cast<int64_t>(reasons.size());
    };
    rejected += dead_letter_each(m.errors, DeadLetterKind::kRejected);
    partial += dead_letter_each(m.warnings, DeadLetterKind::kPartial);
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
