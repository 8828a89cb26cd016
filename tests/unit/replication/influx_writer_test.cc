// Tests for replication/influx_writer.h and replication/gzip.h: request shape per API version,
// response classification, bisection of rejected lines, Retry-After parsing.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/line_protocol.h"
#include "replication/gzip.h"
#include "replication/http_transport.h"
#include "replication/influx_writer.h"
#include "tests/support/fake_clock.h"
#include "tests/support/gunzip.h"

namespace edgeline {
namespace {

HttpResponse MakeResponse(int status, std::string body = "",
                          std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

// Records every request; answers with `handler` (given the request's decoded body lines).
class FakeTransport final : public HttpTransport {
 public:
  using Handler = std::function<Result<HttpResponse>(const HttpRequest&, const std::vector<std::string>&)>;

  Result<HttpResponse> Send(const HttpRequest& request) override {
    requests.push_back(request);
    std::string body = request.body;
    for (const auto& [name, value] : request.headers) {
      if (name == "Content-Encoding" && value == "gzip") body = Gunzip(body);
    }
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t nl = body.find('\n'); nl != std::string::npos; nl = body.find('\n', start)) {
      lines.push_back(body.substr(start, nl - start));
      start = nl + 1;
    }
    if (start < body.size()) lines.push_back(body.substr(start));
    if (handler) return handler(request, lines);
    return MakeResponse(204);
  }

  Handler handler;
  std::vector<HttpRequest> requests;
};

std::string HeaderOf(const HttpRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return "<absent>";
}

std::vector<std::string> MakeLines(int n) {
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i)
    lines.push_back("m,g=g" + std::to_string(i) + " v=" + std::to_string(i) + " " + std::to_string(1000 + i));
  return lines;
}

std::vector<std::string_view> Views(const std::vector<std::string>& lines) {
  return std::vector<std::string_view>(lines.begin(), lines.end());
}

InfluxConfig V2Config() {
  InfluxConfig c;
  c.api = InfluxApi::kV2;
  c.url = "http://influx.local:8086/";
  c.org = "my org&co";
  c.bucket = "b/1";
  c.token = "s3cr3t-token";
  c.gzip = true;
  return c;
}

class InfluxWriterTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  FakeTransport transport_;
};

// ---- gzip ----

TEST(GzipTest, RoundTripsAndHasGzipMagic) {
  std::string input;
  for (int i = 0; i < 1000; ++i) input += "genData,generatorID=g1 fuel=" + std::to_string(i) + "\n";
  Result<std::string> gz = GzipCompress(input);
  ASSERT_TRUE(gz.ok());
  ASSERT_GE(gz->size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[1]), 0x8b);
  EXPECT_LT(gz->size(), input.size());
  EXPECT_EQ(Gunzip(*gz), input);
}

TEST(GzipTest, EmptyInput) {
  Result<std::string> gz = GzipCompress("");
  ASSERT_TRUE(gz.ok());
  EXPECT_EQ(Gunzip(*gz), "");
}

// ---- request shape ----

TEST_F(InfluxWriterTest, V2RequestShape) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  auto lines = MakeLines(2);
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  ASSERT_EQ(transport_.requests.size(), 1u);
  const HttpRequest& r = transport_.requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "http://influx.local:8086/api/v2/write?org=my%20org%26co&bucket=b%2F1&precision=ns");
  EXPECT_EQ(HeaderOf(r, "Authorization"), "Token s3cr3t-token");
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(HeaderOf(r, "Content-Encoding"), "gzip");
  EXPECT_EQ(Gunzip(r.body), lines[0] + "\n" + lines[1] + "\n");
}

// A body made beforehand (EncodeBody, on the replicator's helper thread) is what the first
// request sends, with the same headers as one Write encodes itself.
TEST_F(InfluxWriterTest, PreparedBodyIsSentAsTheFirstRequest) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  auto lines = MakeLines(3);
  Result<std::string> body = writer.EncodeBody(Views(lines));
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(Gunzip(*body), lines[0] + "\n" + lines[1] + "\n" + lines[2] + "\n");
  WriteOutcome out = writer.Write(Views(lines), *body);
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.accepted, 3);
  EXPECT_EQ(out.bytes_sent, static_cast<int64_t>(body->size()));
  ASSERT_EQ(transport_.requests.size(), 1u);
  EXPECT_EQ(transport_.requests[0].body, *body);
  EXPECT_EQ(HeaderOf(transport_.requests[0], "Content-Encoding"), "gzip");
  EXPECT_EQ(HeaderOf(transport_.requests[0], "Authorization"), "Token s3cr3t-token");
  // The next Write without a body encodes its own.
  auto more = MakeLines(1);
  EXPECT_EQ(writer.Write(Views(more)).kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(Gunzip(transport_.requests[1].body), more[0] + "\n");
}

