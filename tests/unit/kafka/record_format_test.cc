// Kafka record values, keys and topic routing (kafka/record_format.h).
#include <cstdio>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "kafka/record_format.h"
#include "storage/queue.h"

namespace edgeline {
namespace {

using nlohmann::json;

json ValueJson(std::string_view line) {
  Result<RecordContent> record = FormatRecord(line, KafkaFormat::kJson);
  EXPECT_TRUE(record.ok()) << record.status().ToString();
  if (!record.ok()) return json();
  return json::parse(record->value);
}

TEST(KafkaRecordFormatTest, JsonShapeAndTypes) {
  Result<RecordContent> record = FormatRecord(
      "genData,region=US,generatorID=generator2 fuel=944.0,load=67i,count=3u,alarm=\"no action\",ok=true,lat=34.05223 "
      "1764000000603000000",
      KafkaFormat::kJson);
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  // The documented order: measurement, tags (sorted), fields (line order), time.
  EXPECT_EQ(record->value,
            R"({"measurement":"genData","tags":{"generatorID":"generator2","region":"US"},)"
            R"("fields":{"fuel":944.0,"load":67,"count":3,"alarm":"no action","ok":true,"lat":34.05223},)"
            R"("time":1764000000603000000})");
  json value = json::parse(record->value);
  EXPECT_TRUE(value["fields"]["fuel"].is_number_float());  // a float stays a float, even 944.0
  EXPECT_TRUE(value["fields"]["load"].is_number_integer());
  EXPECT_TRUE(value["fields"]["count"].is_number_unsigned());
  EXPECT_TRUE(value["fields"]["ok"].is_boolean());
  EXPECT_EQ(value["time"].get<int64_t>(), 1764000000603000000);
  EXPECT_EQ(record->key, "genData,generatorID=generator2,region=US");
}

TEST(KafkaRecordFormatTest, LargeValuesAreExact) {
  json value = ValueJson("m i=-9223372036854775808i,u=18446744073709551615u,f=1e-300 1");
  EXPECT_EQ(value["fields"]["i"].get<int64_t>(), INT64_MIN);
  EXPECT_EQ(value["fields"]["u"].get<uint64_t>(), UINT64_MAX);
  EXPECT_EQ(value["fields"]["f"].get<double>(), 1e-300);
}

TEST(KafkaRecordFormatTest, EscapedLineProtocolBecomesPlainJsonStrings) {
  json value = ValueJson(R"(my\ meas\,x,tag\ key=va\=l\,ue s="say \"hi\" \\ ok",t="tab	é" 5)");
  EXPECT_EQ(value["measurement"], "my meas,x");
  EXPECT_EQ(value["tags"]["tag key"], "va=l,ue");
  EXPECT_EQ(value["fields"]["s"], R"(say "hi" \ ok)");
  EXPECT_EQ(value["fields"]["t"], "tab\té");
  // The key keeps line-protocol escaping, so it is one unambiguous string per series.
  Result<RecordContent> record = FormatRecord(R"(my\ meas\,x,tag\ key=va\=l\,ue s="x" 5)", KafkaFormat::kJson);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->key, R"(my\ meas\,x,tag\ key=va\=l\,ue)");
}

TEST(KafkaRecordFormatTest, KeyIsTheSeriesWhateverTheTagOrderFieldsOrTime) {
  auto key = [](std::string_view line) {
    Result<RecordContent> r = FormatRecord(line, KafkaFormat::kLineProtocol);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->key : "";
  };
  const std::string a = key("genData,generatorID=g1,region=US fuel=1 1");
  EXPECT_EQ(a, "genData,generatorID=g1,region=US");
  EXPECT_EQ(key("genData,region=US,generatorID=g1 load=5i,fuel=2 99"), a);
  EXPECT_NE(key("genData,region=US,generatorID=g2 fuel=1 1"), a);
  EXPECT_NE(key("genData,generatorID=g1 fuel=1 1"), a);
}

TEST(KafkaRecordFormatTest, LineProtocolValueIsTheLine) {
  const std::string line = "genData,generatorID=g1 fuel=944.0,lat=34.05223 1764000000603000000";
  Result<RecordContent> record = FormatRecord(line, KafkaFormat::kLineProtocol);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->value, line);
  EXPECT_EQ(record->key, "genData,generatorID=g1");
}

