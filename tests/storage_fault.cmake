# Disk faults and damaged queue files (issue 8). The fault VFS is a static library for
# in-process tests and a shared one that the crash tests LD_PRELOAD into the real agent.
add_library(edgeline_fault_vfs_static STATIC support/fault_vfs.cc)
target_include_directories(edgeline_fault_vfs_static PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(edgeline_fault_vfs_static PUBLIC PkgConfig::SQLITE3)
edgeline_warnings(edgeline_fault_vfs_static)

add_library(edgeline_fault_vfs SHARED support/fault_vfs.cc)
target_include_directories(edgeline_fault_vfs PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(edgeline_fault_vfs PRIVATE PkgConfig::SQLITE3)
edgeline_warnings(edgeline_fault_vfs)

edgeline_add_test(NAME storage_fault_test LABEL unit TIMEOUT 300 SOURCES unit/storage_fault_test.cc
  LIBS edgeline_agent edgeline_storage edgeline_fault_vfs_static)

edgeline_add_test(NAME disk_fault_test LABEL crash TIMEOUT 300 SOURCES crash/disk_fault_test.cc
  LIBS edgeline_test_support edgeline_common edgeline_fault_vfs_static)
target_compile_definitions(disk_fault_test PRIVATE EDGELINE_FAULT_VFS_LIB="$<TARGET_FILE:edgeline_fault_vfs>")
add_dependencies(disk_fault_test edgeline edgeline_fault_vfs)
