// Small string helpers shared by every library: ASCII-only case folding and trimming (config
// values, HTTP header names, Kafka property names), membership in a list of names, UTF-8
// well-formedness (line protocol, error excerpts).
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace edgeline {

// Without leading and trailing spaces, tabs, CRs and LFs.
std::string_view Trim(std::string_view s);

// ASCII lower case; other bytes are kept as they are.
std::string Lower(std::string_view s);

// ASCII case-insensitive equality.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// ASCII case-insensitive prefix test.
bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix);

// Whether `list` holds `item` exactly.
bool Contains(const std::vector<std::string>& list, std::string_view item);

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates, at
// most U+10FFFF), or 0 when the byte there does not start one. REQUIRES: i < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

// The offset of the first byte that is not part of a well-formed UTF-8 sequence, or npos.
size_t FindInvalidUtf8(std::string_view s);

}  // namespace edgeline
