// Queue-side benchmark driver for bench/run.sh (not a test: nothing is asserted).
//   p1b N SYNC DIR     mapping + commit, 1 thread: the agent's path (Mapper + GroupCommitter
//                      over OpenSqliteQueue, one Submit per message) vs raw SQLite inserting
//                      the same line-protocol bytes, 1000 rows per transaction, same WAL/sync.
//                      Also the queue fed 1000 messages per Append (what a full group commit
//                      would give), for context. Prints one JSON object.
//   fill PATH N LINES_PER_BATCH [LP_OUT]
//                      a backlog of N fixture-like points (the simulator's generators, mapped
//                      by the agent's Mapper) appended to the queue at PATH in batches of
//                      LINES_PER_BATCH lines (1 = what MQTT ingest with one connection stores),
//                      many batches per transaction to be quick. LP_OUT gets the same lines.
// Payloads: 10 generators (GeneratorModel, seed 1), receive times 1 ms apart.
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "ingest/group_committer.h"
#include "ingest/mapping.h"
#include "storage/queue.h"
#include "tools/simulator.h"

using namespace edgeline;

namespace {

constexpr int kGenerators = 10;
constexpr int64_t kStartNs = 1764000000LL * 1'000'000'000;

struct Message {
  std::string topic;
  std::string payload;
};

std::vector<Message> Messages(int64_t n) {
  std::vector<GeneratorModel> models;
  for (int g = 0; g < kGenerators; ++g) models.emplace_back(g, 1);
  std::vector<Message> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    GeneratorModel& m = models[static_cast<size_t>(i % kGenerators)];
    out.push_back({GeneratorTopic("emergency_generator", m.id()), GeneratorPayload(m.Next())});
  }
  return out;
}

void RemoveDb(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

std::unique_ptr<Queue> OpenQueue(const std::string& path, SyncMode sync) {
  QueueOpenOptions o;
  o.config.path = path;
  o.config.sync = sync;
  o.config.max_bytes = 1LL << 40;
  o.config.max_age_ns = 0;
  auto q = OpenSqliteQueue(o);
  if (!q.ok()) {
    std::fprintf(stderr, "queue_bench: %s\n", q.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(q).value();
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// The agent's ingest path, one producer thread: every Submit is its own transaction.
double AgentPath(const std::vector<Message>& msgs, const std::string& path, SyncMode sync) {
  RemoveDb(path);
  auto q = OpenQueue(path, sync);
  Mapper mapper(MappingConfig{});
  GroupCommitterOptions opts;
  GroupCommitter committer(q.get(), &SystemClock::Instance(), opts);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t ts = kStartNs;
  for (const auto& m : msgs) {
    Status st = committer.Submit(mapper.Prepare(m.topic, m.payload, ts += 1'000'000));
    if (!st.ok()) {
      std::fprintf(stderr, "queue_bench: submit: %s\n", st.ToString().c_str());
      std::exit(1);
    }
  }
  const double s = Seconds(t0);
  committer.Stop();
  q.reset();
  RemoveDb(path);
  return static_cast<double>(msgs.size()) / s;
}

// Mapper + Queue::Append of 1000 messages per transaction: the ceiling of group commit.
double GroupedPath(const std::vector<Message>& msgs, const std::string& path, SyncMode sync) {
  RemoveDb(path);
  auto q = OpenQueue(path, sync);
  Mapper mapper(MappingConfig{});
  const auto t0 = std::chrono::steady_clock::now();
  int64_t ts = kStartNs;
  BatchInput batch;
  for (size_t i = 0; i < msgs.size(); ++i) {
    MappedMessage mapped = mapper.Map(msgs[i].topic, msgs[i].payload, ts += 1'000'000);
    for (auto& l : mapped.lines) batch.lines.push_back(std::move(l));
    if (!batch.sources.empty() && batch.sources.back().topic == msgs[i].topic) {
      batch.sources.back().lines += static_cast<int64_t>(mapped.lines.size());
    } else {
      batch.sources.push_back({msgs[i].topic, static_cast<int64_t>(mapped.lines.size())});
    }
    if (batch.min_ts_ns == 0) batch.min_ts_ns = mapped.min_ts_ns;
    batch.max_ts_ns = mapped.max_ts_ns;
    if (batch.lines.size() == 1000 || i + 1 == msgs.size()) {
      if (!q->Append({batch}, {}).ok()) std::exit(1);
      batch = BatchInput{};
    }
  }
  const double s = Seconds(t0);
  q.reset();
  RemoveDb(path);
  return static_cast<double>(msgs.size()) / s;
}

void Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "queue_bench: %s: %s\n", sql, err ? err : "?");
    std::exit(1);
  }
}

// Baseline: the same line-protocol bytes (mapped beforehand, outside the timing), one row per
// line, 1000 rows per transaction, prepared statement, same journal/sync settings as the queue.
double RawSqlite(const std::vector<std::string>& lines, const std::string& path, SyncMode sync) {
  RemoveDb(path);
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) std::exit(1);
  Exec(db, "PRAGMA journal_mode=WAL");
  Exec(db, sync == SyncMode::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  Exec(db, "CREATE TABLE line(seq INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO line(body) VALUES(?)", -1, &ins, nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i % 1000 == 0) Exec(db, "BEGIN");
    sqlite3_bind_blob(ins, 1, lines[i].data(), static_cast<int>(lines[i].size()), SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) std::exit(1);
    sqlite3_reset(ins);
    if (i % 1000 == 999 || i + 1 == lines.size()) Exec(db, "COMMIT");
  }
  const double s = Seconds(t0);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  RemoveDb(path);
  return static_cast<double>(lines.size()) / s;
}

