// MqttIngest: the Paho MQTT C++ adapter. Opens EDGELINE_MQTT_CONNECTIONS persistent sessions
// (clean session off, QoS from config) and hands every message to a blocking handler on
// Paho's receive thread. Paho sends the QoS 1 PUBACK only when that callback returns
// (paho.mqtt.c MQTTProtocol_handlePublishes), so a handler that returns after the commit gives
// ack-after-commit. With more than one connection the subscription is shared
// ($share/<group>/<filter>) so the broker spreads messages over the connections and one group
// commit covers several of them. Connection 0 carries the Last Will ("offline", retained) and
// publishes "online" after each connect. With a session store, each session's Paho client state
// lives in the queue file (PahoPersistence): a QoS 2 message is durable before its PUBREC.
// Paho exceptions are caught here and become Status.
// Thread-safe: Start/Stop from one control thread; the handler runs on Paho's threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "ingest/message_publisher.h"
#include "ingest/paho_persistence.h"
#include "storage/mqtt_session_store.h"

namespace mqtt {
class async_client;
}

namespace edgeline {

// One message as Paho delivered it.
struct MqttMessage {
  std::string_view topic;
  std::string_view payload;
  int qos = 0;
  int packet_id = 0;         // 0 for QoS 0
  bool dup = false;          // a redelivery (Paho never sets it for QoS 2)
  bool retained = false;     // sent because of the subscribe: a retained message from before
  std::string_view session;  // MqttIngest::SessionName of the session it arrived on
  int64_t connection = 0;    // that session's current connection (new on every connect)
};

// Returns OK once the message is durable. A non-OK result means "do not acknowledge": since
// Paho cannot withhold a PUBACK, MqttIngest then ends the process (as a crash would).
using MessageHandler = std::function<Status(const MqttMessage& message)>;

class MqttIngest final : public MessagePublisher {
 public:
  // `store` (borrowed; may be null = no client persistence) keeps Paho's client state.
  MqttIngest(MqttConfig config, MessageHandler handler, MqttSessionStore* store = nullptr);
  ~MqttIngest() override;  // Stop()

  // Starts a background thread that connects every session, retrying with backoff until the
  // broker is reachable; Paho reconnects automatically afterwards and we resubscribe.
  void Start();
  // Publishes "offline" (retained), disconnects all sessions, stops the thread.
  void Stop();

  // Publishes on session 0 and waits (bounded) for the acknowledgement.
  Status Publish(const std::string& topic, const std::string& payload, int qos, bool retained) override;

  int connected_sessions() const { return connected_.load(); }
  bool Connected() const override { return connected_.load() == sessions(); }
  int sessions() const { return static_cast<int>(clients_.size()); }
  std::string last_error() const;

  // The topic filters actually subscribed (shared form when connections > 1).
  static std::vector<std::string> SubscriptionFilters(const MqttConfig& config);
  // The persistence namespace of session `index`: its client id and the broker URL (without
  // credentials), e.g. "edgeline-1 tcp://broker:1883".
  static std::string SessionName(const MqttConfig& config, size_t index);

 private:
  void ConnectLoop();
  void OnConnected(size_t index);
  void SetLastError(std::string error);

  MqttConfig config_;
  MessageHandler handler_;
  MqttSessionStore* store_;
  // Declared before clients_, which use them until they are destroyed.
  std::vector<std::unique_ptr<PahoPersistence>> persistence_;
  std::vector<std::string> session_names_;
  std::vector<std::unique_ptr<std::atomic<int64_t>>> connection_ids_;
  std::vector<std::unique_ptr<mqtt::async_client>> clients_;
  std::vector<std::unique_ptr<std::atomic<bool>>> session_up_;
  std::atomic<int> connected_{0};
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string last_error_;
  std::thread connect_thread_;
};

}  // namespace edgeline
