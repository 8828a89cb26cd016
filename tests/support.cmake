# The test harness itself (tests/support): the port allocator (unit), and StartServer moving a
# real mosquitto and influxd to new ports when the picked ones were taken (integration).
edgeline_add_test(NAME support_ports_test LABEL unit
  SOURCES support/ports_test.cc LIBS edgeline_test_support)
edgeline_add_test(NAME support_harness_test LABEL integration TIMEOUT 120
  SOURCES support/harness_test.cc LIBS edgeline_test_support)
