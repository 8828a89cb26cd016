// Downsampler: the event-time window engine behind local downsampling and alarms (the seed's
// Flux task). Pure: no I/O and no clock, so a replayed backlog gives the same output as live
// data. Windows are aligned to the Unix epoch; all windows whose end is at or before the
// watermark (newest timestamp seen minus the allowed lateness) are closed, in window order, and
// a point older than the closed boundary is late (counted, left out). Its whole state
// (open windows, closed boundary, alarm levels, counters) round-trips through SaveState /
// RestoreState, which the task stores in the same transaction as the output.
// Receive-time stamps come from the wall clock, which can be stepped back; the task announces a
// detected step (ExpectClockStepBack) and event time restarts at the first point stamped after
// it instead of every point being late until the clock catches up again.
// Device liveness (EDGELINE_DOWNSAMPLE_STALE_AFTER): every group seen is a device. One that has
// sent nothing for stale_after_ns on the agent's steady clock, or whose status point (measurement
// config.device_status_measurement) says `offline` (not a retained one: that is news from before
// the subscribe), gets `stale` on each alarm output its points have carried the field for (`alarm`
// when there is no rule): an AlarmChange and a row. Its next point sets each of those back to what
// the rule gives for that point (`ok` for `alarm` without rules); an output whose aggregate is sum
// or count, or whose field the point lacks, stays `stale` until a window with newer points closes.
// Windows holding only points from before the stale mark still get rows but never move the alarm.
// Silence counts from the restart at the earliest (a device waiting at the broker while the agent
// was down is not stale), and from the last moment ingest was disconnected (RestartSilence); a
// device stale before a restart stays stale without a second change. The caller supplies the
// times (NoteArrival, CheckStale), so the engine stays free of clocks; liveness therefore depends
// on when points are read, and a replayed backlog gives the same windows but not the same stale
// marks.
// Not thread-safe: one owner.
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/line_protocol.h"
#include "common/status.h"
#include "config/config.h"

namespace edgeline {

// An alarm output whose value differs from the previous window's for the same group (the first
// window of a group counts as a change from "").
struct AlarmChange {
  std::string measurement;
  std::vector<std::pair<std::string, std::string>> group_tags;  // sorted by key
  std::string output;                                           // e.g. "alarm"
  std::string previous;                                         // "" for the first window of the group
  std::string value;                                            // e.g. "refuel"
  std::string field;                                            // e.g. "fuel"
  double field_value = 0;
  int64_t time_ns = 0;  // the output point's timestamp
  std::string reason;   // for `stale` and back: "silent for 25s", "offline", "reported again"
};

struct DownsampleOutput {
  std::vector<Point> points;        // window order, then group key order
  std::vector<AlarmChange> alarms;  // same order
};

struct DownsampleCounters {
  int64_t points_in = 0;        // points that entered a window
  int64_t points_late = 0;      // older than the closed boundary: left out
  int64_t points_filtered = 0;  // measurement not selected
  int64_t points_out = 0;       // output rows
  int64_t windows_closed = 0;   // distinct window intervals emitted
  int64_t alarm_changes = 0;
  int64_t clock_rewinds = 0;  // event time restarted after a wall-clock step back
  int64_t stale_alarms = 0;   // devices that went stale (silent or offline)
  int64_t status_points = 0;  // device status points seen
  int64_t devices_forgotten = 0;  // over kMaxDevices: the longest silent were dropped
};

// One device (a group: measurement + group-by tags) as liveness tracking knows it.
struct DeviceLiveness {
  std::string measurement;
  std::vector<std::pair<std::string, std::string>> tags;  // group-by tags, sorted by key
  int64_t last_seen_ns = 0;   // agent wall time its newest point was committed to the queue (0 = none)
  int64_t newest_event_ns = INT64_MIN;  // its newest point's timestamp
  int64_t stale_event_ns = INT64_MIN;   // newest_event_ns when it last went stale
  std::vector<std::string> outputs;     // alarm outputs whose field its points have carried
  bool stale = false;
  std::string reason;         // why stale: "silent" or "offline"
  int64_t stale_since_ns = 0; // agent wall time it went stale
};

// Devices tracked at most; beyond it the longest silent are forgotten (counted).
inline constexpr size_t kMaxDevices = 100000;

class Downsampler {
 public:
  explicit Downsampler(const DownsampleConfig& config);

  // Adds one point (REQUIRES: a timestamp), then closes what the new watermark passes. A
  // device status point updates liveness instead.
  void Add(const Point& point, DownsampleOutput* out);

  // The points added from now on were received at agent wall time `received_ns` and are
  // processed at steady time `steady_ns` (liveness).
  void NoteArrival(int64_t received_ns, int64_t steady_ns);

  // Marks devices silent for stale_after_ns (steady time) as stale, at wall time `wall_ns`.
  void CheckStale(int64_t wall_ns, int64_t steady_ns, DownsampleOutput* out);

  // Nothing could arrive until `steady_ns` (ingest was disconnected): silence counts from there.
  void RestartSilence(int64_t steady_ns) { resume_steady_ns_ = std::max(resume_steady_ns_, steady_ns); }

