#include "tests/support/influx_standin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <map>
#include <string_view>

#include "common/line_protocol.h"
#include "common/strings.h"
#include "tests/support/ports.h"

namespace edgeline::testing {

namespace {

constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxBodyBytes = 256 * 1024 * 1024;

enum class Api { kV1, kV2, kV3 };

std::string HeaderOf(const StandinRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return "";
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    out[UrlDecode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) v |= static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

bool Gunzip(const std::string& in, std::string* out) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return false;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);  // Z_BUF_ERROR here means a truncated stream
    out->append(buf, sizeof(buf) - zs.avail_out);
    if (out->size() > kMaxBodyBytes) rc = Z_MEM_ERROR;
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END;
}

std::string JsonString(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Request Entity Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

// v2 answers {"code","message"} like influxd 2.x; v1 and v3 answer {"error"} like 1.x and 3.x.
std::string ErrorBody(Api api, int status, std::string_view message) {
  if (api != Api::kV2) return "{\"error\":" + JsonString(message) + "}";
  std::string_view code = "internal error";
  switch (status) {
    case 400: code = "invalid"; break;
    case 401: code = "unauthorized"; break;
    case 403: code = "forbidden"; break;
    case 404: code = "not found"; break;
    case 413: code = "request too large"; break;
    case 422: code = "unprocessable entity"; break;
    case 429: code = "too many requests"; break;
    case 503: code = "unavailable"; break;
    default: break;
  }
  return "{\"code\":" + JsonString(code) + ",\"message\":" + JsonString(message) + "}";
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool ReadMore(int fd, std::string* buffer) {
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer->append(chunk, static_cast<size_t>(n));
    return true;
  }
}

}  // namespace

Result<std::unique_ptr<InfluxStandin>> InfluxStandin::Start(InfluxStandinConfig config) {
  Result<LoopbackListener> listener = ListenOnLoopback();
  if (!listener.ok()) return Status::IoError("standin: " + listener.status().message());
  return std::unique_ptr<InfluxStandin>(new InfluxStandin(listener->fd, listener->port, std::move(config)));
}

InfluxStandin::InfluxStandin(int listen_fd, int port, InfluxStandinConfig config)
    : config_(std::move(config)), listen_fd_(listen_fd), port_(port) {
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

InfluxStandin::~InfluxStandin() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (const auto& connection : connections_) {
      if (connection->fd >= 0) ::shutdown(connection->fd, SHUT_RDWR);  // wakes a blocked recv
    }
  }
  stop_cv_.notify_all();
  ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept (EINVAL on Linux)
  accept_thread_.join();
  ::close(listen_fd_);
  // No new connections after the accept thread ended, so connections_ is stable here.
  for (const auto& connection : connections_) connection->thread.join();
}

void InfluxStandin::AcceptLoop() {
  int count = 0;
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0 && errno == EINTR) continue;
    std::lock_guard<std::mutex> lock(mu_);
    if (fd < 0 || stopping_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    auto connection = std::make_unique<Connection>();
    connection->fd = fd;
    Connection* raw = connection.get();
    connection->thread = std::thread([this, raw, number = ++count] { Serve(raw, number); });
    connections_.push_back(std::move(connection));
  }
}

