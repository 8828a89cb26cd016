// The `edgeline` command line: global options (--env-file, --help, --version), then one
// subcommand (run, status, config, dlq list|replay|purge, simulate, version, help). `--help` or
// `-h` after any command prints that command's help on stdout and exits 0. Exit codes: 0 ok,
// 1 runtime error, 2 usage/config error (unknown options included), 3 `status` degraded.
// Called once from main().
#pragma once

namespace edgeline {

int RunCli(int argc, char** argv);

}  // namespace edgeline
