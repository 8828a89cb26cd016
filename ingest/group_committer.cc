#include "ingest/group_committer.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"

namespace edgeline {
namespace {
constexpr int64_t kFailureLogEveryNs = 30'000'000'000;
}  // namespace

GroupCommitter::GroupCommitter(Queue* queue, const Clock* clock, GroupCommitterOptions options)
    : queue_(queue), clock_(clock), options_(options) {}

GroupCommitter::~GroupCommitter() { Stop(); }

Status GroupCommitter::Submit(IngestMessage message) {
  std::vector<IngestMessage> one;
  one.push_back(std::move(message));
  return SubmitAll(std::move(one));
}

Status GroupCommitter::SubmitAll(std::vector<IngestMessage> messages) {
  if (messages.empty()) return Status::Ok();
  // The first item waits (and may lead); the others ride with it, always in the same group.
  std::vector<std::unique_ptr<Item>> items;
  for (IngestMessage& message : messages) {
    counters_.messages++;
    counters_.last_message_ns = message.receive_ns;
    items.push_back(std::make_unique<Item>());
    items.back()->message = std::move(message);
    items.back()->new_batch = messages.size() > 1;
    items.back()->run_left = static_cast<int>(messages.size() - items.size());
  }
  Item* const item = items.front().get();

  std::unique_lock lock(mu_);
  if (stopping_) return Status::Unavailable("ingest is shutting down");
  // LevelDB-style writer queue: the producer at the front is the leader and commits for
  // everyone queued behind it; the others wait until a leader marks them done. A lone
  // producer commits on its own thread, with no handoff.
  for (const auto& i : items) writers_.push_back(i.get());
  item->cv.wait(lock, [&] { return item->done || writers_.front() == item; });
  if (item->done) return item->result;

  if (options_.commit_interval_ns > 0) {
    const int64_t deadline_ns = clock_->SteadyNowNs() + options_.commit_interval_ns;
    while (!stopping_ && static_cast<int>(writers_.size()) < producers_.load() &&
           static_cast<int>(writers_.size()) < options_.commit_max_messages) {
      const int64_t left_ns = deadline_ns - clock_->SteadyNowNs();
      if (left_ns <= 0 || item->cv.wait_for(lock, std::chrono::nanoseconds(left_ns)) == std::cv_status::timeout) {
        break;
      }
    }
  }
  std::vector<Item*> group;
  int run_left = 0;  // a SubmitAll's items are never split between groups
  for (Item* w : writers_) {
    if (run_left == 0 && static_cast<int>(group.size()) >= options_.commit_max_messages) break;
    group.push_back(w);
    run_left = run_left > 0 ? run_left - 1 : w->run_left;
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
    if (w != item) w->cv.notify_one();
  }
  if (!writers_.empty()) writers_.front()->cv.notify_one();  // the next leader
  if (writers_.empty()) stop_cv_.notify_all();
  return st;
}

std::string_view Name(CommitProblem problem) {
  switch (problem) {
    case CommitProblem::kNone: return "";
    case CommitProblem::kDiskError: return "disk-error";
    case CommitProblem::kCorrupt: return "corrupt";
    case CommitProblem::kQueueFull: return "queue-full";
  }
  return "";
}

CommitProblem CommitProblemFromName(std::string_view name) {
  for (CommitProblem p : {CommitProblem::kDiskError, CommitProblem::kCorrupt, CommitProblem::kQueueFull}) {
    if (Name(p) == name) return p;
  }
  return CommitProblem::kNone;
}

CommitProblem CurrentCommitProblem(const IngestCounters& counters) {
  if (!counters.commit_failing.load()) return CommitProblem::kNone;
  switch (static_cast<StatusCode>(counters.commit_error.load())) {
    case StatusCode::kResourceExhausted: return CommitProblem::kQueueFull;
    case StatusCode::kCorruption: return CommitProblem::kCorrupt;
    default: return CommitProblem::kDiskError;
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
  std::vector<BatchInput> batches(1);
  std::vector<DeadLetter> dead_letters;
  int64_t rejected = 0;
  int64_t partial = 0;
  int64_t refused_fields = 0;
  int64_t device_time_adjusted = 0;
  int64_t device_time_rejected = 0;
  std::vector<MqttReceipt> receipts;
  for (const auto& item : group) {
    if (item->message.receipt) receipts.push_back(*item->message.receipt);
    if (item->new_batch && !batches.back().lines.empty()) batches.emplace_back();
    BatchInput& batch = batches.back();
    const MappedMessage& m = item->message.mapped;
    const std::string& topic = item->message.topic;
    for (const auto& line : m.lines) batch.lines.push_back(line);
    if (!m.lines.empty()) {
      // Kept per run of lines so topic-routed sinks (Kafka) know each line's MQTT topic.
      if (!batch.sources.empty() && batch.sources.back().topic == topic) {
        batch.sources.back().lines += static_cast<int64_t>(m.lines.size());
      } else {
        batch.sources.push_back({topic, static_cast<int64_t>(m.lines.size())});
      }
      batch.min_ts_ns = batch.min_ts_ns == 0 ? m.min_ts_ns : std::min(batch.min_ts_ns, m.min_ts_ns);
      batch.max_ts_ns = std::max(batch.max_ts_ns, m.max_ts_ns);
    }
    auto add_dead_letter = [&](DeadLetterKind kind, std::string reason, std::string payload) {
      DeadLetter d;
      d.sink = "ingest";
      d.kind = kind;
      d.reason = std::move(reason);
      d.topic = topic;
      d.payload = std::move(payload);
      dead_letters.push_back(std::move(d));
    };
    // One dead letter per message and kind, its reasons joined: the payload is stored once
    // (a 1 MiB message of bad lines must not become 21 copies) and a replay maps it once.
    auto joined = [](const std::vector<std::string>& reasons) {
      std::string out;
      for (const auto& reason : reasons) out += (out.empty() ? "" : "; ") + reason;
      return out;
    };
    if (!m.errors.empty()) {
      add_dead_letter(DeadLetterKind::kRejected, joined(m.errors), item->message.payload);
      ++rejected;
    }
    if (!m.warnings.empty()) {
      add_dead_letter(DeadLetterKind::kPartial, joined(m.warnings), item->message.payload);
      ++partial;
    }
    // Refused fields carry their own line: each is a dead letter that replays alone.
    for (const RefusedFields& r : m.refused_fields) {
      add_dead_letter(DeadLetterKind::kRejected, r.reason, r.line);
      ++refused_fields;
    }
    device_time_adjusted += m.device_time_adjusted;
    device_time_rejected += m.device_time_rejected;
  }
  auto seqs = queue_->AppendReceived(batches, dead_letters, receipts);
  if (!seqs.ok()) return seqs.status();
  counters_.commits++;
  for (const BatchInput& batch : batches) counters_.committed_points += static_cast<int64_t>(batch.lines.size());
  counters_.rejected += rejected;
  counters_.partial += partial;
  counters_.refused_fields += refused_fields;
  counters_.device_time_adjusted += device_time_adjusted;
  counters_.device_time_rejected += device_time_rejected;
  return Status::Ok();
}

}  // namespace edgeline
