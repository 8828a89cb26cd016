// SqliteQueue as an MqttSessionStore (sqlite_queue.h): tables mqtt_state (Paho's client
// persistence) and mqtt_receipt (stored QoS 1 messages). All under mu_. Reads of a file without
// the tables (read-only status of a file not yet upgraded) see them empty.
#include <sqlite3.h>

#include "storage/sqlite_queue.h"

namespace edgeline {

uint64_t MqttDigest(std::string_view topic, std::string_view payload) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 0x100000001b3ULL;
  };
  for (char c : topic) mix(static_cast<unsigned char>(c));
  mix(0);
  for (char c : payload) mix(static_cast<unsigned char>(c));
  return h;
}

namespace {
// Paho's key for a received QoS 2 PUBLISH awaiting PUBREL (MQTT 3.1.1; MQTT 5 uses "r5-").
std::string InboundKey(int packet_id) { return "r-" + std::to_string(packet_id); }
}  // namespace

Status SqliteQueue::SettleReceiptsLocked(const std::vector<MqttReceipt>& receipts, int64_t now) {
  if (receipts.empty()) return Status::Ok();
  // Prepared once: this runs in every MQTT commit.
  if (!release_state_) {
    release_state_ = std::make_unique<SqliteStatement>(db_, "DELETE FROM mqtt_state WHERE session=? AND key=?");
    keep_receipt_ = std::make_unique<SqliteStatement>(
        db_,
        "INSERT INTO mqtt_receipt(session, packet_id, digest, connection, stored_ns) VALUES(?,?,?,?,?)"
        " ON CONFLICT(session, packet_id) DO UPDATE SET digest=excluded.digest,"
        " connection=excluded.connection, stored_ns=excluded.stored_ns");
  }
  RETURN_IF_ERROR(release_state_->prepared());
  RETURN_IF_ERROR(keep_receipt_->prepared());
  SqliteStatement& release = *release_state_;
  SqliteStatement& keep = *keep_receipt_;
  for (const MqttReceipt& r : receipts) {
    if (r.packet_id <= 0) continue;
    if (r.qos == 2) {
      release.Reset();
      release.Bind(1, r.session).Bind(2, InboundKey(r.packet_id));
      RETURN_IF_ERROR(release.Run());
    } else if (r.qos == 1) {
      keep.Reset();
      keep.Bind(1, r.session)
          .Bind(2, int64_t{r.packet_id})
          .Bind(3, static_cast<int64_t>(r.digest))
          .Bind(4, r.connection)
          .Bind(5, now);
      RETURN_IF_ERROR(keep.Run());
    }
  }
  return Status::Ok();
}

Status SqliteQueue::PutMqttState(const std::string& session, const std::string& key, std::string_view value) {
  std::lock_guard lock(mu_);
  return TransactionLocked([&]() -> Status {
    SqliteStatement put(db_,
                        "INSERT INTO mqtt_state(session, key, value, updated_ns) VALUES(?,?,?,?)"
                        " ON CONFLICT(session, key) DO UPDATE SET value=excluded.value, updated_ns=excluded.updated_ns");
    RETURN_IF_ERROR(put.prepared());
    put.Bind(1, session).Bind(2, key).BindBlob(3, value).Bind(4, clock_->WallNowNs());
    return put.Run();
  });
}

Result<std::optional<std::string>> SqliteQueue::GetMqttState(const std::string& session, const std::string& key) {
  std::lock_guard lock(mu_);
  if (!SqliteHasTable(db_, "mqtt_state")) return std::optional<std::string>{};
  SqliteStatement q(db_, "SELECT value FROM mqtt_state WHERE session=? AND key=?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, session).Bind(2, key);
  Status st;
  if (q.Step(&st)) return std::optional<std::string>(q.Text(0));
  RETURN_IF_ERROR(st);
  return std::optional<std::string>{};
}

Status SqliteQueue::RemoveMqttState(const std::string& session, const std::string& key) {
  std::lock_guard lock(mu_);
  return TransactionLocked([&]() -> Status {
    SqliteStatement del(db_, "DELETE FROM mqtt_state WHERE session=? AND key=?");
    RETURN_IF_ERROR(del.prepared());
    del.Bind(1, session).Bind(2, key);
    return del.Run();
  });
}

Result<std::vector<std::string>> SqliteQueue::MqttStateKeys(const std::string& session) {
  std::lock_guard lock(mu_);
  std::vector<std::string> keys;
  if (!SqliteHasTable(db_, "mqtt_state")) return keys;
  SqliteStatement q(db_, "SELECT key FROM mqtt_state WHERE session=? ORDER BY key");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, session);
  Status st;
  while (q.Step(&st)) keys.push_back(q.Text(0));
  RETURN_IF_ERROR(st);
  return keys;
}

