// The `edgeline` command line: global options (--env-file), then one subcommand
// (run, status, config, dlq, version, help). Exit codes: 0 ok, 1 runtime error,
// 2 usage/config error, 3 `status` degraded. Called once from main().
#pragma once

namespace edgeline {

int RunCli(int argc, char** argv);

}  // namespace edgeline
