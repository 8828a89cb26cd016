// SqliteQueue's garbage collection and size/age bounds (sqlite_queue.h): batches every
// registered consumer of a stream has passed are deleted; the policy walk drops the oldest
// batches past EDGELINE_QUEUE_MAX_BYTES or EDGELINE_QUEUE_MAX_AGE and counts them per sink that
// had not passed them. total_bytes_ follows every delete. All under mu_, inside the caller's
// transaction except EnforceLimits, which opens its own.
#include <algorithm>
#include <climits>

#include "common/log.h"
#include "storage/sqlite_queue.h"

namespace edgeline {

Result<int64_t> SqliteQueue::EnforceLimits() {
  std::lock_guard lock(mu_);
  dropped_total_in_call_ = 0;
  const int64_t over_bytes = options_.config.full_policy == QueueFullPolicy::kDropOldest && bytes_known_
                                 ? total_bytes_ - options_.config.max_bytes
                                 : 0;
  const int64_t created_before =
      options_.config.max_age_ns > 0 ? clock_->WallNowNs() - options_.config.max_age_ns : INT64_MIN;
  RETURN_IF_ERROR(TransactionLocked([&] { return DropOldestLocked(over_bytes, created_before); }));
  return dropped_total_in_call_;
}

// Applies the size bound for `encoded` about to be inserted.
Status SqliteQueue::MakeRoomLocked(const std::vector<EncodedBatch>& encoded) {
  const int64_t incoming = StoredBytes(encoded);
  // Until the start-up count is done the size bound cannot be applied (the age bound can).
  if (!bytes_known_ || total_bytes_ + incoming <= options_.config.max_bytes) return Status::Ok();
  if (options_.config.full_policy == QueueFullPolicy::kBackpressure) {
    return Status::ResourceExhausted("queue full (" + std::to_string(total_bytes_) + " of " +
                                     std::to_string(options_.config.max_bytes) + " bytes)");
  }
  return DropOldestLocked(total_bytes_ + incoming - options_.config.max_bytes, INT64_MIN);
}

// Batches of `stream` that every registered consumer of it has passed.
Status SqliteQueue::CollectGarbageLocked(const std::string& stream) {
  int64_t min_cursor = INT64_MAX;
  for (const auto& [sink, s] : consumers_) {
    if (s != stream) continue;
    ASSIGN_OR_RETURN(int64_t c, CursorLocked(sink));
    min_cursor = std::min(min_cursor, c);
  }
  if (min_cursor == INT64_MAX) return Status::Ok();
  // Keeps total_bytes_ exact without rescanning the table (this runs on every Ack).
  const std::string sum_sql = "SELECT COALESCE(SUM(" + StoredBytesSql() + "),0) FROM batch WHERE stream=? AND seq<=?";
  SqliteStatement bytes(db_, sum_sql.c_str());
  RETURN_IF_ERROR(bytes.prepared());
  bytes.Bind(1, stream).Bind(2, min_cursor);
  Status st;
  const int64_t freed = bytes.Step(&st) ? bytes.Int(0) : 0;
  RETURN_IF_ERROR(st);
  SqliteStatement del(db_, "DELETE FROM batch WHERE stream=? AND seq<=?");
  RETURN_IF_ERROR(del.prepared());
  del.Bind(1, stream).Bind(2, min_cursor);
  RETURN_IF_ERROR(del.Run());
  total_bytes_ -= freed;
  return Status::Ok();
}

// Deletes one batch as a policy drop: every cursor of its stream that had not passed it
// counts its points as dropped.
Status SqliteQueue::DropBatchLocked(int64_t seq, const std::string& stream, int64_t points, int64_t bytes) {
  SqliteStatement count(db_,
                        "UPDATE sink_status SET dropped_points = dropped_points + ?1"
                        " WHERE sink IN (SELECT sink FROM cursor WHERE stream=?2 AND seq<?3)"
                        " AND sink NOT IN (SELECT sink FROM acked_batch WHERE seq=?3)");
  RETURN_IF_ERROR(count.prepared());
  count.Bind(1, points).Bind(2, stream).Bind(3, seq);
  RETURN_IF_ERROR(count.Run());
  SqliteStatement del(db_, "DELETE FROM batch WHERE seq=?");
  RETURN_IF_ERROR(del.prepared());
  del.Bind(1, seq);
  RETURN_IF_ERROR(del.Run());
  SqliteStatement meta(db_,
                       "INSERT INTO meta(key, value) VALUES('dropped_points_total', ?1)"
                       " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + ?1");
  RETURN_IF_ERROR(meta.prepared());
  meta.Bind(1, points);
  RETURN_IF_ERROR(meta.Run());
  total_bytes_ -= bytes;
  dropped_total_in_call_ += points;
  return Status::Ok();
}

// The one policy walk: drops batches oldest first while more than `bytes_to_free` is still to
// free or the batch was created before `created_before`. Batches are appended in time order,
// so the walk stops at the first batch that is young enough once enough bytes are freed
// (created_ns has no index; a wall-clock step back only delays a drop).
Status SqliteQueue::DropOldestLocked(int64_t bytes_to_free, int64_t created_before) {
  const std::string sql =
      "SELECT seq, stream, points, " + StoredBytesSql() + ", created_ns FROM batch ORDER BY seq LIMIT 256";
  SqliteStatement q(db_, sql.c_str());
  RETURN_IF_ERROR(q.prepared());
  struct Row {
    int64_t seq;
    std::string stream;
    int64_t points, bytes, created_ns;
  };
  while (true) {
    std::vector<Row> rows;  // collected first: no deletes while the SELECT is stepping
    q.Reset();
    Status st;
    while (q.Step(&st)) rows.push_back({q.Int(0), q.Text(1), q.Int(2), q.Int(3), q.Int(4)});
    RETURN_IF_ERROR(st);
    if (rows.empty()) return Status::Ok();
    for (const auto& r : rows) {
      if (bytes_to_free <= 0 && r.created_ns >= created_before) return Status::Ok();
      RETURN_IF_ERROR(DropBatchLocked(r.seq, r.stream, r.points, r.bytes));
      bytes_to_free -= r.bytes;
      LOG_DEBUG("queue") << "dropped batch " << r.seq << " (" << r.points << " points) past the queue's bounds";
    }
  }
}

}  // namespace edgeline
