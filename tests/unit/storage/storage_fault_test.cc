// The queue under disk faults and damaged files, in the manner of SQLite's I/O-error tests and
// leveldb's fault-injection test: a fault VFS fails the Nth write or sync (transient or
// persistent, SQLITE_IOERR or SQLITE_FULL); the file is truncated, overwritten with garbage, or
// its WAL torn at random offsets. Invariants: an Append that returned OK is readable after
// reopening, one that failed left nothing, the queue works again once the fault clears, and a
// damaged file is moved aside (kept) for a fresh queue, never a crash.
#include <filesystem>
#include <fstream>
#include <random>

#include "gtest/gtest.h"
#include "ingest/group_committer.h"
#include "ingest/mapping.h"
#include "storage/queue.h"
#include "tests/support/fake_clock.h"
#include "tests/support/fault_vfs.h"
#include "tests/support/temp_queue.h"

namespace edgeline {
namespace {

using testing::FaultSpec;

class StorageFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    control_ = dir_.File("faults");
    testing::WriteFaultControl(control_, "off\n");
    testing::InstallFaultVfs(control_);
    options_.config.path = dir_.File("queue.db");
    options_.clock = &clock_;
  }
  void TearDown() override { testing::WriteFaultControl(control_, "off\n"); }

  std::unique_ptr<Queue> Open(const std::string& path) {
    QueueOpenOptions o = options_;
    o.config.path = path;
    auto q = OpenSqliteQueue(o);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? std::move(q).value() : nullptr;
  }
  std::unique_ptr<Queue> Open() { return Open(options_.config.path); }

  static BatchInput Lines(int first, int n) {
    BatchInput b;
    b.stream = std::string(kRawStream);
    for (int i = first; i < first + n; ++i)
      b.lines.push_back("m,g=a v=" + std::to_string(i) + " " + std::to_string(1000 + i));
    b.min_ts_ns = 1000 + first;
    b.max_ts_ns = 1000 + first + n - 1;
    return b;
  }

  // Every line readable by consumer "a", in order.
  static std::vector<std::string> AllLines(Queue* q) {
    std::vector<std::string> out;
    auto batches = q->Read("a", 1'000'000);
    EXPECT_TRUE(batches.ok()) << batches.status().ToString();
    if (!batches.ok()) return out;
    for (const auto& b : *batches) out.insert(out.end(), b.lines.begin(), b.lines.end());
    return out;
  }

  void Fault(const FaultSpec& spec) { testing::WriteFaultControl(control_, testing::FaultLine(spec)); }
  void NoFault() { testing::WriteFaultControl(control_, "off\n"); }

  TempDir dir_;
  std::string control_;
  FakeClock clock_;
  QueueOpenOptions options_;
};

// One fault at every write (then every sync) position of a fixed workload, transient and
// persistent, as IOERR and as FULL.
TEST_F(StorageFaultTest, EveryFaultPositionKeepsCommittedAppendsAndNothingElse) {
  constexpr int kAppends = 12;
  int faults_hit = 0;
  int trials = 0;
  for (const char* op : {"write", "sync"}) {
    for (const char* error : {"ioerr", "full"}) {
      for (long count : {1L, 0L}) {  // transient, persistent
        // The workload makes about 2 WAL writes and 1 sync per append.
        const bool sync = std::string(op) == "sync";
        for (long skip = 0; skip < (sync ? kAppends : 2 * kAppends); skip += (sync ? 1 : 2)) {
          SCOPED_TRACE(std::string(op) + " " + error + " skip=" + std::to_string(skip) +
                       " count=" + std::to_string(count));
          const std::string path = dir_.File("q" + std::to_string(trials++) + ".db");
          std::vector<std::string> committed;
          {
            auto q = Open(path);
            ASSERT_NE(q, nullptr);
            ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
            Fault({error, op, skip, count});
            int failures = 0;
            for (int i = 0; i < kAppends; ++i) {
              BatchInput b = Lines(i * 10, 3);
              auto seqs = q->Append({b}, {});
              if (seqs.ok()) {
                committed.insert(committed.end(), b.lines.begin(), b.lines.end());
              } else {
                ++failures;
                // A disk failure is an I/O error, never "queue full" (which means backpressure).
                EXPECT_EQ(seqs.status().code(), StatusCode::kIoError) << seqs.status().ToString();
              }
            }
            faults_hit += failures > 0;
            NoFault();
            // The queue works again once the disk does.
            BatchInput after = Lines(999, 1);
            auto seqs = q->Append({after}, {});
            ASSERT_TRUE(seqs.ok()) << seqs.status().ToString();
            committed.push_back(after.lines[0]);
            EXPECT_EQ(AllLines(q.get()), committed);
          }
          auto reopened = Open(path);
          ASSERT_NE(reopened, nullptr);
          EXPECT_TRUE(reopened->Stats()->recovered_from.empty());
          ASSERT_TRUE(reopened->RegisterConsumer("a", "raw").ok());
          EXPECT_EQ(AllLines(reopened.get()), committed);
          EXPECT_EQ(*reopened->IntegrityCheck(), "ok");
        }
      }
    }
  }
  std::printf("fault trials: %d, with at least one failed append: %d, faults injected: %ld\n", trials, faults_hit,
              testing::InjectedFaults());
  EXPECT_GE(faults_hit, trials * 9 / 10);  // the sweep really hit the workload
}

