// Unit tests for `edgeline simulate`: the generator model, payload/topic format against the
// seed's fixture, the publish schedule and argument parsing. No broker, no clock, no sleeps.
#include "tools/simulator.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace edgeline {
namespace {

constexpr int64_t kSec = 1'000'000'000;

struct FixtureMessage {
  std::string topic;
  std::string payload;
};

std::vector<FixtureMessage> ReadFixture() {
  std::ifstream in(std::string(EDGELINE_FIXTURES_DIR) + "/generators.jsonl");
  std::vector<FixtureMessage> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    out.push_back({j["topic"].get<std::string>(), j["payload"].get<std::string>()});
  }
  return out;
}

// Key order and JSON type of every key, e.g. "generatorID:string,lat:float,...".
std::string Shape(const std::string& payload) {
  auto j = nlohmann::ordered_json::parse(payload);
  std::string shape;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const char* type = it->is_string()           ? "string"
                       : it->is_number_float()   ? "float"
                       : it->is_number_integer() ? "integer"
                                                 : "other";
    shape += it.key() + ":" + type + ",";
  }
  return shape;
}

TEST(SimulatorModelTest, PayloadIsByteForByteTheSeedFormat) {
  auto fixture = ReadFixture();
  ASSERT_FALSE(fixture.empty());
  GeneratorReading r{"generator2", 34.05223, -118.24368, 253, 1742, 67, 944};
  EXPECT_EQ(GeneratorPayload(r), fixture[0].payload);
  EXPECT_EQ(GeneratorTopic("emergency_generator", r.generator_id), fixture[0].topic);
}

TEST(SimulatorModelTest, PayloadKeysAndTypesMatchFixture) {
  auto fixture = ReadFixture();
  ASSERT_FALSE(fixture.empty());
  const std::string expected = Shape(fixture[0].payload);
  EXPECT_EQ(expected,
            "generatorID:string,lat:float,lon:float,temperature:integer,power:integer,"
            "load:integer,fuel:integer,");
  for (const auto& m : fixture) EXPECT_EQ(Shape(m.payload), expected) << m.payload;
  for (int g = 0; g < 7; ++g) {
    GeneratorModel model(g, 42);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(Shape(GeneratorPayload(model.Next())), expected);
  }
  // A whole-number coordinate must still be a JSON float, or the field's type would conflict.
  GeneratorReading whole{"generator1", 40.0, -73.0, 1, 2, 3, 4};
  EXPECT_EQ(Shape(GeneratorPayload(whole)), expected);
}

TEST(SimulatorModelTest, FirstThreeGeneratorsSitAtTheFixtureLocationsAndTopics) {
  std::map<std::string, std::pair<double, double>> fixture_locations;
  std::set<std::string> fixture_topics;
  for (const auto& m : ReadFixture()) {
    auto j = nlohmann::json::parse(m.payload);
    fixture_locations[j["generatorID"]] = {j["lat"], j["lon"]};
    fixture_topics.insert(m.topic);
  }
  ASSERT_EQ(fixture_locations.size(), 3u);
  std::set<std::string> topics;
  for (int g = 0; g < 3; ++g) {
    GeneratorModel model(g, 7);
    GeneratorReading r = model.Next();
    ASSERT_TRUE(fixture_locations.count(r.generator_id)) << r.generator_id;
    EXPECT_EQ(r.lat, fixture_locations[r.generator_id].first);
    EXPECT_EQ(r.lon, fixture_locations[r.generator_id].second);
    topics.insert(GeneratorTopic("emergency_generator", model.id()));
  }
  EXPECT_EQ(topics, fixture_topics);
}

TEST(SimulatorModelTest, LaterGeneratorsGetDistinctDeterministicLocations) {
  std::set<std::pair<double, double>> seen;
  std::set<std::string> ids;
  for (int g = 0; g < 30; ++g) {
    GeneratorReading a = GeneratorModel(g, 1).Next();
    GeneratorReading b = GeneratorModel(g, 2).Next();
    EXPECT_EQ(a.lat, b.lat);  // location depends on the index only, not the seed
    EXPECT_EQ(a.lon, b.lon);
    EXPECT_TRUE(seen.insert({a.lat, a.lon}).second) << "generator " << g << " shares a location";
    EXPECT_TRUE(ids.insert(a.generator_id).second);
  }
  EXPECT_EQ(GeneratorModel(29, 1).id(), "generator30");
}

