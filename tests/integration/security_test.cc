// Security proof with REAL servers and certificates made at run time by the openssl CLI:
// MQTT over TLS with a password (mosquitto), InfluxDB over HTTPS (influxd 1.6), libcurl's
// certificate and host checks, secrets never appearing in any output or in the queue file,
// owner-only file modes, and the local HTTP endpoint's loopback default and token.
// Each test starts its own servers on free loopback ports; the PKI is shared by the suite.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/strings.h"
#include "gtest/gtest.h"
#include "replication/http_transport.h"
#include "tests/support/harness.h"
#include "tests/support/tls_support.h"

namespace edgeline {
namespace {

using namespace std::chrono_literals;
using testing::AgentEnv;
using testing::AgentHttpPort;
using testing::Influxd;
using testing::InfluxdOptions;
using testing::Mosquitto;
using testing::MosquittoOptions;
using testing::Process;
using testing::RunCommand;
using testing::WaitFor;

using Messages = std::vector<std::pair<std::string, std::string>>;
using Env = std::map<std::string, std::string>;

constexpr int64_t kBaseTs = 1764000000000000000;
constexpr char kMqttUser[] = "edge-device";
constexpr char kMqttPassword[] = "mqtt-pw-S3CRET-7f3a91";
// Started as root, mosquitto switches to user "mosquitto" before reading the password file and
// certificates, which then cannot read our 0700 temp dirs; this keeps the starting user (no
// effect when not root).
constexpr char kKeepUser[] = "user root\n";

// Messages with distinct event times (JSON key "ts"), so influxd keeps every one as a point.
Messages GeneratorMessages(int first, int n) {
  Messages out;
  for (int i = first; i < first + n; ++i) {
    const std::string id = "generator" + std::to_string(i % 3 + 1);
    out.emplace_back("emergency_generator/" + id, "{\"generatorID\": \"" + id + "\", \"seq\": " + std::to_string(i) +
                                                      ", \"fuel\": 900, \"ts\": " + std::to_string(kBaseTs + i) + "}");
  }
  return out;
}

bool ContainsAny(const std::string& text, const std::vector<std::string>& needles) {
  const std::string lower = Lower(text);
  return std::any_of(needles.begin(), needles.end(),
                     [&](const std::string& n) { return lower.find(n) != std::string::npos; });
}

nlohmann::json StatusJson(const Env& env) {
  auto r = RunCommand({EDGELINE_BINARY, "status", "--json"}, env);
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;  // no queue file yet
}

// The influx sink's row of `status --json` (null when absent).
nlohmann::json InfluxSink(const nlohmann::json& status) {
  if (status.is_discarded() || !status.contains("sinks")) return nullptr;
  for (const auto& s : status["sinks"]) {
    if (s["name"] == "influx") return s;
  }
  return nullptr;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int Mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

using testing::Curl;
using testing::CurlResult;

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_dir_ = new std::string(testing::MakeTempDir("edgeline-pki"));
    pki_ = new testing::TestPki(testing::MakeTestPki(*pki_dir_));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*pki_dir_);
    delete pki_;
    delete pki_dir_;
  }
  void SetUp() override { dir_ = testing::MakeTempDir("edgeline-security"); }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // mosquitto with a TLS listener (the suite's server certificate unless given) and a password.
  std::unique_ptr<Mosquitto> TlsBroker(const std::string& cert = "", const std::string& key = "",
                                       bool require_client_cert = false) {
    MosquittoOptions o;
    o.listener_config = "cafile " + pki_->ca_cert + "\ncertfile " + (cert.empty() ? pki_->server_cert : cert) +
                        "\nkeyfile " + (key.empty() ? pki_->server_key : key) + "\n" +
                        (require_client_cert ? "require_certificate true\n" : "");
    o.global_config = "password_file " + testing::MakeMosquittoPasswordFile(dir_, kMqttUser, kMqttPassword) +
                      "\nallow_anonymous false\n" + kKeepUser;
    o.scheme = "ssl";
    return std::make_unique<Mosquitto>(o);
  }

  Env TlsAgentEnv(const Mosquitto& broker, const Influxd& influx, const std::string& db) {
    Env env = AgentEnv(broker, influx, dir_ + "/queue.db", db);
    env["EDGELINE_MQTT_CA_FILE"] = pki_->ca_cert;
    env["EDGELINE_MQTT_USERNAME"] = kMqttUser;
    env["EDGELINE_MQTT_PASSWORD"] = kMqttPassword;
    env["EDGELINE_JSON_TIME_KEY"] = "ts";
    return env;
  }

  std::unique_ptr<Process> StartAgent(const Env& env, const std::string& log = "agent.log") {
    return std::make_unique<Process>(std::vector<std::string>{EDGELINE_BINARY, "run"}, env, dir_ + "/" + log);
  }

