// Queue: the durable write-ahead queue between ingest and the sinks. Batches of line protocol
// (zstd-compressed on disk from 256 bytes on) in named streams ("raw", "downsampled", "alarms");
// each consumer (sink) owns a cursor = the last batch sequence it has acknowledged. A batch is
// deleted once every registered consumer of its stream has passed it, or when the size/age
// bound drops it (counted per consumer that had not yet passed it). The same object is the
// file's DeadLetterStore, StatusStore, FieldTypeStore and MqttSessionStore, so `edgeline status`
// reads everything from the file.
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
#include "storage/dead_letter_store.h"
#include "storage/field_type_store.h"
#include "storage/mqtt_session_store.h"
#include "storage/status_store.h"

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

// Something that reads a stream and wants to know when it grew (a sink's thread).
class StreamWatcher {
 public:
  virtual ~StreamWatcher() = default;
  // Called on the committing thread right after a transaction that appended batches to a
  // watched stream committed. Must be quick and must not call back into the queue.
  virtual void OnAppended(std::string_view stream) = 0;
};

// What compaction merges: runs of consecutive batches of one stream, each with fewer than
// `target_points` lines, into batches of up to `target_points` lines or `target_raw_bytes` of
// line protocol. A run is merged only when it reaches a target or is older than
// `settle_ns` (so the newest data is not rewritten over and over).
struct CompactOptions {
  int64_t target_points = 1000;
  int64_t target_raw_bytes = 256 << 10;
  int64_t settle_ns = 10 * kNsPerSec;
  int64_t max_batches_per_step = 5000;  // bounds one step's transaction
  // Merged batches are compressed once, in the background and outside the queue's lock, so
  // harder than a commit's (EDGELINE_QUEUE_ZSTD_LEVEL): seed-like line protocol in 1000-line
  // batches is 0.13 of its size at level 3, 0.10 at level 9 and 0.085 at level 15 (about 25 ms
  // per batch on the bench machine).
  int zstd_level = 15;
};

class Queue : public DeadLetterStore, public StatusStore, public FieldTypeStore, public MqttSessionStore {
 public:
  ~Queue() override = default;

  // Appends one batch per non-empty input plus dead letters, in ONE transaction (the group
  // commit). Returns the assigned sequence numbers (0 for empty inputs). When the queue is full:
  // drop-oldest deletes the oldest batches first (counted), backpressure returns
  // ResourceExhausted and writes nothing.
  virtual Result<std::vector<int64_t>> Append(const std::vector<BatchInput>& batches,
                                              const std::vector<DeadLetter>& dead_letters) = 0;

  // Append, plus the MQTT receipts of the messages the batches hold, settled in the same
  // transaction (MqttSessionStore). The default refuses receipts: a queue without an MQTT
  // session store cannot settle them.
  virtual Result<std::vector<int64_t>> AppendReceived(const std::vector<BatchInput>& batches,
                                                      const std::vector<DeadLetter>& dead_letters,
                                                      const std::vector<MqttReceipt>& receipts) {
    if (!receipts.empty()) return Status::FailedPrecondition("this queue cannot settle MQTT receipts");
    return Append(batches, dead_letters);
  }

  // Declares a consumer of `stream`; its cursor starts at 0 (everything pending) unless it
  // exists already. Only registered consumers hold batches back from GC.
  virtual Status RegisterConsumer(const std::string& sink, const std::string& stream) = 0;

  // Batches after the consumer's cursor, oldest first, stopping before the total point count
  // would exceed max_points (but always at least one batch if any is pending).
  virtual Result<std::vector<Batch>> Read(const std::string& sink, int64_t max_points) = 0;

  // Like Read, but only batches after `after_seq` (a seq this sink read and has not yet
  // acknowledged): a sink that pipelines reads the next request while the previous one is in
  // flight. Read(sink, n) is ReadAfter(sink, 0, n).
  virtual Result<std::vector<Batch>> ReadAfter(const std::string& sink, int64_t after_seq, int64_t max_points) {
    (void)after_seq;
    return Read(sink, max_points);
  }

  // The sink no longer holds any batch it read and has not acknowledged (it failed and dropped
  // them; its next read starts at its cursor). Until then compaction leaves every batch between
  // the sink's cursor and the newest batch it read as it is.
  virtual void Release(const std::string& sink) { (void)sink; }

  // One bounded compaction step: merges one run of consecutive small batches of one stream into
  // one batch (see CompactOptions). Returns how many batches were merged away (0: nothing to do).
  virtual Result<int64_t> CompactStep(const CompactOptions& options) {
    (void)options;
    return int64_t{0};
  }

  // Returns freed pages to the file system and truncates the WAL (when no reader holds it).
  virtual Status ShrinkFile() { return Status::Ok(); }

  // The newest pending batches first (for EDGELINE_REPLAY_ORDER=newest-first: after an outage
  // the dashboard is current at once while the backlog fills in behind). Same limits as Read.
  virtual Result<std::vector<Batch>> ReadNewest(const std::string& sink, int64_t max_points) = 0;

  // Acknowledges batches out of order (those ReadNewest returned), with the attempt and dead
  // letters, in one transaction. The cursor moves to the end of the contiguous acknowledged
  // prefix, so GC and other sinks see the same rules as with Ack; until then the batches are
  // remembered as done for this sink (Read and ReadNewest skip them, status does not count them).
  virtual Status AckBatches(const std::string& sink, const std::vector<int64_t>& seqs, const SinkAttempt& attempt,
                            const std::vector<DeadLetter>& dead_letters) = 0;

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

  // Applies the age bound and, under drop-oldest, the size bound now (Append applies only the
  // size bound, to what it adds). Returns the points dropped.
  virtual Result<int64_t> EnforceLimits() = 0;

  // Registers `watcher` for appends to `stream` (by Append or by AckWithOutput's outputs):
  // OnAppended(stream) once per committed transaction that appended at least one batch to it,
  // never for a transaction that failed or rolled back. A watcher registered twice for one
  // stream is called once. Unwatch removes it from every stream and returns after any call to
  // it in progress has returned.
  // REQUIRES: called before other threads use the queue; `watcher` outlives the queue or is
  // removed with Unwatch before it is destroyed.
  // The defaults do nothing: a Queue that does not override them never calls its watchers.
  virtual void Watch(std::string_view stream, StreamWatcher* watcher) {
    (void)stream;
    (void)watcher;
  }
  virtual void Unwatch(StreamWatcher* watcher) { (void)watcher; }

  // PRAGMA integrity_check; "ok" when healthy.
  virtual Result<std::string> IntegrityCheck() = 0;

  // The start-up check of a large file runs in the background (see QueueOpenOptions). Returns
  // Corruption once it has failed (the owner should then end the process: the next open moves
  // the file aside), OK when it passed, could not finish, or is still running. `wait` blocks
  // until it is done.
  virtual Status StartupCheck(bool wait) {
    (void)wait;
    return Status::Ok();
  }
};

struct QueueOpenOptions {
  QueueConfig config;
  bool read_only = false;        // for `edgeline status`: never creates, never writes
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
