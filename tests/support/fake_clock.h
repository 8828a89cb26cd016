// FakeClock: a Clock for tests. Wall and steady time move only when the test advances them;
// nothing sleeps. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/clock.h"

namespace edgeline {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t wall_ns = 1764000000000000000, int64_t steady_ns = 1'000'000'000)
      : wall_ns_(wall_ns), steady_ns_(steady_ns) {}
  int64_t WallNowNs() const override { return wall_ns_.load(); }
  int64_t SteadyNowNs() const override { return steady_ns_.load(); }
  // Both clocks move forward by `ns`.
  void AdvanceNs(int64_t ns) {
    wall_ns_ += ns;
    steady_ns_ += ns;
  }
  // A wall-clock step (NTP): steady time is unaffected.
  void SetWallNs(int64_t ns) { wall_ns_ = ns; }

 private:
  std::atomic<int64_t> wall_ns_;
  std::atomic<int64_t> steady_ns_;
};

}  // namespace edgeline
