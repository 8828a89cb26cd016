// BuildStatusReport / RenderStatusText over a real temporary SQLite queue and a FakeClock:
// the documented JSON shape (docs/STATUS.md), agent liveness, degraded conditions, and a
// read-only open of a file whose writer was SIGKILLed with its WAL still present.
#include "agent/status_report.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "gtest/gtest.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

using nlohmann::json;

class StatusReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.config.path = dir_.File("queue.db");
    options_.config.sync = SyncMode::kNormal;
    options_.clock = &clock_;
  }

  std::unique_ptr<Queue> Open(bool read_only = false) {
    QueueOpenOptions o = options_;
    o.read_only = read_only;
    auto q = OpenSqliteQueue(o);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? std::move(q).value() : nullptr;
  }

  // What the daemon's housekeeping thread writes, for a live agent (this process).
  void WriteLiveAgentState(Queue* q, int64_t pid = ::getpid()) {
    ASSERT_TRUE(q->SetAgentState({{"pid", std::to_string(pid)},
                                  {"running", "1"},
                                  {"heartbeat_ns", std::to_string(clock_.WallNowNs())},
                                  {"mqtt_sessions", "1"},
                                  {"mqtt_sessions_connected", "1"},
                                  {"mqtt_last_error", ""},
                                  {"last_message_ns", std::to_string(clock_.WallNowNs())},
                                  {"messages", "3"},
                                  {"committed_points", "3"}})
                    .ok());
  }

  static BatchInput Points(int n) {
    BatchInput b;
    for (int i = 0; i < n; ++i) b.lines.push_back("genData,generatorID=g fuel=" + std::to_string(i) + " 1000");
    b.min_ts_ns = b.max_ts_ns = 1000;
    return b;
  }

  static SinkAttempt Success(int64_t sent) {
    SinkAttempt a;
    a.state = SinkState::kOk;
    a.last_code = 204;
    a.sent_points = sent;
    return a;
  }

  json Report(Queue* q) {
    auto r = BuildStatusReport(q, options_.config.path, clock_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : json::object();
  }

  static bool HasProblem(const json& report, const std::string& needle) {
    for (const auto& p : report["problems"]) {
      if (p.get<std::string>().find(needle) != std::string::npos) return true;
    }
    return false;
  }

  TempDir dir_;
  FakeClock clock_;
  QueueOpenOptions options_;
};

TEST_F(StatusReportTest, HealthyReportHasEveryDocumentedField) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  auto seqs = q->Append({Points(3)}, {});
  ASSERT_TRUE(seqs.ok());
  ASSERT_TRUE(q->Ack("influx", seqs->at(0), Success(3), {}).ok());
  WriteLiveAgentState(q.get());

  json r = Report(q.get());
  for (const char* key : {"time_ns", "healthy", "problems", "agent", "queue", "sinks"}) {
    EXPECT_TRUE(r.contains(key)) << key;
  }
  for (const char* key :
       {"running", "pid", "heartbeat_ns", "mqtt_connected", "mqtt_sessions", "mqtt_sessions_connected",
        "mqtt_last_error", "last_message_ns", "messages", "committed_points"}) {
    EXPECT_TRUE(r["agent"].contains(key)) << "agent." << key;
  }
  for (const char* key : {"path", "batches", "points", "bytes", "raw_bytes", "dead_letters", "ingest_rejected",
                          "dropped_points_total", "recovered_from"}) {
    EXPECT_TRUE(r["queue"].contains(key)) << "queue." << key;
  }
  ASSERT_EQ(r["sinks"].size(), 1u);
  const json& s = r["sinks"][0];
  for (const char* key : {"name", "stream", "state", "pending_points", "pending_bytes", "oldest_pending_age_s", "lag_s",
                          "last_success_ns", "last_attempt_ns", "last_code", "last_error", "sent_points",
                          "dropped_points", "dead_lettered", "consecutive_failures", "next_retry_ns", "cursor_seq"}) {
    EXPECT_TRUE(s.contains(key)) << "sinks[0]." << key;
  }

  EXPECT_TRUE(r["healthy"].get<bool>()) << r.dump(2);
  EXPECT_TRUE(r["problems"].empty());
  EXPECT_EQ(r["time_ns"].get<int64_t>(), clock_.WallNowNs());
  EXPECT_TRUE(r["agent"]["running"].get<bool>());
  EXPECT_TRUE(r["agent"]["mqtt_connected"].get<bool>());
  EXPECT_EQ(r["agent"]["pid"].get<int64_t>(), ::getpid());
  EXPECT_EQ(r["agent"]["messages"].get<int64_t>(), 3);
  EXPECT_EQ(r["queue"]["path"].get<std::string>(), options_.config.path);
  EXPECT_EQ(r["queue"]["batches"].get<int64_t>(), 0);  // acknowledged, so collected
  EXPECT_EQ(s["name"].get<std::string>(), "influx");
  EXPECT_EQ(s["stream"].get<std::string>(), "raw");
  EXPECT_EQ(s["state"].get<std::string>(), "ok");
  EXPECT_EQ(s["last_code"].get<int>(), 204);
  EXPECT_EQ(s["sent_points"].get<int64_t>(), 3);
  EXPECT_EQ(s["pending_points"].get<int64_t>(), 0);
  EXPECT_EQ(s["cursor_seq"].get<int64_t>(), seqs->at(0));
  EXPECT_EQ(s["lag_s"].get<double>(), 0.0);
}

