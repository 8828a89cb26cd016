#include "common/line_protocol.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace edgeline {
namespace {

bool SameValue(const FieldValue& a, const FieldValue& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case FieldType::kFloat: return a.f == b.f && std::signbit(a.f) == std::signbit(b.f);
    case FieldType::kInteger: return a.i == b.i;
    case FieldType::kUnsigned: return a.u == b.u;
    case FieldType::kString: return a.s == b.s;
    case FieldType::kBool: return a.b == b.b;
  }
  return false;
}

void ExpectSamePoint(const Point& a, const Point& b) {
  EXPECT_EQ(a.measurement, b.measurement);
  EXPECT_EQ(a.tags, b.tags);
  ASSERT_EQ(a.fields.size(), b.fields.size());
  for (size_t i = 0; i < a.fields.size(); ++i) {
    EXPECT_EQ(a.fields[i].first, b.fields[i].first);
    EXPECT_TRUE(SameValue(a.fields[i].second, b.fields[i].second)) << "field " << a.fields[i].first;
  }
  EXPECT_EQ(a.timestamp_ns, b.timestamp_ns);
}

Point ParseOk(std::string_view line) {
  Result<Point> p = ParseLine(line);
  EXPECT_TRUE(p.ok()) << line << ": " << p.status().ToString();
  return p.ok() ? *p : Point{};
}

FieldValue Float(double f) {
  FieldValue v;
  v.f = f;
  return v;
}

TEST(LineProtocolTest, FixtureLinesRoundTrip) {
  std::ifstream in(EDGELINE_FIXTURES_DIR "/generators_raw.lp");
  ASSERT_TRUE(in) << "cannot open fixture";
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ++n;
    Point p = ParseOk(line);
    ASSERT_EQ(p.measurement, "genData");
    ASSERT_EQ(p.tags.size(), 1u);
    ASSERT_EQ(p.fields.size(), 6u);
    ASSERT_TRUE(p.timestamp_ns.has_value());
    std::string text = FormatPoint(p);
    Point again = ParseOk(text);
    ExpectSamePoint(p, again);
    EXPECT_EQ(FormatPoint(again), text);
  }
  EXPECT_EQ(n, 399);
}

TEST(LineProtocolTest, FormatsCanonically) {
  Point p;
  p.measurement = "genData";
  p.tags = {{"z", "1"}, {"generatorID", "g1"}};
  p.fields.emplace_back("fuel", Float(944));
  p.fields.emplace_back("lat", Float(40.68066));
  FieldValue i;
  i.type = FieldType::kInteger;
  i.i = -123;
  p.fields.emplace_back("n", i);
  FieldValue u;
  u.type = FieldType::kUnsigned;
  u.u = std::numeric_limits<uint64_t>::max();
  p.fields.emplace_back("u", u);
  FieldValue b;
  b.type = FieldType::kBool;
  b.b = true;
  p.fields.emplace_back("ok", b);
  FieldValue s;
  s.type = FieldType::kString;
  s.s = "hi";
  p.fields.emplace_back("s", s);
  EXPECT_EQ(FormatPoint(p),
            "genData,generatorID=g1,z=1 fuel=944,lat=40.68066,n=-123i,u=18446744073709551615u,ok=true,s=\"hi\"");
  p.timestamp_ns = 1764000000603000000;
  EXPECT_EQ(FormatPoint(p),
            "genData,generatorID=g1,z=1 fuel=944,lat=40.68066,n=-123i,u=18446744073709551615u,ok=true,s=\"hi\" "
            "1764000000603000000");
  EXPECT_EQ(SeriesKey(p), "genData,generatorID=g1,z=1");
}

