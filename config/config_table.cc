#include "config/config_table.h"

#include <charconv>
#include <type_traits>

#include "common/strings.h"

namespace edgeline::config_internal {
namespace {

constexpr int64_t kNs = 1;
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kKiB = 1024;
constexpr int64_t kMiB = 1024 * kKiB;

using G = Group;
using T = VarType;

// Rows are in documentation order within each group. Keep default_text in the canonical form
// Show() produces ("1m", not "60s"): config_test checks both directions against Config{}.
// The table is laid out by hand, a few fields per line, so that an entry reads as one row.
// clang-format off
std::vector<Variable> BuildTable() {
  return {
      // Queue
      {.name = "EDGELINE_QUEUE_PATH", .group = G::kQueue, .type = T::kString,
       .default_text = "/var/lib/edgeline/queue.db", .min = 1,
       .doc = "SQLite queue file. Its directory must exist and be writable; the `-wal` and `-shm` "
              "files live next to it.",
       .field = [](Config& c) -> FieldPtr { return &c.queue.path; }},
      {.name = "EDGELINE_QUEUE_MAX_BYTES", .group = G::kQueue, .type = T::kSize,
       .default_text = "1GiB", .min = 64 * kKiB,
       .doc = "Largest size of the queue's data on disk (stored batches plus a fixed cost per "
              "row, within a few percent of the file's used pages; `edgeline status` shows both); "
              "when reached, `EDGELINE_QUEUE_FULL_POLICY` applies. The WAL adds up to a few MiB "
              "while the agent writes.",
       .field = [](Config& c) -> FieldPtr { return &c.queue.max_bytes; }},
      {.name = "EDGELINE_QUEUE_MAX_AGE", .group = G::kQueue, .type = T::kDuration,
       .default_text = "7d", .min = 0,
       .doc = "Batches older than this are dropped (and counted per sink). 0 = no age limit.",
       .field = [](Config& c) -> FieldPtr { return &c.queue.max_age_ns; }},
      {.name = "EDGELINE_QUEUE_FULL_POLICY", .group = G::kQueue, .type = T::kEnum,
       .default_text = "drop-oldest", .allowed = {"drop-oldest", "backpressure"},
       .doc = "When the queue is full: drop the oldest batches (keeps the newest data), or stop "
              "acknowledging MQTT messages so the broker holds them.",
       .field = [](Config& c) -> FieldPtr { return &c.queue.full_policy; }},
      {.name = "EDGELINE_QUEUE_SYNC", .group = G::kQueue, .type = T::kEnum, .default_text = "full",
       .allowed = {"full", "normal"},
       .doc = "SQLite synchronous mode: full survives power loss; normal survives process crashes "
              "only, and is faster.",
       .field = [](Config& c) -> FieldPtr { return &c.queue.sync; }},
      {.name = "EDGELINE_QUEUE_COMMIT_INTERVAL", .group = G::kQueue, .type = T::kDuration,
       .default_text = "0", .min = 0, .max = 10 * kSec,
       .doc = "Extra wait for more messages before a group commit. 0 = commit as soon as the "
              "writer is free; messages arriving during a commit still share the next one.",
       .field = [](Config& c) -> FieldPtr { return &c.queue.commit_interval_ns; }},
      {.name = "EDGELINE_QUEUE_COMMIT_MAX_MESSAGES", .group = G::kQueue, .type = T::kInt,
       .default_text = "1000", .min = 1, .max = 100'000,
       .doc = "Most messages in one group commit.",
       .field = [](Config& c) -> FieldPtr { return &c.queue.commit_max_messages; }},
      {.name = "EDGELINE_QUEUE_ZSTD_LEVEL", .group = G::kQueue, .type = T::kInt,
       .default_text = "3", .min = 1, .max = 22,
       .doc = "zstd level for stored batches: higher is smaller and slower.",
       .field = [](Config& c) -> FieldPtr { return &c.queue.zstd_level; }},
      {.name = "EDGELINE_QUEUE_COMPACT_POINTS", .group = G::kQueue, .type = T::kInt,
       .default_text = "1000", .min = 0, .max = 100'000,
       .doc = "Compaction merges runs of small batches (MQTT ingest stores one message per "
              "commit) into batches of this many points, so a held point costs a share of one "
              "zstd frame instead of a row of its own. 0 = off.",
       .field = [](Config& c) -> FieldPtr { return &c.queue.compact_points; }},
      {.name = "EDGELINE_QUEUE_COMPACT_BYTES", .group = G::kQueue, .type = T::kSize,
       .default_text = "256KiB", .min = 4 * kKiB, .max = 64 * kMiB,
       .doc = "Most line-protocol bytes in one batch made by compaction.",
       .field = [](Config& c) -> FieldPtr { return &c.queue.compact_bytes; }},

      // MQTT
      {.name = "EDGELINE_MQTT_URL", .group = G::kMqtt, .type = T::kString,
       .default_text = "tcp://127.0.0.1:1883", .min = 1,
       .doc = "Broker URL: `tcp://` or `mqtt://` (plain), `ssl://` or `mqtts://` (TLS), `ws://` or "
              "`wss://` (WebSocket).",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.url; }},
      {.name = "EDGELINE_MQTT_CLIENT_ID", .group = G::kMqtt, .type = T::kString,
       .default_text = "edgeline", .min = 1,
       .doc = "MQTT client ID. Keep it stable: the broker keeps the persistent session under it.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.client_id; }},
      {.name = "EDGELINE_MQTT_USERNAME", .group = G::kMqtt, .type = T::kString,
       .default_text = "", .doc = "Broker user name (optional).",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.username; }},
      {.name = "EDGELINE_MQTT_PASSWORD", .group = G::kMqtt, .type = T::kString,
       .default_text = "", .secret = true, .doc = "Broker password.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.password; }},
      {.name = "EDGELINE_MQTT_TOPICS", .group = G::kMqtt, .type = T::kList,
       .default_text = "emergency_generator/+", .min = 1,
       .doc = "Topic filters to subscribe to, comma-separated; wildcards `+` and `#` are allowed.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.topics; }},
      {.name = "EDGELINE_MQTT_QOS", .group = G::kMqtt, .type = T::kInt, .default_text = "1",
       .min = 0, .max = 2,
       .doc = "Subscription QoS. 1 or 2 gives at-least-once delivery into the queue.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.qos; }},
      {.name = "EDGELINE_MQTT_KEEPALIVE", .group = G::kMqtt, .type = T::kDuration,
       .default_text = "30s", .min = 0, .max = 65535 * kSec,
       .doc = "MQTT keep-alive interval. 0 disables keep-alive.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.keepalive_ns; }},
      {.name = "EDGELINE_MQTT_STATUS_TOPIC", .group = G::kMqtt, .type = T::kString,
       .default_text = "",
       .doc = "Topic for the agent's retained online/offline status. Empty = the default.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.status_topic; },
       .default_doc = "edgeline/<client_id>/status"},
      {.name = "EDGELINE_MQTT_CONNECTIONS", .group = G::kMqtt, .type = T::kInt,
       .default_text = "1", .min = 1, .max = 64,
       .doc = "MQTT sessions this process opens; above 1 they share the subscriptions through "
              "`$share/<group>/<filter>`. Paho C runs every session of a process on one receive "
              "thread, so with ack-after-commit more sessions do not raise throughput (see "
              "README, Delivery guarantee).",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.connections; }},
      {.name = "EDGELINE_MQTT_SHARE_GROUP", .group = G::kMqtt, .type = T::kString,
       .default_text = "edgeline", .min = 1,
       .doc = "Shared-subscription group name used when `EDGELINE_MQTT_CONNECTIONS` > 1.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.share_group; }},
      {.name = "EDGELINE_MQTT_CA_FILE", .group = G::kMqtt, .type = T::kString,
       .default_text = "", .doc = "CA bundle (PEM) to verify the broker's certificate.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.ca_file; }},
      {.name = "EDGELINE_MQTT_CERT_FILE", .group = G::kMqtt, .type = T::kString,
       .default_text = "", .doc = "Client certificate (PEM) for mutual TLS.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.cert_file; }},
      {.name = "EDGELINE_MQTT_KEY_FILE", .group = G::kMqtt, .type = T::kString,
       .default_text = "", .doc = "Client private key (PEM) for mutual TLS.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.key_file; }},
      {.name = "EDGELINE_MQTT_TLS_SKIP_VERIFY", .group = G::kMqtt, .type = T::kBool,
       .default_text = "false", .doc = "Do not verify the broker's certificate (testing only).",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.tls_skip_verify; }},
      {.name = "EDGELINE_MQTT_MAX_PAYLOAD", .group = G::kMqtt, .type = T::kSize,
       .default_text = "1MiB", .min = 1, .max = 256 * kMiB,
       .doc = "Largest message payload accepted.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.max_payload_bytes; }},
      {.name = "EDGELINE_MQTT_RECONNECT_MIN", .group = G::kMqtt, .type = T::kDuration,
       .default_text = "1s", .min = kMs, .max = kHour,
       .doc = "First reconnect delay; it grows up to `EDGELINE_MQTT_RECONNECT_MAX`.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.reconnect_min_ns; }},
      {.name = "EDGELINE_MQTT_RECONNECT_MAX", .group = G::kMqtt, .type = T::kDuration,
       .default_text = "1m", .min = kMs, .max = 24 * kHour, .doc = "Longest reconnect delay.",
       .field = [](Config& c) -> FieldPtr { return &c.mqtt.reconnect_max_ns; }},

      // Mapping
      {.name = "EDGELINE_MEASUREMENT", .group = G::kMapping, .type = T::kString,
       .default_text = "genData", .min = 1, .doc = "Measurement name for points mapped from JSON.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.measurement; }},
      {.name = "EDGELINE_JSON_TAGS", .group = G::kMapping, .type = T::kList,
       .default_text = "generatorID",
       .doc = "JSON keys that become tags, comma-separated. Set it empty for no tags.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.json_tags; }},
      {.name = "EDGELINE_JSON_INTEGERS", .group = G::kMapping, .type = T::kList,
       .default_text = "",
       .doc = "JSON keys whose numbers are written as integers; other numbers are floats.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.json_integers; }},
      {.name = "EDGELINE_FIELD_TYPES", .group = G::kMapping, .type = T::kString,
       .default_text = "",
       .doc = "Declared field types, `field=type,...` with type float, integer, unsigned, string or "
              "boolean, e.g. `temperature=float,note=string`. A field of another type is removed at "
              "ingest (the rest of the point is kept) and dead-lettered, so the first device to send "
              "a wrong type cannot fix it on the server. A JSON number of a field declared integer or "
              "unsigned is written as one. Empty = types are learned from the server's conflicts.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.field_types_text; }},
      {.name = "EDGELINE_TOPIC_TAGS", .group = G::kMapping, .type = T::kString,
       .default_text = "",
       .doc = "Topic template whose `{name}` levels become tags, e.g. "
              "`emergency_generator/{generatorID}`. Empty = no tags from the topic.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.topic_tags; }},
      {.name = "EDGELINE_JSON_TIME_KEY", .group = G::kMapping, .type = T::kString,
       .default_text = "",
       .doc = "JSON key holding the event time. Empty = receive time, assigned once and stored "
              "so replays write identical points.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.time_key; }},
      {.name = "EDGELINE_JSON_TIME_FORMAT", .group = G::kMapping, .type = T::kEnum,
       .default_text = "ns", .allowed = {"s", "ms", "us", "ns", "rfc3339"},
       .doc = "Format of the time key: epoch seconds, milliseconds, microseconds, nanoseconds, "
              "or an RFC 3339 string.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.time_format; }},
      {.name = "EDGELINE_JSON_TIME_MAX_AHEAD", .group = G::kMapping, .type = T::kDuration,
       .default_text = "5m", .min = 0, .max = 24 * kHour,
       .doc = "A device timestamp further ahead of the receive time than this is a wrong device "
              "clock, handled by `EDGELINE_JSON_TIME_POLICY`. 0 = no check.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.time_max_ahead_ns; }},
      {.name = "EDGELINE_JSON_TIME_FLOOR", .group = G::kMapping, .type = T::kString,
       .default_text = "2020-01-01",
       .doc = "A device timestamp before this (RFC 3339 date or time) is a wrong device clock, e.g. "
              "a device that booted without NTP; handled by `EDGELINE_JSON_TIME_POLICY`. Empty = no floor.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.time_floor_text; }},
      {.name = "EDGELINE_JSON_TIME_POLICY", .group = G::kMapping, .type = T::kEnum,
       .default_text = "receive-time", .allowed = {"receive-time", "dlq"},
       .doc = "What a wrong device clock does to a point: `receive-time` stamps it with the receive "
              "time and keeps the device's time as field `device_time` (integer ns), so nothing is "
              "lost; `dlq` dead-letters the message with the reason. Both are counted in `edgeline status`.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.time_policy; }},
      {.name = "EDGELINE_DEVICE_STATUS_TOPICS", .group = G::kMapping, .type = T::kList,
       .default_text = "",
       .doc = "Topic filters of the devices' own status and Last Will messages, comma-separated, "
              "e.g. `emergency_generator/+/status` or `emergency_generator/{generatorID}/status`. "
              "A `{tag}` level names the tag the device id goes to; a bare `+` level uses the first "
              "`EDGELINE_DOWNSAMPLE_GROUP_BY` key. Payload `online`/`offline`, or JSON with a "
              "`status` key. Recorded as points in `EDGELINE_DEVICE_STATUS_MEASUREMENT`; an "
              "`offline` makes the device stale at once (`EDGELINE_DOWNSAMPLE_STALE_AFTER`). Empty = off.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.device_status_topics; }},
      {.name = "EDGELINE_DEVICE_STATUS_MEASUREMENT", .group = G::kMapping, .type = T::kString,
       .default_text = "deviceStatus", .min = 1,
       .doc = "Measurement of the device status points (field `status`, the device id as a tag). "
              "Never downsampled.",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.device_status_measurement; }},
      {.name = "EDGELINE_MAX_STRING_FIELD", .group = G::kMapping, .type = T::kSize,
       .default_text = "65535", .min = 1, .max = 64 * kKiB - 1,
       .doc = "Longest string field value (InfluxDB's limit is 64KiB - 1).",
       .field = [](Config& c) -> FieldPtr { return &c.mapping.max_string_field_bytes; }},

      // InfluxDB
      {.name = "EDGELINE_INFLUX_ENABLED", .group = G::kInflux, .type = T::kBool,
       .default_text = "true", .doc = "Replicate the queue to InfluxDB.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.enabled; }},
      {.name = "EDGELINE_INFLUX_URL", .group = G::kInflux, .type = T::kString,
       .default_text = "http://127.0.0.1:8086", .min = 1,
       .doc = "InfluxDB base URL, `http://` or `https://`.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.url; }},
      {.name = "EDGELINE_INFLUX_API", .group = G::kInflux, .type = T::kEnum,
       .default_text = "v2", .allowed = {"v1", "v2", "v3"},
       .doc = "Write API: v1 needs `EDGELINE_INFLUX_DB`; v2 needs `EDGELINE_INFLUX_ORG`, "
              "`EDGELINE_INFLUX_BUCKET` and `EDGELINE_INFLUX_TOKEN`; v3 needs "
              "`EDGELINE_INFLUX_DB` and `EDGELINE_INFLUX_TOKEN`.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.api; }},
      {.name = "EDGELINE_INFLUX_TOKEN", .group = G::kInflux, .type = T::kString,
       .default_text = "", .secret = true, .doc = "API token (v2, v3).",
       .field = [](Config& c) -> FieldPtr { return &c.influx.token; }},
      {.name = "EDGELINE_INFLUX_ORG", .group = G::kInflux, .type = T::kString,
       .default_text = "", .doc = "Organization (v2).",
       .field = [](Config& c) -> FieldPtr { return &c.influx.org; }},
      {.name = "EDGELINE_INFLUX_BUCKET", .group = G::kInflux, .type = T::kString,
       .default_text = "kafka", .doc = "Bucket for raw data (v2).",
       .field = [](Config& c) -> FieldPtr { return &c.influx.bucket; }},
      {.name = "EDGELINE_INFLUX_DB", .group = G::kInflux, .type = T::kString,
       .default_text = "kafka", .doc = "Database (v1, v3).",
       .field = [](Config& c) -> FieldPtr { return &c.influx.database; }},
      {.name = "EDGELINE_INFLUX_RP", .group = G::kInflux, .type = T::kString,
       .default_text = "", .doc = "Retention policy (v1). Empty = the database's default.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.retention_policy; }},
      {.name = "EDGELINE_INFLUX_CREATE_DB", .group = G::kInflux, .type = T::kBool,
       .default_text = "false",
       .doc = "v1: when the server answers 404 (database not found), create the database "
              "(`CREATE DATABASE`, needs admin rights) and write again. Otherwise the sink waits in "
              "state `not-found`, keeping the data.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.create_database; }},
      {.name = "EDGELINE_INFLUX_MAX_BYTES_PER_SEC", .group = G::kInflux, .type = T::kSize,
       .default_text = "0", .min = 0,
       .doc = "Bandwidth cap for each InfluxDB sink, in request body bytes (after gzip) per "
              "second, averaged over requests. 0 = no cap. For metered links.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.max_bytes_per_sec; }},
      {.name = "EDGELINE_REPLAY_ORDER", .group = G::kInflux, .type = T::kEnum,
       .default_text = "oldest-first", .allowed = {"oldest-first", "newest-first"},
       .doc = "Order in which the InfluxDB sinks send a backlog. `newest-first` makes dashboards "
              "current at once after an outage while the backlog fills in behind; points are "
              "still all delivered, and the queue frees a batch once every sink has it.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.replay_order; }},
      {.name = "EDGELINE_INFLUX_USERNAME", .group = G::kInflux, .type = T::kString,
       .default_text = "", .doc = "User name (v1, optional).",
       .field = [](Config& c) -> FieldPtr { return &c.influx.username; }},
      {.name = "EDGELINE_INFLUX_PASSWORD", .group = G::kInflux, .type = T::kString,
       .default_text = "", .secret = true, .doc = "Password (v1).",
       .field = [](Config& c) -> FieldPtr { return &c.influx.password; }},
      {.name = "EDGELINE_INFLUX_BATCH_POINTS", .group = G::kInflux, .type = T::kInt,
       .default_text = "5000", .min = 1, .max = 1'000'000, .doc = "Most points per write request.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.batch_points; }},
      {.name = "EDGELINE_INFLUX_GZIP", .group = G::kInflux, .type = T::kBool,
       .default_text = "true", .doc = "Compress request bodies with gzip.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.gzip; }},
      {.name = "EDGELINE_INFLUX_TIMEOUT", .group = G::kInflux, .type = T::kDuration,
       .default_text = "30s", .min = kMs, .max = kHour, .doc = "Timeout for a whole write request.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.timeout_ns; }},
      {.name = "EDGELINE_INFLUX_CONNECT_TIMEOUT", .group = G::kInflux, .type = T::kDuration,
       .default_text = "5s", .min = kMs, .max = kHour,
       .doc = "Timeout for establishing a connection.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.connect_timeout_ns; }},
      {.name = "EDGELINE_INFLUX_TLS_SKIP_VERIFY", .group = G::kInflux, .type = T::kBool,
       .default_text = "false", .doc = "Do not verify the server's certificate (testing only).",
       .field = [](Config& c) -> FieldPtr { return &c.influx.tls_skip_verify; }},
      {.name = "EDGELINE_INFLUX_CA_FILE", .group = G::kInflux, .type = T::kString,
       .default_text = "", .doc = "CA bundle (PEM) to verify the server's certificate.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.ca_file; }},
      {.name = "EDGELINE_RETRY_MIN", .group = G::kInflux, .type = T::kDuration,
       .default_text = "1s", .min = kMs, .max = kHour,
       .doc = "First retry delay after a failed write; it grows exponentially, with jitter, up to "
              "EDGELINE_RETRY_MAX.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.retry_min_ns; }},
      {.name = "EDGELINE_RETRY_MAX", .group = G::kInflux, .type = T::kDuration,
       .default_text = "5m", .min = kMs, .max = 24 * kHour, .doc = "Longest retry delay.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.retry_max_ns; }},
      {.name = "EDGELINE_INFLUX_STREAMS", .group = G::kInflux, .type = T::kList,
       .default_text = "raw,downsampled", .min = 1,
       .doc = "Streams replicated to InfluxDB: `raw` (every point, to `EDGELINE_INFLUX_BUCKET`/"
              "`_DB`) and `downsampled` (to `EDGELINE_DOWNSAMPLE_BUCKET`, when downsampling is "
              "on). Set `downsampled` alone for a metered link: raw points then stay local and "
              "are deleted once the downsampler (and Kafka, if on) has them.",
       .field = [](Config& c) -> FieldPtr { return &c.influx.streams; }},

      // Downsampling and alarms
      {.name = "EDGELINE_DOWNSAMPLE_PRESET", .group = G::kDownsample, .type = T::kEnum,
       .default_text = "none", .allowed = {"none", "seed"},
       .doc = "`seed` = the seed's Flux task: 1m windows, last row per `generatorID` of "
              "`genData`, `alarm:fuel<500?refuel:no action`, tag `region=US`, bucket "
              "`kafka_downsampled`. Variables set explicitly override the preset. Downsampling is "
              "on when any `EDGELINE_DOWNSAMPLE_*` variable is set.",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.preset; }},
      {.name = "EDGELINE_DOWNSAMPLE_EVERY", .group = G::kDownsample, .type = T::kDuration,
       .default_text = "1m", .min = kSec, .max = 24 * kHour,
       .doc = "Window length. Windows are aligned to the Unix epoch (1m windows start on the "
              "minute) and cut on event time (the points' timestamps).",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.every_ns; }},
      {.name = "EDGELINE_DOWNSAMPLE_LATENESS", .group = G::kDownsample, .type = T::kDuration,
       .default_text = "10s", .min = 0, .max = 24 * kHour,
       .doc = "How late a point may arrive: a window closes when the newest timestamp seen, "
              "minus this, passes the window's end. Later points are left out of the "
              "downsampled output (counted as late; the raw point is still replicated).",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.lateness_ns; }},
      {.name = "EDGELINE_DOWNSAMPLE_IDLE_TIMEOUT", .group = G::kDownsample, .type = T::kDuration,
       .default_text = "30s", .min = 0, .max = 24 * kHour,
       .doc = "When the downsampler has caught up and no newer point arrived for this long, event "
              "time advances with the clock, so the last window before a quiet period closes. "
              "Right for receive-time timestamps (the default); with device timestamps that can "
              "arrive in delayed bursts, raise it or set 0 (never: windows close only on newer "
              "points).",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.idle_timeout_ns; }},
      {.name = "EDGELINE_DOWNSAMPLE_GROUP_BY", .group = G::kDownsample, .type = T::kList,
       .default_text = "generatorID",
       .doc = "Tag keys that form a group (plus the measurement); one output point per group and "
              "window. Empty = one group per measurement. Other tags are not carried over.",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.group_by; }},
      {.name = "EDGELINE_DOWNSAMPLE_AGGREGATE", .group = G::kDownsample, .type = T::kString,
       .default_text = "last", .min = 1,
       .doc = "Aggregate for every field, then optional per-field overrides: `last`, or "
              "`last,temperature=max,power=mean`. One of last, first, min, max, mean, sum, count. "
              "The output timestamp is that of the row `last` (or `first`) picked, as Flux's "
              "`last()`; with any other default it is the window's end (Flux's `_stop`).",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.aggregate_text; }},
      {.name = "EDGELINE_DOWNSAMPLE_ALARM", .group = G::kDownsample, .type = T::kString,
       .default_text = "",
       .doc = "Alarm rules, `;`-separated, each `output:field<op>number?if_true:if_false` with "
              "op one of < <= > >= == !=, e.g. `alarm:fuel<500?refuel:no action`. Evaluated on "
              "the aggregated row; the result is a string field. A row without the field gets no "
              "alarm field.",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.alarm_text; }},
      {.name = "EDGELINE_DOWNSAMPLE_SET_TAGS", .group = G::kDownsample, .type = T::kString,
       .default_text = "", .doc = "Static tags added to every output point: `region=US,site=a`.",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.set_tags_text; }},
      {.name = "EDGELINE_DOWNSAMPLE_MEASUREMENTS", .group = G::kDownsample, .type = T::kList,
       .default_text = "", .doc = "Measurements to downsample, comma-separated. Empty = all.",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.measurements; }},
      {.name = "EDGELINE_DOWNSAMPLE_STALE_AFTER", .group = G::kDownsample, .type = T::kString,
       .default_text = "auto",
       .doc = "A group (e.g. a `generatorID`) that has sent nothing for this long, on the agent's "
              "clock, gets every alarm output (or `alarm` when there is no rule) set to `stale`: "
              "an alarm change and a downsampled row. Its next point sets the alarm back to its "
              "computed value. `auto` = 3 x `EDGELINE_DOWNSAMPLE_EVERY`; 0 = off; or a duration.",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.stale_after_text; }},
      {.name = "EDGELINE_DOWNSAMPLE_BUCKET", .group = G::kDownsample, .type = T::kString,
       .default_text = "kafka_downsampled", .min = 1,
       .doc = "Where the downsampled stream is written: the v2 bucket, or the v1/v3 database.",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.bucket; }},
      {.name = "EDGELINE_DOWNSAMPLE_RP", .group = G::kDownsample, .type = T::kString,
       .default_text = "", .doc = "v1 retention policy for the downsampled stream (empty = default).",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.retention_policy; }},
      {.name = "EDGELINE_ALARM_TOPIC", .group = G::kDownsample, .type = T::kString,
       .default_text = "",
       .doc = "When set, each alarm change (e.g. `no action` -> `refuel`) is published, QoS 1 "
              "and retained, to `<topic>/<group tag values>/<alarm output>` (or to the topic "
              "itself when it holds `{tag}`/`{alarm}` placeholders), as JSON. Empty = off.",
       .field = [](Config& c) -> FieldPtr { return &c.downsample.alarm_topic; }},

      // Kafka mirror
      {.name = "EDGELINE_KAFKA_BROKERS", .group = G::kKafka, .type = T::kString,
       .default_text = "",
       .doc = "Bootstrap servers (`host:port,...`). Empty = no Kafka mirror.",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.brokers; }},
      {.name = "EDGELINE_KAFKA_TOPIC_MAP", .group = G::kKafka, .type = T::kString,
       .default_text = "",
       .doc = "Raw points to Kafka topics, like the Confluent MQTT proxy's `topic.regex.list`: "
              "`kafka_topic:mqtt_regex,...`; the first regex that matches the whole MQTT topic "
              "wins; unmatched points are not mirrored (counted as skipped). Empty = raw points "
              "are not mirrored.",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.topic_map_text; }},
      {.name = "EDGELINE_KAFKA_TOPIC_PREFIX", .group = G::kKafka, .type = T::kString,
       .default_text = "EG",
       .doc = "The downsampled stream goes to topic prefix + `EDGELINE_DOWNSAMPLE_BUCKET` (the "
              "InfluxDB source connector's `topic.prefix` with `topic.mapper=bucket`).",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.topic_prefix; }},
      {.name = "EDGELINE_KAFKA_FORMAT", .group = G::kKafka, .type = T::kEnum,
       .default_text = "json", .allowed = {"json", "lp"},
       .doc = "Record value: `json` = `{\"measurement\",\"tags\",\"fields\",\"time\"}`, or "
              "`lp` = the line protocol line. The key is the series key.",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.format; }},
      {.name = "EDGELINE_KAFKA_COMPRESSION", .group = G::kKafka, .type = T::kEnum,
       .default_text = "zstd", .allowed = {"none", "gzip", "snappy", "lz4", "zstd"},
       .doc = "Producer compression codec.",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.compression; }},
      {.name = "EDGELINE_KAFKA_SECURITY_PROTOCOL", .group = G::kKafka, .type = T::kEnum,
       .default_text = "plaintext", .allowed = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"},
       .doc = "`sasl_ssl` with SASL mechanism PLAIN for Confluent Cloud.",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.security_protocol; }},
      {.name = "EDGELINE_KAFKA_SASL_MECHANISM", .group = G::kKafka, .type = T::kEnum,
       .default_text = "PLAIN", .allowed = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
       .doc = "SASL mechanism.",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.sasl_mechanism; }},
      {.name = "EDGELINE_KAFKA_SASL_USERNAME", .group = G::kKafka, .type = T::kString,
       .default_text = "", .doc = "SASL user name (Confluent Cloud: the API key).",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.sasl_username; }},
      {.name = "EDGELINE_KAFKA_SASL_PASSWORD", .group = G::kKafka, .type = T::kString,
       .default_text = "", .secret = true,
       .doc = "SASL password (Confluent Cloud: the API secret).",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.sasl_password; }},
      {.name = "EDGELINE_KAFKA_CA_FILE", .group = G::kKafka, .type = T::kString,
       .default_text = "", .doc = "CA bundle (PEM) to verify the brokers (`ssl.ca.location`).",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.ca_file; }},
      {.name = "EDGELINE_KAFKA_STREAMS", .group = G::kKafka, .type = T::kList,
       .default_text = "raw,downsampled", .min = 1,
       .doc = "Streams mirrored to Kafka: `raw` and/or `downsampled`.",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.streams; }},
      {.name = "EDGELINE_KAFKA_BATCH_POINTS", .group = G::kKafka, .type = T::kInt,
       .default_text = "5000", .min = 1, .max = 1'000'000,
       .doc = "Most records in flight (produced, not yet acknowledged) per stream.",
       .field = [](Config& c) -> FieldPtr { return &c.kafka.batch_points; }},

      // Local HTTP endpoint
      {.name = "EDGELINE_HTTP_LISTEN", .group = G::kHttp, .type = T::kString,
       .default_text = "127.0.0.1:8087", .min = 1,
       .doc = "Address of the local endpoint (`/health`, `/metrics`, `/api/v2/write`, `/write`), "
              "`host:port`, or `off`. Loopback by default: set `EDGELINE_HTTP_TOKEN` before "
              "listening on other interfaces.",
       .field = [](Config& c) -> FieldPtr { return &c.http.listen; }},
      {.name = "EDGELINE_HTTP_TOKEN", .group = G::kHttp, .type = T::kString,
       .default_text = "", .secret = true,
       .doc = "When set, writes need it: `Authorization: Token <t>` (v2 and v1), or as the v1 "
              "password (`p=` or Basic auth), as InfluxDB clients send it.",
       .field = [](Config& c) -> FieldPtr { return &c.http.token; }},
      {.name = "EDGELINE_HTTP_MAX_BODY", .group = G::kHttp, .type = T::kSize,
       .default_text = "10MiB", .min = 1024, .max = 1LL << 30,
       .doc = "Largest write body accepted (after gzip decoding); larger gets 413.",
       .field = [](Config& c) -> FieldPtr { return &c.http.max_body_bytes; }},

      // General
      {.name = "EDGELINE_LOG_LEVEL", .group = G::kGeneral, .type = T::kEnum,
       .default_text = "info", .allowed = {"debug", "info", "warn", "error"},
       .doc = "Least severe log level written to stderr.",
       .field = [](Config& c) -> FieldPtr { return &c.log_level; }},
  };
}
// clang-format on

// Quotes a non-secret value for an error message, cut short so a pasted blob stays readable.
std::string Got(std::string_view text) {
  constexpr size_t kMaxShown = 40;
  std::string out = " (got \"";
  out += text.substr(0, kMaxShown);
  if (text.size() > kMaxShown) out += "...";
  out += "\")";
  return out;
}

std::string ShowBound(const Variable& var, int64_t v) {
  if (var.type == VarType::kDuration) return FormatDuration(v);
  if (var.type == VarType::kSize) return FormatSize(v);
  return std::to_string(v);
}

bool CheckBounds(const Variable& var, int64_t v, std::string_view text, std::string* error) {
  if (v >= var.min && v <= var.max) return true;
  constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();
  if (var.max == kNoMax) {
    *error = "must be at least " + ShowBound(var, var.min);
  } else {
    *error = "must be between " + ShowBound(var, var.min) + " and " + ShowBound(var, var.max);
  }
  *error += Got(text);
  return false;
}

// [[maybe_unused]]: clang counts only instantiated uses, and every branch that names it is not.
template <typename>
[[maybe_unused]] inline constexpr bool kAlwaysFalse = false;

}  // namespace

const std::vector<Variable>& Variables() {
  static const std::vector<Variable> kTable = BuildTable();
  return kTable;
}

const Variable* FindVariable(std::string_view name) {
  for (const Variable& v : Variables()) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

std::string_view GroupTitle(Group group) {
  switch (group) {
    case Group::kQueue: return "Queue";
    case Group::kMqtt: return "MQTT";
    case Group::kMapping: return "Mapping";
    case Group::kInflux: return "InfluxDB";
    case Group::kDownsample: return "Downsampling and alarms";
    case Group::kKafka: return "Kafka mirror";
    case Group::kHttp: return "Local HTTP endpoint";
    case Group::kGeneral: return "General";
  }
  return "?";
}

bool ParseValue(const Variable& var, std::string_view text, ParsedValue* out, std::string* error) {
  switch (var.type) {
    case VarType::kString:
      // Free text (and secrets) is taken verbatim: a password may well start with a space.
      if (var.min >= 1 && text.empty()) {
        *error = "must not be empty";
        return false;
      }
      out->text = std::string(text);
      return true;
    case VarType::kList: {
      out->list.clear();
      size_t start = 0;
      while (start <= text.size()) {
        size_t comma = text.find(',', start);
        if (comma == std::string_view::npos) comma = text.size();
        std::string_view item = Trim(text.substr(start, comma - start));
        if (!item.empty()) out->list.emplace_back(item);
        start = comma + 1;
      }
      if (var.min >= 1 && out->list.empty()) {
        *error = "needs at least one comma-separated entry";
        return false;
      }
      return true;
    }
    case VarType::kBool: {
      std::string_view t = Trim(text);
      for (std::string_view yes : {"true", "1", "yes", "on"}) {
        if (EqualsIgnoreCase(t, yes)) {
          out->flag = true;
          return true;
        }
      }
      for (std::string_view no : {"false", "0", "no", "off"}) {
        if (EqualsIgnoreCase(t, no)) {
          out->flag = false;
          return true;
        }
      }
      *error = "expected true/false, 1/0, yes/no or on/off" + Got(text);
      return false;
    }
    case VarType::kInt: {
      std::string_view t = Trim(text);
      int64_t v = 0;
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (t.empty() || ec != std::errc() || end != t.data() + t.size()) {
        *error = "expected an integer" + Got(text);
        return false;
      }
      if (!CheckBounds(var, v, text, error)) return false;
      out->number = v;
      return true;
    }
    case VarType::kDuration:
    case VarType::kSize: {
      bool duration = var.type == VarType::kDuration;
      Result<int64_t> r = duration ? ParseDurationNs(Trim(text)) : ParseSizeBytes(Trim(text));
      if (!r.ok()) {
        *error = r.status().message();
        return false;
      }
      if (!CheckBounds(var, *r, text, error)) return false;
      out->number = *r;
      return true;
    }
    case VarType::kEnum: {
      std::string_view t = Trim(text);
      for (size_t i = 0; i < var.allowed.size(); ++i) {
        if (EqualsIgnoreCase(t, var.allowed[i])) {
          out->number = static_cast<int64_t>(i);
          out->text = std::string(var.allowed[i]);
          return true;
        }
      }
      *error = "expected one of ";
      for (size_t i = 0; i < var.allowed.size(); ++i) {
        if (i > 0) *error += i + 1 == var.allowed.size() ? " or " : ", ";
        *error += var.allowed[i];
      }
      *error += Got(text);
      return false;
    }
  }
  *error = "unsupported type";
  return false;
}

void Assign(const Variable& var, const ParsedValue& value, Config* config) {
  std::visit(
      [&](auto* p) {
        using F = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<F, std::string>) {
          *p = value.text;
        } else if constexpr (std::is_same_v<F, bool>) {
          *p = value.flag;
        } else if constexpr (std::is_integral_v<F>) {
          *p = static_cast<F>(value.number);  // bounds in the table keep ints in range
        } else if constexpr (std::is_enum_v<F>) {
          *p = static_cast<F>(value.number);
        } else if constexpr (std::is_same_v<F, std::vector<std::string>>) {
          *p = value.list;
        } else {
          static_assert(kAlwaysFalse<F>, "unhandled field type");
        }
      },
      var.field(*config));
}

std::string Show(const Variable& var, Config& config) {
  return std::visit(
      [&](auto* p) -> std::string {
        using F = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<F, std::string>) {
          return *p;
        } else if constexpr (std::is_same_v<F, bool>) {
          return *p ? "true" : "false";
        } else if constexpr (std::is_integral_v<F>) {
          if (var.type == VarType::kDuration) return FormatDuration(*p);
          if (var.type == VarType::kSize) return FormatSize(*p);
          return std::to_string(*p);
        } else if constexpr (std::is_enum_v<F>) {
          auto index = static_cast<size_t>(*p);
          if (index < var.allowed.size()) return std::string(var.allowed[index]);
          return std::to_string(index);
        } else if constexpr (std::is_same_v<F, std::vector<std::string>>) {
          std::string out;
          for (const std::string& item : *p) {
            if (!out.empty()) out += ',';
            out += item;
          }
          return out;
        } else {
          static_assert(kAlwaysFalse<F>, "unhandled field type");
        }
      },
      var.field(config));
}

std::string FormatDuration(int64_t ns) {
  if (ns == 0) return "0";
  static constexpr std::pair<int64_t, std::string_view> kUnits[] = {
      {24 * kHour, "d"}, {kHour, "h"}, {kMin, "m"}, {kSec, "s"}, {kMs, "ms"}, {1'000, "us"}, {kNs, "ns"}};
  for (auto [unit, suffix] : kUnits) {
    if (ns % unit == 0) return std::to_string(ns / unit) + std::string(suffix);
  }
  return std::to_string(ns) + "ns";
}

std::string FormatSize(int64_t bytes) {
  if (bytes == 0) return "0";
  static constexpr std::pair<int64_t, std::string_view> kUnits[] = {
      {kKiB * kKiB * kKiB * kKiB, "TiB"}, {kKiB * kKiB * kKiB, "GiB"}, {kMiB, "MiB"}, {kKiB, "KiB"}};
  for (auto [unit, suffix] : kUnits) {
    if (bytes % unit == 0) return std::to_string(bytes / unit) + std::string(suffix);
  }
  return std::to_string(bytes);
}

}  // namespace edgeline::config_internal
