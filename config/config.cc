#include "config/config.h"

#include <algorithm>
#include <set>
#include <utility>

#include "common/field_types.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "config/config_grammars.h"
#include "config/config_table.h"

namespace edgeline {

using config_internal::FindVariable;
using config_internal::ParsedValue;
using config_internal::SplitOn;
using config_internal::TopicTagName;
using config_internal::Variable;
using config_internal::Variables;

namespace {

// Levenshtein distance when it is at most `limit`; otherwise some value above `limit` (the
// scan stops once a whole row exceeds it: an unknown name is compared with every variable).
size_t EditDistance(std::string_view a, std::string_view b, size_t limit) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    size_t row_min = row[0];
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min(std::min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
      diagonal = above;
      row_min = std::min(row_min, row[j]);
    }
    if (row_min > limit) return limit + 1;
  }
  return row[b.size()];
}

std::string UnknownVariableMessage(std::string_view name) {
  const size_t threshold = std::max<size_t>(3, name.size() / 4);
  const Variable* best = nullptr;
  size_t best_distance = 0;
  for (const Variable& var : Variables()) {
    // The distance is at least the length difference: a name that cannot come within the
    // threshold is skipped, so a long pasted name costs no quadratic work per variable.
    const size_t length_gap =
        name.size() > var.name.size() ? name.size() - var.name.size() : var.name.size() - name.size();
    if (length_gap > threshold) continue;
    // Only a closer match than the best so far (within the threshold) matters.
    if (best != nullptr && best_distance == 0) break;
    const size_t limit = best == nullptr ? threshold : best_distance - 1;
    size_t d = EditDistance(name, var.name, limit);
    if (d > limit) continue;
    if (best == nullptr || d < best_distance) {
      best = &var;
      best_distance = d;
    }
  }
  std::string message = "unknown variable";
  if (best != nullptr && best_distance <= threshold) {
    message += " (did you mean " + std::string(best->name) + "?)";
  }
  return message;
}

class Problems {
 public:
  explicit Problems(std::vector<ConfigProblem>* out) : out_(out) {}
  void Add(std::string_view variable, std::string message) {
    bad_.insert(std::string(variable));
    out_->push_back({std::string(variable), std::move(message)});
  }
  void AddEach(std::string_view variable, std::vector<std::string> messages) {
    for (std::string& message : messages) Add(variable, std::move(message));
  }
  // True when none of `names` had a problem of its own: cross-field rules on a value that
  // failed to parse would only report noise.
  bool AllValid(std::initializer_list<std::string_view> names) const {
    for (std::string_view n : names) {
      if (bad_.count(std::string(n))) return false;
    }
    return true;
  }

 private:
  std::vector<ConfigProblem>* out_;
  std::set<std::string> bad_;
};

void CheckUrlScheme(std::string_view variable, const std::string& url, std::initializer_list<std::string_view> schemes,
                    Problems* problems) {
  std::string expected;
  for (std::string_view scheme : schemes) {
    if (StartsWithIgnoreCase(url, scheme)) {
      if (url.size() == scheme.size()) {
        problems->Add(variable, "has no host after " + std::string(scheme));
      }
      return;
    }
    if (!expected.empty()) expected += ", ";
    expected += scheme;
  }
  // The URL itself is not echoed: it may carry user:password@.
  problems->Add(variable, "must start with one of " + expected);
}

void CheckOrder(std::string_view min_name, int64_t min_value, std::string_view max_name, int64_t max_value,
                Problems* problems) {
  if (!problems->AllValid({min_name, max_name}) || min_value <= max_value) return;
  problems->Add(min_name, "must not exceed " + std::string(max_name) + " (" +
                              config_internal::FormatDuration(min_value) + " > " +
                              config_internal::FormatDuration(max_value) + ")");
}

constexpr std::string_view kKafkaPropPrefix = "EDGELINE_KAFKA_PROP_";

void CheckStreams(std::string_view variable, const std::vector<std::string>& streams, Problems* problems) {
  for (const std::string& s : streams) {
    if (s != "raw" && s != "downsampled") {
      problems->Add(variable, "unknown stream \"" + s + "\"; use raw and/or downsampled");
    }
  }
}

