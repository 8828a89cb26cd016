// Loopback ports for servers that tests start. PortAllocator hands out ports a child process
// will bind later; ListenOnLoopback is for servers in the test's own process, which bind first.
// StartServer (harness.h) uses PortAllocator and retries when a port was taken all the same.
// PortAllocator is thread-safe; ListenOnLoopback is a free function.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <string>

#include "common/status.h"

namespace edgeline::testing {

// A port handed out by PortAllocator is, at that moment:
// - bindable on 127.0.0.1 (a bind to it succeeded and was closed);
// - never handed out before by this allocator;
// - outside the kernel's ephemeral range (ip_local_port_range) when the range below it is wide
//   enough, so no bind(0) and no outgoing connection of any process takes it;
// - claimed for the life of the allocator by a lock on byte <port> of `lock_path` (an OFD lock,
//   released by the kernel when the process ends), so allocators of parallel test processes
//   never hand out the same port.
// Candidates are drawn in a random order seeded per process.
class PortAllocator {
 public:
  struct Options {
    int first = 20000;  // inclusive range of candidates
    int last = 32767;
    std::string lock_path;  // "" = no lock across processes
    uint64_t seed = 0;
  };

  // The process-wide allocator: candidates below the ephemeral range (whole range 1024-65535
  // when there is no room), the lock file edgeline-test-ports.lock in the temp directory.
  static PortAllocator& Default();

  explicit PortAllocator(Options options);
  ~PortAllocator();
  PortAllocator(const PortAllocator&) = delete;
  PortAllocator& operator=(const PortAllocator&) = delete;

  // Throws std::runtime_error when no candidate is left.
  int Next();

  int first() const { return options_.first; }
  int last() const { return options_.last; }

 private:
  bool Claim(int port);  // REQUIRES: mu_ held

  const Options options_;
  int lock_fd_ = -1;
  std::mutex mu_;
  std::mt19937_64 random_;    // guarded by mu_
  std::set<int> handed_out_;  // guarded by mu_
};

// A socket bound to 127.0.0.1 and already listening, for a server in this process.
struct LoopbackListener {
  int fd = -1;  // owned by the caller
  int port = 0;
};

// Binds 127.0.0.1 port 0 and listens on that same socket: the kernel picks a free port and
// nothing can take it between the choice and the listen, so there is nothing to retry.
// Header-only so in-process servers outside edgeline_test_support (the InfluxDB stand-in) use it.
inline Result<LoopbackListener> ListenOnLoopback(int backlog = 64) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IoError("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return Status::IoError("cannot listen on 127.0.0.1");
  }
  return LoopbackListener{fd, ntohs(addr.sin_port)};
}

}  // namespace edgeline::testing
