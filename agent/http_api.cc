#include "agent/http_api.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <map>
#include <sstream>
#include <vector>

#include "agent/status_report.h"
#include "common/line_protocol.h"
#include "common/log.h"
#include "common/sink_state.h"
#include "common/strings.h"
#include "downsample/downsample_task.h"

namespace edgeline {
namespace {

// ns per unit of a precision parameter (v1 and v2 spellings); 0 = unknown.
int64_t PrecisionNs(std::string_view p) {
  if (p.empty() || p == "ns" || p == "n") return 1;
  if (p == "us" || p == "u") return 1'000;
  if (p == "ms") return 1'000'000;
  if (p == "s") return 1'000'000'000;
  if (p == "m") return 60'000'000'000;
  if (p == "h") return 3'600'000'000'000;
  return 0;
}

// InfluxDB's error JSON. Never throws on bytes that are not UTF-8 (they become U+FFFD), though
// callers pass text made safe by Excerpt.
std::string ErrorBody(std::string_view code, std::string_view message) {
  return nlohmann::json({{"code", code}, {"message", message}})
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// At most about `max_bytes` of `text` for an error message: well-formed UTF-8 is kept, control
// characters and bytes that are not UTF-8 are written as \xNN; "..." marks a cut.
std::string Excerpt(std::string_view text, size_t max_bytes = 200) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (out.size() >= max_bytes) return out + "...";
    const size_t n = Utf8SequenceLength(text, i);
    const auto c = static_cast<unsigned char>(text[i]);
    if (n == 0 || (n == 1 && (c < 0x20 || c == 0x7F))) {
      char buf[5];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
      ++i;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

// The label of a request path in /metrics: the endpoint's own paths, anything else "other" (a
// client must not be able to make up series).
std::string PathLabel(const std::string& path) {
  for (const char* known : {"/api/v2/write", "/write", "/health", "/metrics", "/ping"}) {
    if (path == known) return path;
  }
  return "other";
}

// Escapes a Prometheus label value.
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Prometheus text exposition: each family's HELP and TYPE once, before its samples.
class MetricsText {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void Sample(std::string_view name, double value, std::string_view labels = "") {
    out_ << name;
    if (!labels.empty()) out_ << "{" << labels << "}";
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", value);
    out_ << " " << buf << "\n";
  }
  void One(std::string_view name, std::string_view type, std::string_view help, double value) {
    Family(name, type, help);
    Sample(name, value);
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

std::string Base64Decode(std::string_view in) {
  std::string out;
  int bits = 0;
  uint32_t acc = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else
      break;  // '=' padding or junk
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

// Compares without an early exit, so response timing does not reveal how much of a guess matched.
bool SecretEquals(std::string_view given, std::string_view secret) {
  unsigned char diff = given.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i] ^ secret[i % std::max<size_t>(1, secret.size())]);
  }
  return diff == 0;
}

bool TokenMatches(const httplib::Request& req, const std::string& token, bool v1) {
  if (token.empty()) return true;
  std::string auth = req.get_header_value("Authorization");
  for (std::string_view scheme : {"Token ", "Bearer "}) {
    if (auth.rfind(scheme, 0) == 0 && SecretEquals(std::string_view(auth).substr(scheme.size()), token)) return true;
  }
  if (!v1) return false;
  // 1.x clients send the token as the password: u/p parameters or Basic auth.
  if (req.has_param("p") && SecretEquals(req.get_param_value("p"), token)) return true;
  if (auth.rfind("Basic ", 0) == 0) {
    std::string decoded = Base64Decode(std::string_view(auth).substr(6));
    size_t colon = decoded.find(':');
    return colon != std::string::npos && SecretEquals(std::string_view(decoded).substr(colon + 1), token);
  }
  return false;
}

// True on a thread that answers a connection over max_connections (ConnectionPool).
thread_local bool t_over_capacity = false;

// httplib's TaskQueue, one job per accepted connection (httplib's job serves the connection's
// requests until it closes or idles past the keep-alive timeout). A job runs on an idle thread,
// else on a new one up to `max_threads`; over that on one of up to `max_shed` threads that run
// it with t_over_capacity set; when those are busy too it waits for the next thread free, a
// shedding one (they answer fast: one request, then the client closes) or one of the pool. A
// thread with nothing to do for `idle_exit` ends. shutdown() runs the jobs still queued, then
// joins.
class ConnectionPool : public httplib::TaskQueue {
 public:
  ConnectionPool(int max_threads, int max_shed, std::chrono::milliseconds idle_exit)
      : max_threads_(std::max(1, max_threads)), max_shed_(std::max(0, max_shed)), idle_exit_(idle_exit) {}
  ~ConnectionPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mu_);
    std::vector<std::thread> ended = TakeEnded();
    if (idle_ > static_cast<int>(jobs_.size()) || (workers_ >= max_threads_ && shedding_ >= max_shed_)) {
      jobs_.push_back(std::move(fn));
      cv_.notify_one();
    } else if (workers_ < max_threads_) {
      ++workers_;
      Spawn([this, fn = std::move(fn)]() mutable { Work(std::move(fn)); });
    } else {
      ++shedding_;
      Spawn([this, fn = std::move(fn)]() mutable { Shed(std::move(fn)); });
    }
    lock.unlock();
    for (std::thread& t : ended) t.join();
  }

  void shutdown() override {
    std::map<std::thread::id, std::thread> threads;
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
      cv_.notify_all();
    }
    // A thread still serving a connection may enqueue nothing, but may end while we join.
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (threads_.empty()) break;
        threads = std::move(threads_);
        threads_.clear();
        ended_.clear();
      }
      for (auto& [id, t] : threads) t.join();
      threads.clear();
    }
  }

 private:
  template <typename F>
  void Spawn(F f) {  // mu_ held
    std::thread t(std::move(f));
    const std::thread::id id = t.get_id();
    threads_.emplace(id, std::move(t));
  }
  std::vector<std::thread> TakeEnded() {  // mu_ held
    std::vector<std::thread> out;
    for (const std::thread::id& id : ended_) {
      auto it = threads_.find(id);
      if (it == threads_.end()) continue;
      out.push_back(std::move(it->second));
      threads_.erase(it);
    }
    ended_.clear();
    return out;
  }
  void Work(std::function<void()> fn) {
    for (;;) {
      fn();
      fn = nullptr;
      std::unique_lock lock(mu_);
      ++idle_;
      cv_.wait_for(lock, idle_exit_, [&] { return !jobs_.empty() || shutdown_; });
      --idle_;
      if (jobs_.empty()) {  // idle too long, or shutting down
        --workers_;
        ended_.push_back(std::this_thread::get_id());
        return;
      }
      fn = std::move(jobs_.front());
      jobs_.pop_front();
    }
  }

  // Answers connections over capacity: this one, then any still waiting (they are over capacity
  // too), so none waits long for a pool thread.
  void Shed(std::function<void()> fn) {
    t_over_capacity = true;
    for (;;) {
      fn();
      fn = nullptr;
      std::lock_guard lock(mu_);
      if (jobs_.empty()) {
        --shedding_;
        ended_.push_back(std::this_thread::get_id());
        return;
      }
      fn = std::move(jobs_.front());
      jobs_.pop_front();
    }
  }

  const int max_threads_;
  const int max_shed_;
  const std::chrono::milliseconds idle_exit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::map<std::thread::id, std::thread> threads_;
  std::vector<std::thread::id> ended_;  // threads that returned, to be joined
  int workers_ = 0;   // threads of the pool proper (busy or idle)
  int idle_ = 0;      // of those, waiting for a job
  int shedding_ = 0;  // threads answering connections over max_threads
  bool shutdown_ = false;
};

}  // namespace

