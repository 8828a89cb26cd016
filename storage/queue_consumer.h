// QueueConsumer: the skeleton every sink shares (InfluxDB replicators, Kafka mirrors, the alarm
// publisher, the downsampler). A sink reads one stream of the queue under its own cursor (the
// consumer `name`), works in Step()s that return the delay to the next one and never sleep, and
// reports a SinkState. Run() calls Step() until stopped. The queue wakes the sink when its
// stream grows (StreamWatcher); that ends an idle wait early, never a wait after a failure, so
// new data cannot defeat a backoff. Borrows the queue, which must outlive it.
// Threads: Start/Step/Run on the sink's thread; Notify/OnAppended from any thread.
#pragma once

#include <cstdint>
#include <stop_token>
#include <string>
#include <string_view>

#include "common/sink_state.h"
#include "common/status.h"
#include "common/wakeup.h"
#include "storage/queue.h"

namespace edgeline {

class QueueConsumer : public StreamWatcher {
 public:
  // `log_tag` names the component in log lines ("replication", "kafka", ...).
  QueueConsumer(std::string name, std::string stream, Queue* queue, std::string log_tag);
  ~QueueConsumer() override;  // stops watching the stream

  QueueConsumer(const QueueConsumer&) = delete;
  QueueConsumer& operator=(const QueueConsumer&) = delete;

  // Registers the cursor and watches the stream, then OnStart(). Step() implementations call it
  // on first use too; calling it before any thread runs lets the owner fail early and keeps GC
  // from collecting batches this consumer has not read yet.
  Status Start();

  // One unit of work. Returns the ns to wait before the next Step (0 = run again now).
  virtual int64_t Step() = 0;

  // Calls Step until `stop`, waiting for the returned delay.
  void Run(std::stop_token stop);

  // New data in the stream: ends an idle wait.
  void Notify() { wakeup_.Notify(); }
  void OnAppended(std::string_view /*stream*/) override { Notify(); }

  // REQUIRES: name/stream any thread; state from the Step thread.
  const std::string& name() const { return name_; }
  const std::string& stream() const { return stream_; }
  SinkState state() const { return state_; }

 protected:
  // Work of Start() after the cursor exists (e.g. restoring state).
  virtual Status OnStart() { return Status::Ok(); }
  // Whether the wait after the latest Step may end early on Notify (default: when not failing).
  virtual bool WakeOnAppend() const { return true; }
  // The destination, for log lines ("InfluxDB http://...").
  virtual std::string Description() const { return ""; }

  bool started() const { return started_; }
  Queue* queue() const { return queue_; }

  // Ends the current or next wait of Run, even one after a failure.
  void WakeNow() { wakeup_.NotifyAlways(); }

  // Records the state; logs a change (a failure with its detail, and a recovery).
  void SetState(SinkState state, std::string_view detail);

 private:
  std::string name_;
  std::string stream_;
  Queue* queue_;
  std::string log_tag_;
  bool started_ = false;
  bool watching_ = false;
  SinkState state_ = SinkState::kStarting;
  Wakeup wakeup_;
};

}  // namespace edgeline
