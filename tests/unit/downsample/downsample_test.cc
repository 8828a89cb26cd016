// Downsampler engine and task: the seed's Flux task over the fixture trace, event-time edge
// cases, and exactly-once across restarts through a real SQLite queue (FakeClock, no sleeps).
#include <algorithm>
#include <climits>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "downsample/downsample_task.h"
#include "downsample/downsampler.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kMin = 60 * kSec;

std::vector<std::string> ReadLines(const std::string& name) {
  std::ifstream in(std::string(EDGELINE_FIXTURES_DIR) + "/" + name);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// A point as text that ignores field order and float formatting (944 vs 944.0).
std::string Canonical(const Point& p) {
  std::vector<std::pair<std::string, std::string>> tags = p.tags;
  std::sort(tags.begin(), tags.end());
  std::vector<std::string> fields;
  for (const auto& [k, v] : p.fields) {
    char buf[64];
    switch (v.type) {
      case FieldType::kFloat: std::snprintf(buf, sizeof(buf), "%.17g", v.f); break;
      case FieldType::kInteger: std::snprintf(buf, sizeof(buf), "%lldi", static_cast<long long>(v.i)); break;
      case FieldType::kUnsigned: std::snprintf(buf, sizeof(buf), "%lluu", static_cast<unsigned long long>(v.u)); break;
      case FieldType::kString: std::snprintf(buf, sizeof(buf), "\"%s\"", v.s.c_str()); break;
      case FieldType::kBool: std::snprintf(buf, sizeof(buf), "%s", v.b ? "true" : "false"); break;
    }
    fields.push_back(k + "=" + buf);
  }
  std::sort(fields.begin(), fields.end());
  std::string out = p.measurement;
  for (const auto& [k, v] : tags) out += "," + k + "=" + v;
  out += " ";
  for (const auto& f : fields) out += f + ",";
  out += " " + std::to_string(p.timestamp_ns.value_or(-1));
  return out;
}

std::vector<std::string> CanonicalLines(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const auto& line : lines) {
    auto p = ParseLine(line);
    EXPECT_TRUE(p.ok()) << line;
    if (p.ok()) out.push_back(Canonical(*p));
  }
  return out;
}

std::vector<std::string> CanonicalPoints(const std::vector<Point>& points) {
  std::vector<std::string> out;
  for (const auto& p : points) out.push_back(Canonical(p));
  return out;
}

