// `edgeline dlq list --json` (the real binary) over a queue file holding dead letters written
// through the queue API: `payload` is the payload itself, not a JSON-encoded string inside a
// string (issue 13, item 6), whatever it holds: quotes, backslashes, line breaks, JSON text.
#include <filesystem>

#include "gtest/gtest.h"
#include "storage/queue.h"
#include "tests/support/harness.h"

namespace edgeline {
namespace {

class DlqListJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("edgeline-dlq-json");
    QueueOpenOptions options;
    options.config.path = dir_ + "/queue.db";
    options.config.sync = SyncMode::kNormal;
    auto queue = OpenSqliteQueue(options);
    ASSERT_TRUE(queue.ok()) << queue.status().ToString();
    queue_ = std::move(queue).value();
  }
  void TearDown() override {
    queue_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Add(const std::string& sink, const std::string& payload) {
    DeadLetter d;
    d.sink = sink;
    d.kind = DeadLetterKind::kRejected;
    d.reason = "test reason";
    d.topic = "plant/a";
    d.payload = payload;
    ASSERT_TRUE(queue_->Append({}, {d}).ok());
  }

  nlohmann::json List(const std::string& sink) {
    auto r = testing::RunCommand({EDGELINE_BINARY, "dlq", "list", "--json", "--sink", sink},
                                 {{"EDGELINE_QUEUE_PATH", dir_ + "/queue.db"}});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.output;
    return j;
  }

  std::string dir_;
  std::unique_ptr<Queue> queue_;
};

TEST_F(DlqListJsonTest, PayloadIsThePayloadStringNotJsonInsideAString) {
  const std::string json_payload = R"({"generatorID":"g1","temperature":"hot","note":"a \"quoted\" \\ word"})";
  const std::string lp_payload = "m,host=a\\ b v=\"two\nlines\" 1764000000000000000\nm v=1i";
  Add("ingest", json_payload);
  Add("influx", lp_payload);
  auto ingest = List("ingest");
  ASSERT_EQ(ingest.size(), 1u) << ingest.dump();
  ASSERT_TRUE(ingest[0]["payload"].is_string());
  EXPECT_EQ(ingest[0]["payload"].get<std::string>(), json_payload);
  auto influx = List("influx");
  ASSERT_EQ(influx.size(), 1u) << influx.dump();
  EXPECT_EQ(influx[0]["payload"].get<std::string>(), lp_payload);
  EXPECT_EQ(influx[0]["sink"], "influx");
  EXPECT_EQ(influx[0]["kind"], "rejected");
  EXPECT_EQ(influx[0]["reason"], "test reason");
  EXPECT_EQ(influx[0]["topic"], "plant/a");
}

TEST_F(DlqListJsonTest, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  Add("ingest", std::string("caf\xC3\xA9 \xFF\xFE end"));
  auto entries = List("ingest");
  ASSERT_EQ(entries.size(), 1u) << entries.dump();
  EXPECT_EQ(entries[0]["payload"].get<std::string>(), "caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD end");
}

}  // namespace
}  // namespace edgeline
