// SqliteQueue as a DeadLetterStore (sqlite_queue.h): the dead_letter table, bounded to the newest
// kMaxDeadLetters rows with payloads truncated to kMaxDeadLetterPayload, and the replay marks of
// `edgeline dlq replay`. All under mu_; inserts run inside the caller's transaction.
#include <sqlite3.h>

#include "storage/sqlite_queue.h"

namespace edgeline {
namespace {

// Dead letters are diagnostics, outside EDGELINE_QUEUE_MAX_BYTES; these two bound them
// (10,000 x 64 KiB = 640 MiB at worst, typically far less).
constexpr int64_t kMaxDeadLetters = 10000;           // oldest beyond this are deleted
constexpr size_t kMaxDeadLetterPayload = 64 * 1024;  // longer payloads are truncated

const char* KindName(DeadLetterKind kind) { return kind == DeadLetterKind::kPartial ? "partial" : "rejected"; }

}  // namespace

Result<std::vector<DeadLetter>> SqliteQueue::DeadLetters(const std::string& sink, int64_t limit) {
  std::lock_guard lock(mu_);
  return SelectDeadLettersLocked("WHERE ?1='' OR sink=?1 ORDER BY id DESC LIMIT ?2", sink, limit);
}

Result<SqliteQueue::ReplayMarks> SqliteQueue::RequestReplay(const std::string& sink) {
  std::lock_guard lock(mu_);
  // What a replay cannot send whole: truncated payloads (kMaxDeadLetterPayload, or ingest's
  // oversize prefix), and sinks without replay support (Kafka).
  static constexpr const char* kReplayable =
      "(sink='ingest' OR sink LIKE 'influx%') AND reason NOT LIKE '%[payload truncated to %'"
      " AND reason NOT LIKE 'payload of % bytes exceeds %'";
  ReplayMarks marks;
  const std::string mark = std::string(
                               "UPDATE dead_letter SET replay_requested=1 WHERE kind='rejected'"
                               " AND replay_requested=0 AND (?1='' OR sink=?1) AND ") +
                           kReplayable;
  SqliteStatement up(db_, mark.c_str());
  RETURN_IF_ERROR(up.prepared());
  up.Bind(1, sink);
  RETURN_IF_ERROR(up.Run());
  marks.marked = sqlite3_changes(db_);
  const std::string left = std::string(
                               "SELECT COUNT(*) FROM dead_letter WHERE kind='rejected'"
                               " AND replay_requested=0 AND (?1='' OR sink=?1) AND NOT (") +
                           kReplayable + ")";
  SqliteStatement q(db_, left.c_str());
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, sink);
  Status st;
  if (q.Step(&st)) marks.unreplayable = q.Int(0);
  RETURN_IF_ERROR(st);
  return marks;
}

Result<int64_t> SqliteQueue::PurgeDeadLetters(const std::string& sink) {
  std::lock_guard lock(mu_);
  SqliteStatement del(db_, "DELETE FROM dead_letter WHERE ?1='' OR sink=?1");
  RETURN_IF_ERROR(del.prepared());
  del.Bind(1, sink);
  RETURN_IF_ERROR(del.Run());
  return static_cast<int64_t>(sqlite3_changes(db_));
}

Result<std::vector<DeadLetter>> SqliteQueue::ReplayRequested(const std::string& sink, int64_t limit) {
  std::lock_guard lock(mu_);
  return SelectDeadLettersLocked("WHERE sink=?1 AND replay_requested=1 ORDER BY id LIMIT ?2", sink, limit);
}

Status SqliteQueue::FinishReplay(const std::vector<int64_t>& ids, const std::vector<DeadLetter>& rejected_again) {
  std::lock_guard lock(mu_);
  return TransactionLocked([&]() -> Status {
    SqliteStatement del(db_, "DELETE FROM dead_letter WHERE id=?");
    RETURN_IF_ERROR(del.prepared());
    for (int64_t id : ids) {
      del.Reset();
      del.Bind(1, id);
      RETURN_IF_ERROR(del.Run());
    }
    return InsertDeadLettersLocked(rejected_again, clock_->WallNowNs());
  });
}

Status SqliteQueue::InsertDeadLettersLocked(const std::vector<DeadLetter>& dead_letters, int64_t now) {
  if (dead_letters.empty()) return Status::Ok();
  SqliteStatement ins(db_,
                      "INSERT INTO dead_letter(sink, kind, reason, topic, payload, created_ns) VALUES(?,?,?,?,?,?)");
  RETURN_IF_ERROR(ins.prepared());
  for (const auto& d : dead_letters) {
    ins.Reset();
    std::string reason = d.reason;
    std::string_view payload = d.payload;
    if (payload.size() > kMaxDeadLetterPayload) {
      reason += " [payload truncated to " + std::to_string(kMaxDeadLetterPayload) + " of " +
                std::to_string(payload.size()) + " bytes]";
      payload = payload.substr(0, kMaxDeadLetterPayload);
    }
    ins.Bind(1, d.sink)
        .Bind(2, std::string_view(KindName(d.kind)))
        .Bind(3, reason)
        .Bind(4, d.topic)
        .BindBlob(5, payload)
        .Bind(6, d.created_ns ? d.created_ns : now);
    RETURN_IF_ERROR(ins.Run());
  }
  SqliteStatement trim(db_, "DELETE FROM dead_letter WHERE id <= (SELECT COALESCE(MAX(id),0) FROM dead_letter) - ?");
  RETURN_IF_ERROR(trim.prepared());
  trim.Bind(1, kMaxDeadLetters);
  return trim.Run();
}

// `where` binds ?1 = sink and ?2 = limit. No transaction needed.
Result<std::vector<DeadLetter>> SqliteQueue::SelectDeadLettersLocked(const std::string& where, const std::string& sink,
                                                                     int64_t limit) {
  const std::string sql = "SELECT id, sink, kind, reason, topic, payload, created_ns FROM dead_letter " + where;
  SqliteStatement q(db_, sql.c_str());
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, sink).Bind(2, limit);
  std::vector<DeadLetter> out;
  Status st;
  while (q.Step(&st)) {
    DeadLetter d;
    d.id = q.Int(0);
    d.sink = q.Text(1);
    d.kind = q.Text(2) == "partial" ? DeadLetterKind::kPartial : DeadLetterKind::kRejected;
    d.reason = q.Text(3);
    d.topic = q.Text(4);
    d.payload = q.Text(5);
    d.created_ns = q.Int(6);
    out.push_back(std::move(d));
  }
  RETURN_IF_ERROR(st);
  return out;
}

}  // namespace edgeline
