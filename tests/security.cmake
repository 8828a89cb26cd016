# Security proof (issue 8): TLS for MQTT and InfluxDB with certificates made at run time,
# secrets in no output, owner-only files, the local endpoint's loopback default and token.
edgeline_add_test(NAME security_test LABEL integration TIMEOUT 300
  SOURCES integration/security_test.cc
  LIBS edgeline_test_support edgeline_replication edgeline_common)
add_dependencies(security_test edgeline)
