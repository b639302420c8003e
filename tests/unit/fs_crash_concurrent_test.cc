// Checkpoints under heavy load: several threads run the crash workload (tests/crash/fs_workload.h),
// each in a directory of its own, while another thread takes checkpoints (sync_all) as fast as it
// can, on a small journal that also fills and checkpoints by itself. Without a crash, everything
// written is there after the unmount. With the plug pulled at a random moment (a kill, or a power
// loss), fsck is clean and every thread's directory passes the same checks as a single workload.
//
// VLUNFS_CRASH_ITERATIONS / 10 rounds per kind of cut (default 12; 3 under sanitizers).
#include "client/simulated_afu.h"
#include "crash/fs_workload.h"
#include "test_iterations.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

namespace vlunfs::crashtest {
namespace {

int rounds() {
  return std::max(1, testing_support::iterations_from_env("VLUNFS_CRASH_ITERATIONS", 120, 30) / 10);
}

constexpr int kThreads = 4;
constexpr uint64_t kDeviceBytes = 256ull << 20;

struct Round {
  uint64_t ios = 0;        // mutating I/Os seen
  uint64_t checkpoints = 0;
  std::string failure;
};

// One round: format, start the threads, pull the plug before mutating I/O `crash_at` (0: never),
// then check. `power` loses every unflushed write at the crash.
Round run_round(uint64_t seed, uint64_t crash_at, bool power) {
  Round out;
  std::atomic<bool> crashed{false}, armed{false};
  std::atomic<uint64_t> count{0};
  auto memory = store::make_memory_store(kDeviceBytes);
  meta::FormatOptions fo;
  fo.chunk_shift = 4;
  fo.journal_bytes = 16 << 10;
  fo.checkpoint_bytes = 1 << 20;
  const meta::Geometry g = meta::format(*memory, fo).value();
  auto owned = std::make_unique<store::FaultInjectingStore>(*memory);
  store::FaultInjectingStore* fault = owned.get();
  fault->set_failure([&, fault](store::IoKind kind, uint64_t, uint64_t) {
    if (kind == store::IoKind::read || !armed) return false;
    if (++count == crash_at) {
      crashed = true;
      fault->freeze();
    }
    return false;
  });
  std::string why;
  auto fs = fs::Filesystem::open_store(std::move(owned), {}, &why).value();
  if (fs->start(client::simulated_afu(), &why)) {
    out.failure = "start: " + why;
    return out;
  }
  std::vector<uint64_t> roots;
  for (int t = 0; t < kThreads; t++) {
    roots.push_back(fs->mkdir(meta::ROOT_INO, "t" + std::to_string(t), 0755, {}).value().st.st_ino);
  }
  armed = true;  // the threads' directories exist (and are durable): crash points start here
  std::vector<RunResult> results(kThreads);
  std::vector<std::unique_ptr<Workload>> workloads;
  WorkloadOptions wo;
  wo.chunk_bytes = g.chunk_bytes();
  wo.ops = 80;
  for (int t = 0; t < kThreads; t++) {
    workloads.push_back(std::make_unique<Workload>(*fs, seed * 100 + static_cast<uint64_t>(t), wo, roots[t]));
  }
  std::atomic<int> running{kThreads};
  std::thread checkpointer([&] {
    while (running > 0 && !crashed) {
      (void)fs->sync_all();
      out.checkpoints++;
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      results[t] = workloads[t]->run(&crashed);
      running--;
    });
  }
  for (auto& th : threads) th.join();
  checkpointer.join();
  const bool did_crash = crashed;
  if (!did_crash) {
    for (auto& w : workloads) w->close_all();
    fs->shutdown();
  }
  out.ios = count;
  if (did_crash && power) (void)fault->lose_power(0.0, seed);
  fs.reset();

  std::string context = std::string(power ? "power loss" : "kill") + " before I/O " + std::to_string(crash_at) +
                        " (seed " + std::to_string(seed) + "): ";
  fsck::Report report = fsck::check_device(*memory, "memory", {});
  if (report.exit_code != fsck::EXIT_CLEAN) {
    out.failure = context + "fsck exit " + std::to_string(report.exit_code) + ": " +
                  (report.errors().empty() ? std::string("?") : report.errors().front());
    return out;
  }
  auto again = fs::Filesystem::open_store(std::make_unique<store::FaultInjectingStore>(*memory), {}, &why);
  if (!again) {
    out.failure = context + "remount refused: " + why;
    return out;
  }
  fs = std::move(again).value();
  if (fs->start(client::simulated_afu(), &why)) {
    out.failure = context + "remount start: " + why;
    return out;
  }
  for (int t = 0; t < kThreads; t++) {
    if (!did_crash) {
      // A clean unmount keeps everything, synced or not: every file must be exact.
      for (auto& [id, st] : results[t].after.state) {
        st.clean = true;
        st.synced = st.content;
      }
      results[t].before = results[t].after;
    }
    if (std::string problem = verify(*fs, results[t], roots[t]); !problem.empty()) {
      out.failure = context + "thread " + std::to_string(t) + ": " + problem;
      return out;
    }
  }
  return out;
}

TEST(CrashConcurrent, CheckpointsUnderHeavyLoadLoseNothing) {
  Round r = run_round(1, 0, false);
  ASSERT_EQ(r.failure, "");
  EXPECT_GT(r.checkpoints, 0u);
  std::printf("[crash] %d threads + a checkpointing thread: %llu mutating I/Os, %llu checkpoints, all exact\n", kThreads,
              static_cast<unsigned long long>(r.ios), static_cast<unsigned long long>(r.checkpoints));
}

TEST(CrashConcurrent, CrashesUnderHeavyLoadKeepEverythingAcknowledged) {
  const int n = rounds();
  uint64_t points = 0;
  for (int i = 0; i < n; i++) {
    for (bool power : {false, true}) {
      const uint64_t seed = 100 + static_cast<uint64_t>(i);
      Round full = run_round(seed, 0, false);
      ASSERT_EQ(full.failure, "");
      std::mt19937_64 rng(seed);
      Round r = run_round(seed, 1 + rng() % std::max<uint64_t>(1, full.ios), power);
      ASSERT_EQ(r.failure, "");
      points++;
    }
  }
  std::printf("[crash] %llu crash points under concurrent load (kill and power loss): all checks passed\n",
              static_cast<unsigned long long>(points));
}

}  // namespace
}  // namespace vlunfs::crashtest
