#!/usr/bin/env bash
# Runs edgeline's whole test suite (ctest labels unit, integration, crash) on a Debian machine:
# installs missing Debian packages (build deps and the real servers the tests start: mosquitto,
# influxd 1.6), configures, builds with -j2 and runs ctest. Usage: scripts/test.sh [ctest args]
# Env: BUILD_DIR (default build), BUILD_TYPE (default RelWithDebInfo), CMAKE_EXTRA_ARGS (extra
# cmake arguments; CI passes -DEDGELINE_WERROR=ON). Not EDGELINE_*: the agents the tests start
# inherit the environment and refuse unknown EDGELINE_* variables.
set -euo pipefail
cd "$(dirname "$0")/.."

"$(dirname "$0")/install-deps.sh"

BUILD_DIR=${BUILD_DIR:-build}
read -r -a extra_args <<<"${CMAKE_EXTRA_ARGS:-}"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "${extra_args[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j2
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 600 -j2 "$@"
