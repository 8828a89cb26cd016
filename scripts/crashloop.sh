#!/usr/bin/env bash
# Runs the crash loop (tests/crash/crashloop_test.cc) with N seeded SIGKILL trials instead of
# CI's 200, e.g. overnight: scripts/crashloop.sh 5000 [seed]. Builds the test and the agent in
# $BUILD_DIR (default build) with -j2; real mosquitto, influxd and the Kafka mock cluster as in CI.
# CRASHLOOP_TEST=exactly_once runs tests/crash/exactly_once_test.cc instead: TRIALS SIGKILLs per
# subscription QoS (1 and 2) for each of its variants, EDGELINE_EXACTLY_ONCE_MESSAGES messages
# (default 5000; raise it with TRIALS so the kills keep landing while messages flow).
# Exit code: the test's (0 = every invariant held across all trials).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 TRIALS [SEED]" >&2
  exit 2
fi
TRIALS=$1
SEED=${2:-8}
if [[ ! $SEED =~ ^[0-9]+$ ]]; then
  echo "seed must be a number" >&2
  exit 2
fi

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} >/dev/null
if [[ ${CRASHLOOP_TEST:-crashloop} == exactly_once ]]; then
  cmake --build "$BUILD_DIR" -j2 --target exactly_once_test edgeline
  EDGELINE_EXACTLY_ONCE_TRIALS=$TRIALS EDGELINE_EXACTLY_ONCE_SEED=$SEED "$BUILD_DIR/tests/exactly_once_test"
  exit
fi
cmake --build "$BUILD_DIR" -j2 --target crashloop_test edgeline kafka_mock_cluster
# The drain after the last kill and the per-trial checks grow with N; ctest's timeout does not apply here.
EDGELINE_CRASHLOOP_TRIALS=$TRIALS EDGELINE_CRASHLOOP_SEED=$SEED "$BUILD_DIR/tests/crashloop_test"