// MQTT filter matching ('+' one level, '#' the rest), for configuration checks only.
bool MqttFilterMatches(std::string_view filter, std::string_view topic) {
  std::vector<std::string_view> f = SplitOn(filter, '/');
  std::vector<std::string_view> t = SplitOn(topic, '/');
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

// Downsampling is on when any of its variables is set; the seed preset fills what is not set.
void ResolveDownsample(const std::map<std::string, std::string>& env, Config* c, Problems* problems) {
  DownsampleConfig& d = c->downsample;
  auto given = [&](std::string_view name) { return env.count(std::string(name)) > 0; };
  d.enabled = false;
  for (const auto& [name, value] : env) {
    if (name.rfind("EDGELINE_DOWNSAMPLE_", 0) == 0 && name != "EDGELINE_DOWNSAMPLE_PRESET") d.enabled = true;
  }
  if (d.preset == "seed") {
    d.enabled = true;
    if (!given("EDGELINE_DOWNSAMPLE_ALARM")) d.alarm_text = "alarm:fuel<500?refuel:no action";
    if (!given("EDGELINE_DOWNSAMPLE_SET_TAGS")) d.set_tags_text = "region=US";
    if (!given("EDGELINE_DOWNSAMPLE_MEASUREMENTS")) d.measurements = {"genData"};
  }
  std::vector<std::string> errors;
  config_internal::ParseAggregates(d.aggregate_text, &d.default_aggregate, &d.field_aggregates, &errors);
  problems->AddEach("EDGELINE_DOWNSAMPLE_AGGREGATE", std::exchange(errors, {}));
  config_internal::ParseAlarms(d.alarm_text, &d.alarms, &errors);
  problems->AddEach("EDGELINE_DOWNSAMPLE_ALARM", std::exchange(errors, {}));
  config_internal::ParseSetTags(d.set_tags_text, &d.set_tags, &errors);
  problems->AddEach("EDGELINE_DOWNSAMPLE_SET_TAGS", std::exchange(errors, {}));
  if (!d.alarm_topic.empty() && !d.enabled) {
    problems->Add("EDGELINE_ALARM_TOPIC",
                  "needs downsampling (set EDGELINE_DOWNSAMPLE_PRESET=seed or EDGELINE_DOWNSAMPLE_* variables)");
  }
  if (!d.alarm_topic.empty() && d.alarms.empty() && problems->AllValid({"EDGELINE_DOWNSAMPLE_ALARM"})) {
    problems->Add("EDGELINE_ALARM_TOPIC", "is set but EDGELINE_DOWNSAMPLE_ALARM has no rule");
  }
  if (!d.alarm_topic.empty()) {
    // Alarms published where the agent subscribes would come back in as telemetry.
    std::string sample = d.alarm_topic;
    if (sample.find('{') == std::string::npos) {
      for (size_t i = 0; i < d.group_by.size(); ++i) sample += "/x";
      sample += "/alarm";
    }
    std::vector<std::string> subscribed = c->mqtt.topics;
    for (const std::string& status : c->mapping.device_status_topics) {
      std::string filter;
      for (std::string_view level : SplitOn(status, '/')) {
        if (!filter.empty()) filter += '/';
        filter += TopicTagName(level).empty() ? level : std::string_view("+");
      }
      subscribed.push_back(filter);
    }
    for (const std::string& filter : subscribed) {
      std::string plain = filter;
      if (plain.rfind("$share/", 0) == 0) plain = plain.substr(plain.find('/', 7) + 1);
      if (MqttFilterMatches(plain, sample)) {
        problems->Add("EDGELINE_ALARM_TOPIC",
                      "alarm messages would be ingested again: the subscription " + filter + " matches " + sample);
      }
    }
  }
  d.device_status_measurement =
      c->mapping.device_status_topics.empty() ? std::string() : c->mapping.device_status_measurement;
  if (d.stale_after_text == "auto") {
    d.stale_after_ns = d.enabled ? 3 * d.every_ns : 0;
  } else if (auto stale = ParseDurationNs(d.stale_after_text); stale.ok()) {
    d.stale_after_ns = *stale;
    if (d.stale_after_ns != 0 && d.stale_after_ns < 1'000'000'000) {
      problems->Add("EDGELINE_DOWNSAMPLE_STALE_AFTER", "must be 0 (off) or at least 1s");
    }
  } else {
    problems->Add("EDGELINE_DOWNSAMPLE_STALE_AFTER", "must be auto, 0 or a duration: " + stale.status().message());
  }
  if (d.stale_after_ns > 0) {
    // An offline must name a device the downsampler knows: by a group-by key.
    for (const std::string& filter : c->mapping.device_status_topics) {
      bool names_group = false;
      for (std::string_view level : SplitOn(filter, '/')) {
        if (level == "+") names_group = names_group || !d.group_by.empty();
        const std::string_view tag = TopicTagName(level);
        if (!tag.empty()) names_group = names_group || Contains(d.group_by, std::string(tag));
      }
      if (!names_group) {
        problems->Add("EDGELINE_DEVICE_STATUS_TOPICS", "\"" + filter +
                                                           "\": no level names an EDGELINE_DOWNSAMPLE_GROUP_BY tag, "
                                                           "so an offline could not make a device stale");
      }
    }
  }
  for (const auto& [key, value] : d.set_tags) {
    if (Contains(d.group_by, key)) {
      problems->Add("EDGELINE_DOWNSAMPLE_SET_TAGS", "tag " + key + " is also in EDGELINE_DOWNSAMPLE_GROUP_BY");
    }
  }
}

void ResolveKafka(const std::map<std::string, std::string>& env, Config* c, Problems* problems) {
  KafkaConfig& k = c->kafka;
  std::vector<std::string> errors;
  config_internal::ParseTopicMap(k.topic_map_text, &k.topic_map, &errors);
  problems->AddEach("EDGELINE_KAFKA_TOPIC_MAP", std::move(errors));
  CheckStreams("EDGELINE_KAFKA_STREAMS", k.streams, problems);
  k.properties.clear();
  for (const auto& [name, value] : env) {
    if (name.rfind(kKafkaPropPrefix, 0) != 0) continue;
    std::string property = Lower(name.substr(kKafkaPropPrefix.size()));
    std::replace(property.begin(), property.end(), '_', '.');
    if (property.empty()) {
      problems->Add(name, "names no librdkafka property");
      continue;
    }
    k.properties.emplace_back(std::move(property), value);
  }
}

void CheckCrossField(const Config& c, Problems* problems) {
  if (problems->AllValid({"EDGELINE_MQTT_URL"})) {
    CheckUrlScheme("EDGELINE_MQTT_URL", c.mqtt.url, {"tcp://", "ssl://", "mqtt://", "mqtts://", "ws://", "wss://"},
                   problems);
  }
  if (problems->AllValid({"EDGELINE_INFLUX_URL"})) {
    CheckUrlScheme("EDGELINE_INFLUX_URL", c.influx.url, {"http://", "https://"}, problems);
  }
  CheckOrder("EDGELINE_MQTT_RECONNECT_MIN", c.mqtt.reconnect_min_ns, "EDGELINE_MQTT_RECONNECT_MAX",
             c.mqtt.reconnect_max_ns, problems);
  CheckOrder("EDGELINE_RETRY_MIN", c.influx.retry_min_ns, "EDGELINE_RETRY_MAX", c.influx.retry_max_ns, problems);

  if (!c.influx.enabled || !problems->AllValid({"EDGELINE_INFLUX_ENABLED", "EDGELINE_INFLUX_API"})) {
    return;
  }
  std::string_view api_name = c.influx.api == InfluxApi::kV1 ? "v1" : c.influx.api == InfluxApi::kV2 ? "v2" : "v3";
  auto require = [&](std::string_view variable, const std::string& value) {
    if (!value.empty()) return;
    problems->Add(variable, "required when EDGELINE_INFLUX_API=" + std::string(api_name) +
                                " (or set EDGELINE_INFLUX_ENABLED=false)");
  };
  switch (c.influx.api) {
    case InfluxApi::kV1: require("EDGELINE_INFLUX_DB", c.influx.database); break;
    case InfluxApi::kV2:
      require("EDGELINE_INFLUX_ORG", c.influx.org);
      require("EDGELINE_INFLUX_BUCKET", c.influx.bucket);
      require("EDGELINE_INFLUX_TOKEN", c.influx.token);
      break;
    case InfluxApi::kV3:
      require("EDGELINE_INFLUX_DB", c.influx.database);
      require("EDGELINE_INFLUX_TOKEN", c.influx.token);
      break;
  }
}

}  // namespace

