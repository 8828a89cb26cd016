#include "replication/influx_writer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <regex>

#include "common/field_types.h"
#include "common/log.h"
#include "common/strings.h"
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
  std::string lower = Lower(message);
  const size_t open = lower.find('\'');
  const size_t close = lower.rfind('\'');
  if (open != std::string::npos && close > open) lower.erase(open, close - open + 1);
  for (std::string_view p : kPhrases) {
    if (lower.find(p) != std::string::npos) return true;
  }
  return false;
}

// Throttling, never bisected: the server asks us to slow down.
bool IsThrottling(int status) { return status == 429 || status == 503; }
// A 5xx that a single line can cause (influxd 1.6 answers 500 to some lines, and 500 after a
// handler panic).
bool IsPoisonCandidate(int status) { return status >= 500 && status < 600 && status != 503; }

// A 5xx body that names a condition of the server rather than of the request: never evidence
// against a line.
bool NamesServerCondition(std::string_view message) {
  static constexpr std::string_view kPhrases[] = {"timeout",
                                                  "timed out",
                                                  "no space",
                                                  "out of memory",
                                                  "cache-max-memory-size",
                                                  "cache maximum memory",
                                                  "max-concurrent",
                                                  "too many",
                                                  "shutting down",
                                                  "shutdown",
                                                  "not open",
                                                  "closed",
                                                  "unavailable",
                                                  "hinted handoff",
                                                  "queue is full",
                                                  "overloaded",
                                                  "disk",
                                                  "read-only",
                                                  "readonly"};
  const std::string lower = Lower(message);
  for (std::string_view p : kPhrases) {
    if (lower.find(p) != std::string::npos) return true;
  }
  return false;
}

// A server's name for a column type (v1/v2 influxql names, IOx names, v3 iox::column_type).
std::optional<FieldType> FieldTypeFromServerName(std::string_view name) {
  if (StartsWithIgnoreCase(name, "field::")) name.remove_prefix(7);
  return FieldTypeFromName(name);
}

// Go's %q and \"%s\": undo \" and \\.
std::string GoUnquote(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\\' || s[i + 1] == '\'')) ++i;
    out += s[i];
  }
  return out;
}

struct ParsedConflict {
  std::string measurement;  // empty: not named
  std::string field;
  std::optional<FieldType> server_type;
  bool server_type_named = false;  // false: the column is a tag/time: any field value conflicts
  std::string text;                // the message it came from
};

