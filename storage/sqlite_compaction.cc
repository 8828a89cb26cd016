// SqliteQueue's compaction (sqlite_queue.h): runs of small batches, as MQTT ingest stores them
// (one message per commit), are merged into one large zstd batch, so a point costs a share of a
// compressed frame instead of a row, a body and an index entry of its own.
//
// A run is consecutive batches of one stream, all with or all without sources. The merged batch
// takes the seq of the run's last batch and the others are deleted, so order is kept and seqs
// stay unique. What makes a merge invisible to every consumer of the stream:
//   - no cursor lies inside the run (first <= cursor < last): each consumer has either passed
//     all of it or none of it, so Ack, GC and drop accounting see one batch where there were
//     several, with the same points;
//   - no batch of the run is one a consumer read and still holds (between its cursor and the
//     newest seq it read, read_until_, until it acknowledges or calls Release), nor one it
//     acknowledged out of order (acked_batch): a sink never acknowledges a seq that no longer
//     exists, nor receives again a line it already sent.
// Cursors of sinks not registered in this run count too (the cursor table, not consumers_).
// A step finds and reads a run under mu_ (scanning at most max_batches_per_step rows per
// start), compresses it without mu_, then, under mu_ again, checks that no sink read into the run
// or moved its cursor into it and that no row of it went meanwhile, and writes the merge in one
// transaction; a run that changed is left for a later step.
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <climits>

#include "common/log.h"
#include "storage/sqlite_queue.h"