// Bisection after a prepared first request encodes each half itself.
TEST_F(InfluxWriterTest, PreparedBodyThenBisectionIsolatesTheBadLine) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  auto lines = MakeLines(4);
  transport_.handler = [&](const HttpRequest&, const std::vector<std::string>& body) -> Result<HttpResponse> {
    if (std::find(body.begin(), body.end(), lines[2]) != body.end()) {
      return MakeResponse(400, R"({"code":"invalid","message":"unable to parse 'x': bad timestamp"})");
    }
    return MakeResponse(204);
  };
  Result<std::string> body = writer.EncodeBody(Views(lines));
  ASSERT_TRUE(body.ok());
  WriteOutcome out = writer.Write(Views(lines), *body);
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.accepted, 3);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].line, lines[2]);
  EXPECT_EQ(transport_.requests[0].body, *body);
}

TEST_F(InfluxWriterTest, V1RequestShapeWithBasicAuthAndRetentionPolicy) {
  InfluxConfig c;
  c.api = InfluxApi::kV1;
  c.url = "https://h:8086";
  c.database = "d b";
  c.retention_policy = "autogen";
  c.username = "u";
  c.password = "p";
  c.gzip = false;
  InfluxWriter writer(c, &transport_, &clock_);
  auto lines = MakeLines(3);
  ASSERT_EQ(writer.Write(Views(lines)).kind, WriteOutcomeKind::kOk);
  ASSERT_EQ(transport_.requests.size(), 1u);
  const HttpRequest& r = transport_.requests[0];
  EXPECT_EQ(r.url, "https://h:8086/write?db=d%20b&rp=autogen&precision=n");
  EXPECT_EQ(HeaderOf(r, "Authorization"), "Basic dTpw");  // base64("u:p")
  EXPECT_EQ(HeaderOf(r, "Content-Encoding"), "<absent>");
  EXPECT_EQ(r.body, lines[0] + "\n" + lines[1] + "\n" + lines[2] + "\n");
  // Credentials travel in the header, not the URL (URLs show up in proxy logs and curl errors).
  EXPECT_EQ(r.url.find("&p="), std::string::npos);
  EXPECT_EQ(r.url.find("&u="), std::string::npos);
}

TEST_F(InfluxWriterTest, V1WithoutCredentialsSendsNoAuthorization) {
  InfluxConfig c;
  c.api = InfluxApi::kV1;
  c.url = "http://h:8086";
  c.database = "kafka";
  InfluxWriter writer(c, &transport_, &clock_);
  auto lines = MakeLines(1);
  ASSERT_EQ(writer.Write(Views(lines)).kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(transport_.requests[0].url, "http://h:8086/write?db=kafka&precision=n");
  EXPECT_EQ(HeaderOf(transport_.requests[0], "Authorization"), "<absent>");
  EXPECT_EQ(Gunzip(transport_.requests[0].body), lines[0] + "\n");
}

TEST_F(InfluxWriterTest, V3RequestShape) {
  InfluxConfig c;
  c.api = InfluxApi::kV3;
  c.url = "http://h:8181";
  c.database = "edge";
  c.token = "apiv3_tok";
  InfluxWriter writer(c, &transport_, &clock_);
  auto lines = MakeLines(1);
  ASSERT_EQ(writer.Write(Views(lines)).kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(transport_.requests[0].url, "http://h:8181/api/v3/write_lp?db=edge&precision=nanosecond");
  EXPECT_EQ(HeaderOf(transport_.requests[0], "Authorization"), "Bearer apiv3_tok");
  EXPECT_EQ(HeaderOf(transport_.requests[0], "Content-Encoding"), "gzip");
}

TEST_F(InfluxWriterTest, TargetOverridesBucket) {
  InfluxWriter writer(V2Config(), &transport_, &clock_, InfluxTarget{"kafka_downsampled", ""});
  auto lines = MakeLines(1);
  ASSERT_EQ(writer.Write(Views(lines)).kind, WriteOutcomeKind::kOk);
  EXPECT_NE(transport_.requests[0].url.find("&bucket=kafka_downsampled&"), std::string::npos);
  EXPECT_EQ(writer.TargetDescription(), "bucket kafka_downsampled");
}

TEST_F(InfluxWriterTest, EmptyWriteSendsNothing) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  WriteOutcome out = writer.Write({});
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.requests, 0);
  EXPECT_TRUE(transport_.requests.empty());
}

// ---- classification ----

TEST_F(InfluxWriterTest, Status204AcceptsAll) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  auto lines = MakeLines(10);
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.http_status, 204);
  EXPECT_EQ(out.accepted, 10);
  EXPECT_TRUE(out.rejected.empty());
  EXPECT_EQ(out.requests, 1);
  EXPECT_TRUE(out.error.empty());
}

// A server that rejects any request containing one of `bad`.
FakeTransport::Handler RejectLines(std::vector<std::string> bad, int status, std::string body) {
  return [bad, status, body](const HttpRequest&, const std::vector<std::string>& lines) -> Result<HttpResponse> {
    for (const auto& line : lines) {
      for (const auto& b : bad) {
        if (line == b) return MakeResponse(status, body);
      }
    }
    return MakeResponse(204);
  };
}

