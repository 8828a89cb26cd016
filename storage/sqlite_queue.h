// SqliteQueue: the SQLite implementation of Queue (and so of DeadLetterStore and StatusStore),
// one object per queue file (docs/QUEUE_FORMAT.md). It owns one connection, serialized by mu_;
// every mutation is one BEGIN IMMEDIATE transaction. A BackgroundCheck may own a second,
// read-only connection while it runs. Thread-safe. Created by OpenSqliteQueue; declared here for
// the files that implement it, one job each: sqlite_queue.cc, sqlite_gc.cc,
// sqlite_dead_letters.cc, sqlite_status_store.cc, sqlite_field_types.cc,
// sqlite_mqtt_session.cc, sqlite_compaction.cc.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "storage/batch_codec.h"
#include "storage/queue.h"
#include "storage/sqlite_statement.h"

struct sqlite3;

namespace edgeline {

class BackgroundCheck;

class SqliteQueue final : public Queue {
 public:
  // Takes `db` over (open; schema applied unless options.read_only). `recovered_from` is the
  // file this open moved aside, if any.
  SqliteQueue(sqlite3* db, QueueOpenOptions options, std::string recovered_from);
  ~SqliteQueue() override;

  // Counts the stored bytes for the size bound: now, or with `check_in_background` on a
  // BackgroundCheck that also runs quick_check (the size bound waits for its count).
  // REQUIRES: called once, before the queue is shared.
  Status Init(bool check_in_background);

  // Queue (sqlite_queue.cc)
  Result<std::vector<int64_t>> Append(const std::vector<BatchInput>& batches,
                                      const std::vector<DeadLetter>& dead_letters) override;
  Result<std::vector<int64_t>> AppendReceived(const std::vector<BatchInput>& batches,
                                              const std::vector<DeadLetter>& dead_letters,
                                              const std::vector<MqttReceipt>& receipts) override;
  Status RegisterConsumer(const std::string& sink, const std::string& stream) override;
  Result<std::vector<Batch>> Read(const std::string& sink, int64_t max_points) override;
  Result<std::vector<Batch>> ReadAfter(const std::string& sink, int64_t after_seq, int64_t max_points) override;
  void Release(const std::string& sink) override;
  Result<std::vector<Batch>> ReadNewest(const std::string& sink, int64_t max_points) override;
  Status AckBatches(const std::string& sink, const std::vector<int64_t>& seqs, const SinkAttempt& attempt,
                    const std::vector<DeadLetter>& dead_letters) override;
  Status Ack(const std::string& sink, int64_t seq, const SinkAttempt& attempt,
             const std::vector<DeadLetter>& dead_letters) override;
  Status AckWithOutput(const std::string& sink, int64_t seq, const SinkAttempt& attempt,
                       const std::vector<BatchInput>& outputs, std::string_view state) override;
  Result<std::string> ConsumerState(const std::string& sink) override;
  Result<int64_t> EnforceLimits() override;
  void Watch(std::string_view stream, StreamWatcher* watcher) override;
  void Unwatch(StreamWatcher* watcher) override;
  Result<std::string> IntegrityCheck() override;
  Status StartupCheck(bool wait) override;

  // Compaction (sqlite_compaction.cc)
  Result<int64_t> CompactStep(const CompactOptions& options) override;
  Status ShrinkFile() override;

  // DeadLetterStore (sqlite_dead_letters.cc)
  Result<std::vector<DeadLetter>> DeadLetters(const std::string& sink, int64_t limit) override;
  Result<ReplayMarks> RequestReplay(const std::string& sink) override;
  Result<int64_t> PurgeDeadLetters(const std::string& sink) override;
  Result<std::vector<DeadLetter>> ReplayRequested(const std::string& sink, int64_t limit) override;
  Status FinishReplay(const std::vector<int64_t>& ids, const std::vector<DeadLetter>& rejected_again) override;

  // StatusStore (sqlite_status_store.cc)
  Status RecordAttempt(const std::string& sink, const SinkAttempt& attempt) override;
  Result<std::vector<SinkStatus>> SinkStatuses() override;
  Result<QueueStats> Stats() override;
  Result<int64_t> CursorOf(const std::string& sink) override;
  Status SetAgentState(const std::vector<std::pair<std::string, std::string>>& kv) override;
  Result<std::vector<std::pair<std::string, std::string>>> AgentState() override;

  // MqttSessionStore (sqlite_mqtt_session.cc)
  Status PutMqttState(const std::string& session, const std::string& key, std::string_view value) override;
  Result<std::optional<std::string>> GetMqttState(const std::string& session, const std::string& key) override;
  Status RemoveMqttState(const std::string& session, const std::string& key) override;
  Result<std::vector<std::string>> MqttStateKeys(const std::string& session) override;
  Status ClearMqttState(const std::string& session) override;
  Result<bool> StoredOnEarlierConnection(const MqttReceipt& receipt) override;
  Status CountSuppressedDuplicate(const std::string& session) override;
  Result<std::vector<MqttSessionStats>> MqttSessions() override;
  Result<int64_t> TrimMqttReceipts(int64_t keep) override;

  // FieldTypeStore (sqlite_field_types.cc)
  Status RecordFieldTypes(const std::vector<KnownFieldType>& types) override;
  Result<std::vector<KnownFieldType>> FieldTypes() override;
  int64_t FieldTypesVersion() const override { return field_types_version_.load(); }

