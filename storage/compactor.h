// Compactor: keeps the queue compact while it holds a backlog. On a thread of its own, once per
// `idle_ns`, a pass calls Queue::CompactStep until nothing is left to merge (each step one short
// transaction, so ingest and the sinks interleave), trims the QoS 1 receipts to the newest
// kMqttReceiptsKept per MQTT session (MqttSessionStore::TrimMqttReceipts), and calls
// Queue::ShrinkFile, so the file and its WAL follow the data (freed by merges and by GC alike). Borrows the queue, which must outlive it.
// Threads: Start/Stop from the owner's thread; RunPass on one thread at a time.
#pragma once

#include <cstdint>
#include <stop_token>
#include <thread>

#include "common/status.h"
#include "storage/queue.h"

namespace edgeline {

// Far above any broker's default in-flight window (mosquitto 20, EMQX 32); a broker configured
// for more unacknowledged messages per client could, after a reconnect, redeliver one whose
// receipt is gone, and it would be stored twice.
inline constexpr int64_t kMqttReceiptsKept = 512;

class Compactor {
 public:
  Compactor(Queue* queue, CompactOptions options, int64_t idle_ns = kNsPerSec)
      : queue_(queue), options_(options), idle_ns_(idle_ns) {}
  ~Compactor() { Stop(); }
  Compactor(const Compactor&) = delete;
  Compactor& operator=(const Compactor&) = delete;

  void Start();
  void Stop();

  // One pass: merges until CompactStep finds nothing (or `stop` is requested), trims, shrinks.
  // Returns the batches merged away.
  Result<int64_t> RunPass(std::stop_token stop);

 private:
  void Loop(std::stop_token stop);

  Queue* const queue_;
  const CompactOptions options_;
  const int64_t idle_ns_;
  std::jthread thread_;
};

}  // namespace edgeline
