# `edgeline simulate`: model, schedule and argument parsing (unit); against mosquitto (integration).
edgeline_add_test(NAME simulator_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/simulator_test.cc
  LIBS edgeline_simulator nlohmann_json::nlohmann_json)
edgeline_add_test(NAME simulator_integration_test LABEL integration TIMEOUT 120
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/integration/simulator_test.cc
  LIBS edgeline_simulator edgeline_test_support nlohmann_json::nlohmann_json)