TEST_F(StatusReportTest, PendingDataShowsAgeAndLag) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  ASSERT_TRUE(q->Append({Points(4)}, {}).ok());
  clock_.AdvanceNs(10 * kNsPerSec);
  WriteLiveAgentState(q.get());
  json r = Report(q.get());
  const json& s = r["sinks"][0];
  EXPECT_EQ(s["state"].get<std::string>(), "new");
  EXPECT_EQ(s["pending_points"].get<int64_t>(), 4);
  EXPECT_GT(s["pending_bytes"].get<int64_t>(), 0);
  EXPECT_DOUBLE_EQ(s["oldest_pending_age_s"].get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(s["lag_s"].get<double>(), 10.0);
  EXPECT_EQ(r["queue"]["points"].get<int64_t>(), 4);
  EXPECT_TRUE(r["healthy"].get<bool>()) << r.dump(2);  // pending alone is not a problem
}

TEST_F(StatusReportTest, StaleHeartbeatOfALiveProcessIsADiskError) {
  // The agent writes its state every second; alive but silent means it cannot write the file.
  auto q = Open();
  WriteLiveAgentState(q.get());
  clock_.AdvanceNs(6 * kNsPerSec);  // default stale_after is 5 s
  json r = Report(q.get());
  EXPECT_FALSE(r["agent"]["running"].get<bool>());
  EXPECT_EQ(r["agent"]["state"].get<std::string>(), "disk-error");
  EXPECT_FALSE(r["agent"]["mqtt_connected"].get<bool>());
  EXPECT_EQ(r["agent"]["mqtt_sessions_connected"].get<int64_t>(), 0);
  EXPECT_FALSE(r["healthy"].get<bool>());
  EXPECT_TRUE(HasProblem(r, "cannot write the queue file")) << r.dump(2);
  EXPECT_FALSE(HasProblem(r, "agent is not running")) << r.dump(2);
  EXPECT_NE(RenderStatusText(r).find("disk-error"), std::string::npos);
}

TEST_F(StatusReportTest, StaleHeartbeatOfAGoneProcessMeansNotRunning) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  auto q = Open();
  WriteLiveAgentState(q.get(), child);
  clock_.AdvanceNs(6 * kNsPerSec);
  json r = Report(q.get());
  EXPECT_EQ(r["agent"]["state"].get<std::string>(), "stopped");
  EXPECT_TRUE(HasProblem(r, "agent is not running")) << r.dump(2);
}

TEST_F(StatusReportTest, FreshHeartbeatJustInsideTheWindowIsRunning) {
  auto q = Open();
  WriteLiveAgentState(q.get());
  clock_.AdvanceNs(4 * kNsPerSec);
  EXPECT_TRUE(Report(q.get())["agent"]["running"].get<bool>());
}

TEST_F(StatusReportTest, DeadPidMeansNotRunning) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);  // reaped: the pid no longer exists
  auto q = Open();
  WriteLiveAgentState(q.get(), child);
  json r = Report(q.get());
  EXPECT_FALSE(r["agent"]["running"].get<bool>());
  EXPECT_TRUE(HasProblem(r, "agent is not running"));
}

