// Scratch files as kernel vLUNs (client/kernel_vlun_files.h) under the simulated kernel: byte I/O
// over 4 KiB blocks, truncate as VLUN_RESIZE, remove as RELEASE, unwritten bytes reading as zeros
// even where the flash holds stale data, nothing kept once the client is gone.
#include "client/kernel_vlun_files.h"

#include "capi_rig.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

namespace vlunfs::client {
namespace {

using afu::capi::SimulatedKernelOptions;
using afu::capi::test_rig::CapiRig;

constexpr uint64_t kChunk = uint64_t{256} << 20;  // a kernel vLUN's chunk: 2^16 blocks of 4 KiB
constexpr uint64_t kLun = 4 * kChunk;

std::vector<std::byte> random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(gen());
  return v;
}

std::vector<std::byte> read_all(KernelVlunFiles& files, uint64_t file, uint64_t offset, size_t n) {
  std::vector<std::byte> out(n, std::byte{0x5F});
  auto got = files.read(file, offset, out);
  EXPECT_TRUE(got);
  out.resize(got ? got.value() : 0);
  return out;
}

bool all_zero(const std::vector<std::byte>& v) {
  return std::all_of(v.begin(), v.end(), [](std::byte b) { return b == std::byte{0}; });
}

// The first 64 KiB of every chunk of the LUN hold what an earlier user left there.
void leave_stale_data(CapiRig& rig) {
  std::vector<std::byte> stale(64 << 10, std::byte{0xEE});
  for (uint64_t c = 0; c < kLun / kChunk; ++c) ASSERT_FALSE(rig.lun_store->write(c * kChunk, stale));
}

std::unique_ptr<KernelVlunFiles> open_files(CapiRig& rig) {
  std::string why;
  auto files = KernelVlunFiles::open(*rig.kernel, rig.device, {}, &why);
  EXPECT_TRUE(files) << why;
  return files ? std::move(files).value() : nullptr;
}

// A new file of `size` bytes in *id.
bool sized_file(KernelVlunFiles& files, uint64_t size, uint64_t* id) {
  auto created = files.create();
  if (!created) return false;
  *id = created.value();
  return !files.truncate(*id, size);
}

void expect_unaligned_io_round_trips(CapiRig& rig) {
  auto files = open_files(rig);
  ASSERT_TRUE(files);
  uint64_t f = 0;
  ASSERT_TRUE(sized_file(*files, 5 << 20, &f));
  EXPECT_EQ(files->size(f).value(), uint64_t{5} << 20);
  auto data = random_bytes((3 << 20) + 123, 1);
  ASSERT_FALSE(files->write(f, 1000, data));  // neither end on a block boundary
  EXPECT_EQ(read_all(*files, f, 1000, data.size()), data);
  EXPECT_TRUE(all_zero(read_all(*files, f, 0, 1000)));
  // Up to the end of the file and no further.
  EXPECT_EQ(read_all(*files, f, (5 << 20) - 10, 100).size(), 10u);
  EXPECT_TRUE(read_all(*files, f, 5 << 20, 100).empty());
}

TEST(CapiKernelVlunFiles, UnalignedWritesReadBackAndTruncateSetsTheSize) {
  CapiRig rig({}, kLun);
  expect_unaligned_io_round_trips(rig);
}

TEST(CapiKernelVlunFiles, WorksOnAnSqModeAfuToo) {
  SimulatedKernelOptions o;
  o.sq_mode = true;
  CapiRig rig(o, kLun);
  expect_unaligned_io_round_trips(rig);
  EXPECT_EQ(rig.kernel->counters().doorbells, 0u);
  EXPECT_GT(rig.kernel->counters().sq_fetches, 0u);
}

TEST(CapiKernelVlunFiles, UnwrittenBytesReadAsZerosOverStaleFlash) {
  CapiRig rig({}, kLun);
  leave_stale_data(rig);
  auto files = open_files(rig);
  ASSERT_TRUE(files);
  uint64_t f = 0;
  ASSERT_TRUE(sized_file(*files, 40000, &f));
  EXPECT_TRUE(all_zero(read_all(*files, f, 0, 40000)));  // nothing written yet
  // A write past the written end: the gap before it is zeroed on the flash, not left stale.
  const std::vector<std::byte> x(7, std::byte{'x'});
  ASSERT_FALSE(files->write(f, 2 * 4096 + 3, x));
  auto head = read_all(*files, f, 0, 2 * 4096 + 3);
  EXPECT_TRUE(all_zero(head));
  EXPECT_EQ(read_all(*files, f, 2 * 4096 + 3, 7), x);
  EXPECT_TRUE(all_zero(read_all(*files, f, 2 * 4096 + 10, 20000)));
}

TEST(CapiKernelVlunFiles, ShrinkThenGrowReadsZerosWhereDataWas) {
  CapiRig rig({}, kLun);
  auto files = open_files(rig);
  ASSERT_TRUE(files);
  uint64_t f = 0;
  ASSERT_TRUE(sized_file(*files, 0, &f));
  const std::vector<std::byte> data(10000, std::byte{0xAB});
  ASSERT_FALSE(files->write(f, 0, data));
  ASSERT_FALSE(files->truncate(f, 100));
  ASSERT_FALSE(files->truncate(f, 10000));
  auto back = read_all(*files, f, 0, 10000);
  ASSERT_EQ(back.size(), 10000u);
  EXPECT_EQ(std::vector<std::byte>(back.begin(), back.begin() + 100), std::vector<std::byte>(100, std::byte{0xAB}));
  EXPECT_TRUE(all_zero(std::vector<std::byte>(back.begin() + 100, back.end())));
  // Written again past a zero-length shrink: the old bytes do not come back either.
  ASSERT_FALSE(files->truncate(f, 0));
  ASSERT_FALSE(files->write(f, 5000, std::vector<std::byte>(10, std::byte{1})));
  EXPECT_TRUE(all_zero(read_all(*files, f, 0, 5000)));
}

TEST(CapiKernelVlunFiles, AGrowTheLunCannotHoldIsRefusedAndTheFileKeepsItsSize) {
  CapiRig rig({}, kLun);
  auto files = open_files(rig);
  ASSERT_TRUE(files);
  uint64_t f = 0;
  ASSERT_TRUE(sized_file(*files, kChunk, &f));
  EXPECT_EQ(files->truncate(f, 5 * kChunk).value(), ENOSPC);
  EXPECT_EQ(files->size(f).value(), kChunk);
  // The chunks of the refused grow went back: another file gets the rest of the LUN.
  uint64_t g = 0;
  ASSERT_TRUE(sized_file(*files, 3 * kChunk, &g));
}

TEST(CapiKernelVlunFiles, RemoveReleasesTheVlun) {
  CapiRig rig({}, kLun);
  auto files = open_files(rig);
  ASSERT_TRUE(files);
  uint64_t f = 0;
  ASSERT_TRUE(sized_file(*files, 4 * kChunk, &f));  // the whole LUN
  const uint64_t releases = rig.kernel->counters().releases;
  ASSERT_FALSE(files->remove(f));
  EXPECT_EQ(rig.kernel->counters().releases, releases + 1);
  EXPECT_EQ(files->files(), 0u);
  EXPECT_EQ(files->size(f).error().value(), ENOENT);
  uint64_t g = 0;
  ASSERT_TRUE(sized_file(*files, 4 * kChunk, &g));
}

TEST(CapiKernelVlunFiles, NothingIsKeptOnceTheClientIsGone) {
  CapiRig rig({}, kLun);
  {
    auto files = open_files(rig);
    ASSERT_TRUE(files);
    uint64_t f = 0;
    ASSERT_TRUE(sized_file(*files, 0, &f));
    ASSERT_FALSE(files->write(f, 0, random_bytes(8192, 2)));
  }
  EXPECT_EQ(rig.kernel->counters().open_contexts, 0u);  // RELEASEd and DETACHed
  auto again = open_files(rig);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->files(), 0u);
  uint64_t f = 0;
  ASSERT_TRUE(sized_file(*again, 4 * kChunk, &f));  // every chunk is free again
}

}  // namespace
}  // namespace vlunfs::client
