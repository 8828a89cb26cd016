// Clock: the only source of time in edgeline. Wall time (timestamps written to InfluxDB,
// status "last success") and steady time (timers, backoff, group-commit windows) are kept
// apart so a wall-clock jump never stretches a backoff. SystemClock is thread-safe;
// FakeClock is for tests (thread-safe, advanced explicitly, never sleeps).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace edgeline {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t WallNowNs() const = 0;    // ns since the Unix epoch
  virtual int64_t SteadyNowNs() const = 0;  // monotonic ns, arbitrary origin
};

class SystemClock final : public Clock {
 public:
  int64_t WallNowNs() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t SteadyNowNs() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  static SystemClock& Instance() {
    static SystemClock clock;
    return clock;
  }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t wall_ns = 1764000000000000000, int64_t steady_ns = 1'000'000'000)
      : wall_ns_(wall_ns), steady_ns_(steady_ns) {}
  int64_t WallNowNs() const override { return wall_ns_.load(); }
  int64_t SteadyNowNs() const override { return steady_ns_.load(); }
  void AdvanceNs(int64_t ns) {
    wall_ns_ += ns;
    steady_ns_ += ns;
  }
  void SetWallNs(int64_t ns) { wall_ns_ = ns; }

 private:
  std::atomic<int64_t> wall_ns_;
  std::atomic<int64_t> steady_ns_;
};

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kNsPerSec = 1'000'000'000;

}  // namespace edgeline
