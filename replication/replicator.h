// Replicator: one sink that drains one queue stream into InfluxDB. A QueueConsumer: it owns its
// cursor in the queue (consumer `name`) and its backoff state; it borrows the queue, writer and
// clock (they must outlive it). Field types the server reports in type conflicts are recorded in
// the queue (FieldTypeStore), where ingest's FieldTypeGuard reads them. Step() and Run() belong to
// one thread; Notify() may be called from any thread.
// Pipelining: after a full read (a backlog), a helper thread started by Step reads the next
// points after it (Queue::ReadAfter) and encodes their request bodies, and acknowledges the
// previous request, while the writer sends the current one on Step's thread (one connection).
// At most one read is held ahead; acknowledgements stay in order. Every thread Step starts has
// ended when it returns. Whatever a failure leaves read and unacknowledged is dropped and given
// back to the queue (Queue::Release); the next read starts at the cursor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/wakeup.h"
#include "replication/influx_writer.h"
#include "storage/queue.h"
#include "storage/queue_consumer.h"

namespace edgeline {

struct ReplicatorOptions {
  int64_t batch_points = 5000;             // points per Read (and per first write request)
  int64_t retry_min_ns = 1'000'000'000;    // backoff base
  int64_t retry_max_ns = 300'000'000'000;  // backoff cap; also caps a server's Retry-After
  int64_t idle_ns = 1'000'000'000;         // wait when nothing is pending (Notify wakes earlier)
  int64_t slow_retry_ns = 60'000'000'000;  // minimum wait after 401/403/404 (config problem)
  int64_t max_bytes_per_sec = 0;           // bandwidth cap on request bodies (0 = none)
  bool newest_first = false;               // EDGELINE_REPLAY_ORDER=newest-first
  std::function<double()> random;          // backoff jitter in [0, 1); empty = random_device seed
};

class Replicator final : public QueueConsumer {
 public:
  Replicator(std::string name, std::string stream, Queue* queue, InfluxWriter* writer, const Clock* clock,
             ReplicatorOptions options = {});

  // One unit of work: read pending batches, write them, acknowledge or record the failure.
  // While reads come back full (a backlog), the same Step goes on with the next read, pipelined,
  // up to kMaxRequestsPerStep requests or kStepBudgetNs. Returns the ns to wait before the next
  // Step (0 = run again now). Never sleeps (it waits for its requests, as always); a failure
  // never returns 0.
  int64_t Step() override;

  // For tests and logs. REQUIRES: called from the Step thread.
  int64_t batch_points() const { return batch_points_; }
  int consecutive_failures() const { return consecutive_failures_; }
  // Points read ahead and held for the next Step (0 = none).
  int64_t points_ahead() const;

  // Most requests one Step sends while a backlog drains (each after the previous was acknowledged
  // or is being acknowledged beside it); Step also returns after about kStepBudgetNs.
  static constexpr int kMaxRequestsPerStep = 32;
  static constexpr int64_t kStepBudgetNs = 500'000'000;

 private:
  // Points read from the queue for one write: the batches, their lines (views into them) and,
  // when made ahead, each request's body (EncodeBody of lines cut in `chunk`s).
  struct Unit {
    std::vector<Batch> batches;
    std::vector<std::string_view> lines;
    size_t chunk = 0;
    std::vector<std::string> bodies;  // empty: Write encodes
  };
  // A written unit waiting for its acknowledgement.
  struct Written {
    int64_t seq = 0;
    SinkAttempt attempt;
    std::vector<DeadLetter> dead_letters;
    std::string error;  // the writer's message about rejected lines
  };
  // What the helper thread did beside a request.
  struct Beside {
    Status acked;                     // the acknowledgement of `written`
    std::optional<Written> written;   // the previous request, when it was acknowledged here
    std::unique_ptr<Unit> next;       // the points after the current request (null: none or not read)
    bool read_after_ignored = false;  // the queue answered ReadAfter with already-read batches
  };

  static std::unique_ptr<Unit> MakeUnit(std::vector<Batch> batches);
  // The helper's work: acknowledge `written` (if any), then read and encode the points after
  // seq `after` (if `read_ahead`).
  Beside WorkBeside(std::optional<Written> written, int64_t after, bool read_ahead, size_t chunk) const;
  // Sends `unit` in requests of at most batch_points_ lines. Returns their sum when all were
  // kOk, else the failing request's outcome.
  WriteOutcome WriteUnit(Unit& unit);
  Written Settle(const Unit& unit, WriteOutcome outcome) const;
  // After an acknowledgement: logs dead letters, resets the failure count.
  void Acked(const Written& written);
  // Drops everything read and not acknowledged, and tells the queue (Release).
  void DropRead();
  int64_t StepNewestFirst();

  bool WakeOnAppend() const override { return consecutive_failures_ == 0; }
  std::string Description() const override;
  int64_t Fail(SinkState state, int code, const std::string& error, int64_t delay_ns, int64_t retry_after_ns = 0);
  int64_t FailWrite(const WriteOutcome& outcome);
  int64_t QueueError(const Status& status);
  // Re-sends dead letters that `edgeline dlq replay` marked; returns the Step delay.
  int64_t Replay(std::vector<DeadLetter> dead_letters);
  std::vector<DeadLetter> DeadLettersOf(std::vector<RejectedLine> rejected) const;
  // After a request: learned field types, the bandwidth cap's pacing and the drain rate.
  void Account(const WriteOutcome& outcome);
  // Keeps the field types the server reported in the queue (FieldTypeStore), for ingest.
  void RecordLearnedTypes(const std::vector<LearnedFieldType>& learned_types);

  InfluxWriter* writer_;
  const Clock* clock_;
  ReplicatorOptions options_;
  Backoff backoff_;

  int consecutive_failures_ = 0;
  std::unique_ptr<Unit> ahead_;         // read ahead by the previous Step, not yet sent
  bool read_after_supported_ = true;    // false once the queue ignored ReadAfter's after_seq
  int64_t batch_points_;                // shrinks after a 413 and stays so (the server's limit)
  int64_t send_allowed_steady_ns_ = 0;  // bandwidth cap: no request before this
  int64_t rate_window_start_ns_ = 0;    // drain rate over windows of a few seconds
  int64_t rate_window_points_ = 0;
  double drain_rate_ = -1;  // last measured points/s (-1 = none yet)
  // (measurement, field) -> (type, steady time) last recorded in the queue.
  std::map<std::pair<std::string, std::string>, std::pair<FieldType, int64_t>> recorded_types_;
};

}  // namespace edgeline
