// Implementation of compactor.h.
#include "storage/compactor.h"

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/log.h"

namespace edgeline {

void Compactor::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

void Compactor::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

Result<int64_t> Compactor::RunPass(std::stop_token stop) {
  int64_t merged = 0;
  while (!stop.stop_requested()) {
    ASSIGN_OR_RETURN(int64_t step, queue_->CompactStep(options_));
    if (step == 0) break;
    merged += step;
  }
  RETURN_IF_ERROR(queue_->TrimMqttReceipts(kMqttReceiptsKept).status());
  RETURN_IF_ERROR(queue_->ShrinkFile());
  return merged;
}

void Compactor::Loop(std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  int64_t failures = 0;
  while (!stop.stop_requested()) {
    Result<int64_t> merged = RunPass(stop);
    if (!merged.ok()) {
      // Logged once per streak: a full or failing disk makes every pass fail the same way.
      if (failures++ == 0) LOG_WARN("queue") << "compaction failed: " << merged.status().ToString();
    } else {
      if (failures > 0) LOG_INFO("queue") << "compaction works again";
      failures = 0;
      if (*merged > 0) LOG_DEBUG("queue") << "compaction merged away " << *merged << " batches";
    }
    std::unique_lock lock(mu);
    cv.wait_for(lock, stop, std::chrono::nanoseconds(idle_ns_), [] { return false; });
  }
}

}  // namespace edgeline
