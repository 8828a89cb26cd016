// Test harness for integration and crash tests: starts REAL servers (mosquitto, influxd 1.6)
// and the edgeline binary as child processes on free loopback ports, each in its own temp
// directory, waits for readiness by polling (never a fixed sleep), and kills them in the
// destructor. Every server child starts through StartServer, which moves to new ports when the
// picked ones were taken before the server bound them. Also a Paho-based publisher/subscriber
// and an InfluxQL query helper.
// Not thread-safe: one test thread owns each object (PortAllocator, under FreePort, is).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace edgeline::testing {

// A loopback port from PortAllocator::Default() (tests/support/ports.h): bindable now, never
// handed out twice, outside the ephemeral range, not handed out by a parallel test process.
// Something else may still bind it before the caller's server does: start servers through
// StartServer, which retries. Also good as a port nobody listens on.
int FreePort();
std::string MakeTempDir(const std::string& prefix);
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
             std::chrono::milliseconds poll = std::chrono::milliseconds(50));

// A child process with its own environment; stdout+stderr go to `log_path`. The constructor
// returns once the child has exec'd (or failed to: exit code 127).
class Process {
 public:
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env, std::string log_path);
  ~Process();  // SIGKILL if still running
  pid_t pid() const { return pid_; }
  bool running();
  int Terminate(std::chrono::milliseconds grace = std::chrono::milliseconds(10000));  // SIGTERM, then SIGKILL
  void Kill();                                                                        // SIGKILL and reap
  int exit_code() const { return exit_code_; }
  std::string Log() const;
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_path_;
};

// What StartServer needs to start one server child on `port_count` loopback ports.
struct ServerSpec {
  std::string name;  // in messages, e.g. "influxd"
  int port_count = 1;
  // Set: exactly these ports, one attempt (a restart that clients already point at).
  std::vector<int> ports;
  // Writes the server's configuration for `ports` and starts it; its output goes to Log().
  std::function<std::unique_ptr<Process>(const std::vector<int>& ports)> start;
  // Polled once the child listens on every port (e.g. influxd's /ping); empty: listening is enough.
  std::function<bool(const std::vector<int>& ports)> ready;
  std::function<int()> pick_port;  // empty: FreePort()
  int attempts = 5;
  std::chrono::milliseconds timeout = std::chrono::seconds(30);  // per attempt
};

struct StartedServer {
  std::vector<int> ports;
  std::unique_ptr<Process> process;
  int attempts = 0;  // 1 when the first ports were free
};

// Starts the server on picked ports and returns once the child process itself listens on every
// port (its sockets in /proc, so another process answering on a taken port does not count) and
// `ready` holds. When the child says "address already in use" (in its log) or exits before that,
// it is killed, its log is renamed <log>.attempt<N> so the next start writes a fresh one, and
// it starts again on new ports, up to `attempts` times. Throws std::runtime_error naming each
// attempt's ports and reason, with the last log, when no attempt came up.
StartedServer StartServer(const ServerSpec& spec);

// The HTTP port of an agent started with EDGELINE_HTTP_LISTEN=127.0.0.1:0 (AgentEnv), from the
// last "listening on 127.0.0.1:<port>" of its log; 0 before that. The agent binds the port before
// it logs it, so there is no race.
int AgentHttpPort(const Process& agent);

// TLS and authentication variants of the servers.
// Default-constructed options give exactly the plain servers the other tests use.
struct MosquittoOptions {
  std::string listener_config;     // lines right after `listener` (cafile, certfile, keyfile...)
  std::string global_config;       // e.g. password_file; anonymous clients stay allowed unless this
                                   // sets allow_anonymous itself
  std::string scheme = "tcp";      // of url(): "ssl" or "mqtts" for a TLS listener
  std::function<int()> pick_port;  // empty: FreePort(); StartServer's own test injects a taken port
};

struct InfluxdOptions {
  std::string https_certificate;  // both set: the HTTP API is HTTPS only
  std::string https_private_key;
  std::string ca_file;      // trusted by the harness's own calls (readiness, Query)
  std::string http_config;  // extra [http] lines, e.g. auth-enabled = true
  std::string username;     // Basic auth for Query, once an admin user exists
  std::string password;
  std::function<int()> pick_port;  // empty: FreePort(); HTTP port first, then the RPC port
};

class Mosquitto {
 public:
  Mosquitto();
  explicit Mosquitto(const MosquittoOptions& options);
  std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  int start_attempts() const { return start_attempts_; }  // StartServer's count

 private:
  std::string dir_;
  int port_ = 0;
  int start_attempts_ = 0;
  std::string scheme_ = "tcp";
  std::unique_ptr<Process> process_;
};

class Influxd {
 public:
  Influxd();
  explicit Influxd(InfluxdOptions options);
  // Credentials for Query from now on (after creating the admin user of an auth-enabled server).
  void SetQueryCredentials(std::string username, std::string password);
  void Stop();   // SIGTERM (data kept)
  void Start();  // same dirs, same ports; throws if they were taken meanwhile
  std::string url() const {
    return (options_.https_certificate.empty() ? "http" : "https") + std::string("://127.0.0.1:") +
           std::to_string(http_port_);
  }
  // Runs an InfluxQL statement (POST /query); returns the parsed JSON body.
  nlohmann::json Query(const std::string& q, const std::string& db = "") const;
  // First value of the first series of a single-value query, or -1 when there is none.
  int64_t QueryCount(const std::string& q, const std::string& db) const;
  int http_port() const { return http_port_; }
  int rpc_port() const { return rpc_port_; }
  int start_attempts() const { return start_attempts_; }  // StartServer's count, last start

 private:
  // Writes the configuration for {http, rpc} ports and starts influxd (StartServer's `start`).
  std::unique_ptr<Process> Launch(const std::vector<int>& ports);
  void StartOn(std::vector<int> ports);  // empty: picked

  InfluxdOptions options_;
  std::string dir_;
  int http_port_ = 0;
  int rpc_port_ = 0;
  int start_attempts_ = 0;
  std::unique_ptr<Process> process_;
};

// Paho client for tests: publishes at QoS 1 and waits for every PUBACK.
class Publisher {
 public:
  Publisher(const std::string& url, const std::string& client_id);
  ~Publisher();
  // Publishes all, pipelined; returns once the broker acknowledged each one.
  void PublishAll(const std::vector<std::pair<std::string, std::string>>& messages, int qos = 1);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Records the last payload seen per topic (retained messages included).
class Subscriber {
 public:
  Subscriber(const std::string& url, const std::string& client_id, const std::string& filter);
  ~Subscriber();
  std::string Last(const std::string& topic) const;
  std::vector<std::string> All(const std::string& topic) const;  // every payload, in arrival order

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs a command to completion (stdout+stderr together); returns {exit code, output}.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(std::vector<std::string> argv, std::map<std::string, std::string> env,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The curl CLI with these arguments (URL included): HTTP status (0 when none) and body.
struct CurlResult {
  int code = 0;
  std::string body;
};
CurlResult Curl(std::vector<std::string> args);

// Environment for an agent using these servers, v1 API, fast retries, a temp queue file.
std::map<std::string, std::string> AgentEnv(const Mosquitto& mqtt, const Influxd& influx, const std::string& queue_path,
                                            const std::string& database);

// PRAGMA integrity_check of a queue file ("ok" when healthy), opened as the agent would.
std::string QueueIntegrity(const std::string& path);

// Reads a fixture file under tests/fixtures.
std::vector<std::string> ReadFixtureLines(const std::string& name);

}  // namespace edgeline::testing
