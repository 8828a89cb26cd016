// P5 of bench/run.sh (not a test): publish -> visible in InfluxDB latency. Publishes the seed's
// payload plus a unique "seq" at RATE msg/s (QoS 1, topic emergency_generator/probe) for SECONDS
// while another thread polls InfluxDB 1.x every POLL_MS for the seqs that arrived; latency of a
// message = first poll that saw it - its publish time (same process, steady clock), so it
// includes up to one poll period. Prints one JSON object with percentiles in ms.
// Usage: latency_probe MQTT_URL INFLUX_URL DB RATE SECONDS [POLL_MS]
#include <curl/curl.h>
#include <mqtt/async_client.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string UrlEncode(CURL* curl, const std::string& s) {
  char* e = curl_easy_escape(curl, s.c_str(), static_cast<int>(s.size()));
  std::string out(e);
  curl_free(e);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: latency_probe MQTT_URL INFLUX_URL DB RATE SECONDS [POLL_MS]\n");
    return 2;
  }
  const std::string mqtt_url = argv[1], influx = argv[2], db = argv[3];
  const double rate = std::atof(argv[4]);
  const double seconds = std::atof(argv[5]);
  const int poll_ms = argc > 6 ? std::atoi(argv[6]) : 10;
  const int64_t total = static_cast<int64_t>(rate * seconds);

  std::vector<Clock::time_point> published(static_cast<size_t>(total));
  std::vector<Clock::time_point> seen(static_cast<size_t>(total));
  std::vector<char> is_seen(static_cast<size_t>(total), 0);
  std::atomic<int64_t> published_count{0};
  std::atomic<bool> stop_polling{false};
  std::atomic<int64_t> seen_count{0};  // the poller writes is_seen/seen; main reads them after join

  std::thread poller([&] {
    CURL* curl = curl_easy_init();
    std::string body;
    int64_t cursor_ns = 0;  // only points newer than the newest seen minus a margin
    while (!stop_polling.load()) {
      const auto next = Clock::now() + std::chrono::milliseconds(poll_ms);
      const std::string q = "SELECT seq FROM genData WHERE generatorID='probe' AND time > " + std::to_string(cursor_ns);
      const std::string url = influx + "/query?epoch=ns&db=" + UrlEncode(curl, db) + "&q=" + UrlEncode(curl, q);
      body.clear();
      curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
      if (curl_easy_perform(curl) == CURLE_OK) {
        const auto now = Clock::now();
        auto j = nlohmann::json::parse(body, nullptr, false);
        if (!j.is_discarded() && j.contains("results") && j["results"][0].contains("series")) {
          for (const auto& v : j["results"][0]["series"][0]["values"]) {
            const int64_t t = v[0].get<int64_t>();
            const int64_t seq = static_cast<int64_t>(v[1].get<double>());
            if (seq < 0 || seq >= total || is_seen[static_cast<size_t>(seq)]) continue;
            is_seen[static_cast<size_t>(seq)] = 1;
            seen[static_cast<size_t>(seq)] = now;
            ++seen_count;
            cursor_ns = std::max(cursor_ns, t - 2'000'000'000);
          }
        }
      }
      std::this_thread::sleep_until(next);
    }
    curl_easy_cleanup(curl);
  });

  try {
    mqtt::async_client client(mqtt_url, "edgeline-bench-probe");
    mqtt::connect_options opts;
    opts.set_clean_session(true);
    client.connect(opts)->wait();
    const auto start = Clock::now();
    for (int64_t k = 0; k < total; ++k) {
      std::this_thread::sleep_until(start + std::chrono::nanoseconds(static_cast<int64_t>(k * 1e9 / rate)));
      const std::string payload =
          "{\"generatorID\": \"probe\", \"lat\": 40.68066, \"lon\": -73.47429, \"temperature\": 203, "
          "\"power\": 806, \"load\": 31, \"fuel\": 909, \"seq\": " +
          std::to_string(k) + "}";
      published[static_cast<size_t>(k)] = Clock::now();
      client.publish("emergency_generator/probe", payload.data(), payload.size(), 1, false)->wait();
      published_count++;
    }
    client.disconnect()->wait();
  } catch (const mqtt::exception& e) {
    std::fprintf(stderr, "latency_probe: %s\n", e.what());
    stop_polling = true;
    poller.join();
    return 1;
  }
  // Let the tail arrive (bounded).
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (seen_count.load() == total) break;
  }
  stop_polling = true;
  poller.join();

  std::vector<double> ms;
  for (int64_t k = 0; k < total; ++k) {
    if (!is_seen[static_cast<size_t>(k)]) continue;
    ms.push_back(
        std::chrono::duration<double, std::milli>(seen[static_cast<size_t>(k)] - published[static_cast<size_t>(k)])
            .count());
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms.empty() ? -1.0 : ms[static_cast<size_t>(p * (ms.size() - 1))]; };
  std::printf(
      "{\"published\": %lld, \"seen\": %lld, \"poll_ms\": %d, \"p50_ms\": %.1f, \"p99_ms\": %.1f, "
      "\"max_ms\": %.1f}\n",
      static_cast<long long>(published_count.load()), static_cast<long long>(seen_count.load()), poll_ms, pct(0.5),
      pct(0.99), ms.empty() ? -1.0 : ms.back());
  return 0;
}
