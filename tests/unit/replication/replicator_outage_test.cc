// Outage tests for replication/replicator.h in fake time: a Replicator over the REAL SQLite
// queue and a scripted transport rides out a 1-hour InfluxDB outage (refused connections or
// 503 without Retry-After) while points keep arriving, then delivers every one of them. Also the
// backoff growth within full-jitter bounds and an exact 120 s Retry-After wait. No sleeps: the
// driver below waits the delay Step returns by advancing a FakeClock, as Replicator::Run would.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <deque>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "replication/http_transport.h"
#include "replication/influx_writer.h"
#include "replication/replicator.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

constexpr int64_t kNsPerMinute = 60 * kNsPerSec;
constexpr int64_t kNsPerHour = 60 * kNsPerMinute;
constexpr int64_t kRetryMinNs = kNsPerSec;
constexpr int64_t kRetryMaxNs = 5 * kNsPerMinute;
constexpr int64_t kFailureFloorNs = 10 * kNsPerMs;  // Replicator never returns less after a failure

enum class Failure { kRefused, k503 };

std::string FailureName(Failure f) { return f == Failure::kRefused ? "refused" : "503"; }

// The InfluxDB side: down (refused or 503 without Retry-After) while the fake steady time is
// before `down_until_ns`; `script` answers first when not empty; otherwise 204, storing lines.
class OutageTransport final : public HttpTransport {
 public:
  explicit OutageTransport(const FakeClock* clock) : clock_(clock) {}

  Result<HttpResponse> Send(const HttpRequest& request) override {
    const int64_t now = clock_->SteadyNowNs();
    request_times.push_back(now);
    HttpResponse response;
    if (!script.empty()) {
      response = script.front();
      script.pop_front();
      if (response.status == 0) return Status::Unavailable("http: Connection refused");
      if (response.status / 100 != 2) return response;
    } else if (now < down_until_ns) {
      if (failure == Failure::kRefused) return Status::Unavailable("http: Connection refused");
      response.status = 503;
      response.body = R"({"error":"service unavailable"})";
      return response;
    } else {
      response.status = 204;
    }
    size_t start = 0;
    while (start < request.body.size()) {
      size_t end = request.body.find('\n', start);
      if (end == std::string::npos) end = request.body.size();
      delivered.emplace_back(request.body, start, end - start);
      start = end + 1;
    }
    return response;
  }

  int RequestsBefore(int64_t steady_ns) const {
    return static_cast<int>(
        std::count_if(request_times.begin(), request_times.end(), [&](int64_t t) { return t < steady_ns; }));
  }

  Failure failure = Failure::kRefused;
  int64_t down_until_ns = 0;
  std::deque<HttpResponse> script;
  std::vector<int64_t> request_times;  // fake steady time of each request
  std::vector<std::string> delivered;  // every line of every 2xx request, in order

 private:
  const FakeClock* clock_;
};

class OutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue_ = OpenTestQueue(dir_.File("queue.db"), &clock_);
    ASSERT_NE(queue_, nullptr);
    config_.api = InfluxApi::kV1;
    config_.database = "kafka";
    config_.gzip = false;  // the fake server splits the body into lines
  }
  void TearDown() override {
    replicator_.reset();
    queue_.reset();
  }

  void Make(uint64_t seed, bool newest_first = false) {
    writer_ = std::make_unique<InfluxWriter>(config_, &transport_, &clock_);
    ReplicatorOptions options;
    options.batch_points = 5000;
    options.retry_min_ns = kRetryMinNs;
    options.retry_max_ns = kRetryMaxNs;
    options.idle_ns = kNsPerSec;
    options.random = Backoff::SeededRandom(seed);
    options.newest_first = newest_first;
    replicator_ =
        std::make_unique<Replicator>("influx", std::string(kRawStream), queue_.get(), writer_.get(), &clock_, options);
    ASSERT_TRUE(replicator_->Start().ok());
  }

  // Appends `n` new unique points; returns the batch's seq.
  int64_t Append(int n) {
    BatchInput in;
    for (int i = 0; i < n; ++i, ++next_point_) {
      in.lines.push_back("outage,src=unit seq=" + std::to_string(next_point_) + "i " +
                         std::to_string(clock_.WallNowNs() + i));
      appended_.push_back(in.lines.back());
    }
    in.min_ts_ns = clock_.WallNowNs();
    in.max_ts_ns = clock_.WallNowNs() + n;
    auto seqs = queue_->Append({in}, {});
    EXPECT_TRUE(seqs.ok()) << seqs.status().ToString();
    last_seq_ = seqs.ok() ? seqs->front() : last_seq_;
    return last_seq_;
  }

  SinkStatus Sink() {
    auto statuses = queue_->SinkStatuses();
    EXPECT_TRUE(statuses.ok());
    if (statuses.ok()) {
      for (const SinkStatus& s : *statuses) {
        if (s.sink == "influx") return s;
      }
    }
    ADD_FAILURE() << "no sink status";
    return {};
  }

  // Waits `delay_ns` of fake time the way Replicator::Run does after Step, calling `tick` at
  // every multiple of `tick_ns` passed on the way (ingest arriving meanwhile). A retry wait is
  // not cut short by new data, so the whole delay is always waited; an idle wait (1 s) could
  // end at Notify, which changes nothing at this granularity.
  void Wait(int64_t delay_ns, int64_t tick_ns, const std::function<void()>& tick) {
    const int64_t wake = clock_.SteadyNowNs() + delay_ns;
    while (clock_.SteadyNowNs() < wake) {
      const int64_t now = clock_.SteadyNowNs();
      const int64_t next_tick = (now / tick_ns + 1) * tick_ns;
      clock_.AdvanceNs(std::min(wake, next_tick) - now);
      if (clock_.SteadyNowNs() % tick_ns == 0) tick();
    }
  }

  // Lines appended but never delivered.
  std::vector<std::string> Lost() const {
    std::set<std::string> delivered(transport_.delivered.begin(), transport_.delivered.end());
    std::vector<std::string> lost;
    for (const std::string& line : appended_) {
      if (!delivered.count(line)) lost.push_back(line);
    }
    return lost;
  }

  TempDir dir_;
  FakeClock clock_{1764000000000000000, 0};  // steady starts at 0: tick arithmetic stays simple
  InfluxConfig config_;
  OutageTransport transport_{&clock_};
  std::unique_ptr<Queue> queue_;
  std::unique_ptr<InfluxWriter> writer_;
  std::unique_ptr<Replicator> replicator_;
  std::vector<std::string> appended_;
  int64_t next_point_ = 0;
  int64_t last_seq_ = 0;
};

// min(cap, base * 2^attempt), computed independently of Backoff.
int64_t JitterCeilingNs(int attempt) {
  int64_t ceiling = kRetryMinNs;
  for (int i = 0; i < attempt && ceiling < kRetryMaxNs; ++i) ceiling *= 2;
  return std::min(ceiling, kRetryMaxNs);
}

struct OutageCase {
  Failure failure;
  uint64_t seed;
  bool newest_first = false;  // EDGELINE_REPLAY_ORDER
};

class OneHourOutageTest : public OutageTest, public ::testing::WithParamInterface<OutageCase> {};

