// DeadLetterStore: payloads and lines that ingest or a sink rejected, kept in the queue file for
// `edgeline dlq list|replay|purge` and for replay by their owner. The store bounds itself (the
// SQLite queue keeps the newest 10,000, payloads truncated to 64 KiB; docs/QUEUE_FORMAT.md).
// Thread-safe: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace edgeline {

enum class DeadLetterKind {
  kRejected,  // the whole payload/line was not accepted (ingest) or refused by a sink
  kPartial,   // informational: part of an accepted payload was dropped (e.g. NaN field)
};

struct DeadLetter {
  int64_t id = 0;    // assigned by the store
  std::string sink;  // "ingest" or the sink name
  DeadLetterKind kind = DeadLetterKind::kRejected;
  std::string reason;
  std::string topic;    // MQTT topic, when known
  std::string payload;  // the rejected payload or line
  int64_t created_ns = 0;
};

class DeadLetterStore {
 public:
  virtual ~DeadLetterStore() = default;

  // The newest `limit` dead letters of `sink` ("" = every sink), newest first.
  virtual Result<std::vector<DeadLetter>> DeadLetters(const std::string& sink, int64_t limit) = 0;

  // Dead-letter tools (`edgeline dlq replay|purge`). RequestReplay marks the rejected dead
  // letters of `sink` ("" = every sink) for another try, except those that cannot be replayed
  // faithfully: payloads stored truncated, and sinks that do not replay (only "ingest" and the
  // InfluxDB sinks do); `unreplayable` counts those left alone. The owner of each sink picks
  // them up with ReplayRequested and settles them with FinishReplay: the given ids are deleted
  // and `rejected_again` inserted, in one transaction. Purge deletes dead letters for good.
  // Each returns the number of entries affected.
  struct ReplayMarks {
    int64_t marked = 0;
    int64_t unreplayable = 0;
  };
  virtual Result<ReplayMarks> RequestReplay(const std::string& sink) = 0;
  virtual Result<int64_t> PurgeDeadLetters(const std::string& sink) = 0;
  // The oldest `limit` dead letters of `sink` marked for replay, oldest first.
  virtual Result<std::vector<DeadLetter>> ReplayRequested(const std::string& sink, int64_t limit) = 0;
  virtual Status FinishReplay(const std::vector<int64_t>& ids, const std::vector<DeadLetter>& rejected_again) = 0;
};

}  // namespace edgeline
