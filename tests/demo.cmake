# The newcomer test: README's first command, non-interactive, short. It starts its own mosquitto
# and influxd, runs `edgeline simulate` and the agent, and exits 1 unless raw and downsampled
# points reached influxd.
add_test(NAME demo_test
  COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/demo.sh --ci --duration 20
          --binary $<TARGET_FILE:edgeline> --dir ${CMAKE_BINARY_DIR}/demo-test)
set_tests_properties(demo_test PROPERTIES LABELS integration TIMEOUT 180)
