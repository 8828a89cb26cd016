// HttpTransport: one HTTP/1.1 connection's worth of request/response, injected so the
// InfluxDB writer can be tested without a network. An implementation keeps its connection
// alive between requests (one per sink). Not thread-safe: one owner thread per instance.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace edgeline {

struct HttpRequest {
  std::string method = "POST";
  std::string url;                                           // full URL incl. query
  std::vector<std::pair<std::string, std::string>> headers;  // may contain secrets: never log
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string Header(std::string_view name) const;  // "" when absent
};

struct HttpTransportOptions {
  int64_t timeout_ns = 30'000'000'000;
  int64_t connect_timeout_ns = 5'000'000'000;
  bool tls_skip_verify = false;
  std::string ca_file;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // A response of any status is OK here; a Status error means no response (connection refused,
  // timeout, reset, DNS): kUnavailable, with a message free of secrets.
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
};

std::unique_ptr<HttpTransport> NewCurlTransport(const HttpTransportOptions& options);

}  // namespace edgeline