TEST_F(InfluxWriterTest, Status400BisectsToTheSingleBadLine) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  auto lines = MakeLines(16);
  transport_.handler = RejectLines(
      {lines[11]}, 400,
      R"({"error":"partial write: field type conflict: input field \"v\" on measurement \"m\" is type string, already exists as type float dropped=1"})");
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.http_status, 400);
  EXPECT_EQ(out.accepted, 15);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].line, lines[11]);
  EXPECT_EQ(out.rejected[0].reason,
            "partial write: field type conflict: input field \"v\" on measurement \"m\" is type string, "
            "already exists as type float dropped=1");
  EXPECT_LE(out.requests, 2 * 4 + 1);  // 2*log2(16)+1
  EXPECT_NE(out.error.find("1 line(s) rejected"), std::string::npos);
}

TEST_F(InfluxWriterTest, Status400TwoBadLinesV2MessageAnd422) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  auto lines = MakeLines(7);
  transport_.handler =
      RejectLines({lines[0], lines[6]}, 422,
                  R"({"code":"unprocessable entity","message":"points beyond retention policy dropped=1"})");
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.accepted, 5);
  ASSERT_EQ(out.rejected.size(), 2u);
  EXPECT_EQ(out.rejected[0].line, lines[0]);
  EXPECT_EQ(out.rejected[1].line, lines[6]);
  EXPECT_EQ(out.rejected[1].reason, "points beyond retention policy dropped=1");
}

TEST_F(InfluxWriterTest, Status400NonJsonBodyIsTruncated) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  auto lines = MakeLines(1);
  transport_.handler = RejectLines({lines[0]}, 400, std::string(5000, 'x'));
  WriteOutcome out = writer.Write(Views(lines));
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_LE(out.rejected[0].reason.size(), 1024u + 3);
  EXPECT_EQ(out.rejected[0].reason.substr(0, 10), "xxxxxxxxxx");
}

TEST_F(InfluxWriterTest, AllLinesBadAreAllRejected) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  auto lines = MakeLines(4);
  transport_.handler = RejectLines(lines, 400, R"({"error":"unable to parse"})");
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.accepted, 0);
  EXPECT_EQ(out.rejected.size(), 4u);
  EXPECT_EQ(out.requests, 7);  // full binary tree over 4 leaves
}

struct StatusCase {
  int status;
  WriteOutcomeKind kind;
};

TEST_F(InfluxWriterTest, FailureStatusesClassify) {
  const StatusCase cases[] = {
      {401, WriteOutcomeKind::kAuthFailed},  {403, WriteOutcomeKind::kAuthFailed},
      {404, WriteOutcomeKind::kNotFound},    {429, WriteOutcomeKind::kRetryLater},
      {503, WriteOutcomeKind::kRetryLater},  {500, WriteOutcomeKind::kUnavailable},
      {502, WriteOutcomeKind::kUnavailable}, {504, WriteOutcomeKind::kUnavailable},
  };
  for (const StatusCase& c : cases) {
    FakeTransport transport;
    transport.handler = [&](const HttpRequest&, const std::vector<std::string>&) -> Result<HttpResponse> {
      return MakeResponse(c.status, R"({"code":"x","message":"nope"})");
    };
    InfluxWriter writer(V2Config(), &transport, &clock_);
    auto lines = MakeLines(8);
    WriteOutcome out = writer.Write(Views(lines));
    EXPECT_EQ(out.kind, c.kind) << c.status;
    EXPECT_EQ(out.http_status, c.status);
    EXPECT_EQ(out.requests, 1) << c.status;
    EXPECT_EQ(out.accepted, 0);
    EXPECT_EQ(out.error, "HTTP " + std::to_string(c.status) + ": nope");
    EXPECT_EQ(out.retry_after_ns, 0);
  }
}

TEST_F(InfluxWriterTest, ErrorTextNeverContainsTheToken) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  transport_.handler = [](const HttpRequest&, const std::vector<std::string>&) -> Result<HttpResponse> {
    return MakeResponse(401, R"({"message":"token s3cr3t-token is invalid"})");
  };
  auto lines = MakeLines(1);
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kAuthFailed);
  EXPECT_EQ(out.error.find("s3cr3t-token"), std::string::npos);
  EXPECT_NE(out.error.find("********"), std::string::npos);
}

TEST_F(InfluxWriterTest, TransportErrorIsUnavailable) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  transport_.handler = [](const HttpRequest&, const std::vector<std::string>&) -> Result<HttpResponse> {
    return Status::Unavailable("http: Failed to connect to influx.local port 8086: Connection refused");
  };
  auto lines = MakeLines(3);
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kUnavailable);
  EXPECT_EQ(out.http_status, 0);
  EXPECT_NE(out.error.find("Connection refused"), std::string::npos);
}

TEST_F(InfluxWriterTest, Status413SplitsUntilItFits) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  transport_.handler = [](const HttpRequest&, const std::vector<std::string>& lines) -> Result<HttpResponse> {
    return MakeResponse(lines.size() > 2 ? 413 : 204);
  };
  auto lines = MakeLines(8);
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.accepted, 8);
  EXPECT_TRUE(out.rejected.empty());
  EXPECT_EQ(out.requests, 1 + 2 + 4);
  // Every line reached the server exactly once in an accepted request.
  std::vector<std::string> delivered;
  for (const HttpRequest& r : transport_.requests) {
    std::string body = Gunzip(r.body);
    if (std::count(body.begin(), body.end(), '\n') <= 2) delivered.push_back(body);
  }
  EXPECT_EQ(delivered.size(), 4u);
}

