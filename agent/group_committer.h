// GroupCommitter: the single writer between ingest and the queue. Producers (one per MQTT
// connection, later the HTTP write endpoint) call Submit(), which maps the message on the
// caller's thread and then blocks until the transaction that contains it is committed: only
// then may the producer acknowledge the message (MQTT PUBACK is sent when the Paho callback
// returns). One writer thread batches everything pending into one transaction (group commit).
// It commits at once when every producer is waiting, otherwise after at most commit_interval.
// Thread-safe. Owns its writer thread; Queue and Mapper are borrowed and must outlive it.
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
#include <thread>

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
  std::atomic<int64_t> last_message_ns{0};
};

class GroupCommitter {
 public:
  GroupCommitter(Queue* queue, const Mapper* mapper, const Clock* clock, GroupCommitterOptions options);
  ~GroupCommitter();  // stops the writer; REQUIRES: no producer is inside Submit()

  // Maps and durably stores one message (its points, or its dead letter when rejected).
  // Returns OK once committed. Returns Unavailable only if the committer is stopped before the
  // message could be committed: the caller must then NOT acknowledge it.
  Status Submit(std::string_view topic, std::string_view payload);

  // How many producers can be blocked in Submit at most (MQTT connections): when all of them
  // are waiting no further message can arrive, so the writer commits without lingering.
  void SetProducerCount(int n) { producers_ = n; }

  // Called on the writer thread after each successful commit (wakes the sinks).
  void SetOnCommit(std::function<void()> on_commit) { on_commit_ = std::move(on_commit); }

  // Commits what is pending, then stops the writer. Later Submits return Unavailable.
  void Stop();

  const IngestCounters& counters() const { return counters_; }

 private:
  struct Item {
    std::string topic;
    MappedMessage mapped;
    std::string payload;  // kept only for dead letters
    bool done = false;
    Status result;
  };

  void WriterLoop();
  Status CommitGroup(std::deque<std::shared_ptr<Item>>& group);

  Queue* queue_;
  const Mapper* mapper_;
  const Clock* clock_;
  GroupCommitterOptions options_;
  std::function<void()> on_commit_;
  std::atomic<int> producers_{1};
  int64_t last_failure_log_ns_ = 0;  // writer thread only
  IngestCounters counters_;

  std::mutex mu_;
  std::condition_variable work_cv_;  // writer waits for items
  std::condition_variable done_cv_;  // producers wait for their commit
  std::deque<std::shared_ptr<Item>> pending_;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace edgeline
