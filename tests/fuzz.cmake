# Bad input (issue 8): bounded handling of hostile payloads and env values, in the normal build.
# The libFuzzer targets themselves live in tests/fuzz/ and build only with -DEDGELINE_FUZZ=ON
# and clang (scripts/fuzz.sh); this fragment never builds them.
edgeline_add_test(NAME bad_input_test LABEL unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit/bad_input_test.cc
  LIBS edgeline_agent edgeline_storage edgeline_config)
