// Crash points in-process: the Filesystem class over a fault-injecting memory store runs a seeded
// mixed workload (tests/crash/fs_workload.h); the plug is pulled before the Nth write, flush or
// discard, in three ways:
//   kill        every write issued before survives (the process died, the kernel kept its writes)
//   power loss  every write not flushed is lost
//   torn        every write not flushed survives or not, block by block (seeded)
// Then: fsck of the device is clean, the file system mounts, its namespace is the one before or
// after the operation in flight, every fsynced and unchanged file has exactly its synced bytes,
// every file reads back whole, and the remounted file system takes new work and unmounts clean.
//
// VLUNFS_CRASH_ITERATIONS sets the crash points per kind (default 120; 30 under sanitizers).
#include "client/simulated_afu.h"
#include "crash/fs_workload.h"
#include "test_iterations.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace vlunfs::crashtest {
namespace {

int points_per_kind() { return testing_support::iterations_from_env("VLUNFS_CRASH_ITERATIONS", 120, 30); }

constexpr uint64_t kDeviceBytes = 96ull << 20;
constexpr unsigned kChunkShift = 4;  // 64 KiB chunks (simulator only): many chunk operations per run
constexpr int kPointsPerSeed = 10;

enum class Cut { kill, power_loss, torn };

const char* cut_name(Cut c) {
  switch (c) {
    case Cut::kill: return "kill";
    case Cut::power_loss: return "power loss";
    case Cut::torn: return "torn power loss";
  }
  return "?";
}

struct Scenario {
  uint64_t seed = 1;
  uint64_t journal_bytes = 1 << 20;  // 16 KiB: the journal fills and checkpoints every few operations
  int ops = 120;
  bool final_checkpoint = false;     // a checkpoint (sync_all) after the workload
};

struct CrashPoint {
  uint64_t at = 0;  // the mutating I/O (write, flush, discard; counted from 1) that never happens; 0 = none
  Cut cut = Cut::kill;
};

// Where the metadata regions are, to say what a crash point interrupted.
enum class Region { superblock, checkpoint, journal, data, none };

struct Outcome {
  uint64_t mutating_ios = 0;        // in the whole run (crash or not)
  uint64_t checkpoint_begin = 0;    // I/O count before / after the final checkpoint
  uint64_t checkpoint_end = 0;
  Region crash_region = Region::none;
  std::string failure;              // empty if every check passed
};

// Totals for the summary line (and docs/reliability.md).
struct Totals {
  uint64_t points = 0, in_checkpoint = 0, in_superblock = 0, in_journal = 0, in_data = 0, flushes = 0;
  void add(const Outcome& o, bool flush) {
    points++;
    in_checkpoint += o.crash_region == Region::checkpoint;
    in_superblock += o.crash_region == Region::superblock;
    in_journal += o.crash_region == Region::journal;
    in_data += o.crash_region == Region::data;
    flushes += flush;
  }
  void print(const char* what) const {
    std::printf("[crash] %s: %llu crash points (%llu before a flush, %llu in a checkpoint slot write, %llu in a "
                "superblock write, %llu in a journal write, %llu in a data write or discard): all checks passed\n",
                what, static_cast<unsigned long long>(points), static_cast<unsigned long long>(flushes),
                static_cast<unsigned long long>(in_checkpoint), static_cast<unsigned long long>(in_superblock),
                static_cast<unsigned long long>(in_journal), static_cast<unsigned long long>(in_data));
  }
};

Model empty_model() {
  Model m;
  m.dirs[""] = meta::ROOT_INO;
  return m;
}

// Formats a fresh memory device, runs the scenario with the crash point, and checks the result.
Outcome run(const Scenario& sc, const CrashPoint& crash, bool* crashed_on_flush = nullptr) {
  Outcome out;
  auto memory = store::make_memory_store(kDeviceBytes);
  meta::FormatOptions fo;
  fo.chunk_shift = kChunkShift;
  fo.journal_bytes = sc.journal_bytes;
  fo.checkpoint_bytes = 1 << 20;
  auto formatted = meta::format(*memory, fo);
  if (!formatted) {
    out.failure = "format failed";
    return out;
  }
  const meta::Geometry g = formatted.value();

  auto owned = std::make_unique<store::FaultInjectingStore>(*memory);
  store::FaultInjectingStore* fault = owned.get();
  std::atomic<bool> crashed{false};
  uint64_t count = 0;
  fault->set_failure([&, fault](store::IoKind kind, uint64_t offset, uint64_t) {
    if (kind == store::IoKind::read) return false;
    if (++count == crash.at) {
      if (kind == store::IoKind::flush) {
        out.crash_region = Region::none;
        if (crashed_on_flush) *crashed_on_flush = true;
      } else if (offset < g.checkpoint_offset[0]) {
        out.crash_region = Region::superblock;
      } else if (offset < g.journal_offset) {
        out.crash_region = Region::checkpoint;
      } else if (offset < g.data_offset) {
        out.crash_region = Region::journal;
      } else {
        out.crash_region = Region::data;
      }
      crashed = true;
      fault->freeze();  // only sets a flag: safe under the store's lock
    }
    return false;
  });

  std::string why;
  auto opened = fs::Filesystem::open_store(std::move(owned), {}, &why);
  if (!opened) {
    out.failure = "first mount failed: " + why;
    return out;
  }
  std::unique_ptr<fs::Filesystem> fs = std::move(opened).value();
  RunResult result;
  result.before = result.after = empty_model();
  result.last_op = "mount";
  if (auto ec = fs->start(client::simulated_afu(), &why)) {
    out.failure = "first start failed: " + why;
    return out;
  }
  if (!crashed) {
    WorkloadOptions wo;
    wo.chunk_bytes = g.chunk_bytes();
    wo.ops = sc.ops;
    Workload workload(*fs, sc.seed, wo);
    result = workload.run(&crashed);
    if (!result.crashed && sc.final_checkpoint) {
      out.checkpoint_begin = count;
      (void)fs->sync_all();
      out.checkpoint_end = count;
      if (crashed) result.last_op = "checkpoint";
    }
    if (!crashed) {
      workload.close_all();
      fs->shutdown();
    }
  }
  out.mutating_ios = count;
  if (crashed && crash.cut != Cut::kill) {
    (void)fault->lose_power(crash.cut == Cut::torn ? 0.5 : 0.0, sc.seed * 7919 + crash.at);
  }
  fs.reset();  // frozen: nothing the destructor writes lands, as in a killed process

  // ---- The checks ----
  std::string context = std::string(cut_name(crash.cut)) + " before mutating I/O " + std::to_string(crash.at) +
                        " (seed " + std::to_string(sc.seed) + ", journal " + std::to_string(sc.journal_bytes) +
                        " bytes, in flight: " + result.last_op + "): ";
  fsck::Report report = fsck::check_device(*memory, "memory", {});
  if (report.exit_code != fsck::EXIT_CLEAN) {
    out.failure = context + "fsck exit " + std::to_string(report.exit_code) + ": " +
                  (report.errors().empty() ? std::string("?") : report.errors().front());
    return out;
  }
  auto reopened = fs::Filesystem::open_store(std::make_unique<store::FaultInjectingStore>(*memory), {}, &why);
  if (!reopened) {
    out.failure = context + "remount refused: " + why;
    return out;
  }
  fs = std::move(reopened).value();
  if (auto ec = fs->start(client::simulated_afu(), &why)) {
    out.failure = context + "remount start failed: " + why;
    return out;
  }
  if (std::string problem = verify(*fs, result); !problem.empty()) {
    out.failure = context + problem;
    return out;
  }
  // The recovered file system takes new work: leftovers in the journal must never come back.
  auto a = fs->create(meta::ROOT_INO, "after-crash", S_IFREG | 0644, {});
  if (!a) {
    out.failure = context + "create after the crash failed: " + a.error().message();
    return out;
  }
  auto h = fs->open_file(a.value().st.st_ino, true);
  Bytes data(3 * g.chunk_bytes() / 2, std::byte{0x5A});
  if (!h || !fs->write(h.value(), 100, data) || fs->fsync(h.value(), false)) {
    out.failure = context + "write after the crash failed";
    return out;
  }
  fs->release_file(h.value());
  fs->shutdown();
  fs.reset();
  report = fsck::check_device(*memory, "memory", {});
  if (report.exit_code != fsck::EXIT_CLEAN) {
    out.failure = context + "fsck after the post-crash work: exit " + std::to_string(report.exit_code) + ": " +
                  (report.errors().empty() ? std::string("?") : report.errors().front());
  }
  return out;
}

// Crash points spread over the whole run of each seed, seeds until `points` is reached.
void crash_at_random_points(Cut cut, uint64_t first_seed) {
  const int points = points_per_kind();
  Totals totals;
  for (uint64_t seed = first_seed; totals.points < static_cast<uint64_t>(points); seed++) {
    Scenario sc;
    sc.seed = seed;
    sc.journal_bytes = seed % 2 ? 16 << 10 : 1 << 20;
    sc.ops = 60 + static_cast<int>(seed % 5) * 30;
    Outcome full = run(sc, {});
    ASSERT_EQ(full.failure, "") << "without a crash";
    ASSERT_GT(full.mutating_ios, 0u);
    std::mt19937_64 rng(seed);
    for (int i = 0; i < kPointsPerSeed && totals.points < static_cast<uint64_t>(points); i++) {
      CrashPoint cp{1 + rng() % full.mutating_ios, cut};
      bool on_flush = false;
      Outcome o = run(sc, cp, &on_flush);
      ASSERT_EQ(o.failure, "");
      totals.add(o, on_flush);
    }
  }
  totals.print(cut_name(cut));
}

TEST(CrashPoints, KillAtRandomPointsKeepsEverythingAcknowledged) { crash_at_random_points(Cut::kill, 1000); }

TEST(CrashPoints, PowerLossAtRandomPointsKeepsEverythingAcknowledged) { crash_at_random_points(Cut::power_loss, 2000); }

TEST(CrashPoints, TornPowerLossAtRandomPointsKeepsEverythingAcknowledged) { crash_at_random_points(Cut::torn, 3000); }

// Every mutating I/O of one short run is a crash point (a kill: the cut that keeps the most
// half-done work on the device, so the one that finds ordering mistakes).
TEST(CrashPoints, KillAtEveryIoOfAShortRun) {
  Totals totals;
  Scenario sc;
  sc.seed = 21;
  sc.ops = 40;
  sc.journal_bytes = 16 << 10;
  Outcome full = run(sc, {});
  ASSERT_EQ(full.failure, "");
  const uint64_t step = std::max<uint64_t>(1, full.mutating_ios / static_cast<uint64_t>(2 * points_per_kind()));
  for (uint64_t at = 1; at <= full.mutating_ios; at += step) {
    bool on_flush = false;
    Outcome o = run(sc, {at, Cut::kill}, &on_flush);
    ASSERT_EQ(o.failure, "");
    totals.add(o, on_flush);
  }
  totals.print("kill at every I/O of a short run");
}

// Every single I/O of a checkpoint taken at the filesystem level (sync_all: sizes, then the slot
// image, flush, the superblock, flush) is a crash point, for each kind of cut.
TEST(CrashPoints, CrashAtEveryIoOfACheckpoint) {
  Totals totals;
  for (uint64_t seed : {11, 12, 13}) {
    Scenario sc;
    sc.seed = seed;
    sc.ops = 80;
    sc.final_checkpoint = true;
    Outcome full = run(sc, {});
    ASSERT_EQ(full.failure, "");
    ASSERT_GT(full.checkpoint_end, full.checkpoint_begin);
    for (uint64_t at = full.checkpoint_begin + 1; at <= full.checkpoint_end; at++) {
      for (Cut cut : {Cut::kill, Cut::power_loss, Cut::torn}) {
        bool on_flush = false;
        Outcome o = run(sc, {at, cut}, &on_flush);
        ASSERT_EQ(o.failure, "");
        totals.add(o, on_flush);
      }
    }
  }
  EXPECT_GT(totals.in_checkpoint, 0u);
  EXPECT_GT(totals.in_superblock, 0u);
  totals.print("inside checkpoints");
}

}  // namespace
}  // namespace vlunfs::crashtest
