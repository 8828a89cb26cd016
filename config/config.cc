#include "config/config.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "common/strings.h"
#include "config/config_grammars.h"
#include "config/config_table.h"

namespace edgeline {

using config_internal::FindVariable;
using config_internal::Group;
using config_internal::ParsedValue;
using config_internal::SplitOn;
using config_internal::Variable;
using config_internal::Variables;
using config_internal::VarType;

namespace {

constexpr std::string_view kMask = "********";
constexpr std::string_view kDurationHint = "use e.g. 500ms, 10s, 1m, 24h, 7d or 1h30m";
constexpr std::string_view kSizeHint = "use e.g. 512, 64KiB, 64MiB, 1GiB or 10MB";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads the leading decimal digits of `*text` into `*out`, consuming them. False on overflow
// or when there is no digit.
bool ConsumeNumber(std::string_view* text, int64_t* out) {
  size_t i = 0;
  int64_t v = 0;
  while (i < text->size() && IsDigit((*text)[i])) {
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (*text)[i] - '0', &v)) {
      return false;
    }
    ++i;
  }
  if (i == 0) return false;
  text->remove_prefix(i);
  *out = v;
  return true;
}

Status BadDuration(std::string_view text, std::string_view why) {
  return Status::InvalidArgument("invalid duration \"" + std::string(text) + "\": " +
                                 std::string(why) + "; " + std::string(kDurationHint));
}

Status BadSize(std::string_view text, std::string_view why) {
  return Status::InvalidArgument("invalid size \"" + std::string(text) + "\": " + std::string(why) +
                                 "; " + std::string(kSizeHint));
}

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
    const size_t length_gap = name.size() > var.name.size() ? name.size() - var.name.size()
                                                            : var.name.size() - name.size();
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