DownsampleConfig SeedConfig(std::map<std::string, std::string> extra = {}) {
  std::map<std::string, std::string> env = {{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_DOWNSAMPLE_PRESET", "seed"}};
  for (auto& [k, v] : extra) env[k] = v;
  ConfigParseResult parsed = ParseConfig(env);
  EXPECT_TRUE(parsed.ok()) << (parsed.problems.empty()
                                   ? ""
                                   : parsed.problems[0].variable + ": " + parsed.problems[0].message);
  return parsed.config.downsample;
}

Point P(std::string generator, int64_t ts, double fuel, double load = 1) {
  Point p;
  p.measurement = "genData";
  p.tags = {{"generatorID", std::move(generator)}};
  FieldValue f;
  f.f = fuel;
  FieldValue l;
  l.f = load;
  p.fields = {{"fuel", f}, {"load", l}};
  p.timestamp_ns = ts;
  return p;
}

std::vector<Point> RawFixture() {
  std::vector<Point> points;
  for (const auto& line : ReadLines("generators_raw.lp")) points.push_back(*ParseLine(line));
  return points;
}

TEST(SeedPreset, IsTheSeedTask) {
  DownsampleConfig c = SeedConfig();
  EXPECT_TRUE(c.enabled);
  EXPECT_EQ(c.every_ns, kMin);
  EXPECT_EQ(c.group_by, std::vector<std::string>{"generatorID"});
  EXPECT_EQ(c.default_aggregate, Aggregate::kLast);
  ASSERT_EQ(c.alarms.size(), 1u);
  EXPECT_EQ(c.alarms[0], (AlarmRule{"alarm", "fuel", CompareOp::kLt, 500, "refuel", "no action"}));
  EXPECT_EQ(c.set_tags, (std::vector<std::pair<std::string, std::string>>{{"region", "US"}}));
  EXPECT_EQ(c.measurements, std::vector<std::string>{"genData"});
  EXPECT_EQ(c.bucket, "kafka_downsampled");
  // Off unless asked for.
  EXPECT_FALSE(ParseConfig({{"EDGELINE_INFLUX_API", "v1"}}).config.downsample.enabled);
}

TEST(DownsampleConfigParse, ReportsEveryBadRuleAtOnce) {
  ConfigParseResult r = ParseConfig({{"EDGELINE_INFLUX_API", "v1"},
                                     {"EDGELINE_DOWNSAMPLE_AGGREGATE", "last,fuel=median"},
                                     {"EDGELINE_DOWNSAMPLE_ALARM", "alarm:fuel<<500?a:b;x:fuel<abc?a:b;y:fuel>1"},
                                     {"EDGELINE_DOWNSAMPLE_SET_TAGS", "region"},
                                     {"EDGELINE_ALARM_TOPIC", "alarms"}});
  std::multiset<std::string> vars;
  for (const auto& p : r.problems) vars.insert(p.variable);
  EXPECT_EQ(vars.count("EDGELINE_DOWNSAMPLE_AGGREGATE"), 1u);
  EXPECT_EQ(vars.count("EDGELINE_DOWNSAMPLE_ALARM"), 3u);
  EXPECT_EQ(vars.count("EDGELINE_DOWNSAMPLE_SET_TAGS"), 1u);
  ConfigParseResult ok =
      ParseConfig({{"EDGELINE_INFLUX_API", "v1"},
                   {"EDGELINE_DOWNSAMPLE_ALARM", "hot:temperature>=250?hot:ok; low:fuel != 0 ?x:y"}});
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok.config.downsample.alarms.size(), 2u);
  EXPECT_EQ(ok.config.downsample.alarms[1], (AlarmRule{"low", "fuel", CompareOp::kNe, 0, "x", "y"}));
}

TEST(DownsampleConfigParse, AlarmTopicMustNotLoopBackIntoIngest) {
  ConfigParseResult loop = ParseConfig({{"EDGELINE_INFLUX_API", "v1"},
                                        {"EDGELINE_DOWNSAMPLE_PRESET", "seed"},
                                        {"EDGELINE_MQTT_TOPICS", "emergency_generator/+,site/#"},
                                        {"EDGELINE_ALARM_TOPIC", "site/alarms"}});
  ASSERT_EQ(loop.problems.size(), 1u);
  EXPECT_EQ(loop.problems[0].variable, "EDGELINE_ALARM_TOPIC");
  EXPECT_NE(loop.problems[0].message.find("site/#"), std::string::npos);
  EXPECT_TRUE(ParseConfig({{"EDGELINE_INFLUX_API", "v1"},
                           {"EDGELINE_DOWNSAMPLE_PRESET", "seed"},
                           {"EDGELINE_ALARM_TOPIC", "emergency_generator/alarms"}})
                  .ok());  // emergency_generator/+ is one level; alarms are three
}

TEST(Downsampler, FixtureTraceGivesTheSeedTasksOutputPointForPoint) {
  Downsampler d(SeedConfig());
  DownsampleOutput out;
  for (const Point& p : RawFixture()) d.Add(p, &out);
  d.AdvanceWatermark(INT64_MAX / 2, &out);  // end of trace: close everything
  std::vector<std::string> expected = CanonicalLines(ReadLines("generators_downsampled.lp"));
  std::vector<std::string> got = CanonicalPoints(out.points);
  ASSERT_EQ(got.size(), 45u);
  EXPECT_EQ(got, expected);  // same order too: window by window, generator by generator
  int refuel = 0;
  for (const auto& p : out.points) {
    for (const auto& [k, v] : p.fields) refuel += k == "alarm" && v.s == "refuel";
  }
  EXPECT_EQ(refuel, 13);
  EXPECT_EQ(d.counters().points_in, 399);
  EXPECT_EQ(d.counters().points_late, 0);
  EXPECT_EQ(d.counters().windows_closed, 15);
  EXPECT_EQ(d.open_windows(), 0);
  // Alarm changes: the first window of each generator, then every flip.
  int flips = 0;
  std::map<std::string, std::string> level;
  for (const auto& p : out.points) {
    std::string g = p.tags[0].second;
    std::string a;
    for (const auto& [k, v] : p.fields) {
      if (k == "alarm") a = v.s;
    }
    if (level[g] != a) ++flips;
    level[g] = a;
  }
  EXPECT_EQ(static_cast<int>(out.alarms.size()), flips);
}

TEST(Downsampler, WindowClosesOnlyWhenTheWatermarkPassesItsEnd) {
  DownsampleConfig c = SeedConfig({{"EDGELINE_DOWNSAMPLE_LATENESS", "5s"}});
  Downsampler d(c);
  DownsampleOutput out;
  d.Add(P("g1", 10 * kMin + 10 * kSec, 900), &out);
  d.Add(P("g1", 11 * kMin + 4 * kSec, 800), &out);  // watermark 10m59s: window 10m still open
  EXPECT_TRUE(out.points.empty());
  EXPECT_EQ(d.open_windows(), 2);
  d.Add(P("g1", 10 * kMin + 50 * kSec, 450), &out);  // out of order, but not late yet
  d.Add(P("g1", 11 * kMin + 5 * kSec, 700), &out);   // watermark 11m00s: window 10m closes
  ASSERT_EQ(out.points.size(), 1u);
  EXPECT_EQ(out.points[0].timestamp_ns, 10 * kMin + 50 * kSec);  // the last row by event time
  EXPECT_EQ(Canonical(out.points[0]), "genData,generatorID=g1,region=US alarm=\"refuel\",fuel=450,load=1, " +
                                          std::to_string(10 * kMin + 50 * kSec));
  d.Add(P("g1", 10 * kMin + 59 * kSec, 100), &out);  // its window is closed: late
  EXPECT_EQ(d.counters().points_late, 1);
  EXPECT_EQ(out.points.size(), 1u);
}

TEST(Downsampler, EmptyWindowsProduceNothingAndASilentGeneratorDropsOut) {
  Downsampler d(SeedConfig({{"EDGELINE_DOWNSAMPLE_LATENESS", "0"}}));
  DownsampleOutput out;
  d.Add(P("g1", 0 * kMin + 1 * kSec, 900), &out);
  d.Add(P("g2", 0 * kMin + 2 * kSec, 400), &out);
  d.Add(P("g1", 1 * kMin + 1 * kSec, 890), &out);  // g2 silent from here on
  d.Add(P("g1", 5 * kMin + 1 * kSec, 880), &out);  // windows 2..4 are empty
  d.AdvanceWatermark(6 * kMin, &out);
  std::vector<std::pair<int64_t, std::string>> rows;
  for (const auto& p : out.points) rows.emplace_back(*p.timestamp_ns, p.tags[0].second);
  EXPECT_EQ(rows, (std::vector<std::pair<int64_t, std::string>>{
                      {1 * kSec, "g1"}, {2 * kSec, "g2"}, {kMin + kSec, "g1"}, {5 * kMin + kSec, "g1"}}));
  EXPECT_EQ(d.counters().windows_closed, 3);
}

TEST(Downsampler, SeveralRulesAndAggregatesUseWindowEndAsTime) {
  std::map<std::string, std::string> env = {
      {"EDGELINE_INFLUX_API", "v1"},
      {"EDGELINE_DOWNSAMPLE_AGGREGATE", "mean,fuel=min,load=max,count_me=count,s=sum,f=first,l=last"},
      {"EDGELINE_DOWNSAMPLE_ALARM", "alarm:fuel<500?refuel:no action;overload:load>=90?yes:no"},
      {"EDGELINE_DOWNSAMPLE_LATENESS", "0"}};
  ConfigParseResult parsed = ParseConfig(env);
  ASSERT_TRUE(parsed.ok());
  Downsampler d(parsed.config.downsample);
  DownsampleOutput out;
  auto point = [](int64_t ts, double fuel, double load, int64_t s, std::string f) {
    Point p = P("g1", ts, fuel, load);
    FieldValue si;
    si.type = FieldType::kInteger;
    si.i = s;
    FieldValue fs;
    fs.type = FieldType::kString;
    fs.s = std::move(f);
    p.fields.push_back({"s", si});
    p.fields.push_back({"f", fs});
    p.fields.push_back({"l", fs});
    p.fields.push_back({"count_me", fs});
    return p;
  };
  d.Add(point(10 * kSec, 600, 50, 2, "a"), &out);
  d.Add(point(20 * kSec, 450, 95, 3, "b"), &out);
  d.Add(point(5 * kSec, 700, 10, 4, "c"), &out);
  d.AdvanceWatermark(kMin, &out);
  ASSERT_EQ(out.points.size(), 1u);
  EXPECT_EQ(Canonical(out.points[0]),
            "genData,generatorID=g1 alarm=\"refuel\",count_me=3i,f=\"c\",fuel=450,l=\"b\",load=95,"
            "overload=\"yes\",s=9i, " +
                std::to_string(kMin));
  ASSERT_EQ(out.alarms.size(), 2u);
  EXPECT_EQ(out.alarms[0].output, "alarm");
  EXPECT_EQ(out.alarms[0].value, "refuel");
  EXPECT_EQ(out.alarms[0].previous, "");
  EXPECT_EQ(out.alarms[1].output, "overload");
}

TEST(Downsampler, MeasurementFilterAndGroupWithoutTheTag) {
  Downsampler d(SeedConfig({{"EDGELINE_DOWNSAMPLE_LATENESS", "0"}}));
  DownsampleOutput out;
  Point other = P("g1", kSec, 1);
  other.measurement = "other";
  d.Add(other, &out);
  Point untagged = P("g1", kSec, 900);
  untagged.tags.clear();
  d.Add(untagged, &out);
  d.AdvanceWatermark(kMin, &out);
  EXPECT_EQ(d.counters().points_filtered, 1);
  ASSERT_EQ(out.points.size(), 1u);
  EXPECT_EQ(out.points[0].tags, (std::vector<std::pair<std::string, std::string>>{{"region", "US"}}));
}

TEST(Downsampler, StateRoundTripContinuesExactly) {
  std::vector<Point> trace = RawFixture();
  Downsampler whole(SeedConfig());
  DownsampleOutput expected;
  for (const Point& p : trace) whole.Add(p, &expected);
  whole.AdvanceWatermark(INT64_MAX / 2, &expected);

  for (size_t cut : {size_t{1}, size_t{57}, size_t{200}, trace.size() - 1}) {
    DownsampleOutput got;
    Downsampler first(SeedConfig());
    for (size_t i = 0; i < cut; ++i) first.Add(trace[i], &got);
    std::string state = first.SaveState();
    Downsampler second(SeedConfig());
    ASSERT_TRUE(second.RestoreState(state).ok());
    EXPECT_EQ(second.open_windows(), first.open_windows());
    for (size_t i = cut; i < trace.size(); ++i) second.Add(trace[i], &got);
    second.AdvanceWatermark(INT64_MAX / 2, &got);
    EXPECT_EQ(CanonicalPoints(got.points), CanonicalPoints(expected.points)) << "cut at " << cut;
    EXPECT_EQ(got.alarms.size(), expected.alarms.size()) << "cut at " << cut;
    EXPECT_EQ(second.counters().points_out, 45);
  }
  Downsampler broken(SeedConfig());
  EXPECT_EQ(broken.RestoreState("{not json").code(), StatusCode::kCorruption);
}

// Regression (clock jumps): receive times come from the wall clock; after it went back
// (NTP correcting a clock that ran an hour ahead), every point was late until the clock caught
// up again, so an hour had no downsampled rows and no alarms.
TEST(Downsampler, PointsStampedAfterAWallClockStepBackAreWindowedNotLate) {
  Downsampler d(SeedConfig({{"EDGELINE_DOWNSAMPLE_LATENESS", "5s"}}));
  DownsampleOutput out;
  for (int m : {60, 61, 62}) d.Add(P("g1", m * kMin + 10 * kSec, 900), &out);
  ASSERT_EQ(out.points.size(), 2u);                 // windows 60m and 61m
  d.Add(P("g1", 2 * kMin + 10 * kSec, 900), &out);  // before any step is known: late
  EXPECT_EQ(d.counters().points_late, 1);

  d.ExpectClockStepBack(2 * kMin + 15 * kSec);      // everything stamped after the step is >= this
  d.Add(P("g1", 2 * kMin + 10 * kSec, 900), &out);  // older than the step: still late
  EXPECT_EQ(d.counters().points_late, 2);
  d.Add(P("g1", 2 * kMin + 20 * kSec, 450), &out);  // the first point after the step
  EXPECT_EQ(d.counters().points_late, 2);
  EXPECT_EQ(d.counters().clock_rewinds, 1);
  EXPECT_FALSE(d.expecting_clock_step());
  EXPECT_EQ(d.closed_until_ns(), 2 * kMin);
  d.Add(P("g1", 1 * kMin + 50 * kSec, 900), &out);  // before the restarted boundary: late
  EXPECT_EQ(d.counters().points_late, 3);
  d.Add(P("g1", 3 * kMin + 10 * kSec, 800), &out);  // closes window 2m on the new time line
  ASSERT_EQ(out.points.size(), 3u);
  EXPECT_EQ(out.points[2].timestamp_ns, 2 * kMin + 20 * kSec);
  EXPECT_EQ(d.open_windows(), 2);  // 3m, and 62m from before the step, still open
  // Event time reaching the old time line again closes 62m once, with both time lines' points.
  d.Add(P("g1", 62 * kMin + 30 * kSec, 700), &out);
  d.Add(P("g1", 63 * kMin + 10 * kSec, 600), &out);
  ASSERT_EQ(out.points.size(), 5u);
  EXPECT_EQ(out.points[4].timestamp_ns, 62 * kMin + 30 * kSec);
  EXPECT_EQ(d.counters().points_out, 5);
}

TEST(Downsampler, AnExpectedClockStepSurvivesSaveAndRestore) {
  Downsampler first(SeedConfig());
  DownsampleOutput out;
  first.Add(P("g1", 60 * kMin, 900), &out);
  first.Add(P("g1", 62 * kMin, 900), &out);
  first.ExpectClockStepBack(2 * kMin);
  Downsampler second(SeedConfig());
  ASSERT_TRUE(second.RestoreState(first.SaveState()).ok());
  EXPECT_TRUE(second.expecting_clock_step());
  second.Add(P("g1", 2 * kMin + 5 * kSec, 900), &out);
  EXPECT_EQ(second.counters().points_late, 0);
  EXPECT_EQ(second.counters().clock_rewinds, 1);
  auto summary = SummarizeDownsampleState(second.SaveState());
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->counters.clock_rewinds, 1);
}