int P1b(int64_t n, const std::string& sync_name, const std::string& dir) {
  const SyncMode sync = sync_name == "full" ? SyncMode::kFull : SyncMode::kNormal;
  const std::string path = dir + "/p1b_" + std::to_string(::getpid()) + ".db";
  const auto msgs = Messages(n);
  Mapper mapper(MappingConfig{});
  std::vector<std::string> lines;
  int64_t ts = kStartNs;
  for (const auto& m : msgs) {
    for (auto& l : mapper.Map(m.topic, m.payload, ts += 1'000'000).lines) lines.push_back(std::move(l));
  }
  // Mapping alone, for the breakdown.
  auto t0 = std::chrono::steady_clock::now();
  size_t sink = 0;
  ts = kStartNs;
  for (const auto& m : msgs) sink += mapper.Map(m.topic, m.payload, ts += 1'000'000).lines.size();
  const double map_rate = static_cast<double>(n) / Seconds(t0);
  const double raw = RawSqlite(lines, path, sync);
  const double agent = AgentPath(msgs, path, sync);
  const double grouped = GroupedPath(msgs, path, sync);
  std::printf(
      "{\"n\": %lld, \"sync\": \"%s\", \"edgeline_msgs_s\": %.0f, \"raw_sqlite_msgs_s\": %.0f, "
      "\"grouped_append_msgs_s\": %.0f, \"map_only_msgs_s\": %.0f, \"lines\": %zu}\n",
      static_cast<long long>(n), sync_name.c_str(), agent, raw, grouped, map_rate, sink);
  return 0;
}

int Fill(const std::string& path, int64_t n, int64_t per_batch, const char* lp_out) {
  RemoveDb(path);
  auto q = OpenQueue(path, SyncMode::kNormal);
  Mapper mapper(MappingConfig{});
  std::ofstream lp;
  if (lp_out) lp.open(lp_out, std::ios::binary | std::ios::trunc);
  std::vector<GeneratorModel> models;
  for (int g = 0; g < kGenerators; ++g) models.emplace_back(g, 1);
  std::vector<BatchInput> txn;
  BatchInput batch;
  int64_t ts = kStartNs;
  int64_t lines_in_txn = 0;
  for (int64_t i = 0; i < n; ++i) {
    GeneratorModel& m = models[static_cast<size_t>(i % kGenerators)];
    const std::string topic = GeneratorTopic("emergency_generator", m.id());
    MappedMessage mapped = mapper.Map(topic, GeneratorPayload(m.Next()), ts += 1'000'000);
    for (auto& l : mapped.lines) {
      if (lp) lp << l << '\n';
      batch.lines.push_back(std::move(l));
    }
    if (!batch.sources.empty() && batch.sources.back().topic == topic) {
      batch.sources.back().lines += static_cast<int64_t>(mapped.lines.size());
    } else {
      batch.sources.push_back({topic, static_cast<int64_t>(mapped.lines.size())});
    }
    if (batch.min_ts_ns == 0) batch.min_ts_ns = mapped.min_ts_ns;
    batch.max_ts_ns = mapped.max_ts_ns;
    if (static_cast<int64_t>(batch.lines.size()) >= per_batch || i + 1 == n) {
      lines_in_txn += static_cast<int64_t>(batch.lines.size());
      txn.push_back(std::move(batch));
      batch = BatchInput{};
    }
    if (lines_in_txn >= 10000 || (i + 1 == n && !txn.empty())) {
      auto r = q->Append(txn, {});
      if (!r.ok()) {
        std::fprintf(stderr, "queue_bench: append: %s\n", r.status().ToString().c_str());
        return 1;
      }
      txn.clear();
      lines_in_txn = 0;
    }
  }
  auto stats = q->Stats();
  if (stats.ok()) {
    std::printf("{\"points\": %lld, \"batches\": %lld, \"body_bytes\": %lld, \"raw_bytes\": %lld}\n",
                static_cast<long long>(stats->points), static_cast<long long>(stats->batches),
                static_cast<long long>(stats->bytes), static_cast<long long>(stats->raw_bytes));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "p1b" && argc == 5) return P1b(std::atoll(argv[2]), argv[3], argv[4]);
  if (cmd == "fill" && (argc == 5 || argc == 6)) {
    return Fill(argv[2], std::atoll(argv[3]), std::atoll(argv[4]), argc == 6 ? argv[5] : nullptr);
  }
  std::fprintf(stderr,
               "usage: queue_bench p1b N full|normal DIR\n"
               "       queue_bench fill PATH N LINES_PER_BATCH [LP_OUT]\n");
  return 2;
}