  // Waits until the agent reports an MQTT connect error, then checks it is a clean refusal: the
  // agent keeps running, disconnected, with nothing committed. Returns the reported error.
  std::string ExpectRefusedConnect(Process& agent, const Env& env) {
    nlohmann::json status;
    EXPECT_TRUE(WaitFor(
        [&] {
          status = StatusJson(env);
          return !status.is_discarded() && status["agent"]["running"] == true &&
                 !status["agent"]["mqtt_last_error"].get<std::string>().empty();
        },
        30s))
        << agent.Log();
    // Several attempts, not just the first: the retry loop must not crash or give up.
    EXPECT_TRUE(WaitFor(
        [&] {
          const std::string log = agent.Log();
          size_t n = 0;
          for (size_t p = log.find("failed"); p != std::string::npos; p = log.find("failed", p + 1)) ++n;
          return n >= 2;
        },
        30s))
        << agent.Log();
    EXPECT_TRUE(agent.running()) << agent.Log();
    status = StatusJson(env);
    EXPECT_EQ(status["agent"]["mqtt_connected"], false);
    EXPECT_EQ(status["agent"]["mqtt_sessions_connected"], 0);
    EXPECT_EQ(status["agent"]["committed_points"], 0);
    EXPECT_EQ(status["agent"]["messages"], 0);
    // The human report shows the error too, and exits 3 (degraded).
    auto human = RunCommand({EDGELINE_BINARY, "status"}, env);
    EXPECT_EQ(human.exit_code, 3) << human.output;
    EXPECT_NE(human.output.find("last error:"), std::string::npos) << human.output;
    return status["agent"]["mqtt_last_error"].get<std::string>();
  }

  static std::string* pki_dir_;
  static testing::TestPki* pki_;
  std::string dir_;
};

std::string* SecurityTest::pki_dir_ = nullptr;
testing::TestPki* SecurityTest::pki_ = nullptr;

// 1. MQTT over TLS with user/password, both URL schemes Paho accepts for TLS: every message
// published over TLS reaches influxd exactly once.
TEST_F(SecurityTest, MqttOverTlsWithPasswordDeliversEveryMessage) {
  auto broker = TlsBroker();
  Influxd influx;
  influx.Query("CREATE DATABASE tls");
  Env env = TlsAgentEnv(*broker, influx, "tls");
  const std::string port = std::to_string(broker->port());
  constexpr int kPerRun = 100;
  int published = 0;
  for (const std::string scheme : {"ssl", "mqtts"}) {
    SCOPED_TRACE(scheme);
    env["EDGELINE_MQTT_URL"] = scheme + "://127.0.0.1:" + port;
    auto agent = StartAgent(env, "agent-" + scheme + ".log");
    ASSERT_TRUE(WaitFor([&] { return StatusJson(env)["agent"]["mqtt_connected"] == true; }, 30s)) << agent->Log();
    testing::SecurePublisher publisher(env["EDGELINE_MQTT_URL"], "security-publisher",
                                       {pki_->ca_cert, kMqttUser, kMqttPassword});
    publisher.PublishAll(GeneratorMessages(published, kPerRun));
    published += kPerRun;
    EXPECT_TRUE(WaitFor([&] { return influx.QueryCount("SELECT count(seq) FROM genData", "tls") == published; }, 60s))
        << influx.Query("SELECT count(seq) FROM genData", "tls").dump() << agent->Log();
    EXPECT_EQ(agent->Terminate(), 0) << agent->Log();
    EXPECT_EQ(agent->Log().find(kMqttPassword), std::string::npos);
  }
  EXPECT_EQ(influx.QueryCount("SELECT count(seq) FROM genData", "tls"), 2 * kPerRun);
  const nlohmann::json sink = InfluxSink(StatusJson(env));
  EXPECT_EQ(sink["sent_points"], 2 * kPerRun) << sink.dump();
  EXPECT_EQ(sink["pending_points"], 0);
  EXPECT_EQ(sink["dead_lettered"], 0);
}

// A wrong password is a clear, persistent connect error: the agent keeps retrying, never
// crashes, and stores nothing; messages published meanwhile by an authorised client are not
// taken by it.
TEST_F(SecurityTest, MqttWrongPasswordIsAClearErrorAndNothingIsTaken) {
  auto broker = TlsBroker();
  Influxd influx;
  influx.Query("CREATE DATABASE badpw");
  Env env = TlsAgentEnv(*broker, influx, "badpw");
  env["EDGELINE_MQTT_URL"] = broker->url();
  env["EDGELINE_MQTT_PASSWORD"] = "not-the-password";
  auto agent = StartAgent(env);
  testing::SecurePublisher publisher(broker->url(), "security-publisher", {pki_->ca_cert, kMqttUser, kMqttPassword});
  publisher.PublishAll(GeneratorMessages(0, 20));
  const std::string error = ExpectRefusedConnect(*agent, env);
  // Paho alone says "MQTT error [5]: CONNACK return code": the agent must say what it means.
  EXPECT_TRUE(ContainsAny(error, {"not authorized", "bad user name or password"})) << error;
  EXPECT_NE(error.find("EDGELINE_MQTT_PASSWORD"), std::string::npos) << error;
  std::cout << "wrong password error: " << error << "\n";
  EXPECT_EQ(error.find("not-the-password"), std::string::npos) << error;
  EXPECT_EQ(agent->Log().find("not-the-password"), std::string::npos);
  EXPECT_EQ(InfluxSink(StatusJson(env))["pending_points"], 0);
  EXPECT_LE(influx.QueryCount("SELECT count(seq) FROM genData", "badpw"), 0);
}

