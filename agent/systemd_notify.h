// systemd's notify protocol (Type=notify, sd_notify(3)): one datagram to $NOTIFY_SOCKET, spoken
// directly rather than through libsystemd so every build works under the shipped unit. A no-op
// outside systemd. Thread-safe.
#pragma once

#include <string>

namespace edgeline {

// Sends e.g. "READY=1", "WATCHDOG=1" or "STOPPING=1".
void NotifySystemd(const std::string& state);

}  // namespace edgeline
