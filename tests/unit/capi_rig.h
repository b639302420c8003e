// What the CAPI backend's unit tests share: a simulated kernel over a sparse memory LUN, and the
// backend opened on it with its log captured.
#pragma once

#include "afu/capi/direct_lun.h"
#include "afu/capi/simulated_kernel.h"
#include "vlunfs/store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vlunfs::afu::capi::test_rig {

struct CapiRig {
  explicit CapiRig(SimulatedKernelOptions options = {}, uint64_t lun_bytes = uint64_t{1} << 30)
      : lun_store(store::make_memory_store(lun_bytes)) {
    options.store = lun_store.get();
    kernel = std::make_unique<SimulatedKernel>(options);
    device = options.device_path;
  }

  // The backend on the simulated LUN; nullptr (test failed) when it does not open.
  std::unique_ptr<DirectLun> open(DirectLunOptions options = {}) {
    options.log = [this](const std::string& line) {
      std::lock_guard lock(log_mu);
      log.push_back(line);
    };
    std::string why;
    auto lun = DirectLun::open(*kernel, device, options, &why);
    EXPECT_TRUE(lun) << why;
    return lun ? std::move(lun).value() : nullptr;
  }

  bool logged(const std::string& text) {
    std::lock_guard lock(log_mu);
    for (const auto& line : log) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

  std::unique_ptr<store::BlockStore> lun_store;
  std::unique_ptr<SimulatedKernel> kernel;
  std::string device;
  std::mutex log_mu;
  std::vector<std::string> log;
};

// A 16-byte aligned block buffer (data_ea must be aligned, spec §4.1).
struct Blocks {
  explicit Blocks(size_t n, uint8_t fill = 0) : bytes(n * 4096 + 16, fill) {}
  void* data() { return bytes.data() + (16 - reinterpret_cast<uintptr_t>(bytes.data()) % 16) % 16; }
  uint8_t at(size_t i) { return static_cast<uint8_t*>(data())[i]; }
  std::vector<uint8_t> bytes;
};

// Four reads whose completions the simulated kernel holds back and posts in reverse order: each
// must get its own block (written first with fill + i), and the first three, which wait while
// the last comes late, sleep on the adapter fd and are woken by the RRQ-updated interrupt.
inline void expect_reversed_completions_reach_their_commands(CapiRig& rig, DirectLun& lun, uint8_t fill) {
  constexpr unsigned kThreads = 4;
  for (unsigned i = 0; i < kThreads; ++i) {
    Blocks b(1, static_cast<uint8_t>(fill + i));
    ASSERT_FALSE(lun.write_blocks(i * 10, 1, b.data()));
  }
  rig.kernel->hold_completions(kThreads);
  std::vector<std::thread> threads;
  std::vector<uint8_t> seen(kThreads);
  for (unsigned i = 0; i < kThreads; ++i) {
    if (i == kThreads - 1) std::this_thread::sleep_for(std::chrono::milliseconds(30));
    threads.emplace_back([&, i] {
      Blocks b(1);
      EXPECT_FALSE(lun.read_blocks(i * 10, 1, b.data()));
      seen[i] = b.at(0);
    });
  }
  for (auto& t : threads) t.join();
  for (unsigned i = 0; i < kThreads; ++i) EXPECT_EQ(seen[i], fill + i);
  EXPECT_GE(lun.stats().interrupts, 1u);
}

}  // namespace vlunfs::afu::capi::test_rig
