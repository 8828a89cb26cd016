#include "ingest/device_status.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/line_protocol.h"
#include "common/strings.h"
#include "config/config_grammars.h"

namespace edgeline {
namespace {

using config_internal::SplitOn;

constexpr size_t kMaxStatusPayload = 64 * 1024;
constexpr size_t kMaxStatusText = 256;

std::string LowerTrimmed(std::string_view s) {
  std::string out(Trim(s));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

FieldValue StringValue(std::string s) {
  FieldValue v;
  v.type = FieldType::kString;
  v.s = std::move(s);
  return v;
}

}  // namespace

DeviceStatusMapper::DeviceStatusMapper(const MappingConfig& config, std::string id_tag)
    : measurement_(config.device_status_measurement), json_tags_(config.json_tags) {
  for (const std::string& text : config.device_status_topics) {
    Filter filter;
    bool bare_named = false;
    for (std::string_view level : SplitOn(text, '/')) {
      if (const std::string_view tag = config_internal::TopicTagName(level); !tag.empty()) {
        filter.levels.emplace_back("+");
        filter.tags.emplace_back(tag);
      } else if (level == "+") {
        filter.levels.emplace_back("+");
        filter.tags.emplace_back(bare_named ? "" : id_tag);
        bare_named = true;
      } else {
        filter.levels.emplace_back(level);
        filter.tags.emplace_back();
      }
    }
    filters_.push_back(std::move(filter));
  }
}

std::vector<std::string> DeviceStatusMapper::SubscriptionFilters() const {
  std::vector<std::string> out;
  for (const Filter& f : filters_) {
    std::string s;
    for (size_t i = 0; i < f.levels.size(); ++i) s += (i ? "/" : "") + f.levels[i];
    out.push_back(std::move(s));
  }
  return out;
}

const DeviceStatusMapper::Filter* DeviceStatusMapper::Match(std::string_view topic,
                                                           std::vector<std::string_view>* levels) const {
  *levels = SplitOn(topic, '/');
  for (const Filter& f : filters_) {
    if (f.levels.size() != levels->size()) continue;
    bool match = true;
    for (size_t i = 0; i < f.levels.size() && match; ++i) {
      match = f.levels[i] == "+" ? !(*levels)[i].empty() : f.levels[i] == (*levels)[i];
    }
    if (match) return &f;
  }
  return nullptr;
}

bool DeviceStatusMapper::Matches(std::string_view topic) const {
  if (filters_.empty()) return false;  // off: no split on the ingest path
  std::vector<std::string_view> levels;
  return Match(topic, &levels) != nullptr;
}

IngestMessage DeviceStatusMapper::Prepare(std::string_view topic, std::string_view payload, int64_t receive_ns,
                                          bool retained) const {
  IngestMessage message;
  message.topic = std::string(topic);
  message.receive_ns = receive_ns;
  auto refuse = [&](std::string reason) {
    message.mapped.errors.push_back("device status: " + std::move(reason));
    message.payload = std::string(payload.substr(0, kMaxStatusPayload));
    return message;
  };
  std::vector<std::string_view> levels;
  const Filter* filter = Match(topic, &levels);
  if (filter == nullptr) return refuse("topic matches no EDGELINE_DEVICE_STATUS_TOPICS filter");
  if (payload.empty()) return message;  // a retained status being cleared: nothing happened
  if (payload.size() > kMaxStatusPayload) return refuse("payload over 64 KiB");
  Point point;
  point.measurement = measurement_;
  point.timestamp_ns = receive_ns;
  for (size_t i = 0; i < levels.size(); ++i) {
    if (!filter->tags[i].empty()) point.tags.emplace_back(filter->tags[i], std::string(levels[i]));
  }
  std::string_view trimmed = Trim(payload);
  if (!trimmed.empty() && trimmed.front() == '{') {
    nlohmann::json doc = nlohmann::json::parse(trimmed, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) return refuse("payload is not a JSON object");
    std::string status;
    for (const char* key : {"status", "state"}) {
      if (status.empty() && doc.contains(key) && doc[key].is_string()) status = LowerTrimmed(doc[key].get<std::string>());
    }
    if (status.empty()) return refuse("JSON payload has no string member status or state");
    point.fields.emplace_back("status", StringValue(status));
    for (const auto& [key, value] : doc.items()) {
      if (key == "status" || key == "state" || key == "retained") continue;
      if (std::find(json_tags_.begin(), json_tags_.end(), key) != json_tags_.end() && value.is_string()) {
        auto tag = std::find_if(point.tags.begin(), point.tags.end(), [&](const auto& t) { return t.first == key; });
        if (tag == point.tags.end()) point.tags.emplace_back(key, value.get<std::string>());
        continue;
      }
      FieldValue v;
      if (value.is_string()) {
        v = StringValue(value.get<std::string>());
      } else if (value.is_boolean()) {
        v.type = FieldType::kBool;
        v.b = value.get<bool>();
      } else if (value.is_number()) {
        v.f = value.get<double>();
        if (!std::isfinite(v.f)) continue;
      } else {
        continue;  // nested objects and arrays are not status
      }
      point.fields.emplace_back(key, std::move(v));
    }
  } else {
    std::string status = LowerTrimmed(payload);
    if (status.size() > kMaxStatusText) return refuse("text payload over 256 bytes");
    point.fields.emplace_back("status", StringValue(std::move(status)));
  }
  if (retained) {
    FieldValue yes;
    yes.type = FieldType::kBool;
    yes.b = true;
    point.fields.emplace_back("retained", yes);
  }
  if (point.tags.empty()) return refuse("no device id: the topic has no `+` or `{tag}` level value");
  std::string line = FormatPoint(point);
  // What cannot be read back (invalid UTF-8, control characters, an empty tag) is not a point.
  if (Result<Point> parsed = ParseLine(line); !parsed.ok()) return refuse(parsed.status().message());
  message.mapped.AddLine(std::move(line), receive_ns);
  return message;
}

std::string DeviceIdTag(const Config& config) {
  if (!config.downsample.group_by.empty()) return config.downsample.group_by.front();
  if (!config.mapping.json_tags.empty()) return config.mapping.json_tags.front();
  return "device";
}

}  // namespace edgeline
