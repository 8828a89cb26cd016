// DeviceStatusMapper: the devices' own status and Last Will messages (EDGELINE_DEVICE_STATUS_TOPICS)
// -> one point each in EDGELINE_DEVICE_STATUS_MEASUREMENT, stamped with the receive time: the
// device id as a tag (from a `{tag}` level, or a bare `+` level named by the first group-by
// key), field `status` (the payload `online`/`offline`/..., lower-cased, or a JSON object's
// `status` or `state` member) and the object's other scalar members as fields. The downsampler
// reads an `offline` as the device going silent. An empty payload (a retained message being
// cleared) records nothing; anything that cannot be a point is an error (a dead letter).
// Immutable after construction: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "ingest/mapping.h"

namespace edgeline {

class DeviceStatusMapper {
 public:
  // `id_tag`: the tag a bare `+` level's value goes to.
  DeviceStatusMapper(const MappingConfig& config, std::string id_tag);

  bool enabled() const { return !filters_.empty(); }
  // What to subscribe to: each filter with its `{tag}` levels as `+`.
  std::vector<std::string> SubscriptionFilters() const;
  // True when `topic` matches one of the status filters.
  bool Matches(std::string_view topic) const;
  // REQUIRES: Matches(topic). `retained`: the broker sent it because of the subscribe (a
  // retained message from before); the point then carries field retained=true.
  IngestMessage Prepare(std::string_view topic, std::string_view payload, int64_t receive_ns,
                        bool retained = false) const;

 private:
  struct Filter {
    std::vector<std::string> levels;  // "+" or a literal level
    std::vector<std::string> tags;    // per level: the tag a `+` level fills, "" for none
  };
  const Filter* Match(std::string_view topic, std::vector<std::string_view>* levels) const;

  std::string measurement_;
  std::vector<std::string> json_tags_;
  std::vector<Filter> filters_;
};

// The tag a bare `+` level of a status topic fills: the first EDGELINE_DOWNSAMPLE_GROUP_BY key,
// else the first EDGELINE_JSON_TAGS key, else "device".
std::string DeviceIdTag(const Config& config);

}  // namespace edgeline
