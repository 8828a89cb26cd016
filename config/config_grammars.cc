#include "config/config_grammars.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <regex>
#include <set>

#include "common/field_types.h"
#include "common/strings.h"

namespace edgeline::config_internal {
namespace {

constexpr std::string_view kAggregateNames = "last, first, min, max, mean, sum or count";

bool ParseAggregateName(std::string_view name, Aggregate* out) {
  static constexpr std::pair<std::string_view, Aggregate> kNames[] = {
      {"last", Aggregate::kLast}, {"first", Aggregate::kFirst}, {"min", Aggregate::kMin},    {"max", Aggregate::kMax},
      {"mean", Aggregate::kMean}, {"sum", Aggregate::kSum},     {"count", Aggregate::kCount}};
  for (auto [n, a] : kNames) {
    if (Lower(name) == n) {
      *out = a;
      return true;
    }
  }
  return false;
}

// `output:field<op>number?if_true:if_false`
bool ParseAlarmRule(std::string_view text, AlarmRule* rule, std::string* error) {
  size_t colon = text.find(':');
  size_t question = text.find('?');
  if (colon == std::string_view::npos || question == std::string_view::npos || question < colon) {
    *error = "expected output:field<op>number?if_true:if_false";
    return false;
  }
  rule->output = std::string(Trim(text.substr(0, colon)));
  std::string_view condition = Trim(text.substr(colon + 1, question - colon - 1));
  std::string_view values = text.substr(question + 1);
  size_t op_pos = condition.find_first_of("<>=!");
  if (rule->output.empty() || op_pos == std::string_view::npos || op_pos == 0) {
    *error = "expected output:field<op>number?if_true:if_false";
    return false;
  }
  rule->field = std::string(Trim(condition.substr(0, op_pos)));
  std::string_view rest = condition.substr(op_pos);
  static constexpr std::pair<std::string_view, CompareOp> kOps[] = {{"<=", CompareOp::kLe}, {">=", CompareOp::kGe},
                                                                    {"==", CompareOp::kEq}, {"!=", CompareOp::kNe},
                                                                    {"<", CompareOp::kLt},  {">", CompareOp::kGt}};
  bool found = false;
  for (auto [name, op] : kOps) {
    if (rest.substr(0, name.size()) == name) {
      rule->op = op;
      rest.remove_prefix(name.size());
      found = true;
      break;
    }
  }
  if (!found) {
    *error = "unknown comparison in \"" + std::string(condition) + "\"; use < <= > >= == !=";
    return false;
  }
  std::string number(Trim(rest));
  char* end = nullptr;
  errno = 0;
  rule->threshold = number.empty() ? 0 : std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size() || errno == ERANGE || !std::isfinite(rule->threshold)) {
    *error = "threshold \"" + number + "\" is not a finite number";
    return false;
  }
  size_t split = values.find(':');
  if (split == std::string_view::npos) {
    *error = "expected if_true:if_false after '?'";
    return false;
  }
  rule->when_true = std::string(Trim(values.substr(0, split)));
  rule->when_false = std::string(Trim(values.substr(split + 1)));
  if (rule->when_true.empty() || rule->when_false.empty()) {
    *error = "if_true and if_false must not be empty";
    return false;
  }
  return true;
}

}  // namespace

std::string_view TopicTagName(std::string_view level) {
  return level.size() > 2 && level.front() == '{' && level.back() == '}' ? level.substr(1, level.size() - 2)
                                                                           : std::string_view();
}

std::vector<std::string_view> SplitOn(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t end = text.find(sep, start);
    out.push_back(Trim(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start)));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

