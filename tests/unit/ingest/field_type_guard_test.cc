#include "ingest/field_type_guard.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/line_protocol.h"
#include "ingest/group_committer.h"
#include "ingest/mapping.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

Point Parsed(std::string_view line) {
  Result<Point> p = ParseLine(line);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : Point{};
}

class FieldTypeGuardTest : public ::testing::Test {
 protected:
  FakeClock clock_{1'700'000'000'000'000'000};
  TempDir dir_;
  std::unique_ptr<Queue> queue_ = OpenTestQueue(dir_.File("q.db"), &clock_);
};

TEST_F(FieldTypeGuardTest, DeclaredTypeRemovesOnlyTheWrongField) {
  FieldTypeGuard guard({{"temperature", FieldType::kFloat}}, nullptr, &clock_);
  Point p = Parsed(R"(genData,generatorID=g18 temperature="hot",fuel=5 1000)");
  std::optional<RefusedFields> refused = guard.Check(&p);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(FormatPoint(p), "genData,generatorID=g18 fuel=5 1000");
  EXPECT_EQ(refused->line, R"(genData,generatorID=g18 temperature="hot" 1000)");
  EXPECT_NE(refused->reason.find("field temperature is string, expected float"), std::string::npos) << refused->reason;
  EXPECT_NE(refused->reason.find("EDGELINE_FIELD_TYPES"), std::string::npos) << refused->reason;

  Point good = Parsed("genData,generatorID=g1 temperature=186,fuel=277 1000");
  EXPECT_FALSE(guard.Check(&good).has_value());
  EXPECT_EQ(FormatPoint(good), "genData,generatorID=g1 temperature=186,fuel=277 1000");
}

TEST_F(FieldTypeGuardTest, APointLeftWithoutFieldsIsRefusedWhole) {
  FieldTypeGuard guard({{"temperature", FieldType::kFloat}, {"load", FieldType::kFloat}}, nullptr, &clock_);
  Point p = Parsed(R"(genData,generatorID=g18 temperature="hot",load=true 1000)");
  std::optional<RefusedFields> refused = guard.Check(&p);
  ASSERT_TRUE(refused.has_value());
  EXPECT_TRUE(p.fields.empty());
  EXPECT_EQ(refused->line, R"(genData,generatorID=g18 temperature="hot",load=true 1000)");
  EXPECT_NE(refused->reason.find("field load is boolean, expected float"), std::string::npos) << refused->reason;
}

TEST_F(FieldTypeGuardTest, LearnedTypesApplyPerMeasurementForADayAndSurviveReopening) {
  ASSERT_TRUE(queue_->RecordFieldTypes({{"genData", "temperature", FieldType::kString, "influxdb-raw", 0}}).ok());
  FieldTypeGuard guard({}, queue_.get(), &clock_);
  Point p = Parsed("genData,generatorID=g1 temperature=186,fuel=277 1000");
  std::optional<RefusedFields> refused = guard.Check(&p);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->line, "genData,generatorID=g1 temperature=186 1000");
  EXPECT_NE(refused->reason.find("learned by sink influxdb-raw"), std::string::npos) << refused->reason;
  EXPECT_EQ(FormatPoint(p), "genData,generatorID=g1 fuel=277 1000");

  Point other = Parsed("other,generatorID=g1 temperature=186 1000");  // another measurement
  EXPECT_FALSE(guard.Check(&other).has_value());

  // The store is the queue file: a new guard on a reopened queue knows it too.
  queue_.reset();
  queue_ = OpenTestQueue(dir_.File("q.db"), &clock_);
  FieldTypeGuard after_restart({}, queue_.get(), &clock_);
  Point again = Parsed("genData,generatorID=g2 temperature=180 2000");
  EXPECT_TRUE(after_restart.Check(&again).has_value());

  // A day after the server last confirmed it, the field goes to the server again.
  clock_.AdvanceNs(FieldTypeGuard::kLearnedTrustNs);
  Point day_later = Parsed("genData,generatorID=g2 temperature=180 3000");
  EXPECT_FALSE(after_restart.Check(&day_later).has_value());
}

