#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "config/config.h"
#include "config/config_table.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

using Env = std::map<std::string, std::string>;
using config_internal::Variable;
using config_internal::Variables;

constexpr char kToken[] = "tok-Zq81-very-secret";
constexpr char kMqttPassword[] = "mqtt-pw-Kx7";
constexpr char kInfluxPassword[] = "influx-pw-Lm3";

// A valid base: the default v2 setup needs an org and a token.
Env ValidEnv() { return {{"EDGELINE_INFLUX_ORG", "acme"}, {"EDGELINE_INFLUX_TOKEN", kToken}}; }

std::set<std::string> ProblemVariables(const ConfigParseResult& r) {
  std::set<std::string> out;
  for (const ConfigProblem& p : r.problems) out.insert(p.variable);
  return out;
}

std::string ProblemFor(const ConfigParseResult& r, const std::string& variable) {
  for (const ConfigProblem& p : r.problems) {
    if (p.variable == variable) return p.message;
  }
  return "";
}

std::string AllProblemText(const ConfigParseResult& r) {
  std::string out;
  for (const ConfigProblem& p : r.problems) out += p.variable + ": " + p.message + "\n";
  return out;
}

// --- The table ---------------------------------------------------------------------------

TEST(ConfigTable, DefaultTextMatchesConfigStructBothWays) {
  Config applied;
  for (const Variable& var : Variables()) {
    config_internal::ParsedValue value;
    std::string error;
    ASSERT_TRUE(config_internal::ParseValue(var, var.default_text, &value, &error)) << var.name << ": " << error;
    config_internal::Assign(var, value, &applied);
    Config defaults;
    EXPECT_EQ(config_internal::Show(var, defaults), var.default_text)
        << var.name << ": default_text is not what Config{} holds (or not in canonical form)";
  }
  EXPECT_EQ(applied, Config{});
}

TEST(ConfigTable, EveryFieldHasExactlyOneRow) {
  Config config;
  std::set<const void*> fields;
  std::set<std::string_view> names;
  for (const Variable& var : Variables()) {
    const void* address = std::visit([](auto* p) -> const void* { return p; }, var.field(config));
    EXPECT_TRUE(fields.insert(address).second) << var.name << " shares a field with another row";
    EXPECT_TRUE(names.insert(var.name).second) << var.name << " appears twice";
    EXPECT_FALSE(var.doc.empty()) << var.name;
    if (var.type == config_internal::VarType::kEnum) {
      EXPECT_FALSE(var.allowed.empty()) << var.name;
    }
  }
  // config.h has 10 queue + 17 MQTT + 8 mapping + 18 InfluxDB fields + log_level. Adding a field
  // there without a row here fails this count.
  EXPECT_EQ(Variables().size(), 91u);
}

// --- ParseConfig ---------------------------------------------------------------------------

TEST(ParseConfig, FieldTypesParseWithInfluxNamesSortedByField) {
  Env env = ValidEnv();
  env["EDGELINE_FIELD_TYPES"] = " temperature = float, note=string,count=Integer,ok=bool,n=unsigned";
  ConfigParseResult r = ParseConfig(env);
  ASSERT_TRUE(r.ok()) << AllProblemText(r);
  EXPECT_EQ(r.config.mapping.field_types,
            (std::vector<std::pair<std::string, FieldType>>{{"count", FieldType::kInteger},
                                                            {"n", FieldType::kUnsigned},
                                                            {"note", FieldType::kString},
                                                            {"ok", FieldType::kBool},
                                                            {"temperature", FieldType::kFloat}}));
}

TEST(ParseConfig, FieldTypesRefuseUnknownTypesDuplicatesAndContradictions) {
  for (const char* bad : {"temperature=floaty", "temperature", "=float", "a=float,a=string"}) {
    Env env = ValidEnv();
    env["EDGELINE_FIELD_TYPES"] = bad;
    ConfigParseResult r = ParseConfig(env);
    EXPECT_EQ(ProblemVariables(r), std::set<std::string>{"EDGELINE_FIELD_TYPES"}) << bad;
  }
  Env env = ValidEnv();
  env["EDGELINE_FIELD_TYPES"] = "fuel=float";
  env["EDGELINE_JSON_INTEGERS"] = "fuel";
  ConfigParseResult r = ParseConfig(env);
  EXPECT_NE(ProblemFor(r, "EDGELINE_FIELD_TYPES").find("EDGELINE_JSON_INTEGERS"), std::string::npos)
      << AllProblemText(r);
}

TEST(ParseConfig, EmptyEnvGivesDefaultsAndAsksForInfluxCredentials) {
  ConfigParseResult r = ParseConfig({});
  Config expected;
  expected.mqtt.status_topic = "edgeline/edgeline/status";
  EXPECT_EQ(r.config, expected);
  EXPECT_EQ(ProblemVariables(r), (std::set<std::string>{"EDGELINE_INFLUX_ORG", "EDGELINE_INFLUX_TOKEN"}));
}

TEST(ParseConfig, DisabledInfluxNeedsNothing) {
  ConfigParseResult r = ParseConfig({{"EDGELINE_INFLUX_ENABLED", "false"}});
  EXPECT_TRUE(r.ok()) << AllProblemText(r);
  EXPECT_FALSE(r.config.influx.enabled);
}

