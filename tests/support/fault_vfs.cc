#include "tests/support/fault_vfs.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

namespace edgeline::testing {
namespace {

struct FaultState {
  std::mutex mu;
  std::string control_path;
  struct timespec mtime {};
  off_t size = -1;
  ino_t inode = 0;
  bool active = false;
  bool full = false;  // SQLITE_FULL, else SQLITE_IOERR_WRITE / _FSYNC
  std::string op;
  long skip = 0;
  long count = 0;  // 0 = persistent
  long failed_in_spec = 0;
  long injected = 0;
};

FaultState& State() {
  static FaultState* state = new FaultState();  // never destroyed: used until process exit
  return *state;
}

sqlite3_vfs* g_base = nullptr;

void ReloadIfChangedLocked(FaultState& s) {
  struct stat st {};
  if (::stat(s.control_path.c_str(), &st) != 0) {
    s.active = false;
    s.size = -1;
    return;
  }
  if (st.st_size == s.size && st.st_ino == s.inode && st.st_mtim.tv_sec == s.mtime.tv_sec &&
      st.st_mtim.tv_nsec == s.mtime.tv_nsec) {
    return;
  }
  s.size = st.st_size;
  s.inode = st.st_ino;
  s.mtime = st.st_mtim;
  std::ifstream in(s.control_path);
  std::string error;
  in >> error;
  s.active = false;
  s.failed_in_spec = 0;
  if (error != "ioerr" && error != "full") return;
  in >> s.op >> s.skip >> s.count;
  s.full = error == "full";
  s.active = true;
}

// Returns the SQLite error to inject for this call, or SQLITE_OK.
int Decide(bool is_sync) {
  FaultState& s = State();
  std::lock_guard lock(s.mu);
  ReloadIfChangedLocked(s);
  if (!s.active) return SQLITE_OK;
  const bool matches = s.op == "any" || (is_sync ? s.op == "sync" : s.op == "write");
  if (!matches) return SQLITE_OK;
  if (s.skip > 0) {
    --s.skip;
    return SQLITE_OK;
  }
  if (s.count > 0 && s.failed_in_spec >= s.count) return SQLITE_OK;
  ++s.failed_in_spec;
  ++s.injected;
  // Visible to a test in another process.
  std::string counter = s.control_path + ".injected";
  if (FILE* f = std::fopen(counter.c_str(), "w")) {
    std::fprintf(f, "%ld\n", s.injected);
    std::fclose(f);
  }
  if (s.full) return SQLITE_FULL;
  return is_sync ? SQLITE_IOERR_FSYNC : SQLITE_IOERR_WRITE;
}

struct FaultFile {
  sqlite3_file base;   // must be first: SQLite sees this struct as a sqlite3_file
  bool inject;         // main database or WAL: the files whose writes make data durable
  sqlite3_file* real;  // the platform file, allocated right after this struct
};

FaultFile* AsFault(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f); }

int Close(sqlite3_file* f) {
  return AsFault(f)->real->pMethods ? AsFault(f)->real->pMethods->xClose(AsFault(f)->real) : SQLITE_OK;
}
int Read(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
  return AsFault(f)->real->pMethods->xRead(AsFault(f)->real, buf, amount, offset);
}
int Write(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
  if (AsFault(f)->inject) {
    if (int rc = Decide(false); rc != SQLITE_OK) return rc;
  }
  return AsFault(f)->real->pMethods->xWrite(AsFault(f)->real, buf, amount, offset);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  return AsFault(f)->real->pMethods->xTruncate(AsFault(f)->real, size);
}
int Sync(sqlite3_file* f, int flags) {
  if (AsFault(f)->inject) {
    if (int rc = Decide(true); rc != SQLITE_OK) return rc;
  }
  return AsFault(f)->real->pMethods->xSync(AsFault(f)->real, flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return AsFault(f)->real->pMethods->xFileSize(AsFault(f)->real, size);
}
int Lock(sqlite3_file* f, int level) { return AsFault(f)->real->pMethods->xLock(AsFault(f)->real, level); }
int Unlock(sqlite3_file* f, int level) { return AsFault(f)->real->pMethods->xUnlock(AsFault(f)->real, level); }
int CheckReservedLock(sqlite3_file* f, int* out) {
  return AsFault(f)->real->pMethods->xCheckReservedLock(AsFault(f)->real, out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return AsFault(f)->real->pMethods->xFileControl(AsFault(f)->real, op, arg);
}
int SectorSize(sqlite3_file* f) { return AsFault(f)->real->pMethods->xSectorSize(AsFault(f)->real); }
int DeviceCharacteristics(sqlite3_file* f) {
  return AsFault(f)->real->pMethods->xDeviceCharacteristics(AsFault(f)->real);
}
int ShmMap(sqlite3_file* f, int page, int page_size, int extend, void volatile** out) {
  return AsFault(f)->real->pMethods->xShmMap(AsFault(f)->real, page, page_size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return AsFault(f)->real->pMethods->xShmLock(AsFault(f)->real, offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { AsFault(f)->real->pMethods->xShmBarrier(AsFault(f)->real); }
int ShmUnmap(sqlite3_file* f, int delete_flag) {
  return AsFault(f)->real->pMethods->xShmUnmap(AsFault(f)->real, delete_flag);
}
int Fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  return AsFault(f)->real->pMethods->xFetch(AsFault(f)->real, offset, amount, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
  return AsFault(f)->real->pMethods->xUnfetch(AsFault(f)->real, offset, p);
}

const sqlite3_io_methods kMethods = {
    3,
    Close,
    Read,
    Write,
    Truncate,
    Sync,
    FileSize,
    Lock,
    Unlock,
    CheckReservedLock,
    FileControl,
    SectorSize,
    DeviceCharacteristics,
    ShmMap,
    ShmLock,
    ShmBarrier,
    ShmUnmap,
    Fetch,
    Unfetch,
};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  FaultFile* f = AsFault(file);
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  f->inject = (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0;
  f->base.pMethods = nullptr;
  int rc = g_base->xOpen(g_base, name, f->real, flags, out_flags);
  (void)vfs;
  if (f->real->pMethods) f->base.pMethods = &kMethods;
  return rc;
}

int Delete(sqlite3_vfs*, const char* name, int sync_dir) { return g_base->xDelete(g_base, name, sync_dir); }
int Access(sqlite3_vfs*, const char* name, int flags, int* out) { return g_base->xAccess(g_base, name, flags, out); }
int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_base->xFullPathname(g_base, name, n, out);
}
void* DlOpen(sqlite3_vfs*, const char* name) { return g_base->xDlOpen(g_base, name); }
void DlError(sqlite3_vfs*, int n, char* msg) { g_base->xDlError(g_base, n, msg); }
void (*DlSym(sqlite3_vfs*, void* handle, const char* symbol))(void) { return g_base->xDlSym(g_base, handle, symbol); }
void DlClose(sqlite3_vfs*, void* handle) { g_base->xDlClose(g_base, handle); }
int Randomness(sqlite3_vfs*, int n, char* out) { return g_base->xRandomness(g_base, n, out); }
int SleepFor(sqlite3_vfs*, int micros) { return g_base->xSleep(g_base, micros); }
int CurrentTime(sqlite3_vfs*, double* out) { return g_base->xCurrentTime(g_base, out); }
int GetLastError(sqlite3_vfs*, int n, char* out) { return g_base->xGetLastError(g_base, n, out); }
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) { return g_base->xCurrentTimeInt64(g_base, out); }

sqlite3_vfs g_fault_vfs;

}  // namespace

std::string FaultLine(const FaultSpec& spec) {
  std::ostringstream out;
  out << spec.error << " " << spec.op << " " << spec.skip << " " << spec.count << "\n";
  return out.str();
}

void WriteFaultControl(const std::string& control_path, const std::string& line) {
  // Write then rename, so the VFS never reads a half-written line.
  std::string tmp = control_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << line;
  }
  std::rename(tmp.c_str(), control_path.c_str());
}

void InstallFaultVfs(const std::string& control_path) {
  FaultState& s = State();
  {
    std::lock_guard lock(s.mu);
    s.control_path = control_path;
    s.size = -1;
    // Continue the count of an earlier process (the agent restarted under the same control).
    std::ifstream counter(control_path + ".injected");
    long before = 0;
    if (counter >> before) s.injected = before;
  }
  if (g_base) return;
  g_base = sqlite3_vfs_find(nullptr);
  g_fault_vfs = *g_base;
  g_fault_vfs.iVersion = 2;  // no xNextSystemCall & co.: those are for SQLite's own tests
  g_fault_vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + g_base->szOsFile;
  g_fault_vfs.zName = "edgeline-fault";
  g_fault_vfs.pAppData = nullptr;
  g_fault_vfs.xOpen = Open;
  g_fault_vfs.xDelete = Delete;
  g_fault_vfs.xAccess = Access;
  g_fault_vfs.xFullPathname = FullPathname;
  g_fault_vfs.xDlOpen = DlOpen;
  g_fault_vfs.xDlError = DlError;
  g_fault_vfs.xDlSym = DlSym;
  g_fault_vfs.xDlClose = DlClose;
  g_fault_vfs.xRandomness = Randomness;
  g_fault_vfs.xSleep = SleepFor;
  g_fault_vfs.xCurrentTime = CurrentTime;
  g_fault_vfs.xGetLastError = GetLastError;
  g_fault_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
  sqlite3_vfs_register(&g_fault_vfs, /*makeDflt=*/1);
}

long InjectedFaults() {
  FaultState& s = State();
  std::lock_guard lock(s.mu);
  return s.injected;
}

namespace {
// LD_PRELOAD entry: the agent binary gets the fault VFS without knowing about it.
__attribute__((constructor)) void InstallFromEnvironment() {
  if (const char* control = std::getenv("FAULT_VFS_CONTROL"); control && *control) {
    InstallFaultVfs(control);
  }
}
}  // namespace

}  // namespace edgeline::testing
