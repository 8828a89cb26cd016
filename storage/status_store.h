// StatusStore: what `edgeline status` reads from the queue file — each sink's cursor, last
// attempt and counters, the queue's totals, and the agent's key/value state (heartbeat, MQTT
// sessions, ...). Sinks write their attempts; a successful one is written by Queue::Ack* in the
// same transaction as the cursor. Thread-safe: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/sink_state.h"
#include "common/status.h"

namespace edgeline {

// What a sink reports after each attempt; stored in sink_status for `edgeline status`.
struct SinkAttempt {
  SinkState state = SinkState::kOk;
  int last_code = 0;           // HTTP status (0 = no response)
  std::string last_error;      // empty on success; never contains secrets
  int64_t sent_points = 0;     // points delivered by this attempt (added to the total)
  int64_t skipped_points = 0;  // points this sink deliberately does not send (added)
  int consecutive_failures = 0;
  int64_t next_retry_ns = 0;   // wall time of the next try, 0 when not waiting
  int64_t retry_after_ns = 0;  // the server's Retry-After honoured by this wait (0 = none)
  int64_t batch_points = 0;    // points per request now (smaller after a 413); 0 = n/a
  double drain_rate = -1;      // points/s recently delivered; < 0 = unchanged
};

struct SinkStatus {
  std::string sink;
  std::string stream;
  int64_t cursor_seq = 0;
  std::string state;  // Name(SinkState) of the latest attempt; "" before the first
  int last_code = 0;
  std::string last_error;
  int64_t last_attempt_ns = 0;
  int64_t last_success_ns = 0;
  int64_t sent_points = 0;
  int64_t dropped_points = 0;  // removed by size/age policy before this sink had them
  int64_t dead_lettered = 0;
  int64_t skipped_points = 0;  // deliberately not sent (e.g. no Kafka topic matches)
  int consecutive_failures = 0;
  int64_t next_retry_ns = 0;
  int64_t retry_after_ns = 0;
  int64_t batch_points = 0;
  double drain_rate = 0;      // points/s recently delivered
  bool registered = false;    // a consumer in this process's run (false read-only / for
                              // sinks of an earlier configuration)
  int64_t registered_ns = 0;  // wall time of its latest RegisterConsumer (any process)
  int64_t pending_points = 0;
  int64_t pending_bytes = 0;      // compressed bytes on disk
  int64_t oldest_pending_ns = 0;  // created_ns of the oldest pending batch, 0 when none
};

struct QueueStats {
  int64_t batches = 0;
  int64_t points = 0;
  int64_t bytes = 0;  // compressed body bytes held
  // What EDGELINE_QUEUE_MAX_BYTES counts: the rows' stored bytes plus a fixed per-row cost
  // (header, index entry), close to the file's used pages.
  int64_t counted_bytes = 0;
  int64_t file_bytes = 0;  // the queue file plus its WAL, as on disk
  int64_t raw_bytes = 0;
  int64_t dead_letters = 0;
  int64_t ingest_rejected = 0;       // dead letters from ingest
  int64_t dropped_points_total = 0;  // points removed by size/age policy (any stream)
  int64_t max_seq = 0;
  std::string recovered_from;  // path of a corrupt file moved aside at open, if any
};

class StatusStore {
 public:
  virtual ~StatusStore() = default;

  // Records a failed attempt (cursor unchanged).
  virtual Status RecordAttempt(const std::string& sink, const SinkAttempt& attempt) = 0;

  // SinkStatuses and Stats count pending points and bytes: they read the whole file.
  virtual Result<std::vector<SinkStatus>> SinkStatuses() = 0;
  virtual Result<QueueStats> Stats() = 0;
  // One sink's cursor (0 when it has none yet), without counting anything.
  virtual Result<int64_t> CursorOf(const std::string& sink) {
    ASSIGN_OR_RETURN(std::vector<SinkStatus> sinks, SinkStatuses());
    for (const SinkStatus& s : sinks) {
      if (s.sink == sink) return s.cursor_seq;
    }
    return int64_t{0};
  }

  // Small key/value agent state (mqtt_connected, last_message_ns, heartbeat_ns, pid, ...).
  virtual Status SetAgentState(const std::vector<std::pair<std::string, std::string>>& kv) = 0;
  virtual Result<std::vector<std::pair<std::string, std::string>>> AgentState() = 0;
};

}  // namespace edgeline
