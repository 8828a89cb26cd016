#include "agent/alarm_publisher.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/log.h"

namespace edgeline {

AlarmPublisher::AlarmPublisher(Queue* queue, MessagePublisher* publisher, const Clock* clock,
                               AlarmPublisherOptions options)
    : QueueConsumer(std::string(kAlarmSink), std::string(kAlarmStream), queue, "alarms"),
      publisher_(publisher),
      clock_(clock),
      options_(options) {}

int64_t AlarmPublisher::Step() {
  if (!started() && !Start().ok()) return options_.retry_min_ns;
  auto read = queue()->Read(std::string(kAlarmSink), 100);
  if (!read.ok()) {
    LOG_WARN("alarms") << "cannot read alarm changes: " << read.status().ToString();
    return options_.retry_min_ns;
  }
  if (read->empty()) return options_.idle_ns;
  int64_t published = 0;
  for (const Batch& batch : *read) {
    for (const std::string& line : batch.lines) {
      std::string topic;
      std::string payload;
      try {
        auto record = nlohmann::json::parse(line);
        topic = record.at("topic").get<std::string>();
        payload = record.at("payload").get<std::string>();
      } catch (const nlohmann::json::exception&) {
        // Written by our own downsampler; unreadable means a bug, and retrying cannot fix it.
        LOG_ERROR("alarms") << "skipping an unreadable alarm record in batch " << batch.seq;
        continue;
      }
      Status st = publisher_->Publish(topic, payload, 1, /*retained=*/true);
      if (!st.ok()) {
        ++consecutive_failures_;
        int64_t delay = options_.retry_min_ns;
        for (int i = 1; i < consecutive_failures_ && delay < options_.retry_max_ns; ++i) delay *= 2;
        delay = std::min(delay, options_.retry_max_ns);
        SinkAttempt attempt;
        attempt.state = SinkState::kOffline;
        attempt.last_error = st.ToString();
        attempt.consecutive_failures = consecutive_failures_;
        attempt.next_retry_ns = clock_->WallNowNs() + delay;
        (void)queue()->RecordAttempt(std::string(kAlarmSink), attempt);
        // Records of this batch already published go out again on retry (retained: harmless).
        return delay;
      }
      ++published;
    }
    SinkAttempt attempt;
    attempt.state = SinkState::kOk;
    attempt.sent_points = published;
    published = 0;
    Status st = queue()->Ack(std::string(kAlarmSink), batch.seq, attempt, {});
    if (!st.ok()) {
      LOG_WARN("alarms") << "cannot record published alarms: " << st.ToString();
      return options_.retry_min_ns;
    }
    consecutive_failures_ = 0;
  }
  return 0;
}

}  // namespace edgeline
