#include "tests/support/harness.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <mqtt/async_client.h>

#include "common/strings.h"
#include "storage/queue.h"
#include "tests/support/ports.h"

#ifndef EDGELINE_FIXTURES_DIR
#error "EDGELINE_FIXTURES_DIR must be defined by the build"
#endif

namespace edgeline::testing {

int FreePort() { return PortAllocator::Default().Next(); }

std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  return buf.data();
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
             std::chrono::milliseconds poll) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

namespace {

// The inodes of the TCP sockets listening on `port` in `pid`'s network namespace.
std::set<std::string> ListeningInodes(pid_t pid, int port) {
  std::set<std::string> inodes;
  char local_port[8];
  std::snprintf(local_port, sizeof(local_port), ":%04X", port);
  for (const char* table : {"tcp", "tcp6"}) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/net/" + table);
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      std::istringstream fields(line);
      std::string sl, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
      if (state == "0A" && local.size() > 5 && local.compare(local.size() - 5, 5, local_port) == 0) {
        inodes.insert(inode);
      }
    }
  }
  return inodes;
}

// True when `pid` itself holds a socket listening on `port` (not merely someone on that port).
bool ListensOn(pid_t pid, int port) {
  const std::set<std::string> inodes = ListeningInodes(pid, port);
  if (inodes.empty()) return false;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    const std::string target = std::filesystem::read_symlink(entry.path(), link_ec).string();
    if (!link_ec && target.rfind("socket:[", 0) == 0 && inodes.count(target.substr(8, target.size() - 9)) != 0) {
      return true;
    }
  }
  return false;
}

std::string PortList(const std::vector<int>& ports) {
  std::string out;
  for (int port : ports) out += (out.empty() ? "" : ",") + std::to_string(port);
  return out;
}

size_t CollectBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// Returns the HTTP status (0 on transport failure); body in *body. `ca_file` and `userpwd`
// ("user:password", Basic) reach an HTTPS or auth-enabled influxd.
int HttpCall(const std::string& url, const std::string& post_fields, std::string* body, const std::string& ca_file = "",
             const std::string& userpwd = "") {
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (!ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
  if (!userpwd.empty()) curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  if (!post_fields.empty()) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_fields.c_str());
  long code = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  return static_cast<int>(code);
}