TEST(Downsampler, ObserveWallClockSeesOnlyStepsBackLongerThanAWindow) {
  Downsampler d(SeedConfig());  // 1 min windows, lateness 10 s
  DownsampleOutput out;
  d.Add(P("g1", 100 * kMin, 900), &out);
  EXPECT_EQ(d.ObserveWallClock(100 * kMin, 5 * kSec), 0);              // first reading
  EXPECT_EQ(d.ObserveWallClock(100 * kMin + 1 * kSec, 6 * kSec), 0);   // in step
  EXPECT_EQ(d.ObserveWallClock(100 * kMin + 90 * kSec, 7 * kSec), 0);  // forward: not a step back
  EXPECT_EQ(d.ObserveWallClock(100 * kMin + 31 * kSec, 8 * kSec), 0);  // 60 s back: not longer than a window
  EXPECT_FALSE(d.expecting_clock_step());
  EXPECT_EQ(d.ObserveWallClock(40 * kMin + 32 * kSec, 9 * kSec), 60 * kMin);
  EXPECT_TRUE(d.expecting_clock_step());
  // No point came and the clock is past the closed boundary again: nothing left to restart.
  EXPECT_EQ(d.ObserveWallClock(100 * kMin + 30 * kSec, 10 * kSec), 0);
  EXPECT_FALSE(d.expecting_clock_step());
}

