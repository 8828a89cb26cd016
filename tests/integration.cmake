# Real servers (mosquitto, influxd) and the edgeline binary; see tests/support/harness.h.
edgeline_add_test(NAME spine_integration_test LABEL integration TIMEOUT 400
  SOURCES integration/spine_test.cc LIBS edgeline_test_support edgeline_agent edgeline_common edgeline_storage)
add_dependencies(spine_integration_test edgeline)

edgeline_add_test(NAME sigkill_crash_test LABEL crash TIMEOUT 400
  SOURCES crash/sigkill_test.cc LIBS edgeline_test_support edgeline_common edgeline_storage)
add_dependencies(sigkill_crash_test edgeline)

edgeline_add_test(NAME downsample_e2e_test LABEL integration TIMEOUT 300
  SOURCES integration/downsample_e2e_test.cc LIBS edgeline_test_support edgeline_common)
add_dependencies(downsample_e2e_test edgeline)

edgeline_add_test(NAME downsample_crash_test LABEL crash TIMEOUT 400
  SOURCES crash/downsample_crash_test.cc LIBS edgeline_test_support edgeline_common edgeline_storage)
add_dependencies(downsample_crash_test edgeline)

edgeline_add_test(NAME dlq_test LABEL integration TIMEOUT 200
  SOURCES integration/dlq_test.cc LIBS edgeline_test_support edgeline_common)
add_dependencies(dlq_test edgeline)

edgeline_add_test(NAME http_api_test LABEL integration TIMEOUT 200
  SOURCES integration/http_api_test.cc LIBS edgeline_test_support edgeline_common)
add_dependencies(http_api_test edgeline)

edgeline_add_test(NAME systemd_notify_test LABEL integration TIMEOUT 60
  SOURCES integration/systemd_notify_test.cc LIBS edgeline_test_support edgeline_common)
add_dependencies(systemd_notify_test edgeline)
