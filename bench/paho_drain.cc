// Baseline for bench/ingest_bench.sh: the same Paho C++ client edgeline uses (persistent
// session, QoS 1, message callback on Paho's receive thread), doing nothing per message but
// counting. Whatever edgeline is slower than this is our cost (mapping, commit, handoff);
// whatever this is slower than mosquitto_sub is Paho's.
// Usage: paho_drain URL CLIENT_ID TOPIC N   (exits after N messages; prints msgs/s)
#include <mqtt/async_client.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: paho_drain URL CLIENT_ID TOPIC N\n");
    return 2;
  }
  const long target = std::atol(argv[4]);
  std::atomic<long> received{0};
  std::mutex m;
  std::condition_variable cv;
  std::chrono::steady_clock::time_point first;
  try {
    mqtt::async_client client(argv[1], argv[2]);
    client.set_message_callback([&](mqtt::const_message_ptr) {
      if (received.fetch_add(1) == 0) first = std::chrono::steady_clock::now();
      if (received.load() >= target) cv.notify_all();
    });
    mqtt::connect_options opts;
    opts.set_clean_session(false);
    const auto start = std::chrono::steady_clock::now();
    client.connect(opts)->wait();
    client.subscribe(argv[3], 1)->wait();
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return received.load() >= target; });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%.0f\n", target / secs);
    client.disconnect()->wait();
  } catch (const mqtt::exception& e) {
    std::fprintf(stderr, "paho_drain: %s\n", e.what());
    return 1;
  }
  return 0;
}
