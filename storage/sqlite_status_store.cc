// SqliteQueue as a StatusStore (sqlite_queue.h): sink_status (each attempt; the successful one
// inside the Ack's transaction), the per-sink and queue-wide counts `edgeline status` shows, and
// agent_state. All under mu_. The reads also work on a read-only connection to a file of an
// older schema version (missing columns and tables read as 0 / empty).
#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdlib>

#include "storage/sqlite_queue.h"

namespace edgeline {

Result<int64_t> SqliteQueue::CursorOf(const std::string& sink) {
  std::lock_guard lock(mu_);
  auto cursor = CursorLocked(sink);
  if (!cursor.ok() && cursor.status().code() == StatusCode::kNotFound) return int64_t{0};
  return cursor;
}

Status SqliteQueue::RecordAttempt(const std::string& sink, const SinkAttempt& attempt) {
  std::lock_guard lock(mu_);
  return RecordAttemptLocked(sink, attempt, clock_->WallNowNs(), /*success=*/false);
}

Result<std::vector<SinkStatus>> SqliteQueue::SinkStatuses() {
  std::lock_guard lock(mu_);
  // Pending = after the cursor and not acknowledged out of order. A file without acked_batch
  // (read-only status of a not yet upgraded file) has none of those.
  const bool has_registered = SqliteHasColumn(db_, "cursor", "registered_ns");
  const std::string pending = std::string(" AND b.stream=c.stream AND b.seq>c.seq") +
                              (SqliteHasTable(db_, "acked_batch")
                                   ? " AND NOT EXISTS (SELECT 1 FROM acked_batch a WHERE a.sink=c.sink AND a.seq=b.seq)"
                                   : "");
  const std::string sql =
      "SELECT c.sink, c.stream, c.seq, COALESCE(s.state,''), COALESCE(s.last_code,0),"
      " COALESCE(s.last_error,''), COALESCE(s.last_attempt_ns,0), COALESCE(s.last_success_ns,0),"
      " COALESCE(s.sent_points,0), COALESCE(s.dropped_points,0), COALESCE(s.consecutive_failures,0),"
      " COALESCE(s.next_retry_ns,0),"
      " (SELECT COUNT(*) FROM dead_letter d WHERE d.sink=c.sink),"
      " (SELECT COALESCE(SUM(points),0) FROM batch b WHERE 1" +
      pending +
      "),"
      " (SELECT COALESCE(SUM(length(body)),0) FROM batch b WHERE 1" +
      pending +
      "),"
      " (SELECT COALESCE(MIN(created_ns),0) FROM batch b WHERE 1" +
      pending +
      "),"
      " COALESCE(s.skipped_points,0), COALESCE(s.retry_after_ns,0), COALESCE(s.batch_points,0),"
      " COALESCE(s.drain_rate,0), " +
      std::string(has_registered ? "c.registered_ns" : "0") +
      " FROM cursor c LEFT JOIN sink_status s ON s.sink=c.sink ORDER BY c.sink";
  SqliteStatement q(db_, sql.c_str());
  RETURN_IF_ERROR(q.prepared());
  std::vector<SinkStatus> out;
  Status st;
  while (q.Step(&st)) {
    SinkStatus s;
    s.sink = q.Text(0);
    s.stream = q.Text(1);
    s.cursor_seq = q.Int(2);
    s.state = q.Text(3);
    s.last_code = static_cast<int>(q.Int(4));
    s.last_error = q.Text(5);
    s.last_attempt_ns = q.Int(6);
    s.last_success_ns = q.Int(7);
    s.sent_points = q.Int(8);
    s.dropped_points = q.Int(9);
    s.consecutive_failures = static_cast<int>(q.Int(10));
    s.next_retry_ns = q.Int(11);
    s.dead_lettered = q.Int(12);
    s.pending_points = q.Int(13);
    s.pending_bytes = q.Int(14);
    s.oldest_pending_ns = q.Int(15);
    s.skipped_points = q.Int(16);
    s.retry_after_ns = q.Int(17);
    s.batch_points = q.Int(18);
    s.drain_rate = q.Real(19);
    s.registered = consumers_.count(s.sink) > 0;
    s.registered_ns = q.Int(20);
    out.push_back(std::move(s));
  }
  RETURN_IF_ERROR(st);
  return out;
}

Result<QueueStats> SqliteQueue::Stats() {
  std::lock_guard lock(mu_);
  QueueStats s;
  s.recovered_from = recovered_from_;
  const std::string sql =
      "SELECT COUNT(*), COALESCE(SUM(points),0), COALESCE(SUM(length(body)),0),"
      " COALESCE(SUM(raw_bytes),0), (SELECT COUNT(*) FROM dead_letter),"
      " (SELECT COUNT(*) FROM dead_letter WHERE sink='ingest' AND kind='rejected'),"
      " (SELECT COALESCE(MAX(seq),0) FROM sqlite_sequence WHERE name='batch'), COALESCE(SUM(" +
      StoredBytesSql() + "),0) FROM batch";
  SqliteStatement q(db_, sql.c_str());
  RETURN_IF_ERROR(q.prepared());
  Status st;
  if (q.Step(&st)) {
    s.batches = q.Int(0);
    s.points = q.Int(1);
    s.bytes = q.Int(2);
    s.raw_bytes = q.Int(3);
    s.dead_letters = q.Int(4);
    s.ingest_rejected = q.Int(5);
    s.max_seq = q.Int(6);
    s.counted_bytes = q.Int(7);
  }
  RETURN_IF_ERROR(st);
  for (const char* suffix : {"", "-wal"}) {
    struct stat file {};
    if (::stat((options_.config.path + suffix).c_str(), &file) == 0) s.file_bytes += file.st_size;
  }
  ASSIGN_OR_RETURN(std::string dropped, MetaLocked("dropped_points_total"));
  s.dropped_points_total = std::strtoll(dropped.c_str(), nullptr, 10);  // "" or junk -> 0
  if (s.recovered_from.empty()) {
    ASSIGN_OR_RETURN(s.recovered_from, MetaLocked("recovered_from"));
  }
  return s;
}

Status SqliteQueue::SetAgentState(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::lock_guard lock(mu_);
  return TransactionLocked([&]() -> Status {
    SqliteStatement up(db_,
                       "INSERT INTO agent_state(key, value, updated_ns) VALUES(?,?,?)"
                       " ON CONFLICT(key) DO UPDATE SET value=excluded.value, updated_ns=excluded.updated_ns");
    RETURN_IF_ERROR(up.prepared());
    for (const auto& [k, v] : kv) {
      up.Reset();
      up.Bind(1, k).Bind(2, v).Bind(3, clock_->WallNowNs());
      RETURN_IF_ERROR(up.Run());
    }
    return Status::Ok();
  });
}

Result<std::vector<std::pair<std::string, std::string>>> SqliteQueue::AgentState() {
  std::lock_guard lock(mu_);
  SqliteStatement q(db_, "SELECT key, value FROM agent_state ORDER BY key");
  RETURN_IF_ERROR(q.prepared());
  std::vector<std::pair<std::string, std::string>> out;
  Status st;
  while (q.Step(&st)) out.emplace_back(q.Text(0), q.Text(1));
  RETURN_IF_ERROR(st);
  return out;
}

Status SqliteQueue::RecordAttemptLocked(const std::string& sink, const SinkAttempt& a, int64_t now, bool success) {
  SqliteStatement up(db_,
                     "INSERT INTO sink_status(sink, state, last_code, last_error, last_attempt_ns, last_success_ns,"
                     " sent_points, consecutive_failures, next_retry_ns, skipped_points, retry_after_ns,"
                     " batch_points, drain_rate) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,MAX(?13,0))"
                     " ON CONFLICT(sink) DO UPDATE SET state=?2, last_code=?3, last_error=?4, last_attempt_ns=?5,"
                     " last_success_ns=CASE WHEN ?6>0 THEN ?6 ELSE last_success_ns END,"
                     " sent_points=sent_points+?7, consecutive_failures=?8, next_retry_ns=?9,"
                     " skipped_points=skipped_points+?10, retry_after_ns=?11, batch_points=?12,"
                     " drain_rate=CASE WHEN ?13>=0 THEN ?13 ELSE drain_rate END");
  RETURN_IF_ERROR(up.prepared());
  up.Bind(1, sink)
      .Bind(2, Name(a.state))
      .Bind(3, static_cast<int64_t>(a.last_code))
      .Bind(4, a.last_error)
      .Bind(5, now)
      .Bind(6, success ? now : 0)
      .Bind(7, a.sent_points)
      .Bind(8, static_cast<int64_t>(a.consecutive_failures))
      .Bind(9, a.next_retry_ns)
      .Bind(10, a.skipped_points)
      .Bind(11, a.retry_after_ns)
      .Bind(12, a.batch_points)
      .BindReal(13, a.drain_rate);
  return up.Run();
}

Result<std::string> SqliteQueue::MetaLocked(const std::string& key) {
  SqliteStatement q(db_, "SELECT value FROM meta WHERE key=?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, key);
  Status st;
  if (q.Step(&st)) return q.Text(0);
  RETURN_IF_ERROR(st);
  return std::string();
}

}  // namespace edgeline