TEST_F(StatusReportTest, CleanStopMeansNotRunning) {
  auto q = Open();
  WriteLiveAgentState(q.get());
  ASSERT_TRUE(q->SetAgentState({{"running", "0"}}).ok());
  EXPECT_FALSE(Report(q.get())["agent"]["running"].get<bool>());
}

TEST_F(StatusReportTest, DisconnectedSessionIsDegraded) {
  auto q = Open();
  WriteLiveAgentState(q.get());
  ASSERT_TRUE(q->SetAgentState(
                   {{"mqtt_sessions", "2"}, {"mqtt_sessions_connected", "1"}, {"mqtt_last_error", "connection lost"}})
                  .ok());
  json r = Report(q.get());
  EXPECT_TRUE(r["agent"]["running"].get<bool>());
  EXPECT_FALSE(r["agent"]["mqtt_connected"].get<bool>());
  EXPECT_TRUE(HasProblem(r, "1 of 2 sessions disconnected")) << r.dump(2);
  std::string text = RenderStatusText(r);
  EXPECT_NE(text.find("connection lost"), std::string::npos) << text;
}

TEST_F(StatusReportTest, RunningWithoutAnyMqttSessionIsDegraded) {
  // MqttIngest::Start gives up when it cannot create a client: the agent runs, nothing is ingested.
  auto q = Open();
  WriteLiveAgentState(q.get());
  ASSERT_TRUE(q->SetAgentState({{"mqtt_sessions", "0"}, {"mqtt_sessions_connected", "0"}}).ok());
  json r = Report(q.get());
  EXPECT_TRUE(r["agent"]["running"].get<bool>());
  EXPECT_FALSE(r["agent"]["mqtt_connected"].get<bool>());
  EXPECT_FALSE(r["healthy"].get<bool>());
  EXPECT_TRUE(HasProblem(r, "MQTT: no session")) << r.dump(2);
}

TEST_F(StatusReportTest, FailingCommitsAreDegraded) {
  auto q = Open();
  WriteLiveAgentState(q.get());
  EXPECT_TRUE(Report(q.get())["healthy"].get<bool>());
  ASSERT_TRUE(q->SetAgentState({{"commit_failing", "1"}, {"commit_failures", "7"}}).ok());
  json r = Report(q.get());
  EXPECT_TRUE(r["agent"]["commit_failing"].get<bool>());
  EXPECT_EQ(r["agent"]["commit_failures"], 7);
  EXPECT_TRUE(HasProblem(r, "commits to the queue are failing")) << r.dump(2);
  EXPECT_EQ(r["agent"]["state"].get<std::string>(), "disk-error");
  ASSERT_TRUE(q->SetAgentState({{"commit_problem", "queue-full"}}).ok());
  r = Report(q.get());
  EXPECT_EQ(r["agent"]["state"].get<std::string>(), "queue-full");
  EXPECT_TRUE(HasProblem(r, "EDGELINE_QUEUE_MAX_BYTES")) << r.dump(2);
}

TEST_F(StatusReportTest, FailingSinkIsDegraded) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  ASSERT_TRUE(q->Append({Points(2)}, {}).ok());
  WriteLiveAgentState(q.get());
  SinkAttempt fail;
  fail.state = SinkState::kOffline;
  fail.last_code = 0;
  fail.last_error = "connection refused";
  fail.consecutive_failures = 3;
  fail.next_retry_ns = clock_.WallNowNs() + 30 * kNsPerSec;
  ASSERT_TRUE(q->RecordAttempt("influx", fail).ok());

  json r = Report(q.get());
  EXPECT_FALSE(r["healthy"].get<bool>());
  EXPECT_TRUE(HasProblem(r, "sink influx is failing (offline)")) << r.dump(2);
  const json& s = r["sinks"][0];
  EXPECT_EQ(s["consecutive_failures"].get<int>(), 3);
  EXPECT_EQ(s["last_error"].get<std::string>(), "connection refused");

  std::string text = RenderStatusText(r);
  EXPECT_NE(text.find("influx"), std::string::npos) << text;
  EXPECT_NE(text.find("offline"), std::string::npos) << text;
  EXPECT_NE(text.find("connection refused"), std::string::npos) << text;
  EXPECT_NE(text.find("failure #3"), std::string::npos) << text;
  EXPECT_NE(text.find("degraded"), std::string::npos) << text;
}

