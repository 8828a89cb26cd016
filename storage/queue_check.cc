// Checking the queue file for damage (queue_check.h).
#include "storage/queue_check.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "storage/batch_codec.h"
#include "storage/sqlite_statement.h"

namespace edgeline {

Status QuickCheck(sqlite3* db) {
  SqliteStatement q(db, "PRAGMA quick_check");
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

Result<int64_t> CountedBytes(sqlite3* db) {
  const std::string sql = "SELECT COALESCE(SUM(" + StoredBytesSql() + "),0) FROM batch";
  SqliteStatement sum(db, sql.c_str());
  RETURN_IF_ERROR(sum.prepared());
  Status st;
  const int64_t bytes = sum.Step(&st) ? sum.Int(0) : 0;
  RETURN_IF_ERROR(st);
  return bytes;
}

std::string CheckFailedMarker(const std::string& queue_path) { return queue_path + ".check-failed"; }

void MarkQueueForCheck(const std::string& queue_path) {
  int fd = ::open(CheckFailedMarker(queue_path).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
}

Status MoveQueueAside(const std::string& path, const std::string& to) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string from_file = path + suffix;
    std::string to_file = to + suffix;
    if (::access(from_file.c_str(), F_OK) == 0 && ::rename(from_file.c_str(), to_file.c_str()) != 0) {
      return Status::IoError("cannot move corrupt queue aside: " + std::string(std::strerror(errno)));
    }
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("cannot create " + path + ": " + std::strerror(errno));
  ::close(fd);
  return Status::Ok();
}

Result<std::unique_ptr<BackgroundCheck>> BackgroundCheck::Start(const std::string& queue_path, const Clock* clock,
                                                                std::function<void(int64_t)> on_counted) {
  ASSIGN_OR_RETURN(sqlite3 * db, OpenSqliteDb(queue_path, /*read_only=*/true));
  // A scan reads every page once: a small cache keeps the agent's memory flat.
  Status st = SqliteExec(db, "PRAGMA cache_size=-256");
  if (st.ok()) st = SqliteExec(db, "BEGIN");
  if (st.ok()) st = SqliteExec(db, "SELECT COUNT(*) FROM meta");  // a read starts the snapshot
  if (!st.ok()) {
    sqlite3_close_v2(db);
    return st;
  }
  std::unique_ptr<BackgroundCheck> check(new BackgroundCheck(db, queue_path, clock, std::move(on_counted)));
  check->thread_ = std::thread([c = check.get()] { c->Run(); });
  return check;
}

BackgroundCheck::BackgroundCheck(sqlite3* db, std::string queue_path, const Clock* clock,
                                 std::function<void(int64_t)> on_counted)
    : queue_path_(std::move(queue_path)), clock_(clock), on_counted_(std::move(on_counted)), db_(db) {}

BackgroundCheck::~BackgroundCheck() {
  {
    std::lock_guard lock(mu_);
    if (db_) sqlite3_interrupt(db_);
  }
  if (thread_.joinable()) thread_.join();
}

Status BackgroundCheck::Outcome(bool wait) {
  std::unique_lock lock(mu_);
  if (wait) done_.wait(lock, [&] { return !running_; });
  return result_;
}

void BackgroundCheck::Run() {
  const int64_t started = clock_->SteadyNowNs();
  sqlite3* db = db_;  // only this thread uses it; mu_ guards the pointer for interrupt
  int64_t bytes = 0;
  Status st;
  if (auto counted = CountedBytes(db); counted.ok()) {
    bytes = *counted;
  } else {
    st = counted.status();
  }
  if (st.ok()) st = QuickCheck(db);
  (void)SqliteExec(db, "COMMIT");
  {
    std::lock_guard lock(mu_);
    db_ = nullptr;
  }
  sqlite3_close_v2(db);
  const double seconds = static_cast<double>(clock_->SteadyNowNs() - started) / kNsPerSec;
  if (st.ok()) {
    on_counted_(bytes);
    LOG_INFO("queue") << "start-up check passed in " << seconds << " s: " << bytes << " bytes of batches";
  } else if (st.code() == StatusCode::kCorruption) {
    LOG_ERROR("queue") << "start-up check failed: " << st.message() << "; the next start moves the file aside";
    MarkQueueForCheck(queue_path_);
  } else {
    LOG_WARN("queue") << "start-up check did not finish: " << st.ToString();
    st = Status::Ok();  // interrupted by shutdown, or an I/O error the writer will meet too
  }
  std::lock_guard lock(mu_);
  result_ = st;
  running_ = false;
  done_.notify_all();
}

}  // namespace edgeline