TEST(LineProtocolTest, EscapesEachElementKind) {
  Point p;
  p.measurement = "gen data,x";
  p.tags = {{"tag key=,", "gen 1,x=y"}};
  FieldValue s;
  s.type = FieldType::kString;
  s.s = "say \"hi\"\\";
  p.fields.emplace_back("field key", s);
  p.timestamp_ns = 5;
  const std::string text = FormatPoint(p);
  EXPECT_EQ(text, R"(gen\ data\,x,tag\ key\=\,=gen\ 1\,x\=y field\ key="say \"hi\"\\" 5)");
  Point back = ParseOk(text);
  ExpectSamePoint(p, back);
  EXPECT_EQ(back.tags[0].second, "gen 1,x=y");
  EXPECT_EQ(SeriesKey(p), R"(gen\ data\,x,tag\ key\=\,=gen\ 1\,x\=y)");
}

TEST(LineProtocolTest, EqualsSignNeedsNoEscapeInMeasurement) {
  Point p = ParseOk("a=b f=1");
  EXPECT_EQ(p.measurement, "a=b");
}

// Issue 13: "k=C:\dir\\ f=1" was answered 204 as tag value `C:\dir\\`, then forwarded; InfluxDB
// reads the backslash before the space as an escape (the tag value runs on into "f=1") and
// refused the line. A backslash before a separator always escapes it; any other is kept.
TEST(LineProtocolTest, BackslashBeforeSeparatorAlwaysEscapesIt) {
  EXPECT_FALSE(ParseLine(R"(m,k=C:\dir\\ f=1)").ok());
  Point p = ParseOk(R"(m\\x,k=C:\dir\\\ x f="a\\b\"c\d" 1)");
  EXPECT_EQ(p.measurement, R"(m\\x)");
  EXPECT_EQ(p.tags[0].second, R"(C:\dir\\ x)");
  EXPECT_EQ(p.fields[0].second.s, R"(a\b"c\d)");
  EXPECT_EQ(FormatPoint(p), R"(m\\x,k=C:\dir\\\ x f="a\\b\"c\\d" 1)");
  ExpectSamePoint(p, ParseOk(FormatPoint(p)));

  EXPECT_TRUE(UnrepresentableReason(LpElement::kKey, R"(C:\dir)").empty());
  EXPECT_FALSE(UnrepresentableReason(LpElement::kKey, R"(a\\)").empty());  // the 204 above
  EXPECT_FALSE(UnrepresentableReason(LpElement::kTag, R"(a\\)").empty());
  EXPECT_FALSE(UnrepresentableReason(LpElement::kKey, R"(a\)").empty());
  EXPECT_FALSE(UnrepresentableReason(LpElement::kKey, R"(a\,b)").empty());
  EXPECT_TRUE(UnrepresentableReason(LpElement::kTag, R"(a\,b)").empty());
  EXPECT_FALSE(UnrepresentableReason(LpElement::kFieldKey, R"(a\,b)").empty());
  EXPECT_TRUE(UnrepresentableReason(LpElement::kFieldKey, R"(a\\,b)").empty());
  EXPECT_FALSE(UnrepresentableReason(LpElement::kKey, "a\nb").empty());
  EXPECT_FALSE(UnrepresentableReason(LpElement::kTag, "a\tb").empty());
  EXPECT_TRUE(UnrepresentableReason(LpElement::kMeasurement, R"(a\=b)").empty());
  EXPECT_TRUE(UnrepresentableReason(LpElement::kMeasurement, R"(a\ b)").empty());
  EXPECT_FALSE(UnrepresentableReason(LpElement::kMeasurement, R"(a\)").empty());
  EXPECT_FALSE(UnrepresentableReason(LpElement::kMeasurement, "a\x7f").empty());
  EXPECT_FALSE(UnrepresentableReason(LpElement::kMeasurement, "#m").empty());  // found by fuzz_line_protocol
  EXPECT_TRUE(UnrepresentableReason(LpElement::kMeasurement, "m#").empty());
  EXPECT_TRUE(UnrepresentableReason(LpElement::kStringField, R"(a\)").empty());
  EXPECT_TRUE(UnrepresentableReason(LpElement::kStringField, "a\tb").empty());
  EXPECT_FALSE(UnrepresentableReason(LpElement::kStringField, "a\rb").empty());
}