// A 1-hour outage with 1000 new points every minute, then 10 more minutes of live data; in
// both replay orders (EDGELINE_REPLAY_ORDER), whose cursor and GC must end up the same.
//
// Bound on the requests made while InfluxDB is down (RETRY_MIN 1 s, RETRY_MAX 300 s, full
// jitter: retry n waits uniform[0, min(300 s, 2^n s))):
// - at least 20: each wait is shorter than its ceiling, and the first 19 ceilings sum to
//   1+2+...+256 + 10*300 = 3511 s < 3600 s, so a 20th request always falls inside the hour.
//   Fewer would mean the sink gave up or stalled.
// - at most 50: the doubling phase (9 retries) takes about 255 s on average, then retries come
//   every 150 s on average (sd 87 s): about 9 + 3345/150 = 31 requests, sd about 3. 50 is
//   more than 5 sd above; a hot loop would make thousands.
TEST_P(OneHourOutageTest, LosesNothingAndMakesFewRequests) {
  const OutageCase c = GetParam();
  Make(c.seed, c.newest_first);
  constexpr int kPointsPerMinute = 1000;
  constexpr int kMinutes = 70;
  const int64_t outage_end = kNsPerHour;
  transport_.failure = c.failure;
  transport_.down_until_ns = outage_end;

  int minutes_appended = 0;
  SinkStatus at_outage_end;  // what `edgeline status` shows as the hour ends
  bool captured = false;
  int64_t backlog_seq = 0;  // the last batch appended during the outage
  auto tick = [&] {
    if (minutes_appended < kMinutes) {
      Append(kPointsPerMinute);
      ++minutes_appended;
    }
    if (clock_.SteadyNowNs() == outage_end) {
      at_outage_end = Sink();
      captured = true;
      backlog_seq = last_seq_;
    }
  };
  tick();  // minute 0

  int steps_in_outage = 0;
  int64_t max_failure_delay = 0;
  int64_t drained_at = -1;
  int64_t backlog_drained_at = -1;
  std::vector<std::string> first_delivery;     // the lines of the first request that worked
  std::string oldest_pending, newest_pending;  // just before it
  for (int guard = 0; guard < 100000; ++guard) {
    const int64_t now = clock_.SteadyNowNs();
    const int64_t cursor = Sink().cursor_seq;
    if (captured && backlog_drained_at < 0 && cursor >= backlog_seq) backlog_drained_at = now;
    if (minutes_appended == kMinutes && cursor == last_seq_) {
      drained_at = now;
      break;
    }
    ASSERT_LT(now, 3 * kNsPerHour) << "not drained in fake time";
    if (now < outage_end) ++steps_in_outage;
    const size_t delivered_before = transport_.delivered.size();
    const std::string newest = appended_.back();
    const int64_t delay = replicator_->Step();
    if (first_delivery.empty() && transport_.delivered.size() > delivered_before) {
      first_delivery.assign(transport_.delivered.begin() + static_cast<std::ptrdiff_t>(delivered_before),
                            transport_.delivered.end());
      oldest_pending = appended_.front();
      newest_pending = newest;
    }
    if (now < outage_end) {
      ASSERT_GE(delay, kFailureFloorNs);
      ASSERT_LE(delay, kRetryMaxNs);  // the cap
      max_failure_delay = std::max(max_failure_delay, delay);
    }
    Wait(delay, kNsPerMinute, tick);
  }
  ASSERT_GE(drained_at, 0);
  ASSERT_TRUE(captured);

  const int outage_requests = transport_.RequestsBefore(outage_end);
  int64_t first_success = -1;
  for (int64_t t : transport_.request_times) {
    if (t >= outage_end) {
      first_success = t;
      break;
    }
  }
  const std::vector<std::string> lost = Lost();
  const std::set<std::string> unique(transport_.delivered.begin(), transport_.delivered.end());
  std::printf(
      "outage[%s%s seed=%llu]: appended=%zu delivered=%zu lost=%zu duplicates=%zu requests_during_1h_outage=%d "
      "steps_during_outage=%d max_retry_wait=%.1fs first_success_after_recovery=%.1fs backlog_drained=+%.1fs "
      "total_requests=%zu\n",
      FailureName(c.failure).c_str(), c.newest_first ? " newest-first" : "", static_cast<unsigned long long>(c.seed),
      appended_.size(), transport_.delivered.size(), lost.size(), transport_.delivered.size() - unique.size(),
      outage_requests, steps_in_outage, static_cast<double>(max_failure_delay) / kNsPerSec,
      static_cast<double>(first_success - outage_end) / kNsPerSec,
      static_cast<double>(backlog_drained_at - outage_end) / kNsPerSec, transport_.request_times.size());

  // Zero lost, nothing twice (no request was partly accepted, so none needed repeating).
  EXPECT_EQ(appended_.size(), static_cast<size_t>(kMinutes * kPointsPerMinute));
  EXPECT_TRUE(lost.empty()) << lost.size() << " lost, first: " << lost.front();
  EXPECT_EQ(transport_.delivered.size(), unique.size());
  EXPECT_EQ(unique.size(), appended_.size());

  // Idle while offline: one request per Step, few of either.
  EXPECT_EQ(steps_in_outage, outage_requests);
  EXPECT_GE(outage_requests, 20);
  EXPECT_LE(outage_requests, 50);
  // Recovery is noticed within one capped wait.
  EXPECT_LE(first_success - outage_end, kRetryMaxNs);
  // The 61000-point backlog goes out back to back (5000 points per request, no wait between).
  EXPECT_EQ(backlog_drained_at, first_success);

  // Status at the end of the outage: everything pending, failure counted per request.
  EXPECT_EQ(at_outage_end.state, c.failure == Failure::kRefused ? "offline" : "throttled");
  EXPECT_EQ(at_outage_end.last_code, c.failure == Failure::kRefused ? 0 : 503);
  EXPECT_EQ(at_outage_end.consecutive_failures, outage_requests);
  EXPECT_EQ(at_outage_end.cursor_seq, 0);
  EXPECT_EQ(at_outage_end.pending_points, 61 * kPointsPerMinute);  // minutes 0..60 (60 lands at the hour)
  EXPECT_EQ(at_outage_end.dropped_points, 0);
  EXPECT_EQ(at_outage_end.retry_after_ns, 0);  // no Retry-After was given: the backoff decided

  // Replay order after the outage: the first request carries the oldest backlog, or with
  // newest-first the newest point, so dashboards are current at once.
  ASSERT_FALSE(first_delivery.empty());
  const std::string& expected_first = c.newest_first ? newest_pending : oldest_pending;
  EXPECT_NE(std::find(first_delivery.begin(), first_delivery.end(), expected_first), first_delivery.end())
      << expected_first;

  // Cursor at the end, status clean.
  const SinkStatus end = Sink();
  EXPECT_EQ(end.cursor_seq, last_seq_);
  EXPECT_EQ(end.pending_points, 0);
  EXPECT_EQ(end.state, "ok");
  EXPECT_EQ(end.consecutive_failures, 0);
  EXPECT_EQ(end.sent_points, kMinutes * kPointsPerMinute);
  EXPECT_EQ(end.dropped_points, 0);
  EXPECT_EQ(end.dead_lettered, 0);
  auto stats = queue_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->points, 0);  // acknowledged batches were collected
}

