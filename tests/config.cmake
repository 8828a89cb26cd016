# Config parsing, env files, rendering and the generated docs/CONFIGURATION.md.
edgeline_add_test(NAME config_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/config_test.cc
  LIBS edgeline_config nlohmann_json::nlohmann_json)
