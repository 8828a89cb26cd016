// OpenSqliteQueue and SqliteQueue's batches (sqlite_queue.h): append, read, acknowledge,
// cursors, and the watchers of each stream. All under mu_; watchers are called after mu_ is
// released, under watch_mu_. Sequence numbers use AUTOINCREMENT: a seq is never reused even
// after every batch has been deleted, which cursors depend on.
#include "storage/sqlite_queue.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "storage/queue_check.h"
#include "storage/sqlite_schema.h"

namespace edgeline {

SqliteQueue::SqliteQueue(sqlite3* db, QueueOpenOptions options, std::string recovered_from)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : &SystemClock::Instance()),
      recovered_from_(std::move(recovered_from)),
      db_(db),
      codec_(options_.config.zstd_level) {}

SqliteQueue::~SqliteQueue() {
  check_.reset();         // interrupts and joins the check, which adds to total_bytes_ under mu_
  insert_batch_.reset();  // finalize before closing the connection
  begin_.reset();
  commit_.reset();
  release_state_.reset();
  keep_receipt_.reset();
  sqlite3_close_v2(db_);
}

Status SqliteQueue::Init(bool check_in_background) {
  if (options_.read_only) return Status::Ok();
  if (!check_in_background) {
    ASSIGN_OR_RETURN(total_bytes_, CountedBytes(db_));
    return Status::Ok();
  }
  // The background scans read a snapshot taken now, before any change of ours: what they
  // count plus the changes made since (total_bytes_ counts them from 0) is the exact total.
  bytes_known_ = false;
  total_bytes_ = 0;
  ASSIGN_OR_RETURN(check_, BackgroundCheck::Start(options_.config.path, clock_, [this](int64_t bytes) {
                     std::lock_guard lock(mu_);
                     total_bytes_ += bytes;
                     bytes_known_ = true;
                   }));
  return Status::Ok();
}

Status SqliteQueue::StartupCheck(bool wait) {
  if (!check_) return Status::Ok();
  return check_->Outcome(wait);
}

Result<std::vector<int64_t>> SqliteQueue::Append(const std::vector<BatchInput>& batches,
                                                 const std::vector<DeadLetter>& dead_letters) {
  return AppendReceived(batches, dead_letters, {});
}

Result<std::vector<int64_t>> SqliteQueue::AppendReceived(const std::vector<BatchInput>& batches,
                                                         const std::vector<DeadLetter>& dead_letters,
                                                         const std::vector<MqttReceipt>& receipts) {
  std::vector<int64_t> seqs;
  {
    std::lock_guard lock(mu_);
    // Compress before the transaction: it is the CPU-heavy part.
    ASSIGN_OR_RETURN(std::vector<EncodedBatch> encoded, codec_.Encode(batches));
    RETURN_IF_ERROR(TransactionLocked([&]() -> Status {
      // Max age is enforced by EnforceLimits (the agent calls it every few seconds), not here:
      // this is the per-message hot path.
      const int64_t now = clock_->WallNowNs();
      RETURN_IF_ERROR(MakeRoomLocked(encoded));
      ASSIGN_OR_RETURN(seqs, InsertLocked(batches, encoded, now));
      RETURN_IF_ERROR(SettleReceiptsLocked(receipts, now));
      return InsertDeadLettersLocked(dead_letters, now);
    }));
    total_bytes_ += StoredBytes(encoded);
  }
  NotifyAppended(batches);
  return seqs;
}

Status SqliteQueue::RegisterConsumer(const std::string& sink, const std::string& stream) {
  std::lock_guard lock(mu_);
  SqliteStatement ins(db_,
                      "INSERT INTO cursor(sink, stream, seq, updated_ns, registered_ns) VALUES(?1,?2,0,?3,?3)"
                      " ON CONFLICT(sink) DO UPDATE SET stream=excluded.stream, registered_ns=excluded.registered_ns");
  RETURN_IF_ERROR(ins.prepared());
  ins.Bind(1, sink).Bind(2, stream).Bind(3, clock_->WallNowNs());
  RETURN_IF_ERROR(ins.Run());
  SqliteStatement st_ins(db_, "INSERT OR IGNORE INTO sink_status(sink) VALUES(?)");
  RETURN_IF_ERROR(st_ins.prepared());
  st_ins.Bind(1, sink);
  RETURN_IF_ERROR(st_ins.Run());
  consumers_[sink] = stream;
  return Status::Ok();
}

