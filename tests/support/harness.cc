#include "tests/support/harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <mqtt/async_client.h>

#include "storage/queue.h"

#ifndef EDGELINE_FIXTURES_DIR
#error "EDGELINE_FIXTURES_DIR must be defined by the build"
#endif

namespace edgeline::testing {

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    throw std::runtime_error("bind(0) failed");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

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

bool PortOpen(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

size_t CollectBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// Returns the HTTP status (0 on transport failure); body in *body. `ca_file` and `userpwd`
// ("user:password", Basic) serve the security tests' HTTPS and auth-enabled influxd.
int HttpCall(const std::string& url, const std::string& post_fields, std::string* body,
             const std::string& ca_file = "", const std::string& userpwd = "") {
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
  pid_ = ::fork();
  if (pid_ == 0) {
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
    std::_Exit(127);
  }
  if (pid_ < 0) throw std::runtime_error("fork failed");
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

Mosquitto::Mosquitto() : Mosquitto(MosquittoOptions{}) {}

Mosquitto::Mosquitto(const MosquittoOptions& options)
    : dir_(MakeTempDir("edgeline-mosquitto")), port_(FreePort()), scheme_(options.scheme) {
  std::string conf = dir_ + "/mosquitto.conf";
  const bool sets_anonymous = options.global_config.find("allow_anonymous") != std::string::npos;
  WriteFile(conf, "listener " + std::to_string(port_) + " 127.0.0.1\n" + options.listener_config +
                  "\n" + options.global_config + "\n" +
                  (sets_anonymous ? "" : "allow_anonymous true\n") +
                  "persistence false\n"
                  "max_queued_messages 1000000\n"
                  "max_inflight_messages 100\n"
                  "log_dest stderr\n"
                  "log_type error\nlog_type warning\n");
  process_ = std::make_unique<Process>(std::vector<std::string>{"mosquitto", "-c", conf},
                                       std::map<std::string, std::string>{}, dir_ + "/mosquitto.log");
  if (!WaitFor([&] { return PortOpen(port_); }, std::chrono::seconds(10))) {
    throw std::runtime_error("mosquitto did not start: " + process_->Log());
  }
}

Influxd::Influxd() : Influxd(InfluxdOptions{}) {}

Influxd::Influxd(InfluxdOptions options)
    : options_(std::move(options)),
      dir_(MakeTempDir("edgeline-influxd")),
      http_port_(FreePort()),
      rpc_port_(FreePort()) {
  std::string https;
  if (!options_.https_certificate.empty()) {
    https = "  https-enabled = true\n  https-certificate = \"" + options_.https_certificate +
            "\"\n  https-private-key = \"" + options_.https_private_key + "\"\n";
  }
  WriteFile(dir_ + "/influxd.conf",
            "reporting-disabled = true\n"
            "bind-address = \"127.0.0.1:" + std::to_string(rpc_port_) + "\"\n"
            "[meta]\n  dir = \"" + dir_ + "/meta\"\n"
            "[data]\n  dir = \"" + dir_ + "/data\"\n  wal-dir = \"" + dir_ + "/wal\"\n"
            "  query-log-enabled = false\n"
            "[http]\n  bind-address = \"127.0.0.1:" + std::to_string(http_port_) + "\"\n"
            "  log-enabled = false\n" + https + options_.http_config + "\n"
            "[monitor]\n  store-enabled = false\n"
            "[continuous_queries]\n  enabled = false\n");
  Start();
}

void Influxd::Start() {
  process_ = std::make_unique<Process>(std::vector<std::string>{"influxd", "-config", dir_ + "/influxd.conf"},
                                       std::map<std::string, std::string>{}, dir_ + "/influxd.log");
  bool up = WaitFor(
      [&] {
        std::string body;
        return HttpCall(url() + "/ping", "", &body, options_.ca_file) == 204;
      },
      std::chrono::seconds(30));
  if (!up) throw std::runtime_error("influxd did not start: " + process_->Log());
}

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
};

Subscriber::Subscriber(const std::string& url, const std::string& client_id, const std::string& filter)
    : impl_(std::make_unique<Impl>()) {
  impl_->client = std::make_unique<mqtt::async_client>(url, client_id);
  Impl* impl = impl_.get();
  impl_->client->set_message_callback([impl](mqtt::const_message_ptr msg) {
    std::lock_guard lock(impl->mu);
    impl->last[msg->get_topic()] = msg->to_string();
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

std::map<std::string, std::string> AgentEnv(const Mosquitto& mqtt, const Influxd& influx,
                                            const std::string& queue_path, const std::string& database) {
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