void CheckUrlScheme(std::string_view variable, const std::string& url,
                    std::initializer_list<std::string_view> schemes, Problems* problems) {
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

void CheckOrder(std::string_view min_name, int64_t min_value,
                std::string_view max_name, int64_t max_value, Problems* problems) {
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
    problems->Add("EDGELINE_ALARM_TOPIC", "needs downsampling (set EDGELINE_DOWNSAMPLE_PRESET=seed or EDGELINE_DOWNSAMPLE_* variables)");
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
    for (const std::string& filter : c->mqtt.topics) {
      std::string plain = filter;
      if (plain.rfind("$share/", 0) == 0) plain = plain.substr(plain.find('/', 7) + 1);
      if (MqttFilterMatches(plain, sample)) {
        problems->Add("EDGELINE_ALARM_TOPIC", "alarm messages would be ingested again: the subscription " +
                                                  filter + " matches " + sample);
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
    CheckUrlScheme("EDGELINE_MQTT_URL", c.mqtt.url,
                   {"tcp://", "ssl://", "mqtt://", "mqtts://", "ws://", "wss://"}, problems);
  }
  if (problems->AllValid({"EDGELINE_INFLUX_URL"})) {
    CheckUrlScheme("EDGELINE_INFLUX_URL", c.influx.url, {"http://", "https://"}, problems);
  }
  CheckOrder("EDGELINE_MQTT_RECONNECT_MIN", c.mqtt.reconnect_min_ns,
             "EDGELINE_MQTT_RECONNECT_MAX", c.mqtt.reconnect_max_ns, problems);
  CheckOrder("EDGELINE_RETRY_MIN", c.influx.retry_min_ns, "EDGELINE_RETRY_MAX",
             c.influx.retry_max_ns, problems);

  if (!c.influx.enabled ||
      !problems->AllValid({"EDGELINE_INFLUX_ENABLED", "EDGELINE_INFLUX_API"})) {
    return;
  }
  std::string_view api_name = c.influx.api == InfluxApi::kV1   ? "v1"
                              : c.influx.api == InfluxApi::kV2 ? "v2"
                                                               : "v3";
  auto require = [&](std::string_view variable, const std::string& value) {
    if (!value.empty()) return;
    problems->Add(variable, "required when EDGELINE_INFLUX_API=" + std::string(api_name) +
                                " (or set EDGELINE_INFLUX_ENABLED=false)");
  };
  switch (c.influx.api) {
    case InfluxApi::kV1:
      require("EDGELINE_INFLUX_DB", c.influx.database);
      break;
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

// Control characters would break the aligned table (a quoted env-file value may hold newlines).
std::string EscapeForTable(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeMarkdownCell(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

std::string_view TypeName(const Variable& var) {
  if (var.secret) return "secret";
  switch (var.type) {
    case VarType::kString: return "string";
    case VarType::kBool: return "bool";
    case VarType::kInt: return "int";
    case VarType::kDuration: return "duration";
    case VarType::kSize: return "size";
    case VarType::kEnum: return "enum";
    case VarType::kList: return "list";
  }
  return "?";
}

std::string AllowedText(const Variable& var) {
  auto show = [&](int64_t v) {
    if (var.type == VarType::kDuration) return config_internal::FormatDuration(v);
    if (var.type == VarType::kSize) return config_internal::FormatSize(v);
    return std::to_string(v);
  };
  switch (var.type) {
    case VarType::kString:
      return var.min >= 1 ? "non-empty" : "";
    case VarType::kList:
      return var.min >= 1 ? "at least one item" : "";
    case VarType::kBool:
      return "";
    case VarType::kInt:
    case VarType::kDuration:
    case VarType::kSize:
      if (var.max == std::numeric_limits<int64_t>::max()) return "at least " + show(var.min);
      return show(var.min) + " to " + show(var.max);
    case VarType::kEnum: {
      std::string out;
      for (std::string_view a : var.allowed) {
        if (!out.empty()) out += ", ";
        out += "`" + std::string(a) + "`";
      }
      return out;
    }
  }
  return "";
}

}  // namespace

Result<int64_t> ParseDurationNs(std::string_view text) {
  std::string_view t = Trim(text);
  if (t.empty()) return BadDuration(text, "empty");
  if (t == "0") return int64_t{0};
  if (t[0] == '-') return BadDuration(text, "must not be negative");
  struct Unit {
    std::string_view suffix;
    int64_t ns;
  };
  static constexpr Unit kUnits[] = {{"ns", 1},
                                    {"us", 1'000},
                                    {"\xC2\xB5s", 1'000},  // µs
                                    {"ms", 1'000'000},
                                    {"s", 1'000'000'000},
                                    {"m", 60'000'000'000},
                                    {"h", 3'600'000'000'000},
                                    {"d", 86'400'000'000'000}};
  int64_t total = 0;
  while (!t.empty()) {
    int64_t count = 0;
    if (!IsDigit(t[0])) return BadDuration(text, "expected a number");
    if (!ConsumeNumber(&t, &count)) return BadDuration(text, "too large");
    size_t unit_len = 0;
    while (unit_len < t.size() && !IsDigit(t[unit_len])) ++unit_len;
    std::string_view suffix = t.substr(0, unit_len);
    t.remove_prefix(unit_len);
    if (suffix.empty()) return BadDuration(text, "missing unit");
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (u.suffix == suffix) unit = &u;
    }
    if (unit == nullptr) return BadDuration(text, "unknown unit \"" + std::string(suffix) + "\"");
    int64_t part = 0;
    if (__builtin_mul_overflow(count, unit->ns, &part) ||
        __builtin_add_overflow(total, part, &total)) {
      return BadDuration(text, "too large");
    }
  }
  return total;
}

Result<std::pair<std::string, int>> ParseListenAddress(std::string_view listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument("expected host:port, e.g. 127.0.0.1:8087");
  }
  int port = 0;
  auto [ptr, ec] = std::from_chars(listen.data() + colon + 1, listen.data() + listen.size(), port);
  if (ec != std::errc() || ptr != listen.data() + listen.size() || port < 0 || port > 65535) {
    return Status::InvalidArgument("port must be 0..65535");
  }
  std::string_view host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::make_pair(std::string(host), port);
}

Result<int64_t> ParseSizeBytes(std::string_view text) {
  std::string_view t = Trim(text);
  if (t.empty()) return BadSize(text, "empty");
  if (t[0] == '-') return BadSize(text, "must not be negative");
  int64_t count = 0;
  if (!IsDigit(t[0])) return BadSize(text, "expected a number");
  if (!ConsumeNumber(&t, &count)) return BadSize(text, "too large");
  std::string unit = Lower(Trim(t));
  static constexpr std::pair<std::string_view, int64_t> kUnits[] = {
      {"", 1},
      {"b", 1},
      {"kb", 1000},
      {"mb", 1000 * 1000},
      {"gb", 1000 * 1000 * 1000},
      {"tb", 1000LL * 1000 * 1000 * 1000},
      {"kib", 1LL << 10},
      {"mib", 1LL << 20},
      {"gib", 1LL << 30},
      {"tib", 1LL << 40}};
  for (auto [suffix, factor] : kUnits) {
    if (unit != suffix) continue;
    int64_t bytes = 0;
    if (__builtin_mul_overflow(count, factor, &bytes)) return BadSize(text, "too large");
    return bytes;
  }
  return BadSize(text, "unknown unit \"" + std::string(Trim(t)) + "\"");
}

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
    if (name.rfind("EDGELINE_", 0) == 0 && FindVariable(name) == nullptr &&
        name.rfind(kKafkaPropPrefix, 0) != 0) {
      problems.Add(name, UnknownVariableMessage(name));
    }
  }
  CheckCrossField(result.config, &problems);
  CheckStreams("EDGELINE_INFLUX_STREAMS", result.config.influx.streams, &problems);
  if (result.config.http.enabled() && problems.AllValid({"EDGELINE_HTTP_LISTEN"}) &&
      !ParseListenAddress(result.config.http.listen).ok()) {
    problems.Add("EDGELINE_HTTP_LISTEN", "expected host:port (e.g. 127.0.0.1:8087) or off");
  }
  ResolveDownsample(env, &result.config, &problems);
  ResolveKafka(env, &result.config, &problems);
  MqttConfig& mqtt = result.config.mqtt;
  if (mqtt.status_topic.empty()) mqtt.status_topic = "edgeline/" + mqtt.client_id + "/status";
  return result;
}

std::string RenderEffectiveConfig(const std::map<std::string, std::string>& env, bool json) {
  ConfigParseResult parsed = ParseConfig(env);
  struct Row {
    std::string_view name;
    std::string value;
    bool from_env;
    bool secret;
  };
  std::vector<Row> rows;
  for (const Variable& var : Variables()) {
    auto it = env.find(std::string(var.name));
    bool from_env = it != env.end();
    std::string value = config_internal::Show(var, parsed.config);
    if (var.secret) {
      value = value.empty() ? "" : std::string(kMask);
    } else if (from_env) {
      // An invalid value was not applied; show what was given rather than the default.
      ParsedValue ignored;
      std::string error;
      if (!config_internal::ParseValue(var, it->second, &ignored, &error)) value = it->second;
    }
    rows.push_back({var.name, std::move(value), from_env, var.secret});
  }

  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& row : rows) {
      out.push_back({{"name", row.name},
                     {"value", row.value},
                     {"source", row.from_env ? "env" : "default"},
                     {"secret", row.secret}});
    }
    return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }

  constexpr size_t kMaxValueWidth = 50;  // keeps typical rows within 100 columns
  size_t name_width = 8;
  size_t value_width = 5;
  for (Row& row : rows) {
    row.value = EscapeForTable(row.value);
    name_width = std::max(name_width, row.name.size());
    value_width = std::max(value_width, std::min(kMaxValueWidth, row.value.size()));
  }
  auto pad = [](std::string_view s, size_t width) {
    std::string out(s);
    if (out.size() < width) out.append(width - out.size(), ' ');
    return out;
  };
  std::string out = pad("VARIABLE", name_width) + "  " + pad("VALUE", value_width) + "  SOURCE\n";
  for (const Row& row : rows) {
    out += pad(row.name, name_width) + "  " + pad(row.value, value_width) + "  " +
           (row.from_env ? "env" : "default") + "\n";
  }
  return out;
}

std::string RenderConfigurationMarkdown() {
  std::string out =
      "# edgeline configuration\n"
      "\n"
      "<!-- Generated from the table in config/config_table.cc by `edgeline config --markdown`.\n"
      "     Do not edit by hand: config_test fails when this file is stale. -->\n"
      "\n"
      "edgeline is configured with `EDGELINE_*` environment variables. They can also be given in\n"
      "an env file (`--env-file PATH`) in systemd `EnvironmentFile=` syntax: `KEY=VALUE` lines,\n"
      "`#` or `;` comments, optional single or double quotes (double quotes understand `\\\"`,\n"
      "`\\\\` and `\\n`), and a backslash at the end of a line to continue it. A variable set in\n"
      "the environment overrides the same variable in the env file.\n"
      "\n"
      "Every problem is reported at once, naming the variable and what it expects; unknown\n"
      "`EDGELINE_*` names are problems too, so a typo cannot pass silently. `edgeline config`\n"
      "prints the effective value and source of every variable, with secrets shown as `********`.\n"
      "\n"
      "## Value syntax\n"
      "\n"
      "- **bool**: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, in any case.\n"
      "- **duration**: a number with a unit, `ns`, `us`, `ms`, `s`, `m`, `h` or `d`, e.g.\n"
      "  `500ms`, `10s`, `24h`, `7d`; parts can be combined, e.g. `1h30m`. `0` alone means zero.\n"
      "- **size**: bytes, optionally with a unit: `KiB`, `MiB`, `GiB`, `TiB` (1024-based) or\n"
      "  `KB`, `MB`, `GB`, `TB` (1000-based); a `B` suffix is allowed. E.g. `512`, `64KiB`,\n"
      "  `10MB`.\n"
      "- **enum**: one of the listed values, in any case.\n"
      "- **list**: comma-separated; spaces around items and empty items are ignored.\n"
      "- **secret**: a string that is never printed or logged.\n"
      "\n"
      "When `EDGELINE_INFLUX_ENABLED` is true, `EDGELINE_INFLUX_API` decides what is required:\n"
      "v1 needs `EDGELINE_INFLUX_DB`; v2 needs `EDGELINE_INFLUX_ORG`, `EDGELINE_INFLUX_BUCKET`\n"
      "and `EDGELINE_INFLUX_TOKEN`; v3 needs `EDGELINE_INFLUX_DB` and `EDGELINE_INFLUX_TOKEN`.\n"
      "Minimum delays must not exceed their maximum (`EDGELINE_RETRY_MIN` and\n"
      "`EDGELINE_MQTT_RECONNECT_MIN`).\n"
      "\n"
      "Downsampling is on when any `EDGELINE_DOWNSAMPLE_*` variable is set (for the seed's task,\n"
      "`EDGELINE_DOWNSAMPLE_PRESET=seed` alone). The Kafka mirror is on when\n"
      "`EDGELINE_KAFKA_BROKERS` is set; any librdkafka producer property can be passed as\n"
      "`EDGELINE_KAFKA_PROP_<name>` with `.` written as `_` (e.g. `EDGELINE_KAFKA_PROP_LINGER_MS=20`\n"
      "sets `linger.ms`); their values are treated as secrets.\n";
  for (Group group : {Group::kQueue, Group::kMqtt, Group::kMapping, Group::kInflux, Group::kDownsample,
                      Group::kKafka, Group::kHttp, Group::kGeneral}) {
    out += "\n## " + std::string(config_internal::GroupTitle(group)) + "\n\n";
    out += "| Variable | Type | Default | Allowed | Description |\n";
    out += "|---|---|---|---|---|\n";
    for (const Variable& var : Variables()) {
      if (var.group != group) continue;
      std::string_view def = var.default_doc.empty() ? var.default_text : var.default_doc;
      std::string default_cell = def.empty() ? "*empty*" : "`" + std::string(def) + "`";
      out += "| `" + std::string(var.name) + "` | " + std::string(TypeName(var)) + " | " +
             EscapeMarkdownCell(default_cell) + " | " + EscapeMarkdownCell(AllowedText(var)) +
             " | " + EscapeMarkdownCell(var.doc) + " |\n";
    }
  }
  return out;
}

std::string RenderEnvExample() {
  std::string out =
      "# edgeline configuration (systemd EnvironmentFile). Uncomment and set what you need;\n"
      "# every variable is listed at its default. Full reference: docs/CONFIGURATION.md.\n"
      "# This file holds secrets (tokens, passwords): keep it mode 0600.\n";
  Config defaults;
  for (Group group : {Group::kQueue, Group::kMqtt, Group::kMapping, Group::kInflux, Group::kDownsample,
                      Group::kKafka, Group::kHttp, Group::kGeneral}) {
    out += "\n# ---- " + std::string(config_internal::GroupTitle(group)) + "\n";
    for (const Variable& var : Variables()) {
      if (var.group != group) continue;
      // Wrapped at about 96 columns, one comment line per chunk of words.
      std::string line = "#";
      for (std::string_view rest = var.doc; !rest.empty();) {
        size_t space = rest.find(' ');
        std::string_view word = rest.substr(0, space);
        if (line.size() + word.size() + 1 > 96) {
          out += line + "\n";
          line = "#";
        }
        line += " ";
        line += word;
        rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
      }
      out += line + "\n";
      std::string value = var.default_doc.empty() ? config_internal::Show(var, defaults) : "";
      out += "#" + std::string(var.name) + "=" + value + "\n";
    }
  }
  return out;
}

std::string MaskSecrets(std::string_view text, const Config& config) {
  // Show() only reads; the table's accessor is non-const so one pointer type serves both ways.
  Config& readable = const_cast<Config&>(config);
  std::vector<std::string> secrets;
  for (const Variable& var : Variables()) {
    if (!var.secret) continue;
    std::string value = config_internal::Show(var, readable);
    if (!value.empty()) secrets.push_back(std::move(value));
  }
  // Pass-through Kafka properties may carry credentials (sasl.oauthbearer.config, ssl.key.password).
  for (const auto& [name, value] : config.kafka.properties) {
    if (value.size() >= 4) secrets.push_back(value);
  }
  // Longest first, so a secret containing another is masked whole.
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  std::string out(text);
  for (const std::string& secret : secrets) {
    size_t pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), kMask);
      pos += kMask.size();
    }
  }
  return out;
}

}  // namespace edgeline
