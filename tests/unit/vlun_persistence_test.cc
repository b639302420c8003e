// Specifications of the driver's extensions for a persistent filesystem (vlun.h; not ioctls): a
// LUN pinned in virtual mode, chunks adopted from persisted LXTs, vLUNs opened over and closed
// from such LXTs without allocating or freeing, and zeroing a range of a vLUN.
#include "vlun_rig.h"

#include <gtest/gtest.h>

namespace vlunfs::vlun::testing {
namespace {

std::error_code einval() { return errno_error(EINVAL); }

// An LXT entry as the driver writes it for this LUN.
uint64_t entry(Rig& rig, uint64_t aun) {
  return make_lxt_entry(aun, static_cast<unsigned>(rig.driver.lun_info(*rig.lun).lun_index),
                        LXT_PERM_READ | LXT_PERM_WRITE, 0x3);
}

TEST(VlunPersistence, APinnedLunKeepsItsAllocatorWithNothingOpen) {
  Rig rig(RigOptions{.chunks = 130});
  ASSERT_FALSE(rig.driver.pin_virtual(*rig.lun, kParent));
  LunInfo info = rig.driver.lun_info(*rig.lun);
  EXPECT_EQ(info.mode, LunInfo::Mode::virtual_);
  EXPECT_EQ(info.users, 1);
  EXPECT_EQ(info.total_chunks, 130u);
  EXPECT_GE(info.lun_index, 0);
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 64);  // moves the elevator to word 1
  ASSERT_FALSE(rig.release(cookie, h));
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).total_chunks, 130u);
  EXPECT_EQ(rig.create_ok(cookie, 1), h);
  EXPECT_EQ(rig.chunks_of(cookie, h), std::vector<uint64_t>{64});  // the same allocator: no restart
  uint64_t d = 0;
  EXPECT_EQ(rig.direct(cookie, &d), einval());
  ASSERT_FALSE(rig.release(cookie, h));
  rig.driver.unpin_virtual(*rig.lun);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).mode, LunInfo::Mode::none);
}

TEST(VlunPersistence, AdoptedChunksAreOwnedAndOpenVlunMapsThemWithoutAllocating) {
  Rig rig;
  ASSERT_FALSE(rig.driver.pin_virtual(*rig.lun, kParent));
  std::vector<uint64_t> lxt = {entry(rig, 5), entry(rig, 9)};
  ASSERT_FALSE(rig.driver.adopt_chunks(*rig.lun, lxt));
  EXPECT_EQ(rig.free_chunks(), 62u);
  uint64_t cookie = rig.attach_ok();
  uint64_t other = rig.create_ok(cookie, 6);
  for (uint64_t aun : rig.chunks_of(cookie, other)) EXPECT_TRUE(aun != 5 && aun != 9);
  uint64_t h = 0;
  ASSERT_FALSE(rig.driver.open_vlun(*rig.lun, cookie, lxt, &h, kParent));
  EXPECT_EQ(rig.free_chunks(), 56u);
  EXPECT_EQ(rig.chunks_of(cookie, h), (std::vector<uint64_t>{5, 9}));
  EXPECT_EQ(rig.size_chunks(cookie, h), 2u);
  ASSERT_TRUE(rig.write_block(cookie, h, 17, 4));
  EXPECT_EQ(rig.store_block(9 * 16 + 1), rig.block(4));
  // Closing gives nothing back: the chunks belong to the file, not to the handle.
  ASSERT_FALSE(rig.driver.close_vlun(*rig.lun, cookie, h, kParent));
  EXPECT_EQ(rig.free_chunks(), 56u);
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, 9), 1u);
  EXPECT_EQ(rig.io(cookie, h, false, 17, 1, rig.zeros().data()).rc.afu_rc, SISL_AFU_RC_RHT_INVALID);
  EXPECT_EQ(rig.driver.close_vlun(*rig.lun, cookie, h, kParent), einval());
  // Reopened, the data is where it was; a resize of it works like any vLUN's.
  ASSERT_FALSE(rig.driver.open_vlun(*rig.lun, cookie, lxt, &h, kParent));
  EXPECT_EQ(rig.read_block(cookie, h, 17), rig.block(4));
  uint64_t last = 0;
  ASSERT_FALSE(rig.resize(cookie, h, 3, &last));
  EXPECT_EQ(last, 47u);
}

TEST(VlunPersistence, AChunkNamedTwiceIsShared) {
  Rig rig;
  ASSERT_FALSE(rig.driver.pin_virtual(*rig.lun, kParent));
  std::vector<uint64_t> lxt = {entry(rig, 3), entry(rig, 3)};
  ASSERT_FALSE(rig.driver.adopt_chunks(*rig.lun, lxt));
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, 3), 2u);
  EXPECT_EQ(rig.free_chunks(), 63u);
}

