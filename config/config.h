// Config: edgeline's effective settings, parsed from EDGELINE_* environment variables (and an
// optional env file). One table in config_table.cc (name, type, default, bounds, secret?, doc)
// drives the parser, `edgeline config` and docs/CONFIGURATION.md. Parsing collects every problem
// before failing. Config is a plain value: build once at start, then share read-only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/field_types.h"
#include "common/log.h"
#include "common/status.h"
#include "config/env_file.h"

namespace edgeline {

enum class QueueFullPolicy { kDropOldest, kBackpressure };
enum class SyncMode { kFull, kNormal };
enum class InfluxApi { kV1, kV2, kV3 };

struct QueueConfig {
  std::string path = "/var/lib/edgeline/queue.db";             // EDGELINE_QUEUE_PATH
  int64_t max_bytes = 1LL << 30;                               // EDGELINE_QUEUE_MAX_BYTES (size)
  int64_t max_age_ns = 7LL * 24 * 3600 * 1'000'000'000;        // EDGELINE_QUEUE_MAX_AGE (0 = unlimited)
  QueueFullPolicy full_policy = QueueFullPolicy::kDropOldest;  // EDGELINE_QUEUE_FULL_POLICY
  SyncMode sync = SyncMode::kFull;                             // EDGELINE_QUEUE_SYNC full|normal
  int64_t commit_interval_ns = 0;                              // EDGELINE_QUEUE_COMMIT_INTERVAL (extra linger)
  int commit_max_messages = 1000;                              // EDGELINE_QUEUE_COMMIT_MAX_MESSAGES
  int zstd_level = 3;                                          // EDGELINE_QUEUE_ZSTD_LEVEL
  int compact_points = 1000;                                   // EDGELINE_QUEUE_COMPACT_POINTS (0 = off)
  int64_t compact_bytes = 256 << 10;                           // EDGELINE_QUEUE_COMPACT_BYTES

  friend bool operator==(const QueueConfig&, const QueueConfig&) = default;
};

struct MqttConfig {
  std::string url = "tcp://127.0.0.1:1883";                     // EDGELINE_MQTT_URL (tcp://, ssl://)
  std::string client_id = "edgeline";                           // EDGELINE_MQTT_CLIENT_ID
  std::string username;                                         // EDGELINE_MQTT_USERNAME
  std::string password;                                         // EDGELINE_MQTT_PASSWORD (secret)
  std::vector<std::string> topics = {"emergency_generator/+"};  // EDGELINE_MQTT_TOPICS (comma list)
  int qos = 1;                                                  // EDGELINE_MQTT_QOS 0|1|2
  int64_t keepalive_ns = 30'000'000'000;                        // EDGELINE_MQTT_KEEPALIVE
  std::string status_topic;                   // EDGELINE_MQTT_STATUS_TOPIC (default edgeline/<client_id>/status)
  int connections = 1;                        // EDGELINE_MQTT_CONNECTIONS 1..64
  std::string share_group = "edgeline";       // EDGELINE_MQTT_SHARE_GROUP
  std::string ca_file;                        // EDGELINE_MQTT_CA_FILE
  std::string cert_file;                      // EDGELINE_MQTT_CERT_FILE
  std::string key_file;                       // EDGELINE_MQTT_KEY_FILE
  bool tls_skip_verify = false;               // EDGELINE_MQTT_TLS_SKIP_VERIFY
  int64_t max_payload_bytes = 1 << 20;        // EDGELINE_MQTT_MAX_PAYLOAD (size)
  int64_t reconnect_min_ns = 1'000'000'000;   // EDGELINE_MQTT_RECONNECT_MIN
  int64_t reconnect_max_ns = 60'000'000'000;  // EDGELINE_MQTT_RECONNECT_MAX