void InfluxStandin::Serve(Connection* connection, int number) {
  int fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fd = connection->fd;
  }
  std::string buffer;
  Next next;
  while ((next = ServeOne(fd, number, &buffer)) == Next::kContinue) {
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (next == Next::kReset) {
    // SO_LINGER 0 makes close() send RST instead of FIN: the client sees a reset connection.
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  ::close(fd);
  connection->fd = -1;
}

InfluxStandin::Next InfluxStandin::ServeOne(int fd, int number, std::string* buffer) {
  size_t header_end;
  while ((header_end = buffer->find("\r\n\r\n")) == std::string::npos) {
    if (buffer->size() > kMaxHeaderBytes || !ReadMore(fd, buffer)) return Next::kClose;
  }
  StandinRequest request;
  request.connection = number;
  size_t content_length = 0;
  bool keep_alive = true;
  bool expect_continue = false;
  std::string_view head(buffer->data(), header_end);
  size_t eol = head.find("\r\n");
  const std::string_view request_line = head.substr(0, eol);
  const size_t sp1 = request_line.find(' ');
  const size_t sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 <= sp1) return Next::kClose;
  request.method = std::string(request_line.substr(0, sp1));
  request.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  keep_alive = request_line.substr(sp2 + 1) == "HTTP/1.1";
  while (eol != std::string_view::npos) {
    head.remove_prefix(eol + 2);
    eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name = Lower(Trim(line.substr(0, colon)));
    std::string value(Trim(line.substr(colon + 1)));
    if (name == "content-length") content_length = std::strtoull(value.c_str(), nullptr, 10);
    if (name == "connection") keep_alive = Lower(value) != "close";
    if (name == "expect") expect_continue = Lower(value) == "100-continue";
    if (name == "transfer-encoding") return Next::kClose;  // curl sends Content-Length for POSTFIELDS
    request.headers.emplace_back(std::move(name), std::move(value));
  }
  if (content_length > kMaxBodyBytes) return Next::kClose;
  const size_t body_start = header_end + 4;
  if (expect_continue && buffer->size() < body_start + content_length &&
      !SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n")) {
    return Next::kClose;
  }
  while (buffer->size() < body_start + content_length) {
    if (!ReadMore(fd, buffer)) return Next::kClose;
  }
  const std::string body = buffer->substr(body_start, content_length);
  buffer->erase(0, body_start + content_length);

  size_t index;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    index = requests_.size();
    generation = generation_;
    requests_.push_back(request);
  }
  std::vector<std::string> lines;
  size_t decoded_bytes = 0;
  const Reply reply = Handle(request, body, &lines, &decoded_bytes);
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (delay_ms_ > 0) {
      stop_cv_.wait_for(lock, std::chrono::milliseconds(delay_ms_), [this] { return stopping_; });
    }
    if (stopping_) return Next::kClose;
    const bool reset = reset_next_ > 0;
    if (reset) --reset_next_;
    if (generation == generation_) {
      requests_[index].status = reset ? 0 : reply.status;
      requests_[index].body_bytes = decoded_bytes;
    }
    if (reset) return Next::kReset;
    // Stored before answering, so a client that saw the answer also sees the lines.
    if (reply.status / 100 == 2) lines_.insert(lines_.end(), lines.begin(), lines.end());
  }
  std::string response = "HTTP/1.1 " + std::to_string(reply.status) + " " + std::string(ReasonPhrase(reply.status)) +
                         "\r\nX-Influxdb-Version: standin\r\n";
  if (!reply.retry_after.empty()) response += "Retry-After: " + reply.retry_after + "\r\n";
  if (!keep_alive) response += "Connection: close\r\n";
  if (reply.status != 204) {
    response +=
        "Content-Type: application/json; charset=utf-8\r\nContent-Length: " + std::to_string(reply.body.size()) +
        "\r\n\r\n" + reply.body;
  } else {
    response += "\r\n";
  }
  return SendAll(fd, response) && keep_alive ? Next::kContinue : Next::kClose;
}

