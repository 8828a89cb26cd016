// BuildStatusReport / RenderStatusText over a real temporary SQLite queue and a FakeClock:
// the documented JSON shape (docs/STATUS.md), agent liveness, degraded conditions, and a
// read-only open of a file whose writer was SIGKILLed with its WAL still present.
#include "agent/status_report.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "downsample/downsample_task.h"
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
  for (const char* key : {"running", "pid", "heartbeat_ns", "mqtt_connected", "mqtt_sessions",
                          "mqtt_sessions_connected", "mqtt_last_error", "last_message_ns", "messages",
                          "committed_points", "device_time_adjusted", "device_time_rejected"}) {
    EXPECT_TRUE(r["agent"].contains(key)) << "agent." << key;
  }
  for (const char* key :
       {"path", "batches", "points", "bytes", "counted_bytes", "file_bytes", "max_bytes", "full_policy", "raw_bytes",
        "dead_letters", "ingest_rejected", "dropped_points_total", "recovered_from"}) {
    EXPECT_TRUE(r["queue"].contains(key)) << "queue." << key;
  }
  for (const char* key : {"state", "bound_source", "headroom_bytes", "bytes_per_point", "estimate_min_points",
                          "points_left", "ingest_rate", "ingest_rate_window_s", "holds_s"}) {
    EXPECT_TRUE(r["capacity"].contains(key)) << "capacity." << key;
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

TEST_F(StatusReportTest, WrongDeviceClocksAreReportedAndRenderedOnlyWhenSeen) {
  auto q = Open();
  WriteLiveAgentState(q.get());
  json r = Report(q.get());
  EXPECT_EQ(r["agent"]["device_time_adjusted"].get<int64_t>(), 0);
  EXPECT_EQ(RenderStatusText(r).find("wrong device clocks"), std::string::npos);

  ASSERT_TRUE(q->SetAgentState({{"device_time_adjusted", "4"}, {"device_time_rejected", "2"}}).ok());
  r = Report(q.get());
  EXPECT_EQ(r["agent"]["device_time_adjusted"].get<int64_t>(), 4);
  EXPECT_EQ(r["agent"]["device_time_rejected"].get<int64_t>(), 2);
  EXPECT_TRUE(r["healthy"].get<bool>()) << r.dump(2);  // a device's clock is not the agent's health
  std::string text = RenderStatusText(r);
  EXPECT_NE(text.find("wrong device clocks: 4 points stamped with the receive time, 2 dead-lettered"),
            std::string::npos)
      << text;
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

// Outage capacity: the running agent records its ingest rate and its bound (housekeeping); status
// measures bytes per point from the file and says how long the queue absorbs the ingest.
class OutageCapacityTest : public StatusReportTest {
 protected:
  // What housekeeping adds to the live agent state.
  void WriteCapacityState(Queue* q, const std::string& rate, int64_t max_bytes, const std::string& policy) {
    WriteLiveAgentState(q);
    ASSERT_TRUE(q->SetAgentState({{"ingest_rate", rate},
                                  {"ingest_rate_window_s", "60.0"},
                                  {"queue_max_bytes", std::to_string(max_bytes)},
                                  {"queue_full_policy", policy}})
                    .ok());
  }

  // Holds `points` points in batches of 1000 (each sink's pending data during an outage).
  QueueStats Hold(Queue* q, int points) {
    EXPECT_TRUE(q->RegisterConsumer("influx", "raw").ok());
    for (int held = 0; held < points; held += 1000) {
      EXPECT_TRUE(q->Append({Points(std::min(1000, points - held))}, {}).ok());
    }
    auto stats = q->Stats();
    EXPECT_TRUE(stats.ok());
    return stats.ok() ? *stats : QueueStats{};
  }

  static std::string OutageLine(const std::string& text) {
    auto at = text.find("outage: ");
    if (at == std::string::npos) return "";
    return text.substr(at, text.find('\n', at) - at);
  }
};

TEST_F(OutageCapacityTest, HoldsForTheHeadroomOverMeasuredBytesPerPointTimesTheRate) {
  auto q = Open();
  const QueueStats stats = Hold(q.get(), 2000);
  ASSERT_EQ(stats.points, 2000);
  ASSERT_GT(stats.counted_bytes, stats.bytes);  // the bound counts more than the bodies
  // A bound with room for exactly 31 h at 1,000 points/s at this file's bytes per point.
  const int64_t room = stats.counted_bytes * 1000 * 31 * 3600 / 2000;
  ASSERT_EQ(room * 2000, stats.counted_bytes * 1000 * 31 * 3600);  // exact
  WriteCapacityState(q.get(), "1000.000", stats.counted_bytes + room, "drop-oldest");

  json r = Report(q.get());
  EXPECT_EQ(r["queue"]["counted_bytes"].get<int64_t>(), stats.counted_bytes);
  EXPECT_EQ(r["queue"]["file_bytes"].get<int64_t>(), q->Stats()->file_bytes);  // the WAL grew since Hold
  EXPECT_GT(r["queue"]["file_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(r["queue"]["max_bytes"].get<int64_t>(), stats.counted_bytes + room);
  EXPECT_EQ(r["queue"]["full_policy"], "drop-oldest");
  const json& c = r["capacity"];
  EXPECT_EQ(c["state"], "holds") << c.dump();
  EXPECT_EQ(c["bound_source"], "agent");
  EXPECT_EQ(c["headroom_bytes"].get<int64_t>(), room);
  EXPECT_DOUBLE_EQ(c["bytes_per_point"].get<double>(), stats.counted_bytes / 2000.0);
  EXPECT_EQ(c["points_left"].get<int64_t>(), 1000 * 31 * 3600);
  EXPECT_DOUBLE_EQ(c["ingest_rate"].get<double>(), 1000.0);
  EXPECT_DOUBLE_EQ(c["ingest_rate_window_s"].get<double>(), 60.0);
  EXPECT_NEAR(c["holds_s"].get<double>(), 31 * 3600.0, 1e-6);

  const std::string text = RenderStatusText(r);
  EXPECT_EQ(OutageLine(text), "outage: holds 31 h more at 1,000 points/s (then drop-oldest)") << text;
  const double bpp = stats.counted_bytes / 2000.0;
  char measured[64];
  if (bpp < 10) {
    std::snprintf(measured, sizeof(measured), "%.1f B/point measured over 2,000 points", bpp);
  } else {
    std::snprintf(measured, sizeof(measured), "%lld B/point measured over 2,000 points",
                  static_cast<long long>(std::llround(bpp)));
  }
  EXPECT_NE(text.find(measured), std::string::npos) << text;
  EXPECT_NE(text.find(" counted of the "), std::string::npos) << text;
  EXPECT_NE(text.find(" file on disk"), std::string::npos) << text;
  EXPECT_TRUE(r["healthy"].get<bool>()) << r.dump(2);  // the figure alone is not a problem
}

TEST_F(OutageCapacityTest, TwiceTheRateHoldsHalfAsLongAndSaysBackpressure) {
  auto q = Open();
  const QueueStats stats = Hold(q.get(), 4000);
  const double bpp = stats.counted_bytes / 4000.0;
  const int64_t max_bytes = stats.counted_bytes + 50'000'000;
  WriteCapacityState(q.get(), "2500.5", max_bytes, "backpressure");
  json r = Report(q.get());
  const json& c = r["capacity"];
  EXPECT_EQ(c["state"], "holds");
  EXPECT_NEAR(c["holds_s"].get<double>(), 50'000'000 / (bpp * 2500.5), 1e-6);
  EXPECT_EQ(c["points_left"].get<int64_t>(), int64_t{50'000'000} * 4000 / stats.counted_bytes);
  EXPECT_EQ(r["queue"]["full_policy"], "backpressure");
  const std::string line = OutageLine(RenderStatusText(r));
  EXPECT_NE(line.find(" more at 2,501 points/s (then backpressure)"), std::string::npos) << line;
}

TEST_F(OutageCapacityTest, FewerThanAThousandPointsGiveNoEstimateYet) {
  auto q = Open();
  const QueueStats stats = Hold(q.get(), 999);
  WriteCapacityState(q.get(), "1000", stats.counted_bytes + 1'000'000, "drop-oldest");
  json r = Report(q.get());
  const json& c = r["capacity"];
  EXPECT_EQ(c["state"], "not-enough-data");
  EXPECT_TRUE(c["bytes_per_point"].is_null());
  EXPECT_TRUE(c["holds_s"].is_null());
  EXPECT_TRUE(c["points_left"].is_null());
  EXPECT_EQ(c["headroom_bytes"].get<int64_t>(), 1'000'000);
  EXPECT_EQ(c["estimate_min_points"].get<int64_t>(), 1000);
  const std::string line = OutageLine(RenderStatusText(r));
  EXPECT_NE(line.find("not enough data yet"), std::string::npos) << line;
  EXPECT_NE(line.find("999 of 1,000 points held"), std::string::npos) << line;
  EXPECT_NE(line.find("before drop-oldest at 1,000 points/s"), std::string::npos) << line;
}

TEST_F(OutageCapacityTest, NoIngestHoldsIndefinitely) {
  auto q = Open();
  const QueueStats stats = Hold(q.get(), 1000);
  WriteCapacityState(q.get(), "0.000", stats.counted_bytes + 1'000'000, "drop-oldest");
  json r = Report(q.get());
  EXPECT_EQ(r["capacity"]["state"], "no-ingest");
  EXPECT_TRUE(r["capacity"]["holds_s"].is_null());
  EXPECT_DOUBLE_EQ(r["capacity"]["ingest_rate"].get<double>(), 0.0);
  const std::string line = OutageLine(RenderStatusText(r));
  EXPECT_NE(line.find("holds indefinitely at the current rate (no ingest)"), std::string::npos) << line;
}

TEST_F(OutageCapacityTest, AtTheBoundThePolicyAppliesNow) {
  auto q = Open();
  const QueueStats stats = Hold(q.get(), 2000);
  WriteCapacityState(q.get(), "1000", stats.counted_bytes, "backpressure");
  json r = Report(q.get());
  EXPECT_EQ(r["capacity"]["state"], "bound-applies");
  EXPECT_EQ(r["capacity"]["headroom_bytes"].get<int64_t>(), 0);
  EXPECT_TRUE(r["capacity"]["holds_s"].is_null());
  std::string line = OutageLine(RenderStatusText(r));
  EXPECT_NE(line.find("the bound applies now"), std::string::npos) << line;
  EXPECT_NE(line.find("refusing new points"), std::string::npos) << line;

  // Drop-oldest keeps the queue just under the bound: less than a second of ingest left is the
  // bound applying, not "holds 0 s more".
  const int64_t half_second = static_cast<int64_t>(stats.counted_bytes / 2000.0 * 1000 / 2);
  WriteCapacityState(q.get(), "1000", stats.counted_bytes + half_second, "drop-oldest");
  r = Report(q.get());
  EXPECT_EQ(r["capacity"]["state"], "bound-applies");
  line = OutageLine(RenderStatusText(r));
  EXPECT_NE(line.find("dropping the oldest points (drop-oldest)"), std::string::npos) << line;
}

TEST_F(OutageCapacityTest, QueueFullUnderBackpressureIsTheBoundApplying) {
  auto q = Open();
  const QueueStats stats = Hold(q.get(), 2000);
  WriteCapacityState(q.get(), "0", stats.counted_bytes + 100, "backpressure");
  ASSERT_TRUE(q->SetAgentState({{"commit_problem", "queue-full"}, {"commit_failing", "1"}}).ok());
  EXPECT_EQ(Report(q.get())["capacity"]["state"], "bound-applies");
}

TEST_F(OutageCapacityTest, AStoppedAgentsRateIsNotCurrent) {
  auto q = Open();
  const QueueStats stats = Hold(q.get(), 2000);
  WriteCapacityState(q.get(), "1000", stats.counted_bytes + 1'000'000, "drop-oldest");
  ASSERT_TRUE(q->SetAgentState({{"running", "0"}}).ok());
  json r = Report(q.get());
  const json& c = r["capacity"];
  EXPECT_EQ(c["state"], "rate-unknown");
  EXPECT_TRUE(c["ingest_rate"].is_null());
  EXPECT_EQ(c["bound_source"], "agent");  // its bound still applies when it starts again
  EXPECT_EQ(c["points_left"].get<int64_t>(), int64_t{1'000'000} * 2000 / stats.counted_bytes);
  const std::string line = OutageLine(RenderStatusText(r));
  EXPECT_NE(line.find("ingest rate unknown (agent not running)"), std::string::npos) << line;

  // Running, but not measured yet (its first second).
  WriteCapacityState(q.get(), "", stats.counted_bytes + 1'000'000, "drop-oldest");
  r = Report(q.get());
  EXPECT_EQ(r["capacity"]["state"], "rate-unknown");
  EXPECT_NE(OutageLine(RenderStatusText(r)).find("not measured yet"), std::string::npos);
}

TEST_F(OutageCapacityTest, WithoutARecordedBoundTheCallersConfigIsTheFallback) {
  auto q = Open();
  const QueueStats stats = Hold(q.get(), 2000);
  WriteLiveAgentState(q.get());
  ASSERT_TRUE(q->SetAgentState({{"ingest_rate", "100"}}).ok());
  json r = Report(q.get());
  EXPECT_EQ(r["capacity"]["state"], "bound-unknown");
  EXPECT_EQ(r["capacity"]["bound_source"], "");
  EXPECT_EQ(r["queue"]["max_bytes"].get<int64_t>(), 0);
  EXPECT_NE(OutageLine(RenderStatusText(r)).find("capacity unknown"), std::string::npos);
  EXPECT_NE(RenderStatusText(r).find("(bound not known)"), std::string::npos);

  StatusReportOptions options;
  options.max_bytes = stats.counted_bytes + 3600 * 100 * 10;
  options.full_policy = QueueFullPolicy::kBackpressure;
  options.min_points_for_estimate = 10;
  auto built = BuildStatusReport(q.get(), options_.config.path, clock_, options);
  ASSERT_TRUE(built.ok());
  const json& c = (*built)["capacity"];
  EXPECT_EQ(c["bound_source"], "config");
  EXPECT_EQ((*built)["queue"]["full_policy"], "backpressure");
  EXPECT_NEAR(c["holds_s"].get<double>(), 3600 * 10 / (stats.counted_bytes / 2000.0), 1e-6);
}

TEST(ComputeOutageCapacity, PureFormula) {
  OutageCapacityInput in;
  in.max_bytes = 1'000'000;
  in.counted_bytes = 100'000;
  in.points = 2'000;  // 50 B/point
  in.ingest_rate = 10;
  OutageCapacity c = ComputeOutageCapacity(in);
  EXPECT_EQ(c.state, OutageCapacityState::kHolds);
  EXPECT_EQ(c.headroom_bytes, 900'000);
  EXPECT_DOUBLE_EQ(*c.bytes_per_point, 50.0);
  EXPECT_EQ(*c.points_left, 18'000);
  EXPECT_DOUBLE_EQ(*c.holds_s, 1'800.0);
  in.counted_bytes = 1'200'000;  // over the bound (a lowered EDGELINE_QUEUE_MAX_BYTES)
  c = ComputeOutageCapacity(in);
  EXPECT_EQ(c.state, OutageCapacityState::kBoundApplies);
  EXPECT_EQ(c.headroom_bytes, 0);
  EXPECT_EQ(Name(c.state), "bound-applies");
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

namespace edgeline {
namespace {

// Devices from the downsampler's stored state: stale first, then the longest silent, with their
// last-seen times; the text shows ten and counts the rest.
TEST(DeviceStatusReport, StaleAndLongestSilentFirstWithLastSeenBoundedListing) {
  TempDir dir;
  FakeClock clock;
  clock.SetWallNs(1764000000LL * 1'000'000'000);
  QueueOpenOptions o;
  o.config.path = dir.File("queue.db");
  o.clock = &clock;
  auto q = OpenSqliteQueue(o);
  ASSERT_TRUE(q.ok());
  ConfigParseResult parsed = ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_DOWNSAMPLE_PRESET", "seed"},
                                          {"EDGELINE_DOWNSAMPLE_STALE_AFTER", "30s"}});
  ASSERT_TRUE(parsed.ok());
  Downsampler engine(parsed.config.downsample);
  DownsampleOutput out;
  constexpr int64_t kSec = 1'000'000'000;
  const int64_t t0 = clock.WallNowNs();
  // g00..g13 report once each, one second apart; g00 and g01 are then stale, the rest not yet.
  for (int i = 0; i < 14; ++i) {
    char name[8];
    std::snprintf(name, sizeof(name), "g%02d", i);
    Point p;
    p.measurement = "genData";
    p.tags = {{"generatorID", name}};
    FieldValue fuel;
    fuel.f = 900;
    p.fields = {{"fuel", fuel}};
    p.timestamp_ns = t0 + i * kSec;
    engine.NoteArrival(t0 + i * kSec, (100 + i) * kSec);
    engine.Add(p, &out);
  }
  engine.CheckStale(t0 + 31 * kSec, 131 * kSec, &out);
  ASSERT_EQ(engine.counters().stale_alarms, 2);
  ASSERT_TRUE((*q)->RegisterConsumer(std::string(kDownsamplerSink), std::string(kRawStream)).ok());
  SinkAttempt attempt;
  attempt.state = SinkState::kOk;
  ASSERT_TRUE((*q)->AckWithOutput(std::string(kDownsamplerSink), 0, attempt, {}, engine.SaveState()).ok());
  clock.SetWallNs(t0 + 40 * kSec);

  auto report = BuildStatusReport(q->get(), o.config.path, clock);
  ASSERT_TRUE(report.ok());
  const json& devices = (*report)["devices"];
  EXPECT_EQ(devices["tracked"], 14);
  EXPECT_EQ(devices["stale"], 2);
  EXPECT_EQ(devices["not_listed"], 0);
  ASSERT_EQ(devices["top"].size(), 14u);
  EXPECT_EQ(devices["top"][0]["tags"]["generatorID"], "g00");
  EXPECT_TRUE(devices["top"][0]["stale"].get<bool>());
  EXPECT_EQ(devices["top"][0]["reason"], "silent");
  EXPECT_EQ(devices["top"][0]["last_seen_ns"], t0);
  EXPECT_DOUBLE_EQ(devices["top"][0]["silent_s"].get<double>(), 40.0);
  EXPECT_EQ(devices["top"][1]["tags"]["generatorID"], "g01");
  EXPECT_EQ(devices["top"][2]["tags"]["generatorID"], "g02");
  EXPECT_FALSE(devices["top"][2]["stale"].get<bool>());
  EXPECT_EQ(devices["top"][13]["tags"]["generatorID"], "g13");
  for (const auto& problem : (*report)["problems"]) {  // a silent device is not the agent's health
    EXPECT_EQ(problem.get<std::string>().find("g00"), std::string::npos) << problem;
  }

  const std::string text = RenderStatusText(*report);
  EXPECT_NE(text.find("devices: 14 seen, 2 stale"), std::string::npos) << text;
  EXPECT_NE(text.find("generatorID=g00"), std::string::npos) << text;
  EXPECT_NE(text.find("STALE silent"), std::string::npos) << text;
  EXPECT_NE(text.find("generatorID=g09"), std::string::npos) << text;
  EXPECT_EQ(text.find("generatorID=g10"), std::string::npos) << text;  // ten shown
  EXPECT_NE(text.find("... and 4 more"), std::string::npos) << text;

  auto summary = SummarizeDownsampleState(engine.SaveState());
  ASSERT_TRUE(summary.ok());
  const json bounded = DeviceReport(*summary, t0 + 40 * kSec, 5);
  EXPECT_EQ(bounded["top"].size(), 5u);
  EXPECT_EQ(bounded["not_listed"], 9);
  EXPECT_EQ(bounded["tracked"], 14);
}

}  // namespace
}  // namespace edgeline
