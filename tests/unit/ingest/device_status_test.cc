// DeviceStatusMapper: status and Last Will payloads become one status point, or a dead letter
// with the reason; the topic's device level becomes the tag the downsampler groups by.
#include "ingest/device_status.h"

#include "gtest/gtest.h"

namespace edgeline {
namespace {

constexpr int64_t kNow = 1764000000123456789;

Config Parsed(std::map<std::string, std::string> env) {
  env.emplace("EDGELINE_INFLUX_API", "v1");
  ConfigParseResult r = ParseConfig(env);
  EXPECT_TRUE(r.ok()) << (r.problems.empty() ? "" : r.problems[0].message);
  return r.config;
}

DeviceStatusMapper Seed() {
  Config c = Parsed({{"EDGELINE_DOWNSAMPLE_PRESET", "seed"},
                     {"EDGELINE_DOWNSAMPLE_GROUP_BY", "generatorID,unit"},
                     {"EDGELINE_DEVICE_STATUS_TOPICS", "emergency_generator/+/status,site/{site}/{unit}/lwt"}});
  return DeviceStatusMapper(c.mapping, DeviceIdTag(c));
}

std::string Line(const IngestMessage& m) {
  EXPECT_TRUE(m.mapped.errors.empty()) << m.mapped.errors[0];
  return m.mapped.lines.size() == 1 ? m.mapped.lines[0] : "<" + std::to_string(m.mapped.lines.size()) + " lines>";
}

TEST(DeviceStatusMapper, SubscribesToTheFiltersWithTagLevelsAsPlus) {
  DeviceStatusMapper m = Seed();
  EXPECT_TRUE(m.enabled());
  EXPECT_EQ(m.SubscriptionFilters(), (std::vector<std::string>{"emergency_generator/+/status", "site/+/+/lwt"}));
  EXPECT_TRUE(m.Matches("emergency_generator/generator1/status"));
  EXPECT_TRUE(m.Matches("site/a/u7/lwt"));
  EXPECT_FALSE(m.Matches("emergency_generator/generator1"));
  EXPECT_FALSE(m.Matches("emergency_generator/generator1/status/x"));
  EXPECT_FALSE(m.Matches("emergency_generator//status"));
  EXPECT_FALSE(DeviceStatusMapper(Parsed({}).mapping, "generatorID").enabled());
}

TEST(DeviceStatusMapper, TextPayloadsAreTheStatusLowerCased) {
  DeviceStatusMapper m = Seed();
  EXPECT_EQ(Line(m.Prepare("emergency_generator/generator1/status", "offline", kNow)),
            "deviceStatus,generatorID=generator1 status=\"offline\" " + std::to_string(kNow));
  EXPECT_EQ(Line(m.Prepare("emergency_generator/g 2/status", " Online\n", kNow)),
            "deviceStatus,generatorID=g\\ 2 status=\"online\" " + std::to_string(kNow));
  EXPECT_EQ(Line(m.Prepare("site/north/u7/lwt", "offline", kNow)),
            "deviceStatus,site=north,unit=u7 status=\"offline\" " + std::to_string(kNow));
}

TEST(DeviceStatusMapper, JsonPayloadsKeepTheirScalarMembers) {
  DeviceStatusMapper m = Seed();
  EXPECT_EQ(Line(m.Prepare("emergency_generator/g1/status",
                           R"({"state":"OFFLINE","reason":"lwt","uptime":12,"ok":false,"nested":{"a":1}})", kNow)),
            "deviceStatus,generatorID=g1 status=\"offline\",ok=false,reason=\"lwt\",uptime=12 " +
                std::to_string(kNow));
  // A JSON tag key the topic did not give becomes a tag; the topic's value wins otherwise.
  EXPECT_EQ(Line(m.Prepare("emergency_generator/g1/status", R"({"status":"online","generatorID":"other"})", kNow)),
            "deviceStatus,generatorID=g1 status=\"online\" " + std::to_string(kNow));
}

TEST(DeviceStatusMapper, WhatCannotBeAStatusIsADeadLetterWithTheReason) {
  DeviceStatusMapper m = Seed();
  struct Case {
    const char* payload;
    const char* reason;
  };
  for (const Case& c : {Case{R"({"status":1})", "no string member status or state"},
                        Case{R"({"status":"on)", "not a JSON object"}, Case{"[1,2]", "offline"},
                        Case{"\xff\xfe", "UTF-8"}}) {
    IngestMessage out = m.Prepare("emergency_generator/g1/status", c.payload, kNow);
    if (std::string(c.payload) == "[1,2]") {  // not an object: a text status, kept as such
      EXPECT_EQ(out.mapped.lines.size(), 1u);
      continue;
    }
    ASSERT_EQ(out.mapped.errors.size(), 1u) << c.payload;
    EXPECT_NE(out.mapped.errors[0].find(c.reason), std::string::npos) << out.mapped.errors[0];
    EXPECT_TRUE(out.mapped.lines.empty());
    EXPECT_EQ(out.payload, c.payload);
  }
  IngestMessage cleared = m.Prepare("emergency_generator/g1/status", "", kNow);
  EXPECT_TRUE(cleared.mapped.lines.empty());
  EXPECT_TRUE(cleared.mapped.errors.empty());
  IngestMessage big = m.Prepare("emergency_generator/g1/status", std::string(300, 'x'), kNow);
  ASSERT_EQ(big.mapped.errors.size(), 1u);
}

TEST(DeviceStatusMapper, TheIdTagIsTheFirstGroupByKey) {
  EXPECT_EQ(DeviceIdTag(Parsed({{"EDGELINE_DOWNSAMPLE_GROUP_BY", "unit,site"}})), "unit");
  EXPECT_EQ(DeviceIdTag(Parsed({})), "generatorID");  // group-by's default, downsampling off
  EXPECT_EQ(DeviceIdTag(Parsed({{"EDGELINE_DOWNSAMPLE_GROUP_BY", ""}, {"EDGELINE_JSON_TAGS", ""}})), "device");
}

TEST(DeviceStatusMapper, ARetainedStatusSaysSo) {
  DeviceStatusMapper m = Seed();
  EXPECT_EQ(Line(m.Prepare("emergency_generator/g1/status", "offline", kNow, /*retained=*/true)),
            "deviceStatus,generatorID=g1 status=\"offline\",retained=true " + std::to_string(kNow));
}

TEST(DeviceStatusConfig, WithStaleAlarmsAStatusFilterMustNameAGroupByTag) {
  ConfigParseResult r = ParseConfig({{"EDGELINE_INFLUX_API", "v1"},
                                     {"EDGELINE_DOWNSAMPLE_PRESET", "seed"},
                                     {"EDGELINE_DEVICE_STATUS_TOPICS", "site/{unit}/status"}});
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].variable, "EDGELINE_DEVICE_STATUS_TOPICS");
  EXPECT_TRUE(ParseConfig({{"EDGELINE_INFLUX_API", "v1"},
                           {"EDGELINE_DOWNSAMPLE_PRESET", "seed"},
                           {"EDGELINE_DOWNSAMPLE_STALE_AFTER", "0"},
                           {"EDGELINE_DEVICE_STATUS_TOPICS", "site/{unit}/status"}})
                  .ok());
}

TEST(DeviceStatusConfig, AStatusFilterThatCatchesTheAlarmTopicIsRefused) {
  ConfigParseResult r = ParseConfig({{"EDGELINE_INFLUX_API", "v1"},
                                     {"EDGELINE_DOWNSAMPLE_PRESET", "seed"},
                                     {"EDGELINE_ALARM_TOPIC", "alarms"},
                                     {"EDGELINE_DEVICE_STATUS_TOPICS", "alarms/{generatorID}/+"}});
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].variable, "EDGELINE_ALARM_TOPIC");
}

}  // namespace
}  // namespace edgeline
