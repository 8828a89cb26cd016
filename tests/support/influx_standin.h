// InfluxStandin: a small fault-injecting InfluxDB write endpoint (v1 /write, v2 /api/v2/write,
// v3 /api/v3/write_lp; GET /ping and /health) over real HTTP/1.1 on a free loopback port. It exists because a real
// influxd cannot be made to fail on cue (429/503 with Retry-After, 413, 400 for chosen lines,
// slow answers, connection resets); end-to-end cases still run against the real influxd 1.6.
// It owns its sockets and threads (one accept thread, one per connection), stopped by the
// destructor. Thread-safe: fault setters and observers may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

namespace edgeline::testing {

struct InfluxStandinConfig {
  std::string token = "standin-token";           // v2 "Token <t>", v3 "Bearer <t>"
  std::string org = "edge-org";                  // v2 org
  std::vector<std::string> buckets = {"kafka"};  // v2 buckets and v1/v3 databases
  std::string username;                          // v1: when set, Basic auth is required
  std::string password;
};

// One request as the stand-in saw it.
struct StandinRequest {
  std::string method;
  std::string target;                                        // path + query, as sent
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  size_t body_bytes = 0;                                     // after gzip decoding
  int status = -1;     // answered status; 0 = connection reset instead; -1 = not answered yet
  int connection = 0;  // 1-based connection number (keep-alive: several requests share one)
};

class InfluxStandin {
 public:
  // Listens on 127.0.0.1 (ListenOnLoopback: bound and listening before the port is known, so no
  // race with parallel tests) and starts serving.
  static Result<std::unique_ptr<InfluxStandin>> Start(InfluxStandinConfig config = {});
  ~InfluxStandin();  // closes every connection, interrupts delays, joins all threads
  InfluxStandin(const InfluxStandin&) = delete;
  InfluxStandin& operator=(const InfluxStandin&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  // Faults, checked in this order after routing, auth and target checks, gzip decoding and
  // line-protocol parsing (an unparsable line is a 400 naming it, nothing stored):
  // 0. SetDown(status): every request, /ping and /health included, answers `status` (a server
  //    that fails everything; 0 = off).
  void SetDown(int status);
  // 1. A request with a line containing `substring` answers `status` (400 or 422) with
  //    `message` (default: names the line); nothing from that request is stored.
  void RejectLinesContaining(std::string substring, int status = 400, std::string message = "");
  // 1b. The same for a "poison" line: a request holding it answers `status` (500 like influxd
  //    1.6's "engine: unable to parse bool value"), every time; the health endpoint still answers.
  void FailLinesContaining(std::string substring, int status = 500,
                           std::string message = "engine: unable to parse bool value") {
    RejectLinesContaining(std::move(substring), status, std::move(message));
  }
  // 2. Decoded bodies larger than `bytes` answer 413 (0 = no limit).
  void SetMaxBodyBytes(size_t bytes);
  // 3. The next `n` requests answer `status` with `retry_after` verbatim as Retry-After ("" = none).
  void FailNext(int n, int status, std::string retry_after = "");
  // 4. Every answer waits this long first (interrupted by the destructor).
  void SetDelayMs(int64_t ms);
  // 5. The next `n` requests get a TCP RST (SO_LINGER 0) instead of an answer; nothing stored.
  void ResetNext(int n);
  void ClearFaults();

  // Observation.
  std::vector<std::string> Lines() const;  // every stored line, in arrival order
  int RequestCount() const;
  std::vector<StandinRequest> Requests() const;
  void Clear();  // forgets lines and requests (faults stay)

 private:
  struct Reply {
    int status = 204;
    std::string body;
    std::string retry_after;
  };
  struct Connection {
    int fd = -1;  // guarded by mu_; -1 once the connection thread closed it
    std::thread thread;
  };
  struct RejectRule {
    std::string substring;
    int status = 400;
    std::string message;
  };

  enum class Next { kContinue, kClose, kReset };

  InfluxStandin(int listen_fd, int port, InfluxStandinConfig config);
  void AcceptLoop();
  void Serve(Connection* connection, int number);
  // Reads one request from `fd` (leftover bytes stay in *buffer), answers it, says what next.
  Next ServeOne(int fd, int number, std::string* buffer);
  // Decides the answer for one complete request; fills *lines with the lines to store on 2xx.
  Reply Handle(const StandinRequest& request, const std::string& raw_body, std::vector<std::string>* lines,
               size_t* decoded_bytes);

  const InfluxStandinConfig config_;
  const int listen_fd_;
  const int port_;
  std::thread accept_thread_;

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;                                 // guarded by mu_
  std::vector<std::unique_ptr<Connection>> connections_;  // guarded by mu_
  std::vector<RejectRule> reject_rules_;                  // guarded by mu_
  size_t max_body_bytes_ = 0;                             // guarded by mu_
  int down_status_ = 0;                                   // guarded by mu_
  int fail_next_ = 0;                                     // guarded by mu_
  int fail_status_ = 0;                                   // guarded by mu_
  std::string fail_retry_after_;                          // guarded by mu_
  int64_t delay_ms_ = 0;                                  // guarded by mu_
  int reset_next_ = 0;                                    // guarded by mu_
  std::vector<std::string> lines_;                        // guarded by mu_
  std::vector<StandinRequest> requests_;                  // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_; bumped by Clear() so in-flight requests skip their record
};

}  // namespace edgeline::testing