TEST(ParseConfig, EachTypeParses) {
  Env env = ValidEnv();
  env["EDGELINE_QUEUE_PATH"] = "/data/q.db";           // string
  env["EDGELINE_QUEUE_MAX_BYTES"] = "64MiB";           // size
  env["EDGELINE_QUEUE_MAX_AGE"] = "0";                 // duration, zero
  env["EDGELINE_QUEUE_COMMIT_INTERVAL"] = "20ms";      // duration
  env["EDGELINE_QUEUE_FULL_POLICY"] = "BackPressure";  // enum, any case
  env["EDGELINE_QUEUE_SYNC"] = "normal";
  env["EDGELINE_QUEUE_COMMIT_MAX_MESSAGES"] = " 250 ";  // int, trimmed
  env["EDGELINE_MQTT_TOPICS"] = " a/+ , ,b/# ,";        // list
  env["EDGELINE_MQTT_TLS_SKIP_VERIFY"] = "Yes";         // bool
  env["EDGELINE_MQTT_CLIENT_ID"] = "edge-7";
  env["EDGELINE_MQTT_KEEPALIVE"] = "1m30s";
  env["EDGELINE_JSON_TAGS"] = "";  // explicitly no tags
  env["EDGELINE_JSON_INTEGERS"] = "rpm,load";
  env["EDGELINE_JSON_TIME_FORMAT"] = "rfc3339";
  env["EDGELINE_INFLUX_API"] = "v3";
  env["EDGELINE_INFLUX_GZIP"] = "off";
  env["EDGELINE_INFLUX_BATCH_POINTS"] = "1000000";
  env["EDGELINE_LOG_LEVEL"] = "debug";
  ConfigParseResult r = ParseConfig(env);
  ASSERT_TRUE(r.ok()) << AllProblemText(r);
  const Config& c = r.config;
  EXPECT_EQ(c.queue.path, "/data/q.db");
  EXPECT_EQ(c.queue.max_bytes, 64LL << 20);
  EXPECT_EQ(c.queue.max_age_ns, 0);
  EXPECT_EQ(c.queue.commit_interval_ns, 20'000'000);
  EXPECT_EQ(c.queue.full_policy, QueueFullPolicy::kBackpressure);
  EXPECT_EQ(c.queue.sync, SyncMode::kNormal);
  EXPECT_EQ(c.queue.commit_max_messages, 250);
  EXPECT_EQ(c.mqtt.topics, (std::vector<std::string>{"a/+", "b/#"}));
  EXPECT_TRUE(c.mqtt.tls_skip_verify);
  EXPECT_EQ(c.mqtt.keepalive_ns, 90'000'000'000);
  EXPECT_EQ(c.mqtt.status_topic, "edgeline/edge-7/status");
  EXPECT_TRUE(c.mapping.json_tags.empty());
  EXPECT_EQ(c.mapping.json_integers, (std::vector<std::string>{"rpm", "load"}));
  EXPECT_EQ(c.mapping.time_format, "rfc3339");
  EXPECT_EQ(c.influx.api, InfluxApi::kV3);
  EXPECT_FALSE(c.influx.gzip);
  EXPECT_EQ(c.influx.batch_points, 1'000'000);
  EXPECT_EQ(c.influx.token, kToken);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
}

TEST(ParseConfig, BoolSpellings) {
  for (const char* yes : {"true", "TRUE", "1", "yes", "On"}) {
    Env env = ValidEnv();
    env["EDGELINE_INFLUX_TLS_SKIP_VERIFY"] = yes;
    ConfigParseResult r = ParseConfig(env);
    ASSERT_TRUE(r.ok()) << yes << "\n" << AllProblemText(r);
    EXPECT_TRUE(r.config.influx.tls_skip_verify) << yes;
  }
  for (const char* no : {"false", "False", "0", "NO", "off"}) {
    Env env = ValidEnv();
    env["EDGELINE_INFLUX_GZIP"] = no;
    ConfigParseResult r = ParseConfig(env);
    ASSERT_TRUE(r.ok()) << no << "\n" << AllProblemText(r);
    EXPECT_FALSE(r.config.influx.gzip) << no;
  }
  for (const char* bad : {"", "2", "enabled", "y"}) {
    Env env = ValidEnv();
    env["EDGELINE_INFLUX_GZIP"] = bad;
    EXPECT_EQ(ProblemVariables(ParseConfig(env)), std::set<std::string>{"EDGELINE_INFLUX_GZIP"}) << bad;
  }
}

TEST(ParseConfig, StatusTopicKeptWhenSet) {
  Env env = ValidEnv();
  env["EDGELINE_MQTT_STATUS_TOPIC"] = "site/3/agent";
  EXPECT_EQ(ParseConfig(env).config.mqtt.status_topic, "site/3/agent");
}

TEST(ParseConfig, SeveralBadVariablesAreAllReported) {
  Env env = ValidEnv();
  env["EDGELINE_QUEUE_MAX_AGE"] = "10 parsecs";
  env["EDGELINE_QUEUE_MAX_BYTES"] = "lots";
  env["EDGELINE_QUEUE_SYNC"] = "sometimes";
  env["EDGELINE_MQTT_QOS"] = "3";
  env["EDGELINE_MQTT_CONNECTIONS"] = "0";
  env["EDGELINE_INFLUX_BATCH_POINTS"] = "1000001";
  env["EDGELINE_QUEUE_COMMIT_MAX_MESSAGES"] = "100001";
  env["EDGELINE_JSON_TIME_FORMAT"] = "minutes";
  env["EDGELINE_MQTT_TOPICS"] = " , ";
  env["EDGELINE_QUEUE_PATH"] = "";
  env["EDGELINE_INFLUX_TIMEOUT"] = "-5s";
  ConfigParseResult r = ParseConfig(env);
  EXPECT_EQ(ProblemVariables(r),
            (std::set<std::string>{"EDGELINE_QUEUE_MAX_AGE", "EDGELINE_QUEUE_MAX_BYTES", "EDGELINE_QUEUE_SYNC",
                                   "EDGELINE_MQTT_QOS", "EDGELINE_MQTT_CONNECTIONS", "EDGELINE_INFLUX_BATCH_POINTS",
                                   "EDGELINE_QUEUE_COMMIT_MAX_MESSAGES", "EDGELINE_JSON_TIME_FORMAT",
                                   "EDGELINE_MQTT_TOPICS", "EDGELINE_QUEUE_PATH", "EDGELINE_INFLUX_TIMEOUT"}))
      << AllProblemText(r);
  // Messages say what is expected.
  EXPECT_NE(ProblemFor(r, "EDGELINE_MQTT_QOS").find("between 0 and 2"), std::string::npos);
  EXPECT_NE(ProblemFor(r, "EDGELINE_MQTT_CONNECTIONS").find("between 1 and 64"), std::string::npos);
  EXPECT_NE(ProblemFor(r, "EDGELINE_QUEUE_SYNC").find("full or normal"), std::string::npos);
  EXPECT_NE(ProblemFor(r, "EDGELINE_JSON_TIME_FORMAT").find("rfc3339"), std::string::npos);
  EXPECT_NE(ProblemFor(r, "EDGELINE_QUEUE_MAX_AGE").find("unknown unit"), std::string::npos);
  EXPECT_NE(ProblemFor(r, "EDGELINE_INFLUX_TIMEOUT").find("negative"), std::string::npos);
  // Invalid values are not applied.
  EXPECT_EQ(r.config.mqtt.qos, 1);
  EXPECT_EQ(r.config.queue.sync, SyncMode::kFull);
}

TEST(ParseConfig, DurationAndSizeBoundsNameTheLimits) {
  Env env = ValidEnv();
  env["EDGELINE_QUEUE_COMMIT_INTERVAL"] = "11s";
  env["EDGELINE_MAX_STRING_FIELD"] = "64KiB";
  ConfigParseResult r = ParseConfig(env);
  EXPECT_NE(ProblemFor(r, "EDGELINE_QUEUE_COMMIT_INTERVAL").find("between 0 and 10s"), std::string::npos);
  EXPECT_NE(ProblemFor(r, "EDGELINE_MAX_STRING_FIELD").find("between 1 and 65535"), std::string::npos);
}

TEST(ParseConfig, UnknownVariableIsReportedWithSuggestion) {
  Env env = ValidEnv();
  env["EDGELINE_INFLUX_TOKN"] = "another-secret-value";
  env["EDGELINE_COMPLETELY_DIFFERENT_THING"] = "x";
  env["PATH"] = "/usr/bin";  // not ours: ignored
  ConfigParseResult r = ParseConfig(env);
  EXPECT_EQ(ProblemVariables(r),
            (std::set<std::string>{"EDGELINE_INFLUX_TOKN", "EDGELINE_COMPLETELY_DIFFERENT_THING"}));
  EXPECT_EQ(ProblemFor(r, "EDGELINE_INFLUX_TOKN"), "unknown variable (did you mean EDGELINE_INFLUX_TOKEN?)");
  EXPECT_EQ(ProblemFor(r, "EDGELINE_COMPLETELY_DIFFERENT_THING"), "unknown variable");
  EXPECT_EQ(AllProblemText(r).find("another-secret-value"), std::string::npos);
}

TEST(ParseConfig, SecretsNeverAppearInProblems) {
  Env env;
  env["EDGELINE_INFLUX_TOKEN"] = kToken;  // set, but v2 still misconfigured (no org, no bucket)
  env["EDGELINE_INFLUX_BUCKET"] = "";
  env["EDGELINE_INFLUX_PASSWORD"] = kInfluxPassword;
  env["EDGELINE_MQTT_PASSWORD"] = kMqttPassword;
  env["EDGELINE_MQTT_URL"] = std::string("tcp:/user:") + kMqttPassword + "@host";
  env["EDGELINE_INFLUX_URL"] = std::string("ftp://user:") + kInfluxPassword + "@host";
  ConfigParseResult r = ParseConfig(env);
  EXPECT_EQ(ProblemVariables(r), (std::set<std::string>{"EDGELINE_INFLUX_ORG", "EDGELINE_INFLUX_BUCKET",
                                                        "EDGELINE_MQTT_URL", "EDGELINE_INFLUX_URL"}));
  std::string text = AllProblemText(r);
  EXPECT_EQ(text.find(kToken), std::string::npos) << text;
  EXPECT_EQ(text.find(kMqttPassword), std::string::npos) << text;
  EXPECT_EQ(text.find(kInfluxPassword), std::string::npos) << text;
}

TEST(ParseConfig, InfluxApiRequirements) {
  struct Case {
    Env env;
    std::set<std::string> problems;
  };
  std::vector<Case> cases = {
      {{{"EDGELINE_INFLUX_API", "v2"}, {"EDGELINE_INFLUX_BUCKET", ""}},
       {"EDGELINE_INFLUX_ORG", "EDGELINE_INFLUX_BUCKET", "EDGELINE_INFLUX_TOKEN"}},
      {{{"EDGELINE_INFLUX_API", "v2"}, {"EDGELINE_INFLUX_ORG", "o"}, {"EDGELINE_INFLUX_TOKEN", "t"}}, {}},
      {{{"EDGELINE_INFLUX_API", "v1"}}, {}},  // default database "kafka", no credentials needed
      {{{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_INFLUX_DB", ""}}, {"EDGELINE_INFLUX_DB"}},
      // Username without password is fine.
      {{{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_INFLUX_USERNAME", "writer"}}, {}},
      {{{"EDGELINE_INFLUX_API", "v3"}, {"EDGELINE_INFLUX_DB", ""}}, {"EDGELINE_INFLUX_DB", "EDGELINE_INFLUX_TOKEN"}},
      {{{"EDGELINE_INFLUX_API", "v3"}, {"EDGELINE_INFLUX_TOKEN", "t"}}, {}},
      {{{"EDGELINE_INFLUX_API", "v3"}, {"EDGELINE_INFLUX_ENABLED", "no"}}, {}},
      // A bad API value is reported once, without follow-on noise.
      {{{"EDGELINE_INFLUX_API", "v4"}}, {"EDGELINE_INFLUX_API"}},
  };
  for (const Case& c : cases) {
    ConfigParseResult r = ParseConfig(c.env);
    EXPECT_EQ(ProblemVariables(r), c.problems) << AllProblemText(r);
  }
  ConfigParseResult r = ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_INFLUX_DB", ""}});
  EXPECT_NE(ProblemFor(r, "EDGELINE_INFLUX_DB").find("EDGELINE_INFLUX_API=v1"), std::string::npos);
}

TEST(ParseConfig, UrlSchemes) {
  for (const char* good :
       {"tcp://h:1883", "ssl://h:8883", "mqtt://h", "mqtts://h", "ws://h/mqtt", "wss://h/mqtt", "TCP://h"}) {
    Env env = ValidEnv();
    env["EDGELINE_MQTT_URL"] = good;
    EXPECT_TRUE(ParseConfig(env).ok()) << good;
  }
  for (const char* bad : {"h:1883", "http://h", "tcp://", "", "tcp:/h"}) {
    Env env = ValidEnv();
    env["EDGELINE_MQTT_URL"] = bad;
    EXPECT_EQ(ProblemVariables(ParseConfig(env)), std::set<std::string>{"EDGELINE_MQTT_URL"}) << bad;
  }
  for (const char* good : {"http://influx:8086", "https://cloud.example/"}) {
    Env env = ValidEnv();
    env["EDGELINE_INFLUX_URL"] = good;
    EXPECT_TRUE(ParseConfig(env).ok()) << good;
  }
  for (const char* bad : {"influx:8086", "tcp://influx", "https://"}) {
    Env env = ValidEnv();
    env["EDGELINE_INFLUX_URL"] = bad;
    ConfigParseResult r = ParseConfig(env);
    EXPECT_EQ(ProblemVariables(r), std::set<std::string>{"EDGELINE_INFLUX_URL"}) << bad;
  }
}

TEST(ParseConfig, MinimumDelaysMustNotExceedMaximum) {
  Env env = ValidEnv();
  env["EDGELINE_RETRY_MIN"] = "2m";
  env["EDGELINE_RETRY_MAX"] = "1m";
  env["EDGELINE_MQTT_RECONNECT_MIN"] = "10s";
  env["EDGELINE_MQTT_RECONNECT_MAX"] = "5s";
  ConfigParseResult r = ParseConfig(env);
  EXPECT_EQ(ProblemVariables(r), (std::set<std::string>{"EDGELINE_RETRY_MIN", "EDGELINE_MQTT_RECONNECT_MIN"}));
  EXPECT_NE(ProblemFor(r, "EDGELINE_RETRY_MIN").find("EDGELINE_RETRY_MAX"), std::string::npos);

  env["EDGELINE_RETRY_MIN"] = "1m";  // equal is fine
  env["EDGELINE_MQTT_RECONNECT_MIN"] = "5s";
  EXPECT_TRUE(ParseConfig(env).ok());
}

// --- Durations and sizes ---------------------------------------------------------------------

TEST(ParseDurationNs, Good) {
  const std::pair<const char*, int64_t> cases[] = {
      {"0", 0},
      {"100ns", 100},
      {"1500us", 1'500'000},
      {"500ms", 500'000'000},
      {"10s", 10'000'000'000},
      {"1m", 60'000'000'000},
      {"24h", 86'400'000'000'000},
      {"7d", 604'800'000'000'000},
      {"1h30m", 5'400'000'000'000},
      {"1m0s", 60'000'000'000},
      {"0s", 0},
      {" 5s ", 5'000'000'000},
      {"106751d", 106751LL * 86'400'000'000'000},  // just under int64 max
  };
  for (auto [text, ns] : cases) {
    Result<int64_t> r = ParseDurationNs(text);
    ASSERT_TRUE(r.ok()) << text << ": " << r.status().ToString();
    EXPECT_EQ(*r, ns) << text;
  }
}

TEST(ParseDurationNs, Bad) {
  for (const char* text : {"", " ", "-1s", "10", "5x", "s", "1.5s", "1 s", "10S", "ms10", "106752d",
                           "99999999999999999999s", "1h-5m", "+5s"}) {
    Result<int64_t> r = ParseDurationNs(text);
    EXPECT_FALSE(r.ok()) << "accepted \"" << text << "\"";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

TEST(ParseSizeBytes, Good) {
  const std::pair<const char*, int64_t> cases[] = {
      {"0", 0},
      {"512", 512},
      {"512B", 512},
      {"64KiB", 64 * 1024},
      {"64MiB", 64LL << 20},
      {"1GiB", 1LL << 30},
      {"2TiB", 2LL << 40},
      {"10KB", 10'000},
      {"10MB", 10'000'000},
      {"1GB", 1'000'000'000},
      {"3TB", 3'000'000'000'000},
      {"64 mib", 64LL << 20},
      {"9223372036854775807", INT64_MAX},
  };
  for (auto [text, bytes] : cases) {
    Result<int64_t> r = ParseSizeBytes(text);
    ASSERT_TRUE(r.ok()) << text << ": " << r.status().ToString();
    EXPECT_EQ(*r, bytes) << text;
  }
}

TEST(ParseSizeBytes, Bad) {
  for (const char* text : {"", "-1", "-1KiB", "KiB", "1.5GiB", "10XB", "10K", "12 34", "9223372036854775808",
                           "8388608TiB", "1GiBx", "0x10"}) {
    Result<int64_t> r = ParseSizeBytes(text);
    EXPECT_FALSE(r.ok()) << "accepted \"" << text << "\"";
  }
}

// --- Environment and env files ---------------------------------------------------------------

TEST(EnvironmentVariables, OnlyEdgelinePrefixed) {
  ASSERT_EQ(setenv("EDGELINE_CONFIG_TEST_VAR", "a=b", 1), 0);
  ASSERT_EQ(setenv("NOT_EDGELINE_CONFIG_TEST", "x", 1), 0);
  std::map<std::string, std::string> env = EnvironmentVariables();
  unsetenv("EDGELINE_CONFIG_TEST_VAR");
  unsetenv("NOT_EDGELINE_CONFIG_TEST");
  EXPECT_EQ(env["EDGELINE_CONFIG_TEST_VAR"], "a=b");
  for (const auto& [name, value] : env) EXPECT_EQ(name.rfind("EDGELINE_", 0), 0u) << name;
  EXPECT_EQ(env.count("NOT_EDGELINE_CONFIG_TEST"), 0u);
}

class EnvFileTest : public testing::Test {
 protected:
  std::string Write(const std::string& content) {
    std::string path = dir_.File("edgeline.env");
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  TempDir dir_;
};

TEST_F(EnvFileTest, ParsesSystemdSyntax) {
  std::string path = Write(
      "# comment\n"
      "; another comment\n"
      "\n"
      "   \n"
      "EDGELINE_PLAIN=value\n"
      "  EDGELINE_SPACED  =   spaced value   \n"
      "export EDGELINE_EXPORTED=yes\n"
      "EDGELINE_SINGLE='it''s \\n raw'\n"
      "EDGELINE_DOUBLE=\"say \\\"hi\\\" \\\\ \\n done\"\n"
      "EDGELINE_QUOTED_SPACES=\"  padded  \"\n"
      "EDGELINE_CONT=first \\\n"
      "second\n"
      "EDGELINE_MULTI=\"line1\n"
      "line2\"\n"
      "EDGELINE_EMPTY=\n"
      "EDGELINE_HASH=a#b\n"
      "EDGELINE_EQ=k=v\n"
      "EDGELINE_CRLF=dos\r\n"
      "EDGELINE_PLAIN=overridden\n"
      "EDGELINE_LAST=no newline at end");
  Result<std::map<std::string, std::string>> r = ReadEnvFile(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::map<std::string, std::string> expected = {
      {"EDGELINE_PLAIN", "overridden"},
      {"EDGELINE_SPACED", "spaced value"},
      {"EDGELINE_EXPORTED", "yes"},
      {"EDGELINE_SINGLE", "its \\n raw"},
      {"EDGELINE_DOUBLE", "say \"hi\" \\ \n done"},
      {"EDGELINE_QUOTED_SPACES", "  padded  "},
      {"EDGELINE_CONT", "first second"},
      {"EDGELINE_MULTI", "line1\nline2"},
      {"EDGELINE_EMPTY", ""},
      {"EDGELINE_HASH", "a#b"},
      {"EDGELINE_EQ", "k=v"},
      {"EDGELINE_CRLF", "dos"},
      {"EDGELINE_LAST", "no newline at end"},
  };
  EXPECT_EQ(*r, expected);
}

TEST_F(EnvFileTest, MalformedLineNamesFileAndLineButNotContent) {
  std::string path = Write("EDGELINE_OK=1\n# fine\nthis-is-my-password-line\nEDGELINE_X=2\n");
  Result<std::map<std::string, std::string>> r = ReadEnvFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(path + ":3:"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find("password"), std::string::npos);
}

TEST_F(EnvFileTest, MalformedVariants) {
  const std::pair<const char*, int> cases[] = {
      {"EDGELINE_A=1\n\nEDGELINE_B=\"unterminated\nEDGELINE_C=3\n", 3},
      {"EDGELINE_A='open\n", 1},
      {"=value\n", 1},
      {"BAD KEY=value\n", 1},
      {"1ABC=value\n", 1},
      {"EDGELINE_A=x \\\ncontinued\nno_equals_here\n", 3},
  };
  for (auto [content, line] : cases) {
    std::string path = Write(content);
    Result<std::map<std::string, std::string>> r = ReadEnvFile(path);
    ASSERT_FALSE(r.ok()) << content;
    EXPECT_NE(r.status().message().find(path + ":" + std::to_string(line) + ":"), std::string::npos)
        << r.status().message();
  }
}

TEST_F(EnvFileTest, MissingFileIsNotFoundNamingPath) {
  std::string path = dir_.File("absent.env");
  Result<std::map<std::string, std::string>> r = ReadEnvFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(path), std::string::npos);
}

TEST_F(EnvFileTest, ValuesFeedParseConfig) {
  std::string path = Write(
      "EDGELINE_INFLUX_ORG=acme\n"
      "EDGELINE_INFLUX_TOKEN=\"" +
      std::string(kToken) +
      "\"\n"
      "EDGELINE_MQTT_TOPICS=a/+, b/+\n");
  Result<std::map<std::string, std::string>> r = ReadEnvFile(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ConfigParseResult parsed = ParseConfig(*r);
  ASSERT_TRUE(parsed.ok()) << AllProblemText(parsed);
  EXPECT_EQ(parsed.config.influx.token, kToken);
  EXPECT_EQ(parsed.config.mqtt.topics, (std::vector<std::string>{"a/+", "b/+"}));
}

// --- Rendering -------------------------------------------------------------------------------

Env SecretEnv() {
  Env env = ValidEnv();
  env["EDGELINE_MQTT_PASSWORD"] = kMqttPassword;
  env["EDGELINE_QUEUE_MAX_BYTES"] = "2GiB";
  return env;
}

TEST(RenderEffectiveConfig, TextShowsEveryVariableMaskedAndAligned) {
  std::string text = RenderEffectiveConfig(SecretEnv(), /*json=*/false);
  EXPECT_EQ(text.find(kToken), std::string::npos);
  EXPECT_EQ(text.find(kMqttPassword), std::string::npos);
  std::istringstream lines(text);
  std::string header;
  ASSERT_TRUE(std::getline(lines, header));
  const size_t value_column = header.find("VALUE");
  const size_t source_column = header.find("SOURCE");
  ASSERT_NE(source_column, std::string::npos) << header;
  std::map<std::string, std::string> by_name;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LE(line.size(), 100u) << line;
    by_name[line.substr(0, line.find(' '))] = line;
    EXPECT_EQ(line.substr(value_column - 2, 2), "  ") << line;
    std::string source = line.size() > source_column ? line.substr(source_column) : "";
    EXPECT_TRUE(source == "default" || source == "env") << line;
  }
  for (const Variable& var : Variables()) {
    EXPECT_EQ(by_name.count(std::string(var.name)), 1u) << var.name;
  }
  auto fields = [&](const std::string& name) {
    std::istringstream in(by_name[name]);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  };
  EXPECT_EQ(fields("EDGELINE_INFLUX_TOKEN"), (std::vector<std::string>{"EDGELINE_INFLUX_TOKEN", "********", "env"}));
  EXPECT_EQ(fields("EDGELINE_MQTT_PASSWORD"), (std::vector<std::string>{"EDGELINE_MQTT_PASSWORD", "********", "env"}));
  EXPECT_EQ(fields("EDGELINE_INFLUX_PASSWORD"), (std::vector<std::string>{"EDGELINE_INFLUX_PASSWORD", "default"}));
  EXPECT_EQ(fields("EDGELINE_QUEUE_MAX_BYTES"), (std::vector<std::string>{"EDGELINE_QUEUE_MAX_BYTES", "2GiB", "env"}));
  EXPECT_EQ(fields("EDGELINE_QUEUE_MAX_AGE"), (std::vector<std::string>{"EDGELINE_QUEUE_MAX_AGE", "7d", "default"}));
  EXPECT_EQ(fields("EDGELINE_MQTT_STATUS_TOPIC"),
            (std::vector<std::string>{"EDGELINE_MQTT_STATUS_TOPIC", "edgeline/edgeline/status", "default"}));
}

TEST(RenderEffectiveConfig, JsonShowsEveryVariableMasked) {
  Env env = SecretEnv();
  env["EDGELINE_MQTT_QOS"] = "7";  // invalid: shown as given, not as the default
  std::string text = RenderEffectiveConfig(env, /*json=*/true);
  EXPECT_EQ(text.find(kToken), std::string::npos);
  EXPECT_EQ(text.find(kMqttPassword), std::string::npos);
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(doc.is_array()) << text;
  ASSERT_EQ(doc.size(), Variables().size());
  std::map<std::string, nlohmann::json> by_name;
  for (const nlohmann::json& row : doc) by_name[row.at("name").get<std::string>()] = row;
  EXPECT_EQ(
      by_name["EDGELINE_INFLUX_TOKEN"],
      (nlohmann::json{{"name", "EDGELINE_INFLUX_TOKEN"}, {"value", "********"}, {"source", "env"}, {"secret", true}}));
  EXPECT_EQ(by_name["EDGELINE_INFLUX_PASSWORD"]["value"], "");
  EXPECT_EQ(by_name["EDGELINE_INFLUX_PASSWORD"]["secret"], true);
  EXPECT_EQ(by_name["EDGELINE_MQTT_TOPICS"]["value"], "emergency_generator/+");
  EXPECT_EQ(by_name["EDGELINE_MQTT_TOPICS"]["source"], "default");
  EXPECT_EQ(by_name["EDGELINE_MQTT_TOPICS"]["secret"], false);
  EXPECT_EQ(by_name["EDGELINE_MQTT_QOS"]["value"], "7");
  EXPECT_EQ(by_name["EDGELINE_MQTT_QOS"]["source"], "env");
  EXPECT_EQ(by_name["EDGELINE_RETRY_MAX"]["value"], "5m");
}

TEST(RenderConfigurationMarkdown, ListsEveryVariableByGroup) {
  std::string md = RenderConfigurationMarkdown();
  for (const Variable& var : Variables()) {
    EXPECT_NE(md.find("| `" + std::string(var.name) + "` |"), std::string::npos) << var.name;
  }
  size_t queue = md.find("\n## Queue\n");
  size_t mqtt = md.find("\n## MQTT\n");
  size_t mapping = md.find("\n## Mapping\n");
  size_t influx = md.find("\n## InfluxDB\n");
  size_t general = md.find("\n## General\n");
  ASSERT_NE(general, std::string::npos);
  EXPECT_TRUE(queue < mqtt && mqtt < mapping && mapping < influx && influx < general);
  EXPECT_LT(md.find("`EDGELINE_LOG_LEVEL`"), md.size());
  EXPECT_GT(md.find("`EDGELINE_LOG_LEVEL`"), general);
  EXPECT_NE(md.find("| Variable | Type | Default | Allowed | Description |"), std::string::npos);
  EXPECT_NE(md.find("`edgeline/<client_id>/status`"), std::string::npos);
}

TEST(RenderConfigurationMarkdown, CheckedInDocIsUpToDate) {
  std::string path = std::string(EDGELINE_FIXTURES_DIR) + "/../../docs/CONFIGURATION.md";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.good()) << "missing " << path;
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_TRUE(content.str() == RenderConfigurationMarkdown())
      << "docs/CONFIGURATION.md is stale; regenerate it: edgeline config --markdown > "
         "docs/CONFIGURATION.md";
}

// --- MaskSecrets -----------------------------------------------------------------------------

TEST(MaskSecrets, ReplacesEveryConfiguredSecret) {
  Config config;
  config.influx.token = kToken;
  config.influx.password = kInfluxPassword;
  config.mqtt.password = kMqttPassword;
  std::string text =
      std::string("401: token ") + kToken + " rejected; tried " + kMqttPassword + " and " + kInfluxPassword + kToken;
  EXPECT_EQ(MaskSecrets(text, config), "401: token ******** rejected; tried ******** and ****************");
}

TEST(MaskSecrets, LongerSecretMaskedWhole) {
  Config config;
  config.mqtt.password = "abc";
  config.influx.token = "abcdef";
  EXPECT_EQ(MaskSecrets("x abcdef y abc", config), "x ******** y ********");
}

TEST(MaskSecrets, NoSecretsLeavesTextAlone) {
  Config config;  // all secrets empty: an empty needle must not mask everything
  EXPECT_EQ(MaskSecrets("nothing to hide", config), "nothing to hide");
  config.influx.token = "zzz";
  EXPECT_EQ(MaskSecrets("", config), "");
}

}  // namespace
}  // namespace edgeline

// --- Kafka -----------------------------------------------------------------------------------

namespace edgeline {
namespace {

TEST(KafkaConfigParse, SeedTopicsPropertiesAndSecrets) {
  ConfigParseResult r = ParseConfig({{"EDGELINE_INFLUX_API", "v1"},
                                     {"EDGELINE_KAFKA_BROKERS", "127.0.0.1:9092"},
                                     {"EDGELINE_KAFKA_TOPIC_MAP", "generators:emergency_generator/.*, gen1:x/y"},
                                     {"EDGELINE_KAFKA_PROP_LINGER_MS", "20"},
                                     {"EDGELINE_KAFKA_PROP_SSL_KEY_PASSWORD", "hunter2-secret"},
                                     {"EDGELINE_KAFKA_SASL_PASSWORD", "sasl-secret-1"}});
  ASSERT_TRUE(r.ok()) << r.problems[0].variable << ": " << r.problems[0].message;
  const KafkaConfig& k = r.config.kafka;
  EXPECT_TRUE(k.enabled());
  EXPECT_EQ(k.topic_map, (std::vector<KafkaTopicRoute>{{"generators", "emergency_generator/.*"}, {"gen1", "x/y"}}));
  EXPECT_EQ(k.topic_prefix, "EG");
  EXPECT_EQ(k.format, KafkaFormat::kJson);
  EXPECT_EQ(k.properties, (std::vector<std::pair<std::string, std::string>>{{"linger.ms", "20"},
                                                                            {"ssl.key.password", "hunter2-secret"}}));
  EXPECT_EQ(MaskSecrets("a hunter2-secret b sasl-secret-1", r.config), "a ******** b ********");
  std::string shown = RenderEffectiveConfig({{"EDGELINE_KAFKA_SASL_PASSWORD", "sasl-secret-1"}}, false);
  EXPECT_EQ(shown.find("sasl-secret-1"), std::string::npos);
  EXPECT_FALSE(ParseConfig({{"EDGELINE_INFLUX_API", "v1"}}).config.kafka.enabled());
}

TEST(KafkaConfigParse, BadRoutesAndStreamsAreAllReported) {
  ConfigParseResult r = ParseConfig({{"EDGELINE_INFLUX_API", "v1"},
                                     {"EDGELINE_KAFKA_TOPIC_MAP", "noregex,t:([unclosed"},
                                     {"EDGELINE_KAFKA_STREAMS", "raw,cooked"},
                                     {"EDGELINE_INFLUX_STREAMS", "everything"},
                                     {"EDGELINE_KAFKA_FORMAT", "avro"}});
  std::multiset<std::string> vars;
  for (const auto& p : r.problems) vars.insert(p.variable);
  EXPECT_EQ(vars.count("EDGELINE_KAFKA_TOPIC_MAP"), 2u);
  EXPECT_EQ(vars.count("EDGELINE_KAFKA_STREAMS"), 1u);
  EXPECT_EQ(vars.count("EDGELINE_INFLUX_STREAMS"), 1u);
  EXPECT_EQ(vars.count("EDGELINE_KAFKA_FORMAT"), 1u);
}

}  // namespace
}  // namespace edgeline

namespace edgeline {
namespace {

TEST(HttpListen, HostPortOrOff) {
  for (const char* bad : {"127.0.0.1", ":8087", "127.0.0.1:99999", "127.0.0.1:http", "127.0.0.1:", "h:-1"}) {
    ConfigParseResult r = ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_HTTP_LISTEN", bad}});
    ASSERT_EQ(r.problems.size(), 1u) << bad;
    EXPECT_EQ(r.problems[0].variable, "EDGELINE_HTTP_LISTEN") << bad;
  }
  for (const char* good : {"127.0.0.1:0", "0.0.0.0:8087", "[::1]:8087", "off"}) {
    EXPECT_TRUE(ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_HTTP_LISTEN", good}}).ok()) << good;
  }
  auto v6 = ParseListenAddress("[::1]:8087");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->first, "::1");
  EXPECT_EQ(v6->second, 8087);
}

}  // namespace
}  // namespace edgeline

namespace edgeline {
namespace {

TEST(FleetHealthConfig, StaleAfterAutoIsThreeWindowsOnlyWhenDownsampling) {
  ConfigParseResult off = ParseConfig({{"EDGELINE_INFLUX_API", "v1"}});
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off.config.downsample.stale_after_ns, 0);
  ConfigParseResult seed =
      ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_DOWNSAMPLE_PRESET", "seed"}, {"EDGELINE_DOWNSAMPLE_EVERY", "5s"}});
  ASSERT_TRUE(seed.ok());
  EXPECT_EQ(seed.config.downsample.stale_after_ns, 15'000'000'000);
  ConfigParseResult explicit_off = ParseConfig(
      {{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_DOWNSAMPLE_PRESET", "seed"}, {"EDGELINE_DOWNSAMPLE_STALE_AFTER", "0"}});
  ASSERT_TRUE(explicit_off.ok());
  EXPECT_EQ(explicit_off.config.downsample.stale_after_ns, 0);
  ConfigParseResult given = ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_DOWNSAMPLE_STALE_AFTER", "2m"}});
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(given.config.downsample.stale_after_ns, 120'000'000'000);
  for (const char* bad : {"soon", "500ms", "-1s"}) {
    ConfigParseResult r = ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_DOWNSAMPLE_STALE_AFTER", bad}});
    ASSERT_EQ(r.problems.size(), 1u) << bad;
    EXPECT_EQ(r.problems[0].variable, "EDGELINE_DOWNSAMPLE_STALE_AFTER") << bad;
  }
}

TEST(FleetHealthConfig, TimeFloorTakesADateOrATimeOrNothing) {
  ConfigParseResult def = ParseConfig({{"EDGELINE_INFLUX_API", "v1"}});
  EXPECT_EQ(def.config.mapping.time_floor_ns, 1'577'836'800'000'000'000);  // 2020-01-01T00:00:00Z
  ConfigParseResult time =
      ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_JSON_TIME_FLOOR", "2021-06-01T12:00:00+02:00"}});
  ASSERT_TRUE(time.ok());
  EXPECT_EQ(time.config.mapping.time_floor_ns, 1'622'541'600'000'000'000);
  ConfigParseResult none = ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_JSON_TIME_FLOOR", ""}});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none.config.mapping.time_floor_ns, INT64_MIN);
  ConfigParseResult bad = ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_JSON_TIME_FLOOR", "last year"}});
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_EQ(bad.problems[0].variable, "EDGELINE_JSON_TIME_FLOOR");
}

TEST(FleetHealthConfig, DeviceStatusTopicsNeedADeviceLevel) {
  for (const char* good : {"emergency_generator/+/status", "site/{site}/{generatorID}/lwt"}) {
    EXPECT_TRUE(ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_DEVICE_STATUS_TOPICS", good}}).ok()) << good;
  }
  for (const char* bad : {"emergency_generator/status", "emergency_generator/#", "$share/g/devices/+/status",
                          "a/b{c}/status"}) {
    ConfigParseResult r = ParseConfig({{"EDGELINE_INFLUX_API", "v1"}, {"EDGELINE_DEVICE_STATUS_TOPICS", bad}});
    ASSERT_EQ(r.problems.size(), 1u) << bad;
    EXPECT_EQ(r.problems[0].variable, "EDGELINE_DEVICE_STATUS_TOPICS") << bad;
  }
}

}  // namespace
}  // namespace edgeline
