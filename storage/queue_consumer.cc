#include "storage/queue_consumer.h"

#include "common/log.h"

namespace edgeline {

QueueConsumer::QueueConsumer(std::string name, std::string stream, Queue* queue, std::string log_tag)
    : name_(std::move(name)), stream_(std::move(stream)), queue_(queue), log_tag_(std::move(log_tag)) {}

QueueConsumer::~QueueConsumer() {
  if (watching_) queue_->Unwatch(this);
}

Status QueueConsumer::Start() {
  if (started_) return Status::Ok();
  RETURN_IF_ERROR(queue_->RegisterConsumer(name_, stream_));
  if (!watching_) {
    queue_->Watch(stream_, this);
    watching_ = true;
  }
  RETURN_IF_ERROR(OnStart());
  started_ = true;
  return Status::Ok();
}

void QueueConsumer::Run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    const int64_t delay_ns = Step();
    wakeup_.Wait(stop, delay_ns, WakeOnAppend());
  }
}

void QueueConsumer::SetState(SinkState state, std::string_view detail) {
  if (state == state_) return;
  const std::string target = Description();
  const std::string where = "sink " + name_ + (target.empty() ? "" : " (" + target + ")");
  if (state == SinkState::kOk) {
    LOG_INFO(log_tag_) << where << ": ok"
                       << (state_ == SinkState::kStarting ? "" : " again after " + std::string(Name(state_)));
  } else {
    LOG_WARN(log_tag_) << where << ": " << Name(state) << ": " << detail;
  }
  state_ = state;
}

}  // namespace edgeline
