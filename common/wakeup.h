// Wakeup: the wait between a worker's steps (sinks). Notify() ends an interruptible wait early,
// and one that arrives while the worker is busy ends its next wait at once; a wait after a
// failure is not interruptible, so new data cannot defeat a backoff. NotifyAlways() ends any
// wait (a delivery report the worker must act on). Thread-safe: Notify from any thread, Wait
// from the worker's.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>

namespace edgeline {

class Wakeup {
 public:
  void Notify() {
    {
      std::lock_guard lock(mu_);
      notified_ = true;
    }
    cv_.notify_all();
  }

  void NotifyAlways() {
    {
      std::lock_guard lock(mu_);
      forced_ = true;
    }
    cv_.notify_all();
  }

  // Waits up to `ns` (nothing when <= 0) or until `stop`; returns early on a NotifyAlways, or on
  // a Notify when `interruptible`. Clears the notifications either way.
  void Wait(std::stop_token stop, int64_t ns, bool interruptible) {
    std::unique_lock lock(mu_);
    if (ns > 0) {
      cv_.wait_for(lock, stop, std::chrono::nanoseconds(ns), [&] { return forced_ || (interruptible && notified_); });
    }
    notified_ = false;
    forced_ = false;
  }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool notified_ = false;
  bool forced_ = false;
};

}  // namespace edgeline
