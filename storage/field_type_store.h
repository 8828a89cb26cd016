// FieldTypeStore: the field types an InfluxDB server has shown it holds, per measurement and
// field, kept in the queue file so that ingest can refuse a conflicting field before it reaches
// the server, also after a restart. A sink records what it learns (from the server's
// field-type-conflict answers); ingest reads it. Thread-safe: all methods may be called from
// any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/field_types.h"
#include "common/status.h"

namespace edgeline {

struct KnownFieldType {
  std::string measurement;
  std::string field;
  FieldType type = FieldType::kFloat;
  std::string source;      // the sink that learned it
  int64_t updated_ns = 0;  // wall time it was last confirmed (set by the store)

  friend bool operator==(const KnownFieldType&, const KnownFieldType&) = default;
};

class FieldTypeStore {
 public:
  virtual ~FieldTypeStore() = default;

  // Inserts or replaces the entries (key: measurement and field), stamped with the store's
  // clock, in one transaction.
  virtual Status RecordFieldTypes(const std::vector<KnownFieldType>& types) {
    (void)types;
    return Status::Ok();
  }
  // Every entry, ordered by measurement and field.
  virtual Result<std::vector<KnownFieldType>> FieldTypes() { return std::vector<KnownFieldType>{}; }
  // Changes after each successful RecordFieldTypes, so readers can cache FieldTypes().
  virtual int64_t FieldTypesVersion() const { return 0; }
};

}  // namespace edgeline