// The group committer holds its producer (the MQTT message stays unacknowledged) while the disk
// fails and commits it exactly once when the disk recovers.
TEST_F(StorageFaultTest, GroupCommitterRetriesUntilTheDiskRecovers) {
  auto q = Open();
  ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
  MappingConfig mapping;
  Mapper mapper(mapping);
  GroupCommitterOptions options;
  options.retry_delay_ns = 1'000'000;
  GroupCommitter committer(q.get(), &clock_, options);
  Fault({"full", "write", 0, 5});  // the next five writes fail, then the disk has room again
  Status st = committer.Submit(mapper.Prepare("emergency_generator/g1", R"({"generatorID":"g1","fuel":1})", 1'000));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GE(committer.counters().commit_failures.load(), 1);
  EXPECT_EQ(static_cast<StatusCode>(committer.counters().commit_error.load()), StatusCode::kIoError);
  EXPECT_FALSE(committer.counters().commit_failing.load());
  EXPECT_EQ(Name(CurrentCommitProblem(committer.counters())), "");
  EXPECT_EQ(AllLines(q.get()).size(), 1u);
}

TEST_F(StorageFaultTest, CommitProblemNamesTheCause) {
  IngestCounters c;
  c.commit_failing = true;
  c.commit_error = static_cast<int>(StatusCode::kIoError);
  EXPECT_EQ(Name(CurrentCommitProblem(c)), "disk-error");
  c.commit_error = static_cast<int>(StatusCode::kResourceExhausted);
  EXPECT_EQ(Name(CurrentCommitProblem(c)), "queue-full");
  c.commit_error = static_cast<int>(StatusCode::kCorruption);
  EXPECT_EQ(Name(CurrentCommitProblem(c)), "corrupt");
  c.commit_failing = false;
  EXPECT_EQ(Name(CurrentCommitProblem(c)), "");
}

class DamagedFileTest : public StorageFaultTest {
 protected:
  // A queue with data, closed cleanly (checkpointed): the file alone holds it.
  void Fill(int batches) {
    auto q = Open();
    ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
    for (int i = 0; i < batches; ++i) ASSERT_TRUE(q->Append({Lines(i * 100, 50)}, {}).ok());
  }
  void ExpectMovedAsideAndFresh(uintmax_t original_size) {
    auto q = Open();
    ASSERT_NE(q, nullptr);
    auto stats = q->Stats();
    ASSERT_TRUE(stats.ok());
    ASSERT_FALSE(stats->recovered_from.empty()) << "a damaged file must be detected";
    ASSERT_TRUE(std::filesystem::exists(stats->recovered_from));
    EXPECT_EQ(std::filesystem::file_size(stats->recovered_from), original_size) << "kept as it was";
    EXPECT_EQ(stats->points, 0);
    ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
    ASSERT_TRUE(q->Append({Lines(0, 2)}, {}).ok());
    EXPECT_EQ(AllLines(q.get()).size(), 2u);
    EXPECT_EQ(*q->IntegrityCheck(), "ok");
  }
};

TEST_F(DamagedFileTest, TruncatedFileIsMovedAside) {
  Fill(40);
  const auto size = std::filesystem::file_size(options_.config.path);
  ASSERT_GT(size, 64 * 1024u);
  std::filesystem::resize_file(options_.config.path, size / 2);
  ExpectMovedAsideAndFresh(size / 2);
}

TEST_F(DamagedFileTest, GarbagePagesAreDetectedAndMovedAside) {
  Fill(40);
  const auto size = std::filesystem::file_size(options_.config.path);
  {
    std::fstream f(options_.config.path, std::ios::in | std::ios::out | std::ios::binary);
    std::mt19937 rng(7);
    std::string garbage(3 * 4096, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    f.seekp(2 * 4096);  // pages 3-5: b-tree pages, not the header
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  ExpectMovedAsideAndFresh(size);
}

TEST_F(DamagedFileTest, GarbageHeaderIsMovedAside) {
  Fill(5);
  const auto size = std::filesystem::file_size(options_.config.path);
  {
    std::fstream f(options_.config.path, std::ios::in | std::ios::out | std::ios::binary);
    f.write("not a database, nope", 20);
  }
  ExpectMovedAsideAndFresh(size);
}

// A large file is checked after Open returns (a restart must not read gigabytes before the first
// write). Damage found then leaves a marker: the next open checks first and moves the file aside.
TEST_F(DamagedFileTest, DamageInALargeFileIsFoundInTheBackgroundAndMovedAsideNextStart) {
  Fill(40);
  const auto size = std::filesystem::file_size(options_.config.path);
  {
    std::fstream f(options_.config.path, std::ios::in | std::ios::out | std::ios::binary);
    std::string garbage(2 * 4096, '\x5a');
    f.seekp(static_cast<std::streamoff>(size) - 2 * 4096);  // the newest batch pages, not what Open reads
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  options_.sync_check_max_bytes = 0;  // every file counts as large
  {
    auto q = Open();
    ASSERT_NE(q, nullptr);
    // Stats reads every batch, so it may meet the damage itself; if it can read, the file was
    // not moved aside at open (large files are checked after open returns).
    auto stats = q->Stats();
    if (stats.ok()) {
      EXPECT_TRUE(stats->recovered_from.empty());
    }
    EXPECT_EQ(q->StartupCheck(/*wait=*/true).code(), StatusCode::kCorruption);
    EXPECT_TRUE(std::filesystem::exists(options_.config.path + ".check-failed"));
  }
  ExpectMovedAsideAndFresh(size);
  EXPECT_FALSE(std::filesystem::exists(options_.config.path + ".check-failed"));
}

// The size bound after a background count is as exact as after a count at open: appends made
// while the count runs are neither lost nor counted twice.
TEST_F(DamagedFileTest, BackgroundCountKeepsTheSizeBoundExact) {
  Fill(40);
  int64_t stored = 0;
  {
    auto q = Open();
    stored = q->Stats()->counted_bytes;
  }
  std::filesystem::copy_file(options_.config.path, dir_.File("copy.db"));
  auto fits = [&](const std::string& path, int64_t sync_check_max_bytes) {
    QueueOpenOptions o = options_;
    o.config.path = path;
    o.config.full_policy = QueueFullPolicy::kBackpressure;
    o.config.max_bytes = stored + 3000;
    o.sync_check_max_bytes = sync_check_max_bytes;
    auto q = OpenSqliteQueue(o);
    EXPECT_TRUE(q.ok());
    EXPECT_TRUE((*q)->RegisterConsumer("a", "raw").ok());
    int n = 0;
    EXPECT_TRUE((*q)->Append({Lines(100000, 5)}, {}).ok());  // likely while the count runs
    EXPECT_TRUE((*q)->StartupCheck(/*wait=*/true).ok());
    while (n < 1000 && (*q)->Append({Lines(200000 + n * 5, 5)}, {}).ok()) ++n;
    return n;
  };
  const int at_open = fits(dir_.File("copy.db"), 1LL << 40);
  const int in_background = fits(options_.config.path, 0);
  EXPECT_GT(at_open, 0);
  EXPECT_LT(at_open, 1000);
  EXPECT_EQ(in_background, at_open);
}

// Power loss tears the WAL at any byte. Whatever the offset, the queue opens and holds a prefix
// of the committed appends, each batch whole: never a gap, never half a batch, never a crash.
TEST_F(StorageFaultTest, WalTornAtRandomOffsetsLeavesACommittedPrefix) {
  constexpr int kAppends = 30;
  const std::string wal_db = dir_.File("wal.db");
  std::vector<std::vector<std::string>> appended;
  std::string db_copy;
  std::string wal_copy;
  {
    auto q = Open(wal_db);
    ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
    for (int i = 0; i < kAppends; ++i) {
      BatchInput b = Lines(i * 10, 5);
      ASSERT_TRUE(q->Append({b}, {}).ok());
      appended.push_back(b.lines);
    }
    // Copy while open, as a crash would leave them: the commits live in the WAL only.
    auto slurp = [](const std::string& p) {
      std::ifstream in(p, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    db_copy = slurp(wal_db);
    wal_copy = slurp(wal_db + "-wal");
  }
  ASSERT_GT(wal_copy.size(), 32u * 4096);
  std::mt19937_64 rng(20261125);
  int trials = 0;
  for (int t = 0; t < 40; ++t) {
    const bool flip = t % 2 == 1;  // odd trials: garbage bytes instead of a cut
    const size_t offset = std::uniform_int_distribution<size_t>(0, wal_copy.size() - 1)(rng);
    SCOPED_TRACE((flip ? "garbage at " : "cut at ") + std::to_string(offset));
    const std::string path = dir_.File("torn" + std::to_string(t) + ".db");
    std::string wal = flip ? wal_copy : wal_copy.substr(0, offset);
    if (flip) {
      for (size_t i = offset; i < std::min(wal.size(), offset + 100); ++i) wal[i] = static_cast<char>(rng());
    }
    std::ofstream(path, std::ios::binary) << db_copy;
    std::ofstream(path + "-wal", std::ios::binary) << wal;
    auto q = Open(path);
    ASSERT_NE(q, nullptr);
    ++trials;
    auto stats = q->Stats();
    ASSERT_TRUE(stats.ok());
    if (!stats->recovered_from.empty()) continue;  // damage in the schema's frames: moved aside, fresh queue
    ASSERT_TRUE(q->RegisterConsumer("a", "raw").ok());
    auto batches = q->Read("a", 1'000'000);
    ASSERT_TRUE(batches.ok()) << batches.status().ToString();
    ASSERT_LE(batches->size(), appended.size());
    for (size_t i = 0; i < batches->size(); ++i) EXPECT_EQ((*batches)[i].lines, appended[i]) << "batch " << i;
    EXPECT_EQ(*q->IntegrityCheck(), "ok");
  }
  EXPECT_EQ(trials, 40);
}

}  // namespace
}  // namespace edgeline
