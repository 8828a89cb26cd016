// Housekeeping: the agent's once-a-second duties, on a thread of its own. It records the agent
// state in the queue (what `edgeline status` reads, including the ingest rate and the queue's
// bound for its outage capacity; the write is also the systemd watchdog's liveness signal), ends the process when the
// queue file is found corrupt (the restart moves it aside), replays ingest dead letters that `edgeline dlq replay`
// marked, and applies the queue's size/age bounds every 10 s. Borrows everything in Parts, which must outlive it.
// Threads: Start/Stop from the owner's thread; state_write_failing() from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "common/clock.h"
#include "common/status.h"
#include "ingest/group_committer.h"
#include "ingest/mapping.h"
#include "ingest/mqtt_ingest.h"
#include "storage/queue.h"

namespace edgeline {

// EX_TEMPFAIL: the exit code when the queue file is corrupt; the systemd unit restarts the agent
// (Restart=always) and the start-up check moves the file aside.
inline constexpr int kExitQueueCorrupt = 75;

// Points committed per second over a recent window, from samples of a monotonic counter (the
// committer's committed_points) at steady times. The rate is measured between the oldest sample
// still in the window and the newest; none until two samples are at least 1 s apart.
// Not thread-safe (Housekeeping serializes its use).
class IngestRateMeter {
 public:
  explicit IngestRateMeter(int64_t window_ns = 60 * kNsPerSec) : window_ns_(window_ns) {}

  void Sample(int64_t steady_ns, int64_t committed_points);

  struct Rate {
    double points_per_s = 0;
    double window_s = 0;  // the span it was measured over (up to the window)
  };
  std::optional<Rate> Current() const;

 private:
  int64_t window_ns_;
  std::deque<std::pair<int64_t, int64_t>> samples_;  // (steady ns, committed points), oldest first
};

class Housekeeping {
 public:
  struct Parts {
    Queue* queue = nullptr;
    const Clock* clock = nullptr;
    // Maps an ingest dead letter again on replay (topic, payload, its receive time): the JSON
    // mapper with declared types only, or the device status mapper for its topics.
    std::function<IngestMessage(std::string_view, std::string_view, int64_t)> remap;
    GroupCommitter* committer = nullptr;
    const MqttIngest* mqtt = nullptr;
    std::string queue_path;
    int64_t started_ns = 0;  // wall time this agent started
    // The queue's size bound and policy, recorded for `edgeline status` (its outage capacity);
    // 0 = not recorded.
    int64_t queue_max_bytes = 0;
    QueueFullPolicy queue_full_policy = QueueFullPolicy::kDropOldest;
    int64_t ingest_rate_window_ns = 60 * kNsPerSec;  // the recorded ingest_rate's window
  };

  explicit Housekeeping(Parts parts) : parts_(std::move(parts)), rate_(parts_.ingest_rate_window_ns) {}
  ~Housekeeping() { Stop(); }

  void Start();
  void Stop();

  // Records the agent state (running or stopped) now, with the ingest rate measured over the
  // recent WriteState calls (once a second while running).
  Status WriteState(bool running);

  // True while the latest state write failed (a disk that fails even when no message arrives).
  bool state_write_failing() const { return state_write_failing_.load(); }

 private:
  void Loop(std::stop_token stop);
  void ReplayIngestDeadLetters();

  Parts parts_;
  std::mutex rate_mu_;  // the loop and the final WriteState(false) of Stop
  IngestRateMeter rate_;
  std::atomic<bool> state_write_failing_{false};
  std::jthread thread_;
};

}  // namespace edgeline
