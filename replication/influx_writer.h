// InfluxWriter: writes line protocol to one InfluxDB database/bucket (API v1, v2 or v3) through an
// injected HttpTransport, classifies the response, and isolates rejected lines by bisection.
// The writer borrows the transport and clock (not owned; they must outlive it). Not
// thread-safe: one owner thread, like its transport.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
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
  std::string line;
  std::string reason;  // the server's message (secret-free, at most 1 KiB)
};

struct WriteOutcome {
  WriteOutcomeKind kind = WriteOutcomeKind::kOk;
  int http_status = 0;                 // kOk: the first response's (400 when bisected); else the
                                       // failing response's (0 = no response)
  std::string error;                   // empty when kOk without rejections; never holds secrets
  int64_t accepted = 0;                // lines the server accepted (meaningful for kOk only)
  std::vector<RejectedLine> rejected;  // kOk only
  int64_t retry_after_ns = 0;          // kRetryLater: from Retry-After, 0 when absent
  int requests = 0;                    // HTTP requests made (bisection costs O(log n) per bad line)
  int64_t bytes_sent = 0;              // request body bytes as sent (after gzip), for bandwidth caps
  int64_t lines_fitting_413 = 0;       // after a 413: the most lines one accepted request held (0 = no 413)
  bool created_database = false;       // v1 with EDGELINE_INFLUX_CREATE_DB: a 404 made us create it
};

class InfluxWriter {
 public:
  InfluxWriter(const InfluxConfig& config, HttpTransport* transport, const Clock* clock, InfluxTarget target = {});

  // Sends `lines` (one point each, no newline). Contract:
  // - 2xx: all accepted.
  // - 400/422 (bad line, field type conflict, beyond retention): bisect: each half is re-sent
  //   recursively until every rejected line is alone; those go to `rejected` with the server's
  //   message, all others are accepted. One bad line among n costs about 2*log2(n)+1 requests.
  //   InfluxDB 1.x answers 400 "partial write" after writing the good points of the request;
  //   re-sending them is harmless because identical points (series + timestamp) deduplicate.
  // - 413: split in halves and retry; a single line still too large is rejected.
  // - Any other failure, also in the middle of a bisection, returns that failure's kind and
  //   nothing else: `accepted` and `rejected` found so far are dropped, and the caller retries
  //   the whole batch later (already-written points deduplicate, as above).
  WriteOutcome Write(const std::vector<std::string_view>& lines);

  // "bucket <name>" / "database <name>[.rp]", for logs (no secrets).
  std::string TargetDescription() const;

 private:
  enum class SliceResult { kDone, kAbort };
  SliceResult WriteSlice(const std::vector<std::string_view>& lines, size_t begin, size_t end, WriteOutcome* outcome);
  HttpRequest BuildRequest(const std::vector<std::string_view>& lines, size_t begin, size_t end, Status* status) const;
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
};

// Helpers exposed for tests.
std::string UrlEncode(std::string_view text);
// Retry-After: delta-seconds or an HTTP-date (relative to `wall_now_ns`). 0 when absent/invalid
// or in the past.
int64_t ParseRetryAfterNs(std::string_view value, int64_t wall_now_ns);
// The message of an InfluxDB error body ({"error": ...} or {"message": ...}), else the raw body;
// at most 1 KiB.
std::string InfluxErrorMessage(std::string_view body);

}  // namespace edgeline
