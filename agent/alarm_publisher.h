// AlarmPublisher: the sink that publishes alarm changes (stream "alarms", written by the
// downsampler in the same transaction as its windows) to MQTT, QoS 1 and retained, so local
// equipment reacts without the cloud. Its cursor ("mqtt-alarms") advances only after the broker
// acknowledged every record of a batch: at-least-once, in order; a broker outage only delays.
// Borrows queue, publisher and clock. Step()/Run() on one thread; Notify() from any thread.
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>

#include "agent/message_publisher.h"
#include "common/clock.h"
#include "common/wakeup.h"
#include "storage/queue.h"

namespace edgeline {

inline constexpr std::string_view kAlarmSink = "mqtt-alarms";

struct AlarmPublisherOptions {
  int64_t idle_ns = 1'000'000'000;
  int64_t retry_min_ns = 1'000'000'000;
  int64_t retry_max_ns = 30'000'000'000;
};

class AlarmPublisher {
 public:
  AlarmPublisher(Queue* queue, MessagePublisher* publisher, const Clock* clock,
                 AlarmPublisherOptions options = {});

  Status Start();  // registers the consumer
  int64_t Step();  // returns the ns to wait before the next step
  void Run(std::stop_token stop);
  void Notify();

  int consecutive_failures() const { return consecutive_failures_; }  // Step thread only

 private:
  Queue* queue_;
  MessagePublisher* publisher_;
  const Clock* clock_;
  AlarmPublisherOptions options_;
  bool started_ = false;
  int consecutive_failures_ = 0;

  Wakeup wakeup_;
};

}  // namespace edgeline