HttpApi::HttpApi(HttpApiOptions options, Queue* queue, GroupCommitter* committer, const Clock* clock, AgentProbe probe,
                 FieldTypeGuard* field_types)
    : options_(std::move(options)),
      queue_(queue),
      committer_(committer),
      clock_(clock),
      probe_(std::move(probe)),
      field_types_(field_types) {}

HttpApi::~HttpApi() { Stop(); }

void HttpApi::Count(const std::string& path, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{path, status}];
}

bool HttpApi::TakeBodyBytes(int64_t n, int64_t held) {
  std::lock_guard lock(body_mu_);
  if (inflight_body_bytes_ + n > options_.max_inflight_body_bytes && inflight_body_bytes_ != held) return false;
  inflight_body_bytes_ += n;
  return true;
}

void HttpApi::ReturnBodyBytes(int64_t n) {
  std::lock_guard lock(body_mu_);
  inflight_body_bytes_ -= n;
}

int64_t HttpApi::inflight_body_bytes() {
  std::lock_guard lock(body_mu_);
  return inflight_body_bytes_;
}

HttpApi::WriteResult HttpApi::Write(const std::string& topic, std::string_view body, std::string_view precision) {
  const int64_t scale = PrecisionNs(precision);
  if (scale == 0) {
    return {400, ErrorBody("invalid", "invalid precision \"" + Excerpt(precision, 20) + "\"")};
  }
  // One receive time for the request: lines without a timestamp get it, truncated to the
  // request's precision (as InfluxDB's models.Point.SetPrecision does: time.Truncate).
  const int64_t now_ns = clock_->WallNowNs();
  const int64_t receive_ns = now_ns - (((now_ns % scale) + scale) % scale);
  struct BadLine {
    int64_t number;
    std::string_view text;
    std::string reason;
    bool parsed = false;   // refused for its field types, not for its syntax
    bool dropped = true;   // nothing of the line was written
  };
  std::vector<BadLine> bad;
  std::vector<IngestMessage> chunks;
  int64_t points = 0;
  std::vector<BadLine> refused;
  for (const LpLine& line : SplitBodyLines(body)) {
    // split -> parse -> timestamp -> field types -> format.
    Result<Point> point = ParseLine(line.text);
    if (point.ok() && point->timestamp_ns) {
      int64_t ns = 0;
      if (__builtin_mul_overflow(*point->timestamp_ns, scale, &ns)) {
        point = Status::InvalidArgument("timestamp out of range at precision " + std::string(precision));
      } else {
        point->timestamp_ns = ns;
      }
    } else if (point.ok()) {
      point->timestamp_ns = receive_ns;
    }
    if (!point.ok()) {
      bad.push_back({static_cast<int64_t>(line.number), line.text, point.status().message()});
      continue;
    }
    // Committed in chunks of at most max_lines_per_commit lines, each its own queue batch.
    if (chunks.empty() || static_cast<int64_t>(chunks.back().mapped.lines.size()) >= options_.max_lines_per_commit) {
      chunks.emplace_back();
      chunks.back().topic = topic;
      chunks.back().receive_ns = receive_ns;
    }
    MappedMessage& chunk = chunks.back().mapped;
    if (field_types_ != nullptr) {
      if (std::optional<RefusedFields> r = field_types_->Check(&*point)) {
        refused.push_back({static_cast<int64_t>(line.number), line.text, r->reason, true, point->fields.empty()});
        chunk.refused_fields.push_back(std::move(*r));
        if (point->fields.empty()) continue;
      }
    }
    chunk.AddLine(FormatPoint(*point), *point->timestamp_ns);
    ++points;
  }
  // The answer is built before the commit: nothing that runs after a commit may fail, or the
  // client would get a 5xx for lines that are stored (and send them again).
  WriteResult result;
  for (BadLine& r : refused) {
    r.reason += r.dropped ? " (the point is in the dead-letter queue)"
                          : " (those fields are in the dead-letter queue; the rest of the point is written)";
    bad.push_back(std::move(r));
  }
  std::stable_sort(bad.begin(), bad.end(), [](const BadLine& a, const BadLine& b) { return a.number < b.number; });
  if (!bad.empty()) {
    // InfluxDB 1.x's words: "partial write: ... dropped=N" when some lines were written.
    constexpr size_t kNamed = 20;
    std::string message = points > 0 ? "partial write: " : "";
    for (size_t i = 0; i < bad.size() && i < kNamed; ++i) {
      message += (i == 0 ? "" : "; ") + std::string("line ") + std::to_string(bad[i].number) + ": " +
                 (bad[i].parsed ? "'" : "unable to parse '") + Excerpt(bad[i].text) + "': " + Excerpt(bad[i].reason);
    }
    if (bad.size() > kNamed) message += "; ... and " + std::to_string(bad.size() - kNamed) + " more";
    message += " dropped=" + std::to_string(std::count_if(bad.begin(), bad.end(), [](const BadLine& b) { return b.dropped; }));
    result = {400, ErrorBody("invalid", message)};
  }
  if (!chunks.empty() || !refused.empty()) {
    if (chunks.empty()) {  // every field of every good line refused: only dead letters to store
      chunks.emplace_back();
      chunks.back().topic = topic;
      chunks.back().receive_ns = receive_ns;
    }
    // All chunks in one transaction: a 5xx never follows a partial commit.
    Status st = committer_->SubmitAll(std::move(chunks));
    if (!st.ok()) {
      LOG_WARN("http") << "write to " << Excerpt(topic, 100) << ": nothing committed, answering 503: " << st.message();
      return {503, ErrorBody("unavailable", "points could not be committed, nothing was written: " + st.message())};
    }
    points_written_ += points;
  }
  return result;
}

