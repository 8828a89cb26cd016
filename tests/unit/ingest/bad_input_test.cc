// Bounded handling of hostile input: deep nesting, huge objects, huge
// numbers, NaN/Inf literals, invalid UTF-8, oversize payloads and payloads that would multiply
// into many dead letters. Each case must end in lines or a clear reason, without a crash, a
// stack overflow or memory out of proportion: peak heap use during Map() is measured with a
// counting operator new (this test binary only). Regression tests for the bugs found by
// tests/fuzz are named after them.
#include <malloc.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/line_protocol.h"
#include "config/config.h"
#include "ingest/group_committer.h"
#include "ingest/mapping.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

// ---- Heap accounting: live bytes and their peak, over every operator new in the binary.
namespace {
std::atomic<int64_t> g_live{0};
std::atomic<int64_t> g_peak{0};

void* Track(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  const auto n = static_cast<int64_t>(malloc_usable_size(p));
  const int64_t live = g_live.fetch_add(n) + n;
  int64_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
  }
  return p;
}
void Untrack(void* p) {
  if (p == nullptr) return;
  g_live.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)));
  std::free(p);
}
void* AlignedAlloc(std::size_t n, std::align_val_t a) {
  const auto align = static_cast<std::size_t>(a);
  return std::aligned_alloc(align, (n + align - 1) / align * align);
}
}  // namespace

