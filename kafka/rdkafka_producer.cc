// The librdkafka (C API) implementation of Producer. Each record carries a heap Envelope
// {listener, token} as its librdkafka opaque; the delivery callback routes the report to that
// listener and frees the envelope.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>

#include "common/log.h"
#include "common/strings.h"
#include "kafka/producer.h"

namespace edgeline {

namespace {

constexpr std::string_view kLog = "kafka";
constexpr int kPollIntervalMs = 100;
constexpr int kCloseTimeoutMs = 2000;

struct Envelope {
  DeliveryListener* listener;
  uint64_t token;
};

// What a Kafka error means for the mirror (see producer.h). Delivery reports carry plain error
// codes: librdkafka has already retried the retriable ones (message.send.max.retries, until
// message.timeout.ms), so a report still failing with one of those means "not now", never "never".
StatusCode ClassifyError(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION: return StatusCode::kPermissionDenied;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART: return StatusCode::kNotFound;
    // This record is refused for good: larger than message.max.bytes (locally, at produce) or
    // than the topic's max.message.bytes, a batch larger than the segment size, a record the
    // broker's validation refuses (e.g. no key on a compacted topic).
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__INVALID_ARG: return StatusCode::kInvalidArgument;
    // Refused whatever the record: the producer's configuration, the broker's message format or
    // policy, or a clock outside the broker's timestamp window. Retried slowly ("rejecting"):
    // dead-lettering would empty the stream into the dead-letter queue.
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP: return StatusCode::kFailedPrecondition;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL: return StatusCode::kResourceExhausted;
    case RD_KAFKA_RESP_ERR__FATAL: return StatusCode::kInternal;
    default: return StatusCode::kUnavailable;
  }
}

Status KafkaStatus(rd_kafka_resp_err_t err) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  return Status(ClassifyError(err), std::string(rd_kafka_err2name(err)) + ": " + rd_kafka_err2str(err));
}

class RdKafkaProducer final : public Producer {
 public:
  RdKafkaProducer(std::string brokers, std::string password)
      : brokers_(std::move(brokers)), password_(std::move(password)) {}