std::pair<int, nlohmann::json> HttpApi::Health() {
  using nlohmann::json;
  json sinks = json::object();
  bool sinks_ok = true;
  auto statuses = queue_->SinkStatuses();
  if (statuses.ok()) {
    for (const SinkStatus& s : *statuses) {
      if (!s.registered) continue;  // a sink of an earlier configuration: not part of this agent
      sinks[s.sink] = {{"state", s.state.empty() ? "new" : s.state},
                       {"pending_points", s.pending_points},
                       {"consecutive_failures", s.consecutive_failures}};
      if (s.consecutive_failures > 0) sinks_ok = false;
    }
  }
  auto stats = queue_->Stats();
  std::string disk_problem(probe_.ingest ? Name(CurrentCommitProblem(*probe_.ingest)) : "");
  if (disk_problem.empty() && probe_.state_write_failing && probe_.state_write_failing()) disk_problem = "disk-error";
  const bool writable = stats.ok() && statuses.ok() && disk_problem.empty();
  const int sessions = probe_.mqtt_sessions ? probe_.mqtt_sessions() : 0;
  const int connected = probe_.mqtt_connected ? probe_.mqtt_connected() : 0;
  json queue = {{"writable", writable}};
  if (stats.ok()) {
    queue["points"] = stats->points;
    queue["bytes"] = stats->bytes;
  } else {
    queue["error"] = stats.status().ToString();
  }
  const bool mqtt_ok = sessions > 0 && connected == sessions;
  if (!disk_problem.empty()) queue["problem"] = disk_problem;
  json body = {{"status", !writable               ? (disk_problem.empty() ? "failing" : disk_problem)
                          : (mqtt_ok && sinks_ok) ? "ok"
                                                  : "degraded"},
               {"queue", queue},
               {"mqtt", {{"sessions", sessions}, {"connected", connected}}},
               {"sinks", sinks}};
  return {writable ? 200 : 503, body};
}

