// Housekeeping: the agent's once-a-second duties, on a thread of its own. It records the agent
// state in the queue (what `edgeline status` reads; the write is also the systemd watchdog's
// liveness signal), ends the process when the queue file is found corrupt (the restart moves it
// aside), replays ingest dead letters that `edgeline dlq replay` marked, and applies the queue's
// size/age bounds every 10 s. Borrows everything in Parts, which must outlive it.
// Threads: Start/Stop from the owner's thread; state_write_failing() from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

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

class Housekeeping {
 public:
  struct Parts {
    Queue* queue = nullptr;
    const Clock* clock = nullptr;
    const Mapper* mapper = nullptr;  // ingest dead letters are mapped again on replay (declared types only)
    GroupCommitter* committer = nullptr;
    const MqttIngest* mqtt = nullptr;
    std::string queue_path;
    int64_t started_ns = 0;  // wall time this agent started
  };

  explicit Housekeeping(Parts parts) : parts_(std::move(parts)) {}
  ~Housekeeping() { Stop(); }

  void Start();
  void Stop();

  // Records the agent state (running or stopped) now.
  Status WriteState(bool running);

  // True while the latest state write failed (a disk that fails even when no message arrives).
  bool state_write_failing() const { return state_write_failing_.load(); }

 private:
  void Loop(std::stop_token stop);
  void ReplayIngestDeadLetters();

  Parts parts_;
  std::atomic<bool> state_write_failing_{false};
  std::jthread thread_;
};

}  // namespace edgeline
