// What the filesystem's unit tests share: a formatted memory device that outlives the filesystems
// opened over it, a mount of it on the simulated AFU, and reproducible data.
#pragma once

#include "client/simulated_afu.h"
#include "fs/filesystem.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/store.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace vlunfs::fs::test_rig {

// A memory device of `bytes`, formatted with chunks of 2^chunk_shift blocks (below 16: beyond the
// hardware, for fast tests) and 1 MiB journal and checkpoint slots.
inline std::unique_ptr<store::BlockStore> formatted_memory_device(uint64_t bytes, unsigned chunk_shift) {
  auto mem = store::make_memory_store(bytes);
  meta::FormatOptions fo;
  fo.chunk_shift = chunk_shift;
  fo.journal_bytes = 1 << 20;
  fo.checkpoint_bytes = 1 << 20;
  EXPECT_TRUE(meta::format(*mem, fo));
  return mem;
}

// Opens and starts a filesystem over the whole of `device` (seen with 512-byte sectors, as the
// daemon sees an image) on the simulated AFU; nullptr, with the test failed, if it cannot.
inline std::unique_ptr<Filesystem> mount_on_simulator(store::BlockStore& device, const MountOptions& options = {}) {
  std::string why;
  auto fs = Filesystem::open_store(store::make_region_store(device, 0, device.size_bytes(), 512), options, &why);
  EXPECT_TRUE(fs) << why;
  if (!fs) return nullptr;
  EXPECT_FALSE(fs.value()->start(client::simulated_afu(), &why)) << why;
  return std::move(fs).value();
}

// n bytes of a pseudo-random pattern, the same for the same seed.
inline std::vector<std::byte> pattern(size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

}  // namespace vlunfs::fs::test_rig
