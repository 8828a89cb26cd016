// MqttSessionStore: the MQTT client state that must outlive the process, kept in the queue file
// so that it commits atomically with the messages it describes:
//  - Paho's client persistence, per session (key -> bytes): "r-<packet id>" holds a QoS 2
//    PUBLISH whose PUBREC was sent and whose message is not yet stored; other keys hold Paho's
//    outbound state (our own publishes);
//  - receipts of the stored QoS 1 messages, per session and packet identifier, with a digest of
//    topic and payload, so that the broker's redelivery (DUP) of a message already stored is
//    recognised.
// Queue::AppendReceived settles a message's receipt in the transaction that stores the message:
// QoS 2 deletes "r-<id>", QoS 1 records the receipt. Thread-safe: all methods may be called from
// any thread (Paho calls the persistence from its own threads).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace edgeline {

// One received MQTT message, as its commit settles it.
struct MqttReceipt {
  std::string session;      // the persistence namespace: client id and server URI
  int packet_id = 0;        // 1..65535 (0 for QoS 0: nothing to settle)
  int qos = 0;
  uint64_t digest = 0;      // MqttDigest(topic, payload)
  int64_t connection = 0;   // the connection it arrived on (MqttSessionStore::NewConnectionId)
};

// FNV-1a 64 over the topic, a zero byte and the payload: stable across builds and versions.
uint64_t MqttDigest(std::string_view topic, std::string_view payload);

struct MqttSessionStats {
  std::string session;
  int64_t inbound_qos2 = 0;  // "r-" entries: QoS 2 messages received, not yet stored
  int64_t other_entries = 0; // Paho's outbound state
  int64_t receipts = 0;      // QoS 1 receipts kept (at most one per packet identifier)
  int64_t duplicates_suppressed = 0;  // redeliveries acknowledged without storing them again
};

class MqttSessionStore {
 public:
  virtual ~MqttSessionStore() = default;

  // Paho's client persistence. Put is durable when it returns (per EDGELINE_QUEUE_SYNC).
  virtual Status PutMqttState(const std::string& session, const std::string& key, std::string_view value) {
    (void)session, (void)key, (void)value;
    return Status::FailedPrecondition("no MQTT session store");
  }
  virtual Result<std::optional<std::string>> GetMqttState(const std::string& session, const std::string& key) {
    (void)session, (void)key;
    return std::optional<std::string>{};
  }
  virtual Status RemoveMqttState(const std::string& session, const std::string& key) {
    (void)session, (void)key;
    return Status::Ok();
  }
  virtual Result<std::vector<std::string>> MqttStateKeys(const std::string& session) {
    (void)session;
    return std::vector<std::string>{};
  }
  virtual Status ClearMqttState(const std::string& session) {
    (void)session;
    return Status::Ok();
  }

  // True when a QoS 1 message with `receipt`'s packet id and digest was stored on an EARLIER
  // connection of its session: a broker resends unacknowledged messages, with DUP set and their
  // packet identifiers, only after a reconnect (MQTT 3.1.1 and 5, section 4.4).
  virtual Result<bool> StoredOnEarlierConnection(const MqttReceipt& receipt) {
    (void)receipt;
    return false;
  }

  // Counts one redelivery acknowledged without storing it (StoredOnEarlierConnection was true).
  virtual Status CountSuppressedDuplicate(const std::string& session) {
    (void)session;
    return Status::Ok();
  }

  // Keeps the newest `keep` QoS 1 receipts of each session (by store time) and deletes the
  // rest, once a session holds a quarter more than that. A broker redelivers only messages still in
  // flight when a connection broke (mosquitto allows 20 per client by default), so a receipt
  // older than `keep` later messages is never needed; without trimming the table would hold one
  // row per packet identifier, 65,535 per session. Returns the receipts deleted.
  virtual Result<int64_t> TrimMqttReceipts(int64_t keep) {
    (void)keep;
    return int64_t{0};
  }

  // Every session the store knows, ordered by name.
  virtual Result<std::vector<MqttSessionStats>> MqttSessions() { return std::vector<MqttSessionStats>{}; }
};

}  // namespace edgeline