TEST(KafkaRecordFormatTest, NoTimestampIsNull) {
  json value = ValueJson("m f=1");
  ASSERT_TRUE(value.contains("time"));
  EXPECT_TRUE(value["time"].is_null());
  EXPECT_TRUE(value["tags"].is_object());
  EXPECT_TRUE(value["tags"].empty());
}

TEST(KafkaRecordFormatTest, UnparsableLineIsInvalidArgument) {
  for (KafkaFormat format : {KafkaFormat::kJson, KafkaFormat::kLineProtocol}) {
    Result<RecordContent> record = FormatRecord("genData,generatorID=g1 fuel= 1", format);
    ASSERT_FALSE(record.ok());
    EXPECT_EQ(record.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(KafkaTopicRouterTest, FirstFullMatchWins) {
  Result<TopicRouter> router = TopicRouter::FromRoutes({
      {"EGgen1", "emergency_generator/generator1"},
      {"EGgens", "emergency_generator/[^/]+"},
      {"EGall", "emergency_generator/.*"},
  });
  ASSERT_TRUE(router.ok()) << router.status().ToString();
  for (int pass = 0; pass < 2; ++pass) {  // the second pass answers from the cache
    const std::string* t = router->Route("emergency_generator/generator1");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(*t, "EGgen1");
    t = router->Route("emergency_generator/generator2");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(*t, "EGgens");
    t = router->Route("emergency_generator/generator2/extra");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(*t, "EGall");
    // A match of part of the topic is not a match.
    EXPECT_EQ(router->Route("site/emergency_generator/generator1"), nullptr);
    EXPECT_EQ(router->Route("other"), nullptr);
    EXPECT_EQ(router->Route(""), nullptr);
  }
}

TEST(KafkaTopicRouterTest, NoRoutesMatchesNothing) {
  Result<TopicRouter> router = TopicRouter::FromRoutes({});
  ASSERT_TRUE(router.ok());
  EXPECT_EQ(router->Route("emergency_generator/generator1"), nullptr);
}

TEST(KafkaTopicRouterTest, BadRegexIsInvalidArgumentNamingIt) {
  Result<TopicRouter> router = TopicRouter::FromRoutes({{"t", "emergency_generator/(unclosed"}});
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(router.status().message().find("emergency_generator/(unclosed"), std::string::npos);
}

TEST(KafkaTopicRouterTest, StreamsRouteAsConfigured) {
  KafkaConfig kafka;
  kafka.topic_map = {{"EGraw", "emergency_generator/.*"}};
  DownsampleConfig downsample;
  Result<TopicRouter> down = TopicRouterForStream(kDownsampledStream, kafka, downsample.bucket);
  ASSERT_TRUE(down.ok());
  const std::string* t = down->Route("");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(*t, "EGkafka_downsampled");  // the seed's topic.prefix + bucket
  EXPECT_EQ(DownsampledTopic(kafka, "b"), "EGb");

  Result<TopicRouter> raw = TopicRouterForStream(kRawStream, kafka, downsample.bucket);
  ASSERT_TRUE(raw.ok());
  ASSERT_NE(raw->Route("emergency_generator/g1"), nullptr);
  EXPECT_EQ(*raw->Route("emergency_generator/g1"), "EGraw");
  EXPECT_EQ(raw->Route("x"), nullptr);

  EXPECT_FALSE(TopicRouterForStream(kAlarmStream, kafka, downsample.bucket).ok());
}

TEST(KafkaRecordIdTest, NamesStreamTimestampAndTheLinesHash) {
  EXPECT_EQ(kRecordIdHeader, "edgeline-id");
  // FNV-1a 64 of "m v=1 1764000000603000000", computed independently.
  const std::string line = "m v=1 1764000000603000000";
  uint64_t fnv = 0xcbf29ce484222325ULL;
  for (unsigned char c : line) fnv = (fnv ^ c) * 0x100000001b3ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv));
  EXPECT_EQ(RecordId("raw", line), std::string("raw/1764000000603000000/") + hex);
  EXPECT_EQ(RecordId("raw", "m v=1").substr(0, 6), "raw/-/");
  // The same line, the same id, whatever batch holds it; distinct points, distinct ids.
  EXPECT_EQ(RecordId("raw", line), RecordId("raw", std::string(line)));
  std::set<std::string> ids;
  for (const char* stream : {"raw", "downsampled"}) {
    for (const char* l : {"m v=1 1", "m v=2 1", "m v=1 2", "m,t=a v=1 1"}) ids.insert(RecordId(stream, l));
  }
  EXPECT_EQ(ids.size(), 8u);
}

}  // namespace
}  // namespace edgeline