// A broker whose certificate does not chain to EDGELINE_MQTT_CA_FILE, or chains but names
// another host, is refused with an error that says it is a TLS failure.
TEST_F(SecurityTest, MqttUntrustedOrWrongHostCertificateIsRefused) {
  Influxd influx;
  influx.Query("CREATE DATABASE badca");
  {
    SCOPED_TRACE("certificate from an unrelated CA");
    auto broker = TlsBroker();
    Env env = TlsAgentEnv(*broker, influx, "badca");
    env["EDGELINE_MQTT_CA_FILE"] = pki_->other_ca_cert;
    auto agent = StartAgent(env, "agent-ca.log");
    const std::string error = ExpectRefusedConnect(*agent, env);
    // Paho alone says "TCP/TLS connect failure"; OpenSSL's reason must reach the operator.
    EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;
    std::cout << "wrong CA error: " << error << "\n";
  }
  {
    SCOPED_TRACE("certificate for another host name");
    std::filesystem::remove(dir_ + "/queue.db");
    auto broker = TlsBroker(pki_->wrong_host_cert, pki_->wrong_host_key);
    Env env = TlsAgentEnv(*broker, influx, "badca");
    env["EDGELINE_QUEUE_PATH"] = dir_ + "/queue-host.db";
    auto agent = StartAgent(env, "agent-host.log");
    const std::string error = ExpectRefusedConnect(*agent, env);
    // Paho C 1.3.12 checks the host name after the handshake and reports no reason for it: the
    // agent must at least point at the certificate.
    EXPECT_NE(error.find("TLS"), std::string::npos) << error;
    EXPECT_NE(error.find("certificate name"), std::string::npos) << error;
    std::cout << "wrong host error: " << error << "\n";
  }
}

// Mutual TLS: a broker that requires a client certificate accepts the agent with
// EDGELINE_MQTT_CERT_FILE/KEY_FILE (messages arrive) and refuses it without them.
TEST_F(SecurityTest, MqttMutualTlsNeedsTheClientCertificate) {
  auto broker = TlsBroker("", "", /*require_client_cert=*/true);
  Influxd influx;
  influx.Query("CREATE DATABASE mtls");
  Env env = TlsAgentEnv(*broker, influx, "mtls");
  env["EDGELINE_MQTT_URL"] = broker->url();
  {
    auto agent = StartAgent(env, "agent-no-cert.log");
    const std::string error = ExpectRefusedConnect(*agent, env);
    // The broker just closes the connection; Paho says "socket error" or "TCP connect completion
    // failure". The agent must point at the client certificate settings.
    EXPECT_NE(error.find("EDGELINE_MQTT_CERT_FILE"), std::string::npos) << error;
    std::cout << "no client certificate error: " << error << "\n";
    EXPECT_EQ(agent->Terminate(), 0);
  }
  env["EDGELINE_MQTT_CERT_FILE"] = pki_->client_cert;
  env["EDGELINE_MQTT_KEY_FILE"] = pki_->client_key;
  auto agent = StartAgent(env, "agent-cert.log");
  ASSERT_TRUE(WaitFor([&] { return StatusJson(env)["agent"]["mqtt_connected"] == true; }, 30s)) << agent->Log();
  testing::SecurePublisher publisher(broker->url(), "security-publisher",
                                     {pki_->ca_cert, kMqttUser, kMqttPassword, pki_->client_cert, pki_->client_key});
  constexpr int kMessages = 50;
  publisher.PublishAll(GeneratorMessages(0, kMessages));
  EXPECT_TRUE(WaitFor([&] { return influx.QueryCount("SELECT count(seq) FROM genData", "mtls") == kMessages; }, 60s))
      << agent->Log();
  EXPECT_EQ(agent->Terminate(), 0);
  EXPECT_EQ(influx.QueryCount("SELECT count(seq) FROM genData", "mtls"), kMessages);
}

