#include "replication/influx_writer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "common/log.h"
#include "replication/gzip.h"

namespace edgeline {

namespace {

constexpr size_t kMaxMessageBytes = 1024;

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v =
        (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Cuts at most `max` bytes without splitting a UTF-8 sequence.
std::string TruncateUtf8(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t end = max;
  while (end > 0 && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end)) + "...";
}

bool IsSuccess(int status) { return status >= 200 && status < 300; }
bool IsLineRejection(int status) { return status == 400 || status == 422; }

// InfluxDB's 400s about the request rather than a line (v1, v2 and v3 wordings). Bisecting
// those would repeat the same 400 on every slice and dead-letter every line.
bool IsRequestLevelError(std::string_view message) {
  static constexpr std::string_view kPhrases[] = {"gzip",
                                                  "content-encoding",
                                                  "content encoding",
                                                  "precision",
                                                  "request body",
                                                  "unsupported media",
                                                  "invalid header",
                                                  "org and bucket",
                                                  "database is required",
                                                  "missing required parameter"};
  // The server quotes the offending line ('...'); words inside it say nothing about the request.
  std::string lower(message);
  const size_t open = lower.find('\'');
  const size_t close = lower.rfind('\'');
  if (open != std::string::npos && close > open) lower.erase(open, close - open + 1);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (std::string_view p : kPhrases) {
    if (lower.find(p) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::string_view WriteOutcomeKindName(WriteOutcomeKind kind) {
  switch (kind) {
    case WriteOutcomeKind::kOk: return "ok";
    case WriteOutcomeKind::kAuthFailed: return "auth-failed";
    case WriteOutcomeKind::kNotFound: return "not-found";
    case WriteOutcomeKind::kRetryLater: return "throttled";
    case WriteOutcomeKind::kUnavailable: return "offline";
    case WriteOutcomeKind::kBadRequest: return "bad-request";
  }
  return "unknown";
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

int64_t ParseRetryAfterNs(std::string_view value, int64_t wall_now_ns) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.remove_suffix(1);
  if (value.empty()) return 0;
  if (std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
    // Anything beyond a day is clamped here; the replicator caps it further.
    constexpr int64_t kMaxSeconds = 86400;
    if (value.size() > 6) return kMaxSeconds * kNsPerSec;
    return std::min<int64_t>(std::stoll(std::string(value)), kMaxSeconds) * kNsPerSec;
  }
  // IMF-fixdate, then the two obsolete forms RFC 9110 says recipients must accept.
  static constexpr const char* kFormats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                             "%a %b %d %H:%M:%S %Y"};
  const std::string text(value);
  for (const char* format : kFormats) {
    std::tm tm{};
    const char* end = strptime(text.c_str(), format, &tm);
    if (end == nullptr || *end != '\0') continue;
    const int64_t at_ns = static_cast<int64_t>(timegm(&tm)) * kNsPerSec;
    return std::max<int64_t>(0, at_ns - wall_now_ns);
  }
  return 0;
}

std::string InfluxErrorMessage(std::string_view body) {
  const nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_object()) {
    for (const char* key : {"error", "message"}) {
      auto it = json.find(key);
      if (it != json.end() && it->is_string()) return TruncateUtf8(it->get<std::string>(), kMaxMessageBytes);
    }
  }
  std::string_view raw = body;
  while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) raw.remove_suffix(1);
  return TruncateUtf8(raw, kMaxMessageBytes);
}

InfluxWriter::InfluxWriter(const InfluxConfig& config, HttpTransport* transport, const Clock* clock,
                           InfluxTarget target)
    : config_(config), transport_(transport), clock_(clock), target_(std::move(target)) {
  if (target_.bucket_or_db.empty()) {
    target_.bucket_or_db = config_.api == InfluxApi::kV2 ? config_.bucket : config_.database;
  }
  if (target_.retention_policy.empty()) target_.retention_policy = config_.retention_policy;

  std::string base = config_.url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  base_url_ = base;
  switch (config_.api) {
    case InfluxApi::kV1:
      url_ = base + "/write?db=" + UrlEncode(target_.bucket_or_db);
      if (!target_.retention_policy.empty()) url_ += "&rp=" + UrlEncode(target_.retention_policy);
      url_ += "&precision=n";  // 1.x spells nanoseconds "n"
      break;
    case InfluxApi::kV2:
      url_ = base + "/api/v2/write?org=" + UrlEncode(config_.org) + "&bucket=" + UrlEncode(target_.bucket_or_db) +
             "&precision=ns";
      break;
    case InfluxApi::kV3:
      url_ = base + "/api/v3/write_lp?db=" + UrlEncode(target_.bucket_or_db) + "&precision=nanosecond";
      break;
  }
}

std::string InfluxWriter::TargetDescription() const {
  if (config_.api == InfluxApi::kV2) return "bucket " + target_.bucket_or_db;
  std::string d = "database " + target_.bucket_or_db;
  if (config_.api == InfluxApi::kV1 && !target_.retention_policy.empty()) d += "." + target_.retention_policy;
  return d;
}

std::string InfluxWriter::Sanitize(std::string_view text) const {
  // Servers and proxies do not normally echo credentials, but an error text ends up in logs
  // and the status table, so mask any that appear anyway.
  std::string out;
  out.reserve(text.size());
  for (char c : text) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  std::vector<std::string> secrets = {config_.token, config_.password};
  if (!config_.username.empty()) secrets.push_back(Base64(config_.username + ":" + config_.password));
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    for (size_t pos = out.find(secret); pos != std::string::npos; pos = out.find(secret, pos + 8)) {
      out.replace(pos, secret.size(), "********");
    }
  }
  return TruncateUtf8(out, kMaxMessageBytes);
}

HttpRequest InfluxWriter::BuildRequest(const std::vector<std::string_view>& lines, size_t begin, size_t end,
                                       Status* status) const {
  HttpRequest request;
  request.method = "POST";
  request.url = url_;
  std::string body;
  size_t size = 0;
  for (size_t i = begin; i < end; ++i) size += lines[i].size() + 1;
  body.reserve(size);
  for (size_t i = begin; i < end; ++i) {
    body += lines[i];
    body += '\n';
  }
  request.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  switch (config_.api) {
    case InfluxApi::kV1:
      if (!config_.username.empty()) {
        request.headers.emplace_back("Authorization", "Basic " + Base64(config_.username + ":" + config_.password));
      } else if (!config_.token.empty()) {
        // InfluxDB 2.x's v1 compatibility endpoint takes a token.
        request.headers.emplace_back("Authorization", "Token " + config_.token);
      }
      break;
    case InfluxApi::kV2:
      if (!config_.token.empty()) request.headers.emplace_back("Authorization", "Token " + config_.token);
      break;
    case InfluxApi::kV3:
      if (!config_.token.empty()) request.headers.emplace_back("Authorization", "Bearer " + config_.token);
      break;
  }
  if (config_.gzip) {
    Result<std::string> compressed = GzipCompress(body);
    if (!compressed.ok()) {
      *status = compressed.status();
      return request;
    }
    request.headers.emplace_back("Content-Encoding", "gzip");
    request.body = std::move(compressed).value();
  } else {
    request.body = std::move(body);
  }
  *status = Status::Ok();
  return request;
}

InfluxWriter::SliceResult InfluxWriter::WriteSlice(const std::vector<std::string_view>& lines, size_t begin, size_t end,
                                                   WriteOutcome* outcome) {
  Status build_status;
  HttpRequest request = BuildRequest(lines, begin, end, &build_status);
  if (!build_status.ok()) {
    outcome->kind = WriteOutcomeKind::kUnavailable;
    outcome->http_status = 0;
    outcome->error = Sanitize(build_status.message());
    return SliceResult::kAbort;
  }
  ++outcome->requests;
  outcome->bytes_sent += static_cast<int64_t>(request.body.size());
  Result<HttpResponse> response = transport_->Send(request);
  if (!response.ok()) {
    outcome->kind = WriteOutcomeKind::kUnavailable;
    outcome->http_status = 0;
    outcome->error = Sanitize(response.status().message());
    return SliceResult::kAbort;
  }
  const int status = response->status;
  if (outcome->requests == 1) outcome->http_status = status;
  if (IsSuccess(status)) {
    outcome->accepted += static_cast<int64_t>(end - begin);
    if (saw_413_) outcome->lines_fitting_413 = std::max<int64_t>(outcome->lines_fitting_413, end - begin);
    return SliceResult::kDone;
  }
  if (status == 404 && config_.api == InfluxApi::kV1 && config_.create_database && !outcome->created_database) {
    if (CreateDatabase(outcome)) return WriteSlice(lines, begin, end, outcome);
  }
  if (status == 413) saw_413_ = true;
  const std::string server_message = InfluxErrorMessage(response->body);
  if (status == 400 && outcome->requests == 1 && IsRequestLevelError(server_message)) {
    outcome->kind = WriteOutcomeKind::kBadRequest;
    outcome->http_status = status;
    outcome->error = Sanitize("HTTP 400 about the request, not a line: " + server_message);
    return SliceResult::kAbort;
  }
  if (IsLineRejection(status) || status == 413) {
    if (end - begin == 1) {
      std::string reason = status == 413 ? "line too large for the server (HTTP 413)" : server_message;
      if (reason.empty()) reason = "HTTP " + std::to_string(status);
      outcome->rejected.push_back({std::string(lines[begin]), Sanitize(reason)});
      return SliceResult::kDone;
    }
    const size_t mid = begin + (end - begin) / 2;
    if (WriteSlice(lines, begin, mid, outcome) == SliceResult::kAbort) return SliceResult::kAbort;
    return WriteSlice(lines, mid, end, outcome);
  }

  outcome->http_status = status;
  const std::string& message = server_message;
  outcome->error = Sanitize("HTTP " + std::to_string(status) + (message.empty() ? "" : ": " + message));
  if (status == 401 || status == 403) {
    outcome->kind = WriteOutcomeKind::kAuthFailed;
  } else if (status == 404) {
    outcome->kind = WriteOutcomeKind::kNotFound;
  } else if (status == 429 || status == 503) {
    outcome->kind = WriteOutcomeKind::kRetryLater;
    outcome->retry_after_ns = ParseRetryAfterNs(response->Header("retry-after"), clock_->WallNowNs());
  } else {
    outcome->kind = WriteOutcomeKind::kUnavailable;
  }
  return SliceResult::kAbort;
}

bool InfluxWriter::CreateDatabase(WriteOutcome* outcome) {
  outcome->created_database = true;  // one try per Write, whatever the answer
  HttpRequest request;
  request.method = "POST";
  request.url = base_url_ + "/query";
  request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  if (!config_.username.empty()) {
    request.headers.emplace_back("Authorization", "Basic " + Base64(config_.username + ":" + config_.password));
  }
  std::string name = target_.bucket_or_db;
  std::string quoted;
  for (char c : name) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  request.body = "q=" + UrlEncode("CREATE DATABASE \"" + quoted + "\"");
  ++outcome->requests;
  Result<HttpResponse> response = transport_->Send(request);
  const bool created = response.ok() && IsSuccess(response->status);
  if (created) {
    LOG_INFO("replication") << "created database " << target_.bucket_or_db << " (EDGELINE_INFLUX_CREATE_DB=true)";
  } else {
    LOG_WARN("replication") << "could not create database " << target_.bucket_or_db << ": "
                            << Sanitize(response.ok() ? "HTTP " + std::to_string(response->status)
                                                      : response.status().message());
  }
  return created;
}

WriteOutcome InfluxWriter::Write(const std::vector<std::string_view>& lines) {
  WriteOutcome outcome;
  saw_413_ = false;
  if (lines.empty()) return outcome;
  if (WriteSlice(lines, 0, lines.size(), &outcome) == SliceResult::kAbort) {
    outcome.accepted = 0;
    outcome.rejected.clear();
    return outcome;
  }
  if (!outcome.rejected.empty()) {
    outcome.error = std::to_string(outcome.rejected.size()) + " line(s) rejected: " + outcome.rejected.front().reason;
  }
  return outcome;
}

}  // namespace edgeline