TEST(LineProtocolTest, ParsesAllFieldTypes) {
  Point p = ParseOk(
      "m f1=1,f2=-1.5E-3,f3=1e10,f4=.5,f5=7.,f6=-0,i1=42i,i2=-9223372036854775808i,i3=9223372036854775807i,"
      "u1=18446744073709551615u,u2=0u,s1=\"\",s2=\"a b,c=d\",b1=t,b2=T,b3=true,b4=True,b5=TRUE,b6=f,b7=F,"
      "b8=false,b9=False,b10=FALSE,f7=1e-400 -42");
  ASSERT_EQ(p.fields.size(), 24u);
  auto field = [&](std::string_view key) -> const FieldValue& {
    for (const auto& [k, v] : p.fields) {
      if (k == key) return v;
    }
    ADD_FAILURE() << "no field " << key;
    static FieldValue none;
    return none;
  };
  EXPECT_EQ(field("f1").type, FieldType::kFloat);
  EXPECT_EQ(field("f1").f, 1.0);
  EXPECT_EQ(field("f2").f, -1.5e-3);
  EXPECT_EQ(field("f3").f, 1e10);
  EXPECT_EQ(field("f4").f, 0.5);
  EXPECT_EQ(field("f5").f, 7.0);
  EXPECT_TRUE(std::signbit(field("f6").f));
  EXPECT_EQ(field("f7").f, 0.0);  // underflow is representable (as 0), overflow is not
  EXPECT_EQ(field("i1").type, FieldType::kInteger);
  EXPECT_EQ(field("i1").i, 42);
  EXPECT_EQ(field("i2").i, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(field("i3").i, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(field("u1").type, FieldType::kUnsigned);
  EXPECT_EQ(field("u1").u, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(field("u2").u, 0u);
  EXPECT_EQ(field("s1").type, FieldType::kString);
  EXPECT_EQ(field("s1").s, "");
  EXPECT_EQ(field("s2").s, "a b,c=d");
  for (const char* k : {"b1", "b2", "b3", "b4", "b5"}) {
    EXPECT_EQ(field(k).type, FieldType::kBool) << k;
    EXPECT_TRUE(field(k).b) << k;
  }
  for (const char* k : {"b6", "b7", "b8", "b9", "b10"}) {
    EXPECT_EQ(field(k).type, FieldType::kBool) << k;
    EXPECT_FALSE(field(k).b) << k;
  }
  EXPECT_EQ(p.timestamp_ns, -42);
  ExpectSamePoint(p, ParseOk(FormatPoint(p)));
}

TEST(LineProtocolTest, TimestampIsOptional) {
  Point p = ParseOk("m,t=1 f=1");
  EXPECT_FALSE(p.timestamp_ns.has_value());
  EXPECT_EQ(ParseOk("m f=1 9223372036854775807").timestamp_ns, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(ParseOk("m f=1  7  ").timestamp_ns, 7);  // extra spaces between sections are allowed
}

TEST(LineProtocolTest, ShortestFloatFormatRoundTrips) {
  for (double d : {944.0, 40.68066, -118.24368, 0.1, 1e21, 1e-7, 5e-324, std::numeric_limits<double>::max(), -0.0}) {
    Point p;
    p.measurement = "m";
    p.fields.emplace_back("f", Float(d));
    Point back = ParseOk(FormatPoint(p));
    ASSERT_EQ(back.fields.size(), 1u);
    EXPECT_TRUE(SameValue(back.fields[0].second, Float(d))) << FormatPoint(p);
  }
  Point p;
  p.measurement = "m";
  p.fields.emplace_back("f", Float(944));
  EXPECT_EQ(FormatPoint(p), "m f=944");
}

struct InvalidCase {
  const char* line;
  const char* expect_in_message;
};

TEST(LineProtocolTest, RejectsInvalidLines) {
  const std::vector<InvalidCase> cases = {
      {"", "empty line"},
      {" f=1", "missing fields"},  // leading spaces are skipped: "f=1" is the measurement
      {",t=1 f=1", "empty measurement"},
      {"m", "missing fields"},
      {"m ", "missing fields"},
      {"m,t=1", "missing fields"},
      {"m,t=1 ", "missing fields"},
      {"genData,generatorID=generator1 fuel=", "empty field value"},
      {"m f=1,g=", "empty field value"},
      {"m =1", "empty field key"},
      {"m f", "field key without '='"},
      {"m f=1,", "empty field key"},
      {"m,=v f=1", "empty tag key"},
      {"m,t= f=1", "empty tag value"},
      {"m,t f=1", "tag key without '='"},
      {"m,t=a=b f=1", "unescaped '='"},
      {"m f=NaN", "invalid field value"},
      {"m f=nan", "invalid field value"},
      {"m f=Inf", "invalid field value"},
      {"m f=-inf", "invalid field value"},
      {"m f=1e400", "out of range"},
      {"m f=-1e400", "out of range"},
      {"m f=1e", "invalid field value"},
      {"m f=1.2.3", "invalid field value"},
      {"m f=+1", "invalid field value"},
      {"m f=0x10", "invalid field value"},
      {"m f=abc", "invalid field value"},
      {"m f=1.5i", "invalid integer"},
      {"m f=i", "invalid integer"},
      {"m f=9223372036854775808i", "out of range"},
      {"m f=-9223372036854775809i", "out of range"},
      {"m f=-1u", "invalid unsigned"},
      {"m f=18446744073709551616u", "out of range"},
      {"m f=\"abc", "unterminated string"},
      {"m f=\"abc\\\"", "unterminated string"},
      {"m f=\"a\"b", "unexpected character"},
      {"m f=1 12x", "invalid timestamp"},
      {"m f=1 1.5", "invalid timestamp"},
      {"m f=1 9223372036854775808", "timestamp out of range"},
      {"m f=1 1 2", "trailing garbage"},
      {"m f=1 1 x", "trailing garbage"},
      {"m\\", "missing fields"},  // a final backslash is kept
      {"m f=1\nn f=2", "line break"},
      {"m f=1\rx", "line break"},
      {"m\x01 f=1", "control character in measurement"},
      {"m,t=a\tb f=1", "control character in tag value"},
      {"m,b=2,c=3,b=1 f=1i", "duplicate tag key"},
      {"m,t=\xff f=1", "invalid UTF-8"},
      {"m f=\"\xc3\x28\"", "invalid UTF-8"},
      {"m f=\"\xed\xa0\x80\"", "invalid UTF-8"},  // UTF-16 surrogate
      {"m f=\"\xc0\xaf\"", "invalid UTF-8"},      // overlong
      {"m f=\"\xe2\x82\"", "invalid UTF-8"},      // truncated
  };
  for (const auto& c : cases) {
    Result<Point> p = ParseLine(c.line);
    ASSERT_FALSE(p.ok()) << "accepted: " << c.line;
    EXPECT_NE(p.status().message().find(c.expect_in_message), std::string::npos)
        << c.line << " -> " << p.status().message();
    EXPECT_NE(p.status().message().find("at byte "), std::string::npos) << p.status().message();
  }
}

TEST(LineProtocolTest, ErrorNamesTheByteOffset) {
  Result<Point> p = ParseLine("genData,generatorID=generator1 fuel=");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("at byte 36"), std::string::npos) << p.status().message();
  p = ParseLine("m,t=\xff f=1");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("at byte 4"), std::string::npos) << p.status().message();
}

TEST(LineProtocolTest, AcceptsValidUtf8) {
  Point p = ParseOk("m\xc3\xa9,t=\xe2\x82\xac f=\"\xf0\x9f\x98\x80\"");
  EXPECT_EQ(p.measurement, "m\xc3\xa9");
  EXPECT_EQ(p.fields[0].second.s, "\xf0\x9f\x98\x80");
}

}  // namespace
}  // namespace edgeline