ConfigParseResult ParseConfig(const std::map<std::string, std::string>& env) {
  ConfigParseResult result;
  Problems problems(&result.problems);
  for (const Variable& var : Variables()) {
    auto it = env.find(std::string(var.name));
    if (it == env.end()) continue;
    ParsedValue value;
    std::string error;
    if (!config_internal::ParseValue(var, it->second, &value, &error)) {
      problems.Add(var.name, std::move(error));
      continue;
    }
    config_internal::Assign(var, value, &result.config);
  }
  for (const auto& [name, value] : env) {
    if (name.rfind("EDGELINE_", 0) == 0 && FindVariable(name) == nullptr && name.rfind(kKafkaPropPrefix, 0) != 0) {
      problems.Add(name, UnknownVariableMessage(name));
    }
  }
  CheckCrossField(result.config, &problems);
  CheckStreams("EDGELINE_INFLUX_STREAMS", result.config.influx.streams, &problems);
  if (result.config.http.enabled() && problems.AllValid({"EDGELINE_HTTP_LISTEN"}) &&
      !ParseListenAddress(result.config.http.listen).ok()) {
    problems.Add("EDGELINE_HTTP_LISTEN", "expected host:port (e.g. 127.0.0.1:8087) or off");
  }
  {
    std::vector<std::string> errors;
    MappingConfig& m = result.config.mapping;
    config_internal::ParseFieldTypes(m.field_types_text, &m.field_types, &errors);
    problems.AddEach("EDGELINE_FIELD_TYPES", std::move(errors));
    for (const auto& [field, type] : m.field_types) {
      if (Contains(m.json_integers, field) && type != FieldType::kInteger) {
        problems.Add("EDGELINE_FIELD_TYPES", "field " + field + " is in EDGELINE_JSON_INTEGERS but declared " +
                                                 std::string(Name(type)));
      }
    }
    m.time_floor_ns = INT64_MIN;
    if (!m.time_floor_text.empty()) {
      std::string text = m.time_floor_text;
      if (text.size() == 10) text += "T00:00:00Z";  // a date alone: its midnight UTC
      std::optional<int64_t> floor = ParseRfc3339Ns(text);
      if (floor) {
        m.time_floor_ns = *floor;
      } else {
        problems.Add("EDGELINE_JSON_TIME_FLOOR", "expected an RFC 3339 date (2020-01-01) or time, or empty");
      }
    }
    for (const std::string& filter : m.device_status_topics) {
      int id_levels = 0;
      bool bad = filter.empty() || filter.rfind("$share/", 0) == 0;
      for (std::string_view level : SplitOn(filter, '/')) {
        if (level == "+" || !TopicTagName(level).empty()) ++id_levels;
        else if (level.find_first_of("+#{}") != std::string_view::npos) bad = true;
      }
      if (bad || id_levels == 0) {
        problems.Add("EDGELINE_DEVICE_STATUS_TOPICS",
                     "\"" + filter + "\": needs a `+` or `{tag}` level for the device id; no `#`, no $share/");
      }
    }
  }
  ResolveDownsample(env, &result.config, &problems);
  ResolveKafka(env, &result.config, &problems);
  MqttConfig& mqtt = result.config.mqtt;
  if (mqtt.status_topic.empty()) mqtt.status_topic = "edgeline/" + mqtt.client_id + "/status";
  return result;
}

}  // namespace edgeline
