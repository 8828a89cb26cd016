#include "common/sink_state.h"

namespace edgeline {

std::string_view Name(SinkState state) {
  switch (state) {
    case SinkState::kStarting: return "starting";
    case SinkState::kOk: return "ok";
    case SinkState::kOffline: return "offline";
    case SinkState::kAuthFailed: return "auth-failed";
    case SinkState::kNotFound: return "not-found";
    case SinkState::kRejecting: return "rejecting";
    case SinkState::kBadRequest: return "bad-request";
    case SinkState::kThrottled: return "throttled";
    case SinkState::kQueueError: return "queue-error";
  }
  return "starting";
}

}  // namespace edgeline