void ParseConflictText(const std::string& text, const std::string& measurement_hint, std::vector<ParsedConflict>* out) {
  // v1 tsdb/shard.go and v2: field type conflict: input field "f" on measurement "m" is type
  // float, already exists as type string (several may follow one another).
  static const std::regex kV1(
      R"re(input field "((?:[^"\\]|\\.)*)" on measurement "((?:[^"\\]|\\.)*)" is type ([A-Za-z0-9]+), already exists as type ([A-Za-z0-9]+))re");
  // Older 1.x meta wording without the measurement.
  static const std::regex kV1Old(
      R"re(input field "((?:[^"\\]|\\.)*)" is type [^,]+, already exists as type ([A-Za-z0-9]+))re");
  // v3 (influxdb3): invalid column type for column 'f', expected iox::column_type::field::string,
  // got iox::column_type::field::float.
  static const std::regex kV3(
      R"re(invalid column type for column '((?:[^'\\]|\\.)*)', expected iox::column_type::([a-z:]+), got iox::column_type::([a-z:]+))re");
  // IOx (Cloud Serverless/Dedicated): schema conflict: table m, column f is type string but write
  // has type f64.
  static const std::regex kIox(
      R"re((?:table ([^,\s]+), )?column ([^\s,]+) is type ([a-z0-9]+) but write has type ([a-z0-9]+))re");
  for (std::sregex_iterator it(text.begin(), text.end(), kV1), end; it != end; ++it) {
    auto type = FieldTypeFromServerName((*it)[4].str());
    out->push_back({GoUnquote((*it)[2]), GoUnquote((*it)[1]), type, type.has_value(), text});
  }
  if (out->empty()) {
    for (std::sregex_iterator it(text.begin(), text.end(), kV1Old), end; it != end; ++it) {
      auto type = FieldTypeFromServerName((*it)[2].str());
      out->push_back({measurement_hint, GoUnquote((*it)[1]), type, type.has_value(), text});
    }
  }
  for (std::sregex_iterator it(text.begin(), text.end(), kV3), end; it != end; ++it) {
    auto type = FieldTypeFromServerName((*it)[2].str());
    out->push_back({measurement_hint, GoUnquote((*it)[1]), type, type.has_value(), text});
  }
  for (std::sregex_iterator it(text.begin(), text.end(), kIox), end; it != end; ++it) {
    auto type = FieldTypeFromServerName((*it)[3].str());
    std::string table = (*it)[1];
    out->push_back({table.empty() ? measurement_hint : table, (*it)[2], type, type.has_value(), text});
  }
}

std::vector<ParsedConflict> ParseConflicts(std::string_view body) {
  std::vector<ParsedConflict> out;
  const nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    ParseConflictText(std::string(body), "", &out);
    return out;
  }
  for (const char* key : {"error", "message"}) {
    auto it = json.find(key);
    if (it != json.end() && it->is_string()) ParseConflictText(it->get<std::string>(), "", &out);
  }
  // v3: one entry per refused line: error_message, line_number, original_line.
  auto data = json.find("data");
  if (data != json.end() && data->is_array()) {
    for (const auto& entry : *data) {
      if (!entry.is_object()) continue;
      auto message = entry.find("error_message");
      if (message == entry.end() || !message->is_string()) continue;
      std::string measurement;
      auto original = entry.find("original_line");
      if (original != entry.end() && original->is_string()) {
        Result<Point> point = ParseLine(original->get<std::string>());
        if (point.ok()) measurement = point->measurement;
      }
      ParseConflictText(message->get<std::string>(), measurement, &out);
    }
  }
  return out;
}

}  // namespace

std::vector<LearnedFieldType> ParseFieldTypeConflicts(std::string_view body) {
  std::vector<LearnedFieldType> out;
  for (const ParsedConflict& c : ParseConflicts(body)) {
    if (c.measurement.empty() || !c.server_type) continue;
    LearnedFieldType learned{c.measurement, c.field, *c.server_type};
    if (std::find(out.begin(), out.end(), learned) == out.end()) out.push_back(std::move(learned));
  }
  return out;
}

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

void InfluxWriter::AddAuth(HttpRequest* request) const {
  switch (config_.api) {
    case InfluxApi::kV1:
      if (!config_.username.empty()) {
        request->headers.emplace_back("Authorization", "Basic " + Base64(config_.username + ":" + config_.password));
      } else if (!config_.token.empty()) {
        // InfluxDB 2.x's v1 compatibility endpoint takes a token.
        request->headers.emplace_back("Authorization", "Token " + config_.token);
      }
      break;
    case InfluxApi::kV2:
      if (!config_.token.empty()) request->headers.emplace_back("Authorization", "Token " + config_.token);
      break;
    case InfluxApi::kV3:
      if (!config_.token.empty()) request->headers.emplace_back("Authorization", "Bearer " + config_.token);
      break;
  }
}

Result<std::string> InfluxWriter::EncodeBody(const std::vector<std::string_view>& lines) const {
  std::string body;
  size_t size = 0;
  for (std::string_view line : lines) size += line.size() + 1;
  body.resize(size);
  char* out = body.data();
  for (std::string_view line : lines) {
    out = std::copy(line.begin(), line.end(), out);
    *out++ = '\n';
  }
  if (!config_.gzip) return body;
  return GzipCompress(body);
}

HttpRequest InfluxWriter::RequestWithBody(std::string body) const {
  HttpRequest request;
  request.method = "POST";
  request.url = url_;
  request.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  AddAuth(&request);
  if (config_.gzip) request.headers.emplace_back("Content-Encoding", "gzip");
  request.body = std::move(body);
  return request;
}

HttpRequest InfluxWriter::BuildRequest(const std::vector<std::string_view>& lines, Status* status) const {
  Result<std::string> body = EncodeBody(lines);
  if (!body.ok()) {
    *status = body.status();
    return HttpRequest{};
  }
  *status = Status::Ok();
  return RequestWithBody(std::move(body).value());
}

bool InfluxWriter::HealthOk(WriteOutcome* outcome) {
  HttpRequest request;
  request.method = "GET";
  request.url = base_url_ + (config_.api == InfluxApi::kV2 ? "/health" : "/ping");
  AddAuth(&request);
  ++outcome->health_probes;
  Result<HttpResponse> response = transport_->Send(request);
  return response.ok() && IsSuccess(response->status);
}

InfluxWriter::SliceResult InfluxWriter::Abort(WriteOutcomeKind kind, int status, const std::string& message,
                                              WriteOutcome* outcome) {
  outcome->kind = kind;
  outcome->http_status = status;
  outcome->error = Sanitize(message);
  return SliceResult::kAbort;
}

bool InfluxWriter::LearnConflicts(const HttpResponse& response, WriteOutcome* outcome) {
  bool learned = false;
  for (ParsedConflict& parsed : ParseConflicts(response.body)) {
    const bool known = std::any_of(conflicts_.begin(), conflicts_.end(), [&](const Conflict& c) {
      return c.measurement == parsed.measurement && c.field == parsed.field && c.server_type == parsed.server_type;
    });
    if (known) continue;
    learned = true;
    if (!parsed.measurement.empty() && parsed.server_type) {
      LearnedFieldType type{parsed.measurement, parsed.field, *parsed.server_type};
      if (std::find(outcome->learned_types.begin(), outcome->learned_types.end(), type) ==
          outcome->learned_types.end()) {
        outcome->learned_types.push_back(std::move(type));
      }
    }
    conflicts_.push_back(
        {std::move(parsed.measurement), std::move(parsed.field), parsed.server_type, Sanitize(parsed.text)});
  }
  return learned;
}

bool InfluxWriter::StripConflicts(std::vector<std::string_view>* lines, WriteOutcome* outcome) {
  if (conflicts_.empty()) return false;
  // Lines that cannot hold a conflicting field skip the parse (a plain field name appears verbatim).
  bool all_plain = true;
  for (const Conflict& c : conflicts_) {
    if (c.field.find_first_of(" ,=\\\"") != std::string::npos || c.field.empty()) all_plain = false;
  }
  bool changed = false;
  std::vector<std::string_view> kept_lines;
  kept_lines.reserve(lines->size());
  for (std::string_view line : *lines) {
    if (all_plain && std::none_of(conflicts_.begin(), conflicts_.end(),
                                  [&](const Conflict& c) { return line.find(c.field) != std::string_view::npos; })) {
      kept_lines.push_back(line);
      continue;
    }
    Result<Point> parsed = ParseLine(line);
    if (!parsed.ok()) {
      kept_lines.push_back(line);  // bisection deals with it
      continue;
    }
    Point kept = *parsed;
    kept.fields.clear();
    Point removed = kept;
    std::vector<std::string> reasons;
    for (auto& field : parsed->fields) {
      const Conflict* hit = nullptr;
      for (const Conflict& c : conflicts_) {
        if (c.field != field.first) continue;
        if (!c.measurement.empty() && c.measurement != parsed->measurement) continue;
        if (c.server_type && *c.server_type == field.second.type) continue;
        hit = &c;
        break;
      }
      if (hit == nullptr) {
        kept.fields.push_back(std::move(field));
        continue;
      }
      removed.fields.push_back(std::move(field));
      if (std::find(reasons.begin(), reasons.end(), hit->reason) == reasons.end()) reasons.push_back(hit->reason);
    }
    if (removed.fields.empty()) {
      kept_lines.push_back(line);
      continue;
    }
    changed = true;
    std::string reason;
    for (const std::string& r : reasons) reason += (reason.empty() ? "" : "; ") + r;
    reason = TruncateUtf8(reason, kMaxMessageBytes);
    if (kept.fields.empty()) {
      outcome->rejected.push_back({std::string(line), std::move(reason), false});
      continue;
    }
    outcome->rejected.push_back({FormatPoint(removed), std::move(reason), true});
    owned_lines_.push_back(FormatPoint(kept));
    kept_lines.push_back(owned_lines_.back());
  }
  if (changed) *lines = std::move(kept_lines);
  return changed;
}

InfluxWriter::SliceResult InfluxWriter::Bisect(const std::vector<std::string_view>& lines, WriteOutcome* outcome) {
  const size_t mid = lines.size() / 2;
  if (WriteSlice({lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(mid)}, outcome) == SliceResult::kAbort) {
    return SliceResult::kAbort;
  }
  return WriteSlice({lines.begin() + static_cast<std::ptrdiff_t>(mid), lines.end()}, outcome);
}

InfluxWriter::SliceResult InfluxWriter::WriteSlice(std::vector<std::string_view> lines, WriteOutcome* outcome) {
  StripConflicts(&lines, outcome);
  if (lines.empty()) return SliceResult::kDone;
  Status build_status;
  HttpRequest request;
  if (prepared_body_ && outcome->requests == 0 && lines.size() == lines_in_write_) {
    // The Write's first request, for the lines it was given: the body made beforehand.
    request = RequestWithBody(std::move(*prepared_body_));
    prepared_body_.reset();
  } else {
    request = BuildRequest(lines, &build_status);
  }
  if (!build_status.ok()) return Abort(WriteOutcomeKind::kUnavailable, 0, build_status.message(), outcome);
  ++outcome->requests;
  outcome->bytes_sent += static_cast<int64_t>(request.body.size());
  Result<HttpResponse> response = transport_->Send(request);
  if (!response.ok()) return Abort(WriteOutcomeKind::kUnavailable, 0, response.status().message(), outcome);
  const int status = response->status;
  if (outcome->requests == 1) {
    outcome->http_status = status;
    first_response_5xx_ = IsPoisonCandidate(status);
  }
  if (IsSuccess(status)) {
    outcome->accepted += static_cast<int64_t>(lines.size());
    if (saw_413_) outcome->lines_fitting_413 = std::max<int64_t>(outcome->lines_fitting_413, lines.size());
    answered_ = true;
    accepted_any_ = true;
    fives_without_success_ = 0;
    if (!suspects_.empty()) {
      for (std::string_view line : lines) {
        auto it = suspects_.find(line);
        if (it != suspects_.end()) suspects_.erase(it);
      }
    }
    return SliceResult::kDone;
  }
  if (status == 404 && config_.api == InfluxApi::kV1 && config_.create_database && !outcome->created_database) {
    if (CreateDatabase(outcome)) return WriteSlice(std::move(lines), outcome);
  }
  if (status == 413) saw_413_ = true;
  const std::string server_message = InfluxErrorMessage(response->body);
  if (IsLineRejection(status)) {
    answered_ = true;
    // A type conflict costs only the conflicting fields: remove them and send the rest again.
    if (LearnConflicts(*response, outcome)) {
      std::vector<std::string_view> stripped = lines;
      if (StripConflicts(&stripped, outcome)) return WriteSlice(std::move(stripped), outcome);
    }
  }
  if (status == 400 && outcome->requests == 1 && IsRequestLevelError(server_message)) {
    return Abort(WriteOutcomeKind::kBadRequest, status, "HTTP 400 about the request, not a line: " + server_message,
                 outcome);
  }
  if (IsLineRejection(status) || status == 413) {
    if (lines.size() == 1) {
      std::string reason = status == 413 ? "line too large for the server (HTTP 413)" : server_message;
      if (reason.empty()) reason = "HTTP " + std::to_string(status);
      outcome->rejected.push_back({std::string(lines.front()), Sanitize(reason), false});
      return SliceResult::kDone;
    }
    return Bisect(lines, outcome);
  }
  if (IsPoisonCandidate(status)) return Handle5xx(lines, *response, server_message, outcome);

  const std::string error = "HTTP " + std::to_string(status) + (server_message.empty() ? "" : ": " + server_message);
  if (status == 401 || status == 403) return Abort(WriteOutcomeKind::kAuthFailed, status, error, outcome);
  if (status == 404) return Abort(WriteOutcomeKind::kNotFound, status, error, outcome);
  if (IsThrottling(status)) {
    Abort(WriteOutcomeKind::kRetryLater, status, error, outcome);
    outcome->retry_after_ns = ParseRetryAfterNs(response->Header("retry-after"), clock_->WallNowNs());
    return SliceResult::kAbort;
  }
  return Abort(WriteOutcomeKind::kUnavailable, status, error, outcome);
}

InfluxWriter::SliceResult InfluxWriter::Handle5xx(const std::vector<std::string_view>& lines,
                                                  const HttpResponse& response, const std::string& message,
                                                  WriteOutcome* outcome) {
  const int status = response.status;
  const std::string error = "HTTP " + std::to_string(status) + (message.empty() ? "" : ": " + message);
  // A first 5xx is an outage, as always; it takes a repeat, or an answer in this Write, or a
  // known suspect to look further. A body about the server's own condition never blames a line.
  const bool look_further = previous_write_5xx_ || answered_ || holds_suspect_;
  if (!look_further || NamesServerCondition(message)) {
    return Abort(WriteOutcomeKind::kUnavailable, status, error, outcome);
  }
  if (++fives_without_success_ > five_budget_) return Abort(WriteOutcomeKind::kUnavailable, status, error, outcome);
  if (lines.size() > 1) {
    if (!answered_ && !healthy_ && !(healthy_ = HealthOk(outcome))) {
      return Abort(WriteOutcomeKind::kUnavailable, status, error, outcome);
    }
    return Bisect(lines, outcome);
  }
  // Alone: the health endpoint must answer right now, else this is an outage.
  if (!HealthOk(outcome)) return Abort(WriteOutcomeKind::kUnavailable, status, error, outcome);
  healthy_ = true;
  failed_alone_.push_back({std::string(lines.front()), status, Sanitize(error)});
  return SliceResult::kDone;
}

void InfluxWriter::SettleSuspects(WriteOutcome* outcome) {
  if (failed_alone_.empty()) return;
  // Evidence that the line, not the server, is at fault: another write of this Write was
  // accepted, or nothing but suspects was sent (each right after a healthy probe).
  const bool evidence = accepted_any_ || lines_in_write_ == failed_alone_.size();
  const int64_t now = clock_->SteadyNowNs();
  std::vector<const FailedAlone*> pending;
  int max_strikes = 0;
  for (const FailedAlone& failed : failed_alone_) {
    if (!evidence) {
      auto it = suspects_.find(failed.line);
      if (it != suspects_.end()) suspects_.erase(it);
      pending.push_back(&failed);
      continue;
    }
    if (suspects_.size() >= kMaxSuspects && suspects_.find(failed.line) == suspects_.end()) suspects_.clear();
    Suspect& suspect = suspects_[failed.line];
    if (++suspect.strikes == 1) suspect.first_strike_ns = now;
    if (suspect.strikes >= kPoisonStrikes && now - suspect.first_strike_ns >= kPoisonMinSpreadNs) {
      const int64_t spread_s = (now - suspect.first_strike_ns) / kNsPerSec;
      outcome->rejected.push_back(
          {failed.line,
           TruncateUtf8(failed.message + " (failed alone " + std::to_string(suspect.strikes) + " times over " +
                            std::to_string(spread_s) + " s while the server accepted other requests)",
                        kMaxMessageBytes),
           false});
      suspects_.erase(failed.line);
      continue;
    }
    max_strikes = std::max(max_strikes, suspect.strikes);
    pending.push_back(&failed);
  }
  if (pending.empty()) return;
  outcome->kind = WriteOutcomeKind::kUnavailable;
  outcome->http_status = pending.front()->status;
  std::string error = pending.front()->message + "; " + std::to_string(pending.size()) + " line(s) fail alone";
  if (evidence) {
    error += " while the server accepts other requests (try " + std::to_string(max_strikes) + " of " +
             std::to_string(kPoisonStrikes) + " before the dead-letter queue)";
  }
  outcome->error = Sanitize(error);
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

WriteOutcome InfluxWriter::Write(const std::vector<std::string_view>& lines, std::string body) {
  prepared_body_ = std::move(body);
  WriteOutcome outcome = Write(lines);
  prepared_body_.reset();
  return outcome;
}

WriteOutcome InfluxWriter::Write(const std::vector<std::string_view>& lines) {
  WriteOutcome outcome;
  saw_413_ = false;
  conflicts_.clear();
  owned_lines_.clear();
  answered_ = false;
  accepted_any_ = false;
  healthy_ = false;
  first_response_5xx_ = false;
  fives_without_success_ = 0;
  failed_alone_.clear();
  lines_in_write_ = lines.size();
  if (lines.empty()) return outcome;

  // Known suspects go last and alone, so the other lines are written (and witness the server)
  // first.
  std::vector<std::string_view> others;
  std::vector<std::string_view> suspects;
  if (!suspects_.empty()) {
    for (std::string_view line : lines) (suspects_.count(line) != 0 ? suspects : others).push_back(line);
  }
  holds_suspect_ = !suspects.empty();
  if (holds_suspect_) prepared_body_.reset();  // the first request holds other lines
  int depth = 0;
  while ((size_t{1} << depth) < lines.size()) ++depth;
  five_budget_ = depth + 2 + static_cast<int>(suspects.size());

  SliceResult result = SliceResult::kDone;
  if (!holds_suspect_) {
    result = WriteSlice(lines, &outcome);
  } else {
    if (!others.empty()) result = WriteSlice(std::move(others), &outcome);
    for (size_t i = 0; i < suspects.size() && result == SliceResult::kDone; ++i) {
      result = WriteSlice({suspects[i]}, &outcome);
    }
  }
  previous_write_5xx_ = first_response_5xx_;
  if (result == SliceResult::kDone) SettleSuspects(&outcome);
  if (outcome.kind != WriteOutcomeKind::kOk) {
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