void* operator new(std::size_t n) { return Track(std::malloc(n == 0 ? 1 : n)); }
void* operator new[](std::size_t n) { return Track(std::malloc(n == 0 ? 1 : n)); }
void* operator new(std::size_t n, std::align_val_t a) { return Track(AlignedAlloc(n == 0 ? 1 : n, a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return Track(AlignedAlloc(n == 0 ? 1 : n, a)); }
void operator delete(void* p) noexcept { Untrack(p); }
void operator delete[](void* p) noexcept { Untrack(p); }
void operator delete(void* p, std::size_t) noexcept { Untrack(p); }
void operator delete[](void* p, std::size_t) noexcept { Untrack(p); }
void operator delete(void* p, std::align_val_t) noexcept { Untrack(p); }
void operator delete[](void* p, std::align_val_t) noexcept { Untrack(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { Untrack(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { Untrack(p); }

namespace edgeline {
namespace {

constexpr int64_t kMiB = 1 << 20;

// Heap bytes allocated at the worst moment of fn(), above what was live before it.
int64_t PeakHeapDuring(const std::function<void()>& fn) {
  const int64_t before = g_live.load();
  g_peak.store(before);
  fn();
  return g_peak.load() - before;
}

bool AnyContains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v) {
    if (x.find(s) != std::string::npos) return true;
  }
  return false;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += "[" + x + "] ";
  return out;
}

// Every reason is one printable ASCII line of bounded length: they go to logs and the DLQ.
void ExpectCleanReasons(const MappedMessage& m) {
  for (const auto* list : {&m.errors, &m.warnings}) {
    EXPECT_LE(list->size(), 21u);
    for (const auto& r : *list) {
      EXPECT_LE(r.size(), 400u);
      for (char c : r) ASSERT_TRUE(c >= 0x20 && c < 0x7F) << "reason with byte " << int(c) << ": " << r;
    }
  }
}

// Lines that the mapper writes must parse with the strict parser (what InfluxDB accepts).
void ExpectLinesParse(const MappedMessage& m) {
  for (const auto& line : m.lines) {
    auto p = ParseLine(line);
    EXPECT_TRUE(p.ok()) << line << ": " << p.status().ToString();
  }
}

MappedMessage MapChecked(const Mapper& mapper, const std::string& topic, const std::string& payload,
                         int64_t* peak = nullptr) {
  MappedMessage m;
  const int64_t bytes = PeakHeapDuring([&] { m = mapper.Map(topic, payload, 1764000000000000000); });
  if (peak != nullptr) *peak = bytes;
  EXPECT_TRUE(!m.lines.empty() || !m.errors.empty()) << "neither lines nor a reason";
  ExpectCleanReasons(m);
  ExpectLinesParse(m);
  return m;
}

TEST(BadInputTest, HundredThousandOpenBracketsIsMalformedWithBoundedMemory) {
  Mapper mapper{MappingConfig{}};
  int64_t peak = 0;
  MappedMessage m = MapChecked(mapper, "t", std::string(100'000, '['), &peak);
  EXPECT_TRUE(m.lines.empty());
  ASSERT_EQ(m.errors.size(), 1u);
  EXPECT_NE(m.errors[0].find("malformed JSON"), std::string::npos) << m.errors[0];
  EXPECT_LT(peak, 8 * kMiB);
}

TEST(BadInputTest, DeepBalancedArraysAreNotAnObject) {
  Mapper mapper{MappingConfig{}};
  int64_t peak = 0;
  MappedMessage m = MapChecked(mapper, "t", std::string(100'000, '[') + std::string(100'000, ']'), &peak);
  EXPECT_TRUE(AnyContains(m.errors, "JSON top level is not an object")) << Joined(m.errors);
  EXPECT_LT(peak, 8 * kMiB);

  // Inside an object the deep array is one dropped key; the rest of the message is kept.
  m = MapChecked(mapper, "t", R"({"fuel": 1, "x": )" + std::string(100'000, '[') + std::string(100'000, ']') + "}",
                 &peak);
  ASSERT_EQ(m.lines.size(), 1u) << Joined(m.errors);
  EXPECT_TRUE(AnyContains(m.warnings, "key x dropped: arrays are not supported")) << Joined(m.warnings);
  EXPECT_LT(peak, 8 * kMiB);
}

// Was a DOM of one object per level (~100 bytes each); now members below the flattening depth
// are dropped while parsing.
TEST(BadInputTest, DeepObjectNestingKeepsTheMessageWithBoundedMemory) {
  Mapper mapper{MappingConfig{}};
  std::string payload = R"({"fuel": 1, "x": )";
  const int depth = 200'000;  // ~1.2 MiB
  for (int i = 0; i < depth; ++i) payload += R"({"a": )";
  payload += "1";
  payload += std::string(depth, '}');
  payload += "}";
  int64_t peak = 0;
  MappedMessage m = MapChecked(mapper, "t", payload, &peak);
  ASSERT_EQ(m.lines.size(), 1u) << Joined(m.errors);
  EXPECT_TRUE(AnyContains(m.warnings, "nested deeper than 32 levels")) << Joined(m.warnings);
  EXPECT_LT(peak, 8 * kMiB);
}

TEST(BadInputTest, MillionKeyObjectIsRejectedBeforeItsDomIsBuilt) {
  Mapper mapper{MappingConfig{}};
  std::string payload = "{";
  for (int i = 0; i < 1'000'000; ++i) payload += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  payload.back() = '}';
  int64_t peak = 0;
  MappedMessage m = MapChecked(mapper, "t", payload, &peak);  // ~15 MiB of JSON
  EXPECT_TRUE(m.lines.empty());
  EXPECT_TRUE(AnyContains(m.errors, "JSON has more than 10000 members")) << Joined(m.errors);
  EXPECT_LT(peak, 16 * kMiB);  // a full DOM of this object takes well over 100 MiB

  // A large array is dropped as it is parsed, so it costs nothing and does not count.
  payload = R"({"fuel": 2, "samples": [)";
  for (int i = 0; i < 1'000'000; ++i) payload += "1.5,";
  payload.back() = ']';
  payload += "}";
  m = MapChecked(mapper, "t", payload, &peak);
  ASSERT_EQ(m.lines.size(), 1u) << Joined(m.errors);
  EXPECT_TRUE(AnyContains(m.warnings, "key samples dropped: arrays are not supported"));
  EXPECT_LT(peak, 4 * kMiB);
}

TEST(BadInputTest, HugeNumbers) {
  MappingConfig config;
  config.json_integers = {"count", "big"};
  Mapper mapper{config};
  const std::string hundred_k_digits = "1" + std::string(100'000, '0');
  MappedMessage m =
      MapChecked(mapper, "t",
                 R"({"fuel": 1, "inf": 1e400, "ninf": -1e400, "long": )" + hundred_k_digits +
                     R"(, "tiny": 1e-400, "big": 123456789012345678901234567890, "count": 18446744073709551615})");
  ASSERT_EQ(m.lines.size(), 1u) << Joined(m.errors);
  EXPECT_TRUE(AnyContains(m.warnings, "field inf dropped: number out of range")) << Joined(m.warnings);
  EXPECT_TRUE(AnyContains(m.warnings, "field ninf dropped: number out of range"));
  EXPECT_TRUE(AnyContains(m.warnings, "field long dropped: number out of range"));
  EXPECT_TRUE(AnyContains(m.warnings, "field big dropped: not an integer"));
  EXPECT_TRUE(AnyContains(m.warnings, "field count dropped: integer out of range"));
  Point p = *ParseLine(m.lines[0]);
  EXPECT_EQ(p.fields.size(), 2u);  // fuel and tiny (an underflow is 0, still a number)

  // Line protocol: out-of-range numbers reject the line with the reason.
  for (const char* line :
       {"m f=99999999999999999999i", "m f=18446744073709551616u", "m f=1e400", "m f=1 99999999999999999999"}) {
    m = MapChecked(mapper, "t", line);
    EXPECT_TRUE(m.lines.empty()) << line;
    EXPECT_TRUE(AnyContains(m.errors, "out of range")) << line << ": " << Joined(m.errors);
  }
}

TEST(BadInputTest, NanAndInfinityLiterals) {
  Mapper mapper{MappingConfig{}};
  for (const char* payload :
       {R"({"fuel": NaN})", R"({"fuel": Infinity})", R"({"fuel": -Infinity})", R"({"fuel": nan})"}) {
    MappedMessage m = MapChecked(mapper, "t", payload);
    EXPECT_TRUE(m.lines.empty()) << payload;
    EXPECT_TRUE(AnyContains(m.errors, "malformed JSON")) << payload << ": " << Joined(m.errors);
  }
  for (const char* line : {"m f=NaN", "m f=nan", "m f=inf", "m f=+Inf", "m f=-Infinity"}) {
    MappedMessage m = MapChecked(mapper, "t", line);
    EXPECT_TRUE(m.lines.empty()) << line;
    EXPECT_TRUE(AnyContains(m.errors, "invalid field value")) << line << ": " << Joined(m.errors);
  }
}

TEST(BadInputTest, InvalidUtf8) {
  Mapper mapper{MappingConfig{}};
  for (std::string payload : {std::string("{\"fuel\": 1, \"note\": \"\xff\xfe\"}"), std::string("{\"k\xc3\x28\": 1}"),
                              std::string(R"({"fuel": 1, "s": "\ud800"})"), std::string("\xff\xfe")}) {
    MappedMessage m = MapChecked(mapper, "t", payload);
    EXPECT_TRUE(m.lines.empty());
    ASSERT_FALSE(m.errors.empty());
  }
  MappedMessage m = MapChecked(mapper, "t", "genData,g=\xed\xa0\x80 fuel=1");  // encoded surrogate
  EXPECT_TRUE(AnyContains(m.errors, "invalid UTF-8 at byte 10")) << Joined(m.errors);
  // A reason never carries the payload's raw bytes (here an escape sequence and a line break).
  m = MapChecked(mapper, "t", R"({"fuel": 1, "a\u001b[31m\nforged": [1]})");
  EXPECT_TRUE(AnyContains(m.warnings, "key a?[31m?forged dropped: arrays")) << Joined(m.warnings);
}

// Found by fuzz_mapping: a topic segment that is not UTF-8 became a tag value, and the line
// written was one that our parser (and InfluxDB) rejects.
TEST(BadInputTest, TopicTagWithInvalidUtf8IsDroppedNotWritten) {
  MappingConfig config;
  config.topic_tags = "emergency_generator/{generatorID}";
  Mapper mapper{config};
  MappedMessage m = MapChecked(mapper, "emergency_generator/a\xafor0", R"({"fuel": 5})");
  ASSERT_EQ(m.lines.size(), 1u) << Joined(m.errors);
  EXPECT_TRUE(ParseLine(m.lines[0])->tags.empty()) << m.lines[0];
  EXPECT_TRUE(AnyContains(m.warnings, "topic tag generatorID dropped: value is not valid UTF-8")) << Joined(m.warnings);

  // A template key that cannot be written (from EDGELINE_TOPIC_TAGS) is dropped the same way.
  config.topic_tags = "emergency_generator/{gen\\}";
  m = MapChecked(Mapper{config}, "emergency_generator/g1", R"({"fuel": 5})");
  ASSERT_EQ(m.lines.size(), 1u);
  EXPECT_TRUE(AnyContains(m.warnings, "key ends with a backslash")) << Joined(m.warnings);
  EXPECT_FALSE(UnrepresentableReason(LpElement::kKey, "a\xaf").empty());
  EXPECT_FALSE(UnrepresentableReason(LpElement::kStringField, "\xc0\x80").empty());
}

// Each reason becomes a dead letter holding the payload, so a 1 MiB payload of bad lines (or of
// dropped keys) must not produce one per line, each with its own copy of the payload.
TEST(BadInputTest, ReasonsPerMessageAreCappedWithACount) {
  Mapper mapper{MappingConfig{}};
  std::string lines;
  for (int i = 0; i < 1000; ++i) lines += "bad line " + std::to_string(i) + "\n";
  lines += "m f=1\n";
  MappedMessage m = MapChecked(mapper, "t", lines);
  EXPECT_EQ(m.lines.size(), 1u);
  ASSERT_EQ(m.errors.size(), 21u);
  EXPECT_EQ(m.errors.back(), "... and 980 more lines rejected");
  EXPECT_NE(m.errors[0].find("line 1: line protocol:"), std::string::npos) << m.errors[0];

  std::string json = R"({"fuel": 1)";
  for (int i = 0; i < 100; ++i) json += ", \"a" + std::to_string(i) + "\": []";
  json += "}";
  m = MapChecked(mapper, "t", json);
  EXPECT_EQ(m.lines.size(), 1u);
  ASSERT_EQ(m.warnings.size(), 21u);
  EXPECT_EQ(m.warnings.back(), "... and 80 more warnings");
}

class BadInputIngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue_ = OpenTestQueue(dir_.File("queue.db"), &clock_);
    ASSERT_NE(queue_, nullptr);
    ASSERT_TRUE(queue_->RegisterConsumer("influx", std::string(kRawStream)).ok());
    committer_ = std::make_unique<GroupCommitter>(queue_.get(), &clock_, GroupCommitterOptions{});
  }
  void TearDown() override {
    committer_.reset();
    queue_.reset();
  }
  std::vector<DeadLetter> IngestDeadLetters() {
    auto dl = queue_->DeadLetters("ingest", 1000);
    EXPECT_TRUE(dl.ok()) << dl.status().ToString();
    return dl.ok() ? *dl : std::vector<DeadLetter>{};
  }

  TempDir dir_;
  FakeClock clock_;
  Mapper mapper_{MappingConfig{}};
  std::unique_ptr<Queue> queue_;
  std::unique_ptr<GroupCommitter> committer_;
};

// EDGELINE_MQTT_MAX_PAYLOAD is enforced in Mapper::Prepare, before mapping: the payload
// is refused whole with the limit in the reason and a 1 KiB prefix kept for diagnosis.
TEST_F(BadInputIngestTest, PayloadOverMaxPayloadIsRefusedBeforeMapping) {
  const int64_t limit = kDefaultMaxPayloadBytes;
  ASSERT_EQ(limit, Config{}.mqtt.max_payload_bytes);
  const std::string payload = R"({"fuel": 1, "pad": ")" + std::string(limit, 'x') + R"("})";
  ASSERT_TRUE(committer_->Submit(mapper_.Prepare("t", payload, clock_.WallNowNs())).ok());
  auto dl = IngestDeadLetters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_NE(dl[0].reason.find("exceeds EDGELINE_MQTT_MAX_PAYLOAD (1048576)"), std::string::npos) << dl[0].reason;
  EXPECT_FALSE(dl[0].payload.empty());
  EXPECT_LE(dl[0].payload.size(), 1024u);
}

TEST_F(BadInputIngestTest, MegabyteOfBadLinesMakesBoundedDeadLetters) {
  std::string payload;
  while (payload.size() < 1000 * 1000) payload += "x\n";  // ~500k bad lines, under 1 MiB
  ASSERT_TRUE(committer_->Submit(mapper_.Prepare("t", payload, clock_.WallNowNs())).ok());
  auto dl = IngestDeadLetters();
  // One entry for the message: the payload (prefix) stored once, 20 reasons and the count of
  // the rest.
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_LE(dl[0].payload.size(), 64u * 1024);  // the DLQ keeps a 64 KiB prefix of huge payloads
  EXPECT_NE(dl[0].reason.find("; ... and 499980 more lines rejected"), std::string::npos);
  EXPECT_LT(dl[0].reason.size(), 8192u) << "reasons are capped";
}

// Found while fuzzing fuzz_env: the "did you mean" suggestion compared an unknown name with
// every variable at O(length^2) each; a long pasted name now skips the impossible candidates.
TEST(BadInputTest, UnknownVariableWithHugeNameIsReportedPlainly) {
  const std::string name = "EDGELINE_" + std::string(1 << 20, 'X');
  ConfigParseResult r = ParseConfig({{name, "1"}, {"EDGELINE_INFLUX_TOKN", "t"}});
  bool plain = false, suggested = false;
  for (const auto& p : r.problems) {
    if (p.variable == name) plain = p.message == "unknown variable";
    if (p.variable == "EDGELINE_INFLUX_TOKN") {
      suggested = p.message == "unknown variable (did you mean EDGELINE_INFLUX_TOKEN?)";
    }
  }
  EXPECT_TRUE(plain);
  EXPECT_TRUE(suggested);
}

}  // namespace
}  // namespace edgeline
