// Exponential backoff with full jitter (delay = uniform(0, min(max, min * 2^attempt))), as in
// the AWS architecture blog "Exponential Backoff And Jitter". The random source is injected so
// tests are deterministic. Not thread-safe (the random source has state): one per sink.
#pragma once

#include <cstdint>
#include <functional>

namespace edgeline {

class Backoff {
 public:
  // `random` returns values in [0, 1). REQUIRES: 0 < min_ns <= max_ns.
  Backoff(int64_t min_ns, int64_t max_ns, std::function<double()> random);

  // A random source backed by std::mt19937_64 seeded with `seed`.
  static std::function<double()> SeededRandom(uint64_t seed);
  // Seeded from std::random_device: for production, so sinks of many devices spread out.
  static std::function<double()> DefaultRandom();

  // The cap for `attempt` (0 for the first retry): min(max, min * 2^attempt).
  int64_t CapNs(int attempt) const;
  // A delay in [0, CapNs(attempt)).
  int64_t DelayNs(int attempt);

  int64_t min_ns() const { return min_ns_; }
  int64_t max_ns() const { return max_ns_; }

 private:
  int64_t min_ns_;
  int64_t max_ns_;
  std::function<double()> random_;
};

}  // namespace edgeline
