// GroupCommitter: the single writer between ingest and the queue. Producers (MQTT ingest, the
// HTTP write endpoint, ingest dead-letter replay) call Submit() with a message already mapped,
// which blocks until the transaction that contains it is committed: only then may the producer
// acknowledge the message (MQTT PUBACK is sent when the Paho callback returns). Group commit
// as in LevelDB's write path: the first waiting producer is the leader and commits everything
// queued behind it in one transaction, on its own thread (no handoff for a lone producer).
// Thread-safe. No threads of its own; Queue and Clock are borrowed and must outlive it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "ingest/mapping.h"
#include "storage/queue.h"

namespace edgeline {

struct GroupCommitterOptions {
  int64_t commit_interval_ns = 0;  // linger for more messages, unless all producers wait
  int commit_max_messages = 1000;
  int64_t retry_delay_ns = 200'000'000;  // after a failed commit (disk error, backpressure)
};

struct IngestCounters {
  std::atomic<int64_t> messages{0};  // submitted
  std::atomic<int64_t> committed_points{0};
  std::atomic<int64_t> rejected{0};  // dead-lettered whole
  std::atomic<int64_t> partial{0};
  std::atomic<int64_t> refused_fields{0};  // points with fields refused for their type (FieldTypeGuard)
  // Points with a wrong device clock (MappedMessage): stamped with the receive time / dead-lettered.
  std::atomic<int64_t> device_time_adjusted{0};
  std::atomic<int64_t> device_time_rejected{0};
  std::atomic<int64_t> commits{0};  // transactions
  std::atomic<int64_t> commit_failures{0};
  std::atomic<bool> commit_failing{false};  // the latest commit attempt failed
  std::atomic<int> commit_error{0};         // StatusCode of the latest failed attempt
  std::atomic<int64_t> last_message_ns{0};
};

// What a failing commit means for an operator.
enum class CommitProblem {
  kNone,       // commits succeed
  kDiskError,  // I/O error, disk full
  kCorrupt,    // the queue file is damaged: a restart moves it aside
  kQueueFull,  // backpressure at the queue's own bound
};
// "" for kNone, else "disk-error", "corrupt" or "queue-full" (status, /health, agent state).
std::string_view Name(CommitProblem problem);
CommitProblem CommitProblemFromName(std::string_view name);  // kNone when unknown
CommitProblem CurrentCommitProblem(const IngestCounters& counters);

class GroupCommitter {
 public:
  GroupCommitter(Queue* queue, const Clock* clock, GroupCommitterOptions options);
  ~GroupCommitter();  // Stop()

  // Durably stores one mapped message (its points, and its dead letters when part or all of it
  // was refused). Returns OK once committed. Returns Unavailable only if the committer is
  // stopped before the message could be committed: the caller must then NOT acknowledge it.
  Status Submit(IngestMessage message);

  // Submit() for messages that are committed together or not at all, each as its own batch (the
  // chunks of one HTTP write request): one transaction holds all of them, and the result is the
  // same for all. Returns OK once all are committed; Unavailable (nothing committed) as Submit.
  Status SubmitAll(std::vector<IngestMessage> messages);

  // How many producers can be blocked in Submit at most (MQTT connections): when all of them
  // are waiting no further message can arrive, so the writer commits without lingering.
  void SetProducerCount(int n) { producers_ = n; }

  // Refuses new Submits (Unavailable) and waits until the producers already queued are done:
  // committed, or refused if the queue keeps failing.
  void Stop();

  const IngestCounters& counters() const { return counters_; }

 private:
  struct Item {
    IngestMessage message;
    bool new_batch = false;  // starts a batch of its own (SubmitAll)
    int run_left = 0;        // items after this one that must be in the same group (SubmitAll)
    bool done = false;
    Status result;
    std::condition_variable cv;  // signalled when done or when this item becomes the leader
  };

  Status CommitGroup(const std::vector<Item*>& group);

  Queue* queue_;
  const Clock* clock_;
  GroupCommitterOptions options_;
  std::atomic<int> producers_{1};
  IngestCounters counters_;

  std::mutex mu_;
  std::deque<Item*> writers_;        // waiting producers; the front one is the leader
  std::condition_variable stop_cv_;  // retry pauses; Stop() waiting for the queue to drain
  bool stopping_ = false;
  int64_t last_failure_log_ns_ = 0;  // guarded by mu_
};

}  // namespace edgeline
