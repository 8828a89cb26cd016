// AlarmPublisher: the sink that publishes alarm changes (stream "alarms", written by the
// downsampler in the same transaction as its windows) to MQTT, QoS 1 and retained, so local
// equipment reacts without the cloud. Its cursor ("mqtt-alarms") advances only after the broker
// acknowledged every record of a batch: at-least-once, in order; a broker outage only delays.
// A QueueConsumer. Borrows queue, publisher and clock. Step()/Run() on one thread; Notify() from
// any thread.
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.h"
#include "ingest/message_publisher.h"
#include "storage/queue.h"
#include "storage/queue_consumer.h"

namespace edgeline {

inline constexpr std::string_view kAlarmSink = "mqtt-alarms";

struct AlarmPublisherOptions {
  int64_t idle_ns = 1'000'000'000;
  int64_t retry_min_ns = 1'000'000'000;
  int64_t retry_max_ns = 30'000'000'000;
};

class AlarmPublisher final : public QueueConsumer {
 public:
  AlarmPublisher(Queue* queue, MessagePublisher* publisher, const Clock* clock, AlarmPublisherOptions options = {});

  int64_t Step() override;  // returns the ns to wait before the next step

  int consecutive_failures() const { return consecutive_failures_; }  // Step thread only

 private:
  bool WakeOnAppend() const override { return consecutive_failures_ == 0; }

  MessagePublisher* publisher_;
  const Clock* clock_;
  AlarmPublisherOptions options_;
  int consecutive_failures_ = 0;
};

}  // namespace edgeline
