// Specifications of user I/O through vLUNs that the driver built: data lands in the physical
// chunks the LXT names, vLUNs that share no chunk keep their data apart, sizes bound what is
// addressable, and WRITE SAME zeroes the chunks a shrink gives back (spec §5.4, pitfall 9).
#include "vlun_rig.h"

#include <gtest/gtest.h>

#include <set>

namespace vlunfs::vlun::testing {
namespace {

TEST(VlunIo, TwoVlunsThatShareNoChunkKeepTheirOwnData) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t a = rig.create_ok(cookie, 3);
  uint64_t b = rig.create_ok(cookie, 3);
  auto ca = rig.chunks_of(cookie, a), cb = rig.chunks_of(cookie, b);
  std::set<uint64_t> all(ca.begin(), ca.end());
  all.insert(cb.begin(), cb.end());
  EXPECT_EQ(all.size(), 6u);
  for (uint64_t v = 0; v < 48; ++v) {
    ASSERT_TRUE(rig.write_block(cookie, a, v, 1000 + v));
    ASSERT_TRUE(rig.write_block(cookie, b, v, 2000 + v));
  }
  for (uint64_t v = 0; v < 48; ++v) {
    EXPECT_EQ(rig.read_block(cookie, a, v), rig.block(1000 + v)) << v;
    EXPECT_EQ(rig.read_block(cookie, b, v), rig.block(2000 + v)) << v;
    // physical LBA = aun * chunk + offset
    EXPECT_EQ(rig.store_block(ca[v / 16] * 16 + v % 16), rig.block(1000 + v)) << v;
    EXPECT_EQ(rig.store_block(cb[v / 16] * 16 + v % 16), rig.block(2000 + v)) << v;
  }
}

TEST(VlunIo, TransfersCrossingChunkBoundariesLandInTheRightPhysicalChunks) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t a = rig.create_ok(cookie, 1);
  uint64_t gap = rig.create_ok(cookie, 1);
  ASSERT_FALSE(rig.resize(cookie, a, 3));  // a's chunks are not contiguous now
  auto chunks = rig.chunks_of(cookie, a);
  ASSERT_EQ(chunks.size(), 3u);
  ASSERT_NE(chunks[1], chunks[0] + 1);
  std::vector<std::byte> data;
  for (uint64_t i = 0; i < 30; ++i) {
    auto blk = rig.block(500 + i);
    data.insert(data.end(), blk.begin(), blk.end());
  }
  ASSERT_EQ(rig.io(cookie, a, true, 10, 30, data.data()).ioasc, 0u);  // vLBAs 10..39
  for (uint64_t i = 0; i < 30; ++i) {
    uint64_t v = 10 + i;
    EXPECT_EQ(rig.store_block(chunks[v / 16] * 16 + v % 16), rig.block(500 + i)) << v;
  }
  std::vector<std::byte> back(data.size());
  ASSERT_EQ(rig.io(cookie, a, false, 10, 30, back.data()).ioasc, 0u);
  EXPECT_EQ(back, data);
  EXPECT_EQ(rig.read_block(cookie, gap, 0), rig.zeros());
}

TEST(VlunIo, OnlyBlocksInsideTheCurrentSizeAreAddressable) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 2);
  auto data = rig.block(1);
  EXPECT_EQ(rig.io(cookie, h, true, 31, 1, data.data()).ioasc, 0u);
  EXPECT_EQ(rig.io(cookie, h, true, 32, 1, data.data()).rc.afu_rc, SISL_AFU_RC_LXT_OUT_OF_BOUNDS);
  ASSERT_FALSE(rig.resize(cookie, h, 1));
  EXPECT_EQ(rig.io(cookie, h, false, 16, 1, data.data()).rc.afu_rc, SISL_AFU_RC_LXT_OUT_OF_BOUNDS);
  EXPECT_EQ(rig.io(cookie, h, false, 15, 1, data.data()).ioasc, 0u);
  ASSERT_FALSE(rig.resize(cookie, h, 4));
  EXPECT_EQ(rig.io(cookie, h, false, 63, 1, data.data()).ioasc, 0u);
}

TEST(VlunIo, AnotherContextCannotReachAVlunThroughTheSameHandleNumber) {
  Rig rig;
  uint64_t mine = rig.attach_ok(), theirs = rig.attach_ok();
  uint64_t h = rig.create_ok(mine, 1);
  ASSERT_TRUE(rig.write_block(mine, h, 0, 5));
  EXPECT_EQ(rig.io(theirs, h, false, 0, 1, rig.zeros().data()).rc.afu_rc, SISL_AFU_RC_RHT_INVALID);
}

