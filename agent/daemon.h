// The `edgeline run` daemon: the process around an Agent. It takes the queue's instance lock,
// starts the Agent, tells systemd it is ready, waits for SIGTERM/SIGINT and stops the Agent
// (ending the process if that takes longer than 15 s). Call once per process, from the main
// thread.
#pragma once

#include "config/config.h"

namespace edgeline {

// Returns the process exit code (0 clean stop, 1 runtime error).
int RunDaemon(const Config& config);

}  // namespace edgeline
