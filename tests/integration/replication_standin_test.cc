// InfluxWriter + the real curl transport against the fault-injecting stand-in
// (tests/support/influx_standin.h): one test per row of the response table (DESIGN.md), the v2
// and v3 request shapes on the wire, and a Replicator over a real SQLite queue riding out 503s.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "replication/http_transport.h"
#include "replication/influx_writer.h"
#include "replication/replicator.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/influx_standin.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

using testing::InfluxStandin;
using testing::InfluxStandinConfig;
using testing::StandinRequest;

constexpr char kToken[] = "s3cr3t-standin-token";

std::vector<std::string> MakeLines(int n, int offset = 0) {
  std::vector<std::string> lines;
  for (int i = offset; i < offset + n; ++i) {
    lines.push_back("genData,generatorID=g" + std::to_string(i % 7) + " fuel=" + std::to_string(i) + "i " +
                    std::to_string(1764000000000000000LL + i));
  }
  return lines;
}

std::vector<std::string_view> Views(const std::vector<std::string>& lines) { return {lines.begin(), lines.end()}; }

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

size_t BodyBytes(const std::vector<std::string>& lines) {
  size_t n = 0;
  for (const auto& line : lines) n += line.size() + 1;
  return n;
}

std::string Header(const StandinRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return "<absent>";
}

class StandinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InfluxStandinConfig config;
    config.token = kToken;
    config.org = "edge-org";
    config.buckets = {"kafka"};
    auto standin = InfluxStandin::Start(config);
    ASSERT_TRUE(standin.ok()) << standin.status().ToString();
    standin_ = std::move(standin).value();
    transport_ = NewCurlTransport(TransportOptions());
  }

  static HttpTransportOptions TransportOptions(int64_t timeout_ns = 5 * kNsPerSec) {
    HttpTransportOptions options;
    options.timeout_ns = timeout_ns;
    options.connect_timeout_ns = 2 * kNsPerSec;
    return options;
  }

  InfluxConfig V2(bool gzip = true) const {
    InfluxConfig c;
    c.api = InfluxApi::kV2;
    c.url = standin_->url();
    c.org = "edge-org";
    c.bucket = "kafka";
    c.token = kToken;
    c.gzip = gzip;
    return c;
  }

  InfluxConfig V3(bool gzip = true) const {
    InfluxConfig c = V2(gzip);
    c.api = InfluxApi::kV3;
    c.database = "kafka";
    return c;
  }

  // Every outcome passes through here, so every test also checks the token never leaks.
  WriteOutcome Write(const InfluxConfig& config, const std::vector<std::string>& lines,
                     HttpTransport* transport = nullptr) {
    InfluxWriter writer(config, transport != nullptr ? transport : transport_.get(), &clock_);
    WriteOutcome out = writer.Write(Views(lines));
    EXPECT_EQ(out.error.find(kToken), std::string::npos) << out.error;
    for (const RejectedLine& r : out.rejected) EXPECT_EQ(r.reason.find(kToken), std::string::npos) << r.reason;
    return out;
  }

  FakeClock clock_;
  std::unique_ptr<InfluxStandin> standin_;
  std::unique_ptr<HttpTransport> transport_;
};

// ---- 2xx and request shapes ----

TEST_F(StandinTest, V2WriteStoresEverythingWithGzipOnAndOff) {
  for (bool gzip : {true, false}) {
    SCOPED_TRACE(gzip ? "gzip" : "plain");
    standin_->Clear();
    const auto lines = MakeLines(2000);
    WriteOutcome out = Write(V2(gzip), lines);
    EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
    EXPECT_EQ(out.http_status, 204);
    EXPECT_EQ(out.accepted, 2000);
    EXPECT_EQ(out.requests, 1);
    EXPECT_TRUE(out.error.empty());
    EXPECT_EQ(standin_->Lines(), lines);
    const auto requests = standin_->Requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].method, "POST");
    EXPECT_EQ(requests[0].target, "/api/v2/write?org=edge-org&bucket=kafka&precision=ns");
    EXPECT_EQ(Header(requests[0], "authorization"), std::string("Token ") + kToken);
    EXPECT_EQ(Header(requests[0], "content-encoding"), gzip ? "gzip" : "<absent>");
    EXPECT_EQ(requests[0].body_bytes, BodyBytes(lines));
    EXPECT_EQ(requests[0].status, 204);
  }
}

