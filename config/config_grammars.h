// The small grammars inside single EDGELINE_* values: per-field aggregates, alarm rules, static
// tags and the Kafka topic map. Private to config/ and its tests. Each parser fills its output
// and appends one message per problem to `errors` (the caller names the variable); messages quote
// the offending item, so these grammars are only for values that are not secret.
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace edgeline::config_internal {

// `text` split at every `sep`, each item trimmed; empty items are kept ("a,,b" -> a, "", b).
std::vector<std::string_view> SplitOn(std::string_view text, char sep);

// The name of a `{name}` level of a topic template (EDGELINE_TOPIC_TAGS,
// EDGELINE_DEVICE_STATUS_TOPICS); "" for any other level.
std::string_view TopicTagName(std::string_view level);

// EDGELINE_DOWNSAMPLE_AGGREGATE: `default[,field=aggregate...]`, e.g. `last,power=mean`.
// `*default_aggregate` is kLast unless the text names one.
void ParseAggregates(std::string_view text, Aggregate* default_aggregate,
                     std::vector<std::pair<std::string, Aggregate>>* field_aggregates,
                     std::vector<std::string>* errors);

// EDGELINE_DOWNSAMPLE_ALARM: `;`-separated `output:field<op>number?if_true:if_false` rules; two
// rules must not write the same output.
void ParseAlarms(std::string_view text, std::vector<AlarmRule>* alarms, std::vector<std::string>* errors);

// EDGELINE_DOWNSAMPLE_SET_TAGS: `key=value,...`, sorted by key.
void ParseSetTags(std::string_view text, std::vector<std::pair<std::string, std::string>>* set_tags,
                  std::vector<std::string>* errors);

// EDGELINE_FIELD_TYPES: `field=type,...` with InfluxDB's type names (float, integer, unsigned,
// string, boolean), sorted by field; a field may appear once.
void ParseFieldTypes(std::string_view text, std::vector<std::pair<std::string, FieldType>>* field_types,
                     std::vector<std::string>* errors);

// EDGELINE_KAFKA_TOPIC_MAP: `kafka_topic:mqtt_regex,...`; each regex must compile.
void ParseTopicMap(std::string_view text, std::vector<KafkaTopicRoute>* topic_map, std::vector<std::string>* errors);

}  // namespace edgeline::config_internal