TEST_F(InfluxWriterTest, Status413SingleLineIsRejected) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  auto lines = MakeLines(4);
  lines[2] = "m v=\"" + std::string(100, 'a') + "\" 1";
  transport_.handler = [&](const HttpRequest&, const std::vector<std::string>& got) -> Result<HttpResponse> {
    for (const auto& l : got) {
      if (l == lines[2]) return MakeResponse(413, "Request Entity Too Large");
    }
    return MakeResponse(204);
  };
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.accepted, 3);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].line, lines[2]);
  EXPECT_NE(out.rejected[0].reason.find("413"), std::string::npos);
}

TEST_F(InfluxWriterTest, Status429RetryAfterSeconds) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  transport_.handler = [](const HttpRequest&, const std::vector<std::string>&) -> Result<HttpResponse> {
    return MakeResponse(429, "", {{"retry-after", "7"}});
  };
  auto lines = MakeLines(2);
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kRetryLater);
  EXPECT_EQ(out.retry_after_ns, 7 * kNsPerSec);
  EXPECT_EQ(out.error, "HTTP 429");
}

TEST_F(InfluxWriterTest, Status503RetryAfterHttpDate) {
  // Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s; the clock is 30 s before it.
  clock_.SetWallNs((784111777LL - 30) * kNsPerSec);
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  transport_.handler = [](const HttpRequest&, const std::vector<std::string>&) -> Result<HttpResponse> {
    return MakeResponse(503, "", {{"retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"}});
  };
  auto lines = MakeLines(2);
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kRetryLater);
  EXPECT_EQ(out.retry_after_ns, 30 * kNsPerSec);
}

TEST_F(InfluxWriterTest, FailureDuringBisectionRetriesWholeBatch) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  auto lines = MakeLines(8);
  int calls = 0;
  transport_.handler = [&](const HttpRequest&, const std::vector<std::string>&) -> Result<HttpResponse> {
    ++calls;
    if (calls == 1) return MakeResponse(400, R"({"error":"bad"})");
    if (calls == 2) return MakeResponse(204);  // first half
    return MakeResponse(503, "", {{"retry-after", "3"}});
  };
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kRetryLater);
  EXPECT_EQ(out.http_status, 503);
  EXPECT_EQ(out.accepted, 0);
  EXPECT_TRUE(out.rejected.empty());
  EXPECT_EQ(out.retry_after_ns, 3 * kNsPerSec);
  EXPECT_EQ(out.requests, 3);
}

// ---- helpers ----

TEST(RetryAfterTest, Forms) {
  const int64_t now = 784111777LL * kNsPerSec;
  EXPECT_EQ(ParseRetryAfterNs("", now), 0);
  EXPECT_EQ(ParseRetryAfterNs(" 120 ", now), 120 * kNsPerSec);
  EXPECT_EQ(ParseRetryAfterNs("0", now), 0);
  EXPECT_EQ(ParseRetryAfterNs("99999999999999999999", now), 86400 * kNsPerSec);
  EXPECT_EQ(ParseRetryAfterNs("Sun, 06 Nov 1994 08:50:37 GMT", now), 60 * kNsPerSec);
  EXPECT_EQ(ParseRetryAfterNs("Sunday, 06-Nov-94 08:50:37 GMT", now), 60 * kNsPerSec);
  EXPECT_EQ(ParseRetryAfterNs("Sun Nov  6 08:50:37 1994", now), 60 * kNsPerSec);
  EXPECT_EQ(ParseRetryAfterNs("Sun, 06 Nov 1994 08:48:37 GMT", now), 0);  // in the past
  EXPECT_EQ(ParseRetryAfterNs("soon", now), 0);
  EXPECT_EQ(ParseRetryAfterNs("-5", now), 0);
}

TEST(UrlEncodeTest, ReservedCharacters) {
  EXPECT_EQ(UrlEncode("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(UrlEncode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
}

TEST(InfluxErrorMessageTest, Bodies) {
  EXPECT_EQ(InfluxErrorMessage(R"({"error":"unable to parse 'x': missing fields"})"),
            "unable to parse 'x': missing fields");
  EXPECT_EQ(InfluxErrorMessage(R"({"code":"invalid","message":"no fields"})"), "no fields");
  EXPECT_EQ(InfluxErrorMessage("plain text\n"), "plain text");
  EXPECT_EQ(InfluxErrorMessage(R"({"error":42})"), R"({"error":42})");
  EXPECT_EQ(InfluxErrorMessage(""), "");
}

TEST(HttpResponseTest, HeaderIsCaseInsensitive) {
  HttpResponse r = MakeResponse(200, "", {{"retry-after", "5"}, {"content-type", "application/json"}});
  EXPECT_EQ(r.Header("Retry-After"), "5");
  EXPECT_EQ(r.Header("CONTENT-TYPE"), "application/json");
  EXPECT_EQ(r.Header("x-missing"), "");
}

}  // namespace
}  // namespace edgeline