TEST(SimulatorModelTest, SameSeedSameReadingsDifferentSeedDifferent) {
  GeneratorModel a(1, 123), b(1, 123), c(1, 124);
  bool differs = false;
  for (int i = 0; i < 200; ++i) {
    const std::string pa = GeneratorPayload(a.Next());
    EXPECT_EQ(pa, GeneratorPayload(b.Next()));
    differs |= pa != GeneratorPayload(c.Next());
  }
  EXPECT_TRUE(differs);
}

// The fixture's generators follow power = load*26 and temperature = 160 + 1.4*load (truncated).
TEST(SimulatorModelTest, DerivedFieldsFollowTheFixturesRelations) {
  for (const auto& m : ReadFixture()) {
    auto j = nlohmann::json::parse(m.payload);
    const int64_t load = j["load"];
    EXPECT_EQ(j["power"].get<int64_t>(), load * 26) << m.payload;
    EXPECT_EQ(j["temperature"].get<int64_t>(), 160 + load * 14 / 10) << m.payload;
  }
  GeneratorModel model(0, 9);
  for (int i = 0; i < 1000; ++i) {
    GeneratorReading r = model.Next();
    EXPECT_EQ(r.power, r.load * 26);
    EXPECT_EQ(r.temperature, 160 + r.load * 14 / 10);
  }
}

TEST(SimulatorModelTest, LoadWalksWithinRangeAndFuelFallsThenRefills) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    GeneratorModel model(seed % 3, seed);
    GeneratorReading prev = model.Next();
    int refills = 0;
    bool low = false, high = false;
    for (int i = 0; i < 5000; ++i) {
      GeneratorReading r = model.Next();
      ASSERT_GE(r.load, 0);
      ASSERT_LE(r.load, 100);
      ASSERT_LE(std::abs(r.load - prev.load), 20) << "load should walk, not jump";
      ASSERT_GE(r.fuel, GeneratorModel::kFuelRefillBelow);
      ASSERT_LE(r.fuel, GeneratorModel::kFuelFull);
      if (r.fuel == GeneratorModel::kFuelFull && prev.fuel - r.load / 10 < GeneratorModel::kFuelRefillBelow) {
        ++refills;
      } else {
        ASSERT_EQ(r.fuel, prev.fuel - r.load / 10) << "tick " << i;
      }
      (r.fuel < 500 ? low : high) = true;  // the seed's alarm rule: fuel<500 ? refuel : no action
      prev = r;
    }
    EXPECT_GT(refills, 0);
    EXPECT_TRUE(low && high);
  }
}

TEST(SimulatorModelTest, InitialFuelVariesSoAShortDemoShowsBothAlarmStates) {
  std::set<int64_t> first_fuel;
  for (int g = 0; g < 20; ++g) first_fuel.insert(GeneratorModel(g, 5).Next().fuel);
  EXPECT_GT(first_fuel.size(), 10u);
  EXPECT_LT(*first_fuel.begin(), 500);
  EXPECT_GE(*first_fuel.rbegin(), 500);
}

SimulatorOptions WithRate(double rate, int generators) {
  SimulatorOptions o;
  o.rate = rate;
  o.generators = generators;
  return o;
}

TEST(SimulatorScheduleTest, RateSpreadsEvenlyRoundRobinWithoutDrift) {
  PublishSchedule s(WithRate(100, 3), 1000, 1);
  for (int64_t k = 0; k < 1000; ++k) {
    auto slot = s.Next();
    EXPECT_EQ(slot.generator, k % 3);
    EXPECT_EQ(slot.due_ns, 1000 + k * 10'000'000) << k;
  }
  PublishSchedule odd(WithRate(3, 2), 0, 1);
  for (int64_t k = 0; k < 30; ++k) {
    auto slot = odd.Next();
    EXPECT_NEAR(static_cast<double>(slot.due_ns), k * 1e9 / 3, 1.0);
  }
}