class DownsampleTaskTest : public ::testing::Test {
 protected:
  void SetUp() override { clock_.SetWallNs(1764000000LL * kSec); }

  std::unique_ptr<Queue> Open(const std::string& name) { return OpenTestQueue(dir_.File(name), &clock_); }

  // Appends the raw fixture in batches of `per_batch` lines, stepping the task (reopened at
  // `restart_after` batches, -1 = never) after each append; returns the downsampled stream.
  std::vector<std::string> Run(const std::string& name, size_t per_batch, int restart_after,
                               std::vector<std::string>* alarm_records = nullptr) {
    DownsampleConfig config = SeedConfig({{"EDGELINE_ALARM_TOPIC", "edgeline/alarms"}});
    auto queue = Open(name);
    EXPECT_TRUE(queue->RegisterConsumer("reader", std::string(kDownsampledStream)).ok());
    EXPECT_TRUE(queue->RegisterConsumer("alarm-reader", std::string(kAlarmStream)).ok());
    auto task = std::make_unique<DownsampleTask>(config, queue.get(), &clock_);
    EXPECT_TRUE(task->Start().ok());
    std::vector<std::string> raw = ReadLines("generators_raw.lp");
    int batches = 0;
    for (size_t i = 0; i < raw.size(); i += per_batch) {
      BatchInput b;
      b.lines.assign(raw.begin() + i, raw.begin() + std::min(raw.size(), i + per_batch));
      EXPECT_TRUE(queue->Append({b}, {}).ok());
      while (task->Step() == 0) {
      }
      if (++batches == restart_after) {
        task.reset();
        queue.reset();
        queue = Open(name);
        EXPECT_TRUE(queue->RegisterConsumer("reader", std::string(kDownsampledStream)).ok());
        EXPECT_TRUE(queue->RegisterConsumer("alarm-reader", std::string(kAlarmStream)).ok());
        task = std::make_unique<DownsampleTask>(config, queue.get(), &clock_);
        EXPECT_TRUE(task->Start().ok());
      }
    }
    // Caught up and quiet: event time moves on with the steady clock and the last window closes.
    task->Step();
    EXPECT_EQ(task->engine().open_windows(), 3);
    clock_.AdvanceNs(config.idle_timeout_ns - kSec);  // quiet, but not for long enough yet
    task->Step();
    EXPECT_EQ(task->engine().open_windows(), 3);
    clock_.AdvanceNs(2 * kMin);
    task->Step();
    EXPECT_EQ(task->engine().open_windows(), 0);
    std::vector<std::string> lines;
    auto rows = queue->Read("reader", 1'000'000);  // kept: ranging over *Read() would dangle
    EXPECT_TRUE(rows.ok());
    for (const Batch& b : *rows) {
      lines.insert(lines.end(), b.lines.begin(), b.lines.end());
    }
    if (alarm_records) {
      auto records = queue->Read("alarm-reader", 1'000'000);
      EXPECT_TRUE(records.ok());
      for (const Batch& b : *records) {
        alarm_records->insert(alarm_records->end(), b.lines.begin(), b.lines.end());
      }
    }
    return lines;
  }

  TempDir dir_;
  FakeClock clock_;
};

TEST_F(DownsampleTaskTest, SameOutputForOneAndThousandLineBatchesAndAcrossARestart) {
  std::vector<std::string> alarms_one;
  std::vector<std::string> one = Run("one.db", 1, -1, &alarms_one);
  std::vector<std::string> thousand = Run("thousand.db", 1000, -1);
  std::vector<std::string> restarted;
  std::vector<std::string> alarms_restarted;
  restarted = Run("restart.db", 7, 25, &alarms_restarted);
  std::vector<std::string> expected = CanonicalLines(ReadLines("generators_downsampled.lp"));
  EXPECT_EQ(CanonicalLines(one), expected);
  EXPECT_EQ(one, thousand);
  EXPECT_EQ(one, restarted);
  EXPECT_EQ(alarms_one, alarms_restarted);
  ASSERT_FALSE(alarms_one.empty());
  auto record = nlohmann::json::parse(alarms_one[0]);
  EXPECT_EQ(record["topic"], "edgeline/alarms/generator1/alarm");
  auto payload = nlohmann::json::parse(record["payload"].get<std::string>());
  EXPECT_EQ(payload["value"], "no action");
  EXPECT_EQ(payload["previous"], "");
  EXPECT_EQ(payload["tags"]["generatorID"], "generator1");
}

