// Gzip (RFC 1952) compression of HTTP request bodies with zlib (InfluxDB accepts
// Content-Encoding: gzip on every write API). Pure function, no state: thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace edgeline {

// Compresses `input` into a complete gzip member (header + deflate + trailer).
Result<std::string> GzipCompress(std::string_view input);

}  // namespace edgeline
