// StatusReport: what `edgeline status` shows, read from the queue file alone (read-only), so it
// works whether or not the agent runs. Built as JSON (the documented --json shape, see
// docs/STATUS.md) and rendered as text from that same JSON. Pure functions over a Queue.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "downsample/downsampler.h"
#include "storage/queue.h"

namespace edgeline {

// Exit codes of `edgeline status`.
inline constexpr int kStatusHealthy = 0;
inline constexpr int kStatusDegraded = 3;

// Agent-state keys (Queue::SetAgentState) the running agent records for the outage capacity:
// what the status process cannot know by itself (it reads the file, not the agent's config).
inline constexpr std::string_view kStateIngestRate = "ingest_rate";                 // points/s, "" = not measured yet
inline constexpr std::string_view kStateIngestRateWindow = "ingest_rate_window_s";  // span measured over
inline constexpr std::string_view kStateQueueMaxBytes = "queue_max_bytes";          // EDGELINE_QUEUE_MAX_BYTES
inline constexpr std::string_view kStateQueueFullPolicy = "queue_full_policy";      // drop-oldest | backpressure

// "drop-oldest" / "backpressure", as EDGELINE_QUEUE_FULL_POLICY spells them.
std::string_view QueueFullPolicyName(QueueFullPolicy policy);
std::optional<QueueFullPolicy> QueueFullPolicyFromName(std::string_view name);

// Outage capacity: how long the queue keeps absorbing the current ingest, with nothing draining
// it, before its size bound (EDGELINE_QUEUE_MAX_BYTES) applies; then the full policy does.
//   bytes_per_point = counted_bytes / points  (measured, once `points` >= min_points)
//   holds_s         = (max_bytes - counted_bytes) / (bytes_per_point * ingest_rate)
struct OutageCapacityInput {
  int64_t max_bytes = 0;  // the bound; <= 0 = unknown
  QueueFullPolicy full_policy = QueueFullPolicy::kDropOldest;
  int64_t counted_bytes = 0;          // what the bound counts (QueueStats::counted_bytes)
  int64_t points = 0;                 // points held
  std::optional<double> ingest_rate;  // points/s committed recently; nullopt = unknown
  bool refusing = false;              // commits fail with queue-full (backpressure applies)
  int64_t min_points = 1000;          // fewer held points give no bytes-per-point estimate
};

enum class OutageCapacityState {
  kHolds,          // holds_s is the answer
  kNoIngest,       // nothing is ingested: holds indefinitely at the current rate
  kBoundApplies,   // at the bound now (or within a second): the policy applies
  kNotEnoughData,  // fewer than min_points held: no bytes-per-point estimate yet
  kRateUnknown,    // no ingest rate recorded (the agent is not running, or has just started)
  kBoundUnknown,   // no bound recorded or configured
};
// "holds", "no-ingest", "bound-applies", "not-enough-data", "rate-unknown", "bound-unknown".
std::string_view Name(OutageCapacityState state);

struct OutageCapacity {
  OutageCapacityState state = OutageCapacityState::kBoundUnknown;
  int64_t headroom_bytes = 0;             // max_bytes - counted_bytes, at least 0 (0 when unknown)
  std::optional<double> bytes_per_point;  // measured average
  std::optional<int64_t> points_left;     // headroom_bytes / bytes_per_point
  std::optional<double> holds_s;          // only in kHolds
};

// Pure: also usable for /metrics.
OutageCapacity ComputeOutageCapacity(const OutageCapacityInput& in);

struct StatusReportOptions {
  // An agent whose heartbeat is older than this is reported as not running.
  int64_t stale_after_ns = 5'000'000'000;
  // The bound and policy to assume when the agent has not recorded the ones it applies (it never
  // ran, or predates kStateQueueMaxBytes): e.g. the status process's own configuration.
  // 0 = none: the capacity is then "bound-unknown".
  int64_t max_bytes = 0;
  QueueFullPolicy full_policy = QueueFullPolicy::kDropOldest;
  // Held points needed before bytes per point is estimated.
  int64_t min_points_for_estimate = 1000;
};

// Devices (downsampler groups) listed in `status --json` and /metrics at most, stale first, then
// the longest silent first; the rest are counted as not listed. `status` text shows the first
// kStatusTextDevices.
inline constexpr size_t kMaxListedDevices = 10000;
inline constexpr size_t kStatusTextDevices = 10;

// The "devices" section of the report: tracked/stale/forgotten counts and the listed devices,
// each with its tags, last-seen time, silence at `now_ns` and stale state.
nlohmann::json DeviceReport(const DownsampleSummary& summary, int64_t now_ns, size_t limit = kMaxListedDevices);

// `stale_after_ns`: an agent whose heartbeat is older than this is reported as not running.
Result<nlohmann::json> BuildStatusReport(Queue* queue, const std::string& path, const Clock& clock,
                                         int64_t stale_after_ns = 5'000'000'000);
Result<nlohmann::json> BuildStatusReport(Queue* queue, const std::string& path, const Clock& clock,
                                         const StatusReportOptions& options);
// `backlog_history` (for `status --watch`): per sink, its pending points at each refresh, oldest
// first; drawn as a sparkline under the sink.
std::string RenderStatusText(const nlohmann::json& report,
                             const std::map<std::string, std::vector<int64_t>>* backlog_history = nullptr);

// Eight-level sparkline of `values` (UTF-8 block characters), scaled to their maximum.
std::string Sparkline(const std::vector<int64_t>& values);

}  // namespace edgeline
