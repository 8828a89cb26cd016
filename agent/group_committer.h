// GroupCommitter: the single writer between ingest and the queue. Producers (MQTT, later the
// HTTP write endpoint) call Submit(), which maps the message on the caller's thread and then
// blocks until the transaction that contains it is committed: only then may the producer
// acknowledge the message (MQTT PUBACK is sent when the Paho callback returns). Group commit
// as in LevelDB's write path: the first waiting producer is the leader and commits everything
// queued behind it in one transaction, on its own thread (no handoff for a lone producer).
// Thread-safe. No threads of its own; Queue and Mapper are borrowed and must outlive it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "agent/mapping.h"
#include "common/clock.h"
#include "storage/queue.h"

namespace edgeline {

struct GroupCommitterOptions {
  int64_t commit_interval_ns = 0;  // linger for more messages, unless all producers wait
  int commit_max_messages = 1000;
  int64_t retry_delay_ns = 200'000'000;    // after a failed commit (disk error, backpressure)
  int64_t max_payload_bytes = 1 << 20;
};

struct IngestCounters {
  std::atomic<int64_t> messages{0};        // submitted
  std::atomic<int64_t> committed_points{0};
  std::atomic<int64_t> rejected{0};        // dead-lettered whole
  std::atomic<int64_t> partial{0};
  std::atomic<int64_t> commits{0};         // transactions
  std::atomic<int64_t> commit_failures{0};
  std::atomic<bool> commit_failing{false};  // the latest commit attempt failed
  std::atomic<int> commit_error{0};         // StatusCode of the latest failed attempt
  std::atomic<int64_t> last_message_ns{0};
};

// What a failing commit means for an operator: "disk-error" (I/O error, disk full), "corrupt"
// (the queue file is damaged: a restart moves it aside), "queue-full" (backpressure at the
// queue's own bound), or "" while commits succeed.
std::string CommitProblem(const IngestCounters& counters);

class GroupCommitter {
 public:
  GroupCommitter(Queue* queue, const Mapper* mapper, const Clock* clock, GroupCommitterOptions options);
  ~GroupCommitter();  // Stop()

  // Maps and durably stores one message (its points, or its dead letter when rejected).
  // Returns OK once committed. Returns Unavailable only if the committer is stopped before the
  // message could be committed: the caller must then NOT acknowledge it.
  Status Submit(std::string_view topic, std::string_view payload, int64_t receive_ns = 0);

  // How many producers can be blocked in Submit at most (MQTT connections): when all of them
  // are waiting no further message can arrive, so the writer commits without lingering.
  void SetProducerCount(int n) { producers_ = n; }

  // Called on the leader's thread after each successful commit (wakes the sinks).
  void SetOnCommit(std::function<void()> on_commit) { on_commit_ = std::move(on_commit); }

  // Refuses new Submits (Unavailable) and waits until the producers already queued are done:
  // committed, or refused if the queue keeps failing.
  void Stop();

  const IngestCounters& counters() const { return counters_; }

 private:
  struct Item {
    std::string topic;
    MappedMessage mapped;
    std::string payload;  // kept only for dead letters
    bool done = false;
    Status result;
    std::condition_variable cv;  // signalled when done or when this item becomes the leader
  };

  Status CommitGroup(const std::vector<Item*>& group);

  Queue* queue_;
  const Mapper* mapper_;
  const Clock* clock_;
  GroupCommitterOptions options_;
  std::function<void()> on_commit_;
  std::atomic<int> producers_{1};
  IngestCounters counters_;

  std::mutex mu_;
  std::deque<Item*> writers_;         // waiting producers; the front one is the leader
  std::condition_variable stop_cv_;   // retry pauses; Stop() waiting for the queue to drain
  bool stopping_ = false;
  int64_t last_failure_log_ns_ = 0;   // guarded by mu_
};

}  // namespace edgeline
