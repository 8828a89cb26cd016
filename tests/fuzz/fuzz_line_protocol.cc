// libFuzzer target for common/line_protocol: the strict parser and the formatter/escapers.
// Two properties per input:
//  1. Every line the parser accepts is a well-formed point (non-empty names, finite floats,
//     representable elements), and parse -> FormatPoint -> parse gives the same point and the
//     same text (the formatter's output is a fixed point).
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

void CheckWellFormed(const Point& p, std::string_view line) {
  FUZZ_CHECK(!p.measurement.empty(), "empty measurement from " + Show(line));
  FUZZ_CHECK(!p.fields.empty(), "no fields from " + Show(line));
  FUZZ_CHECK(UnrepresentableReason(LpElement::kMeasurement, p.measurement).empty(),
             "parsed measurement not representable: " + Show(line));
  for (const auto& [k, v] : p.tags) {
    FUZZ_CHECK(!k.empty() && !v.empty(), "empty tag key/value from " + Show(line));
    FUZZ_CHECK(UnrepresentableReason(LpElement::kKey, k).empty() && UnrepresentableReason(LpElement::kKey, v).empty(),
               "parsed tag not representable: " + Show(line));
  }
  for (const auto& [k, v] : p.fields) {
    FUZZ_CHECK(!k.empty(), "empty field key from " + Show(line));
    FUZZ_CHECK(UnrepresentableReason(LpElement::kKey, k).empty(), "parsed field key not representable: " + Show(line));
    if (v.type == FieldType::kFloat) FUZZ_CHECK(std::isfinite(v.f), "non-finite float from " + Show(line));
    if (v.type == FieldType::kString) FUZZ_CHECK(ValidUtf8(v.s), "invalid UTF-8 string from " + Show(line));
  }
}

void ParseRoundTrip(std::string_view line) {
  Result<Point> p = ParseLine(line);
  if (!p.ok()) {
    CheckErrorMessage(p.status(), line);
    return;
  }
  FUZZ_CHECK(ValidUtf8(line), "accepted invalid UTF-8: " + Show(line));
  CheckWellFormed(*p, line);
  const std::string text = FormatPoint(*p);
  FUZZ_CHECK(text.find_first_of("\r\n") == std::string::npos, "formatted line has a line break: " + Show(text));
  FUZZ_CHECK(text.rfind(SeriesKey(*p), 0) == 0, "series key is not the line's prefix: " + Show(text));
  Result<Point> again = ParseLine(text);
  FUZZ_CHECK(again.ok(), "formatted point does not re-parse: " + Show(line) + " -> " + Show(text) + ": " +
                             (again.ok() ? std::string() : again.status().message()));
  FUZZ_CHECK(SamePoint(*p, *again), "round trip changed the point: " + Show(line) + " -> " + Show(text));
  FUZZ_CHECK(FormatPoint(*again) == text, "format is not a fixed point: " + Show(text));
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
    std::string k = element(LpElement::kKey, 16);
    p.tags.emplace_back(std::move(k), element(LpElement::kKey, 32));
  }
  const int fields = in.ConsumeIntegralInRange(1, 5);
  for (int i = 0; i < fields; ++i) {
    FieldValue v;
    std::string k = element(LpElement::kKey, 16);
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
  size_t start = 0;
  while (start <= all.size()) {
    size_t nl = all.find('\n', start);
    if (nl == std::string_view::npos) nl = all.size();
    edgeline::ParseRoundTrip(all.substr(start, nl - start));
    start = nl + 1;
  }
  FuzzedDataProvider provider(data, size);
  edgeline::BuildRoundTrip(provider);
  return 0;
}
