#include "agent/housekeeping.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "agent/status_report.h"
#include "agent/systemd_notify.h"
#include "common/log.h"
#include "common/wakeup.h"

namespace edgeline {
namespace {

constexpr int64_t kHeartbeatNs = 1'000'000'000;
constexpr int64_t kLimitsEveryNs = 10'000'000'000;

}  // namespace

void IngestRateMeter::Sample(int64_t steady_ns, int64_t committed_points) {
  // A counter that went back (another run's) or a clock that did: start over.
  if (!samples_.empty() && (committed_points < samples_.back().second || steady_ns < samples_.back().first)) {
    samples_.clear();
  }
  samples_.emplace_back(steady_ns, committed_points);
  // Keeps the newest sample at or before the window's start, so the span covers the window.
  while (samples_.size() > 2 && samples_[1].first <= steady_ns - window_ns_) samples_.pop_front();
}

std::optional<IngestRateMeter::Rate> IngestRateMeter::Current() const {
  if (samples_.size() < 2) return std::nullopt;
  const auto& [t0, n0] = samples_.front();
  const auto& [t1, n1] = samples_.back();
  if (t1 - t0 < kNsPerSec) return std::nullopt;
  const double seconds = (t1 - t0) / 1e9;
  return Rate{static_cast<double>(n1 - n0) / seconds, seconds};
}

void Housekeeping::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

void Housekeeping::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

Status Housekeeping::WriteState(bool running) {
  const IngestCounters& c = parts_.committer->counters();
  const MqttIngest& mqtt = *parts_.mqtt;
  std::vector<std::pair<std::string, std::string>> kv = {
      {"started_ns", std::to_string(parts_.started_ns)},
      {"pid", std::to_string(::getpid())},
      {"running", running ? "1" : "0"},
      {"heartbeat_ns", std::to_string(parts_.clock->WallNowNs())},
      {"mqtt_sessions", std::to_string(mqtt.sessions())},
      {"mqtt_sessions_connected", std::to_string(running ? mqtt.connected_sessions() : 0)},
      {"mqtt_last_error", mqtt.last_error()},
      {"last_message_ns", std::to_string(c.last_message_ns.load())},
      {"messages", std::to_string(c.messages.load())},
      {"committed_points", std::to_string(c.committed_points.load())},
      {"commits", std::to_string(c.commits.load())},
      {"ingest_rejected", std::to_string(c.rejected.load())},
      {"ingest_partial", std::to_string(c.partial.load())},
      {"device_time_adjusted", std::to_string(c.device_time_adjusted.load())},
      {"device_time_rejected", std::to_string(c.device_time_rejected.load())},
      {"commit_failures", std::to_string(c.commit_failures.load())},
      {"commit_failing", c.commit_failing.load() ? "1" : "0"},
      {"commit_problem", std::string(Name(CurrentCommitProblem(c)))},
  };
  std::optional<IngestRateMeter::Rate> rate;
  {
    std::lock_guard lock(rate_mu_);
    rate_.Sample(parts_.clock->SteadyNowNs(), c.committed_points.load());
    rate = rate_.Current();
  }
  char buf[2][32] = {};
  if (rate) {
    std::snprintf(buf[0], sizeof(buf[0]), "%.3f", rate->points_per_s);
    std::snprintf(buf[1], sizeof(buf[1]), "%.1f", rate->window_s);
  }
  kv.emplace_back(kStateIngestRate, buf[0]);  // "" until measured
  kv.emplace_back(kStateIngestRateWindow, buf[1]);
  if (parts_.queue_max_bytes > 0) {
    kv.emplace_back(kStateQueueMaxBytes, std::to_string(parts_.queue_max_bytes));
    kv.emplace_back(kStateQueueFullPolicy, QueueFullPolicyName(parts_.queue_full_policy));
  }
  Status st = parts_.queue->SetAgentState(kv);
  if (!st.ok()) LOG_WARN("agent") << "cannot record agent state: " << st.ToString();
  return st;
}

// `edgeline dlq replay` on ingest dead letters: the payloads go through mapping and the group
// commit again (a payload still bad becomes a new dead letter there). At-least-once: a crash
// between the commit and FinishReplay replays it once more.
void Housekeeping::ReplayIngestDeadLetters() {
  auto requested = parts_.queue->ReplayRequested("ingest", 100);
  if (!requested.ok() || requested->empty()) return;
  std::vector<int64_t> done;
  for (const DeadLetter& d : *requested) {
    // The dead letter's own time stamps points without one, as the first attempt would have.
    Status st = parts_.committer->Submit(parts_.remap(d.topic, d.payload, d.created_ns));
    if (!st.ok()) break;  // committer stopping or failing: later
    done.push_back(d.id);
  }
  Status settled = parts_.queue->FinishReplay(done, {});
  LOG_INFO("agent") << "replayed " << done.size() << " ingest dead letters"
                    << (settled.ok() ? "" : " (not recorded: " + settled.ToString() + ")");
}

void Housekeeping::Loop(std::stop_token stop) {
  const Clock* clock = parts_.clock;
  int64_t last_limits = clock->SteadyNowNs();
  Wakeup wait;  // never notified: only a stop ends a wait early
  do {
    // The watchdog is fed while this loop can write to the queue file: a wedged disk (or a hung
    // process) gets the agent restarted. A full queue under backpressure is not a reason: its
    // small state write still succeeds.
    Status state = WriteState(true);
    state_write_failing_ = !state.ok();
    if (state.ok()) NotifySystemd("WATCHDOG=1");
    // A damaged queue file does not heal by retrying. Ending like a crash hands it to the
    // start-up check, which moves it aside (kept) and starts a fresh queue; the broker still
    // holds every message that was not acknowledged.
    if (state.code() == StatusCode::kCorruption ||
        CurrentCommitProblem(parts_.committer->counters()) == CommitProblem::kCorrupt ||
        parts_.queue->StartupCheck(/*wait=*/false).code() == StatusCode::kCorruption) {
      LOG_ERROR("agent") << "the queue file is corrupt; exiting so that the restart moves it aside";
      MarkQueueForCheck(parts_.queue_path);
      std::_Exit(kExitQueueCorrupt);
    }
    ReplayIngestDeadLetters();
    if (clock->SteadyNowNs() - last_limits >= kLimitsEveryNs) {
      last_limits = clock->SteadyNowNs();
      auto dropped = parts_.queue->EnforceLimits();
      if (dropped.ok() && *dropped > 0) {
        LOG_WARN("queue") << "dropped " << *dropped << " points past EDGELINE_QUEUE_MAX_AGE/MAX_BYTES";
      }
    }
    wait.Wait(stop, kHeartbeatNs, /*interruptible=*/false);
  } while (!stop.stop_requested());
}

}  // namespace edgeline
