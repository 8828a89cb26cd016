# Outage tests for InfluxDB replication (issue 5): a 1-hour outage in fake time over the real
# SQLite queue (unit); the agent binary riding out a stopped real influxd, and keeping a
# stand-in's Retry-After while messages flow (integration).
edgeline_add_test(NAME replication_outage_test LABEL unit
  SOURCES unit/replication_outage_test.cc
  LIBS edgeline_replication edgeline_storage)

edgeline_add_test(NAME outage_integration_test LABEL integration TIMEOUT 300
  SOURCES integration/outage_test.cc
  LIBS edgeline_test_support edgeline_influx_standin edgeline_common edgeline_storage)
add_dependencies(outage_integration_test edgeline)
