#include "tests/support/ports.h"

#include <arpa/inet.h>
#include <fcntl.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace edgeline::testing {
namespace {

constexpr int kLowest = 20000;  // below: well-known and registered service ports we avoid
constexpr int kMinCandidates = 2000;

bool Bindable(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

PortAllocator::Options DefaultOptions() {
  int ephemeral_first = 32768, ephemeral_last = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_first >> ephemeral_last;
  PortAllocator::Options o;
  if (ephemeral_first - 1 - kLowest + 1 >= kMinCandidates) {
    o.first = kLowest;
    o.last = ephemeral_first - 1;
  } else if (65535 - ephemeral_last >= kMinCandidates) {
    o.first = ephemeral_last + 1;
    o.last = 65535;
  } else {
    o.first = 1024;
    o.last = 65535;
  }
  o.lock_path = (std::filesystem::temp_directory_path() / "edgeline-test-ports.lock").string();
  o.seed = std::random_device{}() ^ (static_cast<uint64_t>(::getpid()) << 32) ^
           static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return o;
}

}  // namespace

PortAllocator& PortAllocator::Default() {
  static PortAllocator* allocator = new PortAllocator(DefaultOptions());  // never destroyed: keeps its locks
  return *allocator;
}

PortAllocator::PortAllocator(Options options) : options_(std::move(options)), random_(options_.seed) {
  if (!options_.lock_path.empty()) {
    // Without the file (another user's, unwritable) ports are still unique within this process.
    lock_fd_ = ::open(options_.lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  }
}

PortAllocator::~PortAllocator() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

bool PortAllocator::Claim(int port) {
  if (lock_fd_ < 0) return true;
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = port;
  lock.l_len = 1;
  return ::fcntl(lock_fd_, F_OFD_SETLK, &lock) == 0;
}

int PortAllocator::Next() {
  std::lock_guard<std::mutex> guard(mu_);
  const int candidates = options_.last - options_.first + 1;
  std::uniform_int_distribution<int> pick(options_.first, options_.last);
  for (int tries = 0; tries < 4 * candidates; ++tries) {
    const int port = pick(random_);
    if (handed_out_.count(port) != 0) continue;
    if (!Claim(port)) continue;  // another process's allocator has it
    handed_out_.insert(port);    // claimed: not offered again, bindable or not
    if (Bindable(port)) return port;
  }
  throw std::runtime_error("no free loopback port left in " + std::to_string(options_.first) + "-" +
                           std::to_string(options_.last));
}

}  // namespace edgeline::testing
