#include "downsample/downsample_task.h"

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>

#include "common/log.h"

namespace edgeline {
namespace {

// MQTT topic names must not contain wildcards; a tag value could.
std::string TopicLevel(std::string_view value) {
  std::string out(value);
  for (char& c : out) {
    if (c == '+' || c == '#' || c == '/') c = '_';
  }
  return out.empty() ? "_" : out;
}

}  // namespace

std::string AlarmTopic(const std::string& topic_template, const AlarmChange& change) {
  if (topic_template.find('{') == std::string::npos) {
    std::string topic = topic_template;
    for (const auto& [k, v] : change.group_tags) topic += "/" + TopicLevel(v);
    return topic + "/" + TopicLevel(change.output);
  }
  std::string topic;
  for (size_t i = 0; i < topic_template.size();) {
    size_t close = topic_template.find('}', i);
    if (topic_template[i] != '{' || close == std::string::npos) {
      topic += topic_template[i++];
      continue;
    }
    std::string name = topic_template.substr(i + 1, close - i - 1);
    std::string value = "_";
    if (name == "alarm") {
      value = TopicLevel(change.output);
    } else if (name == "measurement") {
      value = TopicLevel(change.measurement);
    } else {
      for (const auto& [k, v] : change.group_tags) {
        if (k == name) value = TopicLevel(v);
      }
    }
    topic += value;
    i = close + 1;
  }
  return topic;
}

std::string AlarmRecord(const DownsampleConfig& config, const AlarmChange& change) {
  nlohmann::json tags = nlohmann::json::object();
  for (const auto& [k, v] : change.group_tags) tags[k] = v;
  nlohmann::json payload = {{"alarm", change.output},
                            {"value", change.value},
                            {"previous", change.previous},
                            {"field", change.field},
                            {"field_value", change.field_value},
                            {"time", change.time_ns},
                            {"measurement", change.measurement},
                            {"tags", std::move(tags)}};
  if (!change.reason.empty()) payload["reason"] = change.reason;
  nlohmann::json record = {{"topic", AlarmTopic(config.alarm_topic, change)}, {"payload", payload.dump()}};
  return record.dump();
}

DownsampleTask::DownsampleTask(const DownsampleConfig& config, Queue* queue, const Clock* clock,
                               DownsampleTaskOptions options)
    : QueueConsumer(std::string(kDownsamplerSink), std::string(kRawStream), queue, "downsample"),
      config_(config),
      clock_(clock),
      options_(options) {}

Status DownsampleTask::OnStart() {
  RETURN_IF_ERROR(Reload());
  const Downsampler& e = *engine_;
  LOG_INFO("downsample") << "resuming: " << e.open_windows() << " open windows, closed through "
                         << (e.closed_until_ns() == INT64_MIN ? std::string("nothing yet")
                                                              : std::to_string(e.closed_until_ns()));
  return Status::Ok();
}

Status DownsampleTask::Reload() {
  auto engine = std::make_unique<Downsampler>(config_);
  ASSIGN_OR_RETURN(std::string state, queue()->ConsumerState(std::string(kDownsamplerSink)));
  if (!state.empty()) RETURN_IF_ERROR(engine->RestoreState(state));
  if (engine_) engine->CarryLivenessFrom(*engine_);  // after a failed commit: same process, same clock
  engine_ = std::move(engine);
  ASSIGN_OR_RETURN(cursor_seq_, queue()->CursorOf(std::string(kDownsamplerSink)));
  // Idle time is counted from now: time spent stopped is not event time that passed.
  newest_seen_steady_ns_ = clock_->SteadyNowNs();
  return Status::Ok();
}

Status DownsampleTask::Commit(int64_t seq, int64_t points_consumed, const DownsampleOutput& out) {
  std::vector<BatchInput> outputs;
  if (!out.points.empty() && options_.write_rows) {
    BatchInput rows;
    rows.stream = std::string(kDownsampledStream);
    rows.min_ts_ns = INT64_MAX;
    rows.max_ts_ns = INT64_MIN;
    for (const Point& p : out.points) {
      rows.lines.push_back(FormatPoint(p));
      rows.min_ts_ns = std::min(rows.min_ts_ns, *p.timestamp_ns);
      rows.max_ts_ns = std::max(rows.max_ts_ns, *p.timestamp_ns);
    }
    outputs.push_back(std::move(rows));
  }
  if (!config_.alarm_topic.empty() && !out.alarms.empty()) {
    BatchInput alarms;
    alarms.stream = std::string(kAlarmStream);
    alarms.min_ts_ns = INT64_MAX;
    alarms.max_ts_ns = INT64_MIN;
    for (const AlarmChange& a : out.alarms) {
      alarms.lines.push_back(AlarmRecord(config_, a));
      alarms.min_ts_ns = std::min(alarms.min_ts_ns, a.time_ns);
      alarms.max_ts_ns = std::max(alarms.max_ts_ns, a.time_ns);
    }
    outputs.push_back(std::move(alarms));
  }
  SinkAttempt attempt;
  attempt.state = SinkState::kOk;
  attempt.sent_points = points_consumed;
  return queue()->AckWithOutput(std::string(kDownsamplerSink), seq, attempt, outputs, engine_->SaveState());
}

int64_t DownsampleTask::Step() {
  if (!started()) {
    Status st = Start();
    if (!st.ok()) {
      last_error_ = st.ToString();
      LOG_ERROR("downsample") << "cannot start: " << last_error_;
      return options_.retry_ns;
    }
  }
  if (reload_needed_) {
    Status st = Reload();
    if (!st.ok()) {
      last_error_ = st.ToString();
      LOG_ERROR("downsample") << "cannot restore the stored state: " << last_error_;
      return options_.retry_ns;
    }
    reload_needed_ = false;
  }
  auto read = queue()->Read(std::string(kDownsamplerSink), options_.batch_points);
  if (!read.ok()) {
    last_error_ = read.status().ToString();
    LOG_WARN("downsample") << "cannot read the raw stream: " << last_error_;
    return options_.retry_ns;
  }
  // Read after the raw stream, so a wall-clock step that stamped any of these points is seen.
  if (const int64_t step = engine_->ObserveWallClock(clock_->WallNowNs(), clock_->SteadyNowNs()); step > 0) {
    LOG_WARN("downsample") << "the wall clock went back " << step / kNsPerMs
                           << " ms: event time restarts at the first point stamped after the step";
  }
  const int64_t rewinds_before = engine_->counters().clock_rewinds;
  DownsampleOutput out;
  int64_t seq = cursor_seq_;
  int64_t consumed = 0;
  const int64_t steady_now = clock_->SteadyNowNs();
  if (read->empty()) {
    const int64_t newest = engine_->max_event_ns();
    const int64_t idle = steady_now - newest_seen_steady_ns_;
    if (newest != INT64_MIN && config_.idle_timeout_ns != 0 && idle >= config_.idle_timeout_ns &&
        idle > config_.lateness_ns) {
      engine_->AdvanceWatermark(newest + (idle - config_.lateness_ns), &out);
    }
  } else {
    const int64_t newest_before = engine_->max_event_ns();
    for (const Batch& batch : *read) {
      engine_->NoteArrival(batch.created_ns, steady_now);
      for (const std::string& line : batch.lines) {
        auto point = ParseLine(line);
        // Raw lines were validated at ingest; one that does not parse is a bug, not data.
        if (!point.ok() || !point->timestamp_ns) {
          LOG_ERROR("downsample") << "skipping an unparsable raw line in batch " << batch.seq;
          continue;
        }
        engine_->Add(*point, &out);
        ++consumed;
      }
      seq = batch.seq;
    }
    if (engine_->max_event_ns() > newest_before) newest_seen_steady_ns_ = steady_now;
  }
  if (options_.ingest_connected && !options_.ingest_connected()) engine_->RestartSilence(steady_now);
  // Not while a backlog drains: devices whose points are still unread are not silent.
  if (consumed < options_.batch_points) engine_->CheckStale(clock_->WallNowNs(), steady_now, &out);
  if (read->empty() && out.points.empty() && out.alarms.empty()) return options_.idle_ns;
  Status st = Commit(seq, consumed, out);
  if (!st.ok()) {
    last_error_ = st.ToString();
    LOG_WARN("downsample") << "cannot commit windows: " << last_error_ << "; retrying";
    // The engine ran ahead of what is stored: start again from the stored state.
    reload_needed_ = !Reload().ok();
    return options_.retry_ns;
  }
  last_error_.clear();
  cursor_seq_ = seq;
  if (engine_->counters().clock_rewinds > rewinds_before) {
    LOG_WARN("downsample") << "event time restarted after the clock step; newest point " << engine_->max_event_ns()
                           << ", windows closed through " << engine_->closed_until_ns();
  }
  if (!out.points.empty()) {
    LOG_DEBUG("downsample") << out.points.size() << " rows from closed windows, " << out.alarms.size()
                            << " alarm changes";
  }
  // A full read means a backlog: continue at once. Otherwise wait: each step rewrites the whole
  // engine state, so live data is taken in steps of at most one per idle_ns rather than one per
  // ingest commit (rows are due once per window, so this adds no meaningful delay).
  return consumed >= options_.batch_points ? 0 : options_.idle_ns;
}

}  // namespace edgeline
