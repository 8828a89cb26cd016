# Replication unit tests (fakes only: no network, no sleeps).
edgeline_add_test(NAME replication_backoff_test LABEL unit
  SOURCES unit/replication_backoff_test.cc
  LIBS edgeline_replication)
edgeline_add_test(NAME replication_influx_writer_test LABEL unit
  SOURCES unit/replication_influx_writer_test.cc
  LIBS edgeline_replication ZLIB::ZLIB)
edgeline_add_test(NAME replication_replicator_test LABEL unit
  SOURCES unit/replication_replicator_test.cc
  LIBS edgeline_replication)
edgeline_add_test(NAME replication_replicator_sqlite_test LABEL unit
  SOURCES unit/replication_replicator_sqlite_test.cc
  LIBS edgeline_replication edgeline_storage)
