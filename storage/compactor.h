// Compactor: keeps the queue compact while it holds a backlog. On a thread of its own it calls
// Queue::CompactStep until nothing is left to merge (each step one short transaction, so ingest
// and the sinks interleave), then Queue::ShrinkFile so the file and its WAL follow the data; then
// it waits `idle_ns` and looks again. Borrows the queue, which must outlive it.
// Threads: Start/Stop from the owner's thread; RunPass on one thread at a time.
#pragma once

#include <cstdint>
#include <stop_token>
#include <thread>

#include "common/status.h"
#include "storage/queue.h"

namespace edgeline {

class Compactor {
 public:
  Compactor(Queue* queue, CompactOptions options, int64_t idle_ns = kNsPerSec)
      : queue_(queue), options_(options), idle_ns_(idle_ns) {}
  ~Compactor() { Stop(); }
  Compactor(const Compactor&) = delete;
  Compactor& operator=(const Compactor&) = delete;

  void Start();
  void Stop();

  // Merges until CompactStep finds nothing (or `stop` is requested), then shrinks the file when
  // anything was merged or `shrink` is set. Returns the batches merged away.
  Result<int64_t> RunPass(std::stop_token stop, bool shrink);

 private:
  void Loop(std::stop_token stop);

  Queue* const queue_;
  const CompactOptions options_;
  const int64_t idle_ns_;
  std::jthread thread_;
};

}  // namespace edgeline
