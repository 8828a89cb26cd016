// Time text formats: RFC 3339 timestamps parsed to Unix nanoseconds (device timestamps in JSON
// payloads). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace edgeline {

// RFC 3339: 2025-11-24T16:00:00.123456789Z or with +hh:mm / -hh:mm; 't', 'z' and ' ' (for 'T')
// accepted. Nanoseconds since the epoch, or nullopt when malformed or outside int64 ns
// (1677-09-21 .. 2262-04-11). Fractions beyond 9 digits are truncated.
std::optional<int64_t> ParseRfc3339Ns(std::string_view s);

}  // namespace edgeline