TEST(VlunPersistence, AdoptingAChunkOutsideTheLunIsEinvalAndAdoptsNothing) {
  Rig rig;
  uint64_t lxt_unpinned[] = {0};
  EXPECT_EQ(rig.driver.adopt_chunks(*rig.lun, lxt_unpinned), einval());  // no allocator yet
  ASSERT_FALSE(rig.driver.pin_virtual(*rig.lun, kParent));
  std::vector<uint64_t> lxt = {entry(rig, 1), entry(rig, 2), entry(rig, 64)};
  EXPECT_EQ(rig.driver.adopt_chunks(*rig.lun, lxt), einval());
  EXPECT_EQ(rig.free_chunks(), 64u);
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, 1), 0u);
}

TEST(VlunPersistence, OpenVlunRefusesChunksNobodyOwnsOrAnUnpinnedLun) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0;
  std::vector<uint64_t> lxt = {make_lxt_entry(1, 0, LXT_PERM_READ | LXT_PERM_WRITE, 0x3)};
  EXPECT_EQ(rig.driver.open_vlun(*rig.lun, cookie, lxt, &h, kParent), einval());
  ASSERT_FALSE(rig.driver.pin_virtual(*rig.lun, kParent));
  EXPECT_EQ(rig.driver.open_vlun(*rig.lun, cookie, lxt, &h, kParent), einval());
  std::vector<uint64_t> outside = {entry(rig, 64)};
  EXPECT_EQ(rig.driver.open_vlun(*rig.lun, cookie, outside, &h, kParent), einval());
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 1);
  ASSERT_FALSE(rig.driver.adopt_chunks(*rig.lun, lxt));
  EXPECT_EQ(rig.driver.open_vlun(*rig.lun, cookie, lxt, &h, kStranger), einval());
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 1);
  // An empty LXT is a vLUN of size 0.
  ASSERT_FALSE(rig.driver.open_vlun(*rig.lun, cookie, {}, &h, kParent));
  EXPECT_EQ(rig.size_chunks(cookie, h), 0u);
}

TEST(VlunPersistence, ASyncFailureOfOpenVlunIsEagainAndLeavesNothingOpen) {
  Rig rig;
  ASSERT_FALSE(rig.driver.pin_virtual(*rig.lun, kParent));
  std::vector<uint64_t> lxt = {entry(rig, 2)};
  ASSERT_FALSE(rig.driver.adopt_chunks(*rig.lun, lxt));
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0;
  rig.afu.inject_sync_failures(1);
  EXPECT_EQ(rig.driver.open_vlun(*rig.lun, cookie, lxt, &h, kParent), errno_error(EAGAIN));
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 1);
  EXPECT_EQ(rig.driver.chunk_references(*rig.lun, 2), 1u);
  ASSERT_FALSE(rig.driver.open_vlun(*rig.lun, cookie, lxt, &h, kParent));
  EXPECT_EQ(h, 0u);
}

TEST(VlunZeroRange, ZeroesExactlyTheGivenBlocksAcrossChunks) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  rig.create_ok(cookie, 1);  // so the vLUN's chunks are not the first ones
  uint64_t h = rig.create_ok(cookie, 3);
  for (uint64_t v = 0; v < 48; ++v) ASSERT_TRUE(rig.write_block(cookie, h, v, v + 1));
  ASSERT_FALSE(rig.driver.zero_range(*rig.lun, cookie, h, 5, 30, kParent));
  for (uint64_t v = 0; v < 48; ++v) {
    EXPECT_EQ(rig.read_block(cookie, h, v), v >= 5 && v < 35 ? rig.zeros() : rig.block(v + 1)) << v;
  }
  EXPECT_FALSE(rig.driver.zero_range(*rig.lun, cookie, h, 47, 0, kParent));
  EXPECT_EQ(rig.driver.zero_range(*rig.lun, cookie, h, 40, 9, kParent), einval());  // past the end
  EXPECT_EQ(rig.driver.zero_range(*rig.lun, cookie, h, ~uint64_t{0}, 2, kParent), einval());
  EXPECT_EQ(rig.driver.zero_range(*rig.lun, cookie, h, 0, 1, kStranger), einval());
  EXPECT_EQ(rig.read_block(cookie, h, 47), rig.block(48));
}

TEST(VlunSynchronizeCache, FlushesTheLun) {
  Rig rig;
  EXPECT_FALSE(rig.driver.synchronize_cache(*rig.lun));
  rig.afu.set_port_sel(0);
  EXPECT_EQ(rig.driver.synchronize_cache(*rig.lun), errno_error(EAGAIN));  // no channel to it
}

}  // namespace
}  // namespace vlunfs::vlun::testing
