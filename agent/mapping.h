// Mapper: turns one MQTT message (topic + payload) into line-protocol lines. JSON objects map
// by MappingConfig (measurement, tag keys, integer keys, topic template tags, nested objects
// flattened with '_'); payloads that are not JSON are validated as line protocol and passed
// through (a missing timestamp gets the receive time). The receive time is given by the caller,
// assigned once at ingest, so a replay writes identical points. Immutable after construction:
// Map() is thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace edgeline {

struct MappedMessage {
  std::vector<std::string> lines;     // valid line protocol, no trailing newline
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
