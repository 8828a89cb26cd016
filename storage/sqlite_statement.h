// The thin layer over the SQLite C API that the queue's files share: an RAII prepared statement,
// one-shot SQL, connection opening and schema probes, with SQLite result codes mapped to Status
// (CORRUPT/NOTADB -> Corruption, FULL -> IoError "disk full", anything else -> IoError).
// Not thread-safe: a statement belongs to its connection, which its owner serializes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace edgeline {

// A prepared statement; finalized on destruction. REQUIRES: `db` outlives it.
class SqliteStatement {
 public:
  SqliteStatement(sqlite3* db, const char* sql);
  ~SqliteStatement();
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Whether the SQL compiled; every other method requires it did.
  Status prepared() const;
  // Back to the first step, bindings cleared (NULL).
  void Reset();
  SqliteStatement& Bind(int i, int64_t v);
  SqliteStatement& Bind(int i, std::string_view v);  // as TEXT
  SqliteStatement& BindReal(int i, double v);
  SqliteStatement& BindBlob(int i, std::string_view v);
  // SQLITE_ROW -> true, SQLITE_DONE -> false; errors in *status.
  bool Step(Status* status);
  // Steps to the end, ignoring rows.
  Status Run();
  int64_t Int(int col) const;
  double Real(int col) const;
  std::string Text(int col) const;  // TEXT or BLOB bytes; "" for NULL

 private:
  Status ErrorStatus(int rc) const;

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

// How long a connection of OpenSqliteDb waits for a lock held by another connection.
inline constexpr int kSqliteBusyTimeoutMs = 5000;

// Runs one or more SQL statements without results.
Status SqliteExec(sqlite3* db, const char* sql);

// Opens a connection (read-write and created if missing, or read-only) with kSqliteBusyTimeoutMs
// and no SQLite mutex (the owner serializes). NotFound when read-only and the file cannot be
// opened. The caller owns the connection (sqlite3_close_v2).
Result<sqlite3*> OpenSqliteDb(const std::string& path, bool read_only);

// Whether `table` has `column` (a file of an older schema version may not).
bool SqliteHasColumn(sqlite3* db, std::string_view table, std::string_view column);
// Whether the table `name` exists.
bool SqliteHasTable(sqlite3* db, const char* name);

}  // namespace edgeline