  friend bool operator==(const MqttConfig&, const MqttConfig&) = default;
};

struct MappingConfig {
  std::string measurement = "genData";                   // EDGELINE_MEASUREMENT
  std::vector<std::string> json_tags = {"generatorID"};  // EDGELINE_JSON_TAGS (comma list)
  std::vector<std::string> json_integers;                // EDGELINE_JSON_INTEGERS (comma list)
  std::string topic_tags;          // EDGELINE_TOPIC_TAGS template, e.g. emergency_generator/{generatorID}
  std::string time_key;            // EDGELINE_JSON_TIME_KEY (empty = receive time)
  std::string time_format = "ns";  // EDGELINE_JSON_TIME_FORMAT s|ms|us|ns|rfc3339
  // Device clock checks on the time key's value (receive time as the reference).
  int64_t time_max_ahead_ns = 300'000'000'000;  // EDGELINE_JSON_TIME_MAX_AHEAD (0 = no check)
  std::string time_floor_text = "2020-01-01";   // EDGELINE_JSON_TIME_FLOOR (empty = no floor)
  int64_t time_floor_ns = 1'577'836'800'000'000'000;  // parsed EDGELINE_JSON_TIME_FLOOR (INT64_MIN = none)
  std::string time_policy = "receive-time";           // EDGELINE_JSON_TIME_POLICY receive-time|dlq
  // EDGELINE_DEVICE_STATUS_TOPICS: devices' status/Last Will topics, `+` or `{tag}` levels.
  std::vector<std::string> device_status_topics;
  std::string device_status_measurement = "deviceStatus";  // EDGELINE_DEVICE_STATUS_MEASUREMENT
  int64_t max_string_field_bytes = 64 * 1024 - 1;  // EDGELINE_MAX_STRING_FIELD (size)
  std::string field_types_text;                    // EDGELINE_FIELD_TYPES field=type,...
  std::vector<std::pair<std::string, FieldType>> field_types;  // parsed, sorted by field

  friend bool operator==(const MappingConfig&, const MappingConfig&) = default;
};

struct InfluxConfig {
  bool enabled = true;                         // EDGELINE_INFLUX_ENABLED
  std::string url = "http://127.0.0.1:8086";   // EDGELINE_INFLUX_URL
  InfluxApi api = InfluxApi::kV2;              // EDGELINE_INFLUX_API v1|v2|v3
  std::string token;                           // EDGELINE_INFLUX_TOKEN (secret; v2/v3)
  std::string org;                             // EDGELINE_INFLUX_ORG (v2)
  std::string bucket = "kafka";                // EDGELINE_INFLUX_BUCKET (v2)
  std::string database = "kafka";              // EDGELINE_INFLUX_DB (v1/v3)
  std::string retention_policy;                // EDGELINE_INFLUX_RP (v1)
  bool create_database = false;                // EDGELINE_INFLUX_CREATE_DB (v1)
  int64_t max_bytes_per_sec = 0;               // EDGELINE_INFLUX_MAX_BYTES_PER_SEC (0 = no cap)
  std::string replay_order = "oldest-first";   // EDGELINE_REPLAY_ORDER oldest-first|newest-first
  std::string username;                        // EDGELINE_INFLUX_USERNAME (v1)
  std::string password;                        // EDGELINE_INFLUX_PASSWORD (secret; v1)
  int batch_points = 5000;                     // EDGELINE_INFLUX_BATCH_POINTS
  bool gzip = true;                            // EDGELINE_INFLUX_GZIP
  int64_t timeout_ns = 30'000'000'000;         // EDGELINE_INFLUX_TIMEOUT (whole request)
  int64_t connect_timeout_ns = 5'000'000'000;  // EDGELINE_INFLUX_CONNECT_TIMEOUT
  bool tls_skip_verify = false;                // EDGELINE_INFLUX_TLS_SKIP_VERIFY
  std::string ca_file;                         // EDGELINE_INFLUX_CA_FILE
  int64_t retry_min_ns = 1'000'000'000;        // EDGELINE_RETRY_MIN
  int64_t retry_max_ns = 300'000'000'000;      // EDGELINE_RETRY_MAX
  // Streams replicated to InfluxDB: "raw" and/or "downsampled" (when downsampling is on). Only
  // "downsampled" suits a metered link.
  std::vector<std::string> streams = {"raw", "downsampled"};  // EDGELINE_INFLUX_STREAMS