InfluxStandin::Reply InfluxStandin::Handle(const StandinRequest& request, const std::string& raw_body,
                                           std::vector<std::string>* lines, size_t* decoded_bytes) {
  const size_t question = request.target.find('?');
  const std::string path = request.target.substr(0, question);
  const auto query = ParseQuery(question == std::string::npos ? std::string_view()
                                                              : std::string_view(request.target).substr(question + 1));
  auto param = [&query](const std::string& key) {
    auto it = query.find(key);
    return it == query.end() ? std::string() : it->second;
  };
  auto error = [](Api api, int status, std::string_view message) {
    return Reply{status, ErrorBody(api, status, message), ""};
  };

  {
    std::lock_guard<std::mutex> lock(mu_);
    if (down_status_ != 0) return error(Api::kV1, down_status_, "stand-in: down");
  }
  if (path == "/ping") return Reply{204, "", ""};
  if (path == "/health")
    return Reply{200, R"({"name":"influxdb","message":"ready for queries and writes","status":"pass"})", ""};
  Api api;
  if (path == "/api/v2/write") {
    api = Api::kV2;
  } else if (path == "/api/v3/write_lp") {
    api = Api::kV3;
  } else if (path == "/write") {
    api = Api::kV1;
  } else {
    return error(Api::kV2, 404, "path not found");
  }
  if (request.method != "POST") return error(api, 405, "method not allowed");

  const std::string auth = HeaderOf(request, "authorization");
  const auto known = [this](const std::string& name) {
    return std::find(config_.buckets.begin(), config_.buckets.end(), name) != config_.buckets.end();
  };
  switch (api) {
    case Api::kV2:
      if (auth != "Token " + config_.token) return error(api, 401, "unauthorized access");
      if (param("org") != config_.org) return error(api, 404, "organization name \"" + param("org") + "\" not found");
      if (!known(param("bucket"))) return error(api, 404, "bucket \"" + param("bucket") + "\" not found");
      break;
    case Api::kV3:
      if (auth != "Bearer " + config_.token) return error(api, 401, "the request was not authenticated");
      if (!known(param("db"))) return error(api, 404, "database not found: " + param("db"));
      break;
    case Api::kV1:
      if (!config_.username.empty() && auth != "Basic " + Base64(config_.username + ":" + config_.password)) {
        return error(api, 401, "authorization failed");
      }
      if (!known(param("db"))) return error(api, 404, "database not found: \"" + param("db") + "\"");
      break;
  }

  std::string body;
  if (Lower(HeaderOf(request, "content-encoding")) == "gzip") {
    if (!Gunzip(raw_body, &body)) return error(api, 400, "unable to decode gzip body");
  } else {
    body = raw_body;
  }
  *decoded_bytes = body.size();

  std::string_view rest = body;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (line.empty() || line.front() == '#') continue;
    Result<Point> point = ParseLine(line);
    // Like influxd 2.x: one unparsable line rejects the whole batch, and the message names it.
    if (!point.ok()) {
      lines->clear();
      return error(api, 400, "unable to parse '" + std::string(line) + "': " + point.status().message());
    }
    lines->emplace_back(line);
  }

  std::lock_guard<std::mutex> lock(mu_);
  for (const RejectRule& rule : reject_rules_) {
    for (const std::string& line : *lines) {
      if (line.find(rule.substring) == std::string::npos) continue;
      lines->clear();
      return error(api, rule.status, rule.message.empty() ? "rejected line '" + line + "'" : rule.message);
    }
  }
  if (max_body_bytes_ > 0 && body.size() > max_body_bytes_) {
    lines->clear();
    return error(api, 413, "unable to read data: points batch is too large");
  }
  if (fail_next_ > 0) {
    --fail_next_;
    lines->clear();
    Reply reply = error(api, fail_status_, "stand-in: scripted failure " + std::to_string(fail_status_));
    reply.retry_after = fail_retry_after_;
    return reply;
  }
  return Reply{204, "", ""};
}

void InfluxStandin::RejectLinesContaining(std::string substring, int status, std::string message) {
  std::lock_guard<std::mutex> lock(mu_);
  reject_rules_.push_back({std::move(substring), status, std::move(message)});
}

void InfluxStandin::SetDown(int status) {
  std::lock_guard<std::mutex> lock(mu_);
  down_status_ = status;
}

void InfluxStandin::SetMaxBodyBytes(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  max_body_bytes_ = bytes;
}

void InfluxStandin::FailNext(int n, int status, std::string retry_after) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_next_ = n;
  fail_status_ = status;
  fail_retry_after_ = std::move(retry_after);
}

void InfluxStandin::SetDelayMs(int64_t ms) {
  std::lock_guard<std::mutex> lock(mu_);
  delay_ms_ = ms;
}

void InfluxStandin::ResetNext(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  reset_next_ = n;
}

void InfluxStandin::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  reject_rules_.clear();
  down_status_ = 0;
  max_body_bytes_ = 0;
  fail_next_ = 0;
  delay_ms_ = 0;
  reset_next_ = 0;
}

std::vector<std::string> InfluxStandin::Lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

int InfluxStandin::RequestCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(requests_.size());
}

std::vector<StandinRequest> InfluxStandin::Requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

void InfluxStandin::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  lines_.clear();
  requests_.clear();
  ++generation_;
}

}  // namespace edgeline::testing
