#include "agent/agent.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "common/log.h"

namespace edgeline {

Agent::Agent(Config config, Env* env) : config_(std::move(config)), env_(env), clock_(env->clock()) {}

Agent::~Agent() { Stop(); }

// The data path of one MQTT message, one file per hop:
//   ingest/mqtt_ingest.cc      Paho delivers it to OnMqttMessage on its receive thread
//   ingest/mapping.cc          JSON or line protocol -> lines stamped with the receive time
//                              (ingest/device_status.cc for EDGELINE_DEVICE_STATUS_TOPICS);
//                              ingest/field_type_guard.cc refuses fields of the wrong type
//   ingest/group_committer.cc  committed to the queue with its dead letters; only then does
//                              OnMqttMessage return and Paho send the PUBACK
//   storage/sqlite_queue.cc    one transaction; the queue wakes the watchers of stream "raw"
//   replication/replicator.cc  the sink reads pending batches under its cursor ...
//   replication/influx_writer.cc  ... and writes them to InfluxDB; the cursor moves on 2xx
// The HTTP write endpoint (agent/http_api.cc) enters at the group committer; the downsampler,
// the Kafka mirrors and the alarm publisher are further consumers of the queue (agent/sinks.cc).
Status Agent::Start() {
  QueueOpenOptions qopts;
  qopts.config = config_.queue;
  qopts.clock = clock_;
  auto opened = OpenSqliteQueue(qopts);
  if (!opened.ok()) {
    return Status(opened.status().code(),
                  "cannot open queue " + config_.queue.path + ": " + opened.status().ToString());
  }
  queue_ = std::move(opened).value();
  // No Stats() here: it counts the whole file, which with a large backlog delays the first write.
  LOG_INFO("agent") << "queue " << config_.queue.path << " open";

  // Sinks registered before this are from an earlier configuration (status shows them inactive).
  const int64_t started_ns = clock_->WallNowNs();
  field_types_ = std::make_unique<FieldTypeGuard>(config_.mapping.field_types, queue_.get(), clock_);
  mapper_ = std::make_unique<Mapper>(config_.mapping, config_.mqtt.max_payload_bytes, field_types_.get());
  // `edgeline dlq replay` means "the cause is fixed" (e.g. a new database): replayed ingest dead
  // letters meet only the declared types; a type the server still holds refuses them in the sink,
  // which dead-letters just those fields again.
  replay_field_types_ = std::make_unique<FieldTypeGuard>(config_.mapping.field_types, nullptr, clock_);
  replay_mapper_ =
      std::make_unique<Mapper>(config_.mapping, config_.mqtt.max_payload_bytes, replay_field_types_.get());
  GroupCommitterOptions committer_options;
  committer_options.commit_interval_ns = config_.queue.commit_interval_ns;
  committer_options.commit_max_messages = config_.queue.commit_max_messages;
  committer_ = std::make_unique<GroupCommitter>(queue_.get(), clock_, committer_options);
  // Paho runs every MQTT session of the process on one receive thread, so at most one MQTT
  // message waits for a commit at a time, whatever the number of sessions.
  committer_->SetProducerCount(1);
  status_mapper_ = std::make_unique<DeviceStatusMapper>(config_.mapping, DeviceIdTag(config_));
  MqttConfig mqtt = config_.mqtt;
  for (std::string& filter : status_mapper_->SubscriptionFilters()) {
    if (std::find(mqtt.topics.begin(), mqtt.topics.end(), filter) == mqtt.topics.end()) mqtt.topics.push_back(filter);
  }
  mqtt_ = std::make_unique<MqttIngest>(
      mqtt, [this](const MqttMessage& message) { return OnMqttMessage(message); }, queue_.get());

  Status built = sinks_.Build(config_, queue_.get(), env_, mqtt_.get());
  if (!built.ok()) return Status(built.code(), "cannot start the sinks: " + built.ToString());

  // MQTT first: its sessions must exist before the alarm publisher or /health look at them.
  // Messages may arrive at once; their commits wake sinks that start just below.
  mqtt_->Start();
  sinks_.StartThreads();
  Housekeeping::Parts parts;
  parts.queue = queue_.get();
  parts.clock = clock_;
  parts.remap = [this](std::string_view topic, std::string_view payload, int64_t receive_ns) {
    return Prepare(*replay_mapper_, topic, payload, receive_ns, /*retained=*/false);
  };
  parts.committer = committer_.get();
  parts.mqtt = mqtt_.get();
  parts.queue_path = config_.queue.path;
  parts.started_ns = started_ns;
  parts.queue_max_bytes = config_.queue.max_bytes;
  parts.queue_full_policy = config_.queue.full_policy;
  housekeeping_ = std::make_unique<Housekeeping>(std::move(parts));
  if (config_.http.enabled()) StartHttp();
  housekeeping_->Start();
  if (config_.queue.compact_points > 0) {
    CompactOptions compact;
    compact.target_points = config_.queue.compact_points;
    compact.target_raw_bytes = config_.queue.compact_bytes;
    compactor_ = std::make_unique<Compactor>(queue_.get(), compact);
    compactor_->Start();
  }
  running_ = true;
  LOG_INFO("agent") << "edgeline running (pid " << ::getpid() << ")";
  return Status::Ok();
}

Status Agent::OnMqttMessage(const MqttMessage& message) {
  MqttReceipt receipt;
  if (message.qos > 0) {
    receipt = {std::string(message.session), message.packet_id, message.qos,
               MqttDigest(message.topic, message.payload), message.connection};
    // The broker resends a QoS 1 message whose PUBACK it did not get, after a reconnect and
    // with DUP set. One already stored is acknowledged, not stored again.
    if (message.qos == 1 && message.dup) {
      Result<bool> stored = queue_->StoredOnEarlierConnection(receipt);
      if (stored.ok() && *stored) {
        Status counted = queue_->CountSuppressedDuplicate(receipt.session);
        if (!counted.ok()) LOG_WARN("mqtt") << "cannot count a suppressed redelivery: " << counted.ToString();
        LOG_DEBUG("mqtt") << "redelivery of packet " << message.packet_id << " on " << message.topic
                          << " is already stored; acknowledged without storing it again";
        return Status::Ok();
      }
    }
  }
  // The receive time is fixed here, once: a replay of the stored point writes it identically.
  IngestMessage prepared = Prepare(*mapper_, message.topic, message.payload, clock_->WallNowNs(), message.retained);
  if (message.qos > 0) prepared.receipt = std::move(receipt);
  return committer_->Submit(std::move(prepared));
}

IngestMessage Agent::Prepare(const Mapper& data_mapper, std::string_view topic, std::string_view payload,
                             int64_t receive_ns, bool retained) const {
  return status_mapper_->Matches(topic) ? status_mapper_->Prepare(topic, payload, receive_ns, retained)
                                        : data_mapper.Prepare(topic, payload, receive_ns);
}

void Agent::StartHttp() {
  HttpApiOptions options;
  options.listen = config_.http.listen;
  options.token = config_.http.token;
  options.max_body_bytes = config_.http.max_body_bytes;
  options.queue_max_bytes = config_.queue.max_bytes;
  options.queue_full_policy = config_.queue.full_policy;
  AgentProbe probe;
  MqttIngest* mqtt = mqtt_.get();
  Housekeeping* housekeeping = housekeeping_.get();
  probe.mqtt_sessions = [mqtt] { return mqtt->sessions(); };
  probe.mqtt_connected = [mqtt] { return mqtt->connected_sessions(); };
  probe.ingest = &committer_->counters();
  probe.state_write_failing = [housekeeping] { return housekeeping->state_write_failing(); };
  http_ = std::make_unique<HttpApi>(options, queue_.get(), committer_.get(), clock_, probe, field_types_.get());
  Status listening = http_->Start();
  if (!listening.ok()) {
    // MQTT ingest does not depend on it: keep running, say so loudly.
    LOG_ERROR("http") << listening.message() << " (EDGELINE_HTTP_LISTEN): /health, /metrics and the write "
                      << "endpoints are off";
    http_.reset();
  } else if (config_.http.token.empty() && config_.http.listen.rfind("127.", 0) != 0 &&
             config_.http.listen.rfind("localhost:", 0) != 0 && config_.http.listen.rfind("[::1]:", 0) != 0) {
    LOG_WARN("http") << "listening beyond loopback without EDGELINE_HTTP_TOKEN: anyone who reaches it can write";
  }
}

void Agent::Stop() {
  if (!running_) return;
  running_ = false;
  mqtt_->Stop();
  if (http_) http_->Stop();
  committer_->Stop();
  if (compactor_) compactor_->Stop();
  housekeeping_->Stop();
  sinks_.StopThreads();
  (void)housekeeping_->WriteState(/*running=*/false);
  LOG_INFO("agent") << "stopped";
}

}  // namespace edgeline
