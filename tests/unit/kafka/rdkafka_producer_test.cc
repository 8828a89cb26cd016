// NewRdKafkaProducer's configuration: what librdkafka refuses comes back as a Status naming the
// property, never its value (values may be credentials). No broker is contacted by these tests:
// creating a producer only starts librdkafka's threads.
#include <gtest/gtest.h>

#include <string>

#include "kafka/producer.h"

namespace edgeline {
namespace {

KafkaConfig BaseConfig() {
  KafkaConfig config;
  config.brokers = "127.0.0.1:1";
  return config;
}

TEST(KafkaRdKafkaProducerTest, CreatesWithTheDefaults) {
  auto producer = NewRdKafkaProducer(BaseConfig());
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  EXPECT_EQ((*producer)->Description(), "kafka 127.0.0.1:1");
}

TEST(KafkaRdKafkaProducerTest, CreatesWithSaslAndPassThroughProperties) {
  KafkaConfig config = BaseConfig();
  config.security_protocol = "sasl_plaintext";
  config.sasl_mechanism = "PLAIN";
  config.sasl_username = "api-key";
  config.sasl_password = "api-secret";
  config.compression = "lz4";
  config.properties = {{"linger.ms", "20"}, {"message.timeout.ms", "60000"}};
  auto producer = NewRdKafkaProducer(config);
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
}

TEST(KafkaRdKafkaProducerTest, UnknownPropertyIsNamedButItsValueIsNot) {
  KafkaConfig config = BaseConfig();
  config.properties = {{"no.such.property", "hunter2-secret"}};
  auto producer = NewRdKafkaProducer(config);
  ASSERT_FALSE(producer.ok());
  EXPECT_EQ(producer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(producer.status().message().find("no.such.property"), std::string::npos);
  EXPECT_EQ(producer.status().message().find("hunter2"), std::string::npos);
}

TEST(KafkaRdKafkaProducerTest, InvalidValueIsNamedButNotShown) {
  KafkaConfig config = BaseConfig();
  config.properties = {{"linger.ms", "hunter2-secret"}};
  auto producer = NewRdKafkaProducer(config);
  ASSERT_FALSE(producer.ok());
  EXPECT_NE(producer.status().message().find("linger.ms"), std::string::npos);
  EXPECT_EQ(producer.status().message().find("hunter2"), std::string::npos);

  config = BaseConfig();
  config.compression = "hunter2";
  producer = NewRdKafkaProducer(config);
  ASSERT_FALSE(producer.ok());
  EXPECT_NE(producer.status().message().find("compression.codec"), std::string::npos);
  EXPECT_EQ(producer.status().message().find("hunter2"), std::string::npos);
}

TEST(KafkaRdKafkaProducerTest, PassThroughPropertiesOverrideOurs) {
  // Applied last: a pass-through acks=1 is accepted by librdkafka only because it comes after
  // our acks=all and replaces it; idempotence then refuses it at creation, naming the conflict.
  KafkaConfig config = BaseConfig();
  config.properties = {{"acks", "1"}};
  auto producer = NewRdKafkaProducer(config);
  ASSERT_FALSE(producer.ok());
  EXPECT_NE(producer.status().message().find("acks"), std::string::npos) << producer.status().message();
}

TEST(KafkaRdKafkaProducerTest, NoBrokersIsAConfigError) {
  auto producer = NewRdKafkaProducer(KafkaConfig{});
  ASSERT_FALSE(producer.ok());
  EXPECT_EQ(producer.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgeline
