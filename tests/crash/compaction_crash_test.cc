// Compaction under SIGKILL: a child process appends 1-line batches, two sinks read and
// acknowledge at different paces (one fails now and then and releases what it read), and the
// compactor merges behind them with no settle time, all on one queue file; the parent kills it
// at seeded moments, trial after trial, then drains both sinks. The child records, with write(2)
// so a kill loses nothing it recorded, each key whose Append returned ("C"), each batch a sink
// sent ("S", before Ack) and each Ack that returned ("A"), by a send id unique across trials. Claims, per sink: every committed key
// is delivered (0 lost); a key is delivered again only when the batch that first carried it was
// never acknowledged (0 duplicated beyond the at-least-once window of a kill); integrity_check
// passes after every kill; and compaction really merged batches during the trials.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stop_token>
#include <thread>

#include "gtest/gtest.h"
#include "storage/compactor.h"
#include "storage/queue.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSinks[] = {"fast", "slow"};

void Record(int fd, const std::string& line) {
  const std::string text = line + "\n";
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) _exit(3);
}

QueueConfig Config(const std::string& path) {
  QueueConfig config;
  config.path = path;
  config.sync = SyncMode::kNormal;
  return config;
}

// The child: runs until killed.
[[noreturn]] void Workload(const std::string& path, const std::string& log_path, int trial) {
  QueueOpenOptions options;
  options.config = Config(path);
  auto opened = OpenSqliteQueue(options);
  if (!opened.ok()) _exit(2);
  std::unique_ptr<Queue> queue = std::move(opened).value();
  const int fd = ::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) _exit(2);
  for (const char* sink : kSinks) {
    if (!queue->RegisterConsumer(sink, "raw").ok()) _exit(2);
  }
  CompactOptions compact;
  compact.target_points = 25;
  compact.settle_ns = 0;
  Compactor compactor(queue.get(), compact, 2 * kNsPerMs);
  compactor.Start();

  std::vector<std::jthread> sinks;
  for (int s = 0; s < 2; ++s) {
    sinks.emplace_back([&, s](std::stop_token stop) {
      std::mt19937 random(static_cast<uint32_t>(trial * 7 + s));
      const std::string name = kSinks[s];
      for (int64_t send = 0; !stop.stop_requested(); ++send) {
        const std::string id = name + "/" + std::to_string(trial) + "/" + std::to_string(send);
        auto batches = queue->Read(name, s == 0 ? 40 : 7);
        if (!batches.ok()) _exit(4);
        if (batches->empty()) {
          std::this_thread::sleep_for(1ms);
          continue;
        }
        if (random() % 5 == 0) {  // a failed write: nothing sent, what was read is released
          queue->Release(name);
          continue;
        }
        std::ostringstream sent;
        sent << "S " << name << " " << id;
        for (const Batch& b : *batches) {
          for (const std::string& line : b.lines) sent << " " << line.substr(line.find("k=") + 2, line.find(' ') - line.find("k=") - 2);
        }
        Record(fd, sent.str());
        SinkAttempt ok;
        ok.state = SinkState::kOk;
        if (!queue->Ack(name, batches->back().seq, ok, {}).ok()) _exit(5);
        Record(fd, "A " + id);
        if (s == 1) std::this_thread::sleep_for(3ms);  // the slow sink lags: cursors apart
      }
    });
  }
  for (int i = 0;; ++i) {
    const std::string key = std::to_string(trial) + "-" + std::to_string(i);
    BatchInput b;
    b.lines = {"m,k=" + key + " v=" + std::to_string(i) + " " + std::to_string(i)};
    b.min_ts_ns = b.max_ts_ns = i;
    b.sources = {{"t/" + std::to_string(i % 3), 1}};
    if (!queue->Append({b}, {}).ok()) _exit(6);
    Record(fd, "C " + key);
    std::this_thread::sleep_for(200us);  // the ingest pace, not a wait for a result
  }
}

struct Deliveries {
  std::map<std::string, std::vector<std::pair<std::string, int64_t>>> by_key;  // key -> (sink, seq)*
};

