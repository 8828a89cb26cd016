# Downsampling engine and task unit tests.
edgeline_add_test(NAME downsample_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/downsample_test.cc
  LIBS edgeline_downsample nlohmann_json::nlohmann_json)
