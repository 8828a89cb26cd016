// Kafka records from queue lines: the value (JSON or the line itself), the key (the series key,
// so one series' records stay ordered in one partition) and the topic (raw points: the Confluent
// MQTT proxy's `kafka_topic:mqtt_regex` routes against the point's MQTT topic; downsampled
// points: topic prefix + bucket, the InfluxDB source connector's `topic.mapper=bucket`).
// Each record also carries the header kRecordIdHeader (RecordId): the same value every time its
// line is sent, so consumers can drop the re-sends of at-least-once delivery.
// FormatRecord and RecordId are pure (thread-safe); a TopicRouter caches lookups: one owner thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "config/config.h"

namespace edgeline {

struct RecordContent {
  std::string key;  // SeriesKey: escaped measurement + tags sorted by key
  std::string value;
};

// kJson: {"measurement":"genData","tags":{"generatorID":"g1"},"fields":{"fuel":944.0,"n":3,
// "alarm":"refuel","ok":true},"time":1764000000603000000}: tags sorted by key, fields in line
// order, floats always with a fraction or exponent (944.0), integers (i and u) as JSON integers,
// time in ns since the epoch (null if the line has none). kLineProtocol: the line as queued.
// InvalidArgument when the line does not parse.
Result<RecordContent> FormatRecord(std::string_view line, KafkaFormat format);

// The name of the record header that identifies a record's line (README, Kafka mirror).
inline constexpr std::string_view kRecordIdHeader = "edgeline-id";

// The value of kRecordIdHeader for queued line `line` of queue stream `stream`:
// "<stream>/<the line's timestamp>/<FNV-1a 64 of the line, 16 hex digits>", e.g.
// "raw/1764000000603000000/9c1f0e3a5b7d2e41" ("-" for a line without a timestamp). It depends on
// the line alone, so every re-send of a line carries the same value, after a failed delivery, a
// crash, or compaction merging the batch it was in. Two lines get the same id only when they are
// the same point (same series, timestamp and fields), or on a 64-bit hash collision between
// lines of the same timestamp.
std::string RecordId(std::string_view stream, std::string_view line);

// The downsampled stream's topic: prefix + bucket (seed: "EG" + "kafka_downsampled").
std::string DownsampledTopic(const KafkaConfig& kafka, std::string_view bucket);

class TopicRouter {
 public:
  // Raw stream: the first route whose regex matches the WHOLE MQTT topic (std::regex_match,
  // ECMAScript) wins. InvalidArgument naming the regex when one does not compile.
  static Result<TopicRouter> FromRoutes(const std::vector<KafkaTopicRoute>& routes);
  // Every point to `topic`, whatever its MQTT topic.
  static TopicRouter Fixed(std::string topic);

  // The Kafka topic for a point that arrived on `mqtt_topic` ("" when unknown), or nullptr when
  // no route matches (the point is not mirrored). The pointer lives as long as the router.
  const std::string* Route(std::string_view mqtt_topic);

 private:
  struct Compiled {
    std::string kafka_topic;
    std::regex regex;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::optional<std::string> fixed_;
  std::vector<Compiled> routes_;
  // MQTT topic -> index into routes_ (-1 = unmatched). std::regex is slow and topics repeat.
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> cache_;
};

// The router for a queue stream: kRawStream -> kafka.topic_map, kDownsampledStream ->
// DownsampledTopic(kafka, bucket). InvalidArgument for another stream or a bad regex.
Result<TopicRouter> TopicRouterForStream(std::string_view stream, const KafkaConfig& kafka,
                                         std::string_view downsample_bucket);

}  // namespace edgeline