TEST_F(DownsampleTaskTest, RawBatchesAreReleasedOnlyAfterTheDownsamplerHasThem) {
  DownsampleConfig config = SeedConfig();
  auto queue = Open("gc.db");
  DownsampleTask task(config, queue.get(), &clock_);
  ASSERT_TRUE(task.Start().ok());
  BatchInput b;
  b.lines = {ReadLines("generators_raw.lp")[0]};
  ASSERT_TRUE(queue->Append({b}, {}).ok());
  EXPECT_EQ(queue->Stats()->batches, 1);
  task.Step();
  EXPECT_EQ(queue->Stats()->batches, 0);  // its only consumer has it
  EXPECT_EQ(task.engine().open_windows(), 1);
}

TEST_F(DownsampleTaskTest, WithoutAReaderOfTheDownsampledStreamNoRowsPileUp) {
  auto queue = Open("orphan.db");
  DownsampleTaskOptions options;
  options.write_rows = false;
  DownsampleTask task(SeedConfig({{"EDGELINE_ALARM_TOPIC", "edgeline/alarms"}}), queue.get(), &clock_, options);
  ASSERT_TRUE(queue->RegisterConsumer("alarm-reader", std::string(kAlarmStream)).ok());
  ASSERT_TRUE(task.Start().ok());
  BatchInput b;
  b.lines = ReadLines("generators_raw.lp");
  ASSERT_TRUE(queue->Append({b}, {}).ok());
  task.Step();
  EXPECT_EQ(task.engine().counters().points_out, 42);  // windows still close (the last 3 stay open)
  auto stats = queue->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->batches, 1);  // the alarm changes only: no downsampled batch nobody would collect
  EXPECT_FALSE(queue->Read("alarm-reader", 100)->empty());
}

// Regression (clock jumps), through the task with a FakeClock: the wall clock steps back
// an hour, comes back (a forward step), steps forward an hour and comes back again, while points
// are stamped with it. Before the fix the two hours after the steps back were all late.
TEST_F(DownsampleTaskTest, WallClockStepsBackLoseNoPointToLatenessAndWriteNoSeriesTimeTwice) {
  auto queue = Open("clock.db");
  ASSERT_TRUE(queue->RegisterConsumer("reader", std::string(kDownsampledStream)).ok());
  DownsampleTask task(SeedConfig(), queue.get(), &clock_);
  ASSERT_TRUE(task.Start().ok());
  int64_t points = 0;
  auto run = [&](int seconds) {  // one point a second, stamped with the wall clock; a step each 10 s
    for (int i = 0; i < seconds; ++i) {
      BatchInput b;
      b.lines = {FormatPoint(P("g1", clock_.WallNowNs(), 400 + i % 300))};
      ASSERT_TRUE(queue->Append({b}, {}).ok());
      ++points;
      clock_.AdvanceNs(kSec);
      if (i % 10 == 9) task.Step();
    }
  };
  const int64_t hour = 3600 * kSec;
  run(180);
  clock_.SetWallNs(clock_.WallNowNs() - hour);
  run(180);
  clock_.SetWallNs(clock_.WallNowNs() + hour);
  run(180);
  clock_.SetWallNs(clock_.WallNowNs() + hour);
  run(180);
  clock_.SetWallNs(clock_.WallNowNs() - hour);
  run(180);
  task.Step();
  const DownsampleCounters& c = task.engine().counters();
  EXPECT_EQ(c.points_in + c.points_late, points);
  EXPECT_EQ(c.points_late, 0);
  EXPECT_EQ(c.clock_rewinds, 2);
  // Each of the five 3-minute stretches closed its windows; the last one's newest stays open.
  EXPECT_GE(c.points_out, 5 * 2);
  std::set<int64_t> times;
  auto rows = queue->Read("reader", 1'000'000);
  ASSERT_TRUE(rows.ok());
  int64_t n = 0;
  for (const Batch& b : *rows) {
    for (const auto& line : b.lines) {
      ++n;
      EXPECT_TRUE(times.insert(*ParseLine(line)->timestamp_ns).second) << "series+time written twice: " << line;
    }
  }
  EXPECT_EQ(n, c.points_out);
}

TEST(AlarmTopic, TemplateOrSuffix) {
  AlarmChange c;
  c.output = "alarm";
  c.measurement = "genData";
  c.group_tags = {{"generatorID", "gen+1"}};
  EXPECT_EQ(AlarmTopic("site/alarms", c), "site/alarms/gen_1/alarm");
  EXPECT_EQ(AlarmTopic("a/{generatorID}/{alarm}/{missing}", c), "a/gen_1/alarm/_");
}

}  // namespace
}  // namespace edgeline

