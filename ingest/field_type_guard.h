// FieldTypeGuard: the field types ingest enforces, so that one device's wrong type costs only
// that device's field, before it can reach (and, as the first writer, fix the type on) the
// server. Two sources, in this order:
//  1. declared types (EDGELINE_FIELD_TYPES), for every measurement;
//  2. types a sink learned from the server's field type conflicts (FieldTypeStore, per
//     measurement), trusted for kLearnedTrustNs after the server last confirmed them: InfluxDB
//     fixes a type per shard, so a newer shard may accept the other type again.
// Check() removes each field of another type from a point and returns them as one line of
// their own (same measurement, tags and timestamp), for a replayable dead letter. Thread-safe;
// the store and clock are borrowed and must outlive the guard.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/line_protocol.h"
#include "storage/field_type_store.h"

namespace edgeline {

struct RefusedFields {
  std::string line;    // measurement, tags, the refused fields and the timestamp
  std::string reason;  // one clause per field: what it is, what is expected, and from where
};

class FieldTypeGuard {
 public:
  static constexpr int64_t kLearnedTrustNs = 24 * 3600 * kNsPerSec;

  // `learned` may be null (declared types only).
  FieldTypeGuard(std::vector<std::pair<std::string, FieldType>> declared, FieldTypeStore* learned,
                 const Clock* clock);

  // The declared type of `field`, if any (the JSON mapping writes numbers as that type).
  std::optional<FieldType> Declared(std::string_view field) const;

  // Removes the fields of `point` whose type differs from the enforced one. nullopt when none
  // was removed. A point left without fields has them all in the returned line; the caller
  // then drops the point. REQUIRES: point->timestamp_ns is set.
  std::optional<RefusedFields> Check(Point* point);

 private:
  struct Learned {
    FieldType type;
    std::string source;
    int64_t updated_ns;
  };
  // Reloads the learned types when the store changed. REQUIRES: mu_ held.
  void RefreshLocked();

  const std::map<std::string, FieldType, std::less<>> declared_;
  FieldTypeStore* const store_;
  const Clock* const clock_;

  std::mutex mu_;
  int64_t loaded_version_ = -1;                                             // guarded by mu_
  std::map<std::pair<std::string, std::string>, Learned, std::less<>> learned_;  // guarded by mu_
};

}  // namespace edgeline
