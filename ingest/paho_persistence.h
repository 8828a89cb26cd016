// PahoPersistence: Paho's client persistence (mqtt::iclient_persistence) for one MQTT session,
// backed by the queue file (MqttSessionStore). Paho stores a received QoS 2 PUBLISH ("r-<id>")
// before it sends PUBREC and delivers the message at PUBREL (MQTT 3.1.1), so with this store a
// QoS 2 message is durable from the moment the broker may forget it. The commit that stores the
// message deletes "r-<id>" in the same transaction (Queue::AppendReceived); Paho's own removal
// after the callback then finds nothing. After a crash, Paho restores what is left, and the
// broker's PUBREL delivers it once. Paho's outbound state (our publishes) is kept here too.
// Called on Paho's threads; thread-safe as the store is. The store is borrowed.
#pragma once

#include <mqtt/iclient_persistence.h>

#include <string>
#include <vector>

#include "storage/mqtt_session_store.h"

namespace edgeline {

class PahoPersistence final : public mqtt::iclient_persistence {
 public:
  // `session` names the namespace in the store (MqttIngest::SessionName).
  PahoPersistence(MqttSessionStore* store, std::string session);

  const std::string& session() const { return session_; }

  // mqtt::iclient_persistence. Failures throw mqtt::persistence_exception, which Paho's C
  // library receives as MQTTCLIENT_PERSISTENCE_ERROR.
  void open(const mqtt::string& client_id, const mqtt::string& server_uri) override;
  void close() override;
  void clear() override;
  bool contains_key(const mqtt::string& key) override;
  mqtt::string_collection keys() const override;
  void put(const mqtt::string& key, const std::vector<mqtt::string_view>& bufs) override;
  mqtt::string get(const mqtt::string& key) const override;
  void remove(const mqtt::string& key) override;

 private:
  MqttSessionStore* const store_;
  const std::string session_;
};

}  // namespace edgeline
