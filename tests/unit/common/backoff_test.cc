// Tests for common/backoff.h: caps, bounds, determinism with an injected random source.
#include "common/backoff.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "common/clock.h"

namespace edgeline {
namespace {

TEST(BackoffTest, CapDoublesUpToMax) {
  Backoff b(kNsPerSec, 60 * kNsPerSec, Backoff::SeededRandom(1));
  EXPECT_EQ(b.CapNs(0), kNsPerSec);
  EXPECT_EQ(b.CapNs(1), 2 * kNsPerSec);
  EXPECT_EQ(b.CapNs(5), 32 * kNsPerSec);
  EXPECT_EQ(b.CapNs(6), 60 * kNsPerSec);
  EXPECT_EQ(b.CapNs(1'000'000), 60 * kNsPerSec);
}

TEST(BackoffTest, CapNeverOverflows) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  Backoff b(3, max, Backoff::SeededRandom(1));
  int64_t previous = 0;
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int64_t cap = b.CapNs(attempt);
    EXPECT_GE(cap, previous);
    EXPECT_GT(cap, 0);
    previous = cap;
  }
  EXPECT_EQ(previous, max);
}

TEST(BackoffTest, DelayWithinFullJitterBounds) {
  Backoff b(kNsPerSec, 300 * kNsPerSec, Backoff::SeededRandom(42));
  for (int attempt = 0; attempt < 20; ++attempt) {
    for (int i = 0; i < 200; ++i) {
      const int64_t d = b.DelayNs(attempt);
      EXPECT_GE(d, 0);
      EXPECT_LT(d, b.CapNs(attempt));
    }
  }
}

TEST(BackoffTest, JitterSpreadsOverTheWholeRange) {
  Backoff b(kNsPerSec, 300 * kNsPerSec, Backoff::SeededRandom(7));
  int low = 0, high = 0;
  for (int i = 0; i < 1000; ++i) {
    const int64_t d = b.DelayNs(3);  // cap 8 s
    if (d < 2 * kNsPerSec) ++low;
    if (d > 6 * kNsPerSec) ++high;
  }
  EXPECT_GT(low, 150);
  EXPECT_GT(high, 150);
}

TEST(BackoffTest, SameSeedSameSequence) {
  Backoff a(kNsPerSec, 60 * kNsPerSec, Backoff::SeededRandom(99));
  Backoff b(kNsPerSec, 60 * kNsPerSec, Backoff::SeededRandom(99));
  Backoff c(kNsPerSec, 60 * kNsPerSec, Backoff::SeededRandom(100));
  std::vector<int64_t> sa, sb, sc;
  for (int i = 0; i < 10; ++i) {
    sa.push_back(a.DelayNs(i));
    sb.push_back(b.DelayNs(i));
    sc.push_back(c.DelayNs(i));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(BackoffTest, InjectedRandomMapsLinearly) {
  double r = 0.5;
  Backoff b(kNsPerSec, 60 * kNsPerSec, [&] { return r; });
  EXPECT_EQ(b.DelayNs(2), 2 * kNsPerSec);
  r = 0.0;
  EXPECT_EQ(b.DelayNs(2), 0);
  r = 0.9999999999999;
  EXPECT_EQ(b.DelayNs(2), 4 * kNsPerSec - 1);
  r = 1.5;  // a misbehaving source is clamped below the cap
  EXPECT_EQ(b.DelayNs(10), 60 * kNsPerSec - 1);
}

TEST(BackoffTest, InvalidBoundsAreRepaired) {
  Backoff b(0, -5, Backoff::SeededRandom(1));
  EXPECT_EQ(b.min_ns(), 1);
  EXPECT_EQ(b.max_ns(), 1);
  EXPECT_EQ(b.DelayNs(3), 0);
}

}  // namespace
}  // namespace edgeline
