#include "agent/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stop_token>
#include <thread>

#include "agent/agent.h"
#include "agent/env.h"
#include "agent/systemd_notify.h"
#include "common/log.h"
#include "common/wakeup.h"

namespace edgeline {
namespace {

constexpr int64_t kShutdownDeadlineNs = 15'000'000'000;

// One agent per queue file: a second one would ingest the same stream twice and race the
// cursors. The lock dies with the process, so a SIGKILLed agent does not block its restart.
bool LockQueue(const std::string& queue_path) {
  std::filesystem::path dir = std::filesystem::path(queue_path).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
  }
  const std::string lock_path = queue_path + ".lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    LOG_ERROR("agent") << "another edgeline is already running on " << queue_path << " (cannot lock " << lock_path
                       << ")";
    return false;
  }
  return true;  // the descriptor stays open for the life of the process
}

}  // namespace

int RunDaemon(const Config& config) {
  ::umask(077);
  SetLogLevel(config.log_level);

  // Signals are taken synchronously by this thread; every thread started below inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (!LockQueue(config.queue.path)) return 1;
  Agent agent(config, DefaultEnv());
  Status started = agent.Start();
  if (!started.ok()) {
    LOG_ERROR("agent") << started.message();
    return 1;
  }
  NotifySystemd("READY=1\nSTATUS=running");

  int sig = 0;
  sigwait(&signals, &sig);
  LOG_INFO("agent") << "signal " << sig << ": shutting down";
  NotifySystemd("STOPPING=1");

  // A message callback blocked on a commit that cannot happen (disk full, queue full under
  // backpressure) holds Paho's global lock, and a graceful MQTT stop would wait for it forever.
  // Past the deadline we end the process the way a crash would: committed data is safe in the
  // WAL and unacknowledged messages stay with the broker.
  std::jthread shutdown_deadline([](std::stop_token stop) {
    Wakeup().Wait(stop, kShutdownDeadlineNs, /*interruptible=*/false);
    if (stop.stop_requested()) return;
    LOG_ERROR("agent") << "shutdown did not finish within " << kShutdownDeadlineNs / 1'000'000'000
                       << "s (a commit is blocked); exiting now";
    std::_Exit(1);
  });
  agent.Stop();
  shutdown_deadline.request_stop();
  return 0;
}

}  // namespace edgeline