  friend bool operator==(const InfluxConfig&, const InfluxConfig&) = default;
};

enum class Aggregate { kLast, kFirst, kMin, kMax, kMean, kSum, kCount };
enum class CompareOp { kLt, kLe, kGt, kGe, kEq, kNe };

// One alarm rule: `output = when_true if <field> <op> <threshold> else when_false`.
// Written as `output:field<op>threshold?when_true:when_false`, e.g. `alarm:fuel<500?refuel:no action`.
struct AlarmRule {
  std::string output;
  std::string field;
  CompareOp op = CompareOp::kLt;
  double threshold = 0;
  std::string when_true;
  std::string when_false;

  friend bool operator==(const AlarmRule&, const AlarmRule&) = default;
};

struct DownsampleConfig {
  // Set when any EDGELINE_DOWNSAMPLE_* variable is given; off otherwise.
  bool enabled = false;
  std::string preset = "none";                          // EDGELINE_DOWNSAMPLE_PRESET none|seed
  int64_t every_ns = 60'000'000'000;                    // EDGELINE_DOWNSAMPLE_EVERY
  int64_t lateness_ns = 10'000'000'000;                 // EDGELINE_DOWNSAMPLE_LATENESS
  int64_t idle_timeout_ns = 30'000'000'000;             // EDGELINE_DOWNSAMPLE_IDLE_TIMEOUT (0 = never)
  std::vector<std::string> group_by = {"generatorID"};  // EDGELINE_DOWNSAMPLE_GROUP_BY (tag keys)
  std::string aggregate_text = "last";                  // EDGELINE_DOWNSAMPLE_AGGREGATE
  std::string alarm_text;                               // EDGELINE_DOWNSAMPLE_ALARM (';'-separated rules)
  std::string set_tags_text;                            // EDGELINE_DOWNSAMPLE_SET_TAGS (k=v,...)
  std::vector<std::string> measurements;                // EDGELINE_DOWNSAMPLE_MEASUREMENTS (empty = all)
  std::string bucket = "kafka_downsampled";             // EDGELINE_DOWNSAMPLE_BUCKET (v2 bucket, v1/v3 db)
  std::string retention_policy;                         // EDGELINE_DOWNSAMPLE_RP (v1)
  std::string alarm_topic;                              // EDGELINE_ALARM_TOPIC (empty = no MQTT alarms)
  std::string stale_after_text = "auto";                // EDGELINE_DOWNSAMPLE_STALE_AFTER auto|0|duration

  // Parsed forms of the *_text fields (filled by ParseConfig).
  Aggregate default_aggregate = Aggregate::kLast;
  std::vector<std::pair<std::string, Aggregate>> field_aggregates;  // per-field overrides
  std::vector<AlarmRule> alarms;
  std::vector<std::pair<std::string, std::string>> set_tags;
  int64_t stale_after_ns = 0;  // parsed EDGELINE_DOWNSAMPLE_STALE_AFTER (0 = off; auto = 3 windows)
  // EDGELINE_DEVICE_STATUS_MEASUREMENT when EDGELINE_DEVICE_STATUS_TOPICS is set, else "": its
  // points are device status events (an `offline` makes the device stale), never downsampled.
  std::string device_status_measurement;

  friend bool operator==(const DownsampleConfig&, const DownsampleConfig&) = default;
};

enum class KafkaFormat { kJson, kLineProtocol };

// The route of raw points to Kafka topics, Confluent MQTT proxy style: `kafka_topic:mqtt_regex`.
struct KafkaTopicRoute {
  std::string kafka_topic;
  std::string mqtt_regex;  // matched against the whole MQTT topic (std::regex, ECMAScript)

