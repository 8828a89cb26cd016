// Clock: the only source of time in edgeline. Wall time (timestamps written to InfluxDB,
// status "last success") and steady time (timers, backoff, group-commit windows) are kept
// apart so a wall-clock jump never stretches a backoff. SystemClock is thread-safe; tests use
// tests/support/fake_clock.h.
#pragma once

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
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t SteadyNowNs() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  static SystemClock& Instance() {
    static SystemClock clock;
    return clock;
  }
};

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kNsPerSec = 1'000'000'000;

}  // namespace edgeline
