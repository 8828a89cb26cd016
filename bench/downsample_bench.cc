// Downsampler replay throughput (not a test): a backlog of N raw points from G generators is
// put in a fresh queue, then drained twice, side by side:
//   baseline  - a consumer that only reads, parses each line and acknowledges;
//   edgeline  - the DownsampleTask (parse, windows, state + rows committed per step).
// Prints points/s of each and the ratio. Usage: downsample_bench [points] [generators] [dir]
#include <memory>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "config/config.h"
#include "downsample/downsample_task.h"

using namespace edgeline;

namespace {

std::unique_ptr<Queue> FreshQueue(const std::string& path, int64_t points, int generators) {
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  QueueOpenOptions o;
  o.config.path = path;
  o.config.sync = SyncMode::kNormal;
  o.config.max_bytes = 1LL << 40;
  auto q = std::move(OpenSqliteQueue(o)).value();
  const int64_t start = 1764000000LL * 1'000'000'000;
  BatchInput batch;
  for (int64_t i = 0; i < points; ++i) {
    const int g = static_cast<int>(i % generators);
    const int64_t ts = start + i * (5'000'000'000LL / generators);  // each generator every 5 s
    char line[256];
    std::snprintf(line, sizeof(line),
                  "genData,generatorID=generator%d fuel=%lld,lat=40.68066,load=%lld,lon=-73.47429,power=1066,"
                  "temperature=217 %lld",
                  g, static_cast<long long>(1000 - i % 900), static_cast<long long>(i % 100),
                  static_cast<long long>(ts));
    batch.lines.emplace_back(line);
    if (batch.lines.size() == 1000 || i + 1 == points) {
      (void)q->Append({batch}, {});
      batch.lines.clear();
    }
  }
  return q;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t points = argc > 1 ? std::atoll(argv[1]) : 1'000'000;
  const int generators = argc > 2 ? std::atoi(argv[2]) : 100;
  const std::string dir = argc > 3 ? argv[3] : std::filesystem::temp_directory_path().string();
  const std::string path = dir + "/downsample_bench_" + std::to_string(::getpid()) + ".db";

  auto q = FreshQueue(path, points, generators);
  auto t0 = std::chrono::steady_clock::now();
  (void)q->RegisterConsumer("baseline", "raw");
  int64_t parsed = 0;
  while (true) {
    auto batches = q->Read("baseline", 5000);
    if (!batches.ok() || batches->empty()) break;
    for (const auto& b : *batches) {
      for (const auto& l : b.lines) parsed += ParseLine(l).ok();
    }
    (void)q->Ack("baseline", batches->back().seq, SinkAttempt{.state = SinkState::kOk}, {});
  }
  const double baseline_s = Seconds(t0);

  q.reset();
  q = FreshQueue(path, points, generators);
  ConfigParseResult parsed_config =
      ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_DOWNSAMPLE_PRESET", "seed"}});
  // Destroyed before the queue it watches.
  auto task = std::make_unique<DownsampleTask>(parsed_config.config.downsample, q.get(), &SystemClock::Instance());
  (void)task->Start();
  t0 = std::chrono::steady_clock::now();
  while (task->Step() == 0) {
  }
  const double task_s = Seconds(t0);
  const auto& c = task->engine().counters();
  std::printf("downsample replay: %lld points, %d generators\n", static_cast<long long>(points), generators);
  std::printf("  baseline read+parse+ack : %8.0f points/s (%.2f s, %lld parsed)\n", points / baseline_s, baseline_s,
              static_cast<long long>(parsed));
  std::printf("  edgeline downsampler    : %8.0f points/s (%.2f s, %lld rows out)\n", points / task_s, task_s,
              static_cast<long long>(c.points_out));
  std::printf("  ratio                   : %.2f\n", baseline_s / task_s);
  task.reset();
  q.reset();
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  return 0;
}
