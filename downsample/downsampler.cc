#include "downsample/downsampler.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <nlohmann/json.hpp>

namespace edgeline {
namespace {

using nlohmann::json;

constexpr int kStateVersion = 1;

bool IsNumeric(const FieldValue& v) {
  return v.type == FieldType::kFloat || v.type == FieldType::kInteger || v.type == FieldType::kUnsigned;
}

double AsDouble(const FieldValue& v) {
  switch (v.type) {
    case FieldType::kFloat: return v.f;
    case FieldType::kInteger: return static_cast<double>(v.i);
    case FieldType::kUnsigned: return static_cast<double>(v.u);
    default: return 0;
  }
}

FieldValue Float(double d) {
  FieldValue v;
  v.type = FieldType::kFloat;
  v.f = d;
  return v;
}

FieldValue Integer(int64_t i) {
  FieldValue v;
  v.type = FieldType::kInteger;
  v.i = i;
  return v;
}

FieldValue String(std::string s) {
  FieldValue v;
  v.type = FieldType::kString;
  v.s = std::move(s);
  return v;
}

// An integer aggregate that does not fit int64 is written as a float rather than wrapped.
FieldValue IntegerOrFloat(double d) {
  if (d >= -9.2e18 && d <= 9.2e18) return Integer(std::llround(d));
  return Float(d);
}

bool Compare(double value, CompareOp op, double threshold) {
  switch (op) {
    case CompareOp::kLt: return value < threshold;
    case CompareOp::kLe: return value <= threshold;
    case CompareOp::kGt: return value > threshold;
    case CompareOp::kGe: return value >= threshold;
    case CompareOp::kEq: return value == threshold;
    case CompareOp::kNe: return value != threshold;
  }
  return false;
}

// Floor division that is right for negative timestamps too.
int64_t FloorTo(int64_t ts, int64_t every) {
  int64_t q = ts / every;
  if (ts % every != 0 && ts < 0) --q;
  return q * every;
}

json ValueToJson(const FieldValue& v) {
  switch (v.type) {
    case FieldType::kFloat: return json::array({0, v.f});
    case FieldType::kInteger: return json::array({1, v.i});
    case FieldType::kUnsigned: return json::array({2, v.u});
    case FieldType::kString: return json::array({3, v.s});
    case FieldType::kBool: return json::array({4, v.b});
  }
  return json::array({0, 0.0});
}

FieldValue ValueFromJson(const json& j) {
  FieldValue v;
  v.type = static_cast<FieldType>(j.at(0).get<int>());
  switch (v.type) {
    case FieldType::kFloat: v.f = j.at(1).get<double>(); break;
    case FieldType::kInteger: v.i = j.at(1).get<int64_t>(); break;
    case FieldType::kUnsigned: v.u = j.at(1).get<uint64_t>(); break;
    case FieldType::kString: v.s = j.at(1).get<std::string>(); break;
    case FieldType::kBool: v.b = j.at(1).get<bool>(); break;
  }
  return v;
}

// JSON has no infinity; an overflowing sum is saved as null and read back as +inf.
double DoubleFromJson(const json& j) { return j.is_null() ? HUGE_VAL : j.get<double>(); }

json CountersToJson(const DownsampleCounters& c) {
  return {
      {"points_in", c.points_in},        {"points_late", c.points_late},       {"points_filtered", c.points_filtered},
      {"points_out", c.points_out},      {"windows_closed", c.windows_closed}, {"alarm_changes", c.alarm_changes},
      {"clock_rewinds", c.clock_rewinds}, {"stale_alarms", c.stale_alarms},   {"status_points", c.status_points},
      {"devices_forgotten", c.devices_forgotten}};
}

DownsampleCounters CountersFromJson(const json& j) {
  DownsampleCounters c;
  c.points_in = j.value("points_in", int64_t{0});
  c.points_late = j.value("points_late", int64_t{0});
  c.points_filtered = j.value("points_filtered", int64_t{0});
  c.points_out = j.value("points_out", int64_t{0});
  c.windows_closed = j.value("windows_closed", int64_t{0});
  c.alarm_changes = j.value("alarm_changes", int64_t{0});
  c.clock_rewinds = j.value("clock_rewinds", int64_t{0});
  c.stale_alarms = j.value("stale_alarms", int64_t{0});
  c.status_points = j.value("status_points", int64_t{0});
  c.devices_forgotten = j.value("devices_forgotten", int64_t{0});
  return c;
}

json DevicesToJson(const std::map<std::string, DeviceLiveness>& devices) {
  json out = json::array();
  for (const auto& [key, d] : devices) {
    out.push_back({{"key", key},
                   {"measurement", d.measurement},
                   {"tags", d.tags},
                   {"last_seen_ns", d.last_seen_ns},
                   {"newest_event_ns", d.newest_event_ns},
                   {"stale_event_ns", d.stale_event_ns},
                   {"outputs", d.outputs},
                   {"stale", d.stale},
                   {"reason", d.reason},
                   {"stale_since_ns", d.stale_since_ns}});
  }
  return out;
}

// A state saved before liveness was tracked: its devices are the groups with an alarm level or
// an open window, never seen in this run (silence counts from the restart).
std::map<std::string, DeviceLiveness> DevicesFromOlderState(const json& state) {
  std::map<std::string, DeviceLiveness> devices;
  auto device = [&](const std::string& key) -> DeviceLiveness& {
    auto [it, fresh] = devices.try_emplace(key);
    if (fresh) {
      size_t at = key.find('\n');
      it->second.measurement = key.substr(0, at);
      while (at != std::string::npos) {
        const size_t next = key.find('\n', at + 1);
        const std::string tag = key.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
        const size_t tab = tag.find('\t');
        if (tab != std::string::npos) it->second.tags.emplace_back(tag.substr(0, tab), tag.substr(tab + 1));
        at = next;
      }
    }
    return it->second;
  };
  for (const auto& [level_key, value] : state.at("alarm_levels").items()) {
    const size_t cut = level_key.rfind('\n');
    if (cut == std::string::npos) continue;
    device(level_key.substr(0, cut)).outputs.push_back(level_key.substr(cut + 1));
  }
  for (const json& w : state.at("windows")) {
    for (const json& g : w.at("groups")) device(g.at("key").get<std::string>());
  }
  return devices;
}

std::map<std::string, DeviceLiveness> DevicesFromJson(const json& state) {
  std::map<std::string, DeviceLiveness> devices;
  if (!state.contains("devices")) return DevicesFromOlderState(state);
  for (const json& j : state.at("devices")) {
    DeviceLiveness& d = devices[j.at("key").get<std::string>()];
    d.measurement = j.at("measurement").get<std::string>();
    d.tags = j.at("tags").get<std::vector<std::pair<std::string, std::string>>>();
    d.last_seen_ns = j.at("last_seen_ns").get<int64_t>();
    d.newest_event_ns = j.value("newest_event_ns", int64_t{INT64_MIN});
    d.stale_event_ns = j.value("stale_event_ns", int64_t{INT64_MIN});
    d.outputs = j.value("outputs", std::vector<std::string>{});
    d.stale = j.at("stale").get<bool>();
    d.reason = j.at("reason").get<std::string>();
    d.stale_since_ns = j.at("stale_since_ns").get<int64_t>();
  }
  return devices;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Stale devices first (longest stale first), then the longest silent first.
bool SilentLonger(const DeviceLiveness& a, const DeviceLiveness& b) {
  if (a.stale != b.stale) return a.stale;
  if (a.stale && a.stale_since_ns != b.stale_since_ns) return a.stale_since_ns < b.stale_since_ns;
  return a.last_seen_ns < b.last_seen_ns;
}

}  // namespace

Downsampler::Downsampler(const DownsampleConfig& config)
    : config_(config), closed_until_ns_(INT64_MIN), max_event_ns_(INT64_MIN) {}

int64_t Downsampler::WindowStart(int64_t ts) const { return FloorTo(ts, config_.every_ns); }

std::string Downsampler::GroupKey(const Point& point, std::vector<std::pair<std::string, std::string>>* tags) const {
  tags->clear();
  for (const std::string& key : config_.group_by) {
    for (const auto& [k, v] : point.tags) {
      if (k == key) {
        tags->emplace_back(k, v);
        break;
      }
    }
  }
  std::sort(tags->begin(), tags->end());
  // Separators that line protocol cannot carry unescaped keep distinct groups distinct.
  std::string key = point.measurement;
  for (const auto& [k, v] : *tags) {
    key += '\n';
    key += k;
    key += '\t';
    key += v;
  }
  return key;
}

Aggregate Downsampler::AggregateFor(const std::string& field) const {
  for (const auto& [name, aggregate] : config_.field_aggregates) {
    if (name == field) return aggregate;
  }
  return config_.default_aggregate;
}

void Downsampler::Add(const Point& point, DownsampleOutput* out) {
  if (!config_.device_status_measurement.empty() && point.measurement == config_.device_status_measurement) {
    DeviceStatus(point, out);
    return;
  }
  if (!config_.measurements.empty() && std::find(config_.measurements.begin(), config_.measurements.end(),
                                                 point.measurement) == config_.measurements.end()) {
    ++counters_.points_filtered;
    return;
  }
  const int64_t ts = point.timestamp_ns.value_or(0);
  std::vector<std::pair<std::string, std::string>> tags;
  std::string key = GroupKey(point, &tags);
  Seen(key, point, tags, out);
  if (ts < closed_until_ns_) {
    if (ts < clock_step_from_ns_) {
      ++counters_.points_late;
      return;
    }
    // The first point stamped after a wall-clock step back: event time restarts here.
    const int64_t watermark = ts >= INT64_MIN + config_.lateness_ns ? ts - config_.lateness_ns : INT64_MIN;
    closed_until_ns_ = watermark == INT64_MIN ? INT64_MIN : FloorTo(watermark, config_.every_ns);
    max_event_ns_ = ts;
    clock_step_from_ns_ = INT64_MAX;
    ++counters_.clock_rewinds;
  }
  auto [it, inserted] = windows_[WindowStart(ts)].try_emplace(key);
  GroupState& group = it->second;
  if (inserted) {
    group.measurement = point.measurement;
    group.tags = std::move(tags);
    group.first_ts = ts;
    group.last_ts = ts;
  }
  // Ties go to the later arrival for "last" and stay with the earlier one for "first".
  group.first_ts = std::min(group.first_ts, ts);
  group.last_ts = std::max(group.last_ts, ts);
  for (const auto& [name, value] : point.fields) {
    auto [fit, fresh] = group.fields.try_emplace(name);
    FieldState& f = fit->second;
    if (fresh || ts < f.first_ts) {
      f.first = value;
      f.first_ts = ts;
    }
    if (fresh || ts >= f.last_ts) {
      f.last = value;
      f.last_ts = ts;
    }
    ++f.count;
    if (IsNumeric(value)) {
      double d = AsDouble(value);
      if (f.numeric == 0) {
        f.min = f.max = d;
      } else {
        f.min = std::min(f.min, d);
        f.max = std::max(f.max, d);
      }
      f.sum += d;
      ++f.numeric;
      if (value.type != FieldType::kInteger) f.all_integer = false;
    }
  }
  ++counters_.points_in;
  if (ts > max_event_ns_) {
    max_event_ns_ = ts;
    // Saturating: a lateness larger than the timestamp must not wrap around.
    int64_t watermark = ts >= INT64_MIN + config_.lateness_ns ? ts - config_.lateness_ns : INT64_MIN;
    AdvanceWatermark(watermark, out);
  }
}

int64_t Downsampler::ObserveWallClock(int64_t wall_ns, int64_t steady_ns) {
  int64_t step = 0;
  if (last_steady_ns_ != 0) {
    const int64_t elapsed = steady_ns - last_steady_ns_;
    step = last_wall_ns_ + elapsed - wall_ns;
    // Anything stamped after the step was stamped at or after its instant, which on the new
    // wall clock is no earlier than now minus the steady time since the previous reading.
    // A step shorter than a window (or the lateness) costs at most that much of late points;
    // restarting event time for it would more likely put points into a window already emitted.
    if (step > std::max(config_.lateness_ns, config_.every_ns)) {
      ExpectClockStepBack(wall_ns - elapsed);
    } else {
      step = 0;
    }
  }
  last_wall_ns_ = wall_ns;
  last_steady_ns_ = steady_ns;
  if (step == 0 && expecting_clock_step() && wall_ns - config_.lateness_ns >= closed_until_ns_) {
    clock_step_from_ns_ = INT64_MAX;  // points stamped now are not late: nothing to restart
  }
  return step;
}

void Downsampler::AdvanceWatermark(int64_t watermark_ns, DownsampleOutput* out) {
  if (watermark_ns == INT64_MIN) return;
  int64_t boundary = FloorTo(watermark_ns, config_.every_ns);
  if (boundary > closed_until_ns_) CloseThrough(boundary, out);
}

void Downsampler::CloseThrough(int64_t boundary, DownsampleOutput* out) {
  // A window [start, start+every) is closed when its end is <= boundary.
  while (!windows_.empty() && windows_.begin()->first + config_.every_ns <= boundary) {
    auto node = windows_.extract(windows_.begin());
    for (const auto& [key, group] : node.mapped()) Emit(node.key(), key, group, out);
    ++counters_.windows_closed;
  }
  closed_until_ns_ = boundary;
}

void Downsampler::Emit(int64_t window_start, const std::string& key, const GroupState& group, DownsampleOutput* out) {
  Point p;
  p.measurement = group.measurement;
  p.tags = group.tags;
  for (const auto& tag : config_.set_tags) p.tags.push_back(tag);
  std::sort(p.tags.begin(), p.tags.end());
  switch (config_.default_aggregate) {
    case Aggregate::kLast: p.timestamp_ns = group.last_ts; break;
    case Aggregate::kFirst: p.timestamp_ns = group.first_ts; break;
    default: p.timestamp_ns = window_start + config_.every_ns; break;
  }
  for (const auto& [name, f] : group.fields) {
    Aggregate a = AggregateFor(name);
    std::optional<FieldValue> v;
    switch (a) {
      case Aggregate::kLast: v = f.last; break;
      case Aggregate::kFirst: v = f.first; break;
      case Aggregate::kCount: v = Integer(f.count); break;
      case Aggregate::kMin:
      case Aggregate::kMax:
      case Aggregate::kSum: {
        if (f.numeric == 0) break;  // strings/bools have no min, max or sum
        double d = a == Aggregate::kMin ? f.min : a == Aggregate::kMax ? f.max : f.sum;
        if (!std::isfinite(d)) break;
        v = f.all_integer ? IntegerOrFloat(d) : Float(d);
        break;
      }
      case Aggregate::kMean: {
        if (f.numeric == 0) break;
        double d = f.sum / static_cast<double>(f.numeric);
        if (std::isfinite(d)) v = Float(d);
        break;
      }
    }
    if (v) p.fields.emplace_back(name, std::move(*v));
  }
  const auto device = devices_.find(key);
  const bool frozen = device != devices_.end() &&
                      (device->second.stale || group.last_ts <= device->second.stale_event_ns);
  for (const AlarmRule& rule : config_.alarms) {
    auto it = std::find_if(p.fields.begin(), p.fields.end(), [&](const auto& f) { return f.first == rule.field; });
    if (it == p.fields.end() || !IsNumeric(it->second)) continue;  // cannot judge: no alarm field
    double value = AsDouble(it->second);
    std::string level = Compare(value, rule.op, rule.threshold) ? rule.when_true : rule.when_false;
    std::string& previous = alarm_levels_[key + '\n' + rule.output];
    // A stale device keeps `stale` until it reports again (Seen); windows of points from before
    // its stale mark still get rows with their computed value, but do not move the alarm.
    if (previous != level && !frozen) {
      AlarmChange change;
      change.measurement = group.measurement;
      change.group_tags = group.tags;
      change.output = rule.output;
      change.previous = previous;
      change.value = level;
      change.field = rule.field;
      change.field_value = value;
      change.time_ns = *p.timestamp_ns;
      out->alarms.push_back(std::move(change));
      ++counters_.alarm_changes;
      previous = level;
    }
    p.fields.emplace_back(rule.output, String(level));
  }
  if (p.fields.empty()) return;  // nothing representable (e.g. only strings under "sum")
  out->points.push_back(std::move(p));
  ++counters_.points_out;
}

std::vector<std::string> Downsampler::AlarmOutputs() const {
  std::vector<std::string> outputs;
  for (const AlarmRule& rule : config_.alarms) {
    if (std::find(outputs.begin(), outputs.end(), rule.output) == outputs.end()) outputs.push_back(rule.output);
  }
  if (outputs.empty()) outputs.push_back("alarm");
  return outputs;
}

void Downsampler::CarryLivenessFrom(const Downsampler& other) {
  seen_steady_ns_ = other.seen_steady_ns_;
  resume_steady_ns_ = other.resume_steady_ns_;
}

void Downsampler::NoteArrival(int64_t received_ns, int64_t steady_ns) {
  arrival_wall_ns_ = received_ns;
  arrival_steady_ns_ = steady_ns;
  if (resume_steady_ns_ == 0) resume_steady_ns_ = steady_ns;
}

// Records an alarm output's new level; an AlarmChange when it differs from the previous one.
static void ChangeLevel(std::map<std::string, std::string>* levels, const std::string& key,
                        const DeviceLiveness& device, const std::string& output, const std::string& value,
                        const std::string& field, double field_value, int64_t time_ns, std::string reason,
                        DownsampleCounters* counters, DownsampleOutput* out) {
  std::string& previous = (*levels)[key + '\n' + output];
  if (previous == value) return;
  AlarmChange change;
  change.measurement = device.measurement;
  change.group_tags = device.tags;
  change.output = output;
  change.previous = previous;
  change.value = value;
  change.field = field;
  change.field_value = field_value;
  change.time_ns = time_ns;
  change.reason = std::move(reason);
  out->alarms.push_back(std::move(change));
  ++counters->alarm_changes;
  previous = value;
}

void Downsampler::Seen(const std::string& key, const Point& point,
                       const std::vector<std::pair<std::string, std::string>>& tags, DownsampleOutput* out) {
  auto [it, fresh] = devices_.try_emplace(key);
  DeviceLiveness& device = it->second;
  if (fresh) {
    device.measurement = point.measurement;
    device.tags = tags;
  }
  const int64_t ts = point.timestamp_ns.value_or(0);
  // The newest arrival, not the latest-ever: a wall clock stepped back must not pin it ahead.
  device.last_seen_ns = arrival_wall_ns_ != 0 ? arrival_wall_ns_ : ts;
  device.newest_event_ns = std::max(device.newest_event_ns, ts);
  seen_steady_ns_[key] = arrival_steady_ns_;
  auto field_of = [&](const AlarmRule& rule) {
    auto f = std::find_if(point.fields.begin(), point.fields.end(), [&](const auto& x) { return x.first == rule.field; });
    return f == point.fields.end() || !IsNumeric(f->second) ? nullptr : &f->second;
  };
  for (const AlarmRule& rule : config_.alarms) {
    if (field_of(rule) != nullptr && std::find(device.outputs.begin(), device.outputs.end(), rule.output) ==
                                         device.outputs.end()) {
      device.outputs.push_back(rule.output);
    }
  }
  if (!device.stale) return;
  device.stale = false;
  device.reason.clear();
  device.stale_since_ns = 0;
  if (config_.alarms.empty()) {
    ChangeLevel(&alarm_levels_, key, device, "alarm", "ok", "", 0, ts, "reported again", &counters_, out);
    return;
  }
  // Each output goes back to what its rule gives for this point, where one point can stand for the
  // window's aggregate (not sum or count).
  for (const AlarmRule& rule : config_.alarms) {
    const FieldValue* f = field_of(rule);
    const Aggregate aggregate = AggregateFor(rule.field);
    if (f == nullptr || aggregate == Aggregate::kSum || aggregate == Aggregate::kCount) continue;
    const double value = AsDouble(*f);
    const std::string& level = Compare(value, rule.op, rule.threshold) ? rule.when_true : rule.when_false;
    ChangeLevel(&alarm_levels_, key, device, rule.output, level, rule.field, value, ts, "reported again", &counters_,
                out);
  }
}

void Downsampler::MarkStale(const std::string& key, DeviceLiveness* device, std::string_view reason, int64_t wall_ns,
                            DownsampleOutput* out) {
  device->stale = true;
  device->reason = std::string(reason.substr(0, reason.find(' ')));  // "silent" or "offline"
  device->stale_since_ns = wall_ns;
  device->stale_event_ns = device->newest_event_ns;
  ++counters_.stale_alarms;
  const std::vector<std::string> outputs = config_.alarms.empty() ? AlarmOutputs() : device->outputs;
  if (outputs.empty()) return;  // no alarm of its own to set: status shows it stale
  Point row;
  row.measurement = device->measurement;
  row.tags = device->tags;
  for (const auto& tag : config_.set_tags) row.tags.push_back(tag);
  std::sort(row.tags.begin(), row.tags.end());
  row.timestamp_ns = wall_ns;
  for (const std::string& output : outputs) {
    ChangeLevel(&alarm_levels_, key, *device, output, "stale", "", 0, wall_ns, std::string(reason), &counters_, out);
    row.fields.emplace_back(output, String("stale"));
  }
  out->points.push_back(std::move(row));
  ++counters_.points_out;
}

void Downsampler::CheckStale(int64_t wall_ns, int64_t steady_ns, DownsampleOutput* out) {
  if (resume_steady_ns_ == 0) resume_steady_ns_ = steady_ns;
  if (devices_.size() > kMaxDevices) {
    std::vector<std::pair<int64_t, std::string>> by_age;
    for (const auto& [key, d] : devices_) by_age.emplace_back(d.last_seen_ns, key);
    std::sort(by_age.begin(), by_age.end());
    for (size_t i = 0; i < devices_.size() - kMaxDevices && i < by_age.size(); ++i) {
      const std::string& key = by_age[i].second;
      for (const std::string& output : AlarmOutputs()) alarm_levels_.erase(key + '\n' + output);
      seen_steady_ns_.erase(key);
      ++counters_.devices_forgotten;
    }
    for (size_t i = 0; i < by_age.size() && devices_.size() > kMaxDevices; ++i) devices_.erase(by_age[i].second);
  }
  if (config_.stale_after_ns <= 0) return;
  for (auto& [key, device] : devices_) {
    if (device.stale) continue;
    int64_t since = resume_steady_ns_;
    if (auto it = seen_steady_ns_.find(key); it != seen_steady_ns_.end()) since = std::max(since, it->second);
    const int64_t silent = steady_ns - since;
    if (silent < config_.stale_after_ns) continue;
    MarkStale(key, &device, "silent for " + std::to_string(silent / 1'000'000'000) + "s", wall_ns, out);
  }
}

void Downsampler::DeviceStatus(const Point& point, DownsampleOutput* out) {
  ++counters_.status_points;
  if (config_.stale_after_ns <= 0) return;
  auto status = std::find_if(point.fields.begin(), point.fields.end(), [](const auto& f) { return f.first == "status"; });
  if (status == point.fields.end() || status->second.type != FieldType::kString ||
      Lower(status->second.s) != "offline") {
    return;
  }
  // A retained status comes with every subscribe: it says what was, not that the device just left.
  for (const auto& [name, value] : point.fields) {
    if (name == "retained" && value.type == FieldType::kBool && value.b) return;
  }
  std::vector<std::pair<std::string, std::string>> id;
  GroupKey(point, &id);
  if (id.empty()) return;  // no group-by tag: no device to match
  for (auto& [key, device] : devices_) {
    if (device.stale) continue;
    bool match = true;
    for (const auto& tag : id) {
      match = match && std::find(device.tags.begin(), device.tags.end(), tag) != device.tags.end();
    }
    if (match) MarkStale(key, &device, "offline", point.timestamp_ns.value_or(0), out);
  }
}

int64_t Downsampler::open_windows() const {
  int64_t n = 0;
  for (const auto& [start, groups] : windows_) n += static_cast<int64_t>(groups.size());
  return n;
}

std::string Downsampler::SaveState() const {
  json windows = json::array();
  for (const auto& [start, groups] : windows_) {
    json gs = json::array();
    for (const auto& [key, g] : groups) {
      json fields = json::array();
      for (const auto& [name, f] : g.fields) {
        fields.push_back({{"name", name},
                          {"first", ValueToJson(f.first)},
                          {"first_ts", f.first_ts},
                          {"last", ValueToJson(f.last)},
                          {"last_ts", f.last_ts},
                          {"count", f.count},
                          {"numeric", f.numeric},
                          {"all_integer", f.all_integer},
                          {"min", f.min},
                          {"max", f.max},
                          {"sum", f.sum}});
      }
      gs.push_back({{"key", key},
                    {"measurement", g.measurement},
                    {"tags", g.tags},
                    {"first_ts", g.first_ts},
                    {"last_ts", g.last_ts},
                    {"fields", std::move(fields)}});
    }
    windows.push_back({{"start", start}, {"groups", std::move(gs)}});
  }
  json state = {{"version", kStateVersion},
                {"every_ns", config_.every_ns},
                {"closed_until_ns", closed_until_ns_},
                {"max_event_ns", max_event_ns_},
                {"clock_step_from_ns", clock_step_from_ns_},
                {"open_windows", open_windows()},
                {"counters", CountersToJson(counters_)},
                {"alarm_levels", alarm_levels_},
                {"devices", DevicesToJson(devices_)},
                {"windows", std::move(windows)}};
  return state.dump();
}

Status Downsampler::RestoreState(std::string_view text) {
  try {
    json state = json::parse(text);
    if (state.at("version").get<int>() != kStateVersion) {
      return Status::Corruption("downsampler state has an unknown version");
    }
    // Windows cut with another length cannot be continued; the boundary still holds, so
    // nothing already emitted is emitted again.
    const bool same_windows = state.at("every_ns").get<int64_t>() == config_.every_ns;
    Windows windows;
    if (same_windows) {
      for (const json& w : state.at("windows")) {
        auto& groups = windows[w.at("start").get<int64_t>()];
        for (const json& g : w.at("groups")) {
          GroupState& group = groups[g.at("key").get<std::string>()];
          group.measurement = g.at("measurement").get<std::string>();
          group.tags = g.at("tags").get<std::vector<std::pair<std::string, std::string>>>();
          group.first_ts = g.at("first_ts").get<int64_t>();
          group.last_ts = g.at("last_ts").get<int64_t>();
          for (const json& f : g.at("fields")) {
            FieldState& fs = group.fields[f.at("name").get<std::string>()];
            fs.first = ValueFromJson(f.at("first"));
            fs.first_ts = f.at("first_ts").get<int64_t>();
            fs.last = ValueFromJson(f.at("last"));
            fs.last_ts = f.at("last_ts").get<int64_t>();
            fs.count = f.at("count").get<int64_t>();
            fs.numeric = f.at("numeric").get<int64_t>();
            fs.all_integer = f.at("all_integer").get<bool>();
            fs.min = DoubleFromJson(f.at("min"));
            fs.max = DoubleFromJson(f.at("max"));
            fs.sum = DoubleFromJson(f.at("sum"));
          }
        }
      }
    }
    closed_until_ns_ = state.at("closed_until_ns").get<int64_t>();
    max_event_ns_ = state.at("max_event_ns").get<int64_t>();
    clock_step_from_ns_ = state.value("clock_step_from_ns", int64_t{INT64_MAX});
    counters_ = CountersFromJson(state.at("counters"));
    alarm_levels_ = state.at("alarm_levels").get<std::map<std::string, std::string>>();
    devices_ = DevicesFromJson(state);
    seen_steady_ns_.clear();
    resume_steady_ns_ = 0;
    windows_ = std::move(windows);
    return Status::Ok();
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("downsampler state does not parse: ") + e.what());
  }
}

Result<DownsampleSummary> SummarizeDownsampleState(std::string_view text) {
  try {
    json state = json::parse(text);
    DownsampleSummary s;
    int64_t closed = state.at("closed_until_ns").get<int64_t>();
    s.closed_until_ns = closed == INT64_MIN ? 0 : closed;
    int64_t max_event = state.at("max_event_ns").get<int64_t>();
    s.max_event_ns = max_event == INT64_MIN ? 0 : max_event;
    s.open_windows = state.value("open_windows", int64_t{0});
    s.counters = CountersFromJson(state.at("counters"));
    for (auto& [key, d] : DevicesFromJson(state)) s.devices.push_back(std::move(d));
    std::sort(s.devices.begin(), s.devices.end(), SilentLonger);
    return s;
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("downsampler state does not parse: ") + e.what());
  }
}

}  // namespace edgeline
