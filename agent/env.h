// Env: what the agent takes from the machine it runs on, bundled so the composition root
// (Agent) never names a concrete clock, HTTP client or Kafka client. DefaultEnv() is the real
// machine (SystemClock, libcurl, librdkafka); tests pass their own. Implementations are
// thread-safe; the default one lives for the whole process.
#pragma once

#include <memory>

#include "common/clock.h"
#include "common/status.h"
#include "config/config.h"
#include "kafka/producer.h"
#include "replication/http_transport.h"

namespace edgeline {

class Env {
 public:
  virtual ~Env() = default;
  virtual const Clock* clock() = 0;
  // One HTTP connection for one InfluxDB sink.
  virtual std::unique_ptr<HttpTransport> NewHttpTransport(const HttpTransportOptions& options) = 0;
  // The Kafka producer shared by the Kafka mirrors.
  virtual Result<std::unique_ptr<Producer>> NewKafkaProducer(const KafkaConfig& config) = 0;
};

Env* DefaultEnv();

}  // namespace edgeline
