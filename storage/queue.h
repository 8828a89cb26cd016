// Queue: the durable write-ahead queue between ingest and the sinks. Batches of line protocol
// (zstd-compressed on disk from 256 bytes on) in named streams ("raw", "downsampled", "alarms");
// each consumer (sink) owns a cursor = the last batch sequence it has acknowledged. A batch is
// deleted once every registered consumer of its stream has passed it, or when the size/age
// bound drops it (counted per consumer that had not yet passed it). Also holds the dead-letter
// table, sink status and agent state so `edgeline status` can read everything from the file.
// Thread-safe: all methods may be called from any thread (one SQLite connection, serialized).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "config/config.h"

namespace edgeline {

inline constexpr std::string_view kRawStream = "raw";
inline constexpr std::string_view kDownsampledStream = "downsampled";
inline constexpr std::string_view kAlarmStream = "alarms";

// Consecutive lines of a batch that came from one MQTT topic (sinks that route by topic, like
// the Kafka mirror, need it). Runs cover the batch's lines in order.
struct SourceRun {
  std::string topic;
  int64_t lines = 0;

  friend bool operator==(const SourceRun&, const SourceRun&) = default;
};

struct BatchInput {
  std::string stream{kRawStream};
  std::vector<std::string> lines;  // line protocol, one point each, no newline
  int64_t min_ts_ns = 0;
  int64_t max_ts_ns = 0;
  std::vector<SourceRun> sources;  // optional; when set, the run lengths sum to lines.size()
};

struct Batch {
  int64_t seq = 0;
  std::string stream;
  int64_t created_ns = 0;
  int64_t min_ts_ns = 0;
  int64_t max_ts_ns = 0;
  std::vector<std::string> lines;  // decompressed
  std::vector<SourceRun> sources;  // as appended (empty when unknown)
};

enum class DeadLetterKind {
  kRejected,      // the whole payload/line was not accepted (ingest) or refused by a sink
  kPartial,       // informational: part of an accepted payload was dropped (e.g. NaN field)
};

struct DeadLetter {
  int64_t id = 0;                  // assigned by the queue
  std::string sink;                // "ingest" or the sink name
  DeadLetterKind kind = DeadLetterKind::kRejected;
  std::string reason;
  std::string topic;               // MQTT topic, when known
  std::string payload;             // the rejected payload or line
  int64_t created_ns = 0;
};

// What a sink reports after each attempt; stored in sink_status for `edgeline status`.
struct SinkAttempt {
  std::string state;               // "ok", "offline", "auth-failed", "not-found", "rejecting", ...
  int last_code = 0;               // HTTP status (0 = no response)
  std::string last_error;          // empty on success; never contains secrets
  int64_t sent_points = 0;         // points delivered by this attempt (added to the total)
  int64_t skipped_points = 0;      // points this sink deliberately does not send (added)
  int consecutive_failures = 0;
  int64_t next_retry_ns = 0;       // wall time of the next try, 0 when not waiting
  int64_t retry_after_ns = 0;      // the server's Retry-After honoured by this wait (0 = none)
  int64_t batch_points = 0;        // points per request now (smaller after a 413); 0 = n/a
  double drain_rate = -1;          // points/s recently delivered; < 0 = unchanged
};

struct SinkStatus {
  std::string sink;
  std::string stream;
  int64_t cursor_seq = 0;
  std::string state;
  int last_code = 0;
  std::string last_error;
  int64_t last_attempt_ns = 0;
  int64_t last_success_ns = 0;
  int64_t sent_points = 0;
  int64_t dropped_points = 0;      // removed by size/age policy before this sink had them
  int64_t dead_lettered = 0;
  int64_t skipped_points = 0;      // deliberately not sent (e.g. no Kafka topic matches)
  int consecutive_failures = 0;
  int64_t next_retry_ns = 0;
  int64_t retry_after_ns = 0;
  int64_t batch_points = 0;
  double drain_rate = 0;           // points/s recently delivered
  bool registered = false;         // a consumer in this process's run (false read-only / for
                                   // sinks of an earlier configuration)
  int64_t registered_ns = 0;       // wall time of its latest RegisterConsumer (any process)
  int64_t pending_points = 0;
  int64_t pending_bytes = 0;       // compressed bytes on disk
  int64_t oldest_pending_ns = 0;   // created_ns of the oldest pending batch, 0 when none
};

struct QueueStats {
  int64_t batches = 0;
  int64_t points = 0;
  int64_t bytes = 0;               // compressed body bytes held
  int64_t raw_bytes = 0;
  int64_t dead_letters = 0;
  int64_t ingest_rejected = 0;     // dead letters from ingest
  int64_t dropped_points_total = 0;  // points removed by size/age policy (any stream)
  int64_t max_seq = 0;
  std::string recovered_from;      // path of a corrupt file moved aside at open, if any
};

class Queue {
 public:
  virtual ~Queue() = default;

  // Appends one batch per non-empty input plus dead letters, in ONE transaction (the group
  // commit). Returns the assigned sequence numbers (0 for empty inputs). When the queue is full:
  // drop-oldest deletes the oldest batches first (counted), backpressure returns
  // ResourceExhausted and writes nothing.
  virtual Result<std::vector<int64_t>> Append(const std::vector<BatchInput>& batches,
                                              const std::vector<DeadLetter>& dead_letters) = 0;

  // Declares a consumer of `stream`; its cursor starts at 0 (everything pending) unless it
  // exists already. Only registered consumers hold batches back from GC.
  virtual Status RegisterConsumer(const std::string& sink, const std::string& stream) = 0;

