// InfluxWriter: writes line protocol to one InfluxDB database/bucket (API v1, v2 or v3) through an
// injected HttpTransport, classifies the response, isolates rejected lines by bisection, removes
// only the conflicting fields when the server refuses a field's type, and isolates a line the
// server keeps answering 5xx for while it answers everything else. The writer borrows the
// transport and clock (not owned; they must outlive it) and remembers, between Writes, only the
// lines suspected of making the server fail (in memory). Not thread-safe: one owner thread,
// like its transport.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/line_protocol.h"
#include "config/config.h"
#include "replication/http_transport.h"

namespace edgeline {

// Where the writer writes; empty fields default from InfluxConfig (bucket for v2, database for
// v1/v3; retention_policy for v1). The downsampled stream uses its own bucket.
struct InfluxTarget {
  std::string bucket_or_db;
  std::string retention_policy;  // v1 only
};

enum class WriteOutcomeKind {
  kOk,           // everything accepted except `rejected` (may be non-empty)
  kAuthFailed,   // 401/403: keep the data, retry slowly
  kNotFound,     // 404: bucket/database missing: keep the data, retry slowly
  kRetryLater,   // 429/503: wait retry_after_ns (0 = not given: use backoff)
  kUnavailable,  // other 5xx, transport error (refused, timeout, reset): backoff
  kBadRequest,   // a 400 about the request itself (encoding, precision), not a line: keep the
                 // data, retry slowly; bisecting would dead-letter every line for nothing
};

std::string_view WriteOutcomeKindName(WriteOutcomeKind kind);

struct RejectedLine {
  std::string line;          // replayable line protocol: the whole line, or only the removed fields of
                             // a point whose other fields were written (same measurement, tags, time)
  std::string reason;        // the server's message (secret-free, at most 1 KiB)
  bool fields_only = false;  // true: the point's other fields were written
};

// A field type the server said it has (from a type-conflict message), for catching conflicts
// before they reach the server.
struct LearnedFieldType {
  std::string measurement;
  std::string field;
  FieldType server_type = FieldType::kFloat;

  friend bool operator==(const LearnedFieldType&, const LearnedFieldType&) = default;
};

struct WriteOutcome {
  WriteOutcomeKind kind = WriteOutcomeKind::kOk;
  int http_status = 0;                          // kOk: the first response's (400 when bisected); else the
                                                // failing response's (0 = no response)
  std::string error;                            // empty when kOk without rejections; never holds secrets
  int64_t accepted = 0;                         // lines the server accepted (meaningful for kOk only)
  std::vector<RejectedLine> rejected;           // kOk only
  int64_t retry_after_ns = 0;                   // kRetryLater: from Retry-After, 0 when absent
  int requests = 0;                             // HTTP requests made (bisection costs O(log n) per bad line)
  int64_t bytes_sent = 0;                       // request body bytes as sent (after gzip), for bandwidth caps
  int64_t lines_fitting_413 = 0;                // after a 413: the most lines one accepted request held (0 = no 413)
  bool created_database = false;                // v1 with EDGELINE_INFLUX_CREATE_DB: a 404 made us create it
  std::vector<LearnedFieldType> learned_types;  // from type conflicts, whatever the kind (not persisted)
  int health_probes = 0;                        // GET /ping or /health made (not in `requests`)
};

class InfluxWriter {
 public:
  InfluxWriter(const InfluxConfig& config, HttpTransport* transport, const Clock* clock, InfluxTarget target = {});

  // Sends `lines` (one point each, no newline). Contract:
  // - 2xx: all accepted.
  // - 400/422 naming field type conflicts (v1/v2 "field type conflict: input field "f" on
  //   measurement "m" is type float, already exists as type string", v3 "invalid column type for
  //   column 'f', expected iox::column_type::field::string, got ...", IOx "column f is type string
  //   but write has type f64"): the named fields are removed from every point of the request
  //   whose value has another type than the server's (for that measurement when the message
  //   names it), and the rest is re-sent, until the server names no new conflict. Each point's
  //   removed fields go to `rejected` as one replayable line (same measurement, tags and
  //   timestamp, only those fields; `fields_only`); a point left without fields goes whole.
  //   What the messages teach is in `learned_types`.
  // - Other 400/422 (bad line, beyond retention): bisect: each half is re-sent recursively until
  //   every rejected line is alone; those go to `rejected` with the server's message, all others
  //   are accepted. One bad line among n costs about 2*log2(n)+1 requests. InfluxDB 1.x answers
  //   400 "partial write" after writing the good points of the request; re-sending them is
  //   harmless because identical points (series + timestamp) deduplicate.
  // - 413: split in halves and retry; a single line still too large is rejected.
  // - 429 and 503 (with or without Retry-After) are throttling: kRetryLater, never bisected.
  // - Other 5xx (a "poison" line can make a server answer 500 or panic): the first time, as an
  //   outage (kUnavailable, the caller backs off). When the previous Write also ended on such a
  //   5xx, or this Write already had an answer (2xx, 400/422) or holds a suspect line, the
  //   writer looks for evidence that the server works: the health endpoint (GET /ping for v1
  //   and v3, /health for v2) must answer 2xx, else kUnavailable as today; then the request is
  //   bisected like a 400 (at most log2(n)+2 5xx answers before any 2xx, then kUnavailable).
  //   A line that fails ALONE is a suspect; it gets a strike when the health endpoint answered
  //   2xx right after its failure AND another write of the same Write was answered 2xx/400/422
  //   (or the Write held nothing but suspects). A Write that ends with a suspect short of the
  //   bound returns kUnavailable (every other line was written: the caller's backoff spreads
  //   the tries); the next Write sends the other lines first, then each suspect alone.
  //   A suspect goes to `rejected` (status and body in the reason) after kPoisonStrikes
  //   consecutive strikes spanning at least kPoisonMinSpreadNs. A try without evidence, a
  //   transport error, or a body naming a server-side condition (timeout, no space, memory,
  //   shutting down...) resets its strikes: a server that is down or fails every request never
  //   produces a dead letter.
  // - Any other failure, also in the middle of a bisection, returns that failure's kind and
  //   nothing else: `accepted` and `rejected` found so far are dropped, and the caller retries
  //   the whole batch later (already-written points deduplicate, as above).
  WriteOutcome Write(const std::vector<std::string_view>& lines);

