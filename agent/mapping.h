// Mapper: one MQTT message (topic + payload) -> line-protocol lines. JSON objects map by
// MappingConfig (tag keys, integer keys, topic template, nested objects flattened with '_');
// other payloads are validated as line protocol. A missing timestamp gets the receive time, given
// by the caller once at ingest, so a replay writes identical points. Bounded for hostile payloads
// (memory in proportion to what is kept, at most 20 errors/warnings plus a count of the rest).
// Immutable after construction: Map() is thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace edgeline {

struct MappedMessage {
  std::vector<std::string> lines;     // valid line protocol, no trailing newline
  // One printable ASCII line each; at most 20, then "... and N more ..." (each becomes a dead
  // letter holding the payload).
  std::vector<std::string> warnings;  // parts dropped (e.g. "field fuel: number out of range")
  std::vector<std::string> errors;    // whole message (or LP lines) rejected, each with its reason
  int64_t min_ts_ns = 0;              // over `lines`; 0 when none
  int64_t max_ts_ns = 0;
};

class Mapper {
 public:
  explicit Mapper(MappingConfig config);
  MappedMessage Map(std::string_view topic, std::string_view payload, int64_t receive_ns) const;

 private:
  MappingConfig config_;
  // Parsed topic template: literal segments and {tag} placeholders.
  std::vector<std::string> template_segments_;
};

}  // namespace edgeline
