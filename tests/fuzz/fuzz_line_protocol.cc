// libFuzzer target for common/line_protocol: the strict parser and the formatter/escapers.
// Properties per input (the rules of tests/unit/common/line_protocol_conformance_test.cc):
//  1. The input is split with SplitBodyLines. Every line the parser accepts is a well-formed
//     point (non-empty names without control characters, no duplicate tag keys, finite floats,
//     representable elements), and parse -> FormatPoint -> parse gives the same point and the
//     same text (the formatter's output is a fixed point). The formatted line is one line to
//     SplitBodyLines, keeps the measurement and tag bytes, and InfluxDB's field scanner
//     (models/points.go: backslashes taken in pairs) finds the same field keys in it as in the
//     input. The accepted lines formatted and joined by '\n' split back into as many lines.
//  2. A point built from raw bytes (FuzzedDataProvider) whose elements UnrepresentableReason
//     accepts survives FormatPoint -> ParseLine exactly: what the mapper writes is what InfluxDB
//     reads. Rejected errors are short single-line ASCII that never echo the input.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/line_protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace edgeline {
namespace {

using fuzz::Show;

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
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
      return false;
    }
    if (i + len > s.size()) return false;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      const auto ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

bool SameValue(const FieldValue& a, const FieldValue& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case FieldType::kFloat: return std::memcmp(&a.f, &b.f, sizeof(double)) == 0;  // -0 stays -0
    case FieldType::kInteger: return a.i == b.i;
    case FieldType::kUnsigned: return a.u == b.u;
    case FieldType::kString: return a.s == b.s;
    case FieldType::kBool: return a.b == b.b;
  }
  return false;
}