  // Takes `other`'s steady-clock readings (not state): an engine rebuilt from the stored state in
  // the same process keeps measuring silence from when points really came.
  void CarryLivenessFrom(const Downsampler& other);

  // Moves the watermark to `watermark_ns` if later (event time advanced by something other
  // than a point, e.g. idle time), closing what it passes.
  void AdvanceWatermark(int64_t watermark_ns, DownsampleOutput* out);

  // The wall clock that stamps points was stepped back; every point stamped after the step has a
  // timestamp >= `stamped_from_ns`. The first such point that would be late restarts event time
  // at its timestamp: the closed boundary moves back to where it puts it, so it and the points
  // after it are windowed. Windows still open ahead of it stay open until event time reaches
  // them again. The price: a window interval already emitted that the new points fall into gets
  // a second row (other points, other timestamp) instead of a whole step's worth of points
  // dropped as late. Points older than `stamped_from_ns` stay late. Saved with the state;
  // INT64_MAX clears it.
  void ExpectClockStepBack(int64_t stamped_from_ns) { clock_step_from_ns_ = stamped_from_ns; }
  bool expecting_clock_step() const { return clock_step_from_ns_ != INT64_MAX; }

  // The task's clock reading, taken after each read of the raw stream: a wall clock that went
  // back more than max(lateness, window) against the steady clock since the previous reading calls
  // ExpectClockStepBack; returns that step (ns) or 0. An expectation no point needed (the step
  // made nothing late) is dropped once the wall clock is past the closed boundary again. The
  // readings are not state: a restart begins without one.
  int64_t ObserveWallClock(int64_t wall_ns, int64_t steady_ns);

  std::string SaveState() const;
  Status RestoreState(std::string_view state);

  const DownsampleCounters& counters() const { return counters_; }
  // Every window whose end is <= this has been emitted (INT64_MIN before the first close).
  int64_t closed_until_ns() const { return closed_until_ns_; }
  int64_t max_event_ns() const { return max_event_ns_; }
  int64_t open_windows() const;  // (window, group) pairs still accumulating
  const std::map<std::string, DeviceLiveness>& devices() const { return devices_; }  // by group key

 private:
  struct FieldState {
    FieldValue first, last;
    int64_t first_ts = 0, last_ts = 0;
    int64_t count = 0;        // every value
    int64_t numeric = 0;      // numeric values (min/max/mean/sum use only these)
    bool all_integer = true;  // numeric values were all integers: min/max/sum stay integers
    double min = 0, max = 0, sum = 0;
  };
  struct GroupState {
    std::string measurement;
    std::vector<std::pair<std::string, std::string>> tags;  // group-by tags present, sorted
    int64_t first_ts = 0, last_ts = 0;
    std::map<std::string, FieldState> fields;
  };
  // window start -> group key -> state; ordered so output is deterministic.
  using Windows = std::map<int64_t, std::map<std::string, GroupState>>;

  int64_t WindowStart(int64_t ts) const;
  std::string GroupKey(const Point& point, std::vector<std::pair<std::string, std::string>>* tags) const;
  Aggregate AggregateFor(const std::string& field) const;
  void Emit(int64_t window_start, const std::string& key, const GroupState& group, DownsampleOutput* out);
  void CloseThrough(int64_t boundary, DownsampleOutput* out);
  // The alarm outputs stale sets: each rule's output, or "alarm" without rules.
  std::vector<std::string> AlarmOutputs() const;
  void Seen(const std::string& key, const Point& point, const std::vector<std::pair<std::string, std::string>>& tags,
            DownsampleOutput* out);
  void MarkStale(const std::string& key, DeviceLiveness* device, std::string_view reason, int64_t wall_ns,
                 DownsampleOutput* out);
  void DeviceStatus(const Point& point, DownsampleOutput* out);

  DownsampleConfig config_;
  Windows windows_;
  int64_t closed_until_ns_;
  int64_t max_event_ns_;
  int64_t clock_step_from_ns_ = INT64_MAX;           // see ExpectClockStepBack
  int64_t last_wall_ns_ = 0, last_steady_ns_ = 0;    // previous ObserveWallClock; steady 0 = none
  std::map<std::string, std::string> alarm_levels_;  // group key + '\n' + output -> last value
  DownsampleCounters counters_;
  std::map<std::string, DeviceLiveness> devices_;      // group key -> liveness (saved)
  std::map<std::string, int64_t> seen_steady_ns_;      // group key -> steady time last seen (not saved)
  int64_t arrival_wall_ns_ = 0, arrival_steady_ns_ = 0;  // NoteArrival
  int64_t resume_steady_ns_ = 0;  // the first steady time this engine saw: silence counts from it
};

// What `edgeline status` shows, read back from a saved state.
struct DownsampleSummary {
  int64_t closed_until_ns = 0;  // 0 when nothing closed yet
  int64_t max_event_ns = 0;
  int64_t open_windows = 0;
  DownsampleCounters counters;
  std::vector<DeviceLiveness> devices;  // stale first, then longest silent first
};
Result<DownsampleSummary> SummarizeDownsampleState(std::string_view state);

}  // namespace edgeline