TEST(CompactionCrash, SeededKillsDuringCompactionLoseAndDuplicateNothing) {
  TempDir dir;
  const std::string path = dir.File("queue.db");
  const std::string log_path = dir.File("records.log");
  const int trials = 30;
  std::mt19937 random(11);
  std::uniform_int_distribution<int> run_ms(30, 300);
  int64_t merged_seen = 0;
  for (int trial = 0; trial < trials; ++trial) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) Workload(path, log_path, trial);
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(random)));  // the seeded kill moment
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the workload ended on its own with " << WEXITSTATUS(status);
    auto look = OpenTestQueue(path, nullptr, Config(path));
    ASSERT_EQ(*look->IntegrityCheck(), "ok") << "after kill #" << trial;
    auto stats = look->Stats();
    ASSERT_TRUE(stats.ok());
    merged_seen += stats->points - stats->batches;
  }
  EXPECT_GT(merged_seen, 0) << "compaction never merged anything before a kill";

  // What the child recorded.
  std::set<std::string> committed;
  std::set<std::string> acked;  // send ids
  struct Sent {
    std::string sink;
    std::string id;
    std::vector<std::string> keys;
  };
  std::vector<Sent> sent;
  {
    std::ifstream in(log_path);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string kind;
      fields >> kind;
      if (kind == "C") {
        std::string key;
        fields >> key;
        committed.insert(key);
      } else if (kind == "A") {
        std::string id;
        fields >> id;
        acked.insert(id);
      } else if (kind == "S") {
        Sent s;
        fields >> s.sink >> s.id;
        std::string key;
        while (fields >> key) s.keys.push_back(key);
        sent.push_back(std::move(s));
      }
    }
  }
  ASSERT_GT(committed.size(), 1000u);

  // The final drain, by both sinks, with the file as the kills left it.
  auto queue = OpenTestQueue(path, nullptr, Config(path));
  for (const char* sink : kSinks) ASSERT_TRUE(queue->RegisterConsumer(sink, "raw").ok());
  for (const char* sink : kSinks) {
    while (true) {
      auto batches = queue->Read(sink, 1000);
      ASSERT_TRUE(batches.ok());
      if (batches->empty()) break;
      Sent s{sink, std::string(sink) + "/final/" + std::to_string(sent.size()), {}};
      for (const Batch& b : *batches) {
        for (const std::string& line : b.lines) {
          const size_t k = line.find("k=") + 2;
          s.keys.push_back(line.substr(k, line.find(' ') - k));
        }
      }
      SinkAttempt ok;
      ok.state = SinkState::kOk;
      ASSERT_TRUE(queue->Ack(sink, batches->back().seq, ok, {}).ok());
      acked.insert(s.id);
      sent.push_back(std::move(s));
    }
  }

  for (const char* sink : kSinks) {
    std::map<std::string, int> deliveries;
    std::map<std::string, bool> first_was_acked;
    for (const Sent& s : sent) {
      if (s.sink != sink) continue;
      const bool was_acked = acked.count(s.id) > 0;
      for (const std::string& key : s.keys) {
        if (deliveries[key]++ > 0 && first_was_acked[key]) {
          ADD_FAILURE() << sink << ": " << key << " delivered again after the batch carrying it was acknowledged";
        }
        first_was_acked[key] = first_was_acked[key] || was_acked;
      }
    }
    int lost = 0;
    for (const std::string& key : committed) {
      if (deliveries.count(key) == 0) {
        ++lost;
        if (lost <= 5) std::printf("lost %s: %s\n", sink, key.c_str());
      }
    }
    EXPECT_EQ(lost, 0) << sink << ": committed keys never delivered";
    int64_t repeated = 0;
    for (const auto& [key, n] : deliveries) repeated += n - 1;
    std::printf("compaction crash: sink %s: %zu committed, %zu delivered, %lld repeated after a kill\n", sink,
                committed.size(), deliveries.size(), static_cast<long long>(repeated));
  }
  EXPECT_EQ(queue->Stats()->batches, 0);
}

}  // namespace
}  // namespace edgeline
