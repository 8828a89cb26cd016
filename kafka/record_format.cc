#include "kafka/record_format.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/line_protocol.h"
#include "storage/queue.h"

namespace edgeline {

namespace {
// Topics seen by a router are usually a handful; the bound only guards against a topic per device.
constexpr size_t kMaxCachedTopics = 10000;
}  // namespace

Result<RecordContent> FormatRecord(std::string_view line, KafkaFormat format) {
  Result<Point> parsed = ParseLine(line);
  if (!parsed.ok()) return Status::InvalidArgument("unparsable line: " + parsed.status().message());
  Point& point = *parsed;
  RecordContent out;
  out.key = SeriesKey(point);
  if (format == KafkaFormat::kLineProtocol) {
    out.value.assign(line);
    return out;
  }
  try {
    nlohmann::ordered_json json;
    json["measurement"] = point.measurement;
    std::sort(point.tags.begin(), point.tags.end());
    nlohmann::ordered_json tags = nlohmann::ordered_json::object();
    for (const auto& [key, value] : point.tags) tags[key] = value;
    json["tags"] = std::move(tags);
    nlohmann::ordered_json fields = nlohmann::ordered_json::object();
    for (const auto& [key, value] : point.fields) {
      switch (value.type) {
        case FieldType::kFloat: fields[key] = value.f; break;
        case FieldType::kInteger: fields[key] = value.i; break;
        case FieldType::kUnsigned: fields[key] = value.u; break;
        case FieldType::kString: fields[key] = value.s; break;
        case FieldType::kBool: fields[key] = value.b; break;
      }
    }
    json["fields"] = std::move(fields);
    if (point.timestamp_ns) {
      json["time"] = *point.timestamp_ns;
    } else {
      json["time"] = nullptr;
    }
    out.value = json.dump();
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("cannot write the point as JSON: ") + e.what());
  }
  return out;
}

std::string RecordId(std::string_view stream, std::string_view line) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : line) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  std::string_view timestamp = "-";
  if (const size_t space = line.rfind(' '); space != std::string_view::npos && space + 1 < line.size()) {
    std::string_view last = line.substr(space + 1);
    const bool digits = last.find_first_not_of("-0123456789") == std::string_view::npos;
    if (digits) timestamp = last;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  std::string id(stream);
  id += '/';
  id += timestamp;
  id += '/';
  id += hex;
  return id;
}

std::string DownsampledTopic(const KafkaConfig& kafka, std::string_view bucket) {
  return kafka.topic_prefix + std::string(bucket);
}

Result<TopicRouter> TopicRouter::FromRoutes(const std::vector<KafkaTopicRoute>& routes) {
  TopicRouter router;
  for (const KafkaTopicRoute& route : routes) {
    try {
      router.routes_.push_back({route.kafka_topic, std::regex(route.mqtt_regex, std::regex::ECMAScript)});
    } catch (const std::regex_error& e) {
      return Status::InvalidArgument("Kafka topic map: regex \"" + route.mqtt_regex + "\" is invalid: " + e.what());
    }
  }
  return router;
}

TopicRouter TopicRouter::Fixed(std::string topic) {
  TopicRouter router;
  router.fixed_ = std::move(topic);
  return router;
}

const std::string* TopicRouter::Route(std::string_view mqtt_topic) {
  if (fixed_) return &*fixed_;
  auto it = cache_.find(mqtt_topic);
  if (it == cache_.end()) {
    int index = -1;
    const std::string topic(mqtt_topic);
    for (size_t i = 0; i < routes_.size(); ++i) {
      if (std::regex_match(topic, routes_[i].regex)) {
        index = static_cast<int>(i);
        break;
      }
    }
    if (cache_.size() >= kMaxCachedTopics) cache_.clear();
    it = cache_.emplace(topic, index).first;
  }
  return it->second < 0 ? nullptr : &routes_[static_cast<size_t>(it->second)].kafka_topic;
}

Result<TopicRouter> TopicRouterForStream(std::string_view stream, const KafkaConfig& kafka,
                                         std::string_view downsample_bucket) {
  if (stream == kRawStream) return TopicRouter::FromRoutes(kafka.topic_map);
  if (stream == kDownsampledStream) return TopicRouter::Fixed(DownsampledTopic(kafka, downsample_bucket));
  return Status::InvalidArgument("Kafka mirror: no topic routing for stream \"" + std::string(stream) + "\"");
}

}  // namespace edgeline
