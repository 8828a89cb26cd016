// `edgeline simulate`: the seed's emergency generator simulator. N generators, each its own MQTT
// client (id edgeline-sim-<generatorID>), publish the seed's flat JSON payload to
// <prefix>/<generatorID> every 5-15 s, at a total --rate, or as fast as acks allow (--rate max).
// GeneratorModel and PublishSchedule are pure (seeded RNG, no I/O, no clock) and unit-tested;
// RunSimulator owns the Paho clients. Model and schedule are single-threaded values;
// RunSimulator is called once per process and returns when done or stopped.
#pragma once

#include <cstdint>
#include <map>
#include <queue>
#include <random>
#include <stop_token>
#include <string>
#include <vector>

#include "common/status.h"

namespace edgeline {

inline constexpr double kRateMax = -1;  // SimulatorOptions::rate for "--rate max"

struct SimulatorOptions {
  std::string url = "tcp://127.0.0.1:1883";          // --url, else EDGELINE_MQTT_URL
  int generators = 3;                                // --generators 1..1000
  int64_t interval_min_ns = 5'000'000'000;           // --interval 5s-15s or 10s: per generator,
  int64_t interval_max_ns = 15'000'000'000;          // uniformly random in [min, max]
  double rate = 0;                                   // --rate: total msgs/s across generators when > 0 (overrides the
                                                     // interval); kRateMax = as fast as acks allow
  int qos = 1;                                       // --qos 0|1|2
  int64_t count = 0;                                 // --count: total messages, 0 = unlimited
  int64_t duration_ns = 0;                           // --duration, 0 = unlimited
  std::string topic_prefix = "emergency_generator";  // --prefix
  uint32_t seed = 0;                                 // --seed, 0 = random
  std::string silence_id;                            // --silence ID@D: this generator stops
  int64_t silence_after_ns = 0;                      // publishing D after the start (stays connected)
  std::string username;                              // EDGELINE_MQTT_USERNAME
  std::string password;                              // EDGELINE_MQTT_PASSWORD (secret: never printed)
};

extern const char kSimulatorUsage[];

// Parses the arguments after `simulate`; `env` supplies EDGELINE_MQTT_URL/USERNAME/PASSWORD
// defaults. On error the InvalidArgument message lists every problem, one per line.
Result<SimulatorOptions> ParseSimulatorArgs(const std::vector<std::string>& args,
                                            const std::map<std::string, std::string>& env);

// Connects every generator, publishes until count/duration/stop, waits (bounded) for the
// outstanding acks, disconnects, prints a one-line summary on stdout. Returns the exit code:
// 0 all acknowledged, 1 connect failure or any failed/unacknowledged message, 2 invalid options.
int RunSimulator(const SimulatorOptions& options, std::stop_token stop);

// One generator's reading, as the seed publishes it (integers as in tests/fixtures).
struct GeneratorReading {
  std::string generator_id;
  double lat = 0;
  double lon = 0;
  int64_t temperature = 0;
  int64_t power = 0;
  int64_t load = 0;
  int64_t fuel = 0;
};

// "generator<index+1>".
std::string GeneratorId(int index);
// <prefix>/<generatorID>
std::string GeneratorTopic(const std::string& prefix, const std::string& generator_id);
// The seed's flat JSON, same key order and spacing as the fixture:
// {"generatorID": "generator1", "lat": 40.68066, "lon": -73.47429, "temperature": 203, ...}
std::string GeneratorPayload(const GeneratorReading& reading);

// One generator's state. Load random-walks in 0..100; power = load*26 and temperature =
// 160 + 1.4*load (what the fixture shows); fuel falls by load/10 per tick and refills to 1000
// when under 100. Initial fuel is random in 200..1000 so that, with the seed's fuel<500 rule,
// some generators need "refuel" early and alarms flip during a short demo.
class GeneratorModel {
 public:
  static constexpr int64_t kFuelFull = 1000;
  static constexpr int64_t kFuelRefillBelow = 100;

  GeneratorModel(int index, uint32_t seed);
  GeneratorReading Next();  // advances one tick
  const std::string& id() const { return id_; }

 private:
  std::string id_;
  double lat_;
  double lon_;
  int64_t load_;
  int64_t fuel_;
  std::mt19937 rng_;
};

// When each message is due, in steady-clock ns. With a rate, message k goes to generator
// k mod N at start + k/rate (no drift); with kRateMax every slot is due at start; otherwise each
// generator publishes at its own random interval, its first message within one interval_min.
class PublishSchedule {
 public:
  struct Slot {
    int generator = 0;
    int64_t due_ns = 0;
  };

  PublishSchedule(const SimulatorOptions& options, int64_t start_ns, uint32_t seed);
  Slot Next();  // the earliest pending slot; schedules that generator's next one

 private:
  struct Later {
    bool operator()(const Slot& a, const Slot& b) const {
      return a.due_ns != b.due_ns ? a.due_ns > b.due_ns : a.generator > b.generator;
    }
  };
  int64_t RandomInterval();

  SimulatorOptions options_;
  int64_t start_ns_;
  int64_t k_ = 0;  // slots handed out so far (rate modes)
  std::mt19937 rng_;
  std::priority_queue<Slot, std::vector<Slot>, Later> pending_;  // interval mode
};

}  // namespace edgeline
