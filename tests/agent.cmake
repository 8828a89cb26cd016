# Agent ingest unit tests: group commit and `edgeline status` over a real temporary SQLite queue.
edgeline_add_test(NAME group_committer_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/group_committer_test.cc
  LIBS edgeline_agent edgeline_storage)
edgeline_add_test(NAME status_report_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/status_report_test.cc
  LIBS edgeline_agent edgeline_storage nlohmann_json::nlohmann_json)
edgeline_add_test(NAME alarm_publisher_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/alarm_publisher_test.cc
  LIBS edgeline_agent edgeline_storage nlohmann_json::nlohmann_json)
