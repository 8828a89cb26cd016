// The agent speaks systemd's notify protocol (the shipped unit is Type=notify with a watchdog):
// READY=1 once running, WATCHDOG=1 while the queue takes commits, STOPPING=1 on SIGTERM. The
// test plays systemd: a datagram socket passed as NOTIFY_SOCKET.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"
#include "tests/support/harness.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;

TEST(SystemdNotify, ReadyWatchdogAndStopping) {
  testing::Mosquitto mosquitto;
  testing::Influxd influxd;
  const std::string dir = testing::MakeTempDir("edgeline-notify");
  const std::string path = dir + "/notify.sock";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);

  auto env = testing::AgentEnv(mosquitto, influxd, dir + "/queue.db", "notify");
  env["NOTIFY_SOCKET"] = path;
  testing::Process agent({EDGELINE_BINARY, "run"}, env, dir + "/agent.log");
  std::string received;
  auto got = [&](const std::string& what) {
    char buf[512];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) received += std::string(buf, static_cast<size_t>(n)) + "\n";
    return received.find(what) != std::string::npos;
  };
  EXPECT_TRUE(testing::WaitFor([&] { return got("READY=1"); }, 20s)) << received << agent.Log();
  EXPECT_TRUE(testing::WaitFor([&] { return got("WATCHDOG=1"); }, 10s)) << received;
  EXPECT_EQ(agent.Terminate(), 0);
  EXPECT_TRUE(got("STOPPING=1")) << received;
  ::close(fd);
}

}  // namespace
}  // namespace edgeline
