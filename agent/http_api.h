// HttpApi: the agent's local HTTP endpoint (cpp-httplib from Debian: one header-style library
// with a thread pool and gzip request decoding, and no framework to carry). Bound to loopback by
// default (EDGELINE_HTTP_LISTEN):
//   GET  /health          200 + JSON of component states; 503 when the queue cannot be written
//   GET  /metrics         Prometheus text format (docs/METRICS.md)
//   POST /api/v2/write    line protocol like InfluxDB 2 (org, bucket, precision, Token auth)
//   POST /write           line protocol like InfluxDB 1.x (db, precision, u/p or Token auth)
// Writes answer 204 only after the points are committed to the queue (the group commit), so a
// client that got 204 can forget its data. Partial-write rule (InfluxDB's): the lines that parse
// are committed and the others are named in a 400 {"code":"invalid","message":"partial write:
// line N: unable to parse '<excerpt>': <reason>; ... dropped=K"} (no "partial write:" when no line
// was good). With a FieldTypeGuard, a field of the wrong type is refused the same way: the rest of
// its point is committed, the refused fields become a dead letter, and the 400 names the line
// (dropped= counts only lines of which nothing was written); excerpts are escaped (\xNN for bytes that are not UTF-8 or are control characters).
// InfluxDB clients do not retry a 4xx. A 5xx means nothing of the request was committed: all its
// chunks (max_lines_per_commit lines each, one queue batch each) are committed in one
// transaction (GroupCommitter::SubmitAll), 503 when that fails; a handler's exception answers a
// JSON 500 (logged) and happens before any commit. 401 bad token, 413 body too large, 400 bad
// precision/bucket/body. Lines without a timestamp get the request's receive time truncated to
// its precision (ns, us/u, ms, s, and m, h), as InfluxDB does. Every answer, httplib's own
// included, is counted in edgeline_http_requests_total{path,code} (unknown paths as "other").
// Concurrency (issue 16): httplib's own pool is a fixed 8 threads, each pinned to a connection
// for as long as it stays open (keep-alive waits included), and further connections waited
// unanswered in its queue: 40 keep-alive clients hit their 10 s timeouts and retried requests
// that were committed anyway. Here each connection gets a thread of its own, made when needed, up
// to max_connections (a thread idle for 30 s ends). A connection over that is answered on one of
// a few extra threads: a write gets 503 with Retry-After (its body read and discarded, nothing
// committed), every answer "Connection: close"; when those are busy too, the connection waits
// for the first of them to be free (a client reads its 503 and closes: milliseconds). Memory is bounded by max_inflight_body_bytes: the decoded bodies held at once by
// requests being read, parsed or waiting for their commit; a write that would go over gets 503
// with Retry-After, unless no other request holds any (so a body up to max_body_bytes always
// gets through on its own). Concurrent writes are committed together by the GroupCommitter. The
// listen backlog is SOMAXCONN (httplib's built-in 5 reset connections of a burst).
// bench/http_burst.sh measures it with the InfluxDB JavaScript client.
// Borrows the queue, committer, clock and guard; the state getters are called from server threads.
// Start/Stop from one control thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "ingest/field_type_guard.h"
#include "ingest/group_committer.h"
#include "storage/queue.h"

namespace httplib {
class Server;
}

namespace edgeline {

struct HttpApiOptions {
  std::string listen = "127.0.0.1:8087";  // host:port
  std::string token;                      // empty = no auth
  int64_t max_body_bytes = 10 << 20;      // decoded body; larger -> 413
  int64_t max_lines_per_commit = 5000;    // lines per queue batch; a body's batches commit together
  int max_connections = 64;               // served at once, a thread each; more get 503 (above)
  int max_shed_connections = 8;           // threads that answer connections over max_connections
  int64_t max_inflight_body_bytes = 32 << 20;  // decoded bodies held at once; more -> 503
  int retry_after_s = 1;                  // Retry-After of those 503s
  int keep_alive_timeout_s = 5;           // an idle keep-alive connection is closed after this
  int keep_alive_max_requests = 1000;     // requests on one connection before it is closed
  // The queue's bound and policy, for the outage capacity in /metrics (0 = not shown).
  int64_t queue_max_bytes = 0;
  QueueFullPolicy queue_full_policy = QueueFullPolicy::kDropOldest;
};

// What /health and /metrics need from the rest of the agent, read on request.
struct AgentProbe {
  std::function<int()> mqtt_sessions;
  std::function<int()> mqtt_connected;
  const IngestCounters* ingest = nullptr;
  // True while the agent cannot write its own state to the queue file (a disk that fails
  // even when no message arrives).
  std::function<bool()> state_write_failing;
};

class HttpApi {
 public:
  // `field_types` may be null (no field-type checks).
  HttpApi(HttpApiOptions options, Queue* queue, GroupCommitter* committer, const Clock* clock, AgentProbe probe,
          FieldTypeGuard* field_types = nullptr);
  ~HttpApi();  // Stop()

  // Binds and starts serving on its own thread. Fails when the address cannot be bound.
  Status Start();
  void Stop();
  int port() const { return port_; }

  // The pieces, public for tests. Prometheus text and the health JSON (+ HTTP status).
  std::string Metrics();
  std::pair<int, nlohmann::json> Health();
  // Decoded body bytes held by write requests now (for tests).
  int64_t inflight_body_bytes();

 private:
  struct WriteResult {
    int status = 204;
    std::string body;  // InfluxDB-style JSON error, empty on 204
  };
  WriteResult Write(const std::string& topic, std::string_view body, std::string_view precision);
  void Count(const std::string& path, int status);
  // Takes `n` more body bytes for a request that holds `held`: false when that would go over
  // max_inflight_body_bytes and some other request holds bytes too.
  bool TakeBodyBytes(int64_t n, int64_t held);
  void ReturnBodyBytes(int64_t n);

  HttpApiOptions options_;
  Queue* queue_;
  GroupCommitter* committer_;
  const Clock* clock_;
  AgentProbe probe_;
  FieldTypeGuard* field_types_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  int port_ = 0;

  std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;  // (path, status) -> count; mu_
  std::atomic<int64_t> points_written_{0};

  std::mutex body_mu_;
  int64_t inflight_body_bytes_ = 0;  // body_mu_
};

}  // namespace edgeline
