#include "common/line_protocol.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>
#include <system_error>

namespace edgeline {
namespace {

// Escape rules follow InfluxDB's own parser (models/points.go), which is what finally reads
// our output: a backslash always consumes the next byte while scanning; only the element's
// special characters are unescaped, any other "\x" stays as both bytes. Backslashes are
// therefore not escaped in measurements, keys and tag values, and "\\\\" means two backslashes.
constexpr std::string_view kMeasurementSpecials = ", ";
constexpr std::string_view kKeySpecials = ",= ";

bool IsSpecial(std::string_view specials, char c) { return specials.find(c) != std::string_view::npos; }

void AppendEscaped(std::string* out, std::string_view s, std::string_view specials) {
  for (char c : s) {
    if (IsSpecial(specials, c)) out->push_back('\\');
    out->push_back(c);
  }
}

// Returns the offset of the first byte that is not part of a well-formed UTF-8 sequence
// (overlongs, surrogates and code points above U+10FFFF are malformed), or npos.
size_t FindInvalidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n) return i;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      const auto ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// [-]?(digits(.digits*)?|.digits)([eE][+-]?digits)?
bool IsFloatSyntax(std::string_view t) {
  size_t i = 0;
  if (i < t.size() && t[i] == '-') ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < t.size() && IsDigit(t[i])) ++i, ++int_digits;
  if (i < t.size() && t[i] == '.') {
    ++i;
    while (i < t.size() && IsDigit(t[i])) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < t.size() && IsDigit(t[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == t.size();
}

bool IsIntegerSyntax(std::string_view t, bool allow_minus) {
  size_t i = 0;
  if (allow_minus && i < t.size() && t[i] == '-') ++i;
  if (i == t.size()) return false;
  for (; i < t.size(); ++i) {
    if (!IsDigit(t[i])) return false;
  }
  return true;
}

class LineParser {
 public:
  explicit LineParser(std::string_view line) : s_(line) {}

  Result<Point> Parse() {
    if (s_.empty()) return Error(0, "empty line");
    if (size_t bad = FindInvalidUtf8(s_); bad != std::string_view::npos) {
      return Error(bad, "invalid UTF-8");
    }
    if (size_t br = s_.find_first_of("\r\n"); br != std::string_view::npos) {
      return Error(br, "line break inside a line");
    }
    Point point;
    size_t start = pos_;
    Status st = ScanEscaped(kMeasurementSpecials, ", ", &point.measurement);
    if (!st.ok()) return st;
    if (point.measurement.empty()) return Error(start, "empty measurement");

    while (pos_ < s_.size() && s_[pos_] == ',') {
      ++pos_;
      std::pair<std::string, std::string> tag;
      start = pos_;
      st = ScanEscaped(kKeySpecials, ",= ", &tag.first);
      if (!st.ok()) return st;
      if (tag.first.empty()) return Error(start, "empty tag key");
      if (pos_ >= s_.size() || s_[pos_] != '=') return Error(pos_, "tag key without '='");
      ++pos_;
      start = pos_;
      st = ScanEscaped(kKeySpecials, ",= ", &tag.second);
      if (!st.ok()) return st;
      if (tag.second.empty()) return Error(start, "empty tag value");
      if (pos_ < s_.size() && s_[pos_] == '=') return Error(pos_, "unescaped '=' in tag value");
      point.tags.push_back(std::move(tag));
    }
    if (SkipSpaces() == 0 || pos_ >= s_.size()) return Error(pos_, "missing fields");

    while (true) {
      std::pair<std::string, FieldValue> field;
      start = pos_;
      st = ScanEscaped(kKeySpecials, ",= ", &field.first);
      if (!st.ok()) return st;
      if (field.first.empty()) return Error(start, "empty field key");
      if (pos_ >= s_.size() || s_[pos_] != '=') return Error(pos_, "field key without '='");
      ++pos_;
      st = ParseFieldValue(&field.second);
      if (!st.ok()) return st;
      point.fields.push_back(std::move(field));
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      break;
    }

    if (pos_ < s_.size() && s_[pos_] != ' ') return Error(pos_, "unexpected character after field value");
    SkipSpaces();
    if (pos_ < s_.size()) {
      start = pos_;
      size_t end = s_.find(' ', pos_);
      if (end == std::string_view::npos) end = s_.size();
      std::string_view t = s_.substr(pos_, end - pos_);
      if (!IsIntegerSyntax(t, /*allow_minus=*/true)) return Error(start, "invalid timestamp");
      int64_t ts = 0;
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), ts);
      if (ec != std::errc() || p != t.data() + t.size()) return Error(start, "timestamp out of range");
      point.timestamp_ns = ts;
      pos_ = end;
      SkipSpaces();
      if (pos_ < s_.size()) return Error(pos_, "trailing garbage");
    }
    return point;
  }

 private:
  Status Error(size_t at, std::string_view what) const {
    return Status::InvalidArgument("line protocol: " + std::string(what) + " at byte " + std::to_string(at));
  }

  size_t SkipSpaces() {
    size_t n = 0;
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_, ++n;
    return n;
  }

  // Reads up to an unescaped byte in `stops` (or the end), unescaping `specials`.
  Status ScanEscaped(std::string_view specials, std::string_view stops, std::string* out) {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\\') {
        if (pos_ + 1 >= s_.size()) return Error(pos_, "backslash at end of line");
        char next = s_[pos_ + 1];
        if (!IsSpecial(specials, next)) out->push_back('\\');
        out->push_back(next);
        pos_ += 2;
        continue;
      }
      if (IsSpecial(stops, c)) break;
      out->push_back(c);
      ++pos_;
    }
    return Status::Ok();
  }

  Status ParseFieldValue(FieldValue* v) {
    const size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '"') {
      ++pos_;
      v->type = FieldType::kString;
      while (true) {
        if (pos_ >= s_.size()) return Error(start, "unterminated string field");
        char c = s_[pos_];
        if (c == '"') {
          ++pos_;
          return Status::Ok();
        }
        if (c == '\\' && pos_ + 1 < s_.size() && (s_[pos_ + 1] == '"' || s_[pos_ + 1] == '\\')) {
          v->s.push_back(s_[pos_ + 1]);
          pos_ += 2;
          continue;
        }
        v->s.push_back(c);
        ++pos_;
      }
    }
    size_t end = s_.find_first_of(", ", pos_);
    if (end == std::string_view::npos) end = s_.size();
    std::string_view t = s_.substr(pos_, end - pos_);
    pos_ = end;
    if (t.empty()) return Error(start, "empty field value");
    if (t == "t" || t == "T" || t == "true" || t == "True" || t == "TRUE") {
      v->type = FieldType::kBool;
      v->b = true;
      return Status::Ok();
    }
    if (t == "f" || t == "F" || t == "false" || t == "False" || t == "FALSE") {
      v->type = FieldType::kBool;
      v->b = false;
      return Status::Ok();
    }
    const char* first = t.data();
    const char* last = t.data() + t.size();
    if (t.back() == 'i') {
      std::string_view body = t.substr(0, t.size() - 1);
      if (!IsIntegerSyntax(body, true)) return Error(start, "invalid integer field value");
      v->type = FieldType::kInteger;
      auto [p, ec] = std::from_chars(first, last - 1, v->i);
      if (ec != std::errc() || p != last - 1) return Error(start, "integer field value out of range");
      return Status::Ok();
    }
    if (t.back() == 'u') {
      std::string_view body = t.substr(0, t.size() - 1);
      if (!IsIntegerSyntax(body, false)) return Error(start, "invalid unsigned field value");
      v->type = FieldType::kUnsigned;
      auto [p, ec] = std::from_chars(first, last - 1, v->u);
      if (ec != std::errc() || p != last - 1) return Error(start, "unsigned field value out of range");
      return Status::Ok();
    }
    if (!IsFloatSyntax(t)) return Error(start, "invalid field value");
    v->type = FieldType::kFloat;
    auto [p, ec] = std::from_chars(first, last, v->f);
    if (ec == std::errc::result_out_of_range) {
      // from_chars reports underflow too; only overflow is unwritable (tiny values become 0/subnormal).
      std::string copy(t);
      char* endp = nullptr;
      double d = std::strtod(copy.c_str(), &endp);
      if (endp != copy.c_str() + copy.size() || !std::isfinite(d)) {
        return Error(start, "float field value out of range");
      }
      v->f = d;
      return Status::Ok();
    }
    if (ec != std::errc() || p != last || !std::isfinite(v->f)) return Error(start, "invalid float field value");
    return Status::Ok();
  }

  std::string_view s_;
  size_t pos_ = 0;
};

