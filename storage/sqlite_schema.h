// The queue file's schema (docs/QUEUE_FORMAT.md) and its upgrade from older versions.
// Stateless; called once per connection, before the connection is shared.
#pragma once

#include "common/status.h"
#include "config/config.h"

struct sqlite3;

namespace edgeline {

// Sets the journal (WAL) and sync mode of `config`, creates missing tables and indexes, adds
// the columns a file of an older schema version lacks, and records the schema version.
// REQUIRES: a read-write connection.
Status ApplyQueueSchema(sqlite3* db, const QueueConfig& config);

}  // namespace edgeline
