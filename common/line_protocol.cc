#include "common/line_protocol.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>
#include <system_error>

#include "common/strings.h"

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

// Control characters have no escape in names: InfluxDB's reference decoder ends a name there
// (and then fails). They are allowed only inside string field values.
bool IsControl(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; }

// Offset of the last backslash of an odd-length run that directly precedes a byte of
// `specials`, or npos. Escaping adds one backslash before the special, and InfluxDB's field
// scanner takes backslashes in pairs, so in a field key such a run makes it split the line
// elsewhere than we do.
size_t FindOddBackslashRunBefore(std::string_view s, std::string_view specials) {
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++run;
      continue;
    }
    if (run % 2 == 1 && IsSpecial(specials, s[i])) return i - 1;
    run = 0;
  }
  return std::string_view::npos;
}

class LineParser {
 public:
  explicit LineParser(std::string_view line) : s_(line) {}

  Result<Point> Parse() {
    if (size_t bad = FindInvalidUtf8(s_); bad != std::string_view::npos) {
      return Error(bad, "invalid UTF-8");
    }
    SkipSpaces();
    if (AtEnd()) return Error(pos_, "empty line");
    if (s_[pos_] == '#') return Error(pos_, "line starts with '#' (a comment)");
    Point point;
    size_t start = pos_;
    ScanName(kMeasurementSpecials, &point.measurement);
    if (point.measurement.empty()) return BadByte(start, "measurement", "empty measurement");
    if (pos_ >= s_.size()) return Error(pos_, "missing fields");
    if (s_[pos_] != ',' && s_[pos_] != ' ') return BadByte(pos_, "measurement", "unexpected character");

    while (pos_ < s_.size() && s_[pos_] == ',') {
      ++pos_;
      std::pair<std::string, std::string> tag;
      start = pos_;
      ScanName(kKeySpecials, &tag.first);
      if (tag.first.empty()) return BadByte(start, "tag key", "empty tag key");
      if (pos_ >= s_.size() || s_[pos_] != '=') return BadByte(pos_, "tag key", "tag key without '='");
      ++pos_;
      start = pos_;
      ScanName(kKeySpecials, &tag.second);
      if (tag.second.empty()) return BadByte(start, "tag value", "empty tag value");
      if (pos_ >= s_.size()) return Error(pos_, "missing fields");
      if (s_[pos_] != ',' && s_[pos_] != ' ') return BadByte(pos_, "tag value", "unescaped '=' in tag value");
      point.tags.push_back(std::move(tag));
    }
    if (size_t dup = DuplicateTag(point); dup != 0) return Error(0, "duplicate tag key (tag " + std::to_string(dup) + ")");
    SkipSpaces();
    if (AtEnd()) return Error(pos_, "missing fields");

    while (true) {
      std::pair<std::string, FieldValue> field;
      start = pos_;
      ScanName(kKeySpecials, &field.first);
      if (field.first.empty()) return BadByte(start, "field key", "empty field key");
      if (pos_ >= s_.size() || s_[pos_] != '=') return BadByte(pos_, "field key", "field key without '='");
      // The text  a\\ b=1  reads as key "a\ b" here (and in the reference decoder), but
      // InfluxDB's field scanner pairs the backslashes and ends the fields at the space.
      if (FindOddBackslashRunBefore(field.first, kKeySpecials) != std::string_view::npos) {
        return Error(start, "backslashes before an escaped separator in field key");
      }
      ++pos_;
      Status st = ParseFieldValue(&field.second);
      if (!st.ok()) return st;
      point.fields.push_back(std::move(field));
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      break;
    }

    if (AtEnd()) return point;
    if (s_[pos_] != ' ') return BadByte(pos_, "field value", "unexpected character after field value");
    SkipSpaces();
    if (AtEnd()) return point;
    start = pos_;
    size_t end = pos_;
    while (end < s_.size() && s_[end] != ' ' && s_[end] != '\r') ++end;
    std::string_view t = s_.substr(pos_, end - pos_);
    if (!IsIntegerSyntax(t, /*allow_minus=*/true)) return Error(start, "invalid timestamp");
    int64_t ts = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), ts);
    if (ec != std::errc() || p != t.data() + t.size()) return Error(start, "timestamp out of range");
    point.timestamp_ns = ts;
    pos_ = end;
    SkipSpaces();
    if (!AtEnd()) return BadByte(pos_, "timestamp", "trailing garbage");
    return point;
  }

 private:
  Status Error(size_t at, std::string_view what) const {
    return Status::InvalidArgument("line protocol: " + std::string(what) + " at byte " + std::to_string(at));
  }

  // The byte at `at` cannot start, continue or end `element` (or there is none): `what`, or the
  // kind of control character when it is one. Never quotes the byte itself.
  Status BadByte(size_t at, std::string_view element, std::string_view what) const {
    if (at < s_.size() && (s_[at] == '\n' || s_[at] == '\r')) {
      return Error(at, "line break outside a string field, after " + std::string(element));
    }
    if (at < s_.size() && IsControl(s_[at])) return Error(at, "control character in " + std::string(element));
    return Error(at, what);
  }

  // End of the line: nothing left, or the one '\r' a "\r\n" line ending leaves behind.
  bool AtEnd() const { return pos_ == s_.size() || (pos_ + 1 == s_.size() && s_[pos_] == '\r'); }

  size_t SkipSpaces() {
    size_t n = 0;
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_, ++n;
    return n;
  }

  // 1-based index of the first tag whose key repeats an earlier one, or 0.
  static size_t DuplicateTag(const Point& point) {
    if (point.tags.size() < 2) return 0;
    std::vector<std::pair<std::string_view, size_t>> keys;
    keys.reserve(point.tags.size());
    for (size_t i = 0; i < point.tags.size(); ++i) keys.emplace_back(point.tags[i].first, i + 1);
    std::sort(keys.begin(), keys.end());
    size_t dup = 0;
    for (size_t i = 1; i < keys.size(); ++i) {
      if (keys[i].first == keys[i - 1].first && (dup == 0 || keys[i].second < dup)) dup = keys[i].second;
    }
    return dup;
  }

  // Reads a name up to an unescaped byte of `specials`, a control character or the end. A
  // backslash before a special byte escapes it; any other backslash is kept and the byte after
  // it is read normally (so "\\\\ " is a backslash and an escaped space).
  void ScanName(std::string_view specials, std::string* out) {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '\\' && pos_ + 1 < s_.size() && IsSpecial(specials, s_[pos_ + 1])) {
        out->push_back(s_[pos_ + 1]);
        pos_ += 2;
        continue;
      }
      if (IsSpecial(specials, c) || IsControl(c)) break;
      out->push_back(c);
      ++pos_;
    }
  }

  Status ParseFieldValue(FieldValue* v) {
    const size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '"') {
      ++pos_;
      v->type = FieldType::kString;
      // Any byte (line breaks too) up to an unescaped quote; only \" and \\ are unescaped, as
      // InfluxDB reads them.
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
    size_t end = pos_;
    while (end < s_.size() && s_[end] != ',' && s_[end] != ' ' && s_[end] != '\r' && s_[end] != '\n') ++end;
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

// Where the line that starts at `i` ends: the first '\n' that is not inside a quoted string
// field value, or the end of the body. Follows the parser's structure (measurement and tags up
// to an unescaped space, then key=value pairs) so that only a quote opening a field value
// opens a string; on a malformed line it still stops at the next '\n' outside such a string.
size_t FindLineEnd(std::string_view b, size_t i) {
  const size_t n = b.size();
  auto escaped = [&](size_t at) { return at > 0 && b[at - 1] == '\\'; };
  // Measurement and tags.
  while (i < n && b[i] != '\n' && !(b[i] == ' ' && !escaped(i))) ++i;
  // Fields: key '=' value {',' key '=' value}, then anything to the end of the line.
  bool in_fields = true;
  while (i < n && b[i] != '\n') {
    if (!in_fields) {
      ++i;
      continue;
    }
    while (i < n && b[i] == ' ') ++i;  // the spaces after the tags
    // Field key up to an unescaped '='.
    while (i < n && b[i] != '\n' && !((b[i] == '=' || b[i] == ',' || b[i] == ' ') && !escaped(i))) ++i;
    if (i >= n || b[i] != '=') {
      in_fields = false;
      continue;
    }
    ++i;
    if (i < n && b[i] == '"') {
      for (++i; i < n && b[i] != '"'; ++i) {
        if (b[i] == '\\' && i + 1 < n) ++i;
      }
      if (i < n) ++i;  // closing quote
    } else {
      while (i < n && b[i] != ',' && b[i] != ' ' && b[i] != '\n') ++i;
    }
    if (i < n && b[i] == ',') {
      ++i;
      continue;
    }
    in_fields = false;
  }
  return i;
}

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

std::vector<LpLine> SplitBodyLines(std::string_view body) {
  std::vector<LpLine> lines;
  size_t number = 1;
  size_t i = 0;
  while (i < body.size()) {
    const size_t start = i;
    size_t first = i;
    while (first < body.size() && body[first] == ' ') ++first;
    size_t end;
    if (first < body.size() && body[first] == '#') {
      end = body.find('\n', first);
      if (end == std::string_view::npos) end = body.size();
    } else {
      end = FindLineEnd(body, first);
    }
    std::string_view text = body.substr(start, end - start);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    const size_t line_number = number;
    number += 1 + static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
    i = end + 1;
    const size_t content = first - start;
    if (content >= text.size()) continue;  // blank line
    if (text[content] == '#' && std::none_of(text.begin() + content, text.end(), IsControl)) continue;
    lines.push_back(LpLine{text, start, line_number});
  }
  return lines;
}


std::string SeriesKey(const Point& point) {
  std::string out;
  AppendEscapedMeasurement(&out, point.measurement);
  AppendSortedTags(&out, point);
  return out;
}

std::string_view UnrepresentableReason(LpElement kind, std::string_view s) {
  // The parser (like InfluxDB) refuses the whole line otherwise. JSON text is valid UTF-8 by
  // then, but MQTT topics and configured names reach the formatter unchecked.
  if (FindInvalidUtf8(s) != std::string_view::npos) return "is not valid UTF-8";
  if (kind == LpElement::kStringField) {
    if (s.find_first_of("\r\n") != std::string_view::npos) return "contains a line break";
    return {};
  }
  if (std::any_of(s.begin(), s.end(), IsControl)) return "contains a control character";
  // The escaper puts one backslash before each separator; a final backslash would escape the
  // separator that follows the name.
  if (!s.empty() && s.back() == '\\') return "ends with a backslash";
  // A line that starts with '#' is a comment; escaping does not change that ("\\#" is kept whole).
  if (kind == LpElement::kMeasurement && !s.empty() && s.front() == '#') return "starts with '#' (a comment)";
  if ((kind == LpElement::kKey || kind == LpElement::kFieldKey) &&
      FindOddBackslashRunBefore(s, kKeySpecials) != std::string_view::npos) {
    return "has a backslash before a separator";
  }
  return {};
}

}  // namespace edgeline