void AppendSortedTags(std::string* out, const Point& point) {
  std::vector<const std::pair<std::string, std::string>*> tags;
  tags.reserve(point.tags.size());
  for (const auto& t : point.tags) tags.push_back(&t);
  std::stable_sort(tags.begin(), tags.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  for (const auto* t : tags) {
    out->push_back(',');
    AppendEscapedKey(out, t->first);
    out->push_back('=');
    AppendEscapedKey(out, t->second);
  }
}

template <typename T>
void AppendNumber(std::string* out, T value) {
  char buf[40];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  (void)ec;  // 40 bytes hold any shortest double or 64-bit integer
  out->append(buf, p);
}

}  // namespace

void AppendEscapedMeasurement(std::string* out, std::string_view s) { AppendEscaped(out, s, kMeasurementSpecials); }

void AppendEscapedKey(std::string* out, std::string_view s) { AppendEscaped(out, s, kKeySpecials); }

void AppendEscapedStringField(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

std::string FormatPoint(const Point& point) {
  std::string out;
  out.reserve(64 + point.fields.size() * 24);
  AppendEscapedMeasurement(&out, point.measurement);
  AppendSortedTags(&out, point);
  out.push_back(' ');
  bool first = true;
  for (const auto& [key, value] : point.fields) {
    if (!first) out.push_back(',');
    first = false;
    AppendEscapedKey(&out, key);
    out.push_back('=');
    switch (value.type) {
      case FieldType::kFloat: AppendNumber(&out, value.f); break;
      case FieldType::kInteger:
        AppendNumber(&out, value.i);
        out.push_back('i');
        break;
      case FieldType::kUnsigned:
        AppendNumber(&out, value.u);
        out.push_back('u');
        break;
      case FieldType::kString: AppendEscapedStringField(&out, value.s); break;
      case FieldType::kBool: out.append(value.b ? "true" : "false"); break;
    }
  }
  if (point.timestamp_ns) {
    out.push_back(' ');
    AppendNumber(&out, *point.timestamp_ns);
  }
  return out;
}

Result<Point> ParseLine(std::string_view line) { return LineParser(line).Parse(); }

std::string SeriesKey(const Point& point) {
  std::string out;
  AppendEscapedMeasurement(&out, point.measurement);
  AppendSortedTags(&out, point);
  return out;
}

std::string_view UnrepresentableReason(LpElement kind, std::string_view s) {
  if (s.find_first_of("\r\n") != std::string_view::npos) return "contains a line break";
  // The parser (like InfluxDB) refuses the whole line otherwise. JSON text is valid UTF-8 by
  // then, but MQTT topics and configured names reach the formatter unchecked.
  if (FindInvalidUtf8(s) != std::string_view::npos) return "is not valid UTF-8";
  if (kind == LpElement::kStringField) return {};
  const std::string_view specials = kind == LpElement::kMeasurement ? kMeasurementSpecials : kKeySpecials;
  // Mirrors the scanner: a backslash takes the next byte with it, so it must not be last and
  // must not precede a byte that the escaper will itself prefix with a backslash.
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') continue;
    if (i + 1 == s.size()) return "ends with a backslash";
    if (IsSpecial(specials, s[i + 1])) return "has a backslash before a separator";
    ++i;
  }
  return {};
}

}  // namespace edgeline
