// Disk faults under the REAL agent, with real mosquitto and influxd 1.6. The fault VFS
// (tests/support/fault_vfs.h) is LD_PRELOADed into the unmodified edgeline binary and fails its
// SQLite writes or syncs on cue; a second test fills a real (tmpfs, size=) filesystem.
// Claims: while the disk fails the agent acknowledges nothing (the broker keeps the messages,
// proven by SIGKILLing the agent during the fault), says `disk-error` in /health and
// `edgeline status`, retries, and once the fault clears every acknowledged message reaches
// influxd.
#include <sys/mount.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "storage/queue.h"
#include "tests/support/fault_vfs.h"
#include "tests/support/harness.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

std::vector<std::pair<std::string, std::string>> Messages(int first, int n) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int seq = first; seq < first + n; ++seq) {
    out.emplace_back("emergency_generator/disk", "{\"generatorID\": \"disk\", \"seq\": " + std::to_string(seq) +
                                                     ", \"fuel\": " + std::to_string(seq % 1000) + "}");
  }
  return out;
}

struct Health {
  int code = 0;
  nlohmann::json body;
};

Health GetHealth(int port) {
  auto r = testing::Curl({"-m", "5", "http://127.0.0.1:" + std::to_string(port) + "/health"});
  return {r.code, nlohmann::json::parse(r.body, nullptr, false)};
}

nlohmann::json StatusJson(const std::string& queue_path) {
  auto r = testing::RunCommand({EDGELINE_BINARY, "status", "--json"}, {{"EDGELINE_QUEUE_PATH", queue_path}}, 20s);
  return nlohmann::json::parse(r.output, nullptr, false);
}

class DiskFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    influxd_.Query("CREATE DATABASE " + db_);
    dir_ = testing::MakeTempDir("edgeline-diskfault");
    queue_path_ = dir_ + "/queue.db";
    control_ = dir_ + "/faults";
    testing::WriteFaultControl(control_, "off\n");
    http_port_ = testing::FreePort();
    env_ = testing::AgentEnv(mosquitto_, influxd_, queue_path_, db_);
    env_["EDGELINE_HTTP_LISTEN"] = "127.0.0.1:" + std::to_string(http_port_);
  }

  void StartAgent(bool with_fault_vfs = true) {
    auto env = env_;
    if (with_fault_vfs) {
      env["LD_PRELOAD"] = EDGELINE_FAULT_VFS_LIB;
      env["FAULT_VFS_CONTROL"] = control_;
    }
    agent_.reset();
    agent_ =
        std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, dir_ + "/agent.log");
    ASSERT_TRUE(WaitFor([&] { return GetHealth(http_port_).code != 0; }, 20s)) << agent_->Log();
    if (!subscribed_) {
      // "online" follows the SUBSCRIBE on the same connection: from then on the persistent
      // session holds every message, whether the agent runs or not.
      testing::Subscriber watch(mosquitto_.url(), "diskfault-watch", "edgeline/edgeline-test/status");
      ASSERT_TRUE(WaitFor([&] { return watch.Last("edgeline/edgeline-test/status") == "online"; }, 20s))
          << agent_->Log();
      subscribed_ = true;
    }
  }

  int64_t Distinct() { return influxd_.QueryCount("SELECT count(distinct(seq)) FROM genData", db_); }
  bool AllArrive(int64_t n) {
    return WaitFor([&] { return Distinct() == n; }, 60s, 200ms);
  }
  bool HealthSays(const std::string& status) {
    return WaitFor([&] { return GetHealth(http_port_).body.value("status", "") == status; }, 30s, 100ms);
  }

  testing::Mosquitto mosquitto_;
  testing::Influxd influxd_;
  const std::string db_ = "diskfault";
  std::string dir_, queue_path_, control_;
  int http_port_ = 0;
  std::map<std::string, std::string> env_;
  std::unique_ptr<testing::Process> agent_;
  bool subscribed_ = false;
};

