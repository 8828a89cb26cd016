#include "ingest/field_type_guard.h"

#include "common/field_types.h"
#include "common/log.h"

namespace edgeline {

FieldTypeGuard::FieldTypeGuard(std::vector<std::pair<std::string, FieldType>> declared, FieldTypeStore* learned,
                               const Clock* clock)
    : declared_(declared.begin(), declared.end()), store_(learned), clock_(clock) {}

std::optional<FieldType> FieldTypeGuard::Declared(std::string_view field) const {
  auto it = declared_.find(field);
  if (it == declared_.end()) return std::nullopt;
  return it->second;
}

void FieldTypeGuard::RefreshLocked() {
  if (store_ == nullptr) return;
  const int64_t version = store_->FieldTypesVersion();
  if (version == loaded_version_) return;
  Result<std::vector<KnownFieldType>> types = store_->FieldTypes();
  if (!types.ok()) {
    LOG_WARN("ingest") << "could not read the learned field types: " << types.status().ToString();
    return;  // tried again with the next point
  }
  learned_.clear();
  for (KnownFieldType& t : *types) {
    learned_[{std::move(t.measurement), std::move(t.field)}] = {t.type, std::move(t.source), t.updated_ns};
  }
  loaded_version_ = version;
}

std::optional<RefusedFields> FieldTypeGuard::Check(Point* point) {
  if (declared_.empty() && store_ == nullptr) return std::nullopt;
  std::lock_guard lock(mu_);
  RefreshLocked();
  if (declared_.empty() && learned_.empty()) return std::nullopt;
  const int64_t now = clock_->WallNowNs();
  Point refused;
  std::string reason;
  auto refuse = [&](std::pair<std::string, FieldValue>& field, FieldType expected, std::string_view where) {
    reason += reason.empty() ? "field type conflict: " : "; ";
    reason += "field " + field.first + " is " + std::string(Name(field.second.type)) + ", expected " +
              std::string(Name(expected)) + " (" + std::string(where) + ")";
    refused.fields.push_back(std::move(field));
  };
  std::vector<std::pair<std::string, FieldValue>> kept;
  kept.reserve(point->fields.size());
  for (auto& field : point->fields) {
    if (auto declared = declared_.find(field.first); declared != declared_.end()) {
      if (declared->second != field.second.type) {
        refuse(field, declared->second, "declared in EDGELINE_FIELD_TYPES");
        continue;
      }
    } else if (auto learned = learned_.find(std::make_pair(point->measurement, field.first));
               learned != learned_.end() && learned->second.type != field.second.type &&
               now - learned->second.updated_ns < kLearnedTrustNs) {
      refuse(field, learned->second.type,
             "the server's type in measurement " + point->measurement + ", learned by sink " + learned->second.source);
      continue;
    }
    kept.push_back(std::move(field));
  }
  if (refused.fields.empty()) {
    point->fields = std::move(kept);
    return std::nullopt;
  }
  point->fields = std::move(kept);
  refused.measurement = point->measurement;
  refused.tags = point->tags;
  refused.timestamp_ns = point->timestamp_ns;
  return RefusedFields{FormatPoint(refused), std::move(reason)};
}

}  // namespace edgeline
