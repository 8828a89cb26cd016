// MockCluster: librdkafka's mock cluster (3 brokers) in its own process
// (tests/support/kafka_mock_cluster.cc), for integration and crash tests. Commands go through a
// FIFO on its stdin; answers come in its log. Header-only: the executable's path comes from the
// test's EDGELINE_KAFKA_MOCK_CLUSTER definition (tests/kafka.cmake). One test thread owns it.
// The brokers need no port from the harness: librdkafka binds each to 127.0.0.1 port 0 and
// listens on that socket before it reports the bootstrap address, and `down` keeps the port
// bound (closed and bound again at once) until `up` listens again.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "gtest/gtest.h"
#include "tests/support/harness.h"

#ifndef EDGELINE_KAFKA_MOCK_CLUSTER
#error "EDGELINE_KAFKA_MOCK_CLUSTER must be defined by the build"
#endif

namespace edgeline::testing {

// The mock cluster helper; commands go through a FIFO on its stdin, answers come in its log.
class MockCluster {
  static constexpr std::chrono::milliseconds k10s{10000};
  static constexpr std::chrono::milliseconds k10ms{10};
  static constexpr std::chrono::milliseconds k5s{5000};

 public:
  MockCluster() : dir_(MakeTempDir("edgeline-kafka-mock")) {
    const std::string fifo = dir_ + "/commands";
    if (::mkfifo(fifo.c_str(), 0600) != 0) throw std::runtime_error("mkfifo failed");
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"/bin/sh", "-c", "exec \"$0\" < \"$1\"", EDGELINE_KAFKA_MOCK_CLUSTER, fifo},
        std::map<std::string, std::string>{}, dir_ + "/mock.log");
    // A non-blocking open for writing succeeds only once the reader has it open.
    if (!WaitFor([&] { return (fd_ = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK)) >= 0; }, k10s, k10ms)) {
      throw std::runtime_error("mock cluster did not start: " + process_->Log());
    }
    ::fcntl(fd_, F_SETFL, 0);
    if (!WaitFor([&] { return process_->Log().find('\n') != std::string::npos; }, k10s, k10ms)) {
      throw std::runtime_error("mock cluster printed no bootstrap address: " + process_->Log());
    }
    std::istringstream log(process_->Log());
    std::string word;
    log >> word >> bootstrap_;
    if (word != "bootstrap") throw std::runtime_error("unexpected mock cluster output: " + process_->Log());
  }
  ~MockCluster() {
    if (fd_ >= 0) ::close(fd_);  // end of input: the helper exits
    process_->Terminate(k5s);
    std::filesystem::remove_all(dir_);
  }

  const std::string& bootstrap() const { return bootstrap_; }

  // Sends one command and waits for its answer; fails the test on "error".
  void Command(const std::string& command) {
    ++commands_;
    const std::string line = command + "\n";
    ASSERT_EQ(::write(fd_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    const std::string ok = "ok " + std::to_string(commands_) + " ";
    const std::string error = "error " + std::to_string(commands_) + " ";
    std::string log;
    ASSERT_TRUE(WaitFor(
        [&] {
          log = process_->Log();
          return log.find(ok) != std::string::npos || log.find(error) != std::string::npos;
        },
        k10s, k10ms))
        << "no answer to " << command << ":\n"
        << log;
    ASSERT_EQ(log.find(error), std::string::npos) << log;
  }

 private:
  std::string dir_;
  std::unique_ptr<Process> process_;
  int fd_ = -1;
  std::string bootstrap_;
  int commands_ = 0;
};

}  // namespace edgeline::testing

namespace edgeline::testing {

// Every record of `topic` (all partitions, from the beginning), read by kcat, an independent
// consumer: {key, value}. Order is per partition only.
inline std::vector<std::pair<std::string, std::string>> ReadKafkaTopic(const std::string& bootstrap,
                                                                       const std::string& topic) {
  CommandResult r = RunCommand({"kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", "%k\t%s\n"}, {},
                               std::chrono::seconds(30));
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;  // kcat notices (e.g. unknown topic yet)
    out.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  return out;
}

}  // namespace edgeline::testing
