// MessagePublisher: publishes one MQTT message and waits for the broker's acknowledgement, for
// sinks that talk back to the local broker (alarm changes). Implemented by MqttIngest over its
// first session; faked in tests. Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace edgeline {

class MessagePublisher {
 public:
  virtual ~MessagePublisher() = default;
  // OK only once the broker acknowledged it (QoS 1/2) or it was written (QoS 0).
  virtual Status Publish(const std::string& topic, const std::string& payload, int qos, bool retained) = 0;
  // Whether messages can come in now (every session connected).
  virtual bool Connected() const { return true; }
};

}  // namespace edgeline
