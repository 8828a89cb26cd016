// Bounded JSON parsing for MQTT payloads: the DOM holds only what the mapper can use, so a
// hostile payload costs memory in proportion to what is kept (nesting below kMaxDepth and array
// elements are dropped while parsing, at most kMaxJsonMembers members are kept), and a number
// that overflows a double costs only its field. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace edgeline {

// Nested JSON keys are flattened with it: {"a": {"b": 1}} -> field a_b.
inline constexpr char kFlattenSeparator = '_';
// Flattened keys grow with depth and the walk recurses: a 1 MiB payload of nested objects must
// not cost quadratic memory or the stack. Deeper members are dropped with a warning.
inline constexpr size_t kMaxDepth = 32;
// Members kept in the DOM (nested ones included; array elements and members below kMaxDepth
// are discarded while parsing and do not count). Real telemetry has tens; this bounds the DOM
// built from a large payload (EDGELINE_MQTT_MAX_PAYLOAD may be up to 256 MiB).
inline constexpr size_t kMaxJsonMembers = 10'000;

// Rewrites each number of `in` that overflows a double to null in *out and names the flattened
// key it belonged to in *keys. Returns whether anything changed. Syntax is not checked.
bool NeutralizeOverflowingNumbers(std::string_view in, std::string* out, std::vector<std::string>* keys);

// Parses `text` keeping at most kMaxJsonMembers members down to kMaxDepth, no array elements.
// Sets *too_many when members were dropped for the count (the message is then rejected).
// Returns a discarded value when `text` is not valid JSON.
nlohmann::json ParseBounded(std::string_view text, bool* too_many);

}  // namespace edgeline