Result<std::vector<Batch>> SqliteQueue::Read(const std::string& sink, int64_t max_points) {
  std::lock_guard lock(mu_);
  return ReadLocked(sink, 0, max_points, /*newest_first=*/false);
}

Result<std::vector<Batch>> SqliteQueue::ReadAfter(const std::string& sink, int64_t after_seq, int64_t max_points) {
  std::lock_guard lock(mu_);
  return ReadLocked(sink, after_seq, max_points, /*newest_first=*/false);
}

void SqliteQueue::Release(const std::string& sink) {
  std::lock_guard lock(mu_);
  read_until_.erase(sink);
}

Result<std::vector<Batch>> SqliteQueue::ReadNewest(const std::string& sink, int64_t max_points) {
  std::lock_guard lock(mu_);
  return ReadLocked(sink, 0, max_points, /*newest_first=*/true);
}

Status SqliteQueue::AckBatches(const std::string& sink, const std::vector<int64_t>& seqs, const SinkAttempt& attempt,
                               const std::vector<DeadLetter>& dead_letters) {
  std::lock_guard lock(mu_);
  auto it = consumers_.find(sink);
  if (it == consumers_.end()) return Status::FailedPrecondition("consumer not registered: " + sink);
  const std::string stream = it->second;
  ASSIGN_OR_RETURN(int64_t cursor, CursorLocked(sink));
  const int64_t now = clock_->WallNowNs();
  return TransactionLocked([&]() -> Status {
    SqliteStatement mark(db_, "INSERT OR IGNORE INTO acked_batch(sink, seq) VALUES(?,?)");
    RETURN_IF_ERROR(mark.prepared());
    for (int64_t seq : seqs) {
      if (seq <= cursor) continue;
      mark.Reset();
      mark.Bind(1, sink).Bind(2, seq);
      RETURN_IF_ERROR(mark.Run());
    }
    // The new cursor: just before the oldest batch still pending for this sink, or the newest
    // acknowledged one when nothing is pending.
    SqliteStatement next(db_,
                         "SELECT COALESCE((SELECT MIN(seq) - 1 FROM batch b WHERE b.stream=?1 AND b.seq>?3"
                         " AND NOT EXISTS (SELECT 1 FROM acked_batch a WHERE a.sink=?2 AND a.seq=b.seq)),"
                         " (SELECT MAX(seq) FROM acked_batch WHERE sink=?2), ?3)");
    RETURN_IF_ERROR(next.prepared());
    next.Bind(1, stream).Bind(2, sink).Bind(3, cursor);
    Status q;
    int64_t advanced = cursor;
    if (next.Step(&q)) advanced = std::max(cursor, next.Int(0));
    RETURN_IF_ERROR(q);
    RETURN_IF_ERROR(AdvanceLocked(sink, advanced, attempt, now));
    SqliteStatement forget(db_, "DELETE FROM acked_batch WHERE sink=? AND seq<=?");
    RETURN_IF_ERROR(forget.prepared());
    forget.Bind(1, sink).Bind(2, advanced);
    RETURN_IF_ERROR(forget.Run());
    RETURN_IF_ERROR(InsertDeadLettersLocked(dead_letters, now));
    return CollectGarbageLocked(stream);
  });
}

Status SqliteQueue::Ack(const std::string& sink, int64_t seq, const SinkAttempt& attempt,
                        const std::vector<DeadLetter>& dead_letters) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(std::string stream, StreamForAdvanceLocked(sink, seq));
  const int64_t now = clock_->WallNowNs();
  return TransactionLocked([&]() -> Status {
    RETURN_IF_ERROR(AdvanceLocked(sink, seq, attempt, now));
    RETURN_IF_ERROR(InsertDeadLettersLocked(dead_letters, now));
    return CollectGarbageLocked(stream);
  });
}

