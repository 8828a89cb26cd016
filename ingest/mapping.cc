#include "ingest/mapping.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <map>
#include <optional>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/line_protocol.h"
#include "common/strings.h"
#include "common/time_format.h"
#include "config/config_grammars.h"
#include "config/config_table.h"
#include "ingest/bounded_json.h"

namespace edgeline {
namespace {

using nlohmann::json;

// Errors and warnings kept per message: each becomes a dead letter holding the payload, so a
// payload of many bad lines (or dropped keys) must not multiply into as many copies.
constexpr size_t kMaxReasons = 20;

// The field that keeps a wrong device clock's time (integer ns) under EDGELINE_JSON_TIME_POLICY
// receive-time.
constexpr char kDeviceTimeField[] = "device_time";

std::vector<std::string> SplitTopic(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    out.emplace_back(s.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

// Text from a payload echoed into warnings/errors (logs, DLQ, status JSON): one line, ASCII,
// bounded, so a hostile payload cannot forge log lines or break a JSON encoder.
std::string Sanitize(std::string_view s, size_t max_bytes) {
  std::string out;
  for (char c : s.substr(0, max_bytes)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u >= 0x7F ? '?' : c);
  }
  if (s.size() > max_bytes) out += "...";
  return out;
}

// Appends up to kMaxReasons entries; the rest are only counted, then summarized by Finish().
struct ReasonList {
  std::vector<std::string>* list;
  size_t dropped = 0;
  void Add(std::string reason) {
    if (list->size() < kMaxReasons) {
      list->push_back(std::move(reason));
    } else {
      ++dropped;
    }
  }
  void Finish(std::string_view what) {
    if (dropped > 0) list->push_back("... and " + std::to_string(dropped) + " more " + std::string(what));
    dropped = 0;
  }
};

std::string FormatDouble(double d) {
  char buf[40];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  (void)ec;
  return std::string(buf, p);
}

// A JSON time value in the configured unit, or nullopt with *why set.
std::optional<int64_t> JsonTimeToNs(const json& v, std::string_view format, std::string* why) {
  auto fail = [why](const char* reason) -> std::optional<int64_t> {
    *why = reason;
    return std::nullopt;
  };
  if (format == "rfc3339") {
    if (!v.is_string()) return fail("expected an RFC 3339 string");
    auto ns = ParseRfc3339Ns(v.get_ref<const std::string&>());
    if (!ns) return fail("not a valid RFC 3339 time");
    return ns;
  }
  int64_t per_unit = 1;
  if (format == "s") {
    per_unit = 1'000'000'000;
  } else if (format == "ms") {
    per_unit = 1'000'000;
  } else if (format == "us") {
    per_unit = 1'000;
  } else if (format != "ns") {
    return fail("unknown time format");
  }
  if (v.is_number_integer()) {
    // number_unsigned above int64 max is out of range for any unit.
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return fail("out of range");
    }
    const int64_t n = v.get<int64_t>();
    int64_t ns = 0;
    if (__builtin_mul_overflow(n, per_unit, &ns)) return fail("out of range");
    return ns;
  }
  if (v.is_number_float()) {
    const double ns = v.get<double>() * static_cast<double>(per_unit);
    // 2^63 is exactly representable; anything at or beyond it does not fit.
    if (!std::isfinite(ns) || ns >= 9223372036854775808.0 || ns < -9223372036854775808.0) {
      return fail("out of range");
    }
    return static_cast<int64_t>(std::llround(ns));
  }
  return fail("expected a number");
}

// ns since the epoch as RFC 3339 UTC, the fraction only when there is one (trailing zeros cut).
std::string FormatRfc3339(int64_t ns) {
  int64_t secs = ns / 1'000'000'000;
  int64_t frac = ns % 1'000'000'000;
  if (frac < 0) {  // before 1970: the second below, and a positive fraction
    frac += 1'000'000'000;
    --secs;
  }
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (frac != 0) {
    char digits[16];
    std::snprintf(digits, sizeof(digits), ".%09lld", static_cast<long long>(frac));
    std::string f = digits;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + "Z";
}

// A positive span for an operator: 2h0m, 12m30s, 7.5s.
std::string FormatSpan(int64_t ns) {
  const int64_t secs = ns / 1'000'000'000;
  if (secs >= 3600) return std::to_string(secs / 3600) + "h" + std::to_string(secs % 3600 / 60) + "m";
  if (secs >= 60) return std::to_string(secs / 60) + "m" + std::to_string(secs % 60) + "s";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3gs", static_cast<double>(ns) / 1e9);
  return buf;
}

// Why a device time from the JSON time key is a wrong device clock, judged against the receive
// time; "" when it is plausible. At exactly EDGELINE_JSON_TIME_MAX_AHEAD ahead, or exactly at
// the floor, it is plausible.
std::string WrongClockReason(const MappingConfig& config, int64_t device_ns, int64_t receive_ns) {
  if (device_ns < config.time_floor_ns) {
    return "device time " + FormatRfc3339(device_ns) + " is before EDGELINE_JSON_TIME_FLOOR " +
           Sanitize(config.time_floor_text, 40) + ": device clock not set";
  }
  if (config.time_max_ahead_ns > 0) {
    int64_t ahead = 0;
    // An overflow means the device time is the larger by more than int64 can hold.
    const bool overflow = __builtin_sub_overflow(device_ns, receive_ns, &ahead);
    if ((overflow && device_ns > receive_ns) || (!overflow && ahead > config.time_max_ahead_ns)) {
      return "device time " + FormatRfc3339(device_ns) + " is " +
             (overflow ? std::string("centuries") : FormatSpan(ahead)) +
             " ahead of the receive time (EDGELINE_JSON_TIME_MAX_AHEAD " +
             config_internal::FormatDuration(config.time_max_ahead_ns) + ")";
    }
  }
  return "";
}

// nlohmann's message for a malformed document (what and where), without building a DOM.
class ParseErrorCapture : public nlohmann::json_sax<json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    message_ = e.what();
    return false;
  }
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

class JsonMapper {
 public:
  JsonMapper(const MappingConfig& config, const FieldTypeGuard* guard, MappedMessage* out)
      : config_(config), guard_(guard), out_(out), warnings_{&out->warnings} {}

