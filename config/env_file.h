// Where EDGELINE_* settings come from: the process environment and systemd EnvironmentFiles.
// Both return variable -> value maps for ParseConfig (config.h). ReadEnvFile is thread-safe;
// EnvironmentVariables reads `environ`, so it must not race with setenv().
#pragma once

#include <map>
#include <string>

#include "common/status.h"

namespace edgeline {

// The process environment's EDGELINE_* variables.
std::map<std::string, std::string> EnvironmentVariables();

// Reads a systemd EnvironmentFile: KEY=VALUE lines, '#'/';' comments, optional single/double
// quotes, backslash line continuation. Errors name file:line, never the line's content. The
// caller merges: the process environment overrides values from the file.
Result<std::map<std::string, std::string>> ReadEnvFile(const std::string& path);

}  // namespace edgeline