TEST_F(DiskFaultTest, AgentHoldsMessagesUnacknowledgedWhileTheDiskFailsAndLosesNone) {
  testing::Publisher pub(mosquitto_.url(), "diskfault-publisher");
  StartAgent();
  pub.PublishAll(Messages(0, 50));
  ASSERT_TRUE(AllArrive(50)) << agent_->Log();

  // 1. Every write fails (I/O error): nothing more is committed, health says why, no crash.
  testing::WriteFaultControl(control_, testing::FaultLine({"ioerr", "write", 0, 0}));
  pub.PublishAll(Messages(50, 100));  // the broker acknowledged these to the publisher
  ASSERT_TRUE(HealthSays("disk-error")) << GetHealth(http_port_).body.dump() << agent_->Log();
  EXPECT_EQ(GetHealth(http_port_).code, 503);
  ASSERT_TRUE(WaitFor([&] { return StatusJson(queue_path_)["agent"].value("state", "") == "disk-error"; }, 30s, 500ms))
      << StatusJson(queue_path_).dump(2);
  EXPECT_EQ(Distinct(), 50) << "nothing can have been committed during the fault";
  EXPECT_TRUE(agent_->running());
  // The fault clears: the held message commits, the broker delivers the rest.
  testing::WriteFaultControl(control_, "off\n");
  ASSERT_TRUE(AllArrive(150)) << agent_->Log();
  ASSERT_TRUE(HealthSays("ok")) << GetHealth(http_port_).body.dump();

  // 2. Disk full, and the agent is killed during the fault: restarted without it, every
  //    message comes from the broker, so none had been acknowledged.
  testing::WriteFaultControl(control_, testing::FaultLine({"full", "write", 0, 0}));
  pub.PublishAll(Messages(150, 100));
  ASSERT_TRUE(HealthSays("disk-error")) << agent_->Log();
  agent_->Kill();
  testing::WriteFaultControl(control_, "off\n");
  StartAgent();
  ASSERT_TRUE(AllArrive(250)) << agent_->Log();

  // 3. Transient sync failures: retried without anyone noticing but the counters.
  testing::WriteFaultControl(control_, testing::FaultLine({"ioerr", "sync", 0, 3}));
  pub.PublishAll(Messages(250, 50));
  ASSERT_TRUE(AllArrive(300)) << agent_->Log();
  ASSERT_TRUE(WaitFor([&] { return StatusJson(queue_path_)["agent"].value("commit_failures", 0) >= 1; }, 10s, 300ms));

  std::ifstream injected(control_ + ".injected");
  long faults = 0;
  injected >> faults;
  const int64_t points = influxd_.QueryCount("SELECT count(seq) FROM genData", db_);
  std::printf(
      "disk faults: %ld injected into the agent; 300 messages, %lld distinct in influxd, %lld points "
      "(%lld redeliveries)\n",
      faults, static_cast<long long>(Distinct()), static_cast<long long>(points),
      static_cast<long long>(points - Distinct()));
  EXPECT_GT(faults, 3);
  EXPECT_EQ(testing::QueueIntegrity(queue_path_), "ok");
}