 private:
  // The *Locked methods REQUIRE mu_ held; those that write REQUIRE an open transaction
  // (TransactionLocked) unless they say otherwise.

  // Runs `body` as one BEGIN IMMEDIATE ... COMMIT, rolled back on any error: every mutation is
  // all or nothing, also under SIGKILL. Restores total_bytes_ on rollback.
  Status TransactionLocked(const std::function<Status()>& body);
  Result<int64_t> CursorLocked(const std::string& sink);  // NotFound when it has none
  Result<std::vector<int64_t>> InsertLocked(const std::vector<BatchInput>& batches,
                                            const std::vector<EncodedBatch>& encoded, int64_t now);
  Result<std::vector<Batch>> ReadLocked(const std::string& sink, int64_t after_seq, int64_t max_points,
                                        bool newest_first);
  // The stream of a registered consumer whose cursor may move to `seq` (never backwards).
  Result<std::string> StreamForAdvanceLocked(const std::string& sink, int64_t seq);
  // The cursor and the successful attempt.
  Status AdvanceLocked(const std::string& sink, int64_t seq, const SinkAttempt& attempt, int64_t now);
  // Calls the watchers of each stream `batches` appended to, once per stream. REQUIRES: mu_ not
  // held; the transaction that appended `batches` committed.
  void NotifyAppended(const std::vector<BatchInput>& batches);

  // sqlite_gc.cc
  Status MakeRoomLocked(const std::vector<EncodedBatch>& encoded);
  Status CollectGarbageLocked(const std::string& stream);
  Status DropBatchLocked(int64_t seq, const std::string& stream, int64_t points, int64_t bytes);
  Status DropOldestLocked(int64_t bytes_to_free, int64_t created_before);

  // sqlite_compaction.cc
  struct Positions {
    std::vector<int64_t> cursors;                       // of every sink of the stream
    std::vector<std::pair<int64_t, int64_t>> blocked;   // (cursor, newest read or acked]
  };
  struct MergePlan {
    std::string stream;
    int64_t first = 0, last = 0, rows = 0;
    BatchInput merged;      // the run's lines, sources and timestamps
    int64_t created_ns = 0; // the run's oldest
    int64_t freed = 0;      // what the bound counted for the run's rows
  };
  Result<Positions> PositionsLocked(const std::string& stream);
  // The first run of `stream` that may be merged, as [first, last] seqs ({0, 0}: none).
  Result<std::pair<int64_t, int64_t>> FindRunLocked(const std::string& stream, const CompactOptions& options,
                                                    int64_t now);
  Result<MergePlan> ReadRunLocked(const std::string& stream, int64_t first, int64_t last);
  // Whether the run is still whole and untouched by every sink's position.
  Result<bool> RunUnchangedLocked(const MergePlan& plan);
  Status WriteMergedLocked(const MergePlan& plan, const EncodedBatch& encoded);

  // sqlite_dead_letters.cc
  Status InsertDeadLettersLocked(const std::vector<DeadLetter>& dead_letters, int64_t now);
  Result<std::vector<DeadLetter>> SelectDeadLettersLocked(const std::string& where, const std::string& sink,
                                                          int64_t limit);

  // sqlite_mqtt_session.cc: QoS 2 receipts delete their "r-" entry, QoS 1 receipts are kept.
  Status SettleReceiptsLocked(const std::vector<MqttReceipt>& receipts, int64_t now);

  // sqlite_status_store.cc
  Status RecordAttemptLocked(const std::string& sink, const SinkAttempt& attempt, int64_t now, bool success);
  Result<std::string> MetaLocked(const std::string& key);  // "" when unset; no transaction needed

  const QueueOpenOptions options_;
  const Clock* const clock_;
  const std::string recovered_from_;

  std::mutex mu_;  // guards the connection and every member below up to watch_mu_
  sqlite3* const db_;
  std::map<std::string, std::string> consumers_;  // sink -> stream, registered this run
  int64_t total_bytes_ = 0;                       // what the size bound counts (StoredBytesSql)
  bool bytes_known_ = true;                       // false until the background start-up count is added in
  int64_t dropped_total_in_call_ = 0;             // points EnforceLimits' walk dropped
  BatchCodec codec_;
  std::unique_ptr<SqliteStatement> insert_batch_;  // the hot statements, prepared once
  std::unique_ptr<SqliteStatement> begin_;
  std::unique_ptr<SqliteStatement> commit_;
  std::unique_ptr<SqliteStatement> release_state_;  // SettleReceiptsLocked's
  std::unique_ptr<SqliteStatement> keep_receipt_;
  // sink -> the newest seq it read and has not released (Release) or passed with its cursor;
  // compaction leaves the batches up to it alone.
  std::map<std::string, int64_t> read_until_;

  std::mutex watch_mu_;  // held while watchers are called, so Unwatch waits for them
  std::map<std::string, std::vector<StreamWatcher*>, std::less<>> watchers_;  // guarded by watch_mu_

  std::mutex compact_mu_;  // serializes CompactStep; guards the two below
  std::unique_ptr<BatchCodec> compact_codec_;  // at CompactOptions::zstd_level
  int compact_level_ = 0;

  std::atomic<int64_t> field_types_version_{0};

  std::unique_ptr<BackgroundCheck> check_;  // set by Init; none when the check ran at open
};

}  // namespace edgeline