INSTANTIATE_TEST_SUITE_P(Seeds, OneHourOutageTest,
                         ::testing::Values(OutageCase{Failure::kRefused, 1}, OutageCase{Failure::kRefused, 2},
                                           OutageCase{Failure::kRefused, 3}, OutageCase{Failure::k503, 1},
                                           OutageCase{Failure::k503, 4}, OutageCase{Failure::k503, 5},
                                           OutageCase{Failure::kRefused, 1, true}, OutageCase{Failure::k503, 4, true}),
                         [](const ::testing::TestParamInfo<OutageCase>& info) {
                           return (info.param.failure == Failure::kRefused ? std::string("Refused")
                                                                           : std::string("Status503")) +
                                  "Seed" + std::to_string(info.param.seed) +
                                  (info.param.newest_first ? "NewestFirst" : "");
                         });

TEST_F(OutageTest, BackoffGrowsWithinFullJitterBoundsUpToTheCap) {
  Make(7);
  transport_.down_until_ns = std::numeric_limits<int64_t>::max();
  Append(10);
  constexpr int kAttempts = 200;
  std::vector<int64_t> delays;
  for (int n = 0; n < kAttempts; ++n) {
    const int64_t delay = replicator_->Step();
    const int64_t ceiling = JitterCeilingNs(n);
    // Full jitter: [0, ceiling), raised to the 10 ms floor.
    ASSERT_GE(delay, kFailureFloorNs) << "retry " << n;
    ASSERT_LT(delay, std::max(ceiling, kFailureFloorNs + 1)) << "retry " << n;
    ASSERT_LE(delay, kRetryMaxNs) << "retry " << n;
    ASSERT_EQ(static_cast<int>(transport_.request_times.size()), n + 1);  // one request per Step
    const SinkStatus s = Sink();
    ASSERT_EQ(s.consecutive_failures, n + 1);
    ASSERT_EQ(s.next_retry_ns, clock_.WallNowNs() + delay);
    delays.push_back(delay);
    clock_.AdvanceNs(delay);
  }
  // Growth: the first retries are short, later ones reach into the cap's range.
  EXPECT_LT(*std::max_element(delays.begin(), delays.begin() + 4), 8 * kNsPerSec);
  int64_t sum_capped = 0;
  for (int n = 9; n < kAttempts; ++n) sum_capped += delays[n];  // ceiling = 300 s from retry 9 on
  const double mean_capped_s = static_cast<double>(sum_capped) / (kAttempts - 9) / kNsPerSec;
  const double max_s = static_cast<double>(*std::max_element(delays.begin(), delays.end())) / kNsPerSec;
  std::printf("backoff: first delays %.3f %.3f %.3f %.3f s; mean once capped %.1f s; max %.1f s\n",
              static_cast<double>(delays[0]) / kNsPerSec, static_cast<double>(delays[1]) / kNsPerSec,
              static_cast<double>(delays[2]) / kNsPerSec, static_cast<double>(delays[3]) / kNsPerSec, mean_capped_s,
              max_s);
  // Uniform over [0, 300 s): mean 150 s, sd of the mean of 191 draws about 6 s.
  EXPECT_GT(mean_capped_s, 120.0);
  EXPECT_LT(mean_capped_s, 180.0);
  EXPECT_GT(max_s, 270.0);
  EXPECT_EQ(Sink().cursor_seq, 0);
}