  // Adds the object's members (flattened below `prefix`) as tags/fields of point_.
  // Returns false when the whole message must be rejected (reason in out_->errors).
  bool AddMembers(const json& object, const std::string& prefix, size_t depth = 1) {
    for (const auto& [raw_key, value] : object.items()) {
      std::string key = prefix + raw_key;
      if (prefix.empty() && !config_.time_key.empty() && raw_key == config_.time_key) continue;
      if (value.is_null() || value.is_discarded()) continue;
      if (value.is_object()) {
        if (depth >= kMaxDepth) {
          Warn("key " + Printable(key) + " dropped: nested deeper than " + std::to_string(kMaxDepth) + " levels");
          continue;
        }
        if (!AddMembers(value, key + kFlattenSeparator, depth + 1)) return false;
        continue;
      }
      if (value.is_array()) {
        Warn("key " + Printable(key) + " dropped: arrays are not supported");
        continue;
      }
      if (key.empty()) {
        Warn("empty key dropped");
        continue;
      }
      if (auto why = UnrepresentableReason(LpElement::kKey, key); !why.empty()) {
        Warn("key " + Printable(key) + " dropped: key " + std::string(why));
        continue;
      }
      if (Contains(config_.json_tags, key)) {
        AddTag(key, value);
      } else if (!AddField(key, value)) {
        return false;
      }
    }
    return true;
  }

  void SetTopicTags(std::vector<std::pair<std::string, std::string>> tags) {
    for (auto& [k, v] : tags) {
      if (v.empty()) continue;
      // The key comes from EDGELINE_TOPIC_TAGS, the value from the MQTT topic: neither is
      // guaranteed to be writable (a broker or the HTTP endpoint may pass invalid UTF-8).
      if (auto why = UnrepresentableReason(LpElement::kKey, k); !why.empty()) {
        Warn("topic tag " + Printable(k) + " dropped: key " + std::string(why));
        continue;
      }
      if (auto why = UnrepresentableReason(LpElement::kKey, v); !why.empty()) {
        Warn("topic tag " + Printable(k) + " dropped: value " + std::string(why));
        continue;
      }
      tags_[k] = std::move(v);
    }
  }

