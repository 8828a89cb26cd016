// Sinks: every consumer of the queue that the configuration asks for, built and registered in
// one place: the InfluxDB replicators (raw and downsampled), the downsampler, the MQTT alarm
// publisher and the Kafka mirrors. All are registered (Start) before any thread runs: GC counts
// only the consumers registered in this run, so one registered late could find its batches
// collected. Each runs on its own thread between StartThreads and StopThreads; the queue wakes
// them when their stream grows. Not thread-safe: owned by the Agent.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "agent/alarm_publisher.h"
#include "agent/env.h"
#include "config/config.h"
#include "downsample/downsample_task.h"
#include "ingest/message_publisher.h"
#include "kafka/kafka_mirror.h"
#include "kafka/producer.h"
#include "replication/http_transport.h"
#include "replication/influx_writer.h"
#include "replication/replicator.h"
#include "storage/queue.h"
#include "storage/queue_consumer.h"

namespace edgeline {

class Sinks {
 public:
  Sinks() = default;
  ~Sinks() { StopThreads(); }

  // Builds and registers every configured sink. `mqtt` publishes the alarm changes.
  Status Build(const Config& config, Queue* queue, Env* env, MessagePublisher* mqtt);

  void StartThreads();
  // Stops and joins every sink thread; then drops the Kafka records still in flight (the
  // mirrors' cursors did not pass them, so the next run sends them again).
  void StopThreads();

 private:
  // What an InfluxDB replicator borrows: its connection and its writer.
  struct InfluxTargetParts {
    std::unique_ptr<HttpTransport> transport;
    std::unique_ptr<InfluxWriter> writer;
  };
  Status AddInflux(const Config& config, const std::string& name, std::string_view stream, InfluxTarget target,
                   Queue* queue, Env* env);
  Status AddKafka(const Config& config, Queue* queue, Env* env);
  void Add(std::unique_ptr<QueueConsumer> consumer);

  // Destroyed in reverse order: the producer first (records in flight report to the mirrors),
  // then the consumers, then what the replicators borrow.
  std::vector<std::unique_ptr<InfluxTargetParts>> influx_;
  std::vector<std::unique_ptr<QueueConsumer>> consumers_;
  std::unique_ptr<Producer> kafka_producer_;
  std::vector<std::jthread> threads_;
};

}  // namespace edgeline