  // Write, with `body` = EncodeBody(lines) made beforehand (on another thread, while the
  // previous Write ran): the first request sends it instead of encoding `lines` again. It is
  // not used when known suspects reorder the lines; retries and bisection encode their own.
  WriteOutcome Write(const std::vector<std::string_view>& lines, std::string body);

  // The body of one request holding `lines` as Write sends it: one line each, '\n'-terminated,
  // gzipped when the configuration says so. Thread-safe (reads only the configuration), so it
  // may run on another thread while Write runs.
  Result<std::string> EncodeBody(const std::vector<std::string_view>& lines) const;

  static constexpr int kPoisonStrikes = 3;
  static constexpr int64_t kPoisonMinSpreadNs = 2 * kNsPerSec;

  // "bucket <name>" / "database <name>[.rp]", for logs (no secrets).
  std::string TargetDescription() const;

 private:
  enum class SliceResult { kDone, kAbort };
  // A field type conflict the server named; `measurement` empty = any; no `server_type` = any
  // value conflicts (the column is a tag or time).
  struct Conflict {
    std::string measurement;
    std::string field;
    std::optional<FieldType> server_type;
    std::string reason;
  };
  struct Suspect {
    int strikes = 0;
    int64_t first_strike_ns = 0;
  };
  struct FailedAlone {
    std::string line;
    int status = 0;
    std::string message;  // "HTTP <status>: <server message>", secret-free
  };
  static constexpr size_t kMaxSuspects = 1024;

  SliceResult WriteSlice(std::vector<std::string_view> lines, WriteOutcome* outcome);
  SliceResult Bisect(const std::vector<std::string_view>& lines, WriteOutcome* outcome);
  SliceResult Handle5xx(const std::vector<std::string_view>& lines, const HttpResponse& response,
                        const std::string& message, WriteOutcome* outcome);
  SliceResult Abort(WriteOutcomeKind kind, int status, const std::string& message, WriteOutcome* outcome);
  // Removes fields matching known conflicts; their values go to outcome->rejected. Returns true
  // when anything changed (the new lines live in owned_lines_).
  bool StripConflicts(std::vector<std::string_view>* lines, WriteOutcome* outcome);
  // Adds conflicts parsed from a 400/422 body; true when a new one was learned.
  bool LearnConflicts(const HttpResponse& response, WriteOutcome* outcome);
  bool HealthOk(WriteOutcome* outcome);
  void SettleSuspects(WriteOutcome* outcome);
  HttpRequest BuildRequest(const std::vector<std::string_view>& lines, Status* status) const;
  // A write request carrying `body` (made by EncodeBody).
  HttpRequest RequestWithBody(std::string body) const;
  void AddAuth(HttpRequest* request) const;
  std::string Sanitize(std::string_view text) const;
  // v1: POST /query CREATE DATABASE for the target; true when the server said yes.
  bool CreateDatabase(WriteOutcome* outcome);

  InfluxConfig config_;
  HttpTransport* transport_;
  const Clock* clock_;
  InfluxTarget target_;
  std::string url_;  // write endpoint incl. query string, built once
  std::string base_url_;
  bool saw_413_ = false;  // within the current Write

  // Within the current Write.
  std::vector<Conflict> conflicts_;
  std::deque<std::string> owned_lines_;  // stripped lines the views point into
  bool answered_ = false;                // a write got 2xx or 400/422
  bool accepted_any_ = false;            // a write got 2xx
  bool healthy_ = false;                 // the health endpoint answered 2xx
  size_t lines_in_write_ = 0;
  bool first_response_5xx_ = false;  // the Write's first answer was a non-503 5xx
  bool holds_suspect_ = false;
  int fives_without_success_ = 0;
  int five_budget_ = 0;
  std::vector<FailedAlone> failed_alone_;

  // The body given to Write(lines, body), until the first request takes it.
  std::optional<std::string> prepared_body_;

  // Between Writes.
  bool previous_write_5xx_ = false;
  std::map<std::string, Suspect, std::less<>> suspects_;  // by line; bounded
};

// Helpers exposed for tests.
std::string UrlEncode(std::string_view text);
// Retry-After: delta-seconds or an HTTP-date (relative to `wall_now_ns`). 0 when absent/invalid
// or in the past.
int64_t ParseRetryAfterNs(std::string_view value, int64_t wall_now_ns);
// The message of an InfluxDB error body ({"error": ...} or {"message": ...}), else the raw body;
// at most 1 KiB.
std::string InfluxErrorMessage(std::string_view body);
// The field type conflicts named in an InfluxDB error body (v1, v2, v3, IOx wordings; several
// per body when given, e.g. v3's per-line `data`). Only those naming a measurement and a field
// type are returned.
std::vector<LearnedFieldType> ParseFieldTypeConflicts(std::string_view body);

}  // namespace edgeline
