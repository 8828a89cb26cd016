// The table of EDGELINE_* variables behind config.h: one row per setting (name, type, default,
// bounds, secret flag, doc, field in Config). Private to config/ and its tests; the parser, the
// `edgeline config` renderer and docs/CONFIGURATION.md all walk it. Immutable after first use,
// so safe to read from any thread.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace edgeline::config_internal {

enum class Group { kQueue, kMqtt, kMapping, kInflux, kDownsample, kKafka, kHttp, kGeneral };
enum class VarType { kString, kBool, kInt, kDuration, kSize, kEnum, kList };

// Points at the Config member a row writes. Enums are stored by their index in `allowed`, so an
// enum row's `allowed` must list names in the enum's declaration order.
using FieldPtr = std::variant<std::string*, bool*, int*, int64_t*, std::vector<std::string>*, QueueFullPolicy*,
                              SyncMode*, InfluxApi*, LogLevel*, KafkaFormat*>;

struct Variable {
  std::string_view name;
  Group group;
  VarType type;
  std::string_view default_text;                      // parsed by the row's own parser; must equal Config{}'s value
  int64_t min = std::numeric_limits<int64_t>::min();  // kInt, kDuration, kSize
  int64_t max = std::numeric_limits<int64_t>::max();
  std::vector<std::string_view> allowed;  // kEnum
  bool secret = false;
  std::string_view doc;
  FieldPtr (*field)(Config&) = nullptr;
  std::string_view default_doc = {};  // shown in the docs instead of default_text when set
};

const std::vector<Variable>& Variables();
const Variable* FindVariable(std::string_view name);
std::string_view GroupTitle(Group group);

// A value parsed from text for one row; the member matching the row's type is filled.
struct ParsedValue {
  std::string text;  // kString; canonical name for kEnum
  bool flag = false;
  int64_t number = 0;  // kInt, kDuration, kSize; index in `allowed` for kEnum
  std::vector<std::string> list;
};

// Parses `text` for `var`. On failure returns false and sets `error` to what is expected; the
// error never contains `text` for secret or free-text rows.
bool ParseValue(const Variable& var, std::string_view text, ParsedValue* out, std::string* error);
void Assign(const Variable& var, const ParsedValue& value, Config* config);
// The field's current value as text in the row's syntax (durations "30s", sizes "1GiB").
std::string Show(const Variable& var, Config& config);

std::string FormatDuration(int64_t ns);
std::string FormatSize(int64_t bytes);

// The row's type as the docs name it ("secret" for secrets) and what it accepts beyond its type
// (docs/CONFIGURATION.md's "Allowed" column; "" when nothing more).
std::string_view TypeName(const Variable& var);
std::string AllowedText(const Variable& var);

}  // namespace edgeline::config_internal
