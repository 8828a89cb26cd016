// Test fixtures for code that works on a queue file: TempDir is a fresh directory per test
// (named for the test and the process, under gtest's TempDir, removed when destroyed);
// OpenTestQueue opens a SQLite queue in it. Header-only; not thread-safe (one per test).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "storage/queue.h"

namespace edgeline {

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "no_test";
    for (char& c : name) {
      if (c == '/') c = '_';  // parameterized test names
    }
    path_ = std::filesystem::path(::testing::TempDir()) / (name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The path of `name` inside the directory.
  std::string File(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Opens (creating) the queue at `path` with `config` (its path is replaced), on `clock`.
// Durability is not what unit tests check, so sync defaults to normal. Fails the test on error.
inline std::unique_ptr<Queue> OpenTestQueue(
    const std::string& path, const Clock* clock, QueueConfig config = [] {
      QueueConfig c;
      c.sync = SyncMode::kNormal;
      return c;
    }()) {
  QueueOpenOptions options;
  options.config = std::move(config);
  options.config.path = path;
  options.clock = clock;
  auto queue = OpenSqliteQueue(options);
  EXPECT_TRUE(queue.ok()) << queue.status().ToString();
  return queue.ok() ? std::move(queue).value() : nullptr;
}

}  // namespace edgeline