  friend bool operator==(const KafkaTopicRoute&, const KafkaTopicRoute&) = default;
};

struct KafkaConfig {
  std::string brokers;                                        // EDGELINE_KAFKA_BROKERS (empty = no Kafka)
  std::string topic_map_text;                                 // EDGELINE_KAFKA_TOPIC_MAP topic:regex,...
  std::string topic_prefix = "EG";                            // EDGELINE_KAFKA_TOPIC_PREFIX (+ bucket)
  KafkaFormat format = KafkaFormat::kJson;                    // EDGELINE_KAFKA_FORMAT json|lp
  std::string compression = "zstd";                           // EDGELINE_KAFKA_COMPRESSION
  std::string security_protocol = "plaintext";                // EDGELINE_KAFKA_SECURITY_PROTOCOL
  std::string sasl_mechanism = "PLAIN";                       // EDGELINE_KAFKA_SASL_MECHANISM
  std::string sasl_username;                                  // EDGELINE_KAFKA_SASL_USERNAME
  std::string sasl_password;                                  // EDGELINE_KAFKA_SASL_PASSWORD (secret)
  std::string ca_file;                                        // EDGELINE_KAFKA_CA_FILE
  std::vector<std::string> streams = {"raw", "downsampled"};  // EDGELINE_KAFKA_STREAMS
  int batch_points = 5000;                                    // EDGELINE_KAFKA_BATCH_POINTS (in flight)
  int64_t retry_min_ns = 1'000'000'000;                       // shares EDGELINE_RETRY_MIN/MAX semantics
  int64_t retry_max_ns = 60'000'000'000;

  // Parsed forms.
  std::vector<KafkaTopicRoute> topic_map;
  // EDGELINE_KAFKA_PROP_<name> pass-through: lower-cased, '_' -> '.' (linger_ms -> linger.ms).
  // Values are treated as secrets in output (they may hold credentials).
  std::vector<std::pair<std::string, std::string>> properties;

  bool enabled() const { return !brokers.empty(); }
  friend bool operator==(const KafkaConfig&, const KafkaConfig&) = default;
};

struct HttpConfig {
  std::string listen = "127.0.0.1:8087";  // EDGELINE_HTTP_LISTEN host:port, or "off"
  std::string token;                      // EDGELINE_HTTP_TOKEN (secret; empty = no auth)
  int64_t max_body_bytes = 10LL << 20;    // EDGELINE_HTTP_MAX_BODY (size)

  bool enabled() const { return listen != "off"; }
  friend bool operator==(const HttpConfig&, const HttpConfig&) = default;
};

struct Config {
  QueueConfig queue;
  MqttConfig mqtt;
  MappingConfig mapping;
  InfluxConfig influx;
  DownsampleConfig downsample;
  KafkaConfig kafka;
  HttpConfig http;
  LogLevel log_level = LogLevel::kInfo;  // EDGELINE_LOG_LEVEL debug|info|warn|error

  friend bool operator==(const Config&, const Config&) = default;
};

// One problem found while parsing: the variable and what is wrong with it. The message never
// contains the value of a secret variable.
struct ConfigProblem {
  std::string variable;
  std::string message;
};

struct ConfigParseResult {
  Config config;
  std::vector<ConfigProblem> problems;  // empty when the config is valid
  bool ok() const { return problems.empty(); }
};

// Parses `env` (variable -> value). Unknown EDGELINE_* names are problems (typos must not pass
// silently). Cross-field rules (e.g. v2 needs org and token) are checked too.
ConfigParseResult ParseConfig(const std::map<std::string, std::string>& env);

// EnvironmentVariables() and ReadEnvFile() are in config/env_file.h.

// `edgeline config` output: every variable with its effective value (secrets masked as
// "********" when set), and whether it came from the default or the environment.
std::string RenderEffectiveConfig(const std::map<std::string, std::string>& env, bool json);

// docs/CONFIGURATION.md, generated from the same table.
std::string RenderConfigurationMarkdown();

// A systemd EnvironmentFile with every variable commented out at its default, each with its
// description (`edgeline config --env-example`, installed as /etc/edgeline/edgeline.env).
std::string RenderEnvExample();

// Durations "500ms", "10s", "1m", "24h", "7d"; "0" alone means zero.
Result<int64_t> ParseDurationNs(std::string_view text);
// "127.0.0.1:8087" or "[::1]:8087" -> host, port (0..65535). InvalidArgument when malformed.
Result<std::pair<std::string, int>> ParseListenAddress(std::string_view listen);
// Sizes "512", "64KiB", "64MiB", "1GiB", "10MB" (SI) -> bytes.
Result<int64_t> ParseSizeBytes(std::string_view text);

// Replaces every occurrence of a configured secret (token, passwords) in `text` with "********".
// A last line of defence before logging messages from servers and libraries.
std::string MaskSecrets(std::string_view text, const Config& config);

}  // namespace edgeline