// Device liveness: a silent or offline device gets `stale`, on the caller's clock.
namespace edgeline {
namespace {

constexpr int64_t kT0 = 1764000000LL * 1'000'000'000;  // wall time of the first point
constexpr int64_t kS0 = 5'000 * 1'000'000'000LL;        // steady time of the first point

DownsampleConfig FiveSecondSeed(std::map<std::string, std::string> extra = {}) {
  extra.emplace("EDGELINE_DOWNSAMPLE_EVERY", "5s");
  extra.emplace("EDGELINE_DOWNSAMPLE_LATENESS", "1s");
  return SeedConfig(extra);  // stale after auto = 15 s
}

// Feeds one point per listed generator at second `s` (received then, stamped then), then checks.
void Second(Downsampler* d, int s, std::initializer_list<std::pair<const char*, double>> fuel, DownsampleOutput* out) {
  const int64_t wall = kT0 + s * kSec;
  d->NoteArrival(wall, kS0 + s * kSec);
  for (const auto& [g, f] : fuel) d->Add(P(g, wall, f), out);
  d->CheckStale(wall, kS0 + s * kSec, out);
}

std::vector<std::string> Changes(const DownsampleOutput& out, const std::string& generator) {
  std::vector<std::string> changes;
  for (const AlarmChange& a : out.alarms) {
    if (a.group_tags.at(0).second == generator) changes.push_back(a.previous + "->" + a.value);
  }
  return changes;
}

TEST(DeviceLiveness, SilentDeviceGoesStaleOnceThenBackOnItsNextPoint) {
  Downsampler d(FiveSecondSeed());
  DownsampleOutput out;
  for (int s = 0; s < 10; ++s) Second(&d, s, {{"g1", 900}, {"g2", 900}}, &out);
  EXPECT_EQ(Changes(out, "g1"), (std::vector<std::string>{"->no action"}));
  for (int s = 10; s < 24; ++s) Second(&d, s, {{"g2", 900}}, &out);  // g1 silent since 9: 14 s
  EXPECT_EQ(Changes(out, "g1"), (std::vector<std::string>{"->no action"}));
  EXPECT_FALSE(d.devices().begin()->second.stale);
  DownsampleOutput stale;
  Second(&d, 24, {{"g2", 900}}, &stale);  // 15 s
  ASSERT_EQ(Changes(stale, "g1"), (std::vector<std::string>{"no action->stale"}));
  EXPECT_EQ(stale.alarms[0].reason, "silent for 15s");
  EXPECT_EQ(stale.alarms[0].time_ns, kT0 + 24 * kSec);
  std::vector<std::string> rows = CanonicalPoints(stale.points);
  EXPECT_NE(std::find(rows.begin(), rows.end(),
                      "genData,generatorID=g1,region=US alarm=\"stale\", " + std::to_string(kT0 + 24 * kSec)),
            rows.end());
  EXPECT_EQ(d.counters().stale_alarms, 1);
  DownsampleOutput quiet;
  for (int s = 25; s < 60; ++s) Second(&d, s, {{"g2", 900}}, &quiet);
  EXPECT_TRUE(Changes(quiet, "g1").empty());  // no second change while it stays silent
  EXPECT_TRUE(Changes(quiet, "g2").empty());
  DownsampleOutput back;
  Second(&d, 60, {{"g1", 100}, {"g2", 900}}, &back);  // reports again, fuel low
  ASSERT_EQ(Changes(back, "g1"), (std::vector<std::string>{"stale->refuel"}));
  EXPECT_EQ(back.alarms[0].reason, "reported again");
  DownsampleOutput after;
  for (int s = 61; s < 80; ++s) Second(&d, s, {{"g1", 100}, {"g2", 900}}, &after);
  EXPECT_TRUE(Changes(after, "g1").empty());  // its windows agree: refuel
  EXPECT_FALSE(d.devices().begin()->second.stale);
}

TEST(DeviceLiveness, AWindowClosingAfterTheStaleMarkKeepsTheAlarmStale) {
  // Lateness 30 s: g1's last window closes well after it went stale.
  Downsampler d(FiveSecondSeed({{"EDGELINE_DOWNSAMPLE_LATENESS", "30s"}}));
  DownsampleOutput out;
  for (int s = 0; s < 10; ++s) Second(&d, s, {{"g1", 900}, {"g2", 900}}, &out);
  for (int s = 10; s < 60; ++s) Second(&d, s, {{"g2", 900}}, &out);
  // Stale at 24 s, before any window closed; its windows closing later leave it stale.
  EXPECT_EQ(Changes(out, "g1"), (std::vector<std::string>{"->stale"}));
  int g1_rows = 0;
  for (const Point& p : out.points) g1_rows += p.tags[0].second == "g1";
  EXPECT_EQ(g1_rows, 3);  // windows 0-5 and 5-10 with their values, and the stale row
}

TEST(DeviceLiveness, ARestartNeitherForgetsAStaleDeviceNorRaisesAFalseOne) {
  Downsampler first(FiveSecondSeed());
  DownsampleOutput out;
  for (int s = 0; s < 10; ++s) Second(&first, s, {{"g1", 900}, {"g2", 900}, {"g3", 900}}, &out);
  for (int s = 10; s < 30; ++s) Second(&first, s, {{"g2", 900}, {"g3", 900}}, &out);  // g1 stale at 24
  for (int s = 30; s < 35; ++s) Second(&first, s, {{"g2", 900}}, &out);  // g3 silent 5 s at the crash
  ASSERT_EQ(Changes(out, "g1").back(), "no action->stale");
  const std::string state = first.SaveState();

  // The agent comes back 10 minutes later (steady time is new after a restart).
  Downsampler second(FiveSecondSeed());
  ASSERT_TRUE(second.RestoreState(state).ok());
  DownsampleOutput resumed;
  const int64_t wall = kT0 + 635 * kSec, steady = 77 * kSec;
  second.CheckStale(wall, steady, &resumed);
  EXPECT_TRUE(resumed.alarms.empty()) << "waiting for the agent is not silence";
  for (int s = 0; s <= 15; ++s) {
    EXPECT_TRUE(resumed.alarms.empty()) << s;
    second.NoteArrival(wall + s * kSec, steady + s * kSec);
    second.Add(P("g2", wall + s * kSec, 900), &resumed);
    second.CheckStale(wall + s * kSec, steady + s * kSec, &resumed);
  }
  EXPECT_EQ(Changes(resumed, "g3"), (std::vector<std::string>{"no action->stale"}));
  EXPECT_TRUE(Changes(resumed, "g1").empty()) << "still stale: no second change";
  auto summary = SummarizeDownsampleState(second.SaveState());
  ASSERT_TRUE(summary.ok());
  ASSERT_EQ(summary->devices.size(), 3u);
  EXPECT_EQ(summary->devices[0].tags[0].second, "g1");  // stale longest first
  EXPECT_EQ(summary->devices[0].reason, "silent");
  EXPECT_EQ(summary->devices[0].last_seen_ns, kT0 + 9 * kSec);
  EXPECT_EQ(summary->devices[1].tags[0].second, "g3");
  EXPECT_EQ(summary->devices[2].tags[0].second, "g2");
  EXPECT_FALSE(summary->devices[2].stale);
  EXPECT_EQ(summary->counters.stale_alarms, 2);
}

TEST(DeviceLiveness, AnOfflineStatusIsSilenceAtOnce) {
  Downsampler d(FiveSecondSeed({{"EDGELINE_DEVICE_STATUS_TOPICS", "emergency_generator/+/status"}}));
  DownsampleOutput out;
  for (int s = 0; s < 3; ++s) Second(&d, s, {{"g1", 900}, {"g2", 900}}, &out);
  auto status = [&](const char* g, const char* value, int s) {
    Point p;
    p.measurement = "deviceStatus";
    p.tags = {{"generatorID", g}};
    FieldValue v;
    v.type = FieldType::kString;
    v.s = value;
    p.fields = {{"status", v}};
    p.timestamp_ns = kT0 + s * kSec;
    DownsampleOutput o;
    d.NoteArrival(kT0 + s * kSec, kS0 + s * kSec);
    d.Add(p, &o);
    return o;
  };
  EXPECT_TRUE(status("g1", "online", 3).alarms.empty());
  DownsampleOutput offline = status("g1", "OFFLINE", 4);
  ASSERT_EQ(Changes(offline, "g1"), (std::vector<std::string>{"->stale"}));  // no window closed yet
  EXPECT_EQ(offline.alarms[0].reason, "offline");
  EXPECT_EQ(offline.alarms[0].time_ns, kT0 + 4 * kSec);
  EXPECT_TRUE(status("g1", "offline", 5).alarms.empty());  // a retained repeat changes nothing
  EXPECT_EQ(d.counters().status_points, 3);
  EXPECT_EQ(d.counters().points_filtered, 0);
  EXPECT_EQ(d.devices().size(), 2u);  // the status points are no device of their own
  DownsampleOutput back;
  Second(&d, 6, {{"g1", 900}}, &back);
  EXPECT_EQ(Changes(back, "g1"), (std::vector<std::string>{"stale->no action"}));
}

TEST(DeviceLiveness, OffMeansNeverStaleAndWithoutRulesTheOutputIsAlarm) {
  Downsampler off(FiveSecondSeed({{"EDGELINE_DOWNSAMPLE_STALE_AFTER", "0"}}));
  DownsampleOutput out;
  Second(&off, 0, {{"g1", 900}}, &out);
  for (int s = 1; s < 300; ++s) Second(&off, s, {}, &out);
  EXPECT_EQ(off.counters().stale_alarms, 0);
  EXPECT_EQ(off.devices().size(), 1u);  // still tracked for `edgeline status`

  Downsampler plain(SeedConfig({{"EDGELINE_DOWNSAMPLE_EVERY", "5s"}, {"EDGELINE_DOWNSAMPLE_ALARM", ""},
                                {"EDGELINE_DOWNSAMPLE_STALE_AFTER", "20s"}}));
  DownsampleOutput o;
  Second(&plain, 0, {{"g1", 900}}, &o);
  for (int s = 1; s <= 20; ++s) Second(&plain, s, {}, &o);
  EXPECT_EQ(Changes(o, "g1"), (std::vector<std::string>{"->stale"}));
  Second(&plain, 21, {{"g1", 900}}, &o);
  EXPECT_EQ(Changes(o, "g1"), (std::vector<std::string>{"->stale", "stale->ok"}));
}

TEST(DeviceLiveness, OnlyTheOutputsADeviceHasGoStale) {
  Downsampler d(FiveSecondSeed(
      {{"EDGELINE_DOWNSAMPLE_ALARM", "alarm:fuel<500?refuel:no action;heavy:load>50?high:normal;"
                                     "overheat:temperature>90?hot:ok"}}));
  DownsampleOutput out;
  for (int s = 0; s < 10; ++s) Second(&d, s, {{"g1", 900}, {"g2", 900}}, &out);
  for (int s = 10; s < 25; ++s) Second(&d, s, {{"g2", 900}}, &out);
  std::vector<std::string> outputs;
  for (const AlarmChange& a : out.alarms) {
    if (a.group_tags[0].second == "g1" && a.value == "stale") outputs.push_back(a.output);
  }
  EXPECT_EQ(outputs, (std::vector<std::string>{"alarm", "heavy"}));  // no temperature, no overheat
  for (const Point& p : out.points) {
    for (const auto& [name, value] : p.fields) EXPECT_NE(name, "overheat");
  }
}

TEST(DeviceLiveness, AnOlderWindowClosingAfterRecoveryDoesNotPullTheAlarmBack) {
  // Lateness 60 s: g1's windows from before its silence close well after it reported again.
  Downsampler d(FiveSecondSeed({{"EDGELINE_DOWNSAMPLE_LATENESS", "60s"}}));
  DownsampleOutput out;
  for (int s = 0; s < 10; ++s) Second(&d, s, {{"g1", 900}, {"g2", 900}}, &out);
  for (int s = 10; s < 30; ++s) Second(&d, s, {{"g2", 900}}, &out);
  for (int s = 30; s < 120; ++s) Second(&d, s, {{"g1", 100}, {"g2", 900}}, &out);
  EXPECT_EQ(Changes(out, "g1"), (std::vector<std::string>{"->stale", "stale->refuel"}));
  int g1_early_rows = 0;
  for (const Point& p : out.points) g1_early_rows += p.tags[0].second == "g1" && *p.timestamp_ns < kT0 + 10 * kSec;
  EXPECT_EQ(g1_early_rows, 2);  // the older windows' rows are written all the same
}

TEST(DeviceLiveness, AStateFromBeforeLivenessTrackingStillKnowsItsDevices) {
  Downsampler first(FiveSecondSeed());
  DownsampleOutput out;
  for (int s = 0; s < 10; ++s) Second(&first, s, {{"g1", 900}, {"g2", 900}}, &out);
  nlohmann::json old = nlohmann::json::parse(first.SaveState());
  old.erase("devices");
  Downsampler second(FiveSecondSeed());
  ASSERT_TRUE(second.RestoreState(old.dump()).ok());
  ASSERT_EQ(second.devices().size(), 2u);
  EXPECT_EQ(second.devices().begin()->second.tags,
            (std::vector<std::pair<std::string, std::string>>{{"generatorID", "g1"}}));
  DownsampleOutput later;
  for (int s = 100; s <= 115; ++s) Second(&second, s, {{"g2", 900}}, &later);  // g1 silent since the restart
  EXPECT_EQ(Changes(later, "g1"), (std::vector<std::string>{"no action->stale"}));
}

TEST(DeviceLiveness, ARetainedOfflineIsNotNewsButALiveOneIs) {
  Downsampler d(FiveSecondSeed({{"EDGELINE_DEVICE_STATUS_TOPICS", "emergency_generator/+/status"}}));
  DownsampleOutput out;
  Second(&d, 0, {{"g1", 900}}, &out);
  auto offline = [&](bool retained) {
    Point p;
    p.measurement = "deviceStatus";
    p.tags = {{"generatorID", "g1"}};
    FieldValue v;
    v.type = FieldType::kString;
    v.s = "offline";
    p.fields = {{"status", v}};
    if (retained) {
      FieldValue r;
      r.type = FieldType::kBool;
      r.b = true;
      p.fields.emplace_back("retained", r);
    }
    p.timestamp_ns = kT0 + kSec;
    DownsampleOutput o;
    d.Add(p, &o);
    return o.alarms.size();
  };
  EXPECT_EQ(offline(true), 0u);
  EXPECT_EQ(offline(false), 1u);
}

TEST(DeviceLiveness, SilenceCountsFromWhenIngestCameBackAndSurvivesARebuild) {
  Downsampler d(FiveSecondSeed());
  DownsampleOutput out;
  Second(&d, 0, {{"g1", 900}}, &out);
  d.RestartSilence(kS0 + 10 * kSec);  // the broker was unreachable until 10 s
  d.CheckStale(kT0 + 24 * kSec, kS0 + 24 * kSec, &out);
  EXPECT_EQ(Changes(out, "g1"), (std::vector<std::string>{}));
  EXPECT_FALSE(d.devices().begin()->second.stale);
  // A rebuild from the stored state (after a failed commit) keeps the steady readings.
  Downsampler rebuilt(FiveSecondSeed());
  ASSERT_TRUE(rebuilt.RestoreState(d.SaveState()).ok());
  rebuilt.CarryLivenessFrom(d);
  DownsampleOutput stale;
  rebuilt.CheckStale(kT0 + 25 * kSec, kS0 + 25 * kSec, &stale);
  EXPECT_EQ(stale.alarms.size(), 1u);
  EXPECT_EQ(stale.alarms.at(0).reason, "silent for 15s");
}

TEST(DeviceLiveness, LastSeenFollowsTheClockBack) {
  Downsampler d(FiveSecondSeed());
  DownsampleOutput out;
  Second(&d, 3600, {{"g1", 900}}, &out);  // a clock an hour ahead
  Second(&d, 1, {{"g1", 900}}, &out);     // set right
  EXPECT_EQ(d.devices().begin()->second.last_seen_ns, kT0 + kSec);
}

// Through the task and a real queue on a FakeClock: the stale alarm record is committed with
// the step, retained topic and all, and a restart with the agent down for a while raises nothing.
TEST_F(DownsampleTaskTest, SilentGeneratorGetsAStaleAlarmRecordAndLosesItWhenItReports) {
  DownsampleConfig config = FiveSecondSeed({{"EDGELINE_ALARM_TOPIC", "edgeline/alarms"}});
  auto queue = Open("stale.db");
  ASSERT_TRUE(queue->RegisterConsumer("alarm-reader", std::string(kAlarmStream)).ok());
  auto task = std::make_unique<DownsampleTask>(config, queue.get(), &clock_);
  ASSERT_TRUE(task->Start().ok());
  auto publish = [&](std::vector<std::pair<const char*, double>> fuel) {
    BatchInput b;
    for (const auto& [g, f] : fuel) b.lines.push_back(FormatPoint(P(g, clock_.WallNowNs(), f)));
    if (!b.lines.empty()) {
      ASSERT_TRUE(queue->Append({b}, {}).ok());
    }
    task->Step();
    clock_.AdvanceNs(kSec);
  };
  for (int s = 0; s < 10; ++s) publish({{"g1", 900}, {"g2", 900}});
  for (int s = 0; s < 25; ++s) publish({{"g2", 900}});  // g1 silent for 25 s
  auto values = [&]() {
    std::vector<std::string> seen;
    auto records = queue->Read("alarm-reader", 1'000'000);
    EXPECT_TRUE(records.ok());
    for (const Batch& b : *records) {
      for (const auto& line : b.lines) {
        auto record = nlohmann::json::parse(line);
        auto payload = nlohmann::json::parse(record["payload"].get<std::string>());
        if (record["topic"] == "edgeline/alarms/g1/alarm") seen.push_back(payload["value"].get<std::string>());
      }
    }
    return seen;
  };
  EXPECT_EQ(values(), (std::vector<std::string>{"no action", "stale"}));
  // Restart after 10 minutes down: g2 was merely waiting for the agent.
  task.reset();
  queue.reset();
  clock_.AdvanceNs(10 * kMin);
  queue = Open("stale.db");
  ASSERT_TRUE(queue->RegisterConsumer("alarm-reader", std::string(kAlarmStream)).ok());
  task = std::make_unique<DownsampleTask>(config, queue.get(), &clock_);
  ASSERT_TRUE(task->Start().ok());
  for (int s = 0; s < 5; ++s) publish({});  // g2's messages are still on their way from the broker
  for (int s = 0; s < 5; ++s) publish({{"g2", 900}});
  EXPECT_EQ(task->engine().counters().stale_alarms, 1);
  publish({{"g1", 900}, {"g2", 900}});
  EXPECT_EQ(values(), (std::vector<std::string>{"no action", "stale", "no action"}));
}

// The broker unreachable for longer than the stale time: nothing could come in, so nobody is
// stale; silence counts again from when ingest is back.
TEST_F(DownsampleTaskTest, NoDeviceIsStaleWhileIngestIsDisconnected) {
  DownsampleConfig config = FiveSecondSeed({{"EDGELINE_ALARM_TOPIC", "edgeline/alarms"}});
  auto queue = Open("disconnected.db");
  bool connected = true;
  DownsampleTaskOptions options;
  options.ingest_connected = [&] { return connected; };
  DownsampleTask task(config, queue.get(), &clock_, options);
  ASSERT_TRUE(task.Start().ok());
  BatchInput b;
  b.lines = {FormatPoint(P("g1", clock_.WallNowNs(), 900))};
  ASSERT_TRUE(queue->Append({b}, {}).ok());
  task.Step();
  connected = false;
  for (int s = 0; s < 60; ++s) {
    clock_.AdvanceNs(kSec);
    task.Step();
  }
  EXPECT_EQ(task.engine().counters().stale_alarms, 0);
  connected = true;
  for (int s = 0; s < 14; ++s) {
    clock_.AdvanceNs(kSec);
    task.Step();
  }
  EXPECT_EQ(task.engine().counters().stale_alarms, 0);
  clock_.AdvanceNs(kSec);
  task.Step();
  EXPECT_EQ(task.engine().counters().stale_alarms, 1);
}

}  // namespace
}  // namespace edgeline
