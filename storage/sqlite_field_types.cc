// SqliteQueue as a FieldTypeStore (sqlite_queue.h): the field_type table. All under mu_. A
// read-only connection to a file without the table reads it as empty.
#include "common/field_types.h"
#include "storage/sqlite_queue.h"

namespace edgeline {

Status SqliteQueue::RecordFieldTypes(const std::vector<KnownFieldType>& types) {
  if (types.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  Status st = TransactionLocked([&]() -> Status {
    SqliteStatement up(db_,
                       "INSERT INTO field_type(measurement, field, type, source, updated_ns) VALUES(?,?,?,?,?)"
                       " ON CONFLICT(measurement, field) DO UPDATE SET type=excluded.type, source=excluded.source,"
                       " updated_ns=excluded.updated_ns");
    RETURN_IF_ERROR(up.prepared());
    const int64_t now = clock_->WallNowNs();
    for (const KnownFieldType& t : types) {
      up.Reset();
      up.Bind(1, t.measurement).Bind(2, t.field).Bind(3, Name(t.type)).Bind(4, t.source).Bind(5, now);
      RETURN_IF_ERROR(up.Run());
    }
    return Status::Ok();
  });
  if (st.ok()) ++field_types_version_;
  return st;
}

Result<std::vector<KnownFieldType>> SqliteQueue::FieldTypes() {
  std::lock_guard lock(mu_);
  std::vector<KnownFieldType> out;
  if (!SqliteHasTable(db_, "field_type")) return out;
  SqliteStatement q(db_,
                    "SELECT measurement, field, type, source, updated_ns FROM field_type ORDER BY measurement, field");
  RETURN_IF_ERROR(q.prepared());
  Status st;
  while (q.Step(&st)) {
    std::optional<FieldType> type = FieldTypeFromName(q.Text(2));
    if (!type) continue;  // written by a newer version
    out.push_back({q.Text(0), q.Text(1), *type, q.Text(3), q.Int(4)});
  }
  RETURN_IF_ERROR(st);
  return out;
}

}  // namespace edgeline