TEST_F(FieldTypeGuardTest, ARecordLaterInTheRunIsSeenAtOnce) {
  FieldTypeGuard guard({}, queue_.get(), &clock_);
  Point before = Parsed("genData temperature=1 1");
  EXPECT_FALSE(guard.Check(&before).has_value());
  ASSERT_TRUE(queue_->RecordFieldTypes({{"genData", "temperature", FieldType::kString, "s", 0}}).ok());
  Point after = Parsed("genData temperature=1 2");
  EXPECT_TRUE(guard.Check(&after).has_value());
  // A newer record replaces the older one.
  ASSERT_TRUE(queue_->RecordFieldTypes({{"genData", "temperature", FieldType::kFloat, "s", 0}}).ok());
  Point back = Parsed("genData temperature=1 3");
  EXPECT_FALSE(guard.Check(&back).has_value());
  auto types = queue_->FieldTypes();
  ASSERT_TRUE(types.ok());
  ASSERT_EQ(types->size(), 1u);
  EXPECT_EQ((*types)[0].type, FieldType::kFloat);
  EXPECT_EQ((*types)[0].updated_ns, clock_.WallNowNs());
}

TEST_F(FieldTypeGuardTest, DeclaredTypesWinOverLearnedOnes) {
  ASSERT_TRUE(queue_->RecordFieldTypes({{"genData", "temperature", FieldType::kString, "s", 0}}).ok());
  FieldTypeGuard guard({{"temperature", FieldType::kFloat}}, queue_.get(), &clock_);
  Point p = Parsed("genData temperature=1 1");
  EXPECT_FALSE(guard.Check(&p).has_value());
}

// The first device to send a wrong type, then the fleet: with declared types only that device's
// field is refused, at ingest, and it is stored as a replayable dead letter of its own.
TEST_F(FieldTypeGuardTest, MappedJsonWithDeclaredTypesCommitsEveryGoodField) {
  MappingConfig config;
  FieldTypeGuard guard({{"temperature", FieldType::kFloat}, {"fuel", FieldType::kInteger}}, queue_.get(), &clock_);
  Mapper mapper(config, kDefaultMaxPayloadBytes, &guard);
  GroupCommitter committer(queue_.get(), &clock_, {});
  ASSERT_TRUE(committer
                  .Submit(mapper.Prepare("emergency_generator/g18",
                                         R"({"generatorID": "g18", "temperature": "hot", "fuel": 5})", 1000))
                  .ok());
  ASSERT_TRUE(committer
                  .Submit(mapper.Prepare("emergency_generator/g1",
                                         R"({"generatorID": "g1", "temperature": 186, "fuel": 277.0})", 2000))
                  .ok());
  ASSERT_TRUE(committer
                  .Submit(mapper.Prepare("emergency_generator/g2",
                                         R"({"generatorID": "g2", "temperature": 190, "fuel": 2.5})", 3000))
                  .ok());
  ASSERT_TRUE(queue_->RegisterConsumer("reader", "raw").ok());
  auto batches = queue_->Read("reader", 100);
  ASSERT_TRUE(batches.ok());
  std::vector<std::string> lines;
  for (const Batch& b : *batches) lines.insert(lines.end(), b.lines.begin(), b.lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"genData,generatorID=g18 fuel=5i 1000",
                                             "genData,generatorID=g1 fuel=277i,temperature=186 2000",
                                             "genData,generatorID=g2 temperature=190 3000"}));
  auto dead = queue_->DeadLetters("ingest", 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 2u);
  // Newest first.
  EXPECT_EQ((*dead)[0].payload, "genData,generatorID=g2 fuel=2.5 3000");
  EXPECT_EQ((*dead)[0].kind, DeadLetterKind::kRejected);
  EXPECT_EQ((*dead)[1].payload, R"(genData,generatorID=g18 temperature="hot" 1000)");
  EXPECT_EQ((*dead)[1].topic, "emergency_generator/g18");
  EXPECT_EQ(committer.counters().refused_fields.load(), 2);

  // A replay maps the dead letter's line again: still refused while the declaration stands.
  IngestMessage replay = mapper.Prepare((*dead)[1].topic, (*dead)[1].payload, 4000);
  EXPECT_TRUE(replay.mapped.lines.empty());
  ASSERT_EQ(replay.mapped.refused_fields.size(), 1u);
  EXPECT_TRUE(replay.mapped.errors.empty());
}

}  // namespace
}  // namespace edgeline
