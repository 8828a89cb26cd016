// KafkaMirror: one sink (a QueueConsumer) that mirrors one queue stream into Kafka. It owns its cursor in the queue
// (consumer `name`: the daemon uses "kafka-raw" and "kafka-downsampled"), its router and its
// in-flight table; it borrows the queue, producer and clock (they must outlive it). The cursor
// moves only from delivery reports, in order: to batch S once every record of every batch <= S
// is delivered. A batch with a failed record is sent again, whole, once every record out has
// been reported and the backoff has passed (at-least-once: Kafka may see duplicates, and so after
// a crash: everything after the cursor is sent again). Every record carries the header
// `edgeline-id` (kRecordIdHeader) = "<stream>/<line timestamp>/<hash of the line>"
// (RecordId): the same for every send of one queued line (compaction included), distinct for
// distinct points, so a consumer that keeps the first record of each id sees every queued point
// exactly once. A record
// the broker refuses for good (a report with kInvalidArgument: producer.h lists the Kafka errors)
// is not retried: it goes to the dead-letter queue (sink = this mirror's name, kRejected, the
// reason starting with the Kafka error name) and the batch is acknowledged without it.
// Threads: Start/Step/Run belong to one thread; Notify and OnDelivery may be called from any.
// Lifetime: records in flight report to the mirror, so destroy the producer first.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "kafka/producer.h"
#include "kafka/record_format.h"
#include "storage/queue.h"
#include "storage/queue_consumer.h"

namespace edgeline {

struct KafkaMirrorOptions {
  KafkaFormat format = KafkaFormat::kJson;
  // Most records produced and not yet reported (also the points per queue Read). A batch larger
  // than this is still sent whole.
  int64_t max_in_flight = 5000;
  int64_t retry_min_ns = 1'000'000'000;    // backoff base after a failed delivery
  int64_t retry_max_ns = 60'000'000'000;   // backoff cap
  int64_t idle_ns = 1'000'000'000;         // wait when nothing is to do (Notify/reports wake earlier)
  int64_t slow_retry_ns = 60'000'000'000;  // minimum wait after auth or unknown-topic failures
  // Records out and no report for this long: status says "offline" (or "auth-failed"), with the
  // producer's last error, while librdkafka keeps retrying them until message.timeout.ms.
  int64_t stall_ns = 10'000'000'000;
  std::function<double()> random;  // backoff jitter in [0, 1); empty = random_device seed
};

// format, max_in_flight (batch_points) and retry bounds from the config.
KafkaMirrorOptions KafkaMirrorOptionsFromConfig(const KafkaConfig& config);

class KafkaMirror final : public QueueConsumer, public DeliveryListener {
 public:
  // `router` picks each point's topic (TopicRouterForStream). Several mirrors may share one
  // producer: each record's report comes back to the mirror that produced it.
  KafkaMirror(std::string name, std::string stream, Queue* queue, Producer* producer, const Clock* clock,
              TopicRouter router, KafkaMirrorOptions options = {});

  // One unit of work: acknowledge the delivered prefix, handle a failed delivery (state,
  // backoff), produce more records while under the in-flight bound. Returns the ns to wait
  // before the next Step (0 = run again now). Never sleeps, never blocks on Kafka.
  // A delivery report ends any wait of Run; new data in the stream ends an idle wait only.
  int64_t Step() override;

  // DeliveryListener: called by the producer's report thread.
  void OnDelivery(uint64_t token, const Status& status) override;

  // For tests and logs. REQUIRES: called from the Step thread.
  int consecutive_failures() const { return consecutive_failures_; }
  // Records produced and not yet reported. Any thread.
  int64_t in_flight() const;

 private:
  // A record produced and not yet reported: what its dead letter needs if it is refused for good.
  struct OutRecord {
    int64_t seq = 0;
    std::string line;
    std::string mqtt_topic;
  };
  // A produced batch not yet acknowledged in the queue.
  struct PendingBatch {
    int64_t seq = 0;
    int64_t remaining = 0;                 // records not yet reported
    bool failed = false;                   // a record's report was a failure: produce the batch again
    int64_t sent = 0;                      // records produced
    int64_t skipped = 0;                   // points no route matches
    std::vector<DeadLetter> dead_letters;  // lines that can never be sent
  };

  // Produces the batch's records; `again` = a failed batch already in pending_.
  Status ProduceBatch(const Batch& batch, bool again);
  int64_t WaitForReports(int64_t in_flight, int64_t now_ns);
  // Forgets every pending batch (reports still out are ignored) so that, once they are all in,
  // everything after the cursor is produced again. For when the queue refused an Ack. The
  // queue is told (Queue::Release) once those reports are in, before the next Read: a failed
  // delivery keeps its batches pending and is never released, since they are acknowledged later.
  void Reset();
  int64_t Fail(SinkState state, const std::string& error, int64_t delay_ns);
  bool WakeOnAppend() const override { return consecutive_failures_ == 0; }
  std::string Description() const override { return producer_->Description(); }

  Producer* const producer_;
  const Clock* const clock_;
  TopicRouter router_;
  const KafkaMirrorOptions options_;
  Backoff backoff_;

  // Step thread only.
  std::string last_error_;  // of the latest failure
  int consecutive_failures_ = 0;
  int64_t acked_seq_ = 0;         // our last acknowledged batch (0 = not known yet)
  int64_t produced_seq_ = 0;      // last batch produced (later ones are new)
  bool recovering_ = false;       // after a failure: produce only once every report is in
  bool release_due_ = false;      // after a Reset: Queue::Release before the next Read
  int64_t retry_at_ns_ = 0;       // steady time before which nothing is produced
  int64_t last_progress_ns_ = 0;  // steady time of the last ack (or first record out)

  mutable std::mutex mu_;
  // Guarded by mu_.
  std::deque<PendingBatch> pending_;  // ascending seq
  // Each record's delivery token (unique per mirror) -> its batch and line; entries of a Reset
  // are dropped, and their late reports only count down in_flight_.
  std::unordered_map<uint64_t, OutRecord> out_;
  uint64_t next_token_ = 1;
  int64_t in_flight_ = 0;             // records produced and not reported
  bool failed_ = false;               // a record failed since Step last looked
  Status failure_;                    // the first such failure
};

}  // namespace edgeline