TEST(SimulatorScheduleTest, RateMaxIsAlwaysDueRoundRobin) {
  PublishSchedule s(WithRate(kRateMax, 4), 777, 1);
  for (int k = 0; k < 100; ++k) {
    auto slot = s.Next();
    EXPECT_EQ(slot.generator, k % 4);
    EXPECT_EQ(slot.due_ns, 777);
  }
}

TEST(SimulatorScheduleTest, IntervalsArePerGeneratorWithinRangeAndInOrder) {
  SimulatorOptions o;  // defaults: 3 generators, 5s-15s
  const int64_t start = 50 * kSec;
  PublishSchedule s(o, start, 99);
  std::map<int, int64_t> last_due;
  int64_t prev_due = start;
  std::map<int, int> per_generator;
  for (int i = 0; i < 3000; ++i) {
    auto slot = s.Next();
    ASSERT_GE(slot.due_ns, prev_due) << "slots must come out in due order";
    prev_due = slot.due_ns;
    auto it = last_due.find(slot.generator);
    if (it == last_due.end()) {
      EXPECT_LT(slot.due_ns, start + o.interval_min_ns) << "first message within one min interval";
    } else {
      EXPECT_GE(slot.due_ns - it->second, o.interval_min_ns);
      EXPECT_LE(slot.due_ns - it->second, o.interval_max_ns);
    }
    last_due[slot.generator] = slot.due_ns;
    per_generator[slot.generator]++;
  }
  ASSERT_EQ(per_generator.size(), 3u);
  for (auto [g, n] : per_generator) EXPECT_NEAR(n, 1000, 100) << "generator " << g;
}

TEST(SimulatorScheduleTest, FixedIntervalAndSeedDeterminism) {
  SimulatorOptions o;
  o.generators = 2;
  o.interval_min_ns = o.interval_max_ns = 10 * kSec;
  PublishSchedule a(o, 0, 5), b(o, 0, 5);
  std::map<int, int64_t> last_due;
  for (int i = 0; i < 100; ++i) {
    auto sa = a.Next();
    auto sb = b.Next();
    EXPECT_EQ(sa.generator, sb.generator);
    EXPECT_EQ(sa.due_ns, sb.due_ns);
    if (last_due.count(sa.generator)) {
      EXPECT_EQ(sa.due_ns - last_due[sa.generator], 10 * kSec);
    }
    last_due[sa.generator] = sa.due_ns;
  }
}

TEST(SimulatorArgsTest, DefaultsAndEnvironment) {
  auto o = ParseSimulatorArgs({}, {});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->url, "tcp://127.0.0.1:1883");
  EXPECT_EQ(o->generators, 3);
  EXPECT_EQ(o->interval_min_ns, 5 * kSec);
  EXPECT_EQ(o->interval_max_ns, 15 * kSec);
  EXPECT_EQ(o->rate, 0);
  EXPECT_EQ(o->qos, 1);
  EXPECT_EQ(o->count, 0);
  EXPECT_EQ(o->duration_ns, 0);
  EXPECT_EQ(o->topic_prefix, "emergency_generator");
  EXPECT_EQ(o->seed, 0u);

  std::map<std::string, std::string> env = {{"EDGELINE_MQTT_URL", "tcp://broker:1884"},
                                            {"EDGELINE_MQTT_USERNAME", "sim"},
                                            {"EDGELINE_MQTT_PASSWORD", "s3cret"}};
  auto e = ParseSimulatorArgs({}, env);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->url, "tcp://broker:1884");
  EXPECT_EQ(e->username, "sim");
  EXPECT_EQ(e->password, "s3cret");
  auto overridden = ParseSimulatorArgs({"--url", "tcp://other:1883"}, env);
  ASSERT_TRUE(overridden.ok());
  EXPECT_EQ(overridden->url, "tcp://other:1883");
}

