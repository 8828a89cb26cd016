// PortAllocator and ListenOnLoopback (tests/support/ports.h).
#include "tests/support/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include "gtest/gtest.h"
#include "tests/support/harness.h"

namespace edgeline::testing {
namespace {

bool Connects(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

class PortAllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("edgeline-ports"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // `count` candidates from the middle of the default range, locked through dir_'s file.
  PortAllocator::Options Range(int count, uint64_t seed) const {
    const PortAllocator& d = PortAllocator::Default();
    const int first = d.first() + (d.last() - d.first()) / 2;
    return {first, first + count - 1, dir_ + "/ports.lock", seed};
  }
  std::string dir_;
};

TEST_F(PortAllocatorTest, DefaultRangeIsBelowTheEphemeralPorts) {
  int ephemeral_first = 0, ephemeral_last = 0;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_first >> ephemeral_last;
  if (ephemeral_first < 22000) GTEST_SKIP() << "no room below the ephemeral range " << ephemeral_first;
  EXPECT_GE(PortAllocator::Default().first(), 1024);
  EXPECT_LT(PortAllocator::Default().last(), ephemeral_first);
  const int port = FreePort();
  EXPECT_GE(port, PortAllocator::Default().first());
  EXPECT_LE(port, PortAllocator::Default().last());
}

TEST_F(PortAllocatorTest, NeverHandsOutAPortTwiceAndEachOneBinds) {
  PortAllocator allocator(Range(40, 1));
  std::set<int> seen;
  for (int i = 0; i < 30; ++i) {
    const int port = allocator.Next();
    EXPECT_TRUE(seen.insert(port).second) << port << " handed out twice";
    EXPECT_GE(port, allocator.first());
    EXPECT_LE(port, allocator.last());
    // Bindable: a server could listen on it right now.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << port;
    ::close(fd);
  }
}

// Two allocators on one lock file stand for two test processes: an OFD lock conflicts between
// open file descriptions even within one process. The same seed makes them draw the same order.
TEST_F(PortAllocatorTest, AllocatorsSharingALockFileNeverHandOutTheSamePort) {
  PortAllocator a(Range(60, 7));
  PortAllocator b(Range(60, 7));
  std::set<int> from_a, from_b;
  for (int i = 0; i < 20; ++i) {
    from_a.insert(a.Next());
    from_b.insert(b.Next());
  }
  for (int port : from_a) EXPECT_EQ(from_b.count(port), 0u) << port << " handed out by both";
}

TEST_F(PortAllocatorTest, SkipsAPortSomeoneListensOnAndThrowsWhenNoneIsLeft) {
  Result<LoopbackListener> held = ListenOnLoopback();
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  // Candidates: the held port and at most one other.
  PortAllocator allocator({held->port, held->port + 1, "", 3});
  int handed_out = 0;
  try {
    for (int i = 0; i < 3; ++i) {
      EXPECT_NE(allocator.Next(), held->port);
      ++handed_out;
    }
    ADD_FAILURE() << "a range of two ports, one of them taken, gave three";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no free loopback port"), std::string::npos) << e.what();
  }
  EXPECT_LE(handed_out, 1);
  ::close(held->fd);
}

TEST(ListenOnLoopbackTest, ListensBeforeItReturns) {
  Result<LoopbackListener> listener = ListenOnLoopback();
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  EXPECT_GT(listener->port, 0);
  EXPECT_TRUE(Connects(listener->port));
  ::close(listener->fd);
}

}  // namespace
}  // namespace edgeline::testing
