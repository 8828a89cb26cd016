// SQLite implementation of Queue. On-disk format: docs/QUEUE_FORMAT.md.
//
// One connection, guarded by mu_. WAL journal so `edgeline status` (another process) reads
// while the agent writes. Every mutation is one BEGIN IMMEDIATE transaction, so a SIGKILL at
// any point leaves either all or none of it. Sequence numbers use AUTOINCREMENT: a seq is
// never reused even after every batch has been deleted, which cursors depend on.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/log.h"
#include "storage/queue.h"

namespace edgeline {
namespace {

constexpr int kSchemaVersion = 2;  // 2: batch.sources, sink_status.skipped_points, consumer_state,
                                    //    dead_letter.replay_requested
// Dead letters are diagnostics, outside EDGELINE_QUEUE_MAX_BYTES; these two bound them
// (10,000 x 64 KiB = 640 MiB at worst, typically far less).
constexpr int64_t kMaxDeadLetters = 10000;           // oldest beyond this are deleted
constexpr size_t kMaxDeadLetterPayload = 64 * 1024;  // longer payloads are truncated

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  stream TEXT NOT NULL,
  created_ns INTEGER NOT NULL,
  min_ts INTEGER NOT NULL,
  max_ts INTEGER NOT NULL,
  points INTEGER NOT NULL,
  raw_bytes INTEGER NOT NULL,
  codec TEXT NOT NULL,
  body BLOB NOT NULL,
  sources BLOB);
CREATE INDEX IF NOT EXISTS batch_stream_seq ON batch(stream, seq);
CREATE TABLE IF NOT EXISTS cursor(
  sink TEXT PRIMARY KEY,
  stream TEXT NOT NULL,
  seq INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL,
  registered_ns INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sink_status(
  sink TEXT PRIMARY KEY,
  state TEXT NOT NULL DEFAULT '',
  last_code INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  last_attempt_ns INTEGER NOT NULL DEFAULT 0,
  last_success_ns INTEGER NOT NULL DEFAULT 0,
  sent_points INTEGER NOT NULL DEFAULT 0,
  dropped_points INTEGER NOT NULL DEFAULT 0,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  next_retry_ns INTEGER NOT NULL DEFAULT 0,
  skipped_points INTEGER NOT NULL DEFAULT 0,
  retry_after_ns INTEGER NOT NULL DEFAULT 0,
  batch_points INTEGER NOT NULL DEFAULT 0,
  drain_rate REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS dead_letter(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sink TEXT NOT NULL,
  kind TEXT NOT NULL,
  reason TEXT NOT NULL,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  created_ns INTEGER NOT NULL,
  replay_requested INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS dead_letter_sink ON dead_letter(sink, id);
CREATE TABLE IF NOT EXISTS agent_state(key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS acked_batch(sink TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(sink, seq));
CREATE TABLE IF NOT EXISTS consumer_state(sink TEXT PRIMARY KEY, state BLOB NOT NULL, updated_ns INTEGER NOT NULL);
)sql";

// Columns added after schema version 1, with their definitions for ALTER TABLE.
constexpr std::pair<const char*, const char*> kAddedColumns[] = {
    {"batch", "sources BLOB"},
    {"sink_status", "skipped_points INTEGER NOT NULL DEFAULT 0"},
    {"dead_letter", "replay_requested INTEGER NOT NULL DEFAULT 0"},
    {"sink_status", "retry_after_ns INTEGER NOT NULL DEFAULT 0"},
    {"sink_status", "batch_points INTEGER NOT NULL DEFAULT 0"},
    {"sink_status", "drain_rate REAL NOT NULL DEFAULT 0"},
    {"cursor", "registered_ns INTEGER NOT NULL DEFAULT 0"},
};

const char* KindName(DeadLetterKind kind) {
  return kind == DeadLetterKind::kPartial ? "partial" : "rejected";
}

// RAII prepared statement.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status prepared() const {
    if (rc_ == SQLITE_OK) return Status::Ok();
    return ErrorStatus(rc_);
  }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& Bind(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindReal(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Stmt& BindBlob(int i, std::string_view v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW -> true, SQLITE_DONE -> false; errors in *status.
  bool Step(Status* status) {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) *status = ErrorStatus(rc);
    return false;
  }
  Status Run() {
    Status st;
    while (Step(&st)) {
    }
    return st;
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Real(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), n) : std::string();
  }
  Status ErrorStatus(int rc) const {
    std::string msg = std::string("sqlite: ") + sqlite3_errmsg(db_);
    int primary = rc & 0xff;
    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return Status::Corruption(msg);
    // A full disk is a disk error (ResourceExhausted means the queue's own bound).
    if (primary == SQLITE_FULL) return Status::IoError("disk full: " + msg);
    return Status::IoError(msg);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = std::string("sqlite: ") + (err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  int primary = rc & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return Status::Corruption(msg);
  if (primary == SQLITE_FULL) return Status::IoError("disk full: " + msg);
  return Status::IoError(msg);
}

std::string JoinLines(const std::vector<std::string>& lines) {
  size_t total = 0;
  for (const auto& l : lines) total += l.size() + 1;
  std::string out;
  out.reserve(total);
  for (const auto& l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

Result<std::vector<std::string>> SplitLines(std::string_view body) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < body.size()) {
    size_t nl = body.find('\n', start);
    if (nl == std::string_view::npos) return Status::Corruption("batch body not newline-terminated");
    lines.emplace_back(body.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

Result<std::string> Decompress(ZSTD_DCtx* dctx, std::string_view codec, std::string_view body, int64_t raw_bytes) {
  if (codec == "none") return std::string(body);
  if (codec != "zstd") return Status::Corruption("unknown codec " + std::string(codec));
  std::string out(static_cast<size_t>(raw_bytes), '\0');
  size_t n = ZSTD_decompressDCtx(dctx, out.data(), out.size(), body.data(), body.size());
  if (ZSTD_isError(n) || static_cast<int64_t>(n) != raw_bytes) {
    return Status::Corruption("zstd batch body does not decompress");
  }
  return out;
}

// Sources are stored as "lines\ttopic\n" runs, zstd-compressed from kMinCompressBytes on
// (topics repeat, so they shrink to a few bytes a run).
std::string EncodeSources(const std::vector<SourceRun>& runs) {
  std::string out;
  for (const auto& r : runs) {
    out += std::to_string(r.lines);
    out += '\t';
    out += r.topic;
    out += '\n';
  }
  return out;
}

// Below this, bodies and sources are stored without a zstd frame.
constexpr size_t kMinCompressBytes = 256;

// zstd frames start with 28 B5 2F FD. Sources text starts with a digit (the run's line count).
bool IsZstdFrame(std::string_view blob) {
  return blob.size() >= 4 && static_cast<unsigned char>(blob[0]) == 0x28 && static_cast<unsigned char>(blob[1]) == 0xB5 &&
         static_cast<unsigned char>(blob[2]) == 0x2F && static_cast<unsigned char>(blob[3]) == 0xFD;
}

Result<std::vector<SourceRun>> DecodeSources(std::string_view text) {
  std::vector<SourceRun> runs;
  size_t start = 0;
  while (start < text.size()) {
    size_t tab = text.find('\t', start);
    size_t nl = text.find('\n', start);
    if (tab == std::string_view::npos || nl == std::string_view::npos || tab > nl) {
      return Status::Corruption("batch sources malformed");
    }
    SourceRun r;
    r.lines = std::strtoll(std::string(text.substr(start, tab - start)).c_str(), nullptr, 10);
    r.topic = std::string(text.substr(tab + 1, nl - tab - 1));
    runs.push_back(std::move(r));
    start = nl + 1;
  }
  return runs;
}

// Whether `table` has `column` (a file from an older schema version may not).
bool HasColumn(sqlite3* db, std::string_view table, std::string_view column) {
  const std::string probe = "SELECT " + std::string(column) + " FROM " + std::string(table) + " LIMIT 0";
  sqlite3_stmt* stmt = nullptr;
  const bool ok = sqlite3_prepare_v2(db, probe.c_str(), -1, &stmt, nullptr) == SQLITE_OK;
  sqlite3_finalize(stmt);
  return ok;
}

Status CheckDb(sqlite3* db);

// What the size bound counts: the stored (compressed) bodies. Reads the whole table.
Result<int64_t> StoredBodyBytes(sqlite3* db) {
  Stmt sum(db, "SELECT COALESCE(SUM(length(body)),0) FROM batch");
  RETURN_IF_ERROR(sum.prepared());
  Status st;
  const int64_t bytes = sum.Step(&st) ? sum.Int(0) : 0;
  RETURN_IF_ERROR(st);
  return bytes;
}
Result<sqlite3*> OpenDb(const std::string& path, bool read_only);
std::string CheckFailedMarker(const std::string& path) { return path + ".check-failed"; }

class SqliteQueue final : public Queue {
 public:
  SqliteQueue(sqlite3* db, QueueOpenOptions options, std::string recovered_from)
      : db_(db), options_(std::move(options)), recovered_from_(std::move(recovered_from)) {
    clock_ = options_.clock ? options_.clock : &SystemClock::Instance();
  }
  ~SqliteQueue() override {
    {
      std::lock_guard lock(check_mu_);
      if (check_db_) sqlite3_interrupt(check_db_);
    }
    if (check_thread_.joinable()) check_thread_.join();
    insert_batch_.reset();  // finalize before closing the connection
    ZSTD_freeCCtx(cctx_);
    ZSTD_freeDCtx(dctx_);
    sqlite3_close_v2(db_);
  }

  Status Init(bool check_in_background) {
    if (options_.read_only) return Status::Ok();
    if (!check_in_background) {
      ASSIGN_OR_RETURN(total_bytes_, StoredBodyBytes(db_));
      return Status::Ok();
    }
    // The background scans read a snapshot taken now, before any change of ours: what they
    // count plus the changes made since (total_bytes_ counts them from 0) is the exact total.
    ASSIGN_OR_RETURN(sqlite3 * check_db, OpenDb(options_.config.path, /*read_only=*/true));
    // A scan reads every page once: a small cache keeps the agent's memory flat (issue 7's P3).
    Status st = Exec(check_db, "PRAGMA cache_size=-256");
    if (st.ok()) st = Exec(check_db, "BEGIN");
    if (st.ok()) st = Exec(check_db, "SELECT COUNT(*) FROM meta");  // a read starts the snapshot
    if (!st.ok()) {
      sqlite3_close_v2(check_db);
      return st;
    }
    check_db_ = check_db;
    bytes_known_ = false;
    total_bytes_ = 0;
    check_running_ = true;
    check_thread_ = std::thread([this] { RunStartupCheck(); });
    return Status::Ok();
  }

  Result<int64_t> CursorOf(const std::string& sink) override {
    std::lock_guard lock(mu_);
    auto cursor = CursorLocked(sink);
    if (!cursor.ok() && cursor.status().code() == StatusCode::kNotFound) return int64_t{0};
    return cursor;
  }

  Status StartupCheck(bool wait) override {
    std::unique_lock lock(check_mu_);
    if (wait) check_cv_.wait(lock, [&] { return !check_running_; });
    return check_result_;
  }

  Result<std::vector<int64_t>> Append(const std::vector<BatchInput>& batches,
                                      const std::vector<DeadLetter>& dead_letters) override {
    std::lock_guard lock(mu_);
    // Compress before the transaction: it is the CPU-heavy part.
    ASSIGN_OR_RETURN(std::vector<Encoded> encoded, EncodeLocked(batches));
    std::vector<int64_t> seqs;
    RETURN_IF_ERROR(TransactionLocked([&]() -> Status {
      // Max age is enforced by EnforceLimits (the agent calls it every few seconds), not here:
      // this is the per-message hot path.
      const int64_t now = clock_->WallNowNs();
      RETURN_IF_ERROR(MakeRoomLocked(encoded));
      ASSIGN_OR_RETURN(seqs, InsertLocked(batches, encoded, now));
      return InsertDeadLettersLocked(dead_letters, now);
    }));
    total_bytes_ += IncomingBytes(encoded);
    return seqs;
  }

  Status RegisterConsumer(const std::string& sink, const std::string& stream) override {
    std::lock_guard lock(mu_);
    Stmt ins(db_,
             "INSERT INTO cursor(sink, stream, seq, updated_ns, registered_ns) VALUES(?1,?2,0,?3,?3)"
             " ON CONFLICT(sink) DO UPDATE SET stream=excluded.stream, registered_ns=excluded.registered_ns");
    RETURN_IF_ERROR(ins.prepared());
    ins.Bind(1, sink).Bind(2, stream).Bind(3, clock_->WallNowNs());
    RETURN_IF_ERROR(ins.Run());
    Stmt st_ins(db_, "INSERT OR IGNORE INTO sink_status(sink) VALUES(?)");
    RETURN_IF_ERROR(st_ins.prepared());
    st_ins.Bind(1, sink);
    RETURN_IF_ERROR(st_ins.Run());
    consumers_[sink] = stream;
    return Status::Ok();
  }

  Result<std::vector<Batch>> Read(const std::string& sink, int64_t max_points) override {
    std::lock_guard lock(mu_);
    return ReadLocked(sink, max_points, /*newest_first=*/false);
  }

  Result<std::vector<Batch>> ReadNewest(const std::string& sink, int64_t max_points) override {
    std::lock_guard lock(mu_);
    return ReadLocked(sink, max_points, /*newest_first=*/true);
  }

  Status AckBatches(const std::string& sink, const std::vector<int64_t>& seqs, const SinkAttempt& attempt,
                    const std::vector<DeadLetter>& dead_letters) override {
    std::lock_guard lock(mu_);
    auto it = consumers_.find(sink);
    if (it == consumers_.end()) return Status::FailedPrecondition("consumer not registered: " + sink);
    const std::string stream = it->second;
    ASSIGN_OR_RETURN(int64_t cursor, CursorLocked(sink));
    const int64_t now = clock_->WallNowNs();
    return TransactionLocked([&]() -> Status {
      Stmt mark(db_, "INSERT OR IGNORE INTO acked_batch(sink, seq) VALUES(?,?)");
      RETURN_IF_ERROR(mark.prepared());
      for (int64_t seq : seqs) {
        if (seq <= cursor) continue;
        mark.Reset();
        mark.Bind(1, sink).Bind(2, seq);
        RETURN_IF_ERROR(mark.Run());
      }
      // The new cursor: just before the oldest batch still pending for this sink, or the newest
      // acknowledged one when nothing is pending.
      Stmt next(db_,
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
      Stmt forget(db_, "DELETE FROM acked_batch WHERE sink=? AND seq<=?");
      RETURN_IF_ERROR(forget.prepared());
      forget.Bind(1, sink).Bind(2, advanced);
      RETURN_IF_ERROR(forget.Run());
      RETURN_IF_ERROR(InsertDeadLettersLocked(dead_letters, now));
      return CollectGarbageLocked(stream);
    });
  }

  Status Ack(const std::string& sink, int64_t seq, const SinkAttempt& attempt,
             const std::vector<DeadLetter>& dead_letters) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(std::string stream, StreamForAdvanceLocked(sink, seq));
    const int64_t now = clock_->WallNowNs();
    return TransactionLocked([&]() -> Status {
      RETURN_IF_ERROR(AdvanceLocked(sink, seq, attempt, now));
      RETURN_IF_ERROR(InsertDeadLettersLocked(dead_letters, now));
      return CollectGarbageLocked(stream);
    });
  }

  Status RecordAttempt(const std::string& sink, const SinkAttempt& attempt) override {
    std::lock_guard lock(mu_);
    return RecordAttemptLocked(sink, attempt, clock_->WallNowNs(), /*success=*/false);
  }

  Status AckWithOutput(const std::string& sink, int64_t seq, const SinkAttempt& attempt,
                       const std::vector<BatchInput>& outputs, std::string_view state) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(std::string stream, StreamForAdvanceLocked(sink, seq));
    ASSIGN_OR_RETURN(std::vector<Encoded> encoded, EncodeLocked(outputs));
    const int64_t now = clock_->WallNowNs();
    RETURN_IF_ERROR(TransactionLocked([&]() -> Status {
      RETURN_IF_ERROR(AdvanceLocked(sink, seq, attempt, now));
      // GC first: what this consumer just passed may be what makes room for its output.
      RETURN_IF_ERROR(CollectGarbageLocked(stream));
      RETURN_IF_ERROR(MakeRoomLocked(encoded));
      RETURN_IF_ERROR(InsertLocked(outputs, encoded, now).status());
      Stmt save(db_,
                "INSERT INTO consumer_state(sink, state, updated_ns) VALUES(?,?,?)"
                " ON CONFLICT(sink) DO UPDATE SET state=excluded.state, updated_ns=excluded.updated_ns");
      RETURN_IF_ERROR(save.prepared());
      save.Bind(1, sink).BindBlob(2, state).Bind(3, now);
      return save.Run();
    }));
    total_bytes_ += IncomingBytes(encoded);
    return Status::Ok();
  }

  Result<std::string> ConsumerState(const std::string& sink) override {
    std::lock_guard lock(mu_);
    if (!HasTable("consumer_state")) return std::string();
    Stmt q(db_, "SELECT state FROM consumer_state WHERE sink=?");
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, sink);
    Status st;
    if (q.Step(&st)) return q.Text(0);
    RETURN_IF_ERROR(st);
    return std::string();
  }

  Result<int64_t> EnforceLimits() override {
    std::lock_guard lock(mu_);
    dropped_total_in_call_ = 0;
    const int64_t over_bytes = options_.config.full_policy == QueueFullPolicy::kDropOldest && bytes_known_
                                   ? total_bytes_ - options_.config.max_bytes
                                   : 0;
    const int64_t created_before = options_.config.max_age_ns > 0
                                       ? clock_->WallNowNs() - options_.config.max_age_ns
                                       : INT64_MIN;
    RETURN_IF_ERROR(TransactionLocked([&] { return DropOldestLocked(over_bytes, created_before); }));
    return dropped_total_in_call_;
  }

  Result<std::vector<SinkStatus>> SinkStatuses() override {
    std::lock_guard lock(mu_);
    // Pending = after the cursor and not acknowledged out of order. A file from before
    // acked_batch existed (read-only status of a not yet upgraded file) has none of those.
    const bool has_registered = HasColumn(db_, "cursor", "registered_ns");
    const std::string pending =
        std::string(" AND b.stream=c.stream AND b.seq>c.seq") +
        (HasTable("acked_batch") ? " AND NOT EXISTS (SELECT 1 FROM acked_batch a WHERE a.sink=c.sink AND a.seq=b.seq)"
                                 : "");
    const std::string sql =
           "SELECT c.sink, c.stream, c.seq, COALESCE(s.state,''), COALESCE(s.last_code,0),"
           " COALESCE(s.last_error,''), COALESCE(s.last_attempt_ns,0), COALESCE(s.last_success_ns,0),"
           " COALESCE(s.sent_points,0), COALESCE(s.dropped_points,0), COALESCE(s.consecutive_failures,0),"
           " COALESCE(s.next_retry_ns,0),"
           " (SELECT COUNT(*) FROM dead_letter d WHERE d.sink=c.sink),"
           " (SELECT COALESCE(SUM(points),0) FROM batch b WHERE 1" + pending + "),"
           " (SELECT COALESCE(SUM(length(body)),0) FROM batch b WHERE 1" + pending + "),"
           " (SELECT COALESCE(MIN(created_ns),0) FROM batch b WHERE 1" + pending + "),"
           " COALESCE(s.skipped_points,0), COALESCE(s.retry_after_ns,0), COALESCE(s.batch_points,0),"
           " COALESCE(s.drain_rate,0), " + std::string(has_registered ? "c.registered_ns" : "0") +
           " FROM cursor c LEFT JOIN sink_status s ON s.sink=c.sink ORDER BY c.sink";
    Stmt q(db_, sql.c_str());
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

  Result<QueueStats> Stats() override {
    std::lock_guard lock(mu_);
    QueueStats s;
    s.recovered_from = recovered_from_;
    Stmt q(db_,
           "SELECT COUNT(*), COALESCE(SUM(points),0), COALESCE(SUM(length(body)),0),"
           " COALESCE(SUM(raw_bytes),0), (SELECT COUNT(*) FROM dead_letter),"
           " (SELECT COUNT(*) FROM dead_letter WHERE sink='ingest' AND kind='rejected'),"
           " (SELECT COALESCE(MAX(seq),0) FROM sqlite_sequence WHERE name='batch') FROM batch");
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
    }
    RETURN_IF_ERROR(st);
    ASSIGN_OR_RETURN(std::string dropped, MetaLocked("dropped_points_total"));
    s.dropped_points_total = std::strtoll(dropped.c_str(), nullptr, 10);  // "" or junk -> 0
    if (s.recovered_from.empty()) {
      ASSIGN_OR_RETURN(s.recovered_from, MetaLocked("recovered_from"));
    }
    return s;
  }

  Result<std::vector<DeadLetter>> DeadLetters(const std::string& sink, int64_t limit) override {
    std::lock_guard lock(mu_);
    return SelectDeadLettersLocked("WHERE ?1='' OR sink=?1 ORDER BY id DESC LIMIT ?2", sink, limit);
  }

  Result<ReplayMarks> RequestReplay(const std::string& sink) override {
    std::lock_guard lock(mu_);
    // What a replay cannot send whole: truncated payloads (kMaxDeadLetterPayload, or ingest's
    // oversize prefix), and sinks without replay support (Kafka).
    static constexpr const char* kReplayable =
        "(sink='ingest' OR sink LIKE 'influx%') AND reason NOT LIKE '%[payload truncated to %'"
        " AND reason NOT LIKE 'payload of % bytes exceeds %'";
    ReplayMarks marks;
    const std::string mark = std::string("UPDATE dead_letter SET replay_requested=1 WHERE kind='rejected'"
                                         " AND replay_requested=0 AND (?1='' OR sink=?1) AND ") + kReplayable;
    Stmt up(db_, mark.c_str());
    RETURN_IF_ERROR(up.prepared());
    up.Bind(1, sink);
    RETURN_IF_ERROR(up.Run());
    marks.marked = sqlite3_changes(db_);
    const std::string left = std::string("SELECT COUNT(*) FROM dead_letter WHERE kind='rejected'"
                                         " AND replay_requested=0 AND (?1='' OR sink=?1) AND NOT (") + kReplayable + ")";
    Stmt q(db_, left.c_str());
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, sink);
    Status st;
    if (q.Step(&st)) marks.unreplayable = q.Int(0);
    RETURN_IF_ERROR(st);
    return marks;
  }

  Result<int64_t> PurgeDeadLetters(const std::string& sink) override {
    std::lock_guard lock(mu_);
    Stmt del(db_, "DELETE FROM dead_letter WHERE ?1='' OR sink=?1");
    RETURN_IF_ERROR(del.prepared());
    del.Bind(1, sink);
    RETURN_IF_ERROR(del.Run());
    return static_cast<int64_t>(sqlite3_changes(db_));
  }

  Result<std::vector<DeadLetter>> ReplayRequested(const std::string& sink, int64_t limit) override {
    std::lock_guard lock(mu_);
    return SelectDeadLettersLocked("WHERE sink=?1 AND replay_requested=1 ORDER BY id LIMIT ?2", sink, limit);
  }

  Status FinishReplay(const std::vector<int64_t>& ids, const std::vector<DeadLetter>& rejected_again) override {
    std::lock_guard lock(mu_);
    return TransactionLocked([&]() -> Status {
      Stmt del(db_, "DELETE FROM dead_letter WHERE id=?");
      RETURN_IF_ERROR(del.prepared());
      for (int64_t id : ids) {
        del.Reset();
        del.Bind(1, id);
        RETURN_IF_ERROR(del.Run());
      }
      return InsertDeadLettersLocked(rejected_again, clock_->WallNowNs());
    });
  }

  Status SetAgentState(const std::vector<std::pair<std::string, std::string>>& kv) override {
    std::lock_guard lock(mu_);
    return TransactionLocked([&]() -> Status {
      Stmt up(db_,
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

  Result<std::vector<std::pair<std::string, std::string>>> AgentState() override {
    std::lock_guard lock(mu_);
    Stmt q(db_, "SELECT key, value FROM agent_state ORDER BY key");
    RETURN_IF_ERROR(q.prepared());
    std::vector<std::pair<std::string, std::string>> out;
    Status st;
    while (q.Step(&st)) out.emplace_back(q.Text(0), q.Text(1));
    RETURN_IF_ERROR(st);
    return out;
  }

  Result<std::string> IntegrityCheck() override {
    std::lock_guard lock(mu_);
    Stmt q(db_, "PRAGMA integrity_check");
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

 private:
  struct Encoded {
    std::string body;
    std::string codec;
    int64_t raw_bytes = 0;
    std::string sources;  // zstd frame, empty when the input had none
  };

  static int64_t IncomingBytes(const std::vector<Encoded>& encoded) {
    int64_t n = 0;
    for (const auto& e : encoded) n += static_cast<int64_t>(e.body.size());
    return n;
  }

  Result<std::vector<Encoded>> EncodeLocked(const std::vector<BatchInput>& batches) {
    std::vector<Encoded> encoded(batches.size());
    for (size_t i = 0; i < batches.size(); ++i) {
      const BatchInput& in = batches[i];
      if (in.lines.empty()) continue;
      std::string raw = JoinLines(in.lines);
      encoded[i].raw_bytes = static_cast<int64_t>(raw.size());
      // A frame costs more CPU than it saves below a few lines (one 120-byte point compresses
      // to about its own size): a lone MQTT message is stored as it is.
      std::string z = raw.size() >= kMinCompressBytes ? CompressFrame(raw) : std::string();
      if (!z.empty() && z.size() < raw.size()) {
        encoded[i].body = std::move(z);
        encoded[i].codec = "zstd";
      } else {
        encoded[i].body = std::move(raw);
        encoded[i].codec = "none";
      }
      if (!in.sources.empty()) {
        int64_t covered = 0;
        for (const auto& r : in.sources) covered += r.lines;
        if (covered != static_cast<int64_t>(in.lines.size())) {
          return Status::InvalidArgument("batch sources cover " + std::to_string(covered) + " of " +
                                         std::to_string(in.lines.size()) + " lines");
        }
        std::string text = EncodeSources(in.sources);
        if (text.size() < kMinCompressBytes) {
          encoded[i].sources = std::move(text);  // plain text: never starts with zstd's magic
        } else {
          encoded[i].sources = CompressFrame(text);
          if (encoded[i].sources.empty()) return Status::Internal("zstd cannot compress batch sources");
        }
      }
    }
    return encoded;
  }

  // "" on failure.
  std::string CompressFrame(std::string_view raw) {
    std::string z(ZSTD_compressBound(raw.size()), '\0');
    size_t n = ZSTD_compressCCtx(cctx_, z.data(), z.size(), raw.data(), raw.size(), options_.config.zstd_level);
    if (ZSTD_isError(n)) return std::string();
    z.resize(n);
    return z;
  }

  Result<std::string> DecompressFrame(std::string_view frame) {
    unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (64u << 20)) {
      return Status::Corruption("zstd frame has no valid content size");
    }
    return Decompress(dctx_, "zstd", frame, static_cast<int64_t>(size));
  }

  // Applies the size bound for `encoded` about to be inserted (inside a transaction).
  Status MakeRoomLocked(const std::vector<Encoded>& encoded) {
    const int64_t incoming = IncomingBytes(encoded);
    // Until the start-up count is done the size bound cannot be applied (the age bound can).
    if (!bytes_known_ || total_bytes_ + incoming <= options_.config.max_bytes) return Status::Ok();
    if (options_.config.full_policy == QueueFullPolicy::kBackpressure) {
      return Status::ResourceExhausted("queue full (" + std::to_string(total_bytes_) + " of " +
                                       std::to_string(options_.config.max_bytes) + " bytes)");
    }
    return DropOldestLocked(total_bytes_ + incoming - options_.config.max_bytes, INT64_MIN);
  }

  Result<std::vector<int64_t>> InsertLocked(const std::vector<BatchInput>& batches,
                                            const std::vector<Encoded>& encoded, int64_t now) {
    std::vector<int64_t> seqs(batches.size(), 0);
    if (!insert_batch_) {
      insert_batch_ = std::make_unique<Stmt>(
          db_, "INSERT INTO batch(stream, created_ns, min_ts, max_ts, points, raw_bytes, codec, body, sources)"
               " VALUES(?,?,?,?,?,?,?,?,?)");
    }
    RETURN_IF_ERROR(insert_batch_->prepared());
    Stmt& ins = *insert_batch_;
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

  Result<std::vector<Batch>> ReadLocked(const std::string& sink, int64_t max_points, bool newest_first) {
    auto it = consumers_.find(sink);
    if (it == consumers_.end()) return Status::FailedPrecondition("consumer not registered: " + sink);
    ASSIGN_OR_RETURN(int64_t cursor, CursorLocked(sink));
    // Batches this sink acknowledged out of order (newest-first) are skipped.
    const std::string sql =
        std::string("SELECT seq, stream, created_ns, min_ts, max_ts, points, raw_bytes, codec, body, sources FROM batch b"
                    " WHERE stream=?1 AND seq>?2"
                    " AND NOT EXISTS (SELECT 1 FROM acked_batch a WHERE a.sink=?3 AND a.seq=b.seq) ORDER BY seq") +
        (newest_first ? " DESC" : "") + " LIMIT 10000";
    Stmt q(db_, sql.c_str());
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
      ASSIGN_OR_RETURN(std::string raw, Decompress(dctx_, q.Text(7), q.Text(8), q.Int(6)));
      ASSIGN_OR_RETURN(b.lines, SplitLines(raw));
      std::string sources = q.Text(9);
      if (!sources.empty()) {
        std::string text;
        if (IsZstdFrame(sources)) {
          ASSIGN_OR_RETURN(text, DecompressFrame(sources));
        } else {
          text = std::string(sources);
        }
        ASSIGN_OR_RETURN(b.sources, DecodeSources(text));
      }
      points += n;
      out.push_back(std::move(b));
      if (points >= max_points) break;
    }
    RETURN_IF_ERROR(st);
    return out;
  }

  // The stream of a registered consumer whose cursor may move to `seq` (never backwards).
  Result<std::string> StreamForAdvanceLocked(const std::string& sink, int64_t seq) {
    auto it = consumers_.find(sink);
    if (it == consumers_.end()) return Status::FailedPrecondition("consumer not registered: " + sink);
    ASSIGN_OR_RETURN(int64_t cursor, CursorLocked(sink));
    if (seq < cursor) {
      return Status::FailedPrecondition("cursor of " + sink + " would move back from " +
                                        std::to_string(cursor) + " to " + std::to_string(seq));
    }
    return it->second;
  }

  // Inside a transaction: the cursor and the successful attempt.
  Status AdvanceLocked(const std::string& sink, int64_t seq, const SinkAttempt& attempt, int64_t now) {
    Stmt up(db_, "UPDATE cursor SET seq=?, updated_ns=? WHERE sink=?");
    RETURN_IF_ERROR(up.prepared());
    up.Bind(1, seq).Bind(2, now).Bind(3, sink);
    RETURN_IF_ERROR(up.Run());
    return RecordAttemptLocked(sink, attempt, now, /*success=*/true);
  }

  // `where` binds ?1 = sink and ?2 = limit.
  Result<std::vector<DeadLetter>> SelectDeadLettersLocked(const std::string& where, const std::string& sink,
                                                          int64_t limit) {
    const std::string sql = "SELECT id, sink, kind, reason, topic, payload, created_ns FROM dead_letter " + where;
    Stmt q(db_, sql.c_str());
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

  bool HasTable(const char* name) {
    Stmt q(db_, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?");
    if (!q.prepared().ok()) return false;
    q.Bind(1, std::string_view(name));
    Status st;
    return q.Step(&st);
  }

  // Runs `body` as one BEGIN IMMEDIATE ... COMMIT, rolled back on any error: every mutation is
  // all or nothing, also under SIGKILL.
  Status TransactionLocked(const std::function<Status()>& body) {
    // Deletes inside the body adjust total_bytes_ as they go; a rollback restores it (no rescan,
    // which would read the whole file on every failed commit of a full or failing disk).
    const int64_t bytes_before = total_bytes_;
    RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
    Status st = body();
    if (st.ok()) st = Exec(db_, "COMMIT");
    if (!st.ok()) {
      if (!sqlite3_get_autocommit(db_)) (void)Exec(db_, "ROLLBACK");
      total_bytes_ = bytes_before;
    }
    return st;
  }

  Result<int64_t> CursorLocked(const std::string& sink) {
    Stmt q(db_, "SELECT seq FROM cursor WHERE sink=?");
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, sink);
    Status st;
    if (q.Step(&st)) return q.Int(0);
    RETURN_IF_ERROR(st);
    return Status::NotFound("no cursor for " + sink);
  }

  Result<std::string> MetaLocked(const std::string& key) {
    Stmt q(db_, "SELECT value FROM meta WHERE key=?");
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, key);
    Status st;
    if (q.Step(&st)) return q.Text(0);
    RETURN_IF_ERROR(st);
    return std::string();
  }

  Status RecordAttemptLocked(const std::string& sink, const SinkAttempt& a, int64_t now, bool success) {
    Stmt up(db_,
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
        .Bind(2, a.state)
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

  Status InsertDeadLettersLocked(const std::vector<DeadLetter>& dead_letters, int64_t now) {
    if (dead_letters.empty()) return Status::Ok();
    Stmt ins(db_,
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
      ins.Bind(1, d.sink).Bind(2, std::string_view(KindName(d.kind))).Bind(3, reason).Bind(4, d.topic)
          .BindBlob(5, payload).Bind(6, d.created_ns ? d.created_ns : now);
      RETURN_IF_ERROR(ins.Run());
    }
    Stmt trim(db_,
              "DELETE FROM dead_letter WHERE id <= (SELECT COALESCE(MAX(id),0) FROM dead_letter) - ?");
    RETURN_IF_ERROR(trim.prepared());
    trim.Bind(1, kMaxDeadLetters);
    return trim.Run();
  }

  // Batches of `stream` that every registered consumer of it has passed.
  Status CollectGarbageLocked(const std::string& stream) {
    int64_t min_cursor = INT64_MAX;
    for (const auto& [sink, s] : consumers_) {
      if (s != stream) continue;
      ASSIGN_OR_RETURN(int64_t c, CursorLocked(sink));
      min_cursor = std::min(min_cursor, c);
    }
    if (min_cursor == INT64_MAX) return Status::Ok();
    // Keeps total_bytes_ exact without rescanning the table (this runs on every Ack).
    Stmt bytes(db_, "SELECT COALESCE(SUM(length(body)),0) FROM batch WHERE stream=? AND seq<=?");
    RETURN_IF_ERROR(bytes.prepared());
    bytes.Bind(1, stream).Bind(2, min_cursor);
    Status st;
    const int64_t freed = bytes.Step(&st) ? bytes.Int(0) : 0;
    RETURN_IF_ERROR(st);
    Stmt del(db_, "DELETE FROM batch WHERE stream=? AND seq<=?");
    RETURN_IF_ERROR(del.prepared());
    del.Bind(1, stream).Bind(2, min_cursor);
    RETURN_IF_ERROR(del.Run());
    total_bytes_ -= freed;
    return Status::Ok();
  }

  // Deletes one batch as a policy drop: every cursor of its stream that had not passed it
  // counts its points as dropped.
  Status DropBatchLocked(int64_t seq, const std::string& stream, int64_t points, int64_t bytes) {
    Stmt count(db_,
               "UPDATE sink_status SET dropped_points = dropped_points + ?1"
               " WHERE sink IN (SELECT sink FROM cursor WHERE stream=?2 AND seq<?3)"
               " AND sink NOT IN (SELECT sink FROM acked_batch WHERE seq=?3)");
    RETURN_IF_ERROR(count.prepared());
    count.Bind(1, points).Bind(2, stream).Bind(3, seq);
    RETURN_IF_ERROR(count.Run());
    Stmt del(db_, "DELETE FROM batch WHERE seq=?");
    RETURN_IF_ERROR(del.prepared());
    del.Bind(1, seq);
    RETURN_IF_ERROR(del.Run());
    Stmt meta(db_,
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
  Status DropOldestLocked(int64_t bytes_to_free, int64_t created_before) {
    Stmt q(db_, "SELECT seq, stream, points, length(body), created_ns FROM batch ORDER BY seq LIMIT 256");
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

  // Background start-up check of a large file: byte count, then quick_check, on check_db_'s
  // snapshot. A failure leaves a marker so the next open checks first and moves the file aside.
  void RunStartupCheck() {
    const int64_t started = clock_->SteadyNowNs();
    sqlite3* db = check_db_;  // only this thread uses it; check_mu_ guards the pointer for interrupt
    int64_t bytes = 0;
    Status st;
    if (auto counted = StoredBodyBytes(db); counted.ok()) {
      bytes = *counted;
    } else {
      st = counted.status();
    }
    if (st.ok()) st = CheckDb(db);
    (void)Exec(db, "COMMIT");
    {
      std::lock_guard lock(check_mu_);
      check_db_ = nullptr;
    }
    sqlite3_close_v2(db);
    const double seconds = static_cast<double>(clock_->SteadyNowNs() - started) / kNsPerSec;
    if (st.ok()) {
      {
        std::lock_guard lock(mu_);
        total_bytes_ += bytes;
        bytes_known_ = true;
      }
      LOG_INFO("queue") << "start-up check passed in " << seconds << " s: " << bytes << " bytes of batches";
    } else if (st.code() == StatusCode::kCorruption) {
      LOG_ERROR("queue") << "start-up check failed: " << st.message() << "; the next start moves the file aside";
      MarkQueueForCheck(options_.config.path);
    } else {
      LOG_WARN("queue") << "start-up check did not finish: " << st.ToString();
      st = Status::Ok();  // interrupted by shutdown, or an I/O error the writer will meet too
    }
    std::lock_guard lock(check_mu_);
    check_result_ = st;
    check_running_ = false;
    check_cv_.notify_all();
  }

  std::mutex mu_;
  sqlite3* db_;
  QueueOpenOptions options_;
  const Clock* clock_;
  std::string recovered_from_;
  std::map<std::string, std::string> consumers_;  // sink -> stream, registered this run
  int64_t total_bytes_ = 0;
  bool bytes_known_ = true;  // false until the background start-up count is added in
  int64_t dropped_total_in_call_ = 0;
  std::mutex check_mu_;
  std::condition_variable check_cv_;
  sqlite3* check_db_ = nullptr;  // guarded by check_mu_ (for sqlite3_interrupt)
  bool check_running_ = false;   // guarded by check_mu_
  Status check_result_;          // guarded by check_mu_
  std::thread check_thread_;
  // Reused across calls: creating a zstd context per batch costs more than compressing one line.
  ZSTD_CCtx* cctx_ = ZSTD_createCCtx();
  ZSTD_DCtx* dctx_ = ZSTD_createDCtx();
  std::unique_ptr<Stmt> insert_batch_;  // the hot statement, prepared once
};

Status CheckDb(sqlite3* db) {
  Stmt q(db, "PRAGMA quick_check");
  RETURN_IF_ERROR(q.prepared());
  Status st;
  if (q.Step(&st)) {
    std::string result = q.Text(0);
    if (result != "ok") return Status::Corruption("quick_check: " + result);
    return Status::Ok();
  }
  if (st.ok()) return Status::Corruption("quick_check returned nothing");
  return st;
}

Result<sqlite3*> OpenDb(const std::string& path, bool read_only) {
  sqlite3* db = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;  // SqliteQueue serializes with its own mutex
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    if (read_only && (rc & 0xff) == SQLITE_CANTOPEN) return Status::NotFound("cannot open " + path + ": " + msg);
    return Status::IoError("cannot open " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

Status Configure(sqlite3* db, const QueueConfig& config) {
  RETURN_IF_ERROR(Exec(db, "PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(Exec(db, config.sync == SyncMode::kFull ? "PRAGMA synchronous=FULL"
                                                           : "PRAGMA synchronous=NORMAL"));
  RETURN_IF_ERROR(Exec(db, kSchema));
  for (auto [table, column] : kAddedColumns) {
    if (HasColumn(db, table, std::string_view(column, std::strchr(column, ' ') - column))) continue;
    std::string alter = "ALTER TABLE " + std::string(table) + " ADD COLUMN " + column;
    RETURN_IF_ERROR(Exec(db, alter.c_str()));
  }
  std::string bump = "UPDATE meta SET value='" + std::to_string(kSchemaVersion) + "' WHERE key='schema_version'";
  RETURN_IF_ERROR(Exec(db, bump.c_str()));
  std::string version = "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version','" +
                        std::to_string(kSchemaVersion) + "')";
  return Exec(db, version.c_str());
}

}  // namespace

void MarkQueueForCheck(const std::string& queue_path) {
  int fd = ::open(CheckFailedMarker(queue_path).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
}

Result<std::unique_ptr<Queue>> OpenSqliteQueue(const QueueOpenOptions& options) {
  const std::string& path = options.config.path;
  if (options.read_only) {
    if (::access(path.c_str(), F_OK) != 0) return Status::NotFound("no queue file at " + path);
    ASSIGN_OR_RETURN(sqlite3 * db, OpenDb(path, true));
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
    ASSIGN_OR_RETURN(sqlite3 * db, OpenDb(path, false));
    Status st = check_in_background && attempt == 0 ? Status::Ok() : CheckDb(db);
    if (st.ok()) st = Configure(db, options.config);
    if (st.ok()) {
      if (!recovered_from.empty()) {
        std::string sql = "INSERT OR REPLACE INTO meta(key, value) VALUES('recovered_from', ?)";
        Stmt ins(db, sql.c_str());
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
    LOG_ERROR("queue") << "queue file failed its check (" << st.message() << "); moved aside to "
                       << recovered_from << ", starting a new one";
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::string from = path + suffix;
      std::string to = recovered_from + suffix;
      if (::access(from.c_str(), F_OK) == 0 && ::rename(from.c_str(), to.c_str()) != 0) {
        return Status::IoError("cannot move corrupt queue aside: " + std::string(std::strerror(errno)));
      }
    }
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Status::IoError("cannot create " + path + ": " + std::strerror(errno));
    ::close(fd);
  }
  return Status::Internal("unreachable");
}

}  // namespace edgeline