TEST_F(StandinTest, V3WriteUsesBearerDbAndNanosecondPrecision) {
  for (bool gzip : {true, false}) {
    SCOPED_TRACE(gzip ? "gzip" : "plain");
    standin_->Clear();
    const auto lines = MakeLines(10);
    WriteOutcome out = Write(V3(gzip), lines);
    EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
    EXPECT_EQ(standin_->Lines(), lines);
    const auto requests = standin_->Requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].target, "/api/v3/write_lp?db=kafka&precision=nanosecond");
    EXPECT_EQ(Header(requests[0], "authorization"), std::string("Bearer ") + kToken);
    EXPECT_EQ(Header(requests[0], "content-encoding"), gzip ? "gzip" : "<absent>");
  }
}

TEST_F(StandinTest, V1WriteWithBasicAuthAndRetentionPolicy) {
  InfluxStandinConfig config;
  config.buckets = {"telemetry"};
  config.username = "edge";
  config.password = "pw-secret";
  auto v1 = InfluxStandin::Start(config);
  ASSERT_TRUE(v1.ok());
  InfluxConfig c;
  c.api = InfluxApi::kV1;
  c.url = (*v1)->url();
  c.database = "telemetry";
  c.retention_policy = "autogen";
  c.username = "edge";
  c.password = "pw-secret";
  const auto lines = MakeLines(3);
  EXPECT_EQ(Write(c, lines).kind, WriteOutcomeKind::kOk);
  EXPECT_EQ((*v1)->Lines(), lines);
  ASSERT_EQ((*v1)->RequestCount(), 1);
  EXPECT_EQ((*v1)->Requests()[0].target, "/write?db=telemetry&rp=autogen&precision=n");

  c.password = "wrong";
  WriteOutcome out = Write(c, lines);
  EXPECT_EQ(out.kind, WriteOutcomeKind::kAuthFailed);
  EXPECT_EQ(out.error.find("pw-secret"), std::string::npos);
}

TEST_F(StandinTest, KeepAliveSendsSeveralRequestsOnOneConnection) {
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Write(V2(), MakeLines(5, i * 5)).kind, WriteOutcomeKind::kOk);
  const auto requests = standin_->Requests();
  ASSERT_EQ(requests.size(), 3u);
  for (const auto& r : requests) EXPECT_EQ(r.connection, 1);
  EXPECT_EQ(standin_->Lines(), MakeLines(15));
}

// ---- 400: bisection ----

TEST_F(StandinTest, BisectionIsolatesOneBadLineInA5000LineBatch) {
  auto lines = MakeLines(5000);
  const std::string bad = "genData,generatorID=g3 fuel=";  // no field value: unparsable
  lines[3171] = bad;
  WriteOutcome out = Write(V2(), lines);
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.http_status, 400);
  EXPECT_EQ(out.accepted, 4999);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].line, bad);
  EXPECT_NE(out.rejected[0].reason.find("unable to parse '" + bad + "'"), std::string::npos) << out.rejected[0].reason;
  EXPECT_NE(out.error.find("1 line(s) rejected"), std::string::npos) << out.error;

  std::vector<std::string> good = lines;
  good.erase(good.begin() + 3171);
  EXPECT_EQ(Sorted(standin_->Lines()), Sorted(good));  // each good line exactly once
  // 2*ceil(log2(5000)) + 1: the full batch, then both halves at each of 13 levels.
  EXPECT_LE(out.requests, 27);
  EXPECT_EQ(standin_->RequestCount(), out.requests);
  std::cout << "requests needed to isolate 1 bad line in a 5000-line batch: " << out.requests << "\n";
  RecordProperty("bisection_requests_5000", out.requests);
}

