// Checking the queue file for damage: PRAGMA quick_check, the body byte count the size bound
// needs, moving a damaged file aside (kept, never deleted) and the <path>.check-failed marker,
// and BackgroundCheck, which runs the start-up check of a large file on a thread and read-only
// connection of its own. The free functions keep no state; BackgroundCheck is thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/status.h"

struct sqlite3;

namespace edgeline {

// OK, Corruption with quick_check's first finding, or the error that stopped it.
Status QuickCheck(sqlite3* db);

// What the size bound counts (StoredBytesSql over every batch row). Reads the whole table.
Result<int64_t> CountedBytes(sqlite3* db);

// The marker that makes the next open check the file first (MarkQueueForCheck creates it).
std::string CheckFailedMarker(const std::string& queue_path);

// Renames <path>[-wal|-shm] to <to>[-wal|-shm] and creates an empty <path> (mode 0600).
Status MoveQueueAside(const std::string& path, const std::string& to);

class BackgroundCheck {
 public:
  // Opens a read-only snapshot of `queue_path` on the calling thread, so the check sees the
  // file as it is before the caller's next write, then starts the thread: the byte count, then
  // quick_check. When both pass, `on_counted(bytes)` is called on the check's thread; when
  // quick_check finds damage, the marker is left (MarkQueueForCheck).
  static Result<std::unique_ptr<BackgroundCheck>> Start(const std::string& queue_path, const Clock* clock,
                                                        std::function<void(int64_t)> on_counted);
  // Interrupts the check if it still runs and joins its thread.
  ~BackgroundCheck();
  BackgroundCheck(const BackgroundCheck&) = delete;
  BackgroundCheck& operator=(const BackgroundCheck&) = delete;

  // Corruption once the check found damage; OK when it passed, could not finish (interrupted,
  // I/O error) or still runs. `wait` blocks until it is done.
  Status Outcome(bool wait);

 private:
  BackgroundCheck(sqlite3* db, std::string queue_path, const Clock* clock, std::function<void(int64_t)> on_counted);
  void Run();

  const std::string queue_path_;
  const Clock* const clock_;
  const std::function<void(int64_t)> on_counted_;
  std::mutex mu_;
  std::condition_variable done_;
  sqlite3* db_;          // used by the thread only; guarded by mu_ for sqlite3_interrupt
  bool running_ = true;  // guarded by mu_
  Status result_;        // guarded by mu_
  std::thread thread_;
};

}  // namespace edgeline