// 2. InfluxDB over HTTPS. With the wrong CA every point stays queued (nothing sent, nothing
// dead-lettered) and status names the certificate problem; restarted on the same queue with
// the right CA, the agent delivers every point exactly once.
TEST_F(SecurityTest, InfluxHttpsWrongCaKeepsPointsQueuedUntilTheRightCa) {
  InfluxdOptions o;
  o.https_certificate = pki_->server_cert;
  o.https_private_key = pki_->server_key;
  o.ca_file = pki_->ca_cert;
  Influxd influx(o);
  ASSERT_EQ(influx.url().rfind("https://", 0), 0u);
  influx.Query("CREATE DATABASE https");
  Mosquitto broker;
  Env env = AgentEnv(broker, influx, dir_ + "/queue.db", "https");
  env["EDGELINE_JSON_TIME_KEY"] = "ts";
  env["EDGELINE_INFLUX_CA_FILE"] = pki_->other_ca_cert;
  constexpr int kPoints = 150;
  {
    auto agent = StartAgent(env, "agent-wrong-ca.log");
    ASSERT_TRUE(WaitFor([&] { return StatusJson(env)["agent"]["mqtt_connected"] == true; }, 30s)) << agent->Log();
    testing::Publisher publisher(broker.url(), "security-publisher");
    publisher.PublishAll(GeneratorMessages(0, kPoints));
    nlohmann::json sink;
    ASSERT_TRUE(WaitFor(
        [&] {
          sink = InfluxSink(StatusJson(env));
          return !sink.is_null() && sink["pending_points"] == kPoints &&
                 sink["consecutive_failures"].get<int64_t>() >= 2;
        },
        60s))
        << sink.dump() << agent->Log();
    const std::string error = sink["last_error"].get<std::string>();
    EXPECT_TRUE(ContainsAny(error, {"certificate"})) << error;
    std::cout << "influx sink with the wrong CA: " << sink["state"] << ": " << error << "\n";
    EXPECT_EQ(sink["sent_points"], 0);
    EXPECT_EQ(sink["dead_lettered"], 0);
    EXPECT_EQ(StatusJson(env)["queue"]["dead_letters"], 0);
    auto human = RunCommand({EDGELINE_BINARY, "status"}, env);
    EXPECT_EQ(human.exit_code, 3) << human.output;
    EXPECT_NE(human.output.find(error), std::string::npos) << human.output;
    EXPECT_TRUE(agent->running());
    EXPECT_EQ(agent->Terminate(), 0) << agent->Log();
  }
  EXPECT_LE(influx.QueryCount("SELECT count(seq) FROM genData", "https"), 0);

  env["EDGELINE_INFLUX_CA_FILE"] = pki_->ca_cert;
  auto agent = StartAgent(env, "agent-right-ca.log");
  EXPECT_TRUE(WaitFor([&] { return influx.QueryCount("SELECT count(seq) FROM genData", "https") == kPoints; }, 60s))
      << agent->Log();
  nlohmann::json sink;
  EXPECT_TRUE(WaitFor(
      [&] {
        sink = InfluxSink(StatusJson(env));
        return sink["pending_points"] == 0 && sink["sent_points"] == kPoints;
      },
      30s))
      << sink.dump();
  EXPECT_EQ(sink["dead_lettered"], 0);
  EXPECT_EQ(sink["consecutive_failures"], 0);
  EXPECT_EQ(influx.QueryCount("SELECT count(seq) FROM genData", "https"), kPoints);
  EXPECT_EQ(agent->Terminate(), 0);
}

// libcurl as the sinks use it (replication/curl_transport.cc), against `openssl s_server`:
// verification is on by default, the CA file is honoured, the host name is checked, and
// skip-verify is the only way around it.
TEST_F(SecurityTest, CurlTransportVerifiesChainAndHostName) {
  struct Server {
    int port;
    std::unique_ptr<Process> process;
  };
  auto serve = [&](const std::string& cert, const std::string& key, const std::string& name) {
    testing::ServerSpec spec;
    spec.name = name;
    spec.start = [&](const std::vector<int>& ports) {
      return std::make_unique<Process>(
          std::vector<std::string>{"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(ports[0]), "-cert",
                                   cert, "-key", key, "-www", "-quiet"},
          Env{}, dir_ + "/" + name + ".log");
    };
    testing::StartedServer started = testing::StartServer(spec);
    return Server{started.ports[0], std::move(started.process)};
  };
  Server good = serve(pki_->server_cert, pki_->server_key, "s_server-good");
  Server wrong_host = serve(pki_->wrong_host_cert, pki_->wrong_host_key, "s_server-host");
  auto get = [&](int port, const std::string& ca, bool skip, const std::string& host = "127.0.0.1") {
    HttpTransportOptions o;
    o.ca_file = ca;
    o.tls_skip_verify = skip;
    o.timeout_ns = 5'000'000'000;
    HttpRequest r;
    r.method = "GET";
    r.url = "https://" + host + ":" + std::to_string(port) + "/";
    return NewCurlTransport(o)->Send(r);
  };
  for (const Server* s : {&good, &wrong_host}) {
    ASSERT_TRUE(WaitFor([&] { return get(s->port, "", true).ok(); }, 10s)) << s->process->Log();
  }

  auto ok = get(good.port, pki_->ca_cert, false);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  auto by_name = get(good.port, pki_->ca_cert, false, "localhost");
  ASSERT_TRUE(by_name.ok()) << by_name.status().ToString();
  EXPECT_EQ(by_name->status, 200);

  auto other_ca = get(good.port, pki_->other_ca_cert, false);
  ASSERT_FALSE(other_ca.ok());
  EXPECT_TRUE(ContainsAny(other_ca.status().message(), {"certificate"})) << other_ca.status().ToString();
  auto system_store = get(good.port, "", false);  // our CA is in no system store
  ASSERT_FALSE(system_store.ok());
  EXPECT_TRUE(ContainsAny(system_store.status().message(), {"certificate"})) << system_store.status().ToString();
  auto host = get(wrong_host.port, pki_->ca_cert, false);
  ASSERT_FALSE(host.ok());
  EXPECT_TRUE(ContainsAny(host.status().message(), {"127.0.0.1", "subject", "name"})) << host.status().ToString();
  std::cout << "curl errors:\n  " << other_ca.status().ToString() << "\n  " << system_store.status().ToString()
            << "\n  " << host.status().ToString() << "\n";

  auto skipped = get(wrong_host.port, pki_->other_ca_cert, true);
  ASSERT_TRUE(skipped.ok()) << skipped.status().ToString();
  EXPECT_EQ(skipped->status, 200);
}