TEST_F(StandinTest, Status400RejectedLinesCarryTheServerMessage) {
  const std::string message =
      "partial write: field type conflict: input field \"fuel\" on measurement \"genData\" is type float, "
      "already exists as type integer dropped=1";
  standin_->RejectLinesContaining("fuel=1.5", 400, message);
  auto lines = MakeLines(100);
  lines[10] = "genData,generatorID=g1 fuel=1.5 1764000000000000010";
  lines[77] = "genData,generatorID=g2 fuel=1.5 1764000000000000077";
  WriteOutcome out = Write(V2(), lines);
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.accepted, 98);
  ASSERT_EQ(out.rejected.size(), 2u);
  EXPECT_EQ(out.rejected[0].line, lines[10]);
  EXPECT_EQ(out.rejected[1].line, lines[77]);
  EXPECT_EQ(out.rejected[0].reason, message);
  EXPECT_EQ(standin_->Lines().size(), 98u);
}

// ---- 422 ----

TEST_F(StandinTest, Status422RecordsRejectedLinesAndAdvances) {
  standin_->RejectLinesContaining("generatorID=g5", 422, "points beyond retention policy dropped=1");
  const auto lines = MakeLines(20);  // g5 at i = 5, 12 and 19
  WriteOutcome out = Write(V2(), lines);
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.http_status, 422);
  EXPECT_EQ(out.accepted, 17);
  ASSERT_EQ(out.rejected.size(), 3u);
  EXPECT_EQ(out.rejected[0].line, lines[5]);
  EXPECT_EQ(out.rejected[1].line, lines[12]);
  EXPECT_EQ(out.rejected[2].line, lines[19]);
  EXPECT_EQ(out.rejected[0].reason, "points beyond retention policy dropped=1");
  EXPECT_EQ(standin_->Lines().size(), 17u);
}

// ---- 401/403, 404 ----

TEST_F(StandinTest, BadTokenIsAuthFailedAndKeepsTheData) {
  InfluxConfig c = V2();
  c.token = std::string(kToken) + "-stale";
  InfluxWriter writer(c, transport_.get(), &clock_);
  const auto lines = MakeLines(10);
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kAuthFailed);
  EXPECT_EQ(out.http_status, 401);
  EXPECT_NE(out.error.find("unauthorized access"), std::string::npos) << out.error;
  EXPECT_EQ(out.error.find(c.token), std::string::npos);
  EXPECT_EQ(out.accepted, 0);
  EXPECT_TRUE(standin_->Lines().empty());
}

TEST_F(StandinTest, ForbiddenIsAuthFailed) {
  standin_->FailNext(1, 403);
  WriteOutcome out = Write(V3(), MakeLines(10));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kAuthFailed);
  EXPECT_EQ(out.http_status, 403);
  EXPECT_TRUE(standin_->Lines().empty());
}

TEST_F(StandinTest, MissingBucketOrgOrDatabaseIsNotFound) {
  InfluxConfig bad_bucket = V2();
  bad_bucket.bucket = "nope";
  InfluxConfig bad_org = V2();
  bad_org.org = "other-org";
  InfluxConfig bad_db = V3();
  bad_db.database = "nope";
  for (const InfluxConfig& c : {bad_bucket, bad_org, bad_db}) {
    WriteOutcome out = Write(c, MakeLines(3));
    EXPECT_EQ(out.kind, WriteOutcomeKind::kNotFound);
    EXPECT_EQ(out.http_status, 404);
    EXPECT_NE(out.error.find("not found"), std::string::npos) << out.error;
  }
  EXPECT_TRUE(standin_->Lines().empty());
  EXPECT_EQ(standin_->RequestCount(), 3);
}

// ---- 413 ----

TEST_F(StandinTest, TooLargeSplitsUntilEverythingIsStored) {
  const auto lines = MakeLines(2000);
  standin_->SetMaxBodyBytes(BodyBytes(lines) / 5);
  WriteOutcome out = Write(V2(), lines);
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.accepted, 2000);
  EXPECT_TRUE(out.rejected.empty());
  EXPECT_GT(out.requests, 5);
  EXPECT_EQ(standin_->Lines(), lines);  // halves go left first, so even the order survives
  int too_large = 0;
  for (const auto& r : standin_->Requests()) {
    if (r.status == 413) ++too_large;
    if (r.status == 204) {
      EXPECT_LE(r.body_bytes, BodyBytes(lines) / 5);
    }
  }
  EXPECT_GT(too_large, 0);

  // One line alone above the limit cannot be split: rejected, the rest goes on.
  standin_->Clear();
  standin_->SetMaxBodyBytes(60);
  const std::vector<std::string> mixed = {MakeLines(1)[0],
                                          "genData,generatorID=g1 note=\"" + std::string(80, 'x') + "\" 1"};
  out = Write(V2(), mixed);
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].line, mixed[1]);
  EXPECT_NE(out.rejected[0].reason.find("413"), std::string::npos);
  EXPECT_EQ(standin_->Lines(), std::vector<std::string>{mixed[0]});
}

