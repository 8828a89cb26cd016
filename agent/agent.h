// Agent: edgeline's composition root. From a validated Config and an Env it builds the queue,
// ingest (mapper, group committer, MQTT sessions), the sinks and the local HTTP endpoint, and
// runs them between Start() and Stop(). agent.cc is where to start reading the data path: each
// hop it wires is one file (see the comment on Start in agent.cc).
// Not thread-safe: Start and Stop from one thread. The Env must outlive the Agent.
#pragma once

#include <memory>
#include <string>

#include "agent/env.h"
#include "agent/housekeeping.h"
#include "agent/http_api.h"
#include "agent/sinks.h"
#include "common/status.h"
#include "config/config.h"
#include "ingest/device_status.h"
#include "ingest/group_committer.h"
#include "ingest/mapping.h"
#include "ingest/mqtt_ingest.h"
#include "storage/compactor.h"
#include "storage/queue.h"

namespace edgeline {

class Agent {
 public:
  Agent(Config config, Env* env);
  ~Agent();  // Stop()

  // Opens the queue, builds and registers every sink, connects MQTT, starts the sink threads,
  // the HTTP endpoint and housekeeping. REQUIRES: the caller holds the queue's instance lock
  // (one agent per queue file). On error nothing keeps running.
  Status Start();

  // Stops in the order that never acknowledges an uncommitted message: MQTT first (callbacks
  // blocked in a commit complete while the committer still runs), then the HTTP endpoint (writes
  // in flight finish their commit), the committer, housekeeping and the sinks; then records the
  // stopped state. Idempotent.
  void Stop();

  // The local HTTP endpoint's port (EDGELINE_HTTP_LISTEN may ask for 0); 0 when it is off.
  int http_port() const { return http_ ? http_->port() : 0; }

 private:
  // MQTT's message callback: map, commit, return (Paho then acknowledges).
  Status OnMqttMessage(const MqttMessage& message);
  // A message on a device status topic goes to the status mapper, any other to `data_mapper`.
  IngestMessage Prepare(const Mapper& data_mapper, std::string_view topic, std::string_view payload,
                        int64_t receive_ns, bool retained) const;
  void StartHttp();

  Config config_;
  Env* env_;
  const Clock* clock_;
  std::unique_ptr<Queue> queue_;
  std::unique_ptr<FieldTypeGuard> field_types_;
  std::unique_ptr<Mapper> mapper_;
  std::unique_ptr<DeviceStatusMapper> status_mapper_;  // EDGELINE_DEVICE_STATUS_TOPICS
  std::unique_ptr<FieldTypeGuard> replay_field_types_;  // declared types only
  std::unique_ptr<Mapper> replay_mapper_;                // for `edgeline dlq replay` of ingest entries
  std::unique_ptr<GroupCommitter> committer_;
  std::unique_ptr<MqttIngest> mqtt_;
  Sinks sinks_;
  std::unique_ptr<Housekeeping> housekeeping_;
  std::unique_ptr<Compactor> compactor_;  // none when EDGELINE_QUEUE_COMPACT_POINTS=0
  std::unique_ptr<HttpApi> http_;
  bool running_ = false;
};

}  // namespace edgeline
