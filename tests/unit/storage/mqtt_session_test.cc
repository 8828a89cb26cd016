// The queue file as the MQTT session store: Paho's client persistence per session, and the
// receipts that settle in the transaction storing a message (Queue::AppendReceived).
#include <gtest/gtest.h>

#include <mqtt/exception.h>

#include "ingest/mqtt_ingest.h"
#include "ingest/paho_persistence.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

class MqttSessionTest : public ::testing::Test {
 protected:
  std::unique_ptr<Queue> Open(QueueConfig config = [] {
    QueueConfig c;
    c.sync = SyncMode::kNormal;
    return c;
  }()) {
    return OpenTestQueue(dir_.File("queue.db"), &clock_, std::move(config));
  }
  static BatchInput OneLine(const std::string& line) {
    BatchInput in;
    in.lines = {line};
    in.min_ts_ns = in.max_ts_ns = 1;
    return in;
  }

  TempDir dir_;
  FakeClock clock_;
};

TEST_F(MqttSessionTest, PahoStateIsKeptPerSessionAndSurvivesReopening) {
  auto q = Open();
  PahoPersistence a(q.get(), "a tcp://h:1");
  PahoPersistence b(q.get(), "b tcp://h:1");
  a.put("r-7", {mqtt::string_view("\x32\x0b", 2), mqtt::string_view("payload")});
  a.put("s-1", {mqtt::string_view("x")});
  b.put("r-7", {mqtt::string_view("other")});
  EXPECT_EQ(a.get("r-7"), std::string("\x32\x0bpayload", 9));
  EXPECT_TRUE(a.contains_key("s-1"));
  EXPECT_FALSE(a.contains_key("s-2"));
  EXPECT_THROW(a.get("s-2"), mqtt::persistence_exception);
  a.remove("s-1");
  a.remove("s-1");  // Paho removes what the commit already released: not an error
  q.reset();

  q = Open();
  PahoPersistence a2(q.get(), "a tcp://h:1");
  mqtt::string_collection keys = a2.keys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0], "r-7");
  EXPECT_EQ(a2.get("r-7"), std::string("\x32\x0bpayload", 9));
  a2.clear();
  EXPECT_TRUE(a2.keys().empty());
  PahoPersistence b2(q.get(), "b tcp://h:1");
  EXPECT_EQ(b2.get("r-7"), "other");  // another session's state is untouched
}

// A QoS 2 message is released from Paho's inbound state by the very transaction that stores it:
// if the commit fails, the state stays and Paho still holds the message after a restart.
TEST_F(MqttSessionTest, TheCommitOfAQos2MessageReleasesItsInboundStateAtomically) {
  QueueConfig config;
  config.sync = SyncMode::kNormal;
  config.full_policy = QueueFullPolicy::kBackpressure;
  config.max_bytes = 200;
  auto q = Open(config);
  ASSERT_TRUE(q->PutMqttState("s", "r-5", "packet").ok());
  ASSERT_TRUE(q->PutMqttState("s", "r-6", "packet").ok());
  const MqttReceipt receipt{"s", 5, 2, MqttDigest("t", "p"), 1};

  // Too large for the bound: refused, nothing released.
  auto refused = q->AppendReceived({OneLine("m s=\"" + std::string(200, 'x') + "\" 1")}, {}, {receipt});
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(*q->MqttStateKeys("s"), (std::vector<std::string>{"r-5", "r-6"}));

  ASSERT_TRUE(q->AppendReceived({OneLine("m v=1 1")}, {}, {receipt}).ok());
  EXPECT_EQ(*q->MqttStateKeys("s"), (std::vector<std::string>{"r-6"}));
  auto sessions = q->MqttSessions();
  ASSERT_TRUE(sessions.ok());
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_EQ((*sessions)[0].inbound_qos2, 1);
}