// ---- 429/503 with Retry-After ----

TEST_F(StandinTest, Status429HonoursRetryAfterSeconds) {
  standin_->FailNext(1, 429, "7");
  WriteOutcome out = Write(V2(), MakeLines(10));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kRetryLater);
  EXPECT_EQ(out.http_status, 429);
  EXPECT_EQ(out.retry_after_ns, 7 * kNsPerSec);
  EXPECT_TRUE(standin_->Lines().empty());
  EXPECT_EQ(Write(V2(), MakeLines(10)).kind, WriteOutcomeKind::kOk);  // only one was scripted
  EXPECT_EQ(standin_->Lines(), MakeLines(10));
}

TEST_F(StandinTest, Status503HonoursRetryAfterHttpDate) {
  const time_t at = static_cast<time_t>(clock_.WallNowNs() / kNsPerSec) + 30;
  std::tm tm{};
  gmtime_r(&at, &tm);
  char date[64];
  strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  standin_->FailNext(1, 503, date);
  WriteOutcome out = Write(V3(), MakeLines(10));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kRetryLater);
  EXPECT_EQ(out.http_status, 503);
  EXPECT_EQ(out.retry_after_ns, 30 * kNsPerSec) << date;

  standin_->FailNext(1, 503);  // no Retry-After: the caller's backoff decides
  out = Write(V3(), MakeLines(10));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kRetryLater);
  EXPECT_EQ(out.retry_after_ns, 0);
  EXPECT_TRUE(standin_->Lines().empty());
}

// ---- 5xx, timeouts, resets ----

TEST_F(StandinTest, Status500IsUnavailable) {
  standin_->FailNext(1, 500);
  WriteOutcome out = Write(V2(), MakeLines(10));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kUnavailable);
  EXPECT_EQ(out.http_status, 500);
  EXPECT_NE(out.error.find("HTTP 500"), std::string::npos) << out.error;
  EXPECT_TRUE(standin_->Lines().empty());
}

TEST_F(StandinTest, SlowResponseBeyondTheTimeoutIsUnavailable) {
  auto fast_timeout = NewCurlTransport(TransportOptions(300 * kNsPerMs));
  standin_->SetDelayMs(5000);
  const auto started = std::chrono::steady_clock::now();
  WriteOutcome out = Write(V2(), MakeLines(10), fast_timeout.get());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kUnavailable);
  EXPECT_EQ(out.http_status, 0);
  EXPECT_NE(out.error.find("timed out"), std::string::npos) << out.error;

  standin_->SetDelayMs(0);  // the server recovers; the same transport reconnects
  const auto lines = MakeLines(10, 100);
  EXPECT_EQ(Write(V2(), lines, fast_timeout.get()).kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(standin_->Lines(), lines);  // the slow request is still waiting, unanswered
}

TEST_F(StandinTest, ConnectionResetIsUnavailable) {
  standin_->ResetNext(1);
  WriteOutcome out = Write(V2(), MakeLines(10));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kUnavailable);
  EXPECT_EQ(out.http_status, 0);
  EXPECT_NE(out.error.find("reset"), std::string::npos) << out.error;  // a real RST, not a FIN
  ASSERT_EQ(standin_->RequestCount(), 1);
  EXPECT_EQ(standin_->Requests()[0].status, 0);
  EXPECT_TRUE(standin_->Lines().empty());

  EXPECT_EQ(Write(V2(), MakeLines(10)).kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(standin_->Lines(), MakeLines(10));
}

TEST_F(StandinTest, TokenEchoedByTheServerIsMasked) {
  standin_->RejectLinesContaining("fuel=3i", 400, std::string("bad write with token ") + kToken);
  WriteOutcome out = Write(V2(), MakeLines(5));  // Write() checks error and reasons
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_NE(out.rejected[0].reason.find("********"), std::string::npos) << out.rejected[0].reason;
}

