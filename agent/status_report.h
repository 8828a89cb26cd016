// StatusReport: what `edgeline status` shows, read from the queue file alone (read-only), so it
// works whether or not the agent runs. Built as JSON (the documented --json shape, see
// docs/STATUS.md) and rendered as text from that same JSON. Pure functions over a Queue.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "storage/queue.h"

namespace edgeline {

// Exit codes of `edgeline status`.
inline constexpr int kStatusHealthy = 0;
inline constexpr int kStatusDegraded = 3;

// `stale_after_ns`: an agent whose heartbeat is older than this is reported as not running.
Result<nlohmann::json> BuildStatusReport(Queue* queue, const std::string& path, const Clock& clock,
                                         int64_t stale_after_ns = 5'000'000'000);
// `backlog_history` (for `status --watch`): per sink, its pending points at each refresh, oldest
// first; drawn as a sparkline under the sink.
std::string RenderStatusText(const nlohmann::json& report,
                             const std::map<std::string, std::vector<int64_t>>* backlog_history = nullptr);

// Eight-level sparkline of `values` (UTF-8 block characters), scaled to their maximum.
std::string Sparkline(const std::vector<int64_t>& values);

}  // namespace edgeline
