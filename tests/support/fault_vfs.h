// Test-only SQLite VFS that injects disk faults, in the manner of SQLite's own test VFS and
// leveldb's fault-injection env. It wraps the platform VFS and fails chosen write or sync calls
// on the database and WAL files with SQLITE_IOERR or SQLITE_FULL.
//
// Faults are driven by a control file, re-read whenever it changes, so a test can switch them on
// and off while another process runs. The shared library `edgeline_fault_vfs` registers the VFS
// as the default when loaded with LD_PRELOAD and FAULT_VFS_CONTROL=<path> set, so the
// real agent binary runs unmodified. In-process tests call InstallFaultVfs() instead.
// Thread-safe (one mutex around the fault state).
#pragma once

#include <string>

namespace edgeline::testing {

// One fault: `error` is "ioerr" or "full", `op` is "write", "sync" or "any". The first `skip`
// matching calls succeed, then `count` calls fail (0 = every call from then on: persistent).
struct FaultSpec {
  std::string error = "ioerr";
  std::string op = "write";
  long skip = 0;
  long count = 0;
};

// Control file contents: "off", or "<error> <op> <skip> <count>".
std::string FaultLine(const FaultSpec& spec);
void WriteFaultControl(const std::string& control_path, const std::string& line);

// Registers the fault VFS as the process default, controlled by `control_path`.
void InstallFaultVfs(const std::string& control_path);

// How many calls the VFS has failed so far in this process.
long InjectedFaults();

}  // namespace edgeline::testing
