# Crash loop (200 seeded SIGKILLs of the real agent) and wall-clock jumps (libfaketime), with
# real mosquitto, influxd and librdkafka's mock cluster. scripts/crashloop.sh runs longer loops.
foreach(t crashloop_test clock_jump_test)
  edgeline_add_test(NAME ${t} LABEL crash TIMEOUT 300
    SOURCES crash/${t}.cc LIBS edgeline_test_support edgeline_common edgeline_storage)
  target_compile_definitions(${t} PRIVATE EDGELINE_KAFKA_MOCK_CLUSTER="$<TARGET_FILE:kafka_mock_cluster>")
  add_dependencies(${t} edgeline kafka_mock_cluster)
endforeach()
