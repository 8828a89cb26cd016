// DownsampleTask: runs the Downsampler as a queue consumer ("downsampler" on stream "raw").
// Each step reads committed raw batches, feeds their points in order, and commits in ONE
// transaction (Queue::AckWithOutput): the cursor past those batches, the closed windows' rows on
// stream "downsampled", alarm changes on stream "alarms" (when EDGELINE_ALARM_TOPIC is set) and
// the engine's state. A crash therefore neither repeats nor skips a window, and open windows
// come back exactly as they were. When the task has caught up and no newer point came for
// EDGELINE_DOWNSAMPLE_IDLE_TIMEOUT, event time advances with the steady clock since the newest
// point, so the last window before a quiet period closes too. Each step also checks device
// liveness (Downsampler::CheckStale) on the clock, so a silent device's `stale` alarm is
// committed the same way, with the batches' append times as the devices' last-seen times.
// A QueueConsumer that takes live data once per idle_ns (see Step), so appends do not wake it.
// Borrows the queue and clock. Not thread-safe: Step()/Run() belong to one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "config/config.h"
#include "downsample/downsampler.h"
#include "storage/queue.h"
#include "storage/queue_consumer.h"

namespace edgeline {

inline constexpr std::string_view kDownsamplerSink = "downsampler";

struct DownsampleTaskOptions {
  int64_t batch_points = 20000;      // raw points per step (per transaction, one state write)
  int64_t idle_ns = 1'000'000'000;   // wait between steps when there is no backlog
  int64_t retry_ns = 1'000'000'000;  // wait after a failed commit
  // False when no sink reads stream "downsampled" (InfluxDB and Kafka both leave it out): rows
  // are then not written, since nothing would ever collect them. Windows, alarms and state go on.
  bool write_rows = true;
  // Whether ingest can receive now (MQTT connected); null = always. While it cannot, no device is
  // silent: silence counts from the last step it could not.
  std::function<bool()> ingest_connected;
};

// One alarm change as stored on stream "alarms": a JSON object with the MQTT topic and payload.
// Documented in docs/QUEUE_FORMAT.md.
std::string AlarmRecord(const DownsampleConfig& config, const AlarmChange& change);
// The topic an alarm change is published to (see EDGELINE_ALARM_TOPIC).
std::string AlarmTopic(const std::string& topic_template, const AlarmChange& change);

class DownsampleTask final : public QueueConsumer {
 public:
  DownsampleTask(const DownsampleConfig& config, Queue* queue, const Clock* clock, DownsampleTaskOptions options = {});

  // One unit of work; returns the ns to wait before the next (0 = more is pending).
  int64_t Step() override;

  // REQUIRES: the Step thread.
  const Downsampler& engine() const { return *engine_; }
  const std::string& last_error() const { return last_error_; }

 private:
  // Restores the engine from the queue (Start() calls it after registering the consumer).
  Status OnStart() override;
  bool WakeOnAppend() const override { return false; }
  Status Reload();
  Status Commit(int64_t seq, int64_t points_consumed, const DownsampleOutput& out);

  DownsampleConfig config_;
  const Clock* clock_;
  DownsampleTaskOptions options_;
  std::unique_ptr<Downsampler> engine_;
  bool reload_needed_ = false;         // a commit failed: the engine ran ahead of what is stored
  int64_t cursor_seq_ = 0;             // the last batch this task consumed (committed)
  int64_t newest_seen_steady_ns_ = 0;  // steady time when the newest event time last grew
  std::string last_error_;
};

}  // namespace edgeline
