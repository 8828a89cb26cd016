#!/usr/bin/env bash
# The test suite under sanitizers, each in its own build dir (CI runs this after scripts/test.sh):
#   ASan+UBSan: the unit and integration suites (build-asan)
#   TSan: the tests whose code runs several threads against one queue (build-tsan). Tests that
#   load Paho or librdkafka threads in-process are left out: those libraries are not built for
#   TSan and its reports would be about them.
# Usage: scripts/sanitize.sh [asan|tsan|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
"$(dirname "$0")/install-deps.sh"

TSAN_TESTS=(group_committer_test sqlite_queue_test storage_fault_test replicator_test
            replicator_sqlite_test replicator_outage_test kafka_mirror_test
            alarm_publisher_test downsample_test status_report_test)

if [[ $what == all || $what == asan ]]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEDGELINE_SANITIZE=address >/dev/null
  cmake --build build-asan -j2
  # verify_asan_link_order=0: some tests LD_PRELOAD a fault-injecting VFS or libfaketime into
  # the (ASan-built) agent; ASan is still loaded, just not first.
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure --timeout 900 -j2 -L 'unit|integration' -E 'demo_test|install_test')
fi

if [[ $what == all || $what == tsan ]]; then
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DEDGELINE_SANITIZE=thread >/dev/null
  cmake --build build-tsan -j2 --target "${TSAN_TESTS[@]}"
  regex=$(IFS='|'; echo "^(${TSAN_TESTS[*]})\$")
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
     ctest --output-on-failure --timeout 900 -j2 -R "$regex")
fi