// 3. Distinctive values for every secret; errors provoked on every path that handles one
// (MQTT refusal, 401 from an auth-enabled influxd, 401 on the local endpoint, an unreachable
// SASL Kafka broker, a bad env file line, an invalid configuration), then a DLQ entry with the
// server's message. No secret may appear anywhere the agent writes or prints.
TEST_F(SecurityTest, SecretsAppearInNoOutputAndNotInTheQueueFile) {
  const std::map<std::string, std::string> kSecrets = {
      {"EDGELINE_MQTT_PASSWORD", "mqtt-wrong-S3CRET-e1d2c3"},
      {"EDGELINE_INFLUX_TOKEN", "influx-token-S3CRET-2b8c44"},
      {"EDGELINE_INFLUX_PASSWORD", "influx-pw-S3CRET-9d1e07"},
      {"EDGELINE_HTTP_TOKEN", "http-token-S3CRET-5a6b3c"},
      {"EDGELINE_KAFKA_SASL_PASSWORD", "kafka-sasl-S3CRET-c4d2e8"},
      {"EDGELINE_KAFKA_PROP_SSL_KEY_PASSWORD", "kafka-prop-S3CRET-81f0aa"},
  };
  const std::string kGoodInfluxPassword = "influx-good-S3CRET-3e5f19";
  const std::string http_token = kSecrets.at("EDGELINE_HTTP_TOKEN");

  MosquittoOptions mo;
  mo.global_config = "password_file " + testing::MakeMosquittoPasswordFile(dir_, kMqttUser, kMqttPassword) +
                     "\nallow_anonymous false\n" + kKeepUser;
  Mosquitto broker(mo);
  InfluxdOptions io;
  io.http_config = "  auth-enabled = true\n";
  Influxd influx(io);
  // The first user of an auth-enabled influxd may be created without credentials.
  influx.Query("CREATE USER admin WITH PASSWORD 'admin-pw' WITH ALL PRIVILEGES");
  influx.SetQueryCredentials("admin", "admin-pw");
  influx.Query("CREATE DATABASE secrets");

  Env env = AgentEnv(broker, influx, dir_ + "/queue.db", "secrets");
  for (const auto& [k, v] : kSecrets) env[k] = v;
  env["EDGELINE_MQTT_USERNAME"] = kMqttUser;
  env["EDGELINE_INFLUX_USERNAME"] = "writer";
  env["EDGELINE_KAFKA_BROKERS"] = "127.0.0.1:" + std::to_string(testing::FreePort());  // nobody there
  env["EDGELINE_KAFKA_SECURITY_PROTOCOL"] = "sasl_plaintext";
  env["EDGELINE_KAFKA_SASL_USERNAME"] = "kafka-user";
  env["EDGELINE_LOG_LEVEL"] = "debug";

  std::vector<std::pair<std::string, std::string>> outputs;  // where -> text
  auto collect_live = [&](const std::string& phase, Process& agent) {
    const int port = AgentHttpPort(agent);
    ASSERT_GT(port, 0) << agent.Log();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    outputs.emplace_back(phase + " /metrics", Curl({base + "/metrics"}).body);
    outputs.emplace_back(phase + " /health", Curl({base + "/health"}).body);
    outputs.emplace_back(phase + " status", RunCommand({EDGELINE_BINARY, "status"}, env).output);
    outputs.emplace_back(phase + " status --json", RunCommand({EDGELINE_BINARY, "status", "--json"}, env).output);
    outputs.emplace_back(phase + " sqlite3 .dump",
                         RunCommand({"sqlite3", "-readonly", dir_ + "/queue.db", ".dump"}, {}).output);
  };
  auto write = [&](Process& agent, const std::vector<std::string>& auth, const std::string& body,
                   const std::string& path = "/api/v2/write?org=o&bucket=b") {
    std::vector<std::string> args = {"-X", "POST", "http://127.0.0.1:" + std::to_string(AgentHttpPort(agent)) + path};
    args.insert(args.end(), auth.begin(), auth.end());
    args.insert(args.end(), {"--data-binary", body});
    return Curl(args);
  };

  // Phase 1: wrong MQTT password, wrong influx password (401), Kafka unreachable.
  {
    auto agent = StartAgent(env, "agent-1.log");
    ASSERT_TRUE(WaitFor([&] { return AgentHttpPort(*agent) > 0; }, 20s)) << agent->Log();
    EXPECT_EQ(write(*agent, {}, "m v=1 1764000000000000001").code, 401);
    EXPECT_EQ(write(*agent, {"-H", "Authorization: Token wrong-" + http_token}, "m v=1 1764000000000000001").code, 401);
    EXPECT_EQ(write(*agent, {"-H", "Authorization: Token " + http_token}, "m v=1 1764000000000000001").code, 204);
    EXPECT_EQ(write(*agent, {}, "m v=2 1764000000000000002", "/write?db=d&u=x&p=" + http_token).code, 204);
    nlohmann::json status;
    ASSERT_TRUE(WaitFor(
        [&] {
          status = StatusJson(env);
          const nlohmann::json sink = InfluxSink(status);
          // One 401 is enough: auth failures are retried slowly (EDGELINE_RETRY_MAX does not apply).
          return !sink.is_null() && sink["last_code"] == 401 && sink["state"] == "auth-failed" &&
                 !status["agent"]["mqtt_last_error"].get<std::string>().empty();
        },
        60s))
        << status.dump(2) << agent->Log();
    EXPECT_EQ(InfluxSink(status)["pending_points"], 2);
    collect_live("phase 1 (errors)", *agent);
    EXPECT_EQ(agent->Terminate(), 0);
    outputs.emplace_back("phase 1 agent log", agent->Log());
  }

  // Phase 2: the right influx password; a type conflict puts one line in the DLQ with the
  // server's message.
  influx.Query("CREATE USER writer WITH PASSWORD '" + kGoodInfluxPassword + "'");
  influx.Query("GRANT ALL ON secrets TO writer");
  env["EDGELINE_INFLUX_PASSWORD"] = kGoodInfluxPassword;
  {
    auto agent = StartAgent(env, "agent-2.log");
    ASSERT_TRUE(WaitFor([&] { return AgentHttpPort(*agent) > 0; }, 20s)) << agent->Log();
    nlohmann::json sink;
    ASSERT_TRUE(WaitFor(
        [&] {
          sink = InfluxSink(StatusJson(env));
          return !sink.is_null() && sink["pending_points"] == 0 && sink["sent_points"] == 2;
        },
        60s))
        << sink.dump() << agent->Log();
    EXPECT_EQ(write(*agent, {"-H", "Authorization: Token " + http_token}, "m v=\"text\" 1764000000000000003").code,
              204);
    ASSERT_TRUE(WaitFor(
        [&] {
          sink = InfluxSink(StatusJson(env));
          return sink["dead_lettered"] == 1 && sink["pending_points"] == 0;
        },
        60s))
        << sink.dump() << agent->Log();
    collect_live("phase 2 (dead letter)", *agent);
    outputs.emplace_back("dlq list", RunCommand({EDGELINE_BINARY, "dlq", "list"}, env).output);
    const std::string dlq_json = RunCommand({EDGELINE_BINARY, "dlq", "list", "--json"}, env).output;
    EXPECT_NE(Lower(dlq_json).find("conflict"), std::string::npos) << dlq_json;  // the server's message is kept
    outputs.emplace_back("dlq list --json", dlq_json);
    // The queue file while the agent runs: the WAL holds the newest pages.
    for (const std::string suffix : {"", "-wal", "-shm"}) {
      outputs.emplace_back("queue.db" + suffix + " (live)", ReadFile(dir_ + "/queue.db" + suffix));
    }
    EXPECT_EQ(agent->Terminate(), 0);
    outputs.emplace_back("phase 2 agent log", agent->Log());
  }
  outputs.emplace_back("queue.db (stopped)", ReadFile(dir_ + "/queue.db"));
  outputs.emplace_back("sqlite3 .dump", RunCommand({"sqlite3", dir_ + "/queue.db", ".dump"}, {}).output);
  EXPECT_NE(outputs.back().second.find("sink_status"), std::string::npos) << outputs.back().second;

  // Every `edgeline config` output, and the problem reports of invalid configurations.
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{}, {"--json"}, {"--env-example"}, {"--markdown"}}) {
    std::vector<std::string> argv = {EDGELINE_BINARY, "config"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto r = RunCommand(argv, env);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    outputs.emplace_back("config " + (flags.empty() ? std::string() : flags[0]), r.output);
  }
  {
    Env invalid = env;
    invalid["EDGELINE_INFLUX_URL"] = "ftp://" + kSecrets.at("EDGELINE_INFLUX_TOKEN").substr(0, 3);
    invalid["EDGELINE_QUEUE_MAX_BYTES"] = "lots";
    auto r = RunCommand({EDGELINE_BINARY, "config"}, invalid);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    outputs.emplace_back("config (invalid)", r.output);
    r = RunCommand({EDGELINE_BINARY, "run"}, invalid);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    outputs.emplace_back("run (invalid)", r.output);
  }
  {
    // A malformed env file line holding a secret: the error names file:line, not the text.
    const std::string env_file = dir_ + "/bad.env";
    std::ofstream(env_file) << "EDGELINE_MQTT_URL=tcp://127.0.0.1:1\n"
                            << "EDGELINE_MQTT_PASSWORD " << kSecrets.at("EDGELINE_MQTT_PASSWORD") << "\n"
                            << "\"EDGELINE_HTTP_TOKEN=" << http_token << "\n";
    auto r = RunCommand({EDGELINE_BINARY, "--env-file", env_file, "config"}, {});
    EXPECT_NE(r.exit_code, 0) << r.output;
    outputs.emplace_back("env file error", r.output);
  }

  // Secrets as sent on the wire too: Basic credentials are base64 of user:password.
  std::map<std::string, std::string> needles(kSecrets.begin(), kSecrets.end());
  needles["EDGELINE_INFLUX_PASSWORD (good)"] = kGoodInfluxPassword;
  needles["MQTT broker password"] = kMqttPassword;
  for (const std::string& pw : {kSecrets.at("EDGELINE_INFLUX_PASSWORD"), kGoodInfluxPassword}) {
    auto b64 = RunCommand({"bash", "-c", "printf %s \"$0\" | base64 -w0", "writer:" + pw}, {});
    ASSERT_EQ(b64.exit_code, 0);
    needles["basic auth of writer:" + pw] = b64.output;
  }
  size_t bytes = 0;
  for (const auto& [where, text] : outputs) {
    bytes += text.size();
    for (const auto& [what, secret] : needles) {
      EXPECT_EQ(text.find(secret), std::string::npos) << what << " appears in " << where;
    }
  }
  // The places searched do hold the errors and the masked settings (the grep is not vacuous).
  auto output = [&](const std::string& where) {
    for (const auto& [w, text] : outputs) {
      if (w == where) return text;
    }
    return std::string();
  };
  EXPECT_NE(output("phase 1 (errors) status --json").find("401"), std::string::npos);
  EXPECT_NE(output("phase 1 (errors) status --json").find("CONNACK"), std::string::npos);  // the MQTT refusal
  EXPECT_NE(output("phase 1 (errors) sqlite3 .dump").find("authorization failed"), std::string::npos);  // influxd's 401
  EXPECT_NE(output("sqlite3 .dump").find("conflict"), std::string::npos);  // the dead letter's reason
  EXPECT_NE(output("phase 1 agent log").find("401"), std::string::npos);
  for (const std::string var : {"EDGELINE_MQTT_PASSWORD", "EDGELINE_INFLUX_TOKEN", "EDGELINE_INFLUX_PASSWORD",
                                "EDGELINE_HTTP_TOKEN", "EDGELINE_KAFKA_SASL_PASSWORD"}) {
    const std::string table = output("config ");
    const size_t row = table.find(var + " ");
    EXPECT_NE(row, std::string::npos) << var;
    EXPECT_NE(table.substr(row, table.find('\n', row) - row).find("********"), std::string::npos) << var;
  }
  std::cout << "secrets grep: " << needles.size() << " secrets x " << outputs.size() << " outputs (" << bytes
            << " bytes)\n";
  EXPECT_GT(outputs.size(), 20u);
}