namespace edgeline {

namespace {

// One scan of `q`'s rows (seq, points, raw_bytes, created_ns, sources IS NULL) for the first
// run that may merge; {0, 0} when none.
template <typename Blocked, typename Cut>
Result<std::pair<int64_t, int64_t>> ScanForRun(SqliteStatement& q, const CompactOptions& options, int64_t now,
                                               const Blocked& is_blocked, const Cut& cut_between) {
  struct Run {
    int64_t first = 0, last = 0, batches = 0, points = 0, raw = 0, newest_created = 0;
    bool no_sources = false;
  } run;
  auto mergeable = [&](const Run& r, bool full) {
    return r.batches >= 2 && (full || r.newest_created <= now - options.settle_ns);
  };
  Status st;
  while (q.Step(&st)) {
    const int64_t seq = q.Int(0), points = q.Int(1), raw = q.Int(2), created = q.Int(3);
    const bool no_sources = q.Int(4) != 0;
    const bool small = points < options.target_points && raw < options.target_raw_bytes;
    const bool joins = run.batches > 0 && small && !is_blocked(seq) && no_sources == run.no_sources &&
                       !cut_between(run.last, seq) && run.points + points <= options.target_points &&
                       run.raw + raw <= options.target_raw_bytes;
    if (!joins && run.batches > 0) {
      // The run ends here; it is full when the next batch did not fit beside it.
      const bool full = small && no_sources == run.no_sources && !is_blocked(seq) && !cut_between(run.last, seq);
      if (mergeable(run, full)) return std::pair<int64_t, int64_t>{run.first, run.last};
      run = Run{};
    }
    if (!small || is_blocked(seq)) continue;
    if (run.batches == 0) {
      run.first = seq;
      run.no_sources = no_sources;
    }
    run.last = seq;
    ++run.batches;
    run.points += points;
    run.raw += raw;
    run.newest_created = std::max(run.newest_created, created);
  }
  RETURN_IF_ERROR(st);
  if (mergeable(run, run.points >= options.target_points || run.raw >= options.target_raw_bytes)) {
    return std::pair<int64_t, int64_t>{run.first, run.last};
  }
  return std::pair<int64_t, int64_t>{0, 0};
}

}  // namespace

Result<int64_t> SqliteQueue::CompactStep(const CompactOptions& options) {
  std::lock_guard step_lock(compact_mu_);  // one step at a time: it owns compact_codec_
  if (!compact_codec_ || compact_level_ != options.zstd_level) {
    compact_codec_ = std::make_unique<BatchCodec>(options.zstd_level);
    compact_level_ = options.zstd_level;
  }
  MergePlan plan;
  {
    std::lock_guard lock(mu_);
    std::vector<std::string> streams;
    {
      SqliteStatement q(db_, "SELECT DISTINCT stream FROM cursor ORDER BY stream");
      RETURN_IF_ERROR(q.prepared());
      Status st;
      while (q.Step(&st)) streams.push_back(q.Text(0));
      RETURN_IF_ERROR(st);
    }
    const int64_t now = clock_->WallNowNs();
    for (const std::string& stream : streams) {
      ASSIGN_OR_RETURN(auto run, FindRunLocked(stream, options, now));
      if (run.first == 0) continue;
      ASSIGN_OR_RETURN(plan, ReadRunLocked(stream, run.first, run.second));
      break;
    }
  }
  if (plan.rows < 2) return int64_t{0};
  // Compressed without mu_: at the merge level this takes milliseconds that ingest need not wait.
  ASSIGN_OR_RETURN(std::vector<EncodedBatch> encoded, compact_codec_->Encode({plan.merged}));
  std::lock_guard lock(mu_);
  // Meanwhile a sink may have read into the run or moved its cursor into it, or GC or a drop
  // may have removed some of it: then it is left for the next step to find again.
  ASSIGN_OR_RETURN(bool unchanged, RunUnchangedLocked(plan));
  if (!unchanged) return int64_t{0};
  RETURN_IF_ERROR(TransactionLocked([&] { return WriteMergedLocked(plan, encoded[0]); }));
  total_bytes_ += StoredBytes(encoded) - plan.freed;
  return plan.rows - 1;
}

Result<SqliteQueue::Positions> SqliteQueue::PositionsLocked(const std::string& stream) {
  Positions p;
  SqliteStatement q(db_,
                    "SELECT c.sink, c.seq, COALESCE((SELECT MAX(a.seq) FROM acked_batch a WHERE a.sink=c.sink), 0)"
                    " FROM cursor c WHERE c.stream=?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, stream);
  Status st;
  while (q.Step(&st)) {
    const int64_t cursor = q.Int(1);
    int64_t held = q.Int(2);
    if (auto it = read_until_.find(q.Text(0)); it != read_until_.end()) held = std::max(held, it->second);
    p.cursors.push_back(cursor);
    if (held > cursor) p.blocked.emplace_back(cursor, held);
  }
  RETURN_IF_ERROR(st);
  return p;
}

Result<bool> SqliteQueue::RunUnchangedLocked(const MergePlan& plan) {
  ASSIGN_OR_RETURN(Positions p, PositionsLocked(plan.stream));
  for (int64_t c : p.cursors) {
    if (c >= plan.first && c < plan.last) return false;
  }
  for (auto [from, to] : p.blocked) {
    if (plan.first <= to && plan.last > from) return false;
  }
  SqliteStatement q(db_, "SELECT COUNT(*) FROM batch WHERE stream=? AND seq>=? AND seq<=?");
  RETURN_IF_ERROR(q.prepared());
  q.Bind(1, plan.stream).Bind(2, plan.first).Bind(3, plan.last);
  Status st;
  const int64_t rows = q.Step(&st) ? q.Int(0) : -1;
  RETURN_IF_ERROR(st);
  return rows == plan.rows;
}

Result<std::pair<int64_t, int64_t>> SqliteQueue::FindRunLocked(const std::string& stream,
                                                               const CompactOptions& options, int64_t now) {
  // The consumers' positions: cursors cut runs; held or out-of-order-acknowledged ranges block.
  ASSIGN_OR_RETURN(Positions positions, PositionsLocked(stream));
  const std::vector<int64_t>& cursors = positions.cursors;
  const std::vector<std::pair<int64_t, int64_t>>& blocked = positions.blocked;
  if (cursors.empty()) return std::pair<int64_t, int64_t>{0, 0};
  auto is_blocked = [&](int64_t seq) {
    for (auto [from, to] : blocked) {
      if (seq > from && seq <= to) return true;
    }
    return false;
  };
  // Whether a cursor lies in [a, b): a run ending at a may not continue to b.
  auto cut_between = [&](int64_t a, int64_t b) {
    for (int64_t c : cursors) {
      if (c >= a && c < b) return true;
    }
    return false;
  };

  // Scans start at the oldest cursor and after each held range: a sink holding the first
  // max_batches_per_step batches (a long request in flight) does not stop compaction behind it.
  std::vector<int64_t> starts = {*std::min_element(cursors.begin(), cursors.end())};
  for (auto [from, to] : blocked) starts.push_back(to);
  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  SqliteStatement q(db_,
                    "SELECT seq, points, raw_bytes, created_ns, sources IS NULL FROM batch"
                    " WHERE stream=? AND seq>? ORDER BY seq LIMIT ?");
  RETURN_IF_ERROR(q.prepared());
  for (int64_t start : starts) {
    q.Reset();
    q.Bind(1, stream).Bind(2, start).Bind(3, options.max_batches_per_step);
    ASSIGN_OR_RETURN(auto run, ScanForRun(q, options, now, is_blocked, cut_between));
    if (run.first != 0) return run;
  }
  return std::pair<int64_t, int64_t>{0, 0};
}

Result<SqliteQueue::MergePlan> SqliteQueue::ReadRunLocked(const std::string& stream, int64_t first, int64_t last) {
  MergePlan plan;
  plan.stream = stream;
  plan.first = first;
  plan.last = last;
  BatchInput& merged = plan.merged;
  merged.stream = stream;
  merged.min_ts_ns = INT64_MAX;
  merged.max_ts_ns = INT64_MIN;
  int64_t& created = plan.created_ns;
  created = INT64_MAX;
  bool with_sources = false;
  {
    const std::string sql = "SELECT created_ns, min_ts, max_ts, codec, body, raw_bytes, sources, " +
                            StoredBytesSql() + " FROM batch WHERE stream=? AND seq>=? AND seq<=? ORDER BY seq";
    SqliteStatement q(db_, sql.c_str());
    RETURN_IF_ERROR(q.prepared());
    q.Bind(1, stream).Bind(2, first).Bind(3, last);
    Status st;
    while (q.Step(&st)) {
      created = std::min(created, q.Int(0));
      merged.min_ts_ns = std::min(merged.min_ts_ns, q.Int(1));
      merged.max_ts_ns = std::max(merged.max_ts_ns, q.Int(2));
      ASSIGN_OR_RETURN(std::vector<std::string> lines, codec_.DecodeLines(q.Text(3), q.Text(4), q.Int(5)));
      const std::string sources = q.Text(6);
      if (!sources.empty()) {
        with_sources = true;
        ASSIGN_OR_RETURN(std::vector<SourceRun> runs, codec_.DecodeSources(sources));
        for (SourceRun& r : runs) {
          if (!merged.sources.empty() && merged.sources.back().topic == r.topic) {
            merged.sources.back().lines += r.lines;
          } else {
            merged.sources.push_back(std::move(r));
          }
        }
      }
      for (std::string& l : lines) merged.lines.push_back(std::move(l));
      plan.freed += q.Int(7);
      ++plan.rows;
    }
    RETURN_IF_ERROR(st);
  }
  if (!with_sources) merged.sources.clear();
  return plan;
}

Status SqliteQueue::WriteMergedLocked(const MergePlan& plan, const EncodedBatch& e) {
  SqliteStatement up(db_,
                     "UPDATE batch SET created_ns=?, min_ts=?, max_ts=?, points=?, raw_bytes=?, codec=?, body=?,"
                     " sources=? WHERE seq=?");
  RETURN_IF_ERROR(up.prepared());
  up.Bind(1, plan.created_ns)
      .Bind(2, plan.merged.min_ts_ns)
      .Bind(3, plan.merged.max_ts_ns)
      .Bind(4, static_cast<int64_t>(plan.merged.lines.size()))
      .Bind(5, e.raw_bytes)
      .Bind(6, e.codec)
      .BindBlob(7, e.body);
  if (!e.sources.empty()) up.BindBlob(8, e.sources);
  up.Bind(9, plan.last);
  RETURN_IF_ERROR(up.Run());
  SqliteStatement del(db_, "DELETE FROM batch WHERE stream=? AND seq>=? AND seq<?");
  RETURN_IF_ERROR(del.prepared());
  del.Bind(1, plan.stream).Bind(2, plan.first).Bind(3, plan.last);
  return del.Run();
}

Status SqliteQueue::ShrinkFile() {
  std::lock_guard lock(mu_);
  auto pragma = [&](const char* sql) -> Result<int64_t> {
    SqliteStatement q(db_, sql);
    RETURN_IF_ERROR(q.prepared());
    Status st;
    const int64_t v = q.Step(&st) ? q.Int(0) : 0;
    RETURN_IF_ERROR(st);
    return v;
  };
  ASSIGN_OR_RETURN(int64_t auto_vacuum, pragma("PRAGMA auto_vacuum"));
  if (auto_vacuum == 2) {
    ASSIGN_OR_RETURN(int64_t free_pages, pragma("PRAGMA freelist_count"));
    if (free_pages > 0) RETURN_IF_ERROR(SqliteExec(db_, "PRAGMA incremental_vacuum"));
  }
  // The WAL keeps its largest size until truncated; below this it is left to grow a little.
  constexpr off_t kWalKeptBytes = 64 << 10;
  struct stat wal {};
  if (::stat((options_.config.path + "-wal").c_str(), &wal) != 0 || wal.st_size <= kWalKeptBytes) {
    return Status::Ok();
  }
  // TRUNCATE waits for readers (edgeline status) through the busy handler; with mu_ held that
  // would stall ingest, so it gives up at once instead and the next call tries again.
  sqlite3_busy_timeout(db_, 0);
  SqliteStatement checkpoint(db_, "PRAGMA wal_checkpoint(TRUNCATE)");
  Status st = checkpoint.prepared();
  while (st.ok() && checkpoint.Step(&st)) {
  }
  sqlite3_busy_timeout(db_, kSqliteBusyTimeoutMs);
  return st;
}

}  // namespace edgeline