std::string UrlEncode(const std::string& s) {
  CURL* curl = curl_easy_init();
  char* e = curl_easy_escape(curl, s.c_str(), static_cast<int>(s.size()));
  std::string out(e);
  curl_free(e);
  curl_easy_cleanup(curl);
  return out;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path);
  f << content;
}

}  // namespace

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env, std::string log_path)
    : log_path_(std::move(log_path)) {
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  // PATH and HOME from the parent so tools resolve; nothing else leaks into the child.
  for (const char* keep : {"PATH", "HOME", "TMPDIR"}) {
    if (const char* v = std::getenv(keep); v && !env.count(keep)) env_strings.push_back(std::string(keep) + "=" + v);
  }
  std::vector<char*> c_argv, c_env;
  for (auto& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  for (auto& e : env_strings) c_env.push_back(e.data());
  c_env.push_back(nullptr);
  // Closed by a successful exec (close-on-exec): once the parent reads EOF, the child is the new
  // program and the parent's close-on-exec descriptors (listening sockets among them) are gone.
  int exec_sync[2];
  if (::pipe2(exec_sync, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  pid_ = ::fork();
  if (pid_ == 0) {
    ::close(exec_sync[0]);
    int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvpe(c_argv[0], c_argv.data(), c_env.data());
    std::_Exit(127);  // exit_code() 127, as a shell says for a command it cannot run
  }
  ::close(exec_sync[1]);
  if (pid_ < 0) {
    ::close(exec_sync[0]);
    throw std::runtime_error("fork failed");
  }
  char byte;
  while (::read(exec_sync[0], &byte, 1) < 0 && errno == EINTR) {
  }
  ::close(exec_sync[0]);
}

Process::~Process() {
  if (pid_ > 0 && exit_code_ < 0) Kill();
}

bool Process::running() {
  if (pid_ <= 0 || exit_code_ >= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

int Process::Terminate(std::chrono::milliseconds grace) {
  if (!running()) return exit_code_;
  ::kill(pid_, SIGTERM);
  if (!WaitFor([&] { return !running(); }, grace, std::chrono::milliseconds(10))) Kill();
  return exit_code_;
}

void Process::Kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  exit_code_ = 128 + SIGKILL;
}

std::string Process::Log() const {
  std::ifstream f(log_path_);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

StartedServer StartServer(const ServerSpec& spec) {
  const bool fixed = !spec.ports.empty();
  const int attempts = fixed ? 1 : spec.attempts;
  std::string history;  // one line per failed attempt
  std::string last_log;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    std::vector<int> ports = spec.ports;
    for (int i = 0; !fixed && i < spec.port_count; ++i) ports.push_back(spec.pick_port ? spec.pick_port() : FreePort());
    std::unique_ptr<Process> process = spec.start(ports);
    std::string why;  // set when the ports were taken (or the child ended) before it was ready
    const bool up = WaitFor(
        [&] {
          if (Lower(process->Log()).find("address already in use") != std::string::npos) {
            why = "address already in use";
            return true;
          }
          if (!process->running()) {
            why = "exited with code " + std::to_string(process->exit_code());
            return true;
          }
          for (int port : ports) {
            if (!ListensOn(process->pid(), port)) return false;
          }
          return !spec.ready || spec.ready(ports);
        },
        spec.timeout, std::chrono::milliseconds(20));
    if (up && why.empty()) return StartedServer{ports, std::move(process), attempt};
    process->Kill();
    last_log = process->Log();
    std::error_code ignored;
    std::filesystem::rename(process->log_path(), process->log_path() + ".attempt" + std::to_string(attempt), ignored);
    if (!up) {
      throw std::runtime_error(spec.name + " on ports " + PortList(ports) + " was not ready within " +
                               std::to_string(spec.timeout.count()) + " ms; log:\n" + last_log);
    }
    history += "  attempt " + std::to_string(attempt) + " on ports " + PortList(ports) + ": " + why + "\n";
  }
  throw std::runtime_error(spec.name + " did not start (" + (fixed ? "fixed ports" : "new ports each time") + "):\n" +
                           history + "last log:\n" + last_log);
}

int AgentHttpPort(const Process& agent) {
  const std::string log = agent.Log();
  const std::string marker = "listening on 127.0.0.1:";
  const size_t pos = log.rfind(marker);
  return pos == std::string::npos ? 0 : std::atoi(log.c_str() + pos + marker.size());
}

Mosquitto::Mosquitto() : Mosquitto(MosquittoOptions{}) {}

Mosquitto::Mosquitto(const MosquittoOptions& options)
    : dir_(MakeTempDir("edgeline-mosquitto")), scheme_(options.scheme) {
  const std::string conf = dir_ + "/mosquitto.conf";
  const bool sets_anonymous = options.global_config.find("allow_anonymous") != std::string::npos;
  ServerSpec spec;
  spec.name = "mosquitto";
  spec.pick_port = options.pick_port;
  spec.start = [&](const std::vector<int>& ports) {
    WriteFile(conf, "listener " + std::to_string(ports[0]) + " 127.0.0.1\n" + options.listener_config + "\n" +
                        options.global_config + "\n" + (sets_anonymous ? "" : "allow_anonymous true\n") +
                        "persistence false\n"
                        "max_queued_messages 1000000\n"
                        "max_inflight_messages 100\n"
                        "log_dest stderr\n"
                        "log_type error\nlog_type warning\n");
    return std::make_unique<Process>(std::vector<std::string>{"mosquitto", "-c", conf},
                                     std::map<std::string, std::string>{}, dir_ + "/mosquitto.log");
  };
  StartedServer started = StartServer(spec);
  port_ = started.ports[0];
  start_attempts_ = started.attempts;
  process_ = std::move(started.process);
}

Influxd::Influxd() : Influxd(InfluxdOptions{}) {}

Influxd::Influxd(InfluxdOptions options) : options_(std::move(options)), dir_(MakeTempDir("edgeline-influxd")) {
  StartOn({});
}

std::unique_ptr<Process> Influxd::Launch(const std::vector<int>& ports) {
  std::string https;
  if (!options_.https_certificate.empty()) {
    https = "  https-enabled = true\n  https-certificate = \"" + options_.https_certificate +
            "\"\n  https-private-key = \"" + options_.https_private_key + "\"\n";
  }
  WriteFile(dir_ + "/influxd.conf",
            "reporting-disabled = true\n"
            "bind-address = \"127.0.0.1:" +
                std::to_string(ports[1]) +
                "\"\n"
                "[meta]\n  dir = \"" +
                dir_ +
                "/meta\"\n"
                "[data]\n  dir = \"" +
                dir_ + "/data\"\n  wal-dir = \"" + dir_ +
                "/wal\"\n"
                "  query-log-enabled = false\n"
                "[http]\n  bind-address = \"127.0.0.1:" +
                std::to_string(ports[0]) +
                "\"\n"
                "  log-enabled = false\n" +
                https + options_.http_config +
                "\n"
                "[monitor]\n  store-enabled = false\n"
                "[continuous_queries]\n  enabled = false\n");
  return std::make_unique<Process>(std::vector<std::string>{"influxd", "-config", dir_ + "/influxd.conf"},
                                   std::map<std::string, std::string>{}, dir_ + "/influxd.log");
}

void Influxd::StartOn(std::vector<int> ports) {
  ServerSpec spec;
  spec.name = "influxd";
  spec.port_count = 2;  // HTTP, RPC bind-address
  spec.ports = std::move(ports);
  spec.pick_port = options_.pick_port;
  spec.start = [this](const std::vector<int>& p) { return Launch(p); };
  spec.ready = [this](const std::vector<int>& p) {
    std::string body;
    const std::string scheme = options_.https_certificate.empty() ? "http" : "https";
    return HttpCall(scheme + "://127.0.0.1:" + std::to_string(p[0]) + "/ping", "", &body, options_.ca_file) == 204;
  };
  StartedServer started = StartServer(spec);
  http_port_ = started.ports[0];
  rpc_port_ = started.ports[1];
  start_attempts_ = started.attempts;
  process_ = std::move(started.process);
}

void Influxd::Start() { StartOn({http_port_, rpc_port_}); }

void Influxd::SetQueryCredentials(std::string username, std::string password) {
  options_.username = std::move(username);
  options_.password = std::move(password);
}

void Influxd::Stop() {
  if (process_) process_->Terminate();
  process_.reset();
}

nlohmann::json Influxd::Query(const std::string& q, const std::string& db) const {
  std::string body;
  std::string fields = "q=" + UrlEncode(q) + "&epoch=ns";
  if (!db.empty()) fields += "&db=" + UrlEncode(db);
  const std::string userpwd = options_.username.empty() ? "" : options_.username + ":" + options_.password;
  int code = HttpCall(url() + "/query", fields, &body, options_.ca_file, userpwd);
  if (code != 200) return nlohmann::json{{"error", "HTTP " + std::to_string(code) + ": " + body}};
  return nlohmann::json::parse(body, nullptr, false);
}

int64_t Influxd::QueryCount(const std::string& q, const std::string& db) const {
  nlohmann::json r = Query(q, db);
  try {
    const auto& series = r["results"][0]["series"];
    if (!series.is_array() || series.empty()) return 0;
    return series[0]["values"][0][1].get<int64_t>();
  } catch (...) {
    return -1;
  }
}

struct Publisher::Impl {
  std::unique_ptr<mqtt::async_client> client;
};

Publisher::Publisher(const std::string& url, const std::string& client_id) : impl_(std::make_unique<Impl>()) {
  impl_->client = std::make_unique<mqtt::async_client>(url, client_id);
  mqtt::connect_options opts;
  opts.set_clean_session(true);
  opts.set_max_inflight(100);
  impl_->client->connect(opts)->wait();
}

Publisher::~Publisher() {
  try {
    impl_->client->disconnect()->wait();
  } catch (...) {
  }
}

void Publisher::PublishAll(const std::vector<std::pair<std::string, std::string>>& messages, int qos) {
  std::vector<mqtt::delivery_token_ptr> window;
  for (const auto& [topic, payload] : messages) {
    window.push_back(impl_->client->publish(topic, payload.data(), payload.size(), qos, false));
    if (window.size() >= 50) {
      for (auto& t : window) t->wait();
      window.clear();
    }
  }
  for (auto& t : window) t->wait();
}

struct Subscriber::Impl {
  std::unique_ptr<mqtt::async_client> client;
  mutable std::mutex mu;
  std::map<std::string, std::string> last;
  std::map<std::string, std::vector<std::string>> all;
};

Subscriber::Subscriber(const std::string& url, const std::string& client_id, const std::string& filter)
    : impl_(std::make_unique<Impl>()) {
  impl_->client = std::make_unique<mqtt::async_client>(url, client_id);
  Impl* impl = impl_.get();
  impl_->client->set_message_callback([impl](mqtt::const_message_ptr msg) {
    std::lock_guard lock(impl->mu);
    impl->last[msg->get_topic()] = msg->to_string();
    impl->all[msg->get_topic()].push_back(msg->to_string());
  });
  mqtt::connect_options opts;
  opts.set_clean_session(true);
  impl_->client->connect(opts)->wait();
  impl_->client->subscribe(filter, 1)->wait();
}

Subscriber::~Subscriber() {
  try {
    impl_->client->disconnect()->wait();
  } catch (...) {
  }
}

std::string Subscriber::Last(const std::string& topic) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->last.find(topic);
  return it == impl_->last.end() ? "" : it->second;
}

std::vector<std::string> Subscriber::All(const std::string& topic) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->all.find(topic);
  return it == impl_->all.end() ? std::vector<std::string>{} : it->second;
}

CommandResult RunCommand(std::vector<std::string> argv, std::map<std::string, std::string> env,
                         std::chrono::milliseconds timeout) {
  std::string dir = MakeTempDir("edgeline-cmd");
  std::string log = dir + "/output";
  CommandResult result;
  {
    Process p(std::move(argv), std::move(env), log);
    if (!WaitFor([&] { return !p.running(); }, timeout, std::chrono::milliseconds(10))) p.Kill();
    result.exit_code = p.exit_code();
    result.output = p.Log();
  }
  std::filesystem::remove_all(dir);
  return result;
}

CurlResult Curl(std::vector<std::string> args) {
  // -w prints the status after the body.
  std::vector<std::string> argv = {"curl", "-s", "-o", "-", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, {});
  CurlResult out;
  size_t nl = r.output.rfind('\n');
  if (nl == std::string::npos) return out;
  out.code = std::atoi(r.output.c_str() + nl + 1);
  out.body = r.output.substr(0, nl);
  return out;
}

std::map<std::string, std::string> AgentEnv(const Mosquitto& mqtt, const Influxd& influx, const std::string& queue_path,
                                            const std::string& database) {
  return {
      {"EDGELINE_MQTT_URL", mqtt.url()},
      {"EDGELINE_MQTT_CLIENT_ID", "edgeline-test"},
      {"EDGELINE_MQTT_RECONNECT_MIN", "1s"},
      {"EDGELINE_MQTT_RECONNECT_MAX", "2s"},
      {"EDGELINE_MQTT_KEEPALIVE", "5s"},
      {"EDGELINE_QUEUE_PATH", queue_path},
      {"EDGELINE_INFLUX_URL", influx.url()},
      {"EDGELINE_INFLUX_API", "v1"},
      {"EDGELINE_INFLUX_DB", database},
      {"EDGELINE_RETRY_MIN", "100ms"},
      {"EDGELINE_RETRY_MAX", "1s"},
      {"EDGELINE_LOG_LEVEL", "info"},
      {"EDGELINE_HTTP_LISTEN", "127.0.0.1:0"},  // any free port: parallel agents must not collide
  };
}

std::string QueueIntegrity(const std::string& path) {
  QueueOpenOptions o;
  o.config.path = path;
  auto q = OpenSqliteQueue(o);
  if (!q.ok()) return q.status().ToString();
  auto r = (*q)->IntegrityCheck();
  return r.ok() ? *r : r.status().ToString();
}

std::vector<std::string> ReadFixtureLines(const std::string& name) {
  std::ifstream f(std::string(EDGELINE_FIXTURES_DIR) + "/" + name);
  if (!f) throw std::runtime_error("missing fixture " + name);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace edgeline::testing