std::string HttpDate(int64_t wall_ns) {
  const std::time_t t = static_cast<std::time_t>(wall_ns / kNsPerSec);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

class RetryAfterTest : public OutageTest, public ::testing::WithParamInterface<bool> {};

// 503 with Retry-After: 120 (seconds, or the HTTP-date 120 s ahead): the next Step comes
// exactly 120 s later, and none before, though new points arrive every second meanwhile.
TEST_P(RetryAfterTest, Status503RetryAfter120WaitsExactly120Seconds) {
  const bool http_date = GetParam();
  Make(11);
  Append(5);
  HttpResponse throttled;
  throttled.status = 503;
  throttled.headers = {{"retry-after", http_date ? HttpDate(clock_.WallNowNs() + 120 * kNsPerSec) : "120"}};
  transport_.script.push_back(throttled);

  const int64_t t0 = clock_.SteadyNowNs();
  const int64_t delay = replicator_->Step();
  EXPECT_EQ(delay, 120 * kNsPerSec);
  SinkStatus s = Sink();
  EXPECT_EQ(s.state, "throttled");
  EXPECT_EQ(s.last_code, 503);
  EXPECT_EQ(s.next_retry_ns, clock_.WallNowNs() + 120 * kNsPerSec);
  EXPECT_EQ(s.retry_after_ns, 120 * kNsPerSec);  // status says the server's wait is honoured

  // Drive in 1 s steps: a point arrives each second; Step runs only when its wait is over.
  int64_t due = t0 + delay;
  int steps = 1;
  while (clock_.SteadyNowNs() < t0 + 130 * kNsPerSec) {
    clock_.AdvanceNs(kNsPerSec);
    Append(1);
    if (clock_.SteadyNowNs() >= due) {
      due = clock_.SteadyNowNs() + replicator_->Step();
      ++steps;
    }
  }
  ASSERT_GE(transport_.request_times.size(), 2u);
  EXPECT_EQ(transport_.request_times[0], t0);
  EXPECT_EQ(transport_.RequestsBefore(t0 + 120 * kNsPerSec), 1);  // nothing inside the wait
  EXPECT_EQ(transport_.request_times[1], t0 + 120 * kNsPerSec);   // and no later than it
  std::printf("retry-after[%s]: requests in the 120 s window=%d, second request at +%.0f s, steps=%d\n",
              http_date ? "http-date" : "seconds", transport_.RequestsBefore(t0 + 120 * kNsPerSec),
              static_cast<double>(transport_.request_times[1] - t0) / kNsPerSec, steps);

  // Everything, including what arrived during the wait, was delivered once the wait was over.
  EXPECT_TRUE(Lost().empty());
  EXPECT_EQ(Sink().cursor_seq, last_seq_);
  EXPECT_EQ(Sink().state, "ok");
}

INSTANTIATE_TEST_SUITE_P(Forms, RetryAfterTest, ::testing::Bool(), [](const ::testing::TestParamInfo<bool>& info) {
  return info.param ? "HttpDate" : "Seconds";
});

}  // namespace
}  // namespace edgeline
