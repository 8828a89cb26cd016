# scripts/install.sh staged into temp DESTDIRs (files, modes, unit content, env file,
# uninstall/purge, systemd-analyze verify). Never installs onto the host.
add_test(NAME install_test
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install_test.sh $<TARGET_FILE:edgeline> ${PROJECT_SOURCE_DIR})
set_tests_properties(install_test PROPERTIES LABELS integration TIMEOUT 60)