void ParseAggregates(std::string_view text, Aggregate* default_aggregate,
                     std::vector<std::pair<std::string, Aggregate>>* field_aggregates,
                     std::vector<std::string>* errors) {
  field_aggregates->clear();
  *default_aggregate = Aggregate::kLast;
  bool have_default = false;
  std::set<std::string> seen;
  for (std::string_view item : SplitOn(text, ',')) {
    if (item.empty()) {
      errors->push_back("has an empty item");
      continue;
    }
    size_t eq = item.find('=');
    Aggregate a;
    if (eq == std::string_view::npos) {
      if (have_default) {
        errors->push_back("names more than one default aggregate (\"" + std::string(item) + "\")");
      } else if (!ParseAggregateName(item, &a)) {
        errors->push_back("unknown aggregate \"" + std::string(item) + "\"; use " + std::string(kAggregateNames));
      } else {
        *default_aggregate = a;
        have_default = true;
      }
      continue;
    }
    std::string field(Trim(item.substr(0, eq)));
    std::string_view name = Trim(item.substr(eq + 1));
    if (field.empty()) {
      errors->push_back("has an override without a field name (\"" + std::string(item) + "\")");
    } else if (!ParseAggregateName(name, &a)) {
      errors->push_back("unknown aggregate \"" + std::string(name) + "\" for field " + field + "; use " +
                        std::string(kAggregateNames));
    } else if (!seen.insert(field).second) {
      errors->push_back("names field " + field + " twice");
    } else {
      field_aggregates->emplace_back(field, a);
    }
  }
}

void ParseAlarms(std::string_view text, std::vector<AlarmRule>* alarms, std::vector<std::string>* errors) {
  alarms->clear();
  if (Trim(text).empty()) return;
  std::set<std::string> outputs;
  for (std::string_view item : SplitOn(text, ';')) {
    if (item.empty()) continue;
    AlarmRule rule;
    std::string error;
    if (!ParseAlarmRule(item, &rule, &error)) {
      errors->push_back("rule \"" + std::string(item) + "\": " + error);
    } else if (!outputs.insert(rule.output).second) {
      errors->push_back("two rules write field " + rule.output);
    } else {
      alarms->push_back(std::move(rule));
    }
  }
}

void ParseSetTags(std::string_view text, std::vector<std::pair<std::string, std::string>>* set_tags,
                  std::vector<std::string>* errors) {
  set_tags->clear();
  if (Trim(text).empty()) return;
  for (std::string_view item : SplitOn(text, ',')) {
    size_t eq = item.find('=');
    std::string key(Trim(item.substr(0, eq)));
    std::string value = eq == std::string_view::npos ? "" : std::string(Trim(item.substr(eq + 1)));
    if (key.empty() || value.empty()) {
      errors->push_back("expected key=value items (got \"" + std::string(item) + "\")");
      continue;
    }
    set_tags->emplace_back(std::move(key), std::move(value));
  }
  std::sort(set_tags->begin(), set_tags->end());
}

void ParseFieldTypes(std::string_view text, std::vector<std::pair<std::string, FieldType>>* field_types,
                     std::vector<std::string>* errors) {
  field_types->clear();
  if (Trim(text).empty()) return;
  for (std::string_view item : SplitOn(text, ',')) {
    const size_t eq = item.rfind('=');
    std::string key(Trim(item.substr(0, eq)));
    const std::string_view type_name = eq == std::string_view::npos ? "" : Trim(item.substr(eq + 1));
    std::optional<FieldType> type = FieldTypeFromName(type_name);
    if (key.empty() || !type) {
      errors->push_back("expected field=type items with type float, integer, unsigned, string or boolean (got \"" +
                        std::string(item) + "\")");
      continue;
    }
    field_types->emplace_back(std::move(key), *type);
  }
  std::sort(field_types->begin(), field_types->end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < field_types->size(); ++i) {
    if ((*field_types)[i].first == (*field_types)[i - 1].first) {
      errors->push_back("field " + (*field_types)[i].first + " is declared twice");
    }
  }
}

void ParseTopicMap(std::string_view text, std::vector<KafkaTopicRoute>* topic_map, std::vector<std::string>* errors) {
  topic_map->clear();
  if (Trim(text).empty()) return;
  for (std::string_view item : SplitOn(text, ',')) {
    size_t colon = item.find(':');
    KafkaTopicRoute route;
    if (colon != std::string_view::npos) {
      route.kafka_topic = std::string(Trim(item.substr(0, colon)));
      route.mqtt_regex = std::string(Trim(item.substr(colon + 1)));
    }
    if (route.kafka_topic.empty() || route.mqtt_regex.empty()) {
      errors->push_back("expected kafka_topic:mqtt_regex items (got \"" + std::string(item) + "\")");
      continue;
    }
    try {
      std::regex compiled(route.mqtt_regex);
    } catch (const std::regex_error& e) {
      errors->push_back("regex \"" + route.mqtt_regex + "\" is invalid: " + e.what());
      continue;
    }
    topic_map->push_back(std::move(route));
  }
}

}  // namespace edgeline::config_internal