TEST(SimulatorArgsTest, EveryOptionBothSpellings) {
  auto o = ParseSimulatorArgs({"--url=tcp://h:1", "--generators", "10", "--interval", "2s-3500ms", "--qos=2", "--count",
                               "30", "--duration=1m", "--prefix", "site/gen", "--seed", "4294967295"},
                              {});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->url, "tcp://h:1");
  EXPECT_EQ(o->generators, 10);
  EXPECT_EQ(o->interval_min_ns, 2 * kSec);
  EXPECT_EQ(o->interval_max_ns, 3'500'000'000);
  EXPECT_EQ(o->qos, 2);
  EXPECT_EQ(o->count, 30);
  EXPECT_EQ(o->duration_ns, 60 * kSec);
  EXPECT_EQ(o->topic_prefix, "site/gen");
  EXPECT_EQ(o->seed, 4294967295u);

  auto fixed = ParseSimulatorArgs({"--interval", "10s", "--rate", "250.5"}, {});
  ASSERT_TRUE(fixed.ok()) << fixed.status().ToString();
  EXPECT_EQ(fixed->interval_min_ns, 10 * kSec);
  EXPECT_EQ(fixed->interval_max_ns, 10 * kSec);
  EXPECT_EQ(fixed->rate, 250.5);
  auto max = ParseSimulatorArgs({"--rate=max", "--qos", "0"}, {});
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->rate, kRateMax);
  EXPECT_EQ(max->qos, 0);
}

TEST(SimulatorArgsTest, EveryProblemIsListed) {
  auto o = ParseSimulatorArgs({"--generators", "0", "--interval", "15s-5s", "--rate", "fast", "--qos", "3", "--count",
                               "-1", "--duration", "soon", "--prefix", "a/+", "--seed", "-5", "--bogus", "--url", ""},
                              {{"EDGELINE_MQTT_PASSWORD", "s3cret"}});
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = o.status().message();
  for (const char* what : {"--generators", "--interval", "--rate", "--qos", "--count", "--duration", "--prefix",
                           "--seed", "unknown argument '--bogus'", "--url"}) {
    EXPECT_NE(m.find(what), std::string::npos) << what << " not in:\n" << m;
  }
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 9) << "one problem per line:\n" << m;
  EXPECT_EQ(m.find("s3cret"), std::string::npos);
}

TEST(SimulatorArgsTest, SingleProblems) {
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const Case cases[] = {
      {{"--generators"}, "--generators: missing value"},
      {{"--generators", "1001"}, "--generators"},
      {{"--generators", "3x"}, "--generators"},
      {{"--interval", "0s"}, "--interval"},
      {{"--interval", "-5s"}, "--interval"},
      {{"--interval", "5s-"}, "--interval"},
      {{"--interval", "5-15"}, "--interval"},
      {{"--rate", "0"}, "--rate"},
      {{"--rate", "-3"}, "--rate"},
      {{"--rate", "inf"}, "--rate"},
      {{"--qos", "1.5"}, "--qos"},
      {{"--seed", "4294967296"}, "--seed"},
      {{"--prefix", "gen/"}, "--prefix"},
      {{"--prefix="}, "--prefix"},
      {{"generators"}, "unknown argument 'generators'"},
  };
  for (const auto& c : cases) {
    auto o = ParseSimulatorArgs(c.args, {});
    ASSERT_FALSE(o.ok()) << c.args[0];
    EXPECT_NE(o.status().message().find(c.expect), std::string::npos) << o.status().message();
  }
}

TEST(SimulatorArgsTest, SilenceNamesAKnownGeneratorAndADelay) {
  auto o = ParseSimulatorArgs({"--generators", "3", "--silence", "generator3@10s"}, {});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->silence_id, "generator3");
  EXPECT_EQ(o->silence_after_ns, 10'000'000'000);
  EXPECT_TRUE(ParseSimulatorArgs({}, {})->silence_id.empty());
  for (const char* bad : {"generator3", "@10s", "generator3@soon", "generator4@1s"}) {
    auto r = ParseSimulatorArgs({"--generators", "3", "--silence", bad}, {});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("--silence"), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace edgeline