namespace edgeline {
namespace {

class RequestLevelTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  FakeTransport transport_;
};

TEST_F(RequestLevelTest, A400AboutTheRequestKeepsEveryLineInsteadOfBisecting) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  auto lines = MakeLines(64);
  transport_.handler = [](const HttpRequest&, const std::vector<std::string>&) -> Result<HttpResponse> {
    return MakeResponse(400, R"({"code":"invalid","message":"gzip: invalid header"})");
  };
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kBadRequest);
  EXPECT_EQ(out.requests, 1);
  EXPECT_TRUE(out.rejected.empty());
  EXPECT_NE(out.error.find("gzip: invalid header"), std::string::npos);
}

TEST_F(RequestLevelTest, WordsInsideTheQuotedLineDoNotMakeItRequestLevel) {
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  std::vector<std::string> lines = {"m,precision=gzip v=1 1", "m v=2 2"};
  transport_.handler = RejectLines(
      {lines[0]}, 400, R"({"code":"invalid","message":"unable to parse 'm,precision=gzip v=1 1': bad timestamp"})");
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.accepted, 1);
}

TEST_F(RequestLevelTest, V1CreatesTheMissingDatabaseOnceWhenAllowed) {
  InfluxConfig c;
  c.api = InfluxApi::kV1;
  c.url = "http://influx.local:8086";
  c.database = "new \"db\"";
  c.create_database = true;
  InfluxWriter writer(c, &transport_, &clock_);
  bool created = false;
  transport_.handler = [&](const HttpRequest& r, const std::vector<std::string>&) -> Result<HttpResponse> {
    if (r.url.find("/query") != std::string::npos) {
      created = true;
      return MakeResponse(200, R"({"results":[{}]})");
    }
    return MakeResponse(created ? 204 : 404, created ? "" : R"({"error":"database not found"})");
  };
  WriteOutcome out = writer.Write(Views(MakeLines(3)));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_TRUE(out.created_database);
  ASSERT_EQ(transport_.requests.size(), 3u);  // write 404, CREATE DATABASE, write 204
  EXPECT_EQ(transport_.requests[1].body, "q=CREATE%20DATABASE%20%22new%20%5C%22db%5C%22%22");
  // Without the option a 404 stays not-found.
  c.create_database = false;
  created = false;
  InfluxWriter plain(c, &transport_, &clock_);
  EXPECT_EQ(plain.Write(Views(MakeLines(1))).kind, WriteOutcomeKind::kNotFound);
}

// ---- field type conflicts (issue 13: one device's wrong type must not cost the fleet) ----

// Like influxd 1.x: a field's type is fixed by the first write; a point with a field of another
// type is dropped, the others are written, and the answer names the FIRST conflict only.
class SchemaServer {
 public:
  explicit SchemaServer(std::map<std::string, FieldType> types) : types_(std::move(types)) {}
  static std::string TypeName(FieldType t) {
    switch (t) {
      case FieldType::kFloat: return "float";
      case FieldType::kInteger: return "integer";
      case FieldType::kUnsigned: return "unsigned";
      case FieldType::kString: return "string";
      case FieldType::kBool: return "boolean";
    }
    return "?";
  }
  Result<HttpResponse> Handle(const std::vector<std::string>& lines) {
    std::string reason;
    int dropped = 0;
    for (const std::string& line : lines) {
      Result<Point> p = ParseLine(line);
      if (!p.ok()) return MakeResponse(400, R"({"error":"unable to parse"})");
      bool bad = false;
      for (const auto& [key, value] : p->fields) {
        auto it = types_.find(p->measurement + "." + key);
        if (it == types_.end() || it->second == value.type) continue;
        if (reason.empty()) {
          reason = "field type conflict: input field \"" + key + "\" on measurement \"" + p->measurement +
                   "\" is type " + TypeName(value.type) + ", already exists as type " + TypeName(it->second);
        }
        bad = true;
      }
      if (bad) {
        ++dropped;
        continue;
      }
      for (const auto& [key, value] : p->fields) types_.emplace(p->measurement + "." + key, value.type);
      stored[*p->timestamp_ns] = *p;  // a point written again (same series and time) replaces itself
    }
    if (dropped == 0) return MakeResponse(204);
    nlohmann::json body = {{"error", "partial write: " + reason + " dropped=" + std::to_string(dropped)}};
    return MakeResponse(400, body.dump());
  }
  std::map<int64_t, Point> stored;  // by timestamp (the tests use one point per timestamp)

 private:
  std::map<std::string, FieldType> types_;
};