// 4. The queue file and its -wal/-shm are owner-only whatever the umask, while the agent runs,
// after it stops, and after a read-only `status`.
TEST_F(SecurityTest, QueueFilesAreOwnerOnlyWhateverTheUmask) {
  Mosquitto broker;
  Influxd influx;
  influx.Query("CREATE DATABASE modes");
  Env env = AgentEnv(broker, influx, dir_ + "/queue.db", "modes");
  const mode_t old_umask = ::umask(0);  // the child inherits it: the most permissive case
  auto agent = StartAgent(env);
  ::umask(old_umask);
  ASSERT_TRUE(WaitFor([&] { return AgentHttpPort(*agent) > 0; }, 20s)) << agent->Log();
  EXPECT_EQ(Curl({"-X", "POST", "http://127.0.0.1:" + std::to_string(AgentHttpPort(*agent)) + "/write?db=d",
                  "--data-binary", "m v=1 1764000000000000001"})
                .code,
            204);
  auto check = [&](const std::string& when) {
    size_t seen = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("queue.db", 0) != 0) continue;
      ++seen;
      EXPECT_EQ(Mode(entry.path().string()), 0600) << name << " " << when;
    }
    return seen;
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        return std::filesystem::exists(dir_ + "/queue.db-wal") && std::filesystem::exists(dir_ + "/queue.db-shm");
      },
      10s));
  EXPECT_GE(check("while running"), 3u);
  EXPECT_EQ(agent->Terminate(), 0);
  check("after a clean stop");
  const mode_t previous = ::umask(0);
  auto status = RunCommand({EDGELINE_BINARY, "status"}, env);
  ::umask(previous);
  check("after status");
}

