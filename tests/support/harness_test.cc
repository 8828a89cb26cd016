// StartServer (tests/support/harness.h) against real servers: a port taken between the pick and
// the server's bind (here: held by the test, listening) moves the server to new ports; fixed
// ports that are taken, or a port taken on every attempt, fail with a message that says so.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/harness.h"
#include "tests/support/ports.h"

namespace edgeline::testing {
namespace {

// A port the test listens on: what a parallel test's server looks like to ours.
class TakenPort {
 public:
  TakenPort() {
    Result<LoopbackListener> l = ListenOnLoopback();
    if (!l.ok()) throw std::runtime_error(l.status().ToString());
    listener_ = *l;
  }
  ~TakenPort() { ::close(listener_.fd); }
  int port() const { return listener_.port; }

 private:
  LoopbackListener listener_;
};

// Hands out `taken` at the given 1-based picks, FreePort() otherwise; counts picks.
struct Picker {
  int taken = 0;
  std::set<int> taken_at;
  int picks = 0;
  std::function<int()> Fn() {
    return [this] { return taken_at.count(++picks) != 0 ? taken : FreePort(); };
  }
};

ServerSpec MosquittoSpec(const std::string& dir) {
  ServerSpec spec;
  spec.name = "mosquitto";
  spec.start = [dir](const std::vector<int>& ports) {
    std::ofstream(dir + "/mosquitto.conf") << "listener " << ports[0] << " 127.0.0.1\nallow_anonymous true\n"
                                           << "log_dest stderr\nlog_type error\n";
    return std::make_unique<Process>(std::vector<std::string>{"mosquitto", "-c", dir + "/mosquitto.conf"},
                                     std::map<std::string, std::string>{}, dir + "/mosquitto.log");
  };
  return spec;
}

TEST(StartServerTest, MosquittoMovesToANewPortWhenItsFirstWasTaken) {
  TakenPort taken;
  Picker picker{taken.port(), {1}};
  MosquittoOptions options;
  options.pick_port = picker.Fn();
  Mosquitto broker(options);
  EXPECT_NE(broker.port(), taken.port());
  EXPECT_EQ(broker.start_attempts(), 2);
  EXPECT_EQ(picker.picks, 2);
  // It is the broker, not the port's other owner, that answers.
  Publisher(broker.url(), "harness-test").PublishAll({{"harness/test", "up"}});
}

TEST(StartServerTest, InfluxdMovesToNewPortsWhenItsRpcPortWasTaken) {
  TakenPort taken;
  Picker picker{taken.port(), {2}};  // picks: HTTP, RPC (taken), then HTTP, RPC again
  InfluxdOptions options;
  options.pick_port = picker.Fn();
  Influxd influxd(options);
  EXPECT_NE(influxd.rpc_port(), taken.port());
  EXPECT_NE(influxd.http_port(), taken.port());
  EXPECT_EQ(influxd.start_attempts(), 2);
  EXPECT_EQ(picker.picks, 4);
  influxd.Query("CREATE DATABASE harness");
  EXPECT_EQ(influxd.QueryCount("SELECT count(v) FROM m", "harness"), 0);
  // A restart keeps the ports the agent points at.
  influxd.Stop();
  influxd.Start();
  EXPECT_EQ(influxd.start_attempts(), 1);
  EXPECT_NE(influxd.Query("SHOW DATABASES").dump().find("harness"), std::string::npos);
}

TEST(StartServerTest, TakenOnEveryAttemptFailsNamingEachAttempt) {
  TakenPort taken;
  const std::string dir = MakeTempDir("edgeline-harness");
  ServerSpec spec = MosquittoSpec(dir);
  spec.attempts = 3;
  spec.pick_port = [&] { return taken.port(); };
  try {
    StartServer(spec);
    ADD_FAILURE() << "mosquitto started on a port someone else listens on";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("attempt 3 on ports " + std::to_string(taken.port()) + ": address already in use"),
              std::string::npos)
        << what;
    EXPECT_EQ(what.find("attempt 4"), std::string::npos) << what;
  }
  std::filesystem::remove_all(dir);
}

TEST(StartServerTest, FixedPortsThatWereTakenFailOnce) {
  TakenPort taken;
  const std::string dir = MakeTempDir("edgeline-harness");
  ServerSpec spec = MosquittoSpec(dir);
  spec.ports = {taken.port()};
  int picks = 0;
  spec.pick_port = [&] { return ++picks, FreePort(); };
  try {
    StartServer(spec);
    ADD_FAILURE() << "mosquitto started on a port someone else listens on";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("fixed ports"), std::string::npos) << what;
    EXPECT_NE(what.find("attempt 1 on ports " + std::to_string(taken.port())), std::string::npos) << what;
    EXPECT_EQ(what.find("attempt 2"), std::string::npos) << what;
  }
  EXPECT_EQ(picks, 0);
  std::filesystem::remove_all(dir);
}

TEST(StartServerTest, AChildThatExitsEarlyIsRetriedThenReported) {
  const std::string dir = MakeTempDir("edgeline-harness");
  ServerSpec spec;
  spec.name = "false";
  spec.attempts = 2;
  spec.start = [&](const std::vector<int>&) {
    return std::make_unique<Process>(std::vector<std::string>{"false"}, std::map<std::string, std::string>{},
                                     dir + "/false.log");
  };
  try {
    StartServer(spec);
    ADD_FAILURE() << "`false` counted as a server";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("attempt 2 on ports"), std::string::npos) << what;
    EXPECT_NE(what.find("exited with code 1"), std::string::npos) << what;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace edgeline::testing
