// Mapper: one MQTT message (topic + payload) -> line-protocol lines, ready for the group commit. JSON objects map by
// MappingConfig (tag keys, integer keys, topic template, nested objects flattened with '_');
// other payloads are validated as line protocol. A missing timestamp gets the receive time, given
// by the caller once at ingest, so a replay writes identical points. A JSON time key's value
// further ahead of that receive time than MappingConfig::time_max_ahead_ns, or before
// time_floor_ns, is a wrong device clock handled by time_policy (line protocol timestamps are
// not checked). Bounded for hostile payloads (memory in proportion to what is kept, at most 20
// errors/warnings plus a count of the rest).
// Immutable after construction: Map() is thread-safe (the guard is).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "ingest/field_type_guard.h"
#include "storage/mqtt_session_store.h"

namespace edgeline {

struct MappedMessage {
  std::vector<std::string> lines;  // valid line protocol, no trailing newline
  // One printable ASCII line each; at most 20, then "... and N more ..." (each becomes a dead
  // letter holding the payload).
  std::vector<std::string> warnings;  // parts dropped (e.g. "field fuel: number out of range")
  std::vector<std::string> errors;    // whole message (or LP lines) rejected, each with its reason
  // Fields refused for their type (FieldTypeGuard), each as a line of its own (the point's
  // measurement, tags and timestamp with only those fields) with the reason; each becomes a
  // replayable dead letter holding that line.
  std::vector<RefusedFields> refused_fields;
  // Points whose JSON time key gave a wrong device clock (beyond EDGELINE_JSON_TIME_MAX_AHEAD or
  // before EDGELINE_JSON_TIME_FLOOR), by EDGELINE_JSON_TIME_POLICY: `receive-time` stamps the
  // point with the receive time and keeps the device's time as integer field device_time (no
  // dead letter: nothing is lost); `dlq` rejects the point, its reason in `errors`.
  int device_time_adjusted = 0;
  int device_time_rejected = 0;
  int64_t min_ts_ns = 0;  // over `lines`; 0 when none
  int64_t max_ts_ns = 0;

  // Appends one valid line whose timestamp is `ts_ns`, keeping min/max_ts_ns.
  void AddLine(std::string line, int64_t ts_ns);
};

// One message as the group committer stores it: its points and, for its dead letters, the
// topic and the payload that was refused (in part or whole).
struct IngestMessage {
  std::string topic;
  MappedMessage mapped;
  std::string payload;     // kept only when `mapped` has errors or warnings
  int64_t receive_ns = 0;  // the wall time the points without their own were stamped with
  // For an MQTT message at QoS 1 or 2: settled in the transaction that stores it
  // (Queue::AppendReceived), so the broker's redelivery is recognised (QoS 1) and Paho's
  // inbound state is released (QoS 2) exactly when the message is stored.
  std::optional<MqttReceipt> receipt;
};

// EDGELINE_MQTT_MAX_PAYLOAD's default.
inline constexpr int64_t kDefaultMaxPayloadBytes = int64_t{1} << 20;

class Mapper {
 public:
  // Payloads over `max_payload_bytes` (EDGELINE_MQTT_MAX_PAYLOAD) are refused whole. With a
  // `guard` (borrowed; may be null), fields of the wrong type are refused (MappedMessage::
  // refused_fields) and JSON numbers of fields declared integer or unsigned are written as such.
  explicit Mapper(MappingConfig config, int64_t max_payload_bytes = kDefaultMaxPayloadBytes,
                  FieldTypeGuard* guard = nullptr);

  MappedMessage Map(std::string_view topic, std::string_view payload, int64_t receive_ns) const;

  // Map() plus what a dead letter needs. A payload over the size limit is not parsed: it is
  // rejected with the limit in the reason and a 1 KiB prefix kept for diagnosis.
  IngestMessage Prepare(std::string_view topic, std::string_view payload, int64_t receive_ns) const;

 private:
  // Applies the guard to a point about to be added; false when no field is left.
  bool Guard(Point* point, MappedMessage* out) const;

  MappingConfig config_;
  int64_t max_payload_bytes_;
  FieldTypeGuard* guard_;
  // Parsed topic template: literal segments and {tag} placeholders.
  std::vector<std::string> template_segments_;
};

}  // namespace edgeline