// Spec §5.4, pitfall 9 deviation: the driver zeroes [aun << n, (aun + 1) << n), not the LBAs
// starting at the chunk number.
TEST(VlunWriteSame, ShrinkZeroesTheFreedChunksAtTheirOwnLbas) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 4, kParent, DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME);
  auto chunks = rig.chunks_of(cookie, h);
  ASSERT_EQ(chunks, (std::vector<uint64_t>{0, 1, 2, 3}));
  for (uint64_t v = 0; v < 64; ++v) ASSERT_TRUE(rig.write_block(cookie, h, v, v + 1));
  ASSERT_FALSE(rig.resize(cookie, h, 2));
  for (uint64_t plba = 0; plba < 32; ++plba) EXPECT_EQ(rig.store_block(plba), rig.block(plba + 1)) << plba;
  for (uint64_t plba = 32; plba < 64; ++plba) EXPECT_EQ(rig.store_block(plba), rig.zeros()) << plba;
  // A grow gets zeroed chunks back.
  ASSERT_FALSE(rig.resize(cookie, h, 4));
  EXPECT_EQ(rig.read_block(cookie, h, 40), rig.zeros());
  ASSERT_FALSE(rig.release(cookie, h));
  for (uint64_t plba = 0; plba < 64; ++plba) EXPECT_EQ(rig.store_block(plba), rig.zeros()) << plba;
}

// A shrink zeroes runs of consecutive chunks with one WRITE SAME each: runs must stop at a gap in
// the AUNs and at a chunk someone else still owns, and another vLUN's chunks in between stay.
TEST(VlunWriteSame, ShrinkZeroesExactlyTheChunksItOwnedAloneAcrossGapsAndShares) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t a = rig.create_ok(cookie, 2, kParent, DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME);
  uint64_t b = rig.create_ok(cookie, 2);
  ASSERT_FALSE(rig.resize(cookie, a, 5));
  ASSERT_EQ(rig.chunks_of(cookie, a), (std::vector<uint64_t>{0, 1, 4, 5, 6}));
  ASSERT_EQ(rig.chunks_of(cookie, b), (std::vector<uint64_t>{2, 3}));
  ASSERT_TRUE(rig.driver.share_chunk(*rig.lun, 5));  // a second owner keeps chunk 5
  const uint64_t n = rig.chunk_blocks();
  for (uint64_t v = 0; v < 5 * n; ++v) ASSERT_TRUE(rig.write_block(cookie, a, v, v + 1));
  for (uint64_t v = 0; v < 2 * n; ++v) ASSERT_TRUE(rig.write_block(cookie, b, v, 1000 + v));
  const uint64_t free_before = rig.free_chunks();
  ASSERT_FALSE(rig.resize(cookie, a, 0));
  EXPECT_EQ(rig.free_chunks(), free_before + 4);
  for (uint64_t aun : {0u, 1u, 4u, 6u}) {
    for (uint64_t i = 0; i < n; ++i) EXPECT_EQ(rig.store_block(aun * n + i), rig.zeros()) << aun << "/" << i;
  }
  for (uint64_t i = 0; i < n; ++i) EXPECT_EQ(rig.store_block(5 * n + i), rig.block(3 * n + i + 1)) << i;
  for (uint64_t i = 0; i < 2 * n; ++i) EXPECT_EQ(rig.store_block(2 * n + i), rig.block(1000 + i)) << i;
  rig.driver.drop_chunk(*rig.lun, 5, /*zero_if_last=*/true);
  for (uint64_t i = 0; i < n; ++i) EXPECT_EQ(rig.store_block(5 * n + i), rig.zeros()) << i;
  EXPECT_EQ(rig.free_chunks(), free_before + 5);
}

TEST(VlunWriteSame, WithoutTheWishAShrinkLeavesTheDataInPlace) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 2);
  ASSERT_TRUE(rig.write_block(cookie, h, 20, 9));
  ASSERT_FALSE(rig.resize(cookie, h, 1));
  EXPECT_EQ(rig.store_block(16 + 4), rig.block(9));
  ASSERT_FALSE(rig.resize(cookie, h, 2));  // the same chunk comes back with its old contents
  EXPECT_EQ(rig.read_block(cookie, h, 20), rig.block(9));
}

TEST(VlunWriteSame, HardwareChunksAreZeroedWhole) {
  Rig rig(RigOptions{.chunks = 4096, .driver = {}});  // 1 TiB, sparse
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 3, kParent, DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME);
  auto chunks = rig.chunks_of(cookie, h);
  ASSERT_EQ(chunks, (std::vector<uint64_t>{0, 1, 2}));
  for (uint64_t v : {0ull, 2ull, 65535ull, 65536ull, 2 * 65536ull + 65535, 2 * 65536ull}) {
    ASSERT_TRUE(rig.write_block(cookie, h, v, v + 1));
  }
  ASSERT_FALSE(rig.resize(cookie, h, 1));
  EXPECT_EQ(rig.store_block(0), rig.block(1));
  EXPECT_EQ(rig.store_block(2), rig.block(3));  // LBA 2 = the freed chunk's number: untouched
  EXPECT_EQ(rig.store_block(65535), rig.block(65536));
  EXPECT_EQ(rig.store_block(65536), rig.zeros());
  EXPECT_EQ(rig.store_block(3 * 65536 - 1), rig.zeros());
  EXPECT_EQ(rig.store_block(2 * 65536), rig.zeros());
}

}  // namespace
}  // namespace vlunfs::vlun::testing