// 4b. scripts/install.sh creates the env file (it holds secrets) 0600 even under umask 000.
TEST_F(SecurityTest, InstallScriptCreatesTheEnvFileOwnerOnly) {
  const std::string root = std::filesystem::path(EDGELINE_FIXTURES_DIR).parent_path().parent_path().string();
  const std::string dest = dir_ + "/root";
  auto r = RunCommand({"bash", "-c", "umask 000 && bash \"$0\" --destdir \"$1\" --binary \"$2\"",
                       root + "/scripts/install.sh", dest, EDGELINE_BINARY},
                      {});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Mode(dest + "/etc/edgeline/edgeline.env"), 0600);
  // Re-running keeps it, and warns if someone loosened it.
  ASSERT_EQ(::chmod((dest + "/etc/edgeline/edgeline.env").c_str(), 0644), 0);
  r = RunCommand({"bash", root + "/scripts/install.sh", "--destdir", dest, "--binary", EDGELINE_BINARY}, {});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("chmod 600"), std::string::npos) << r.output;
}

// Whether a listener could bind `port` on every interface right now.
bool PortFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// Listening TCP sockets (state 0A) of `pid`, as "hexaddr:hexport" from /proc/net/tcp{,6}.
std::vector<std::string> ListeningSockets(pid_t pid) {
  std::set<std::string> inodes;
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(fd_dir)) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::vector<std::string> out;
  for (const std::string table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::istringstream in(ReadFile(table));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      if (state == "0A" && inodes.count(inode)) out.push_back(local);
    }
  }
  return out;
}

