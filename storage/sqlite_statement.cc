// Implementation of sqlite_statement.h.
#include "storage/sqlite_statement.h"

#include <sqlite3.h>

namespace edgeline {
namespace {

Status StatusOf(int rc, const std::string& msg) {
  const int primary = rc & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return Status::Corruption(msg);
  // A full disk is a disk error (ResourceExhausted means the queue's own bound).
  if (primary == SQLITE_FULL) return Status::IoError("disk full: " + msg);
  return Status::IoError(msg);
}

}  // namespace

SqliteStatement::SqliteStatement(sqlite3* db, const char* sql) : db_(db) {
  rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

Status SqliteStatement::prepared() const {
  if (rc_ == SQLITE_OK) return Status::Ok();
  return ErrorStatus(rc_);
}

void SqliteStatement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

SqliteStatement& SqliteStatement::Bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}

SqliteStatement& SqliteStatement::Bind(int i, std::string_view v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

SqliteStatement& SqliteStatement::BindReal(int i, double v) {
  sqlite3_bind_double(stmt_, i, v);
  return *this;
}

SqliteStatement& SqliteStatement::BindBlob(int i, std::string_view v) {
  sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

bool SqliteStatement::Step(Status* status) {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) *status = ErrorStatus(rc);
  return false;
}

Status SqliteStatement::Run() {
  Status st;
  while (Step(&st)) {
  }
  return st;
}

int64_t SqliteStatement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }

double SqliteStatement::Real(int col) const { return sqlite3_column_double(stmt_, col); }

std::string SqliteStatement::Text(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(static_cast<const char*>(p), n) : std::string();
}

Status SqliteStatement::ErrorStatus(int rc) const {
  return StatusOf(rc, std::string("sqlite: ") + sqlite3_errmsg(db_));
}

Status SqliteExec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = std::string("sqlite: ") + (err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return StatusOf(rc, msg);
}

Result<sqlite3*> OpenSqliteDb(const std::string& path, bool read_only) {
  sqlite3* db = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;  // the owner serializes with its own mutex
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    if (read_only && (rc & 0xff) == SQLITE_CANTOPEN) return Status::NotFound("cannot open " + path + ": " + msg);
    return Status::IoError("cannot open " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, kSqliteBusyTimeoutMs);
  return db;
}

bool SqliteHasColumn(sqlite3* db, std::string_view table, std::string_view column) {
  const std::string probe = "SELECT " + std::string(column) + " FROM " + std::string(table) + " LIMIT 0";
  sqlite3_stmt* stmt = nullptr;
  const bool ok = sqlite3_prepare_v2(db, probe.c_str(), -1, &stmt, nullptr) == SQLITE_OK;
  sqlite3_finalize(stmt);
  return ok;
}

bool SqliteHasTable(sqlite3* db, const char* name) {
  SqliteStatement q(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?");
  if (!q.prepared().ok()) return false;
  q.Bind(1, std::string_view(name));
  Status st;
  return q.Step(&st);
}

}  // namespace edgeline