  Point& point() { return point_; }

  void Finish() {
    for (auto& [k, v] : tags_) point_.tags.emplace_back(k, std::move(v));
  }

  void Warn(std::string w) { warnings_.Add(std::move(w)); }
  void FinishWarnings() { warnings_.Finish("warnings"); }

 private:
  // Keys are echoed into warnings, which end up in logs and the DLQ: keep them one line and short.
  static std::string Printable(std::string_view s) { return Sanitize(s, 64); }

  void AddTag(const std::string& key, const json& value) {
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_boolean()) {
      text = value.get<bool>() ? "true" : "false";
    } else if (value.is_number_unsigned()) {
      text = std::to_string(value.get<uint64_t>());
    } else if (value.is_number_integer()) {
      text = std::to_string(value.get<int64_t>());
    } else if (value.is_number_float()) {
      text = FormatDouble(value.get<double>());
    }
    if (text.empty()) return;  // an empty tag cannot be written; absence is what it means
    if (auto why = UnrepresentableReason(LpElement::kKey, text); !why.empty()) {
      Warn("tag " + Printable(key) + " dropped: value " + std::string(why));
      return;
    }
    tags_[key] = std::move(text);  // JSON overrides the topic template
  }

  bool AddField(const std::string& key, const json& value) {
    if (!field_keys_.insert(key).second) {
      Warn("field " + Printable(key) + " dropped: duplicate key after flattening");
      return true;
    }
    FieldValue fv;
    if (value.is_boolean()) {
      fv.type = FieldType::kBool;
      fv.b = value.get<bool>();
    } else if (value.is_string()) {
      const auto& s = value.get_ref<const std::string&>();
      if (static_cast<int64_t>(s.size()) > config_.max_string_field_bytes) {
        out_->errors.push_back("string field " + Printable(key) + " is " + std::to_string(s.size()) +
                               " bytes, over the limit of " + std::to_string(config_.max_string_field_bytes));
        return false;
      }
      if (auto why = UnrepresentableReason(LpElement::kStringField, s); !why.empty()) {
        Warn("field " + Printable(key) + " dropped: value " + std::string(why));
        return true;
      }
      fv.type = FieldType::kString;
      fv.s = s;
    } else if (Contains(config_.json_integers, key)) {
      fv.type = FieldType::kInteger;
      if (value.is_number_unsigned()) {
        if (value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          Warn("field " + Printable(key) + " dropped: integer out of range");
          return true;
        }
        fv.i = static_cast<int64_t>(value.get<uint64_t>());
      } else if (value.is_number_integer()) {
        fv.i = value.get<int64_t>();
      } else {
        const double d = value.get<double>();
        if (d != std::trunc(d) || d >= 9223372036854775808.0 || d < -9223372036854775808.0) {
          Warn("field " + Printable(key) + " dropped: not an integer");
          return true;
        }
        fv.i = static_cast<int64_t>(d);
      }
    } else if (std::optional<FieldValue> declared = DeclaredNumber(key, value)) {
      fv = std::move(*declared);
    } else {
      fv.type = FieldType::kFloat;
      fv.f = value.get<double>();
      if (!std::isfinite(fv.f)) {
        Warn("field " + Printable(key) + " dropped: number out of range");
        return true;
      }
    }
    point_.fields.emplace_back(key, std::move(fv));
    return true;
  }