Status SqliteQueue::ClearMqttState(const std::string& session) {
  std::lock_guard lock(mu_);
  return TransactionLocked([&]() -> Status {
    SqliteStatement del(db_, "DELETE FROM mqtt_state WHERE session=?");
    RETURN_IF_ERROR(del.prepared());
    del.Bind(1, session);
    return del.Run();
  });
}

Result<bool> SqliteQueue::StoredOnEarlierConnection(const MqttReceipt& receipt) {
  std::lock_guard lock(mu_);
  SqliteStatement q(db_, "SELECT digest, connection FROM mqtt_receipt WHERE session=? AND packet_id=?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, receipt.session).Bind(2, int64_t{receipt.packet_id});
  Status st;
  if (q.Step(&st)) {
    return static_cast<uint64_t>(q.Int(0)) == receipt.digest && q.Int(1) != receipt.connection;
  }
  RETURN_IF_ERROR(st);
  return false;
}

Status SqliteQueue::CountSuppressedDuplicate(const std::string& session) {
  std::lock_guard lock(mu_);
  return TransactionLocked([&]() -> Status {
    SqliteStatement up(db_,
                       "INSERT INTO mqtt_session(session, duplicates_suppressed) VALUES(?,1)"
                       " ON CONFLICT(session) DO UPDATE SET duplicates_suppressed=duplicates_suppressed+1");
    RETURN_IF_ERROR(up.prepared());
    up.Bind(1, session);
    return up.Run();
  });
}

Result<std::vector<MqttSessionStats>> SqliteQueue::MqttSessions() {
  std::lock_guard lock(mu_);
  std::vector<MqttSessionStats> out;
  if (!SqliteHasTable(db_, "mqtt_state") || !SqliteHasTable(db_, "mqtt_receipt") ||
      !SqliteHasTable(db_, "mqtt_session")) {
    return out;
  }
  SqliteStatement q(db_,
                    "SELECT session, SUM(inbound), SUM(other), SUM(receipts), SUM(dups) FROM ("
                    " SELECT session, key LIKE 'r-%' OR key LIKE 'r5-%' AS inbound,"
                    "  NOT (key LIKE 'r-%' OR key LIKE 'r5-%') AS other, 0 AS receipts, 0 AS dups FROM mqtt_state"
                    " UNION ALL SELECT session, 0, 0, 1, 0 FROM mqtt_receipt"
                    " UNION ALL SELECT session, 0, 0, 0, duplicates_suppressed FROM mqtt_session)"
                    " GROUP BY session ORDER BY session");
  RETURN_IF_ERROR(q.prepared());
  Status st;
  while (q.Step(&st)) out.push_back({q.Text(0), q.Int(1), q.Int(2), q.Int(3), q.Int(4)});
  RETURN_IF_ERROR(st);
  return out;
}

Result<int64_t> SqliteQueue::TrimMqttReceipts(int64_t keep) {
  std::lock_guard lock(mu_);
  std::vector<std::string> over;
  {
    SqliteStatement q(db_, "SELECT session FROM mqtt_receipt GROUP BY session HAVING COUNT(*) > ?");
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, keep + keep / 4);
    Status st;
    while (q.Step(&st)) over.push_back(q.Text(0));
    RETURN_IF_ERROR(st);
  }
  int64_t deleted = 0;
  for (const std::string& session : over) {
    RETURN_IF_ERROR(TransactionLocked([&]() -> Status {
      SqliteStatement del(db_,
                          "DELETE FROM mqtt_receipt WHERE session=?1 AND stored_ns < (SELECT stored_ns FROM"
                          " mqtt_receipt WHERE session=?1 ORDER BY stored_ns DESC LIMIT 1 OFFSET ?2)");
      RETURN_IF_ERROR(del.prepared());
      del.Bind(1, session).Bind(2, keep - 1);
      RETURN_IF_ERROR(del.Run());
      deleted += sqlite3_changes(db_);
      return Status::Ok();
    }));
  }
  return deleted;
}

}  // namespace edgeline