TEST_F(StatusReportTest, DroppedPointsAreDegraded) {
  options_.config.max_bytes = 1;  // every append drops what is already held
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  ASSERT_TRUE(q->Append({Points(5)}, {}).ok());
  ASSERT_TRUE(q->Append({Points(2)}, {}).ok());
  WriteLiveAgentState(q.get());
  json r = Report(q.get());
  EXPECT_EQ(r["sinks"][0]["dropped_points"].get<int64_t>(), 5);
  EXPECT_EQ(r["queue"]["dropped_points_total"].get<int64_t>(), 5);
  EXPECT_FALSE(r["healthy"].get<bool>());
  EXPECT_TRUE(HasProblem(r, "sink influx lost 5 points")) << r.dump(2);
}

TEST_F(StatusReportTest, RenderOfEmptyQueueDoesNotCrash) {
  auto q = Open();
  json r = Report(q.get());
  EXPECT_TRUE(r["sinks"].empty());
  EXPECT_FALSE(r["agent"]["running"].get<bool>());
  std::string text = RenderStatusText(r);
  EXPECT_NE(text.find("NOT running"), std::string::npos) << text;
  EXPECT_NE(text.find("no sinks registered"), std::string::npos) << text;
  EXPECT_NE(text.find(options_.config.path), std::string::npos) << text;
}

TEST_F(StatusReportTest, RenderShowsTheSinkRow) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  auto seqs = q->Append({Points(3)}, {});
  ASSERT_TRUE(seqs.ok());
  ASSERT_TRUE(q->Ack("influx", seqs->at(0), Success(3), {}).ok());
  WriteLiveAgentState(q.get());
  std::string text = RenderStatusText(Report(q.get()));
  EXPECT_NE(text.find("SINK"), std::string::npos) << text;
  bool row = false;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (line.rfind("influx", 0) == 0) {
      row = true;
      EXPECT_NE(line.find("ok"), std::string::npos) << line;
      EXPECT_NE(line.find("204"), std::string::npos) << line;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  EXPECT_TRUE(row) << text;
  EXPECT_NE(text.find("healthy"), std::string::npos) << text;
  EXPECT_EQ(text.find("degraded"), std::string::npos) << text;
}

// Per MQTT session: QoS 2 messages held until stored and redeliveries not stored again, in the
// JSON and the text, read from the queue file.
TEST_F(StatusReportTest, MqttSessionsShowHeldQos2AndSuppressedDuplicates) {
  auto q = Open();
  ASSERT_TRUE(q->PutMqttState("edgeline tcp://b:1883", "r-3", "packet").ok());
  ASSERT_TRUE(q->PutMqttState("edgeline tcp://b:1883", "s-9", "ours").ok());
  ASSERT_TRUE(q->CountSuppressedDuplicate("edgeline tcp://b:1883").ok());
  ASSERT_TRUE(q->CountSuppressedDuplicate("edgeline tcp://b:1883").ok());
  WriteLiveAgentState(q.get());
  json r = Report(q.get());
  ASSERT_EQ(r["mqtt_sessions"].size(), 1u) << r.dump();
  const json& m = r["mqtt_sessions"][0];
  EXPECT_EQ(m["session"], "edgeline tcp://b:1883");
  EXPECT_EQ(m["inbound_qos2"], 1);
  EXPECT_EQ(m["outbound_state"], 1);
  EXPECT_EQ(m["duplicates_suppressed"], 2);
  std::string text = RenderStatusText(r);
  EXPECT_NE(text.find("session edgeline tcp://b:1883: 1 QoS 2 held until stored, 2 redeliveries not stored again"),
            std::string::npos)
      << text;
}

TEST_F(StatusReportTest, ReadOnlyOpenWhileWriterIsOpen) {
  auto writer = Open();
  ASSERT_TRUE(writer->RegisterConsumer("influx", "raw").ok());
  ASSERT_TRUE(writer->Append({Points(3)}, {}).ok());
  WriteLiveAgentState(writer.get());
  auto reader = Open(/*read_only=*/true);
  ASSERT_NE(reader, nullptr);
  json r = Report(reader.get());
  EXPECT_EQ(r["queue"]["points"].get<int64_t>(), 3);
  EXPECT_EQ(r["sinks"][0]["pending_points"].get<int64_t>(), 3);
  EXPECT_TRUE(r["agent"]["running"].get<bool>());
}

