#include "common/backoff.h"

#include <algorithm>
#include <random>

namespace edgeline {

Backoff::Backoff(int64_t min_ns, int64_t max_ns, std::function<double()> random)
    : min_ns_(std::max<int64_t>(1, min_ns)),
      max_ns_(std::max(max_ns, std::max<int64_t>(1, min_ns))),
      random_(random ? std::move(random) : DefaultRandom()) {}

std::function<double()> Backoff::SeededRandom(uint64_t seed) {
  return
      [engine = std::mt19937_64(seed)]() mutable { return std::uniform_real_distribution<double>(0.0, 1.0)(engine); };
}

std::function<double()> Backoff::DefaultRandom() {
  std::random_device device;
  return SeededRandom((static_cast<uint64_t>(device()) << 32) ^ device());
}

int64_t Backoff::CapNs(int attempt) const {
  int64_t cap = min_ns_;
  // Doubling step by step stops at max, so it cannot overflow however large attempt gets.
  for (int i = 0; i < attempt && cap < max_ns_; ++i) cap = cap > max_ns_ / 2 ? max_ns_ : cap * 2;
  return std::min(cap, max_ns_);
}

int64_t Backoff::DelayNs(int attempt) {
  const int64_t cap = CapNs(attempt);
  const double r = std::clamp(random_(), 0.0, 1.0);
  return std::min(cap - 1, static_cast<int64_t>(r * static_cast<double>(cap)));
}

}  // namespace edgeline
