// Producer: the small slice of a Kafka producer the mirror needs (produce with a per-record token,
// delivery reports to a listener, flush, last error), so the mirror is tested with a fake and
// only kafka/rdkafka_producer.cc calls librdkafka. One producer may serve several listeners
// (librdkafka advises one producer per process); each record names its own listener.
// Thread-safe: every method may be called from any thread. Listeners are called on the thread
// that serves reports (Poll's caller, or the librdkafka producer's own poll thread).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "config/config.h"

namespace edgeline {

// Receives the one delivery report of each record produced with it.
class DeliveryListener {
 public:
  virtual ~DeliveryListener() = default;
  // `status` is OK when the broker acknowledged the record (acks=all); otherwise its message
  // starts with the Kafka error name (e.g. "_MSG_TIMED_OUT: Local: Message timed out") and its
  // code says what kind of failure it is:
  //   kInvalidArgument    this record is refused for good, retrying cannot help (the mirror
  //                       dead-letters it): MSG_SIZE_TOO_LARGE, RECORD_LIST_TOO_LARGE,
  //                       INVALID_RECORD, _INVALID_ARG
  //   kFailedPrecondition every record would be refused until the configuration (or the clock)
  //                       is fixed: INVALID_REQUIRED_ACKS, UNSUPPORTED_FOR_MESSAGE_FORMAT,
  //                       UNSUPPORTED_COMPRESSION_TYPE, POLICY_VIOLATION, INVALID_TIMESTAMP
  //   kPermissionDenied   authentication/authorization; kNotFound unknown topic
  //   kInternal           fatal producer error (_FATAL)
  //   kUnavailable        everything else, retriable: timeouts, brokers down, LEADER_NOT_AVAILABLE,
  //                       NOT_ENOUGH_REPLICAS(_AFTER_APPEND), REQUEST_TIMED_OUT, INVALID_MSG
  //                       (CRC mismatch: damaged in transit), and any code not listed here.
  // The broker refuses a produce request as a whole: a size refusal hits every record librdkafka
  // batched with the large one. Keep the producer's message.max.bytes at most the topic's
  // max.message.bytes, so a record too large is refused locally, alone, at Produce.
  // Must be quick and must not call back into the producer.
  virtual void OnDelivery(uint64_t token, const Status& status) = 0;
};

// One Kafka record header (the bytes are copied by Produce).
struct RecordHeader {
  std::string_view name;
  std::string_view value;
};

class Producer {
 public:
  virtual ~Producer() = default;

  // Queues one record with its headers (the bytes are copied). On success `listener` will be told the outcome
  // exactly once, with `token`; on error nothing was queued and it will not be called. Errors:
  // kInvalidArgument (this record can never be sent, e.g. larger than message.max.bytes),
  // kResourceExhausted (local queue full), others as for OnDelivery.
  // REQUIRES: `listener` stays alive until it has its report or the producer is destroyed.
  virtual Status Produce(std::string_view topic, std::string_view key, std::string_view value,
                         std::span<const RecordHeader> headers, DeliveryListener* listener, uint64_t token) = 0;

  // Serves pending delivery reports on the calling thread, waiting up to `timeout_ms` for the
  // first one. Returns how many events were served.
  virtual int Poll(int timeout_ms) = 0;

  // Waits until every queued record has been reported (serving the reports), or the timeout.
  virtual Status Flush(int timeout_ms) = 0;

  // The latest producer-wide error (e.g. "_ALL_BROKERS_DOWN: 3/3 brokers are down", classified
  // as for OnDelivery), cleared by the next successful delivery; OK when healthy. Never contains
  // secrets.
  virtual Status LastError() const = 0;

  // For logs: the bootstrap servers (never credentials).
  virtual std::string Description() const = 0;
};

// The librdkafka producer: enable.idempotence=true, acks=all, compression.codec, partitioner
// murmur2_random (the Java client's: same key -> same partition as other Kafka tools),
// bootstrap.servers, security.protocol, sasl.* (SASL protocols only), ssl.ca.location, then
// `config.properties` last (they override). A property librdkafka refuses gives
// InvalidArgument naming the property, never its value. It serves delivery reports from its
// own thread, so nobody has to call Poll. Its destructor drops the records still queued or in
// flight WITHOUT reporting them (listeners may already be gone; the mirror re-sends them from
// its cursor after a restart). REQUIRES: destroy it before its listeners (the daemon: stop the
// mirrors' threads, destroy the producer, then the mirrors).
Result<std::unique_ptr<Producer>> NewRdKafkaProducer(const KafkaConfig& config);

}  // namespace edgeline