TEST_F(StatusReportTest, ReadOnlyOpenAfterWriterWasKilled) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Commit, then die without closing: the WAL and its index stay behind, as after SIGKILL.
    QueueOpenOptions o = options_;
    auto q = OpenSqliteQueue(o);
    if (!q.ok()) ::_exit(2);
    if (!(*q)->RegisterConsumer("influx", "raw").ok()) ::_exit(3);
    if (!(*q)->Append({Points(3)}, {}).ok()) ::_exit(4);
    ::kill(::getpid(), SIGKILL);
    ::_exit(5);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exit " << WEXITSTATUS(wstatus);
  ASSERT_TRUE(std::filesystem::exists(options_.config.path + "-wal"));

  auto reader = Open(/*read_only=*/true);
  ASSERT_NE(reader, nullptr);
  json r = Report(reader.get());
  EXPECT_EQ(r["queue"]["points"].get<int64_t>(), 3);
  ASSERT_EQ(r["sinks"].size(), 1u);
  EXPECT_EQ(r["sinks"][0]["pending_points"].get<int64_t>(), 3);
  EXPECT_FALSE(r["agent"]["running"].get<bool>());
  // Reading must not have changed anything the agent will find on restart.
  reader.reset();
  auto writer = Open();
  auto stats = writer->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->points, 3);
  auto integrity = writer->IntegrityCheck();
  ASSERT_TRUE(integrity.ok());
  EXPECT_EQ(*integrity, "ok");
}

TEST_F(StatusReportTest, ReadOnlyOpenAfterCleanClose) {
  {
    auto writer = Open();
    ASSERT_TRUE(writer->RegisterConsumer("influx", "raw").ok());
    ASSERT_TRUE(writer->Append({Points(2)}, {}).ok());
  }  // the last connection closes: SQLite checkpoints and removes the WAL
  auto reader = Open(/*read_only=*/true);
  ASSERT_NE(reader, nullptr);
  json r = Report(reader.get());
  EXPECT_EQ(r["queue"]["points"].get<int64_t>(), 2);
  EXPECT_EQ(r["sinks"][0]["pending_points"].get<int64_t>(), 2);
}

TEST_F(StatusReportTest, ReadOnlyOpenOfMissingFileFails) {
  QueueOpenOptions o = options_;
  o.read_only = true;
  auto q = OpenSqliteQueue(o);
  EXPECT_FALSE(q.ok());
  EXPECT_FALSE(std::filesystem::exists(options_.config.path));
}

}  // namespace
}  // namespace edgeline

namespace edgeline {
namespace {

TEST(Sparkline, ScalesToTheMaximumAndShowsAnyBacklog) {
  EXPECT_EQ(Sparkline({0, 1, 50, 100}), "\u2581\u2582\u2585\u2588");
  EXPECT_EQ(Sparkline({0, 0}), "\u2581\u2581");
  EXPECT_EQ(Sparkline({}), "");
}

}  // namespace
}  // namespace edgeline

namespace edgeline {
namespace {

class InactiveSinkTest : public StatusReportTest {};

TEST_F(InactiveSinkTest, SinkOfAnEarlierConfigurationIsInactiveNotAProblem) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("kafka-raw", "raw").ok());
  SinkAttempt failing;
  failing.state = SinkState::kOffline;
  failing.consecutive_failures = 7;
  ASSERT_TRUE(q->RecordAttempt("kafka-raw", failing).ok());
  clock_.AdvanceNs(60'000'000'000);  // later, the agent restarts without Kafka
  ASSERT_TRUE(q->RegisterConsumer("influx", "raw").ok());
  WriteLiveAgentState(q.get());
  ASSERT_TRUE(q->SetAgentState({{"started_ns", std::to_string(clock_.WallNowNs())}}).ok());
  json r = Report(q.get());
  std::map<std::string, std::string> states;
  for (const auto& s : r["sinks"]) states[s["name"]] = s["state"];
  EXPECT_EQ(states["kafka-raw"], "inactive");
  EXPECT_EQ(states["influx"], "new");
  EXPECT_FALSE(HasProblem(r, "kafka-raw")) << r["problems"].dump();
  EXPECT_TRUE(r["healthy"].get<bool>()) << r["problems"].dump();
}

}  // namespace
}  // namespace edgeline