std::string HttpApi::Metrics() {
  MetricsText m;
  const int sessions = probe_.mqtt_sessions ? probe_.mqtt_sessions() : 0;
  const int connected = probe_.mqtt_connected ? probe_.mqtt_connected() : 0;
  m.One("edgeline_mqtt_sessions", "gauge", "MQTT sessions configured.", sessions);
  m.One("edgeline_mqtt_sessions_connected", "gauge", "MQTT sessions connected.", connected);
  if (probe_.ingest) {
    const IngestCounters& c = *probe_.ingest;
    m.One("edgeline_ingest_messages_total", "counter", "Messages received (MQTT and HTTP) in this run.",
          static_cast<double>(c.messages.load()));
    m.One("edgeline_ingest_committed_points_total", "counter", "Points committed to the queue in this run.",
          static_cast<double>(c.committed_points.load()));
    m.One("edgeline_ingest_rejected_total", "counter", "Payloads or lines dead-lettered at ingest in this run.",
          static_cast<double>(c.rejected.load()));
    m.One("edgeline_ingest_refused_fields_total", "counter",
          "Points with fields refused for their type (declared or learned) in this run.",
          static_cast<double>(c.refused_fields.load()));
    m.One("edgeline_ingest_device_time_adjusted_total", "counter",
          "Points stamped with the receive time for a wrong device clock (device_time field kept) in this run.",
          static_cast<double>(c.device_time_adjusted.load()));
    m.One("edgeline_ingest_device_time_rejected_total", "counter",
          "Points dead-lettered for a wrong device clock in this run.",
          static_cast<double>(c.device_time_rejected.load()));
    m.One("edgeline_ingest_commits_total", "counter", "Group commits in this run.",
          static_cast<double>(c.commits.load()));
    m.One("edgeline_ingest_commit_failures_total", "counter", "Failed commit attempts in this run.",
          static_cast<double>(c.commit_failures.load()));
    m.One("edgeline_ingest_commit_failing", "gauge", "1 while commits to the queue fail.",
          c.commit_failing.load() ? 1 : 0);
  }
  auto stats = queue_->Stats();
  if (stats.ok()) {
    m.One("edgeline_queue_points", "gauge", "Points held in the queue.", static_cast<double>(stats->points));
    m.One("edgeline_queue_batches", "gauge", "Batches held in the queue.", static_cast<double>(stats->batches));
    m.One("edgeline_queue_bytes", "gauge", "Compressed bytes held in the queue.", static_cast<double>(stats->bytes));
    m.One("edgeline_queue_dropped_points_total", "counter", "Points removed by the queue's size/age bounds.",
          static_cast<double>(stats->dropped_points_total));
    m.One("edgeline_dead_letters", "gauge", "Entries in the dead-letter table.",
          static_cast<double>(stats->dead_letters));
    m.One("edgeline_queue_counted_bytes", "gauge", "Bytes EDGELINE_QUEUE_MAX_BYTES counts (stored batches and rows).",
          static_cast<double>(stats->counted_bytes));
    m.One("edgeline_queue_file_bytes", "gauge", "The queue file and its WAL on disk.",
          static_cast<double>(stats->file_bytes));
    if (options_.queue_max_bytes > 0) {
      m.One("edgeline_queue_max_bytes", "gauge", "EDGELINE_QUEUE_MAX_BYTES.",
            static_cast<double>(options_.queue_max_bytes));
      OutageCapacityInput in;
      in.max_bytes = options_.queue_max_bytes;
      in.full_policy = options_.queue_full_policy;
      in.counted_bytes = stats->counted_bytes;
      in.points = stats->points;
      in.refusing = probe_.ingest && probe_.ingest->commit_failing.load();
      if (auto state = queue_->AgentState(); state.ok()) {
        for (const auto& [key, value] : *state) {
          if (key == kStateIngestRate && !value.empty()) in.ingest_rate = std::strtod(value.c_str(), nullptr);
        }
      }
      const OutageCapacity capacity = ComputeOutageCapacity(in);
      if (in.ingest_rate) {
        m.One("edgeline_ingest_rate_points_per_second", "gauge", "Points committed per second, recently.",
              *in.ingest_rate);
      }
      if (capacity.bytes_per_point) {
        m.One("edgeline_queue_bytes_per_point", "gauge", "Counted bytes per held point, as measured.",
              *capacity.bytes_per_point);
      }
      if (capacity.holds_s || capacity.state == OutageCapacityState::kBoundApplies) {
        m.One("edgeline_queue_outage_capacity_seconds", "gauge",
              "How long the queue absorbs the current ingest rate before its bound applies (0: it applies now).",
              capacity.holds_s.value_or(0));
      }
    }
  }
  auto session_stats = queue_->MqttSessions();
  if (session_stats.ok()) {
    m.Family("edgeline_mqtt_inbound_qos2", "gauge",
             "QoS 2 messages received (PUBREC sent) and held in the queue file until stored.");
    for (const MqttSessionStats& s : *session_stats) {
      m.Sample("edgeline_mqtt_inbound_qos2", static_cast<double>(s.inbound_qos2), "session=\"" + Label(s.session) + "\"");
    }
    m.Family("edgeline_mqtt_duplicates_suppressed_total", "counter",
             "Broker redeliveries of messages already stored, acknowledged without storing them again.");
    for (const MqttSessionStats& s : *session_stats) {
      m.Sample("edgeline_mqtt_duplicates_suppressed_total", static_cast<double>(s.duplicates_suppressed),
               "session=\"" + Label(s.session) + "\"");
    }
  }
  auto sinks = queue_->SinkStatuses();
  if (sinks.ok()) {
    const int64_t now = clock_->WallNowNs();
    struct Family {
      const char* name;
      const char* type;
      const char* help;
      std::function<double(const SinkStatus&)> value;
    };
    const Family families[] = {
        {"edgeline_sink_sent_points_total", "counter", "Points delivered by the sink.",
         [](const SinkStatus& s) { return static_cast<double>(s.sent_points); }},
        {"edgeline_sink_dropped_points_total", "counter", "Points lost to the queue's bounds before the sink had them.",
         [](const SinkStatus& s) { return static_cast<double>(s.dropped_points); }},
        {"edgeline_sink_dead_lettered", "gauge", "Lines the sink isolated as rejected.",
         [](const SinkStatus& s) { return static_cast<double>(s.dead_lettered); }},
        {"edgeline_sink_pending_points", "gauge", "Points not yet delivered by the sink.",
         [](const SinkStatus& s) { return static_cast<double>(s.pending_points); }},
        {"edgeline_sink_oldest_pending_age_seconds", "gauge", "Age of the oldest batch the sink has not delivered.",
         [now](const SinkStatus& s) { return s.oldest_pending_ns > 0 ? (now - s.oldest_pending_ns) / 1e9 : 0.0; }},
        {"edgeline_sink_consecutive_failures", "gauge", "Failed attempts since the last success.",
         [](const SinkStatus& s) { return static_cast<double>(s.consecutive_failures); }},
        {"edgeline_sink_last_status_code", "gauge", "Last HTTP status of the sink (0 = none or not HTTP).",
         [](const SinkStatus& s) { return static_cast<double>(s.last_code); }},
        {"edgeline_sink_up", "gauge", "1 when the sink's last attempt succeeded.",
         [](const SinkStatus& s) { return s.state == Name(SinkState::kOk) ? 1.0 : 0.0; }},
    };
    for (const Family& f : families) {
      m.Family(f.name, f.type, f.help);
      for (const SinkStatus& s : *sinks) {
        if (!s.registered) continue;
        m.Sample(f.name, f.value(s), "sink=\"" + Label(s.sink) + "\",stream=\"" + Label(s.stream) + "\"");
      }
    }
  }
  if (auto state = queue_->ConsumerState(std::string(kDownsamplerSink)); state.ok() && !state->empty()) {
    if (auto summary = SummarizeDownsampleState(*state); summary.ok()) {
      int64_t stale = 0;
      for (const DeviceLiveness& d : summary->devices) stale += d.stale;
      const size_t listed = std::min(summary->devices.size(), kMaxListedDevices);
      m.One("edgeline_devices_tracked", "gauge", "Devices (downsampler groups) seen.",
            static_cast<double>(summary->devices.size()));
      m.One("edgeline_devices_stale", "gauge", "Devices whose alarm is stale (silent or offline).",
            static_cast<double>(stale));
      m.One("edgeline_devices_not_listed", "gauge",
            "Devices left out of the per-device series below (at most 10000 are listed, stale and longest silent first).",
            static_cast<double>(summary->devices.size() - listed));
      auto labels = [](const DeviceLiveness& d) {
        std::string device;
        for (const auto& [k, v] : d.tags) device += (device.empty() ? "" : ",") + k + "=" + v;
        return "measurement=\"" + Label(d.measurement) + "\",device=\"" + Label(device) + "\"";
      };
      m.Family("edgeline_device_last_seen_timestamp_seconds", "gauge",
               "When the device's newest point was received (Unix seconds).");
      for (size_t i = 0; i < listed; ++i) {
        const DeviceLiveness& d = summary->devices[i];
        m.Sample("edgeline_device_last_seen_timestamp_seconds", d.last_seen_ns / 1e9, labels(d));
      }
      m.Family("edgeline_device_stale", "gauge", "1 while the device's alarm is stale.");
      for (size_t i = 0; i < listed; ++i) {
        const DeviceLiveness& d = summary->devices[i];
        m.Sample("edgeline_device_stale", d.stale ? 1 : 0, labels(d));
      }
    }
  }
  m.One("edgeline_http_points_written_total", "counter", "Points committed through the HTTP write endpoints.",
        static_cast<double>(points_written_.load()));
  m.Family("edgeline_http_requests_total", "counter", "Requests to this endpoint by path and status code.");
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, count] : requests_) {
      m.Sample("edgeline_http_requests_total", static_cast<double>(count),
               "path=\"" + Label(key.first) + "\",code=\"" + std::to_string(key.second) + "\"");
    }
  }
  return m.str();
}