  // Batches after the consumer's cursor, oldest first, stopping before the total point count
  // would exceed max_points (but always at least one batch if any is pending).
  virtual Result<std::vector<Batch>> Read(const std::string& sink, int64_t max_points) = 0;

  // The newest pending batches first (for EDGELINE_REPLAY_ORDER=newest-first: after an outage
  // the dashboard is current at once while the backlog fills in behind). Same limits as Read.
  virtual Result<std::vector<Batch>> ReadNewest(const std::string& sink, int64_t max_points) = 0;

  // Acknowledges batches out of order (those ReadNewest returned), with the attempt and dead
  // letters, in one transaction. The cursor moves to the end of the contiguous acknowledged
  // prefix, so GC and other sinks see the same rules as with Ack; until then the batches are
  // remembered as done for this sink (Read and ReadNewest skip them, status does not count them).
  virtual Status AckBatches(const std::string& sink, const std::vector<int64_t>& seqs,
                            const SinkAttempt& attempt, const std::vector<DeadLetter>& dead_letters) = 0;

  // Advances the cursor to `seq` (must be >= the current one) and records the attempt, in one
  // transaction, together with any dead letters (lines the sink isolated). Then GCs.
  virtual Status Ack(const std::string& sink, int64_t seq, const SinkAttempt& attempt,
                     const std::vector<DeadLetter>& dead_letters) = 0;

  // For consumers that transform a stream into other streams (the downsampler): advances the
  // cursor to `seq` (>= the current one; equal is allowed), appends `outputs` and replaces the
  // consumer's opaque `state`, all in ONE transaction, so a crash neither repeats nor skips
  // output. The size bound applies to `outputs` after the GC this ack allows.
  virtual Status AckWithOutput(const std::string& sink, int64_t seq, const SinkAttempt& attempt,
                               const std::vector<BatchInput>& outputs, std::string_view state) = 0;

  // The state stored by the latest AckWithOutput of `sink` ("" when none). Works read-only.
  virtual Result<std::string> ConsumerState(const std::string& sink) = 0;

  // Records a failed attempt (cursor unchanged).
  virtual Status RecordAttempt(const std::string& sink, const SinkAttempt& attempt) = 0;

  // Applies max-age (and max-bytes) now; Append/Ack call it too. Returns points dropped.
  virtual Result<int64_t> EnforceLimits() = 0;

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
  virtual Result<std::vector<DeadLetter>> DeadLetters(const std::string& sink, int64_t limit) = 0;

  // Dead-letter tools (`edgeline dlq replay|purge`). RequestReplay marks the rejected dead
  // letters of `sink` ("" = every sink) for another try, except those that cannot be replayed
  // faithfully: payloads stored truncated, and sinks that do not replay (only "ingest" and the
  // InfluxDB sinks do); `unreplayable` counts those left alone. the owner of each sink picks them up
  // with ReplayRequested and settles them with FinishReplay: the given ids are deleted and
  // `rejected_again` inserted, in one transaction. Purge deletes dead letters for good.
  // Each returns the number of entries affected.
  struct ReplayMarks {
    int64_t marked = 0;
    int64_t unreplayable = 0;
  };
  virtual Result<ReplayMarks> RequestReplay(const std::string& sink) = 0;
  virtual Result<int64_t> PurgeDeadLetters(const std::string& sink) = 0;
  virtual Result<std::vector<DeadLetter>> ReplayRequested(const std::string& sink, int64_t limit) = 0;
  virtual Status FinishReplay(const std::vector<int64_t>& ids, const std::vector<DeadLetter>& rejected_again) = 0;

  // Small key/value agent state (mqtt_connected, last_message_ns, heartbeat_ns, pid, ...).
  virtual Status SetAgentState(const std::vector<std::pair<std::string, std::string>>& kv) = 0;
  virtual Result<std::vector<std::pair<std::string, std::string>>> AgentState() = 0;

  // PRAGMA integrity_check; "ok" when healthy.
  virtual Result<std::string> IntegrityCheck() = 0;

  // The start-up check of a large file runs in the background (see QueueOpenOptions). Returns
  // Corruption once it has failed (the owner should then end the process: the next open moves
  // the file aside), OK when it passed or is still running. `wait` blocks until it is done.
  virtual Status StartupCheck(bool wait) {
    (void)wait;
    return Status::Ok();
  }
};

struct QueueOpenOptions {
  QueueConfig config;
  bool read_only = false;  // for `edgeline status`: never creates, never writes
  const Clock* clock = nullptr;  // defaults to SystemClock
  // Files up to this size are checked (PRAGMA quick_check) before Open returns. A larger file is
  // checked in the background, together with the byte count the size bound needs, so a restart
  // with a large backlog replicates at once: both scans read the whole file.
  int64_t sync_check_max_bytes = 64 << 20;
};

// Opens (creating if needed, mode 0600) the SQLite queue. On a failed quick_check the file is
// renamed to <path>.corrupt-<unix-time> (kept), a new one is created, and Stats().recovered_from
// says so. A failed background check leaves <path>.check-failed behind, so the next open checks
// before it returns and moves the file aside.
Result<std::unique_ptr<Queue>> OpenSqliteQueue(const QueueOpenOptions& options);

// Leaves the marker that makes the next OpenSqliteQueue check the file before it returns (and
// move it aside if damaged), for an owner that met SQLITE_CORRUPT at run time.
void MarkQueueForCheck(const std::string& queue_path);

}  // namespace edgeline
