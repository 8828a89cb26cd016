# Fault-injecting InfluxDB stand-in (tests/support/influx_standin.h) and the replication tests
# that need real HTTP but a server that fails on cue.
add_library(edgeline_influx_standin STATIC ${CMAKE_CURRENT_SOURCE_DIR}/support/influx_standin.cc)
target_include_directories(edgeline_influx_standin PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(edgeline_influx_standin PUBLIC edgeline_common ZLIB::ZLIB Threads::Threads)
edgeline_warnings(edgeline_influx_standin)

edgeline_add_test(NAME replication_standin_test LABEL integration TIMEOUT 60
  SOURCES integration/replication_standin_test.cc
  LIBS edgeline_influx_standin edgeline_replication edgeline_storage)
