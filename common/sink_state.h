// SinkState: what a sink reports after each attempt (stored in the queue's sink_status, shown by
// `edgeline status`, /health and /metrics). Name() is the stored and shown spelling.
#pragma once

#include <string_view>

namespace edgeline {

enum class SinkState {
  kStarting,    // no attempt yet in this run
  kOk,          // the latest attempt delivered (or there was nothing to deliver)
  kOffline,     // unreachable, timeout, 5xx: retried with backoff
  kAuthFailed,  // 401/403 or SASL: retried slowly
  kNotFound,    // 404, unknown topic: retried slowly
  kRejecting,   // the destination refuses the data itself: retried slowly
  kBadRequest,  // 400 about the request (not about lines): retried slowly, nothing dead-lettered
  kThrottled,   // 429/503, Retry-After honoured
  kQueueError,  // the local queue could not be read or written
};

std::string_view Name(SinkState state);

}  // namespace edgeline
