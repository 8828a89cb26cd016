// The queue file's schema and upgrade (sqlite_schema.h). The format is documented in
// docs/QUEUE_FORMAT.md; a change here changes that file and, for a new column, kAddedColumns.
#include "storage/sqlite_schema.h"

#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "storage/sqlite_statement.h"

namespace edgeline {
namespace {

// The version this code writes. A version-1 file lacks the columns of kAddedColumns and the
// consumer_state and acked_batch tables.
constexpr int kSchemaVersion = 2;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  stream TEXT NOT NULL,
  created_ns INTEGER NOT NULL,
  min_ts INTEGER NOT NULL,
  max_ts INTEGER NOT NULL,
  points INTEGER NOT NULL,
  raw_bytes INTEGER NOT NULL,
  codec TEXT NOT NULL,
  body BLOB NOT NULL,
  sources BLOB);
CREATE INDEX IF NOT EXISTS batch_stream_seq ON batch(stream, seq);
CREATE TABLE IF NOT EXISTS cursor(
  sink TEXT PRIMARY KEY,
  stream TEXT NOT NULL,
  seq INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL,
  registered_ns INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sink_status(
  sink TEXT PRIMARY KEY,
  state TEXT NOT NULL DEFAULT '',
  last_code INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  last_attempt_ns INTEGER NOT NULL DEFAULT 0,
  last_success_ns INTEGER NOT NULL DEFAULT 0,
  sent_points INTEGER NOT NULL DEFAULT 0,
  dropped_points INTEGER NOT NULL DEFAULT 0,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  next_retry_ns INTEGER NOT NULL DEFAULT 0,
  skipped_points INTEGER NOT NULL DEFAULT 0,
  retry_after_ns INTEGER NOT NULL DEFAULT 0,
  batch_points INTEGER NOT NULL DEFAULT 0,
  drain_rate REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS dead_letter(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sink TEXT NOT NULL,
  kind TEXT NOT NULL,
  reason TEXT NOT NULL,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  created_ns INTEGER NOT NULL,
  replay_requested INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS dead_letter_sink ON dead_letter(sink, id);
CREATE TABLE IF NOT EXISTS agent_state(key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS acked_batch(sink TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(sink, seq));
CREATE TABLE IF NOT EXISTS consumer_state(sink TEXT PRIMARY KEY, state BLOB NOT NULL, updated_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mqtt_state(
  session TEXT NOT NULL,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  updated_ns INTEGER NOT NULL,
  PRIMARY KEY(session, key));
CREATE TABLE IF NOT EXISTS mqtt_receipt(
  session TEXT NOT NULL,
  packet_id INTEGER NOT NULL,
  digest INTEGER NOT NULL,
  connection INTEGER NOT NULL,
  stored_ns INTEGER NOT NULL,
  PRIMARY KEY(session, packet_id));
CREATE TABLE IF NOT EXISTS mqtt_session(session TEXT PRIMARY KEY, duplicates_suppressed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS field_type(
  measurement TEXT NOT NULL,
  field TEXT NOT NULL,
  type TEXT NOT NULL,
  source TEXT NOT NULL,
  updated_ns INTEGER NOT NULL,
  PRIMARY KEY(measurement, field));
)sql";

// The columns kSchema has beyond schema version 1, with their definitions for ALTER TABLE.
constexpr std::pair<const char*, const char*> kAddedColumns[] = {
    {"batch", "sources BLOB"},
    {"sink_status", "skipped_points INTEGER NOT NULL DEFAULT 0"},
    {"dead_letter", "replay_requested INTEGER NOT NULL DEFAULT 0"},
    {"sink_status", "retry_after_ns INTEGER NOT NULL DEFAULT 0"},
    {"sink_status", "batch_points INTEGER NOT NULL DEFAULT 0"},
    {"sink_status", "drain_rate REAL NOT NULL DEFAULT 0"},
    {"cursor", "registered_ns INTEGER NOT NULL DEFAULT 0"},
};

}  // namespace

Status ApplyQueueSchema(sqlite3* db, const QueueConfig& config) {
  // Before the first table exists, so that a new file can return the pages compaction frees
  // (ShrinkFile); an older file keeps its mode (changing it takes a full VACUUM).
  if (!SqliteHasTable(db, "meta")) RETURN_IF_ERROR(SqliteExec(db, "PRAGMA auto_vacuum=INCREMENTAL"));
  RETURN_IF_ERROR(SqliteExec(db, "PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(
      SqliteExec(db, config.sync == SyncMode::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  RETURN_IF_ERROR(SqliteExec(db, kSchema));
  for (auto [table, column] : kAddedColumns) {
    if (SqliteHasColumn(db, table, std::string_view(column, std::strchr(column, ' ') - column))) continue;
    std::string alter = "ALTER TABLE " + std::string(table) + " ADD COLUMN " + column;
    RETURN_IF_ERROR(SqliteExec(db, alter.c_str()));
  }
  std::string bump = "UPDATE meta SET value='" + std::to_string(kSchemaVersion) + "' WHERE key='schema_version'";
  RETURN_IF_ERROR(SqliteExec(db, bump.c_str()));
  std::string version =
      "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version','" + std::to_string(kSchemaVersion) + "')";
  return SqliteExec(db, version.c_str());
}

}  // namespace edgeline
