edgeline_add_test(NAME queue_test LABEL unit SOURCES unit/queue_test.cc LIBS edgeline_storage)
