# Line protocol (common/) and MQTT payload mapping (agent/) unit tests.
edgeline_add_test(NAME line_protocol_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/line_protocol_test.cc
  LIBS edgeline_common)
edgeline_add_test(NAME mapping_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/mapping_test.cc
  LIBS edgeline_agent nlohmann_json::nlohmann_json)