Status SqliteQueue::AckWithOutput(const std::string& sink, int64_t seq, const SinkAttempt& attempt,
                                  const std::vector<BatchInput>& outputs, std::string_view state) {
  {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(std::string stream, StreamForAdvanceLocked(sink, seq));
    ASSIGN_OR_RETURN(std::vector<EncodedBatch> encoded, codec_.Encode(outputs));
    const int64_t now = clock_->WallNowNs();
    RETURN_IF_ERROR(TransactionLocked([&]() -> Status {
      RETURN_IF_ERROR(AdvanceLocked(sink, seq, attempt, now));
      // GC first: what this consumer just passed may be what makes room for its output.
      RETURN_IF_ERROR(CollectGarbageLocked(stream));
      RETURN_IF_ERROR(MakeRoomLocked(encoded));
      RETURN_IF_ERROR(InsertLocked(outputs, encoded, now).status());
      SqliteStatement save(db_,
                           "INSERT INTO consumer_state(sink, state, updated_ns) VALUES(?,?,?)"
                           " ON CONFLICT(sink) DO UPDATE SET state=excluded.state, updated_ns=excluded.updated_ns");
      RETURN_IF_ERROR(save.prepared());
      save.Bind(1, sink).BindBlob(2, state).Bind(3, now);
      return save.Run();
    }));
    total_bytes_ += StoredBytes(encoded);
  }
  NotifyAppended(outputs);
  return Status::Ok();
}