// ---- the stand-in's own HTTP: Expect: 100-continue (curl sends it for large bodies) ----

TEST_F(StandinTest, StandinAnswers100ContinueBeforeTheBody) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(standin_->port()));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string body = MakeLines(1)[0] + "\n";
  const std::string head =
      "POST /api/v2/write?org=edge-org&bucket=kafka&precision=ns HTTP/1.1\r\n"
      "Host: x\r\nAuthorization: Token " +
      std::string(kToken) + "\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  ASSERT_EQ(::send(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
  auto read_until = [fd](const std::string& end) {
    std::string got;
    char c;
    while (got.find(end) == std::string::npos && ::recv(fd, &c, 1, 0) == 1) got += c;
    return got;
  };
  EXPECT_EQ(read_until("\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_EQ(::send(fd, body.data(), body.size(), 0), static_cast<ssize_t>(body.size()));
  EXPECT_EQ(read_until("\r\n\r\n").rfind("HTTP/1.1 204", 0), 0u);
  ::close(fd);
  EXPECT_EQ(standin_->Lines(), MakeLines(1));
}

// ---- Replicator over a real SQLite queue: 503 + Retry-After, then recovery ----

TEST_F(StandinTest, ReplicatorDeliversEveryPointOnceAfterThrottling) {
  TempDir dir;
  std::unique_ptr<Queue> queue = OpenTestQueue(dir.File("queue.db"), &SystemClock::Instance());
  ASSERT_NE(queue, nullptr);

  InfluxWriter writer(V2(), transport_.get(), &SystemClock::Instance());
  ReplicatorOptions ro;
  ro.batch_points = 3000;
  ro.retry_min_ns = 10 * kNsPerMs;
  ro.retry_max_ns = 5 * kNsPerSec;
  ro.random = Backoff::SeededRandom(7);
  Replicator replicator("influx", std::string(kRawStream), queue.get(), &writer, &SystemClock::Instance(), ro);
  ASSERT_TRUE(replicator.Start().ok());

  std::vector<std::string> all;
  std::vector<BatchInput> inputs;
  for (int b = 0; b < 10; ++b) {
    BatchInput in;
    in.lines = MakeLines(1000, b * 1000);
    all.insert(all.end(), in.lines.begin(), in.lines.end());
    inputs.push_back(std::move(in));
  }
  auto seqs = queue->Append(inputs, {});
  ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();

  standin_->FailNext(2, 503, "1");
  std::vector<int64_t> failure_delays;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  auto pending = [&] {
    auto statuses = queue->SinkStatuses();
    EXPECT_TRUE(statuses.ok());
    return statuses.ok() && !statuses->empty() ? statuses->front().pending_points : -1;
  };
  while (pending() != 0 && std::chrono::steady_clock::now() < deadline) {
    const int64_t delay_ns = replicator.Step();
    if (delay_ns == 0) continue;
    if (replicator.consecutive_failures() > 0) failure_delays.push_back(delay_ns);
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<int64_t>(delay_ns, 2 * kNsPerSec)));
  }

  EXPECT_EQ(failure_delays, (std::vector<int64_t>{kNsPerSec, kNsPerSec}));  // Retry-After: 1, twice
  std::map<std::string, int> stored;
  for (const auto& line : standin_->Lines()) ++stored[line];
  EXPECT_EQ(stored.size(), all.size());
  for (const auto& line : all) EXPECT_EQ(stored[line], 1) << line;
  const auto requests = standin_->Requests();
  ASSERT_GE(requests.size(), 3u);
  EXPECT_EQ(requests[0].status, 503);
  EXPECT_EQ(requests[1].status, 503);

  auto statuses = queue->SinkStatuses();
  ASSERT_TRUE(statuses.ok());
  ASSERT_EQ(statuses->size(), 1u);
  const SinkStatus& s = statuses->front();
  EXPECT_EQ(s.cursor_seq, seqs->back());
  EXPECT_EQ(s.pending_points, 0);
  EXPECT_EQ(s.sent_points, 10000);
  EXPECT_EQ(s.state, "ok");
  EXPECT_EQ(s.consecutive_failures, 0);
  EXPECT_EQ(Name(replicator.state()), "ok");
}

}  // namespace
}  // namespace edgeline
