// The `edgeline run` daemon: wires queue, mapper, group committer, MQTT ingest and the
// InfluxDB replicator from a validated Config, runs until SIGTERM/SIGINT, then shuts down in
// the order that never acknowledges an uncommitted message (MQTT first, writer last).
// Call once per process, from the main thread.
#pragma once

#include "config/config.h"

namespace edgeline {

// Returns the process exit code (0 clean stop, 1 runtime error).
int RunDaemon(const Config& config);

}  // namespace edgeline
