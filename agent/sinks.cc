#include "agent/sinks.h"

#include <utility>

#include "common/log.h"
#include "common/strings.h"
#include "kafka/record_format.h"

namespace edgeline {

void Sinks::Add(std::unique_ptr<QueueConsumer> consumer) { consumers_.push_back(std::move(consumer)); }

Status Sinks::AddInflux(const Config& config, const std::string& name, std::string_view stream, InfluxTarget target,
                        Queue* queue, Env* env) {
  auto parts = std::make_unique<InfluxTargetParts>();
  HttpTransportOptions http;
  http.timeout_ns = config.influx.timeout_ns;
  http.connect_timeout_ns = config.influx.connect_timeout_ns;
  http.tls_skip_verify = config.influx.tls_skip_verify;
  http.ca_file = config.influx.ca_file;
  parts->transport = env->NewHttpTransport(http);
  parts->writer =
      std::make_unique<InfluxWriter>(config.influx, parts->transport.get(), env->clock(), std::move(target));
  ReplicatorOptions options;
  options.batch_points = config.influx.batch_points;
  options.retry_min_ns = config.influx.retry_min_ns;
  options.retry_max_ns = config.influx.retry_max_ns;
  options.max_bytes_per_sec = config.influx.max_bytes_per_sec;
  options.newest_first = config.influx.replay_order == "newest-first";
  auto replicator =
      std::make_unique<Replicator>(name, std::string(stream), queue, parts->writer.get(), env->clock(), options);
  RETURN_IF_ERROR(replicator->Start());
  LOG_INFO("agent") << "sink " << name << ": stream " << stream << " -> InfluxDB "
                    << parts->writer->TargetDescription();
  influx_.push_back(std::move(parts));
  Add(std::move(replicator));
  return Status::Ok();
}

Status Sinks::AddKafka(const Config& config, Queue* queue, Env* env) {
  ASSIGN_OR_RETURN(kafka_producer_, env->NewKafkaProducer(config.kafka));
  for (std::string_view stream : {kRawStream, kDownsampledStream}) {
    if (!Contains(config.kafka.streams, stream)) continue;
    if (stream == kDownsampledStream && !config.downsample.enabled) continue;
    if (stream == kRawStream && config.kafka.topic_map.empty()) {
      LOG_WARN("kafka") << "EDGELINE_KAFKA_TOPIC_MAP is empty: raw points are not mirrored";
      continue;
    }
    ASSIGN_OR_RETURN(TopicRouter router, TopicRouterForStream(stream, config.kafka, config.downsample.bucket));
    std::string name = "kafka-" + std::string(stream);
    auto mirror = std::make_unique<KafkaMirror>(name, std::string(stream), queue, kafka_producer_.get(), env->clock(),
                                                std::move(router), KafkaMirrorOptionsFromConfig(config.kafka));
    RETURN_IF_ERROR(mirror->Start());
    LOG_INFO("agent") << "sink " << name << ": stream " << stream << " -> Kafka " << kafka_producer_->Description();
    Add(std::move(mirror));
  }
  return Status::Ok();
}

Status Sinks::Build(const Config& config, Queue* queue, Env* env, MessagePublisher* mqtt) {
  const bool influx_raw = config.influx.enabled && Contains(config.influx.streams, kRawStream);
  const bool influx_downsampled =
      config.downsample.enabled && config.influx.enabled && Contains(config.influx.streams, kDownsampledStream);
  if (config.influx.tls_skip_verify && config.influx.enabled) {
    LOG_WARN("influx") << "TLS certificate verification is OFF (EDGELINE_INFLUX_TLS_SKIP_VERIFY=true)";
  }
  if (influx_raw) RETURN_IF_ERROR(AddInflux(config, "influx", kRawStream, {}, queue, env));
  if (config.downsample.enabled) {
    if (influx_downsampled) {
      InfluxTarget target{config.downsample.bucket, config.downsample.retention_policy};
      RETURN_IF_ERROR(AddInflux(config, "influx-downsampled", kDownsampledStream, target, queue, env));
    }
    if (!config.downsample.alarm_topic.empty()) {
      auto alarms = std::make_unique<AlarmPublisher>(queue, mqtt, env->clock());
      RETURN_IF_ERROR(alarms->Start());
      Add(std::move(alarms));
    }
    DownsampleTaskOptions task_options;
    const bool kafka_reads_it = config.kafka.enabled() && Contains(config.kafka.streams, kDownsampledStream);
    task_options.write_rows = influx_downsampled || kafka_reads_it;
    if (!task_options.write_rows) {
      LOG_WARN("downsample")
          << "no sink reads the downsampled stream (EDGELINE_INFLUX_STREAMS, EDGELINE_KAFKA_STREAMS): "
             "rows are not stored; alarms still work";
    }
    if (mqtt != nullptr) task_options.ingest_connected = [mqtt] { return mqtt->Connected(); };
    auto downsampler = std::make_unique<DownsampleTask>(config.downsample, queue, env->clock(), task_options);
    RETURN_IF_ERROR(downsampler->Start());
    Add(std::move(downsampler));
  }
  if (config.kafka.enabled()) RETURN_IF_ERROR(AddKafka(config, queue, env));
  const bool kafka_raw =
      config.kafka.enabled() && Contains(config.kafka.streams, kRawStream) && !config.kafka.topic_map.empty();
  if (!influx_raw && !kafka_raw && !config.downsample.enabled) {
    LOG_WARN("agent") << "no consumer of the raw stream (InfluxDB off or EDGELINE_INFLUX_STREAMS without raw, "
                         "no downsampling): data is queued until EDGELINE_QUEUE_MAX_AGE/MAX_BYTES drop it";
  }
  return Status::Ok();
}

void Sinks::StartThreads() {
  for (const auto& consumer : consumers_) {
    QueueConsumer* c = consumer.get();
    threads_.emplace_back([c](std::stop_token stop) { c->Run(stop); });
  }
}

void Sinks::StopThreads() {
  for (auto& t : threads_) t.request_stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  // Records still in flight are dropped unreported; the mirrors' cursors did not pass them, so
  // the next run sends them again.
  kafka_producer_.reset();
}

}  // namespace edgeline