Status HttpApi::Start() {
  ASSIGN_OR_RETURN(auto address, ParseListenAddress(options_.listen));
  server_ = std::make_unique<httplib::Server>();
  httplib::Server& s = *server_;
  s.set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
  s.new_task_queue = [max = options_.max_connections, shed = options_.max_shed_connections] {
    return new ConnectionPool(max, shed, std::chrono::seconds(30));
  };
  s.set_keep_alive_timeout(options_.keep_alive_timeout_s);
  s.set_keep_alive_max_count(static_cast<size_t>(std::max(1, options_.keep_alive_max_requests)));
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    auto [status, body] = Health();
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(Metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  // A content reader, not a plain handler: httplib would parse a body sent as
  // application/x-www-form-urlencoded (curl's default) as a form and refuse it above 8 KiB.
  // InfluxDB ignores the content type; so do we. gzip is decoded by the reader.
  auto write = [this](bool v1) {
    return [this, v1](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      // The body's bytes count against max_inflight_body_bytes until the answer (after the
      // commit). Over capacity (the budget, or a connection over max_connections) the rest of the
      // body is read and dropped, so that the client reads the 503 and the connection stays sane.
      struct Held {
        HttpApi* api;
        int64_t bytes = 0;
        ~Held() { api->ReturnBodyBytes(bytes); }
      } held{this};
      std::string body;
      bool too_large = false;
      bool over_capacity = t_over_capacity;
      int64_t received = 0;
      const bool read = reader([&](const char* data, size_t length) {
        received += static_cast<int64_t>(length);
        if (received > options_.max_body_bytes) {
          too_large = true;
          return false;
        }
        if (over_capacity) return true;
        if (!TakeBodyBytes(static_cast<int64_t>(length), held.bytes)) {
          over_capacity = true;
          std::string().swap(body);
          ReturnBodyBytes(held.bytes);
          held.bytes = 0;
          return true;
        }
        held.bytes += static_cast<int64_t>(length);
        body.append(data, length);
        return true;
      });
      WriteResult r;
      const std::string target = req.get_param_value(v1 ? "db" : "bucket");
      // httplib refuses a declared length over the limit before reading (and sets 413 itself).
      if (too_large || (!read && res.status == 413)) {
        r = {413, ErrorBody("request too large", "body exceeds EDGELINE_HTTP_MAX_BODY")};
      } else if (!read) {
        r = {400, ErrorBody("invalid", "the request body could not be read (bad gzip?)")};
      } else if (over_capacity) {
        const std::string why = t_over_capacity ? "too many connections" : "too many writes in progress";
        const std::string after = std::to_string(options_.retry_after_s);
        r = {503, ErrorBody("unavailable", why + ", nothing was written: retry after " + after + " s")};
        res.set_header("Retry-After", after);
      } else if (!TokenMatches(req, options_.token, v1)) {
        r = {401, ErrorBody("unauthorized", "unauthorized access")};
      } else if (target.empty()) {
        r = {400, ErrorBody("invalid", v1 ? "database is required" : "bucket is required")};
      } else {
        r = Write("http/" + target, body, req.get_param_value("precision"));
      }
      res.status = r.status;
      if (!r.body.empty()) res.set_content(r.body, "application/json");
    };
  };
  s.Post("/api/v2/write", write(false));
  s.Post("/write", write(true));
  s.Get("/ping", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  // A handler's exception (a bug, or memory exhausted) becomes InfluxDB's JSON 500, logged and
  // counted, never httplib's empty 500. The write handlers commit last and build their answer
  // before committing, so an exception means nothing of the request was committed.
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    LOG_ERROR("http") << req.method << " " << PathLabel(req.path)
                      << ": internal error (nothing committed): " << Excerpt(what);
    res.status = 500;
    res.set_content(ErrorBody("internal error", "internal error, nothing was written: " + Excerpt(what)),
                    "application/json");
  });
  // Every answer is counted here, just before it is written: the handlers', the exception
  // handler's, and httplib's own (404, 413 above set_payload_max_length, 400 for a malformed
  // request, ...).
  // A connection over max_connections is answered, then closed: "Connection: close" asks the
  // client to close it (httplib keeps reading until it does).
  s.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (t_over_capacity) {
      if (!res.has_header("Connection")) res.set_header("Connection", "close");
      res.headers.erase("Keep-Alive");
    }
    Count(PathLabel(req.path), res.status);
  });
  // httplib 0.11 listens with a backlog of 5 (built into Debian's library): a burst of 40
  // connects overflowed it, and connections the kernel had completed with SYN cookies were reset
  // (the client's first request failed). Listening again on the bound socket raises it.
  socket_t listener = INVALID_SOCKET;
  s.set_socket_options([&listener](socket_t sock) {
    httplib::default_socket_options(sock);
    listener = sock;
  });
  port_ = address.second == 0 ? s.bind_to_any_port(address.first)
                              : (s.bind_to_port(address.first, address.second) ? address.second : -1);
  if (port_ <= 0) {
    server_.reset();
    return Status::Unavailable("cannot listen on " + options_.listen);
  }
  if (listener == INVALID_SOCKET || ::listen(listener, SOMAXCONN) != 0) {
    LOG_WARN("http") << "cannot raise the listen backlog: a burst of connections may see some reset";
  }
  // httplib's stop() does nothing before the accept loop runs, so Start returns only once it
  // runs (or has already ended): a Stop right after Start would otherwise join forever.
  listen_returned_ = false;
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    listen_returned_ = true;
  });
  while (!server_->is_running() && !listen_returned_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  LOG_INFO("http") << "listening on " << address.first << ":" << port_
                   << (options_.token.empty() ? " (no token: writes are open to local clients)" : "");
  return Status::Ok();
}

void HttpApi::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace edgeline