// `a` with its tags in FormatPoint's order equals `b`.
bool SamePoint(Point a, const Point& b) {
  std::stable_sort(a.tags.begin(), a.tags.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  if (a.measurement != b.measurement || a.tags != b.tags || a.timestamp_ns != b.timestamp_ns ||
      a.fields.size() != b.fields.size()) {
    return false;
  }
  for (size_t i = 0; i < a.fields.size(); ++i) {
    if (a.fields[i].first != b.fields[i].first || !SameValue(a.fields[i].second, b.fields[i].second)) return false;
  }
  return true;
}

void CheckErrorMessage(const Status& st, std::string_view input) {
  const std::string& m = st.message();
  FUZZ_CHECK(m.rfind("line protocol: ", 0) == 0, "unexpected error prefix: " + Show(m));
  FUZZ_CHECK(m.size() < 200, "error too long: " + Show(m));
  for (char c : m) {
    FUZZ_CHECK(c >= 0x20 && c < 0x7F, "error not printable ASCII: " + Show(m) + " for " + Show(input));
  }
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

// The measurement and tags text of a line: up to the first space not preceded by a backslash.
std::string_view KeySection(std::string_view line) {
  size_t i = line.find_first_not_of(' ');
  if (i == std::string_view::npos) return {};
  size_t j = i;
  while (j < line.size() && !(line[j] == ' ' && line[j - 1] != '\\')) ++j;
  return line.substr(i, j - i);
}

// Field keys as InfluxDB's server parser finds them (models/points.go scanFields: a backslash
// takes the next byte with it, quotes open only in a value), unescaped as it does; empty when
// the fields do not scan as key=value pairs.
std::vector<std::string> ServerFieldKeys(std::string_view line) {
  std::string_view key = KeySection(line);
  size_t i = static_cast<size_t>(key.data() + key.size() - line.data());
  while (i < line.size() && line[i] == ' ') ++i;
  std::vector<std::string> keys;
  size_t key_start = i;
  bool quoted = false, in_value = false;
  for (; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '\\' && i + 1 < line.size()) {
      ++i;
      continue;
    }
    if (c == '"' && in_value) {
      quoted = !quoted;
      continue;
    }
    if (quoted) continue;
    if (c == '=' && !in_value) {
      std::string k;
      std::string_view raw = line.substr(key_start, i - key_start);
      for (size_t j = 0; j < raw.size(); ++j) {
        if (raw[j] == '\\' && j + 1 < raw.size() && std::string_view(",\" =").find(raw[j + 1]) != std::string_view::npos) ++j;
        k.push_back(raw[j]);
      }
      keys.push_back(std::move(k));
      in_value = true;
    } else if (c == ',' && in_value) {
      in_value = false;
      key_start = i + 1;
    } else if (c == ' ') {
      break;
    }
  }
  if (quoted || !in_value) return {};
  return keys;
}

void CheckWellFormed(const Point& p, std::string_view line) {
  FUZZ_CHECK(!p.measurement.empty(), "empty measurement from " + Show(line));
  FUZZ_CHECK(!HasControl(p.measurement), "control character in measurement from " + Show(line));
  for (size_t i = 0; i < p.tags.size(); ++i) {
    FUZZ_CHECK(!HasControl(p.tags[i].first) && !HasControl(p.tags[i].second), "control character in tag from " + Show(line));
    for (size_t j = 0; j < i; ++j) {
      FUZZ_CHECK(p.tags[i].first != p.tags[j].first, "duplicate tag key accepted: " + Show(line));
    }
  }
  for (const auto& f : p.fields) FUZZ_CHECK(!HasControl(f.first), "control character in field key from " + Show(line));
  FUZZ_CHECK(!p.fields.empty(), "no fields from " + Show(line));
  FUZZ_CHECK(UnrepresentableReason(LpElement::kMeasurement, p.measurement).empty(),
             "parsed measurement not representable: " + Show(line));
  for (const auto& [k, v] : p.tags) {
    FUZZ_CHECK(!k.empty() && !v.empty(), "empty tag key/value from " + Show(line));
    FUZZ_CHECK(UnrepresentableReason(LpElement::kTag, k).empty() && UnrepresentableReason(LpElement::kTag, v).empty(),
               "parsed tag not representable: " + Show(line));
  }
  for (const auto& [k, v] : p.fields) {
    FUZZ_CHECK(!k.empty(), "empty field key from " + Show(line));
    FUZZ_CHECK(UnrepresentableReason(LpElement::kFieldKey, k).empty(), "parsed field key not representable: " + Show(line));
    if (v.type == FieldType::kFloat) FUZZ_CHECK(std::isfinite(v.f), "non-finite float from " + Show(line));
    if (v.type == FieldType::kString) FUZZ_CHECK(ValidUtf8(v.s), "invalid UTF-8 string from " + Show(line));
  }
}

// Returns the formatted line when `line` is accepted, else an empty string.
std::string ParseRoundTrip(std::string_view line) {
  Result<Point> p = ParseLine(line);
  if (!p.ok()) {
    CheckErrorMessage(p.status(), line);
    return {};
  }
  FUZZ_CHECK(ValidUtf8(line), "accepted invalid UTF-8: " + Show(line));
  CheckWellFormed(*p, line);
  const std::string text = FormatPoint(*p);
  const std::vector<LpLine> split = SplitBodyLines(text);
  FUZZ_CHECK(split.size() == 1 && split[0].text == text, "formatted line is not one line: " + Show(text));
  std::string in_key(KeySection(line)), out_key(KeySection(text));
  std::sort(in_key.begin(), in_key.end());
  std::sort(out_key.begin(), out_key.end());
  FUZZ_CHECK(in_key == out_key, "measurement or tag bytes changed: " + Show(line) + " -> " + Show(text));
  const std::vector<std::string> server_keys = ServerFieldKeys(line);
  FUZZ_CHECK(server_keys.size() == p->fields.size(), "InfluxDB would split the fields differently: " + Show(line));
  FUZZ_CHECK(ServerFieldKeys(text) == server_keys, "InfluxDB would read other field keys: " + Show(line) + " -> " + Show(text));
  FUZZ_CHECK(text.rfind(SeriesKey(*p), 0) == 0, "series key is not the line's prefix: " + Show(text));
  Result<Point> again = ParseLine(text);
  FUZZ_CHECK(again.ok(), "formatted point does not re-parse: " + Show(line) + " -> " + Show(text) + ": " +
                             (again.ok() ? std::string() : again.status().message()));
  FUZZ_CHECK(SamePoint(*p, *again), "round trip changed the point: " + Show(line) + " -> " + Show(text));
  FUZZ_CHECK(FormatPoint(*again) == text, "format is not a fixed point: " + Show(text));
  return text;
}

// A point from raw bytes, as the mapper builds one from JSON.
void BuildRoundTrip(FuzzedDataProvider& in) {
  Point p;
  bool representable = true;
  auto element = [&](LpElement kind, size_t max_len) {
    std::string s = in.ConsumeRandomLengthString(max_len);
    if (kind != LpElement::kStringField && s.empty()) representable = false;
    if (!UnrepresentableReason(kind, s).empty() || !ValidUtf8(s)) representable = false;
    return s;
  };
  p.measurement = element(LpElement::kMeasurement, 32);
  const int tags = in.ConsumeIntegralInRange(0, 4);
  for (int i = 0; i < tags; ++i) {
    std::string k = element(LpElement::kTag, 16);
    p.tags.emplace_back(std::move(k), element(LpElement::kTag, 32));
  }
  const int fields = in.ConsumeIntegralInRange(1, 5);
  for (int i = 0; i < fields; ++i) {
    FieldValue v;
    std::string k = element(in.ConsumeBool() ? LpElement::kFieldKey : LpElement::kKey, 16);
    switch (in.ConsumeIntegralInRange(0, 4)) {
      case 0:
        v.type = FieldType::kFloat;
        v.f = in.ConsumeFloatingPoint<double>();
        if (!std::isfinite(v.f)) v.f = 0;  // REQUIRES of FormatPoint; the mapper drops them
        break;
      case 1:
        v.type = FieldType::kInteger;
        v.i = in.ConsumeIntegral<int64_t>();
        break;
      case 2:
        v.type = FieldType::kUnsigned;
        v.u = in.ConsumeIntegral<uint64_t>();
        break;
      case 3:
        v.type = FieldType::kString;
        v.s = element(LpElement::kStringField, 64);
        break;
      default:
        v.type = FieldType::kBool;
        v.b = in.ConsumeBool();
        break;
    }
    p.fields.emplace_back(std::move(k), std::move(v));
  }
  if (in.ConsumeBool()) p.timestamp_ns = in.ConsumeIntegral<int64_t>();
  for (size_t i = 0; i < p.tags.size(); ++i) {
    for (size_t j = 0; j < i; ++j) representable = representable && p.tags[i].first != p.tags[j].first;
  }
  if (!representable) return;
  const std::string text = FormatPoint(p);
  Result<Point> back = ParseLine(text);
  FUZZ_CHECK(back.ok(), "representable point does not parse: " + Show(text) + ": " +
                            (back.ok() ? std::string() : back.status().message()));
  FUZZ_CHECK(SamePoint(p, *back), "representable point changed: " + Show(text));
}

}  // namespace
}  // namespace edgeline

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::string joined;
  size_t accepted = 0;
  for (const edgeline::LpLine& line : edgeline::SplitBodyLines(all)) {
    FUZZ_CHECK(line.offset + line.text.size() <= all.size() && all.substr(line.offset, line.text.size()) == line.text,
               "split line is not a slice of the body");
    std::string text = edgeline::ParseRoundTrip(line.text);
    if (text.empty()) continue;
    ++accepted;
    joined += text;
    joined.push_back('\n');
  }
  const std::vector<edgeline::LpLine> again = edgeline::SplitBodyLines(joined);
  FUZZ_CHECK(again.size() == accepted, "accepted lines joined do not split back: " + edgeline::fuzz::Show(joined));
  FuzzedDataProvider provider(data, size);
  edgeline::BuildRoundTrip(provider);
  return 0;
}