// A queue file damaged while the agent was down: the agent starts anyway, on a fresh queue, the
// damaged file is kept beside it, and `edgeline status` says so.
TEST_F(DiskFaultTest, CorruptQueueFileIsMovedAsideAtStartAndStatusSaysSo) {
  testing::Publisher pub(mosquitto_.url(), "corrupt-publisher");
  StartAgent(false);
  pub.PublishAll(Messages(0, 200));
  ASSERT_TRUE(AllArrive(200)) << agent_->Log();
  ASSERT_EQ(agent_->Terminate(), 0);
  {
    std::fstream f(queue_path_, std::ios::in | std::ios::out | std::ios::binary);
    std::string garbage(2 * 4096, '\x5a');
    f.seekp(2 * 4096);
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  StartAgent(false);
  pub.PublishAll(Messages(200, 50));
  ASSERT_TRUE(AllArrive(250)) << agent_->Log();
  nlohmann::json status = StatusJson(queue_path_);
  const std::string aside = status["queue"].value("recovered_from", "");
  ASSERT_FALSE(aside.empty()) << status.dump(2);
  EXPECT_TRUE(std::filesystem::exists(aside));
  EXPECT_NE(status["problems"].dump().find("moved aside"), std::string::npos) << status.dump(2);
  EXPECT_EQ(testing::QueueIntegrity(queue_path_), "ok");
}

// A large queue (over the 64 MiB checked before open returns) damaged while the agent was down:
// the agent starts and writes at once, its background check finds the damage, the agent exits
// with 75 (EX_TEMPFAIL, for the service manager to restart it) and leaves the marker; the
// restart moves the file aside and runs on a fresh queue.
TEST_F(DiskFaultTest, DamageInALargeQueueFoundAfterStartEndsTheAgentAndTheRestartRecovers) {
  {
    QueueOpenOptions o;
    o.config.path = queue_path_;
    auto q = OpenSqliteQueue(o);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    std::mt19937_64 rng(75);
    int64_t n = 0;
    while (std::filesystem::file_size(queue_path_) + std::filesystem::file_size(queue_path_ + "-wal") < (72u << 20)) {
      BatchInput b;
      b.stream = std::string(kRawStream);
      for (int i = 0; i < 1000; ++i, ++n) {
        char noise[64];  // incompressible, so the file grows as fast as the lines
        std::snprintf(noise, sizeof(noise), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                      static_cast<unsigned long long>(rng()));
        b.lines.push_back("genData,generatorID=big" + std::string(noise) + " fuel=1 " +
                          std::to_string(1764000000'000'000'000 + n));
      }
      b.min_ts_ns = 1764000000'000'000'000 + n - 1000;
      b.max_ts_ns = 1764000000'000'000'000 + n - 1;
      ASSERT_TRUE((*q)->Append({b}, {}).ok());
    }
  }
  const auto size = std::filesystem::file_size(queue_path_);
  {
    std::fstream f(queue_path_, std::ios::in | std::ios::out | std::ios::binary);
    std::string garbage(4 * 4096, '\x5a');
    f.seekp(static_cast<std::streamoff>(size / 4 * 3 / 4096 * 4096));
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  env_["EDGELINE_INFLUX_URL"] =
      "http://127.0.0.1:" + std::to_string(testing::FreePort());  // offline: reads stay at the start
  auto first = std::make_unique<testing::Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env_,
                                                  dir_ + "/agent-first.log");
  ASSERT_TRUE(WaitFor([&] { return !first->running(); }, 60s)) << first->Log();
  EXPECT_EQ(first->exit_code(), 75) << first->Log();
  EXPECT_NE(first->Log().find("start-up check failed"), std::string::npos) << first->Log();
  ASSERT_TRUE(std::filesystem::exists(queue_path_ + ".check-failed"));

  StartAgent(false);
  nlohmann::json status = StatusJson(queue_path_);
  const std::string aside = status["queue"].value("recovered_from", "");
  ASSERT_FALSE(aside.empty()) << status.dump(2) << agent_->Log();
  EXPECT_EQ(std::filesystem::file_size(aside), size) << "kept as it was";
  EXPECT_FALSE(std::filesystem::exists(queue_path_ + ".check-failed"));
  EXPECT_TRUE(agent_->running());
  EXPECT_EQ(testing::QueueIntegrity(queue_path_), "ok");
}

// A real full filesystem: the queue on a 2 MiB tmpfs while influxd is down, so the queue only
// grows. Needs mount privileges (CI runs as root); elsewhere the test says why it is skipped.
TEST_F(DiskFaultTest, RealFullFilesystemStopsAcknowledgingThenResumes) {
  const std::string mnt = dir_ + "/small";
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=2m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << "); needs root";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  queue_path_ = mnt + "/queue.db";
  env_["EDGELINE_QUEUE_PATH"] = queue_path_;
  influxd_.Stop();
  StartAgent(false);

  testing::Publisher pub(mosquitto_.url(), "fullfs-publisher");
  int published = 0;
  // ~230 bytes per single-message batch: 2 MiB is full after about 9,000 messages.
  std::atomic<bool> full{false};
  std::thread watcher([&] { full = HealthSays("disk-error"); });
  while (!full && published < 30000) {
    pub.PublishAll(Messages(published, 500));
    published += 500;
    if (WaitFor([&] { return full.load(); }, 1ms)) break;
  }
  watcher.join();
  ASSERT_TRUE(full) << "the disk never filled: " << GetHealth(http_port_).body.dump() << agent_->Log();
  EXPECT_EQ(GetHealth(http_port_).code, 503);
  EXPECT_TRUE(agent_->running());
  // More messages while full: the broker keeps them.
  pub.PublishAll(Messages(published, 500));
  published += 500;

  // The fault clears: the filesystem grows, influxd comes back.
  ASSERT_EQ(::mount("tmpfs", mnt.c_str(), "tmpfs", MS_REMOUNT, "size=64m,mode=0700"), 0) << std::strerror(errno);
  influxd_.Start();
  if (!WaitFor([&] { return Distinct() == published; }, 30s, 250ms)) {
    // mosquitto 2.0.11 (Debian 12) can leave QoS 1 messages queued behind a full in-flight
    // window until the client reconnects (likely; inflight-quota fixes landed in 2.0.13). Seen
    // here in 2 of about 35 runs. A reconnect must then deliver them: none may be lost.
    std::printf("broker stalled with %lld of %d delivered; reconnecting the agent\n",
                static_cast<long long>(Distinct()), published);
    agent_->Terminate();
    StartAgent(false);
  }
  ASSERT_TRUE(WaitFor([&] { return Distinct() == published; }, 60s, 250ms))
      << "distinct " << Distinct() << " of " << published << "\n"
      << agent_->Log() << StatusJson(queue_path_).dump(2)
      << influxd_.Query("SELECT seq FROM genData ORDER BY time", db_).dump();
  std::printf("full filesystem: %d messages published, %lld distinct in influxd\n", published,
              static_cast<long long>(Distinct()));
  EXPECT_EQ(testing::QueueIntegrity(queue_path_), "ok");
}

}  // namespace
}  // namespace edgeline
