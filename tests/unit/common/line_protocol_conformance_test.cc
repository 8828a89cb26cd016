// Conformance table for common/line_protocol (issue 13): each line with the reference's accept or
// reject decision and, when accepted, the point it means. The reference is influxdata/line-protocol
// v2's decoder (lineprotocol/decoder.go) for the decision, and InfluxDB's server parser
// (influxdb models/points.go, 1.x and 2.x) for what a line means where the two differ (string
// field escapes) and where the server would refuse or misread what the decoder accepts (then we
// reject). Every accepted line must also survive FormatPoint -> ParseLine unchanged, and its
// measurement and tags must be forwarded byte for byte (InfluxDB reads them as it reads the input).
#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/line_protocol.h"

namespace edgeline {
namespace {

struct Case {
  std::string_view line;
  // Empty: rejected. Otherwise "measurement | tags | fields | timestamp", tags and fields in line
  // order as key=value joined by ',', field values typed F/I/U/B/S (S"..." holds the string),
  // bytes below 0x20 and 0x7F as \xNN, timestamp "-" when absent.
  std::string_view point;
};

std::string Visible(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string Describe(const Point& p) {
  std::string out = Visible(p.measurement) + " | ";
  for (size_t i = 0; i < p.tags.size(); ++i) {
    if (i) out += ",";
    out += Visible(p.tags[i].first) + "=" + Visible(p.tags[i].second);
  }
  out += " | ";
  for (size_t i = 0; i < p.fields.size(); ++i) {
    if (i) out += ",";
    const FieldValue& v = p.fields[i].second;
    out += Visible(p.fields[i].first) + "=";
    char buf[40];
    switch (v.type) {
      case FieldType::kFloat: out += "F" + std::string(buf, std::to_chars(buf, buf + sizeof(buf), v.f).ptr); break;
      case FieldType::kInteger: out += "I" + std::to_string(v.i); break;
      case FieldType::kUnsigned: out += "U" + std::to_string(v.u); break;
      case FieldType::kBool: out += v.b ? "Btrue" : "Bfalse"; break;
      case FieldType::kString: out += "S\"" + Visible(v.s) + "\""; break;
    }
  }
  out += " | " + (p.timestamp_ns ? std::to_string(*p.timestamp_ns) : std::string("-"));
  return out;
}

// clang-format off
const std::vector<Case> kCases = {
    // --- InfluxDB line protocol reference (docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/
    // and v1 write_protocols/line_protocol_reference): syntax elements, data types, comments.
    {"myMeasurement,tag1=value1,tag2=value2 fieldKey=\"fieldValue\" 1556813561098000000",
     R"(myMeasurement | tag1=value1,tag2=value2 | fieldKey=S"fieldValue" | 1556813561098000000)"},
    {"myMeasurement fieldKey=\"fieldValue\"", R"(myMeasurement |  | fieldKey=S"fieldValue" | -)"},
    {"home,room=Kitchen temp=21.0,hum=35.9,co=0i 1641024000", "home | room=Kitchen | temp=F21,hum=F35.9,co=I0 | 1641024000"},
    {"weather,location=us-midwest temperature=82 1465839830100400200", "weather | location=us-midwest | temperature=F82 | 1465839830100400200"},
    {"weather,location=us-midwest temperature=82i", "weather | location=us-midwest | temperature=I82 | -"},
    {"weather,location=us-midwest temperature=\"too warm\"", R"(weather | location=us-midwest | temperature=S"too warm" | -)"},
    {"weather,location=us-midwest too_hot=true", "weather | location=us-midwest | too_hot=Btrue | -"},
    {"weather,location=us-midwest too_hot=T", "weather | location=us-midwest | too_hot=Btrue | -"},
    {"weather,location=us-midwest too_hot=True", "weather | location=us-midwest | too_hot=Btrue | -"},
    {"weather,location=us-midwest too_hot=TRUE", "weather | location=us-midwest | too_hot=Btrue | -"},
    {"weather,location=us-midwest too_hot=f", "weather | location=us-midwest | too_hot=Bfalse | -"},
    {"weather,location=us-midwest too_hot=FALSE", "weather | location=us-midwest | too_hot=Bfalse | -"},
    {"weather,location=us-midwest too_hot=tRUE", ""},
    {"weather,location=us-midwest too_hot=yes", ""},
    {"myMeasurement fieldKey=1.0", "myMeasurement |  | fieldKey=F1 | -"},
    {"myMeasurement fieldKey=1", "myMeasurement |  | fieldKey=F1 | -"},
    {"myMeasurement fieldKey=-1.234456e+78", "myMeasurement |  | fieldKey=F-1.234456e+78 | -"},
    {"myMeasurement fieldKey=1i", "myMeasurement |  | fieldKey=I1 | -"},
    {"myMeasurement fieldKey=12485903i", "myMeasurement |  | fieldKey=I12485903 | -"},
    {"myMeasurement fieldKey=-12485903i", "myMeasurement |  | fieldKey=I-12485903 | -"},
    {"myMeasurement fieldKey=1u", "myMeasurement |  | fieldKey=U1 | -"},
    {"myMeasurement fieldKey=12485903u", "myMeasurement |  | fieldKey=U12485903 | -"},
    {"myMeasurement fieldKey=-1u", ""},
    {"myMeasurement fieldKey=\"this is a string\"", R"(myMeasurement |  | fieldKey=S"this is a string" | -)"},
    {"myMeasurement fieldKey=this", ""},
    {"myMeasurement", ""},
    {"myMeasurement,tag1=value1", ""},
    {",tag1=value1 fieldKey=1", ""},
    {"my\\ Measurement fieldKey=\"string value\"", R"(my Measurement |  | fieldKey=S"string value" | -)"},
    {"myMeasurement fieldKey=\"string\\\" value, with\\\" escaped quotes\"",
     R"(myMeasurement |  | fieldKey=S"string" value, with" escaped quotes" | -)"},
    {"myMeasurement,tag\\ Key1=tag\\ Value1,tag\\ Key2=tag\\ Value2 fieldKey=100",
     "myMeasurement | tag Key1=tag Value1,tag Key2=tag Value2 | fieldKey=F100 | -"},
    {"myMeasurement field\\ Key=\"string\\\\ value\"", R"(myMeasurement |  | field Key=S"string\ value" | -)"},
    {"myMeasurement,tagKey=🍭 fieldKey=\"Launch 🚀\" 1556813561098000000",
     R"(myMeasurement | tagKey=🍭 | fieldKey=S"Launch 🚀" | 1556813561098000000)"},
    {"cpu,host=server\\ 01,region=uswest value=1,msg=\"all systems nominal\"",
     R"(cpu | host=server 01,region=uswest | value=F1,msg=S"all systems nominal" | -)"},
    {"cpu,host=server\\ 01,region=us\\,west value_int=1i", "cpu | host=server 01,region=us,west | value_int=I1 | -"},
    {"cpu,ho\\=st=server1 value=1", "cpu | ho=st=server1 | value=F1 | -"},
    {"cpu,host=a\\=b value=1", "cpu | host=a=b | value=F1 | -"},
    {"cpu\\,01 value=1", "cpu,01 |  | value=F1 | -"},
    {"cpu=01 value=1", "cpu=01 |  | value=F1 | -"},                       // '=' needs no escape in a measurement
    {"\"cpu\" \"value\"=1", R"("cpu" |  | "value"=F1 | -)"},               // quotes are plain bytes in names
    {"cpu,\"host\"=\"a\" value=1", R"(cpu | "host"="a" | value=F1 | -)"},
    {"measurement\\ with\\ quo⚡es\\ and\\ emoji,tag\\ key\\ with\\ sp🚀ces=tag\\,value\\,with\"commas\" field_k\\ey=\"string field value, only \\\" need be esc🍭ped\"",
     "measurement with quo⚡es and emoji | tag key with sp🚀ces=tag,value,with\"commas\" | field_k\\ey=S\"string field value, only \" need be esc🍭ped\" | -"},
    {"cpu value=1 -1465839830100400200", "cpu |  | value=F1 | -1465839830100400200"},
    {"cpu value=1 1.5", ""},
    {"cpu value=1 2021-01-01T00:00:00Z", ""},
    {"cpu value=1 1 2", ""},
    {"cpu value=1  7  ", "cpu |  | value=F1 | 7"},
    {"   cpu value=1", "cpu |  | value=F1 | -"},                             // leading spaces are skipped
    {"cpu   value=1", "cpu |  | value=F1 | -"},
    {"# comment", ""},                                                          // not a point: SplitBodyLines skips it

    // --- influxdata/line-protocol v2, lineprotocol/decoder_test.go (decodeTests) and the grammar
    // line-protocol.ebnf: errors and their positions, white space, non-printable bytes.
    {"TestBucket FieldOné=∑Happy,FieldTwo=sad", ""},
    {"TestBuckét,tag1=x FieldOne=Happy", ""},
    {"TestBuckét TagOné=\"Happy\" FieldOne=123.45", ""},
    {"b f=1", "b |  | f=F1 | -"},
    {"b f=1 9223372036854775808", ""},
    {"b f=1 -9223372036854775808", "b |  | f=F1 | -9223372036854775808"},
    {"b f=1 -9223372036854775809", ""},
    {"9 f=-7 ", "9 |  | f=F-7 | -"},
    {"mmmé é=1e9999999999999", ""},
    {"m f=1,\x01=1,\x01=2", ""},
    {"m f=\"hello\ngoodbye\nx\",gé=invalid", ""},
    {"m f=\"a\nb\",g=\"c\nd", ""},
    {"m foo\x01=bar x=1", ""},
    {"m,foo\x03=bar x=1", ""},
    {"m,foo=bar\x02 x=1", ""},
    {"m foo\x01=bar", ""},
    {"m s=\"\\t\\r\\n\\v\"", R"(m |  | s=S"\t\r\n\v" | -)"},  // server parser: only \" and \\ are escapes
    {"m,s=\\t\\r\\n\\v x=1", R"(m | s=\t\r\n\v | x=F1 | -)"},
    {"m", ""},
    {"m,=bar", ""},
    {"m,x =y", ""},
    {"m,x", ""},
    {"m, x=1", ""},
    {"m,t=a, x=1", ""},
    {"m,t=a,", ""},
    {"m x=1,", ""},
    {"m x=1,,y=2", ""},
    {"m x=,y=2", ""},
    {"m x= 1", ""},
    {"m x=", ""},
    {"m x=1y", ""},
    {"m x=\"a\"b", ""},
    {"m x=\"a\"\"b\"", ""},
    {"m x=\"a\",y=2 1", R"(m |  | x=S"a",y=F2 | 1)"},
    {"m x=1 1x", ""},
    {"m x=1 -", ""},
    {"m x=1 --1", ""},
    {"m x=1 +1", ""},
    {"m x=1 007", "m |  | x=F1 | 7"},
    {"m x=1 -0", "m |  | x=F1 | 0"},
    {"m x=1\r", "m |  | x=F1 | -"},                       // CR at the end of the input ends the line
    {"m x=1 5\r", "m |  | x=F1 | 5"},
    {"m x=1\rx", ""},
    {"m\r x=1", ""},
    {"\tm x=1", ""},                                       // only spaces may lead a line
    {"m\tx=1", ""},
    {"m x=1\t", ""},
    {"m x\t=1", ""},
    {"m\x7f x=1", ""},
    {"m,t=\x7f x=1", ""},
    {"m x=\"tab\there\"", "m |  | x=S\"tab\\x09here\" | -"},  // any byte but '"' inside a string
    {"m x=\"nul\x01\x7f\"", "m |  | x=S\"nul\\x01\\x7f\" | -"},
    {"#m x=1", ""},
    {"\\#m x=1", R"(\#m |  | x=F1 | -)"},
    {"m#,t#=#v x#=1", "m# | t#=#v | x#=F1 | -"},
    {"m x=t,y=F,z=false", "m |  | x=Btrue,y=Bfalse,z=Bfalse | -"},
    {"m x=tru", ""},
    {"m x=Trueish", ""},
    {"m x=1.", "m |  | x=F1 | -"},
    {"m x=.5", "m |  | x=F0.5 | -"},
    {"m x=-.5", "m |  | x=F-0.5 | -"},
    {"m x=1.e5", "m |  | x=F1e+05 | -"},
    {"m x=1E-2", "m |  | x=F0.01 | -"},
    {"m x=1e+2", "m |  | x=F100 | -"},
    {"m x=007", "m |  | x=F7 | -"},
    {"m x=007i", "m |  | x=I7 | -"},
    {"m x=-0i", "m |  | x=I0 | -"},
    {"m x=0u", "m |  | x=U0 | -"},
    {"m x=.", ""},
    {"m x=-", ""},
    {"m x=-i", ""},
    {"m x=1e", ""},
    {"m x=1e+", ""},
    {"m x=1.2.3", ""},
    {"m x=+1", ""},
    {"m x=1_000", ""},
    {"m x=1_000i", ""},
    {"m x=1ii", ""},
    {"m x=1iu", ""},
    {"m x=1.5i", ""},
    {"m x=1e3i", ""},
    {"m x=1.5u", ""},
    {"m x=-0u", ""},
    {"m x=NaN", ""},
    {"m x=-nan", ""},
    {"m x=Inf", ""},
    {"m x=-Inf", ""},
    {"m x=1e309", ""},
    {"m x=-1e309", ""},
    {"m x=1e-400", "m |  | x=F0 | -"},
    {"m x=9223372036854775807i", "m |  | x=I9223372036854775807 | -"},
    {"m x=9223372036854775808i", ""},
    {"m x=-9223372036854775808i", "m |  | x=I-9223372036854775808 | -"},
    {"m x=-9223372036854775809i", ""},
    {"m x=18446744073709551615u", "m |  | x=U18446744073709551615 | -"},
    {"m x=18446744073709551616u", ""},
    {"m x=\"unterminated", ""},
    {"m x=\"escaped quote at end\\\"", ""},
    {"m x=\"\"", R"(m |  | x=S"" | -)"},
    {"m x=\"a\\\\\"", R"(m |  | x=S"a\" | -)"},
    {"m x=\"a\\b\"", R"(m |  | x=S"a\b" | -)"},
    {"m x=\"=,\\\" \"", R"(m |  | x=S"=," " | -)"},
    {"m x=1,x=2", "m |  | x=F1,x=F2 | -"},                 // duplicate field keys are the server's business
    {"m\xff x=1", ""},
    {"m,t=\xc3\x28 x=1", ""},
    {"m x=\"\xed\xa0\x80\"", ""},
    {"m x=\"\xf4\x90\x80\x80\"", ""},
    {"m\xc3\xa9,t=\xe2\x82\xac x=\"\xf0\x9f\x98\x80\"", "m\xc3\xa9 | t=\xe2\x82\xac | x=S\"\xf0\x9f\x98\x80\" | -"},

    // --- InfluxDB models/points_test.go (TestParsePointWithStringWithEquals, ...EscapedTags,
    // ...UnescapedTags, ...WithDuplicateTags, TestParsePointsQuotesInTags, ...Backslash*): escapes
    // in every position and what the server reads.
    {"cpu,host=serverA,region=us-east value=1.0,str=\"foo=bar\" 1000000000",
     R"(cpu | host=serverA,region=us-east | value=F1,str=S"foo=bar" | 1000000000)"},
    {"cpu,host=serverA,region=us-east str=\"foo,bar\",value=1.0 1000000000",
     R"(cpu | host=serverA,region=us-east | str=S"foo,bar",value=F1 | 1000000000)"},
    {"cpu,host=serverA,region=us-east str=\"foo bar\" 1000000000", R"(cpu | host=serverA,region=us-east | str=S"foo bar" | 1000000000)"},
    {"cpu,region\\ a=us-east value=1.0", "cpu | region a=us-east | value=F1 | -"},
    {"cpu,region\\,a=us-east value=1.0", "cpu | region,a=us-east | value=F1 | -"},
    {"cpu,region\\=a=us-east value=1.0", "cpu | region=a=us-east | value=F1 | -"},
    {"cpu,region=us\\ east value=1.0", "cpu | region=us east | value=F1 | -"},
    {"cpu\\ load value=1.0", "cpu load |  | value=F1 | -"},
    {"cpu\\,load value=1.0", "cpu,load |  | value=F1 | -"},
    {"cpu\\=load value=1.0", R"(cpu\=load |  | value=F1 | -)"},  // \= is no escape in a measurement
    {"cpu,host=serverA,host=serverB value=1", ""},
    {"cpu,b=2,c=3,b=1 value=1i", ""},
    {"cpu,b=2,b=2 value=1i", ""},
    {"cpu,b=1,a=2,c=3,a=4 value=1i", ""},
    {"cpu,b\\ x=1,b\\ x=2 value=1i", ""},
    {"cpu,b=1,B=2 value=1i", "cpu | b=1,B=2 | value=I1 | -"},  // keys compare as bytes
    {"cpu,host=\"serverA\" value=1", R"(cpu | host="serverA" | value=F1 | -)"},
    {"cpu,host=\"server A\" value=1", ""},                 // quotes do not protect a space in a tag
    {"cpu value=1,str=\"a\\\\\\\"b\"", R"(cpu |  | value=F1,str=S"a\"b" | -)"},
    {"cpu\\\\ value=1", ""},                               // backslash escapes the space: no fields
    {"cpu\\\\\\ x value=1", R"(cpu\\ x |  | value=F1 | -)"},
    {"c\\pu value=1", R"(c\pu |  | value=F1 | -)"},
    {"cpu,t=\\a value=1", R"(cpu | t=\a | value=F1 | -)"},
    {"cpu va\\lue=1", R"(cpu |  | va\lue=F1 | -)"},
    {"cpu va\\ lue=1", "cpu |  | va lue=F1 | -"},
    {"cpu va\\,lue=1", "cpu |  | va,lue=F1 | -"},
    {"cpu va\\=lue=1", "cpu |  | va=lue=F1 | -"},
    {"cpu va\\\\\\ lue=1", R"(cpu |  | va\\ lue=F1 | -)"},
    {"cpu va\\\\ lue=1", ""},                             // server: "va\\" ends the fields, then fails
    {"cpu va\\\\,lue=1", ""},
    {"cpu va\\\\=lue=1", ""},
    {"cpu va\\\\\\\\ lue=1", ""},
    {"cpu a\\\\b=1", R"(cpu |  | a\\b=F1 | -)"},
    {"cpu\\ value=1", ""},
    {"cpu,t=a\\ value=1", ""},

    // --- Issue 13 (edgeline): the differences found, and the reference's reading of them.
    {"cpu,host=two\\\\ words value=42", R"(cpu | host=two\ words | value=F42 | -)"},
    {"cpu,reg\\\\=ion=east value=1.0", R"(cpu | reg\=ion=east | value=F1 | -)"},
    {"cpu,reg\\\\,ion=east value=1.0", R"(cpu | reg\,ion=east | value=F1 | -)"},
    {"cpu,host=a\\\\ value=1", ""},                       // the 204 that influxd then refused
    {"cpu,host=a\\\\ b=1 value=1", ""},
    {"cpu,host=C:\\dir\\\\ f=1", ""},
    {"cpu,host=C:\\dir\\\\\\ x f=1", R"(cpu | host=C:\dir\\ x | f=F1 | -)"},
    {"cpu,host=a\\\\,b=c value=1", ""},  // the escaped comma does not end the value
    {"cpu,host=a\\\\,b value=1", R"(cpu | host=a\,b | value=F1 | -)"},
    {"cpu\\\\\\,x,a=b value=1", R"(cpu\\,x | a=b | value=F1 | -)"},
    {"cpu value=\"4\n2\"", "cpu |  | value=S\"4\\x0a2\" | -"},
    {"cpu value=\"4\r\n2\" 5", "cpu |  | value=S\"4\\x0d\\x0a2\" | 5"},
    {"cpu value=\"\n\"", "cpu |  | value=S\"\\x0a\" | -"},
    {"cpu value=1\n", ""},                                // a line break outside a string is a second line
    {"cpu,host=a\nb value=1", ""},
    {"cpu\n value=1", ""},
    {"c\x01pu value=1", ""},
    {"cpu,h\x1bost=a value=1", ""},
    {"cpu,host=a value\x7f=1", ""},
    {"cpu,host=a\x00 value=1", ""},
};
// clang-format on

TEST(LineProtocolConformanceTest, MatchesTheReference) {
  ASSERT_GE(kCases.size(), 150u);
  int failures = 0;
  for (const Case& c : kCases) {
    Result<Point> p = ParseLine(c.line);
    const std::string what = "line \"" + Visible(c.line) + "\"";
    if (c.point.empty()) {
      if (p.ok()) ++failures;
      EXPECT_FALSE(p.ok()) << what << " accepted as " << Describe(*p);
      continue;
    }
    if (!p.ok()) {
      ++failures;
      ADD_FAILURE() << what << " rejected: " << p.status().message();
      continue;
    }
    if (Describe(*p) != c.point) ++failures;
    EXPECT_EQ(Describe(*p), c.point) << what;
  }
  EXPECT_EQ(failures, 0) << "of " << kCases.size() << " cases";
}

bool SameValue(const FieldValue& a, const FieldValue& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case FieldType::kFloat: return std::memcmp(&a.f, &b.f, sizeof a.f) == 0;
    case FieldType::kInteger: return a.i == b.i;
    case FieldType::kUnsigned: return a.u == b.u;
    case FieldType::kString: return a.s == b.s;
    case FieldType::kBool: return a.b == b.b;
  }
  return false;
}

// The text of the measurement and tags section of an accepted line, after leading spaces.
std::string_view KeySection(std::string_view line) {
  size_t i = line.find_first_not_of(' ');
  size_t j = i;
  while (j < line.size() && !(line[j] == ' ' && line[j - 1] != '\\')) ++j;
  return line.substr(i, j - i);
}

// "Forward exactly what was accepted, or a line that parses to the same point": FormatPoint's
// output parses back to the same point, is a fixed point, and keeps the measurement and every tag
// byte for byte (InfluxDB reads names from the escaped text, so equal text means equal names).
TEST(LineProtocolConformanceTest, AcceptedLinesRoundTrip) {
  for (const Case& c : kCases) {
    if (c.point.empty()) continue;
    Result<Point> p = ParseLine(c.line);
    ASSERT_TRUE(p.ok()) << Visible(c.line);
    const std::string text = FormatPoint(*p);
    Result<Point> again = ParseLine(text);
    ASSERT_TRUE(again.ok()) << Visible(c.line) << " -> " << Visible(text) << ": " << again.status().message();
    Point sorted = *p;
    std::stable_sort(sorted.tags.begin(), sorted.tags.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    EXPECT_EQ(again->measurement, sorted.measurement);
    EXPECT_EQ(again->tags, sorted.tags) << Visible(text);
    ASSERT_EQ(again->fields.size(), sorted.fields.size());
    for (size_t i = 0; i < sorted.fields.size(); ++i) {
      EXPECT_EQ(again->fields[i].first, sorted.fields[i].first);
      EXPECT_TRUE(SameValue(again->fields[i].second, sorted.fields[i].second)) << Visible(text);
    }
    EXPECT_EQ(again->timestamp_ns, sorted.timestamp_ns);
    EXPECT_EQ(FormatPoint(*again), text);
    // Same measurement and tag text as the input, modulo tag order.
    std::string_view in_key = KeySection(c.line);
    std::string_view out_key = KeySection(text);
    std::string in_sorted(in_key), out_sorted(out_key);
    std::sort(in_sorted.begin(), in_sorted.end());
    std::sort(out_sorted.begin(), out_sorted.end());
    EXPECT_EQ(in_sorted, out_sorted) << Visible(c.line) << " -> " << Visible(text);
    EXPECT_EQ(SeriesKey(*p), out_key);
    // Every name the parser accepts is representable as its kind of element.
    EXPECT_TRUE(UnrepresentableReason(LpElement::kMeasurement, p->measurement).empty()) << Visible(c.line);
    for (const auto& [k, v] : p->tags) {
      EXPECT_TRUE(UnrepresentableReason(LpElement::kTag, k).empty()) << Visible(c.line);
      EXPECT_TRUE(UnrepresentableReason(LpElement::kTag, v).empty()) << Visible(c.line);
    }
    for (const auto& [k, v] : p->fields) {
      EXPECT_TRUE(UnrepresentableReason(LpElement::kFieldKey, k).empty()) << Visible(c.line);
    }
  }
}

TEST(LineProtocolConformanceTest, RejectionsAreShortAsciiWithOffset) {
  for (const Case& c : kCases) {
    if (!c.point.empty()) continue;
    Result<Point> p = ParseLine(c.line);
    if (p.ok()) continue;  // reported by MatchesTheReference
    const std::string& m = p.status().message();
    EXPECT_NE(m.find(" at byte "), std::string::npos) << m;
    EXPECT_LT(m.size(), 120u) << m;
    for (char ch : m) EXPECT_TRUE(ch >= 0x20 && ch < 0x7F) << Visible(m);
  }
}

// --- SplitBodyLines: bodies as InfluxDB splits them (influxdb models/points.go scanLine and
// ParsePointsWithPrecision; line-protocol v2 decoder_test.go "carriage-returns", "comments").
struct BodyCase {
  std::string_view body;
  std::vector<std::string_view> lines;  // what SplitBodyLines returns
  bool valid;                           // every returned line parses
};

TEST(LineProtocolConformanceTest, SplitsBodiesAsTheReference) {
  const std::vector<BodyCase> cases = {
      {"", {}, true},
      {"\n\n", {}, true},
      {"   \n", {}, true},
      {"m x=1", {"m x=1"}, true},
      {"m x=1\n", {"m x=1"}, true},
      {"m x=1\r\n", {"m x=1"}, true},
      {"# foo\r\nm x=1\r\n\r\n", {"m x=1"}, true},
      {"a x=1\nb x=2\n\nc x=3", {"a x=1", "b x=2", "c x=3"}, true},
      {"# comment\n  # indented comment\nm x=1", {"m x=1"}, true},
      {"# comment with \xff bytes\nm x=1", {"m x=1"}, true},
      {"# foo\rxxx\nm x=1\r\n\r\n", {"# foo\rxxx", "m x=1"}, false},
      {"#\ttab\nm x=1", {"#\ttab", "m x=1"}, false},
      {"cpu value=\"4\n2\"", {"cpu value=\"4\n2\""}, true},
      {"cpu value=\"4\n2\"\ncpu value=1", {"cpu value=\"4\n2\"", "cpu value=1"}, true},
      {"cpu,t=a x=1,value=\"a\\\"\nb\" 5\nn y=2", {"cpu,t=a x=1,value=\"a\\\"\nb\" 5", "n y=2"}, true},
      {"cpu,t=\"a x=1\nn y=2", {"cpu,t=\"a x=1", "n y=2"}, true},  // a quote in a tag opens no string
      {"cpu \"k=1\nn y=2", {"cpu \"k=1", "n y=2"}, true},           // nor one in a field key
      {"m x=1 5\"\nn y=2", {"m x=1 5\"", "n y=2"}, false},
      {"m x=\"unterminated\nn y=2", {"m x=\"unterminated\nn y=2"}, false},
      {"m x=1\rn y=2", {"m x=1\rn y=2"}, false},
      {"m x=1\r\r\n", {"m x=1\r"}, true},                            // one CR at the very end is allowed
      {"m\\\nx=1", {"m\\", "x=1"}, false},
  };
  for (const BodyCase& c : cases) {
    std::vector<LpLine> got = SplitBodyLines(c.body);
    std::vector<std::string_view> texts;
    for (const LpLine& l : got) texts.push_back(l.text);
    EXPECT_EQ(texts, c.lines) << Visible(c.body);
    bool valid = true;
    for (const LpLine& l : got) valid = valid && ParseLine(l.text).ok();
    EXPECT_EQ(valid, c.valid) << Visible(c.body);
  }
}

TEST(LineProtocolConformanceTest, SplitLinesReportsOffsetsAndLineNumbers) {
  const std::string_view body = "# c\na x=\"1\n2\"\r\n\nb x=2";
  std::vector<LpLine> lines = SplitBodyLines(body);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].offset, 4u);
  EXPECT_EQ(lines[0].number, 2u);
  EXPECT_EQ(lines[1].text, "b x=2");
  EXPECT_EQ(lines[1].offset, body.size() - 5);
  EXPECT_EQ(lines[1].number, 5u);
}

// Every table line with a line break in a string is one line of a body, and a body of all
// accepted table lines splits back into exactly those lines.
TEST(LineProtocolConformanceTest, SplitLinesAgreesWithTheTable) {
  std::string body;
  std::vector<std::string_view> accepted;
  for (const Case& c : kCases) {
    if (c.point.empty()) continue;
    accepted.push_back(c.line);
    body.append(c.line);
    body.push_back('\n');
  }
  std::vector<LpLine> lines = SplitBodyLines(body);
  ASSERT_EQ(lines.size(), accepted.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view want = accepted[i];
    if (!want.empty() && want.back() == '\r') want.remove_suffix(1);
    EXPECT_EQ(lines[i].text, want);
  }
}

}  // namespace
}  // namespace edgeline