// 5. With EDGELINE_HTTP_LISTEN unset the endpoint listens on loopback only (and the agent on
// nothing else); with EDGELINE_HTTP_TOKEN every unauthenticated write is refused and queues
// nothing, an authenticated one is queued.
TEST_F(SecurityTest, HttpEndpointIsLoopbackByDefaultAndTheTokenGuardsTheQueue) {
  constexpr int kDefaultPort = 8087;
  if (!PortFree(kDefaultPort)) {
    GTEST_SKIP() << "port " << kDefaultPort << " is taken on this machine; the default cannot be observed";
  }
  Mosquitto broker;
  Influxd influx;
  influx.Query("CREATE DATABASE token");
  Env env = AgentEnv(broker, influx, dir_ + "/queue.db", "token");
  env.erase("EDGELINE_HTTP_LISTEN");
  const std::string token = "local-token-S3CRET-0c9d";
  env["EDGELINE_HTTP_TOKEN"] = token;
  auto agent = StartAgent(env);
  const std::string base = "http://127.0.0.1:" + std::to_string(kDefaultPort);
  ASSERT_TRUE(WaitFor([&] { return Curl({base + "/health"}).code == 200; }, 20s)) << agent->Log();
  const std::vector<std::string> sockets = ListeningSockets(agent->pid());
  ASSERT_EQ(sockets.size(), 1u) << ::testing::PrintToString(sockets);
  EXPECT_EQ(sockets[0], "0100007F:1F97");  // 127.0.0.1:8087 in /proc/net/tcp's little-endian hex

  const std::string lp = "guarded v=1 1764000000000000001";
  const std::vector<std::vector<std::string>> refused = {
      {"-X", "POST", base + "/api/v2/write?org=o&bucket=b", "--data-binary", lp},
      {"-X", "POST", base + "/api/v2/write?org=o&bucket=b", "-H", "Authorization: Token x" + token, "--data-binary",
       lp},
      {"-X", "POST", base + "/api/v2/write?org=o&bucket=b", "-H", "Authorization: Bearer " + token.substr(1),
       "--data-binary", lp},
      {"-X", "POST", base + "/api/v2/write?org=o&bucket=b&p=" + token, "--data-binary", lp},  // p= is v1 only
      {"-X", "POST", base + "/write?db=d", "--data-binary", lp},
      {"-X", "POST", base + "/write?db=d&u=x&p=wrong", "--data-binary", lp},
      {"-X", "POST", base + "/write?db=d", "-u", "x:wrong", "--data-binary", lp},
      {"-X", "POST", base + "/write?db=d", "-u", token + ":", "--data-binary", lp},  // token as the user
  };
  for (const auto& args : refused) {
    auto r = Curl(args);
    EXPECT_EQ(r.code, 401) << ::testing::PrintToString(args) << " " << r.body;
    EXPECT_EQ(r.body.find(token), std::string::npos);
  }
  auto committed = [&] {
    const nlohmann::json sink = InfluxSink(StatusJson(env));
    return sink.is_null() ? -1 : sink["pending_points"].get<int64_t>() + sink["sent_points"].get<int64_t>();
  };
  EXPECT_EQ(committed(), 0);
  EXPECT_EQ(StatusJson(env)["agent"]["committed_points"], 0);

  EXPECT_EQ(Curl({"-X", "POST", base + "/api/v2/write?org=o&bucket=b", "-H", "Authorization: Token " + token,
                  "--data-binary", lp})
                .code,
            204);
  EXPECT_EQ(
      Curl({"-X", "POST", base + "/write?db=d", "-u", "x:" + token, "--data-binary", "guarded v=2 1764000000000000002"})
          .code,
      204);
  EXPECT_EQ(committed(), 2);  // 204 means committed
  EXPECT_TRUE(WaitFor([&] { return influx.QueryCount("SELECT count(v) FROM guarded", "token") == 2; }, 30s));
  EXPECT_EQ(agent->Terminate(), 0);
  EXPECT_EQ(agent->Log().find(token), std::string::npos);
}

}  // namespace
}  // namespace edgeline