TEST_F(InfluxWriterTest, TypeConflictRemovesOnlyTheConflictingFieldOfEachPoint) {
  SchemaServer server({{"genData.temperature", FieldType::kString}});
  transport_.handler = [&](const HttpRequest&, const std::vector<std::string>& lines) { return server.Handle(lines); };
  InfluxConfig c = V2Config();
  c.api = InfluxApi::kV1;
  InfluxWriter writer(c, &transport_, &clock_);
  std::vector<std::string> lines;
  for (int i = 0; i < 40; ++i) {
    lines.push_back("genData,generatorID=g" + std::to_string(i % 3) + " temperature=" + std::to_string(200 + i) +
                    ",fuel=" + std::to_string(900 + i) + ",load=5 " + std::to_string(1000 + i));
  }
  lines.push_back(R"(genData,generatorID=g18 temperature="warm",fuel=7 2000)");  // matches the server
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.accepted, 41);
  EXPECT_EQ(out.requests, 2);  // the refused request, then the rest without the conflicting field
  ASSERT_EQ(out.rejected.size(), 40u);
  for (int i = 0; i < 40; ++i) {
    EXPECT_TRUE(out.rejected[i].fields_only);
    EXPECT_EQ(out.rejected[i].line, "genData,generatorID=g" + std::to_string(i % 3) +
                                        " temperature=" + std::to_string(200 + i) + " " + std::to_string(1000 + i));
    EXPECT_NE(out.rejected[i].reason.find("field type conflict: input field \"temperature\""), std::string::npos);
  }
  // Every point arrived with its good fields.
  int with_fuel = 0;
  for (const auto& [ts, p] : server.stored) {
    for (const auto& [key, value] : p.fields) with_fuel += key == "fuel";
  }
  EXPECT_EQ(with_fuel, 41);
  ASSERT_EQ(out.learned_types.size(), 1u);
  EXPECT_EQ(out.learned_types[0], (LearnedFieldType{"genData", "temperature", FieldType::kString}));
}

TEST_F(InfluxWriterTest, TypeConflictsNamedOneAtATimeAndAPointLeftWithoutFieldsGoesWhole) {
  SchemaServer server({{"m.a", FieldType::kString}, {"m.b", FieldType::kInteger}});
  transport_.handler = [&](const HttpRequest&, const std::vector<std::string>& lines) { return server.Handle(lines); };
  InfluxWriter writer(V2Config(), &transport_, &clock_);
  const std::vector<std::string> lines = {"m,t=x a=1.5,b=2,c=3 10", "m,t=y a=1.5,b=2 11", "m,t=z b=4i,c=1 12",
                                          "other a=1.5 13"};
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.requests, 3);
  EXPECT_EQ(out.accepted, 3);
  std::vector<std::string> rejected;
  for (const RejectedLine& r : out.rejected) rejected.push_back(r.line + (r.fields_only ? " [fields]" : " [whole]"));
  std::sort(rejected.begin(), rejected.end());
  // 1.x names a's conflict first: a goes from both points; then b's: b goes from x, and y, left
  // without fields, goes whole.
  EXPECT_EQ(rejected, (std::vector<std::string>{"m,t=x a=1.5 10 [fields]", "m,t=x b=2 10 [fields]",
                                                "m,t=y a=1.5 11 [fields]", "m,t=y b=2 11 [whole]"}));
  ASSERT_EQ(server.stored.size(), 3u);
  EXPECT_EQ(FormatPoint(server.stored[10]), "m,t=x c=3 10");
  EXPECT_EQ(FormatPoint(server.stored[12]), "m,t=z b=4i,c=1 12");
  EXPECT_EQ(FormatPoint(server.stored[13]), "other a=1.5 13");
  EXPECT_EQ(out.learned_types.size(), 2u);
}

TEST(FieldTypeConflictTest, ParsesV1V2V3AndIoxWordings) {
  EXPECT_EQ(
      ParseFieldTypeConflicts(
          R"({"error":"partial write: field type conflict: input field \"temperature\" on measurement \"genData\" is type float, already exists as type string dropped=3"})"),
      (std::vector<LearnedFieldType>{{"genData", "temperature", FieldType::kString}}));
  // v2 (422), with Go-quoted names.
  EXPECT_EQ(
      ParseFieldTypeConflicts(
          R"({"code":"unprocessable entity","message":"failure writing points to database: partial write: field type conflict: input field \"a \\\"b\" on measurement \"cpu\" is type integer, already exists as type unsigned dropped=1"})"),
      (std::vector<LearnedFieldType>{{"cpu", "a \"b", FieldType::kUnsigned}}));
  // v3: per-line data; the measurement comes from the original line.
  EXPECT_EQ(
      ParseFieldTypeConflicts(
          R"({"error":"partial write of line protocol occurred","data":[{"error_message":"invalid column type for column 'v', expected iox::column_type::field::integer, got iox::column_type::field::float","line_number":2,"original_line":"cpu,h=a v=1.5 1"},{"error_message":"invalid column type for column 'ok', expected iox::column_type::field::boolean, got iox::column_type::field::string","line_number":3,"original_line":"mem ok=\"x\" 2"}]})"),
      (std::vector<LearnedFieldType>{{"cpu", "v", FieldType::kInteger}, {"mem", "ok", FieldType::kBool}}));
  // IOx (Cloud Serverless / Dedicated).
  EXPECT_EQ(
      ParseFieldTypeConflicts(
          R"({"code":"invalid","message":"partial write has occurred, errors encountered on line(s): schema conflict: table cpu, column val is type f64 but write has type i64"})"),
      (std::vector<LearnedFieldType>{{"cpu", "val", FieldType::kFloat}}));
  EXPECT_TRUE(ParseFieldTypeConflicts(R"({"error":"unable to parse 'x': missing fields"})").empty());
}