  // A number of a field declared integer or unsigned, when it is one; else nullopt (the number
  // is then a float, which the guard refuses as a type conflict).
  std::optional<FieldValue> DeclaredNumber(const std::string& key, const json& value) const {
    const std::optional<FieldType> declared = guard_ ? guard_->Declared(key) : std::nullopt;
    FieldValue fv;
    if (declared == FieldType::kUnsigned && value.is_number_unsigned()) {
      fv.type = FieldType::kUnsigned;
      fv.u = value.get<uint64_t>();
      return fv;
    }
    if (declared != FieldType::kInteger) return std::nullopt;
    fv.type = FieldType::kInteger;
    if (value.is_number_unsigned()) {
      if (value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      fv.i = static_cast<int64_t>(value.get<uint64_t>());
    } else if (value.is_number_integer()) {
      fv.i = value.get<int64_t>();
    } else {
      const double d = value.get<double>();
      if (d != std::trunc(d) || d >= 9223372036854775808.0 || d < -9223372036854775808.0) return std::nullopt;
      fv.i = static_cast<int64_t>(d);
    }
    return fv;
  }

  const MappingConfig& config_;
  const FieldTypeGuard* guard_;
  MappedMessage* out_;
  ReasonList warnings_;
  Point point_;
  std::map<std::string, std::string> tags_;
  std::unordered_set<std::string> field_keys_;
};

}  // namespace

void MappedMessage::AddLine(std::string line, int64_t ts_ns) {
  if (lines.empty()) {
    min_ts_ns = max_ts_ns = ts_ns;
  } else {
    min_ts_ns = std::min(min_ts_ns, ts_ns);
    max_ts_ns = std::max(max_ts_ns, ts_ns);
  }
  lines.push_back(std::move(line));
}

Mapper::Mapper(MappingConfig config, int64_t max_payload_bytes, FieldTypeGuard* guard)
    : config_(std::move(config)), max_payload_bytes_(max_payload_bytes), guard_(guard) {
  if (!config_.topic_tags.empty()) template_segments_ = SplitTopic(config_.topic_tags);
}

bool Mapper::Guard(Point* point, MappedMessage* out) const {
  if (guard_ == nullptr) return true;
  std::optional<RefusedFields> refused = guard_->Check(point);
  if (refused) out->refused_fields.push_back(std::move(*refused));
  return !point->fields.empty();
}

MappedMessage Mapper::Map(std::string_view topic, std::string_view payload, int64_t receive_ns) const {
  MappedMessage out;
  auto add_line = [&out](std::string line, int64_t ts) { out.AddLine(std::move(line), ts); };

  size_t first = payload.find_first_not_of(" \t\r\n");
  const bool is_json = first != std::string_view::npos && (payload[first] == '{' || payload[first] == '[');

  if (!is_json) {
    ReasonList errors{&out.errors};
    for (const LpLine& line : SplitBodyLines(payload)) {
      Result<Point> point = ParseLine(line.text);
      if (!point.ok()) {
        errors.Add("line " + std::to_string(line.number) + ": " + point.status().message());
        continue;
      }
      if (!point->timestamp_ns) point->timestamp_ns = receive_ns;
      if (!Guard(&*point, &out)) continue;
      add_line(FormatPoint(*point), *point->timestamp_ns);
    }
    errors.Finish("lines rejected");
    if (out.lines.empty() && out.errors.empty() && out.refused_fields.empty()) out.errors.push_back("empty payload");
    return out;
  }

  bool too_many = false;
  json doc = ParseBounded(payload, &too_many);
  std::vector<std::string> overflowed;
  if (doc.is_discarded() && !too_many) {
    std::string rewritten;
    if (NeutralizeOverflowingNumbers(payload, &rewritten, &overflowed)) {
      doc = ParseBounded(rewritten, &too_many);
    }
    if (doc.is_discarded() && !too_many) {
      ParseErrorCapture capture;
      json::sax_parse(payload, &capture);
      std::string why = "malformed JSON";
      if (!capture.message().empty()) why += ": " + Sanitize(capture.message(), 200);
      out.errors.push_back(std::move(why));
      return out;
    }
  }
  if (too_many) {
    out.errors.push_back("JSON has more than " + std::to_string(kMaxJsonMembers) + " members");
    return out;
  }
  if (!doc.is_object()) {
    out.errors.push_back("JSON top level is not an object");
    return out;
  }

  JsonMapper mapper(config_, guard_, &out);
  for (const auto& key : overflowed) mapper.Warn("field " + Sanitize(key, 64) + " dropped: number out of range");
  // Every exit of the object mapping passes through FinishWarnings() below.
  auto map_object = [&]() {
    if (!template_segments_.empty()) {
      std::vector<std::string> segments = SplitTopic(topic);
      std::vector<std::pair<std::string, std::string>> topic_tags;
      bool match = segments.size() == template_segments_.size();
      for (size_t i = 0; match && i < segments.size(); ++i) {
        const std::string& t = template_segments_[i];
        if (const std::string_view tag = config_internal::TopicTagName(t); !tag.empty()) {
          topic_tags.emplace_back(tag, segments[i]);
        } else if (t != "+" && t != segments[i]) {
          match = false;
        }
      }
      if (match) mapper.SetTopicTags(std::move(topic_tags));
    }

    if (!mapper.AddMembers(doc, "")) return;
    mapper.Finish();
    Point& point = mapper.point();
    if (point.fields.empty()) {
      out.errors.push_back("no fields");
      return;
    }
    if (auto why = UnrepresentableReason(LpElement::kMeasurement, config_.measurement);
        config_.measurement.empty() || !why.empty()) {
      out.errors.push_back("configured measurement cannot be written as line protocol");
      return;
    }
    point.measurement = config_.measurement;
    point.timestamp_ns = receive_ns;
    bool adjusted = false;  // a wrong device clock, under EDGELINE_JSON_TIME_POLICY receive-time
    if (!config_.time_key.empty()) {
      auto it = doc.find(config_.time_key);
      if (it != doc.end()) {
        std::string why;
        if (auto ns = JsonTimeToNs(*it, config_.time_format, &why)) {
          std::string wrong = WrongClockReason(config_, *ns, receive_ns);
          if (wrong.empty()) {
            point.timestamp_ns = *ns;
          } else if (config_.time_policy == "dlq") {
            // A JSON message is one point: it is the point that goes.
            out.errors.push_back(std::move(wrong) + " (EDGELINE_JSON_TIME_POLICY dlq)");
            ++out.device_time_rejected;
            return;
          } else {
            // receive-time: the point keeps the receive time; the device's time is kept as a field.
            auto same = [](const auto& f) { return f.first == kDeviceTimeField; };
            if (std::erase_if(point.fields, same) > 0) {
              mapper.Warn(std::string("field ") + kDeviceTimeField +
                          " dropped: replaced by the time key's value (wrong device clock)");
            }
            FieldValue device_time;
            device_time.type = FieldType::kInteger;
            device_time.i = *ns;
            point.fields.emplace_back(kDeviceTimeField, std::move(device_time));
            adjusted = true;
          }
        } else {
          mapper.Warn("time key " + Sanitize(config_.time_key, 64) + " ignored (" + why + "): receive time used");
        }
      }
    }
    if (!Guard(&point, &out)) return;
    add_line(FormatPoint(point), *point.timestamp_ns);
    if (adjusted) ++out.device_time_adjusted;
  };
  map_object();
  mapper.FinishWarnings();
  return out;
}

IngestMessage Mapper::Prepare(std::string_view topic, std::string_view payload, int64_t receive_ns) const {
  IngestMessage message;
  message.topic = std::string(topic);
  message.receive_ns = receive_ns;
  if (static_cast<int64_t>(payload.size()) > max_payload_bytes_) {
    message.mapped.errors.push_back("payload of " + std::to_string(payload.size()) +
                                    " bytes exceeds EDGELINE_MQTT_MAX_PAYLOAD (" + std::to_string(max_payload_bytes_) +
                                    ")");
    // Keep a prefix for diagnosis; the whole thing is what was refused.
    message.payload = std::string(payload.substr(0, 1024));
    return message;
  }
  message.mapped = Map(topic, payload, receive_ns);
  if (!message.mapped.errors.empty() || !message.mapped.warnings.empty()) message.payload = std::string(payload);
  return message;
}

}  // namespace edgeline
