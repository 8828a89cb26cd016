#include "agent/status_report.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <sstream>

#include "downsample/downsample_task.h"
#include "downsample/downsampler.h"
#include "ingest/group_committer.h"

namespace edgeline {
namespace {

int64_t ToInt(const std::map<std::string, std::string>& kv, const std::string& key) {
  auto it = kv.find(key);
  if (it == kv.end() || it->second.empty()) return 0;
  try {
    return std::stoll(it->second);
  } catch (...) {
    return 0;
  }
}

// "" or unparsable -> nullopt.
std::optional<double> ToDouble(const std::map<std::string, std::string>& kv, std::string_view key) {
  auto it = kv.find(std::string(key));
  if (it == kv.end() || it->second.empty()) return std::nullopt;
  try {
    size_t used = 0;
    double v = std::stod(it->second, &used);
    if (used != it->second.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  } catch (...) {
    return std::nullopt;
  }
}

// 1234567 -> "1,234,567".
std::string FormatCount(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// Points per second (or bytes per point): whole numbers with separators from 10 on, one decimal
// below.
std::string FormatRate(double rate) {
  if (rate >= 10) return FormatCount(std::llround(rate));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", rate);
  return buf;
}

// A span an operator plans with: "45 s", "20 min", "6.5 h", "31 h", "4.2 d", "12 d".
std::string FormatSpan(double seconds) {
  char buf[48];
  if (seconds < 90) {
    std::snprintf(buf, sizeof(buf), "%.0f s", seconds);
  } else if (seconds < 90 * 60) {
    std::snprintf(buf, sizeof(buf), "%.0f min", seconds / 60);
  } else if (seconds < 48 * 3600) {
    const double h = seconds / 3600;
    std::snprintf(buf, sizeof(buf), h < 10 ? "%.1f h" : "%.0f h", h);
  } else {
    const double d = seconds / 86400;
    std::snprintf(buf, sizeof(buf), d < 10 ? "%.1f d" : "%.0f d", d);
  }
  return buf;
}

std::string FormatTime(int64_t ns) {
  if (ns <= 0) return "never";
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatAge(double seconds) {
  char buf[32];
  if (seconds < 0) return "-";
  if (seconds < 120) {
    std::snprintf(buf, sizeof(buf), "%.1fs", seconds);
  } else if (seconds < 7200) {
    std::snprintf(buf, sizeof(buf), "%.1fm", seconds / 60);
  } else if (seconds < 172800) {
    std::snprintf(buf, sizeof(buf), "%.1fh", seconds / 3600);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1fd", seconds / 86400);
  }
  return buf;
}

std::string FormatBytes(int64_t bytes) {
  char buf[32];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof(buf), "%lld B", static_cast<long long>(bytes));
  } else if (bytes < (1 << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", bytes / 1024.0);
  } else if (bytes < (1LL << 30)) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / 1048576.0);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", bytes / 1073741824.0);
  }
  return buf;
}

// The "size:" and "outage:" lines: what the bound counts against the bound and the file, then
// how long the queue absorbs the current ingest before the bound applies (docs: README, "Outage
// capacity").
void RenderCapacity(const nlohmann::json& r, std::ostream& out) {
  const auto& q = r["queue"];
  const int64_t counted = q.value("counted_bytes", int64_t{0});
  const int64_t max_bytes = q.value("max_bytes", int64_t{0});
  const std::string policy = q.value("full_policy", std::string());
  out << "size:   " << FormatBytes(counted) << " counted";
  if (max_bytes > 0) {
    out << " of the " << FormatBytes(max_bytes) << " bound";
  } else {
    out << " (bound not known)";
  }
  out << ", " << FormatBytes(q.value("file_bytes", int64_t{0})) << " file on disk\n";
  if (!r.contains("capacity")) return;
  const auto& c = r["capacity"];
  const std::string state = c.value("state", std::string());
  const int64_t headroom = c.value("headroom_bytes", int64_t{0});
  const auto number = [&c](const char* key) {
    return c.contains(key) && c[key].is_number() ? c[key].get<double>() : -1.0;
  };
  const double rate = number("ingest_rate");
  const double bpp = number("bytes_per_point");
  const int64_t points = q.value("points", int64_t{0});
  // "412 B/point measured over 1,200,000 points"
  const std::string measured =
      bpp >= 0 ? FormatRate(bpp) + " B/point measured over " + FormatCount(points) + " points" : std::string();
  out << "outage: ";
  if (state == "holds") {
    out << "holds " << FormatSpan(number("holds_s")) << " more at " << FormatRate(rate) << " points/s (then " << policy
        << ")\n";
    out << "        " << FormatBytes(headroom) << " left at " << measured << "; assumes no sink delivers\n";
  } else if (state == "no-ingest") {
    out << "holds indefinitely at the current rate (no ingest); " << FormatBytes(headroom) << " left before " << policy
        << "\n";
  } else if (state == "bound-applies") {
    out << "the bound applies now (" << FormatBytes(counted) << " counted of " << FormatBytes(max_bytes) << "): "
        << (policy == "backpressure" ? "refusing new points, MQTT messages wait at the broker (backpressure)"
                                     : "dropping the oldest points (drop-oldest)")
        << "\n";
  } else if (state == "not-enough-data") {
    out << FormatBytes(headroom) << " left before " << policy << " at " << FormatRate(rate)
        << " points/s; not enough data yet for bytes per point (" << FormatCount(points) << " of "
        << FormatCount(c.value("estimate_min_points", int64_t{0})) << " points held)\n";
  } else if (state == "rate-unknown") {
    out << FormatBytes(headroom) << " left before " << policy;
    if (bpp >= 0)
      out << " (about " << FormatCount(c.value("points_left", int64_t{0})) << " points at " << measured << ")";
    out << "; ingest rate unknown (" << (r["agent"].value("running", false) ? "not measured yet" : "agent not running")
        << ")\n";
  } else {
    out << "capacity unknown: no agent has recorded its EDGELINE_QUEUE_MAX_BYTES in this file (none ran "
           "yet, or an older version)\n";
  }
}

}  // namespace

std::string_view QueueFullPolicyName(QueueFullPolicy policy) {
  return policy == QueueFullPolicy::kBackpressure ? "backpressure" : "drop-oldest";
}

std::optional<QueueFullPolicy> QueueFullPolicyFromName(std::string_view name) {
  if (name == "drop-oldest") return QueueFullPolicy::kDropOldest;
  if (name == "backpressure") return QueueFullPolicy::kBackpressure;
  return std::nullopt;
}

std::string_view Name(OutageCapacityState state) {
  switch (state) {
    case OutageCapacityState::kHolds: return "holds";
    case OutageCapacityState::kNoIngest: return "no-ingest";
    case OutageCapacityState::kBoundApplies: return "bound-applies";
    case OutageCapacityState::kNotEnoughData: return "not-enough-data";
    case OutageCapacityState::kRateUnknown: return "rate-unknown";
    case OutageCapacityState::kBoundUnknown: return "bound-unknown";
  }
  return "bound-unknown";
}

OutageCapacity ComputeOutageCapacity(const OutageCapacityInput& in) {
  OutageCapacity c;
  if (in.points > 0 && in.points >= in.min_points && in.counted_bytes > 0) {
    c.bytes_per_point = static_cast<double>(in.counted_bytes) / static_cast<double>(in.points);
  }
  if (in.max_bytes <= 0) {
    c.state = OutageCapacityState::kBoundUnknown;
    return c;
  }
  c.headroom_bytes = std::max<int64_t>(0, in.max_bytes - in.counted_bytes);
  if (c.bytes_per_point) {  // headroom / (counted / points), exact
    c.points_left = static_cast<int64_t>(static_cast<__int128>(c.headroom_bytes) * in.points / in.counted_bytes);
  }
  if (c.headroom_bytes <= 0 || in.refusing) {
    c.state = OutageCapacityState::kBoundApplies;
  } else if (!in.ingest_rate) {
    c.state = OutageCapacityState::kRateUnknown;
  } else if (*in.ingest_rate <= 0) {
    c.state = OutageCapacityState::kNoIngest;
  } else if (!c.bytes_per_point) {
    c.state = OutageCapacityState::kNotEnoughData;
  } else {
    const double holds = c.headroom_bytes / (*c.bytes_per_point * *in.ingest_rate);
    // Under drop-oldest the bound keeps the queue just below it (less than one commit's bytes
    // of headroom): that is the bound applying, not "holds 0 s more".
    if (holds < 1.0) {
      c.state = OutageCapacityState::kBoundApplies;
    } else {
      c.state = OutageCapacityState::kHolds;
      c.holds_s = holds;
    }
  }
  return c;
}

Result<nlohmann::json> BuildStatusReport(Queue* queue, const std::string& path, const Clock& clock,
                                         int64_t stale_after_ns) {
  StatusReportOptions options;
  options.stale_after_ns = stale_after_ns;
  return BuildStatusReport(queue, path, clock, options);
}

Result<nlohmann::json> BuildStatusReport(Queue* queue, const std::string& path, const Clock& clock,
                                         const StatusReportOptions& options) {
  using nlohmann::json;
  const int64_t stale_after_ns = options.stale_after_ns;
  const int64_t now = clock.WallNowNs();
  ASSIGN_OR_RETURN(QueueStats stats, queue->Stats());
  ASSIGN_OR_RETURN(auto sinks, queue->SinkStatuses());
  ASSIGN_OR_RETURN(auto state_list, queue->AgentState());
  std::map<std::string, std::string> state(state_list.begin(), state_list.end());

  json problems = json::array();
  json report;
  report["time_ns"] = now;
  report["queue"] = {
      {"path", path},
      {"batches", stats.batches},
      {"points", stats.points},
      {"bytes", stats.bytes},
      {"counted_bytes", stats.counted_bytes},
      {"file_bytes", stats.file_bytes},
      {"raw_bytes", stats.raw_bytes},
      {"dead_letters", stats.dead_letters},
      {"ingest_rejected", stats.ingest_rejected},
      {"dropped_points_total", stats.dropped_points_total},
      {"recovered_from", stats.recovered_from},
  };
  if (!stats.recovered_from.empty()) {
    problems.push_back("queue file was corrupt and moved aside to " + stats.recovered_from);
  }

  const int64_t heartbeat = ToInt(state, "heartbeat_ns");
  const int64_t pid = ToInt(state, "pid");
  bool alive = pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
  bool running = ToInt(state, "running") == 1 && heartbeat > 0 && now - heartbeat < stale_after_ns && alive;
  // Alive but silent: the agent writes its state every second, so it cannot write the file.
  const bool not_updating = !running && alive && ToInt(state, "running") == 1;
  std::string commit_problem = running && state.count("commit_problem") ? state["commit_problem"] : "";
  if (running && commit_problem.empty() && ToInt(state, "commit_failing") == 1) {
    commit_problem = Name(CommitProblem::kDiskError);
  }
  const std::string agent_state = not_updating              ? "disk-error"
                                  : !running                ? "stopped"
                                  : !commit_problem.empty() ? commit_problem
                                                            : "running";
  const int64_t sessions = ToInt(state, "mqtt_sessions");
  const int64_t connected = running ? ToInt(state, "mqtt_sessions_connected") : 0;
  report["agent"] = {
      {"running", running},
      {"state", agent_state},
      {"pid", pid},
      {"heartbeat_ns", heartbeat},
      {"mqtt_connected", running && sessions > 0 && connected == sessions},
      {"mqtt_sessions", sessions},
      {"mqtt_sessions_connected", connected},
      {"mqtt_last_error", state.count("mqtt_last_error") ? state["mqtt_last_error"] : ""},
      {"last_message_ns", ToInt(state, "last_message_ns")},
      {"messages", ToInt(state, "messages")},
      {"committed_points", ToInt(state, "committed_points")},
      {"device_time_adjusted", ToInt(state, "device_time_adjusted")},
      {"device_time_rejected", ToInt(state, "device_time_rejected")},
      {"commit_failing", running && ToInt(state, "commit_failing") == 1},
      {"commit_failures", ToInt(state, "commit_failures")},
  };
  const CommitProblem problem = CommitProblemFromName(commit_problem);

  // The bound is the one the agent applies (it records its configuration); the caller's is only
  // a fallback. The rate is only current while the agent runs.
  int64_t max_bytes = ToInt(state, std::string(kStateQueueMaxBytes));
  QueueFullPolicy policy = options.full_policy;
  if (state.count(std::string(kStateQueueFullPolicy))) {
    policy = QueueFullPolicyFromName(state[std::string(kStateQueueFullPolicy)]).value_or(options.full_policy);
  }
  std::string bound_source = "agent";
  if (max_bytes <= 0) {
    max_bytes = options.max_bytes;
    policy = options.full_policy;
    bound_source = max_bytes > 0 ? "config" : "";
  }
  OutageCapacityInput capacity_in;
  capacity_in.max_bytes = max_bytes;
  capacity_in.full_policy = policy;
  capacity_in.counted_bytes = stats.counted_bytes;
  capacity_in.points = stats.points;
  if (running) capacity_in.ingest_rate = ToDouble(state, kStateIngestRate);
  capacity_in.refusing = problem == CommitProblem::kQueueFull;
  capacity_in.min_points = options.min_points_for_estimate;
  const OutageCapacity capacity = ComputeOutageCapacity(capacity_in);
  const auto or_null = [](const auto& v) { return v ? json(*v) : json(nullptr); };
  report["queue"]["max_bytes"] = max_bytes > 0 ? max_bytes : 0;
  report["queue"]["full_policy"] = max_bytes > 0 ? std::string(QueueFullPolicyName(policy)) : "";
  report["capacity"] = {
      {"state", std::string(Name(capacity.state))},
      {"bound_source", bound_source},
      {"headroom_bytes", capacity.headroom_bytes},
      {"bytes_per_point", or_null(capacity.bytes_per_point)},
      {"estimate_min_points", options.min_points_for_estimate},
      {"points_left", or_null(capacity.points_left)},
      {"ingest_rate", or_null(capacity_in.ingest_rate)},
      {"ingest_rate_window_s", capacity_in.ingest_rate ? ToDouble(state, kStateIngestRateWindow).value_or(0.0) : 0.0},
      {"holds_s", or_null(capacity.holds_s)},
  };
  if (problem == CommitProblem::kQueueFull) {
    problems.push_back(
        "queue-full: the queue is at EDGELINE_QUEUE_MAX_BYTES under backpressure; messages are held "
        "unacknowledged at the broker");
  } else if (problem == CommitProblem::kCorrupt) {
    problems.push_back("corrupt: the queue file is damaged; the agent restarts and moves it aside");
  } else if (!commit_problem.empty()) {
    problems.push_back(
        "disk-error: commits to the queue are failing (I/O error or disk full); messages are held "
        "unacknowledged at the broker");
  }
  if (not_updating) {
    problems.push_back("disk-error: agent pid " + std::to_string(pid) +
                       " is alive but has not recorded its state for " + FormatAge((now - heartbeat) / 1e9) +
                       ": it cannot write the queue file (or is hung)");
  } else if (!running) {
    problems.push_back("agent is not running");
  } else if (sessions <= 0)
    problems.push_back("MQTT: no session (the client could not be created)");
  else if (connected < sessions)
    problems.push_back("MQTT: " + std::to_string(sessions - connected) + " of " + std::to_string(sessions) +
                       " sessions disconnected");

  // A sink not registered by the agent's latest start belongs to an earlier configuration: shown
  // as inactive, not counted as a problem (its data is no longer held for it).
  const int64_t started = ToInt(state, "started_ns");
  json sink_list = json::array();
  for (const auto& s : sinks) {
    const bool inactive = started > 0 && s.registered_ns > 0 && s.registered_ns < started;
    double oldest_age = s.oldest_pending_ns > 0 ? (now - s.oldest_pending_ns) / 1e9 : 0.0;
    double lag = s.pending_points > 0 ? (s.last_success_ns > 0 ? (now - s.last_success_ns) / 1e9 : oldest_age) : 0.0;
    sink_list.push_back({
        {"name", s.sink},
        {"stream", s.stream},
        {"state", inactive          ? "inactive"
                  : s.state.empty() ? "new"
                                    : s.state},
        {"pending_points", s.pending_points},
        {"pending_bytes", s.pending_bytes},
        {"oldest_pending_age_s", oldest_age},
        {"lag_s", lag},
        {"last_success_ns", s.last_success_ns},
        {"last_attempt_ns", s.last_attempt_ns},
        {"last_code", s.last_code},
        {"last_error", s.last_error},
        {"sent_points", s.sent_points},
        {"dropped_points", s.dropped_points},
        {"dead_lettered", s.dead_lettered},
        {"skipped_points", s.skipped_points},
        {"consecutive_failures", s.consecutive_failures},
        {"next_retry_ns", s.next_retry_ns},
        {"retry_after_s", s.retry_after_ns / 1e9},
        {"batch_points", s.batch_points},
        {"drain_rate", s.drain_rate},
        {"eta_s", s.pending_points > 0 && s.drain_rate > 0 ? s.pending_points / s.drain_rate
                                                           : (s.pending_points > 0 ? -1.0 : 0.0)},
        {"cursor_seq", s.cursor_seq},
    });
    if (inactive) continue;
    if (s.consecutive_failures > 0) {
      problems.push_back("sink " + s.sink + " is failing (" + (s.state.empty() ? "error" : s.state) + ")");
    }
    if (s.dropped_points > 0) {
      problems.push_back("sink " + s.sink + " lost " + std::to_string(s.dropped_points) +
                         " points to the queue's size/age bounds");
    }
  }
  report["sinks"] = sink_list;

  ASSIGN_OR_RETURN(std::vector<MqttSessionStats> session_stats, queue->MqttSessions());
  json session_list = json::array();
  for (const MqttSessionStats& m : session_stats) {
    session_list.push_back({{"session", m.session},
                            {"inbound_qos2", m.inbound_qos2},
                            {"outbound_state", m.other_entries},
                            {"qos1_receipts", m.receipts},
                            {"duplicates_suppressed", m.duplicates_suppressed}});
  }
  report["mqtt_sessions"] = session_list;

  ASSIGN_OR_RETURN(std::string downsample_state, queue->ConsumerState(std::string(kDownsamplerSink)));
  if (downsample_state.empty()) {
    report["downsample"] = {{"enabled", false}};
  } else {
    auto summary = SummarizeDownsampleState(downsample_state);
    if (!summary.ok()) {
      report["downsample"] = {{"enabled", true}, {"error", summary.status().ToString()}};
      problems.push_back("downsampler state cannot be read: " + summary.status().ToString());
    } else {
      const DownsampleCounters& c = summary->counters;
      report["downsample"] = {
          {"enabled", true},
          {"closed_until_ns", summary->closed_until_ns},
          {"newest_event_ns", summary->max_event_ns},
          {"open_windows", summary->open_windows},
          {"points_in", c.points_in},
          {"points_late", c.points_late},
          {"points_filtered", c.points_filtered},
          {"points_out", c.points_out},
          {"windows_closed", c.windows_closed},
          {"alarm_changes", c.alarm_changes},
          {"clock_rewinds", c.clock_rewinds},
          {"stale_alarms", c.stale_alarms},
          {"status_points", c.status_points},
      };
      report["devices"] = DeviceReport(*summary, now);
    }
  }
  report["problems"] = problems;
  report["healthy"] = problems.empty();
  return report;
}

nlohmann::json DeviceReport(const DownsampleSummary& summary, int64_t now_ns, size_t limit) {
  using nlohmann::json;
  json listed = json::array();
  int64_t stale = 0;
  for (const DeviceLiveness& d : summary.devices) {
    stale += d.stale;
    if (listed.size() >= limit) continue;
    json tags = json::object();
    for (const auto& [k, v] : d.tags) tags[k] = v;
    listed.push_back({{"measurement", d.measurement},
                      {"tags", std::move(tags)},
                      {"last_seen_ns", d.last_seen_ns},
                      {"silent_s", d.last_seen_ns > 0 ? std::max<int64_t>(0, now_ns - d.last_seen_ns) / 1e9 : 0.0},
                      {"stale", d.stale},
                      {"reason", d.reason},
                      {"stale_since_ns", d.stale_since_ns}});
  }
  const int64_t tracked = static_cast<int64_t>(summary.devices.size());
  return {{"tracked", tracked},
          {"stale", stale},
          {"forgotten", summary.counters.devices_forgotten},
          {"not_listed", tracked - static_cast<int64_t>(listed.size())},
          {"top", std::move(listed)}};
}

std::string Sparkline(const std::vector<int64_t>& values) {
  static const char* kLevels[] = {"\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588"};
  int64_t max = 0;
  for (int64_t v : values) max = std::max(max, v);
  std::string out;
  for (int64_t v : values) {
    int level = max > 0 ? static_cast<int>((v * 7 + max - 1) / max) : 0;  // any backlog shows above the floor
    out += kLevels[std::clamp(level, 0, 7)];
  }
  return out;
}

std::string RenderStatusText(const nlohmann::json& r,
                             const std::map<std::string, std::vector<int64_t>>* backlog_history) {
  std::ostringstream out;
  const int64_t now = r["time_ns"].get<int64_t>();
  const auto& a = r["agent"];
  out << "edgeline status  (" << FormatTime(now) << ")\n";
  const std::string agent_state = a.value("state", "");
  if (a["running"].get<bool>()) {
    out << "agent:  running, pid " << a["pid"].get<int64_t>()
        << (agent_state != "running" && !agent_state.empty() ? ", " + agent_state : "") << "\n";
  } else if (agent_state == "disk-error") {
    out << "agent:  disk-error, pid " << a["pid"].get<int64_t>() << " alive, last state written "
        << FormatTime(a["heartbeat_ns"].get<int64_t>()) << "\n";
  } else {
    int64_t hb = a["heartbeat_ns"].get<int64_t>();
    out << "agent:  NOT running" << (hb > 0 ? " (last seen " + FormatTime(hb) + ")" : "") << "\n";
  }
  out << "mqtt:   " << (a["mqtt_connected"].get<bool>() ? "connected" : "disconnected") << " ("
      << a["mqtt_sessions_connected"].get<int64_t>() << "/" << a["mqtt_sessions"].get<int64_t>()
      << " sessions), last message " << FormatTime(a["last_message_ns"].get<int64_t>()) << ", "
      << a["messages"].get<int64_t>() << " messages this run\n";
  for (const auto& m : r.value("mqtt_sessions", nlohmann::json::array())) {
    out << "        session " << m["session"].get<std::string>() << ": " << m["inbound_qos2"].get<int64_t>()
        << " QoS 2 held until stored, " << m["duplicates_suppressed"].get<int64_t>()
        << " redeliveries not stored again\n";
  }
  const int64_t clock_adjusted = a.value("device_time_adjusted", int64_t{0});
  const int64_t clock_rejected = a.value("device_time_rejected", int64_t{0});
  if (clock_adjusted > 0 || clock_rejected > 0) {
    out << "        wrong device clocks: " << clock_adjusted << " points stamped with the receive time, "
        << clock_rejected << " dead-lettered\n";
  }
  std::string mqtt_error = a["mqtt_last_error"].get<std::string>();
  if (!mqtt_error.empty() && !a["mqtt_connected"].get<bool>()) out << "        last error: " << mqtt_error << "\n";
  const auto& q = r["queue"];
  out << "queue:  " << q["path"].get<std::string>() << ": " << q["points"].get<int64_t>() << " points in "
      << q["batches"].get<int64_t>() << " batches; " << q["dropped_points_total"].get<int64_t>()
      << " dropped by bounds\n";
  RenderCapacity(r, out);
  out << "dlq:    " << q["dead_letters"].get<int64_t>() << " entries (" << q["ingest_rejected"].get<int64_t>()
      << " rejected at ingest)\n";
  out << "\n";
  const auto& d = r["downsample"];
  if (d.value("enabled", false) && d.contains("points_in")) {
    int64_t closed = d["closed_until_ns"].get<int64_t>();
    out << "downsample: "
        << (closed > 0 ? "windows closed through " + FormatTime(closed) : std::string("no window closed yet")) << ", "
        << d["open_windows"].get<int64_t>() << " open; " << d["points_in"].get<int64_t>() << " points in, "
        << d["points_out"].get<int64_t>() << " rows out, " << d["points_late"].get<int64_t>() << " late, "
        << d["alarm_changes"].get<int64_t>() << " alarm changes";
    if (d.value("clock_rewinds", 0) > 0) out << ", " << d["clock_rewinds"].get<int64_t>() << " clock steps back";
    out << "\n";
  }
  if (r.contains("devices") && r["devices"]["tracked"].get<int64_t>() > 0) {
    const auto& devices = r["devices"];
    out << "devices: " << devices["tracked"].get<int64_t>() << " seen, " << devices["stale"].get<int64_t>()
        << " stale; silent longest first:\n";
    size_t shown = 0;
    for (const auto& d : devices["top"]) {
      if (shown++ == kStatusTextDevices) break;
      std::string name;
      for (const auto& [k, v] : d["tags"].items()) name += (name.empty() ? "" : ",") + k + "=" + v.get<std::string>();
      if (name.empty()) name = d["measurement"].get<std::string>();
      char row[256];
      std::snprintf(row, sizeof(row), "  %-32s %-16s last seen %s (%s ago)\n", name.c_str(),
                    d["stale"].get<bool>() ? ("STALE " + d["reason"].get<std::string>()).c_str() : "ok",
                    FormatTime(d["last_seen_ns"].get<int64_t>()).c_str(), FormatAge(d["silent_s"].get<double>()).c_str());
      out << row;
    }
    const int64_t more = devices["tracked"].get<int64_t>() - static_cast<int64_t>(std::min(shown, kStatusTextDevices));
    if (more > 0) out << "  ... and " << more << " more (status --json lists up to " << kMaxListedDevices << ")\n";
  }
  out << "\n";
  // Fits 80 columns: the sink names are at most 18 characters ("influx-downsampled").
  char header[160];
  std::snprintf(header, sizeof(header), "%-18s %-11s %9s %7s %4s %10s %7s %5s\n", "SINK", "STATE", "PENDING", "LAG",
                "CODE", "SENT", "DROPPED", "DLQ");
  out << header;
  for (const auto& s : r["sinks"]) {
    char row[256];
    std::snprintf(row, sizeof(row), "%-18s %-11s %9lld %7s %4d %10lld %7lld %5lld\n",
                  s["name"].get<std::string>().c_str(), s["state"].get<std::string>().c_str(),
                  static_cast<long long>(s["pending_points"].get<int64_t>()),
                  FormatAge(s["lag_s"].get<double>()).c_str(), s["last_code"].get<int>(),
                  static_cast<long long>(s["sent_points"].get<int64_t>()),
                  static_cast<long long>(s["dropped_points"].get<int64_t>()),
                  static_cast<long long>(s["dead_lettered"].get<int64_t>()));
    out << row;
    out << "    " << s["stream"].get<std::string>() << " stream; last success "
        << FormatTime(s["last_success_ns"].get<int64_t>());
    if (s["pending_points"].get<int64_t>() > 0) {
      out << "; oldest pending " << FormatAge(s["oldest_pending_age_s"].get<double>()) << ", "
          << FormatBytes(s["pending_bytes"].get<int64_t>());
    }
    if (s["pending_points"].get<int64_t>() > 0 && s.value("eta_s", -1.0) > 0) {
      out << "; draining " << static_cast<int64_t>(s["drain_rate"].get<double>()) << " points/s, empty in "
          << FormatAge(s["eta_s"].get<double>());
    }
    if (s.value("skipped_points", int64_t{0}) > 0) {
      out << "; " << s["skipped_points"].get<int64_t>() << " skipped (not routed)";
    }
    out << "\n";
    if (backlog_history) {
      auto h = backlog_history->find(s["name"].get<std::string>());
      if (h != backlog_history->end() && h->second.size() > 1) {
        int64_t peak = *std::max_element(h->second.begin(), h->second.end());
        out << "    backlog " << Sparkline(h->second) << " peak " << peak << "\n";
      }
    }
    std::string err = s["last_error"].get<std::string>();
    if (!err.empty()) out << "    last error: " << err << "\n";
    if (s["next_retry_ns"].get<int64_t>() > now) {
      out << "    retry in " << FormatAge((s["next_retry_ns"].get<int64_t>() - now) / 1e9) << " (failure #"
          << s["consecutive_failures"].get<int>();
      if (s.value("retry_after_s", 0.0) > 0)
        out << ", server's Retry-After " << FormatAge(s["retry_after_s"].get<double>());
      out << ")\n";
    }
  }
  if (r["sinks"].empty()) out << "(no sinks registered yet)\n";
  out << "\n";
  if (r["healthy"].get<bool>()) {
    out << "healthy\n";
  } else {
    out << "degraded:\n";
    for (const auto& p : r["problems"]) out << "  - " << p.get<std::string>() << "\n";
  }
  return out.str();
}

}  // namespace edgeline