TEST_F(InfluxWriterTest, V3TypeConflictRemovesTheFieldNamedPerLine) {
  InfluxConfig c = V2Config();
  c.api = InfluxApi::kV3;
  c.database = "db";
  transport_.handler = [](const HttpRequest&, const std::vector<std::string>& lines) -> Result<HttpResponse> {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].find("v=\"") == std::string::npos) continue;
      nlohmann::json body = {{"error", "partial write of line protocol occurred"},
                             {"data",
                              {{{"error_message",
                                 "invalid column type for column 'v', expected iox::column_type::field::float, got "
                                 "iox::column_type::field::string"},
                                {"line_number", i + 1},
                                {"original_line", lines[i]}}}}};
      return MakeResponse(400, body.dump());
    }
    return MakeResponse(204);
  };
  InfluxWriter writer(c, &transport_, &clock_);
  const std::vector<std::string> lines = {"cpu v=1 1", R"(cpu v="hot",w=2 2)", "cpu v=3 3"};
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.accepted, 3);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].line, R"(cpu v="hot" 2)");
  EXPECT_TRUE(out.rejected[0].fields_only);
  EXPECT_EQ(out.learned_types, (std::vector<LearnedFieldType>{{"cpu", "v", FieldType::kFloat}}));
}

// ---- poison lines: 5xx for one line while the server works (issue 13 item 2) ----

class PoisonTest : public InfluxWriterTest {
 protected:
  // Writes holding `poison` answer 500 like influxd 1.6; `down` answers 500 to everything,
  // the health endpoint included; `ping_ok` keeps /ping at 204 while writes fail.
  void Serve() {
    transport_.handler = [this](const HttpRequest& r, const std::vector<std::string>& lines) -> Result<HttpResponse> {
      if (r.method == "GET") {
        ++pings;
        return MakeResponse(down && !ping_ok ? 500 : 204);
      }
      if (down) return MakeResponse(500, R"({"error":"internal error"})");
      for (const std::string& line : lines) {
        if (line == poison) return MakeResponse(500, R"({"error":"engine: unable to parse bool value"})");
      }
      for (const std::string& line : lines) written.push_back(line);
      return MakeResponse(204);
    };
  }
  InfluxConfig V1() {
    InfluxConfig c = V2Config();
    c.api = InfluxApi::kV1;
    c.database = "db";
    return c;
  }
  std::string poison = "m,g=g5 v=5 1005";
  bool down = false;
  bool ping_ok = false;
  int pings = 0;
  std::vector<std::string> written;
};

TEST_F(PoisonTest, LineFailingAloneIsRejectedAfterThreeStrikesSpreadOverTime) {
  Serve();
  InfluxWriter writer(V1(), &transport_, &clock_);
  auto lines = MakeLines(16);
  ASSERT_EQ(lines[5], poison);
  // 1st: a first 500 is an outage, as always (one request, no probe).
  WriteOutcome out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kUnavailable);
  EXPECT_EQ(out.requests, 1);
  EXPECT_EQ(out.health_probes, 0);
  // 2nd: the same 500 again: health ok, bisection writes the other 15, the line gets strike 1.
  clock_.AdvanceNs(kNsPerSec);
  out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kUnavailable);
  EXPECT_EQ(out.http_status, 500);
  EXPECT_NE(out.error.find("try 1 of 3"), std::string::npos) << out.error;
  EXPECT_EQ(written.size(), 15u);
  // 3rd: the others first in one request, then the suspect alone: strike 2.
  clock_.AdvanceNs(kNsPerSec);
  written.clear();
  out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kUnavailable);
  EXPECT_EQ(out.requests, 2);
  EXPECT_EQ(written.size(), 15u);
  // 4th, 2 s after the first strike: strike 3: rejected with the status and the server's body.
  clock_.AdvanceNs(kNsPerSec);
  out = writer.Write(Views(lines));
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  EXPECT_EQ(out.accepted, 15);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].line, poison);
  EXPECT_FALSE(out.rejected[0].fields_only);
  EXPECT_NE(out.rejected[0].reason.find("HTTP 500: engine: unable to parse bool value"), std::string::npos)
      << out.rejected[0].reason;
}

TEST_F(PoisonTest, StrikesCloseTogetherWaitForTheMinimumSpread) {
  Serve();
  InfluxWriter writer(V1(), &transport_, &clock_);
  auto lines = MakeLines(4);
  poison = lines[1];
  int writes = 0;
  WriteOutcome out;
  do {
    out = writer.Write(Views(lines));
    ++writes;
    clock_.AdvanceNs(100 * kNsPerMs);
  } while (out.kind != WriteOutcomeKind::kOk && writes < 100);
  EXPECT_EQ(out.rejected.size(), 1u);
  // 1 outage try, then strikes every 100 ms: the 3rd strike comes at 200 ms, the rejection at 2 s.
  EXPECT_EQ(writes, 1 + 21);
}