// Receipts are trimmed to the newest `keep` of each session once it holds a quarter more; the
// newest still recognise a redelivery, the oldest no longer do, and other sessions are untouched.
TEST_F(MqttSessionTest, TrimKeepsTheNewestReceiptsOfEachSession) {
  auto q = Open();
  const uint64_t digest = MqttDigest("t", "p");
  for (int id = 1; id <= 700; ++id) {
    clock_.AdvanceNs(kNsPerMs);
    ASSERT_TRUE(q->AppendReceived({OneLine("m v=1 " + std::to_string(id))}, {}, {{"s", id, 1, digest, 1}}).ok());
  }
  ASSERT_TRUE(q->AppendReceived({OneLine("m v=1 1")}, {}, {{"other", 1, 1, digest, 1}}).ok());
  EXPECT_EQ(*q->TrimMqttReceipts(600), 0);  // 700 is not a quarter over 600
  EXPECT_EQ(*q->TrimMqttReceipts(512), 700 - 512);
  EXPECT_EQ(*q->TrimMqttReceipts(512), 0);
  auto recognised = [&](const std::string& session, int id) {
    auto stored = q->StoredOnEarlierConnection({session, id, 1, digest, 2});
    return stored.ok() && *stored;
  };
  EXPECT_TRUE(recognised("s", 700));
  EXPECT_TRUE(recognised("s", 700 - 511));
  EXPECT_FALSE(recognised("s", 700 - 512));
  EXPECT_FALSE(recognised("s", 1));
  EXPECT_TRUE(recognised("other", 1));
}

// A QoS 1 redelivery is recognised only when packet id AND digest match a message stored on an
// earlier connection of the same session.
TEST_F(MqttSessionTest, AQos1ReceiptRecognisesTheBrokersRedeliveryOnly) {
  auto q = Open();
  const uint64_t digest = MqttDigest("emergency_generator/g1", R"({"fuel": 1})");
  ASSERT_TRUE(q->AppendReceived({OneLine("m v=1 1")}, {}, {{"s", 9, 1, digest, 100}}).ok());

  auto check = [&](MqttReceipt r) {
    auto stored = q->StoredOnEarlierConnection(r);
    EXPECT_TRUE(stored.ok());
    return stored.ok() && *stored;
  };
  EXPECT_TRUE(check({"s", 9, 1, digest, 101}));   // next connection, same message
  EXPECT_FALSE(check({"s", 9, 1, digest, 100}));  // same connection: brokers resend only after a reconnect
  EXPECT_FALSE(check({"s", 8, 1, digest, 101}));  // another packet
  EXPECT_FALSE(check({"s", 9, 1, MqttDigest("emergency_generator/g1", R"({"fuel": 2})"), 101}));
  EXPECT_FALSE(check({"s", 9, 1, MqttDigest("emergency_generator/g2", R"({"fuel": 1})"), 101}));
  EXPECT_FALSE(check({"other", 9, 1, digest, 101}));

  // A later message with the same packet id replaces the receipt.
  const uint64_t next = MqttDigest("emergency_generator/g1", R"({"fuel": 3})");
  ASSERT_TRUE(q->AppendReceived({OneLine("m v=3 3")}, {}, {{"s", 9, 1, next, 101}}).ok());
  EXPECT_FALSE(check({"s", 9, 1, digest, 102}));
  EXPECT_TRUE(check({"s", 9, 1, next, 102}));

  ASSERT_TRUE(q->CountSuppressedDuplicate("s").ok());
  ASSERT_TRUE(q->CountSuppressedDuplicate("s").ok());
  auto sessions = q->MqttSessions();
  ASSERT_TRUE(sessions.ok());
  ASSERT_EQ(sessions->size(), 1u);
  EXPECT_EQ((*sessions)[0].receipts, 1);
  EXPECT_EQ((*sessions)[0].duplicates_suppressed, 2);
}

// The session name is stored in the queue file and shown by status: never with credentials.
TEST(MqttSessionNameTest, NamesClientAndBrokerWithoutCredentials) {
  MqttConfig config;
  config.client_id = "edge";
  config.url = "ssl://user:s3cret@broker.example:8883";
  EXPECT_EQ(MqttIngest::SessionName(config, 0), "edge ssl://broker.example:8883");
  config.url = "tcp://broker:1883";
  config.connections = 2;
  EXPECT_EQ(MqttIngest::SessionName(config, 1), "edge-1 tcp://broker:1883");
  config.url = "ws://broker:80/mqtt@x";  // an '@' in the path is not a credential
  EXPECT_EQ(MqttIngest::SessionName(config, 0), "edge-0 ws://broker:80/mqtt@x");
}

TEST(MqttDigestTest, IsStableAndSeparatesTopicFromPayload) {
  EXPECT_EQ(MqttDigest("", ""), 0xaf63bd4c8601b7dfULL);  // FNV-1a 64 of one zero byte
  EXPECT_NE(MqttDigest("ab", "c"), MqttDigest("a", "bc"));
}

}  // namespace
}  // namespace edgeline