  ~RdKafkaProducer() override {
    poller_.request_stop();
    if (poller_.joinable()) poller_.join();
    if (rk_ == nullptr) return;
    closing_ = true;
    // Reports are served (to free the envelopes) but not passed on: see producer.h.
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk_, kCloseTimeoutMs);
    rd_kafka_destroy(rk_);
  }

  Status Init(const KafkaConfig& config) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    Status status = Configure(conf, config);
    if (!status.ok()) {
      rd_kafka_conf_destroy(conf);
      return status;
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &RdKafkaProducer::DeliveryCallback);
    rd_kafka_conf_set_error_cb(conf, &RdKafkaProducer::ErrorCallback);
    rd_kafka_conf_set_log_cb(conf, &RdKafkaProducer::LogCallback);
    char errstr[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));  // owns conf on success
    if (rk_ == nullptr) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument("Kafka producer: " + Scrub(errstr));
    }
    poller_ = std::jthread([this](std::stop_token stop) {
      while (!stop.stop_requested()) rd_kafka_poll(rk_, kPollIntervalMs);
    });
    return Status::Ok();
  }

  Status Produce(std::string_view topic, std::string_view key, std::string_view value,
                 std::span<const RecordHeader> headers, DeliveryListener* listener, uint64_t token) override {
    // Ours until producev succeeds, then librdkafka's.
    rd_kafka_headers_t* hdrs = nullptr;
    if (!headers.empty()) {
      hdrs = rd_kafka_headers_new(headers.size());
      for (const RecordHeader& h : headers) {
        rd_kafka_header_add(hdrs, h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                            static_cast<ssize_t>(h.value.size()));
      }
    }
    auto* envelope = new Envelope{listener, token};
    const std::string topic_name(topic);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_, RD_KAFKA_V_TOPIC(topic_name.c_str()), RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(envelope), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (hdrs != nullptr) rd_kafka_headers_destroy(hdrs);
      delete envelope;
      return KafkaStatus(err);
    }
    return Status::Ok();
  }

  int Poll(int timeout_ms) override { return rd_kafka_poll(rk_, timeout_ms); }

  Status Flush(int timeout_ms) override { return KafkaStatus(rd_kafka_flush(rk_, timeout_ms)); }

  Status LastError() const override {
    if (!has_error_.load(std::memory_order_acquire)) return Status::Ok();
    std::lock_guard<std::mutex> lock(mu_);
    return last_error_;
  }

  std::string Description() const override { return "kafka " + brokers_; }

 private:
  // The password is never printed, but librdkafka's own messages are not ours to vouch for.
  std::string Scrub(std::string text) const {
    if (password_.empty()) return text;
    for (size_t pos = text.find(password_); pos != std::string::npos; pos = text.find(password_, pos)) {
      text.replace(pos, password_.size(), "***");
    }
    return text;
  }

  static Status Set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
    char errstr[512];
    switch (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof(errstr))) {
      case RD_KAFKA_CONF_OK: return Status::Ok();
      case RD_KAFKA_CONF_UNKNOWN:
        return Status::InvalidArgument("Kafka property \"" + name + "\" is unknown to librdkafka");
      case RD_KAFKA_CONF_INVALID: break;
    }
    // librdkafka's message quotes the value, which may be a secret.
    return Status::InvalidArgument("Kafka property \"" + name + "\" has an invalid value");
  }

  Status Configure(rd_kafka_conf_t* conf, const KafkaConfig& config) {
    RETURN_IF_ERROR(Set(conf, "bootstrap.servers", config.brokers));
    RETURN_IF_ERROR(Set(conf, "client.id", "edgeline"));
    RETURN_IF_ERROR(Set(conf, "enable.idempotence", "true"));
    RETURN_IF_ERROR(Set(conf, "acks", "all"));
    RETURN_IF_ERROR(Set(conf, "compression.codec", config.compression));
    RETURN_IF_ERROR(Set(conf, "partitioner", "murmur2_random"));
    const std::string protocol = Lower(config.security_protocol);
    if (!protocol.empty()) RETURN_IF_ERROR(Set(conf, "security.protocol", protocol));
    if (protocol.rfind("sasl", 0) == 0) {
      if (!config.sasl_mechanism.empty()) RETURN_IF_ERROR(Set(conf, "sasl.mechanism", config.sasl_mechanism));
      if (!config.sasl_username.empty()) RETURN_IF_ERROR(Set(conf, "sasl.username", config.sasl_username));
      if (!config.sasl_password.empty()) RETURN_IF_ERROR(Set(conf, "sasl.password", config.sasl_password));
    }
    if (!config.ca_file.empty()) RETURN_IF_ERROR(Set(conf, "ssl.ca.location", config.ca_file));
    for (const auto& [name, value] : config.properties) RETURN_IF_ERROR(Set(conf, name, value));
    return Status::Ok();
  }

  static void DeliveryCallback(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
    auto* self = static_cast<RdKafkaProducer*>(opaque);
    auto* envelope = static_cast<Envelope*>(message->_private);
    if (envelope == nullptr) return;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR && self->has_error_.load(std::memory_order_relaxed)) {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->last_error_ = Status::Ok();
      self->has_error_.store(false, std::memory_order_release);
    }
    if (!self->closing_.load()) envelope->listener->OnDelivery(envelope->token, KafkaStatus(message->err));
    delete envelope;
  }

  static void ErrorCallback(rd_kafka_t*, int err, const char* reason, void* opaque) {
    auto* self = static_cast<RdKafkaProducer*>(opaque);
    const auto code = static_cast<rd_kafka_resp_err_t>(err);
    std::string text = self->Scrub(std::string(rd_kafka_err2name(code)) + ": " + (reason ? reason : ""));
    // Connection failures are logged by librdkafka itself (log_cb) already.
    if (code != RD_KAFKA_RESP_ERR__TRANSPORT) LOG_WARN(kLog) << text;
    std::lock_guard<std::mutex> lock(self->mu_);
    // Refused credentials explain the disconnects that follow them: keep them until a delivery.
    const StatusCode kind = ClassifyError(code);
    if (self->last_error_.code() == StatusCode::kPermissionDenied && kind != StatusCode::kPermissionDenied) return;
    self->last_error_ = Status(kind, std::move(text));
    self->has_error_.store(true, std::memory_order_release);
  }

  static void LogCallback(const rd_kafka_t* rk, int level, const char* facility, const char* buf) {
    // syslog levels: 0-2 emergency..critical, 3 error, 4 warning, 5 notice, 6 info, 7 debug.
    LogLevel ours = level <= 2   ? LogLevel::kError
                    : level <= 4 ? LogLevel::kWarn
                    : level <= 6 ? LogLevel::kInfo
                                 : LogLevel::kDebug;
    if (ours < GetLogLevel()) return;
    const auto* self = static_cast<const RdKafkaProducer*>(rd_kafka_opaque(rk));
    std::string text = std::string(facility ? facility : "") + ": " + (buf ? buf : "");
    LogLine(ours, kLog, self != nullptr ? self->Scrub(std::move(text)) : "(message withheld)");
  }

  const std::string brokers_;
  const std::string password_;
  rd_kafka_t* rk_ = nullptr;
  std::jthread poller_;
  std::atomic<bool> closing_{false};

  mutable std::mutex mu_;
  Status last_error_;  // guarded by mu_
  std::atomic<bool> has_error_{false};
};

}  // namespace

Result<std::unique_ptr<Producer>> NewRdKafkaProducer(const KafkaConfig& config) {
  if (config.brokers.empty()) return Status::InvalidArgument("Kafka producer: no brokers configured");
  auto producer = std::make_unique<RdKafkaProducer>(config.brokers, config.sasl_password);
  RETURN_IF_ERROR(producer->Init(config));
  return std::unique_ptr<Producer>(std::move(producer));
}

}  // namespace edgeline