TEST_F(PoisonTest, ServerDownForEverythingNeverRejectsAndCostsFewRequests) {
  down = true;
  Serve();
  InfluxWriter writer(V1(), &transport_, &clock_);
  auto lines = MakeLines(64);
  for (int i = 0; i < 50; ++i) {
    const size_t before = transport_.requests.size();
    WriteOutcome out = writer.Write(Views(lines));
    EXPECT_EQ(out.kind, WriteOutcomeKind::kUnavailable);
    EXPECT_TRUE(out.rejected.empty());
    EXPECT_LE(transport_.requests.size() - before, 2u);  // the write and, from the 2nd on, one probe
    clock_.AdvanceNs(10 * kNsPerSec);
  }
  // Back up, except for the poison line: isolated, everything else written.
  down = false;
  poison = lines[7];
  WriteOutcome out;
  for (int i = 0; i < 20 && out.rejected.empty(); ++i) {
    out = writer.Write(Views(lines));
    clock_.AdvanceNs(kNsPerSec);
  }
  EXPECT_EQ(out.kind, WriteOutcomeKind::kOk);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].line, lines[7]);
  EXPECT_EQ(out.accepted, 63);
}

TEST_F(PoisonTest, WritesFailingWhileHealthAnswersNeverRejectAndStayBounded) {
  down = true;
  ping_ok = true;  // e.g. a full disk: /ping answers, every write fails
  Serve();
  InfluxWriter writer(V1(), &transport_, &clock_);
  auto lines = MakeLines(64);
  for (int i = 0; i < 50; ++i) {
    const size_t before = transport_.requests.size();
    WriteOutcome out = writer.Write(Views(lines));
    EXPECT_EQ(out.kind, WriteOutcomeKind::kUnavailable);
    EXPECT_TRUE(out.rejected.empty());
    // At most log2(64)+2 answers of 5xx before the attempt gives up, plus its last, and a probe
    // for the request and for each single line it reached.
    EXPECT_LE(transport_.requests.size() - before, (6u + 3u) + 3u);
    clock_.AdvanceNs(10 * kNsPerSec);
  }
  // Then the poison line alone among healthy writes: isolated.
  down = false;
  ping_ok = false;
  poison = lines[40];
  WriteOutcome out;
  for (int i = 0; i < 20 && out.rejected.empty(); ++i) {
    out = writer.Write(Views(lines));
    clock_.AdvanceNs(kNsPerSec);
  }
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].line, lines[40]);
}

TEST_F(PoisonTest, ServerConditionInTheBodyNeverBlamesTheLineAndThrottlingIsNeverBisected) {
  transport_.handler = [&](const HttpRequest& r, const std::vector<std::string>& lines) -> Result<HttpResponse> {
    if (r.method == "GET") return MakeResponse(204);
    for (const std::string& line : lines) {
      if (line == poison) return MakeResponse(500, R"({"error":"timeout"})");
    }
    return MakeResponse(204);
  };
  InfluxWriter writer(V1(), &transport_, &clock_);
  auto lines = MakeLines(8);
  for (int i = 0; i < 20; ++i) {
    WriteOutcome out = writer.Write(Views(lines));
    EXPECT_EQ(out.kind, WriteOutcomeKind::kUnavailable);
    EXPECT_EQ(out.requests, 1);
    clock_.AdvanceNs(5 * kNsPerSec);
  }
  // 503 (with or without Retry-After) and 429: throttling, one request, no probe, never bisected.
  for (int status : {503, 429}) {
    transport_.handler = [&](const HttpRequest&, const std::vector<std::string>&) -> Result<HttpResponse> {
      return MakeResponse(status);
    };
    for (int i = 0; i < 5; ++i) {
      WriteOutcome out = writer.Write(Views(lines));
      EXPECT_EQ(out.kind, WriteOutcomeKind::kRetryLater);
      EXPECT_EQ(out.requests, 1);
      EXPECT_EQ(out.health_probes, 0);
    }
  }
}

TEST_F(PoisonTest, HealthProbeUsesPingForV1AndV3AndHealthForV2) {
  Serve();
  poison = MakeLines(2)[0];
  for (InfluxApi api : {InfluxApi::kV1, InfluxApi::kV2, InfluxApi::kV3}) {
    transport_.requests.clear();
    InfluxConfig c = V1();
    c.api = api;
    InfluxWriter writer(c, &transport_, &clock_);
    (void)writer.Write(Views(MakeLines(2)));
    (void)writer.Write(Views(MakeLines(2)));
    std::string probe;
    for (const HttpRequest& r : transport_.requests) {
      if (r.method == "GET") probe = r.url;
    }
    EXPECT_EQ(probe, api == InfluxApi::kV2 ? "http://influx.local:8086/health" : "http://influx.local:8086/ping");
  }
}

}  // namespace
}  // namespace edgeline