Result<std::string> SqliteQueue::ConsumerState(const std::string& sink) {
  std::lock_guard lock(mu_);
  if (!SqliteHasTable(db_, "consumer_state")) return std::string();
  SqliteStatement q(db_, "SELECT state FROM consumer_state WHERE sink=?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, sink);
  Status st;
  if (q.Step(&st)) return q.Text(0);
  RETURN_IF_ERROR(st);
  return std::string();
}

void SqliteQueue::Watch(std::string_view stream, StreamWatcher* watcher) {
  std::lock_guard lock(watch_mu_);
  auto it = watchers_.find(stream);
  if (it == watchers_.end()) it = watchers_.emplace(std::string(stream), std::vector<StreamWatcher*>()).first;
  if (std::find(it->second.begin(), it->second.end(), watcher) == it->second.end()) it->second.push_back(watcher);
}

void SqliteQueue::Unwatch(StreamWatcher* watcher) {
  std::lock_guard lock(watch_mu_);
  for (auto& [stream, list] : watchers_) std::erase(list, watcher);
}

void SqliteQueue::NotifyAppended(const std::vector<BatchInput>& batches) {
  std::lock_guard lock(watch_mu_);
  if (watchers_.empty()) return;
  std::vector<std::string_view> notified;
  for (const BatchInput& b : batches) {
    if (b.lines.empty()) continue;  // nothing of it was appended
    if (std::find(notified.begin(), notified.end(), b.stream) != notified.end()) continue;
    notified.push_back(b.stream);
    auto it = watchers_.find(b.stream);
    if (it == watchers_.end()) continue;
    for (StreamWatcher* w : it->second) w->OnAppended(b.stream);
  }
}

Result<std::string> SqliteQueue::IntegrityCheck() {
  std::lock_guard lock(mu_);
  SqliteStatement q(db_, "PRAGMA integrity_check");
  RETURN_IF_ERROR(q.prepared());
  std::string out;
  Status st;
  while (q.Step(&st)) {
    if (!out.empty()) out += "\n";
    out += q.Text(0);
  }
  RETURN_IF_ERROR(st);
  return out;
}

Status SqliteQueue::TransactionLocked(const std::function<Status()>& body) {
  // Deletes inside the body adjust total_bytes_ as they go; a rollback restores it (no rescan,
  // which would read the whole file on every failed commit of a full or failing disk).
  const int64_t bytes_before = total_bytes_;
  if (!begin_) {
    begin_ = std::make_unique<SqliteStatement>(db_, "BEGIN IMMEDIATE");
    commit_ = std::make_unique<SqliteStatement>(db_, "COMMIT");
  }
  RETURN_IF_ERROR(begin_->prepared());
  RETURN_IF_ERROR(commit_->prepared());
  begin_->Reset();
  RETURN_IF_ERROR(begin_->Run());
  Status st = body();
  if (st.ok()) {
    commit_->Reset();
    st = commit_->Run();
  }
  if (!st.ok()) {
    if (!sqlite3_get_autocommit(db_)) (void)SqliteExec(db_, "ROLLBACK");
    total_bytes_ = bytes_before;
  }
  return st;
}

Result<int64_t> SqliteQueue::CursorLocked(const std::string& sink) {
  SqliteStatement q(db_, "SELECT seq FROM cursor WHERE sink=?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, sink);
  Status st;
  if (q.Step(&st)) return q.Int(0);
  RETURN_IF_ERROR(st);
  return Status::NotFound("no cursor for " + sink);
}

Result<std::vector<int64_t>> SqliteQueue::InsertLocked(const std::vector<BatchInput>& batches,
                                                       const std::vector<EncodedBatch>& encoded, int64_t now) {
  std::vector<int64_t> seqs(batches.size(), 0);
  if (!insert_batch_) {
    insert_batch_ = std::make_unique<SqliteStatement>(
        db_,
        "INSERT INTO batch(stream, created_ns, min_ts, max_ts, points, raw_bytes, codec, body, sources)"
        " VALUES(?,?,?,?,?,?,?,?,?)");
  }
  RETURN_IF_ERROR(insert_batch_->prepared());
  SqliteStatement& ins = *insert_batch_;
  for (size_t i = 0; i < batches.size(); ++i) {
    if (batches[i].lines.empty()) continue;
    ins.Reset();
    ins.Bind(1, batches[i].stream)
        .Bind(2, now)
        .Bind(3, batches[i].min_ts_ns)
        .Bind(4, batches[i].max_ts_ns)
        .Bind(5, static_cast<int64_t>(batches[i].lines.size()))
        .Bind(6, encoded[i].raw_bytes)
        .Bind(7, encoded[i].codec)
        .BindBlob(8, encoded[i].body);
    if (!encoded[i].sources.empty()) ins.BindBlob(9, encoded[i].sources);  // else NULL
    RETURN_IF_ERROR(ins.Run());
    seqs[i] = sqlite3_last_insert_rowid(db_);
  }
  return seqs;
}

Result<std::vector<Batch>> SqliteQueue::ReadLocked(const std::string& sink, int64_t after_seq, int64_t max_points,
                                                   bool newest_first) {
  auto it = consumers_.find(sink);
  if (it == consumers_.end()) return Status::FailedPrecondition("consumer not registered: " + sink);
  ASSIGN_OR_RETURN(int64_t cursor, CursorLocked(sink));
  cursor = std::max(cursor, after_seq);
  // Batches this sink acknowledged out of order (newest-first) are skipped.
  const std::string sql =
      std::string(
          "SELECT seq, stream, created_ns, min_ts, max_ts, points, raw_bytes, codec, body, sources FROM batch b"
          " WHERE stream=?1 AND seq>?2"
          " AND NOT EXISTS (SELECT 1 FROM acked_batch a WHERE a.sink=?3 AND a.seq=b.seq) ORDER BY seq") +
      (newest_first ? " DESC" : "") + " LIMIT 10000";
  SqliteStatement q(db_, sql.c_str());
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, it->second).Bind(2, cursor).Bind(3, sink);
  std::vector<Batch> out;
  int64_t points = 0;
  Status st;
  while (q.Step(&st)) {
    int64_t n = q.Int(5);
    if (!out.empty() && points + n > max_points) break;
    Batch b;
    b.seq = q.Int(0);
    b.stream = q.Text(1);
    b.created_ns = q.Int(2);
    b.min_ts_ns = q.Int(3);
    b.max_ts_ns = q.Int(4);
    ASSIGN_OR_RETURN(b.lines, codec_.DecodeLines(q.Text(7), q.Text(8), q.Int(6)));
    std::string sources = q.Text(9);
    if (!sources.empty()) {
      ASSIGN_OR_RETURN(b.sources, codec_.DecodeSources(sources));
    }
    points += n;
    out.push_back(std::move(b));
    if (points >= max_points) break;
  }
  RETURN_IF_ERROR(st);
  for (const Batch& b : out) read_until_[sink] = std::max(read_until_[sink], b.seq);
  return out;
}

Result<std::string> SqliteQueue::StreamForAdvanceLocked(const std::string& sink, int64_t seq) {
  auto it = consumers_.find(sink);
  if (it == consumers_.end()) return Status::FailedPrecondition("consumer not registered: " + sink);
  ASSIGN_OR_RETURN(int64_t cursor, CursorLocked(sink));
  if (seq < cursor) {
    return Status::FailedPrecondition("cursor of " + sink + " would move back from " + std::to_string(cursor) + " to " +
                                      std::to_string(seq));
  }
  return it->second;
}

Status SqliteQueue::AdvanceLocked(const std::string& sink, int64_t seq, const SinkAttempt& attempt, int64_t now) {
  SqliteStatement up(db_, "UPDATE cursor SET seq=?, updated_ns=? WHERE sink=?");
  RETURN_IF_ERROR(up.prepared());
  up.Bind(1, seq).Bind(2, now).Bind(3, sink);
  RETURN_IF_ERROR(up.Run());
  return RecordAttemptLocked(sink, attempt, now, /*success=*/true);
}

Result<std::unique_ptr<Queue>> OpenSqliteQueue(const QueueOpenOptions& options) {
  const std::string& path = options.config.path;
  if (options.read_only) {
    if (::access(path.c_str(), F_OK) != 0) return Status::NotFound("no queue file at " + path);
    ASSIGN_OR_RETURN(sqlite3 * db, OpenSqliteDb(path, true));
    auto q = std::make_unique<SqliteQueue>(db, options, "");
    return std::unique_ptr<Queue>(std::move(q));
  }

  // Create the file ourselves so it is 0600 from the first byte; SQLite gives the -wal and
  // -shm files the same mode.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("cannot create " + path + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  ::close(fd);

  // A large file is checked in the background (Init), unless its last check failed.
  const std::string marker = CheckFailedMarker(path);
  const bool check_failed_before = ::access(marker.c_str(), F_OK) == 0;
  int64_t file_bytes = 0;
  for (const char* suffix : {"", "-wal"}) {
    struct stat st {};
    if (::stat((path + suffix).c_str(), &st) == 0) file_bytes += st.st_size;
  }
  const bool check_in_background = !check_failed_before && file_bytes > options.sync_check_max_bytes;

  std::string recovered_from;
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSIGN_OR_RETURN(sqlite3 * db, OpenSqliteDb(path, false));
    Status st = check_in_background && attempt == 0 ? Status::Ok() : QuickCheck(db);
    if (st.ok()) st = ApplyQueueSchema(db, options.config);
    if (st.ok()) {
      if (!recovered_from.empty()) {
        SqliteStatement ins(db, "INSERT OR REPLACE INTO meta(key, value) VALUES('recovered_from', ?)");
        if (ins.prepared().ok()) {
          ins.Bind(1, recovered_from);
          (void)ins.Run();
        }
      }
      if (check_failed_before) ::unlink(marker.c_str());  // checked now, before returning
      auto q = std::make_unique<SqliteQueue>(db, options, recovered_from);
      RETURN_IF_ERROR(q->Init(check_in_background && attempt == 0));
      return std::unique_ptr<Queue>(std::move(q));
    }
    sqlite3_close_v2(db);
    if (st.code() != StatusCode::kCorruption || attempt > 0) return st;
    // Keep the damaged file for forensics; never delete user data.
    const Clock* clock = options.clock ? options.clock : &SystemClock::Instance();
    recovered_from = path + ".corrupt-" + std::to_string(clock->WallNowNs() / kNsPerSec);
    LOG_ERROR("queue") << "queue file failed its check (" << st.message() << "); moved aside to " << recovered_from
                       << ", starting a new one";
    RETURN_IF_ERROR(MoveQueueAside(path, recovered_from));
  }
  return Status::Internal("unreachable");
}

}  // namespace edgeline
