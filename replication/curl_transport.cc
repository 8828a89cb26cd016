// HttpTransport over one libcurl easy handle. The handle is reused across requests so libcurl
// keeps the connection alive (one connection per sink). Not thread-safe, like the interface.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "replication/http_transport.h"

namespace edgeline {

namespace {

// InfluxDB error bodies are small; anything bigger is not worth keeping in memory.
constexpr size_t kMaxBodyCapture = 64 * 1024;

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

long NsToMs(int64_t ns) {
  // 0 would mean "no timeout" to libcurl; a configured timeout is never infinite.
  return static_cast<long>(std::max<int64_t>(1, ns / 1'000'000));
}

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t n = size * nmemb;
  if (body->size() < kMaxBodyCapture) body->append(data, std::min(n, kMaxBodyCapture - body->size()));
  return n;  // drain the rest so the connection stays reusable
}

size_t WriteHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* headers = static_cast<std::vector<std::pair<std::string, std::string>>*>(user);
  const size_t n = size * nmemb;
  std::string_view line(data, n);
  // A new status line (after 100 Continue, for instance) starts a new header block.
  if (line.starts_with("HTTP/")) {
    headers->clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() &&
         (value.back() == '\r' || value.back() == '\n' || value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  headers->emplace_back(std::move(name), std::string(value));
  return n;
}

class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(const HttpTransportOptions& options) : options_(options) {
    GlobalInitOnce();
    curl_ = curl_easy_init();
  }
  ~CurlTransport() override {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
  }
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  Result<HttpResponse> Send(const HttpRequest& request) override {
    if (curl_ == nullptr) return Status::Unavailable("curl: could not create a handle");
    // reset() clears options but keeps the connection cache, so keep-alive survives.
    curl_easy_reset(curl_);
    HttpResponse response;
    error_[0] = '\0';

    curl_slist* header_list = nullptr;
    for (const auto& [name, value] : request.headers) {
      header_list = curl_slist_append(header_list, (name + ": " + value).c_str());
    }
    // Some servers delay large POSTs by a second waiting for our "Expect: 100-continue".
    header_list = curl_slist_append(header_list, "Expect:");

    curl_easy_setopt(curl_, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, NsToMs(options_.timeout_ns));
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, NsToMs(options_.connect_timeout_ns));
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, options_.tls_skip_verify ? 0L : 1L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, options_.tls_skip_verify ? 0L : 2L);
    if (!options_.ca_file.empty()) curl_easy_setopt(curl_, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, error_);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, header_list);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &WriteBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &response.body);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &WriteHeader);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &response.headers);
    if (request.method == "GET") {
      curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
    } else {
      if (request.method != "POST") curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    }

    const CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(header_list);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, nullptr);
    if (rc != CURLE_OK) {
      // The error buffer names the host or the failing step, never request headers.
      std::string message = error_[0] != '\0' ? error_ : curl_easy_strerror(rc);
      return Status::Unavailable("http: " + message);
    }
    long code = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code);
    response.status = static_cast<int>(code);
    return response;
  }

 private:
  HttpTransportOptions options_;
  CURL* curl_ = nullptr;
  char error_[CURL_ERROR_SIZE] = {};
};

}  // namespace

std::unique_ptr<HttpTransport> NewCurlTransport(const HttpTransportOptions& options) {
  return std::make_unique<CurlTransport>(options);
}

}  // namespace edgeline
