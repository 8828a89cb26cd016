# Kafka mirror: unit tests (fake producer, real SQLite queue) and an integration test against
# librdkafka's mock cluster, run in its own process (tests/support/kafka_mock_cluster.cc).
add_executable(kafka_mock_cluster support/kafka_mock_cluster.cc)
target_link_libraries(kafka_mock_cluster PRIVATE PkgConfig::RDKAFKA)
edgeline_warnings(kafka_mock_cluster)

edgeline_add_test(NAME kafka_record_format_test LABEL unit
  SOURCES unit/kafka_record_format_test.cc
  LIBS edgeline_kafka nlohmann_json::nlohmann_json)
edgeline_add_test(NAME kafka_mirror_test LABEL unit
  SOURCES unit/kafka_mirror_test.cc
  LIBS edgeline_kafka edgeline_storage)

edgeline_add_test(NAME kafka_mirror_integration_test LABEL integration TIMEOUT 180
  SOURCES integration/kafka_mirror_test.cc
  LIBS edgeline_kafka edgeline_storage edgeline_test_support nlohmann_json::nlohmann_json)
target_compile_definitions(kafka_mirror_integration_test PRIVATE
  EDGELINE_KAFKA_MOCK_CLUSTER="$<TARGET_FILE:kafka_mock_cluster>")
add_dependencies(kafka_mirror_integration_test kafka_mock_cluster)
edgeline_add_test(NAME kafka_rdkafka_producer_test LABEL unit
  SOURCES unit/kafka_rdkafka_producer_test.cc
  LIBS edgeline_kafka)

# The mirror inside the agent: real mosquitto + influxd, the mock cluster, kcat.
edgeline_add_test(NAME kafka_agent_test LABEL integration TIMEOUT 300
  SOURCES integration/kafka_agent_test.cc LIBS edgeline_test_support edgeline_common)
target_compile_definitions(kafka_agent_test PRIVATE EDGELINE_KAFKA_MOCK_CLUSTER="$<TARGET_FILE:kafka_mock_cluster>")
add_dependencies(kafka_agent_test edgeline kafka_mock_cluster)

edgeline_add_test(NAME kafka_crash_test LABEL crash TIMEOUT 300
  SOURCES crash/kafka_crash_test.cc LIBS edgeline_test_support edgeline_common)
target_compile_definitions(kafka_crash_test PRIVATE EDGELINE_KAFKA_MOCK_CLUSTER="$<TARGET_FILE:kafka_mock_cluster>")
add_dependencies(kafka_crash_test edgeline kafka_mock_cluster)
