// Specifications of the resource-handle ioctls (spec §3.2-§3.5, §3.7, §5.4): USER_DIRECT,
// USER_VIRTUAL, VLUN_RESIZE, RELEASE and VERIFY, with LUN mode accounting and every errno the
// simulator can produce.
#include "vlun_rig.h"

#include <gtest/gtest.h>

namespace vlunfs::vlun::testing {
namespace {

std::error_code einval() { return errno_error(EINVAL); }
constexpr uint64_t kAllOnes = ~uint64_t{0};

// ---- USER_DIRECT (spec §3.2) ----

TEST(VlunUserDirect, OpensTheWholeLunIncludingItsTail) {
  Rig rig(RigOptions{.chunks = 8, .extra_blocks = 3});
  uint64_t cookie = rig.attach_ok();
  dk_cxlflash_udirect a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  ASSERT_FALSE(rig.driver.user_direct(*rig.lun, a, kParent));
  EXPECT_EQ(a.rsrc_handle, 0u);
  EXPECT_EQ(a.last_lba, 8u * 16 + 3 - 1);
  EXPECT_EQ(a.hdr.return_flags, 0u);
  LunInfo info = rig.driver.lun_info(*rig.lun);
  EXPECT_EQ(info.mode, LunInfo::Mode::physical);
  EXPECT_EQ(info.users, 1);
  // The LBA is used unchanged, up to the last block of the LUN.
  ASSERT_TRUE(rig.write_block(cookie, 0, a.last_lba, 5));
  EXPECT_EQ(rig.store_block(a.last_lba), rig.block(5));
  // Pitfall 19: only the port of the sdev's channel.
  EXPECT_EQ(rig.io(cookie, 0, false, 0, 1, rig.zeros().data()).port, 0);
}

TEST(VlunUserDirect, LbaPastThePhysicalLunIsCheckConditionLbaOutOfRange) {
  Rig rig(RigOptions{.chunks = 8});
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0;
  ASSERT_FALSE(rig.direct(cookie, &h));
  auto data = rig.block(1);
  sisl_ioasa sa = rig.io(cookie, h, true, 128, 1, data.data());
  EXPECT_EQ(sa.rc.scsi_rc, SISL_SCSI_RC_CHECK);
  EXPECT_EQ(sa.rc.flags & SISL_RC_FLAGS_SENSE_VALID, SISL_RC_FLAGS_SENSE_VALID);
  EXPECT_EQ(sa.sense_data[2] & 0xF, SENSE_ILLEGAL_REQUEST);
  EXPECT_EQ(sa.sense_data[12], ASC_LBA_OUT_OF_RANGE);
  EXPECT_EQ(afu::ioasa_to_error(sa), errno_error(EIO));
}

TEST(VlunUserDirect, EveryOpenIsAnotherHandleAndAnotherUser) {
  Rig rig;
  uint64_t a = rig.attach_ok(), b = rig.attach_ok();
  uint64_t h = 0;
  ASSERT_FALSE(rig.direct(a, &h));
  EXPECT_EQ(h, 0u);
  ASSERT_FALSE(rig.direct(a, &h));
  EXPECT_EQ(h, 1u);
  ASSERT_FALSE(rig.direct(b, &h));
  EXPECT_EQ(h, 0u);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 3);
}

TEST(VlunUserDirect, LunInVirtualModeIsEinvalAndViceVersa) {
  Rig rig;
  uint64_t a = rig.attach_ok(), b = rig.attach_ok();
  uint64_t hv = rig.create_ok(a, 1);
  dk_cxlflash_udirect d{};
  d.hdr = Rig::hdr();
  d.context_id = b;  // another context: the mode is per physical LUN
  dk_cxlflash_udirect before = d;
  EXPECT_EQ(rig.driver.user_direct(*rig.lun, d, kParent), einval());
  EXPECT_EQ(std::memcmp(&d, &before, sizeof d), 0);
  ASSERT_FALSE(rig.release(a, hv));
  uint64_t hd = 0;
  ASSERT_FALSE(rig.direct(b, &hd));
  uint64_t h = 0;
  EXPECT_EQ(rig.create(a, 1, &h), einval());
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 1);
  ASSERT_FALSE(rig.release(b, hd));
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).mode, LunInfo::Mode::none);
  EXPECT_FALSE(rig.create(a, 1, &h));
}

TEST(VlunUserDirect, FullRhtIsEmfile) {
  Rig rig(RigOptions{.driver = {.chunk_shift = 4, .max_rht_per_context = 4}});
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0;
  for (int i = 0; i < 4; ++i) ASSERT_FALSE(rig.direct(cookie, &h));
  EXPECT_EQ(rig.direct(cookie, &h), errno_error(EMFILE));
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 4);
}

TEST(VlunUserDirect, SyncFailureReturnsTheSyncErrorAndUndoesTheHandle) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  rig.afu.inject_sync_failures(1);
  dk_cxlflash_udirect d{};
  d.hdr = Rig::hdr();
  d.context_id = cookie;
  dk_cxlflash_udirect before = d;
  // Spec §3.2/§4.8: a SYNC completing with a non-zero IOASC is EIO, and that error is returned.
  EXPECT_EQ(rig.driver.user_direct(*rig.lun, d, kParent), errno_error(EIO));
  EXPECT_EQ(std::memcmp(&d, &before, sizeof d), 0);
  LunInfo info = rig.driver.lun_info(*rig.lun);
  EXPECT_EQ(info.users, 0);
  EXPECT_EQ(info.mode, LunInfo::Mode::none);
  EXPECT_EQ(rig.io(cookie, 0, false, 0, 1, rig.zeros().data()).rc.afu_rc, SISL_AFU_RC_RHT_INVALID);
  uint64_t h = 7;
  ASSERT_FALSE(rig.direct(cookie, &h));
  EXPECT_EQ(h, 0u);
}

TEST(VlunUserDirect, BadContextIsEinvalAndLeavesTheLunUnused) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  uint64_t cookie = rig.attach_ok(kParent, O_RDWR, &second);
  uint64_t h = 0;
  EXPECT_EQ(rig.direct(cookie, &h), einval());  // not attached to this LUN
  EXPECT_EQ(rig.direct(cookie, &h, kStranger, &second), einval());
  EXPECT_EQ(rig.direct(12345, &h), einval());
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).mode, LunInfo::Mode::none);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 0);
  EXPECT_EQ(rig.driver.lun_info(second).users, 0);
}

// ---- USER_VIRTUAL (spec §3.3) ----

TEST(VlunUserVirtual, CreatesAVlunOfWholeChunks) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  dk_cxlflash_uvirtual a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.lun_size = 17;  // 4K units: rounds up to two 16-block chunks
  ASSERT_FALSE(rig.driver.user_virtual(*rig.lun, a, kParent));
  EXPECT_EQ(a.rsrc_handle, 0u);
  EXPECT_EQ(a.last_lba, 31u);
  EXPECT_EQ(a.hdr.return_flags, DK_CXLFLASH_ALL_PORTS_ACTIVE);  // the LUN is on two ports
  LunInfo info = rig.driver.lun_info(*rig.lun);
  EXPECT_EQ(info.mode, LunInfo::Mode::virtual_);
  EXPECT_EQ(info.users, 1);
  EXPECT_EQ(info.total_chunks, 64u);
  EXPECT_EQ(info.free_chunks, 62u);
  EXPECT_EQ(rig.create_ok(cookie, 1), 1u);
  EXPECT_EQ(rig.create_ok(cookie, 1), 2u);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 3);
}

TEST(VlunUserVirtual, SinglePortLunDoesNotReportAllPortsActive) {
  Rig rig(RigOptions{.ports = 0x2});
  uint64_t cookie = rig.attach_ok();
  dk_cxlflash_uvirtual a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.lun_size = 1;
  ASSERT_FALSE(rig.driver.user_virtual(*rig.lun, a, kParent));
  EXPECT_EQ(a.hdr.return_flags, 0u);
  ASSERT_TRUE(rig.write_block(cookie, a.rsrc_handle, 0, 3));
  EXPECT_EQ(rig.io(cookie, a.rsrc_handle, false, 0, 1, rig.zeros().data()).port, 1);
}

TEST(VlunUserVirtual, SizeZeroReportsAllOnesLastLba) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0, last = 0;
  ASSERT_FALSE(rig.create(cookie, 0, &h, &last));
  EXPECT_EQ(last, kAllOnes);  // pitfall 2
  EXPECT_EQ(last_lba_to_bytes(last), 0u);
  EXPECT_EQ(rig.free_chunks(), 64u);
  EXPECT_EQ(rig.io(cookie, h, false, 0, 1, rig.zeros().data()).rc.afu_rc, SISL_AFU_RC_LXT_OUT_OF_BOUNDS);
}

TEST(VlunUserVirtual, LunSmallerThanOneChunkIsEnomem) {
  Rig rig(RigOptions{.chunks = 0, .extra_blocks = 15});  // pitfall 11
  uint64_t cookie = rig.attach_ok();
  dk_cxlflash_uvirtual a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.lun_size = 0;
  dk_cxlflash_uvirtual before = a;
  EXPECT_EQ(rig.driver.user_virtual(*rig.lun, a, kParent), errno_error(ENOMEM));
  EXPECT_EQ(std::memcmp(&a, &before, sizeof a), 0);
  LunInfo info = rig.driver.lun_info(*rig.lun);
  EXPECT_EQ(info.mode, LunInfo::Mode::none);
  EXPECT_EQ(info.users, 0);
  uint64_t h = 0;
  EXPECT_FALSE(rig.direct(cookie, &h));  // the LUN is still usable whole
}

TEST(VlunUserVirtual, TailSmallerThanAChunkIsNeverAllocated) {
  Rig rig(RigOptions{.chunks = 4, .extra_blocks = 15});
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0, last = 0;
  ASSERT_FALSE(rig.create(cookie, 10, &h, &last));
  EXPECT_EQ(last, 4u * 16 - 1);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).total_chunks, 4u);
}

TEST(VlunUserVirtual, FullRhtIsEmfile) {
  Rig rig(RigOptions{.driver = {.chunk_shift = 4, .max_rht_per_context = 4}});
  uint64_t cookie = rig.attach_ok();
  for (int i = 0; i < 4; ++i) rig.create_ok(cookie, 1);
  dk_cxlflash_uvirtual a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.lun_size = 16;
  dk_cxlflash_uvirtual before = a;
  EXPECT_EQ(rig.driver.user_virtual(*rig.lun, a, kParent), errno_error(EMFILE));
  EXPECT_EQ(std::memcmp(&a, &before, sizeof a), 0);
  EXPECT_EQ(rig.free_chunks(), 60u);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 4);
  // Another context has its own RHT.
  uint64_t other = rig.attach_ok();
  EXPECT_EQ(rig.create_ok(other, 1), 0u);
}

TEST(VlunUserVirtual, NoFreeChunkIsEnospcButAShortLunGivesWhatIsLeft) {
  Rig rig(RigOptions{.chunks = 8});
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0, last = 0;
  ASSERT_FALSE(rig.create(cookie, 5, &h, &last));
  ASSERT_FALSE(rig.create(cookie, 5, &h, &last));  // pitfall 4: 3 of 5
  EXPECT_EQ(last, 3u * 16 - 1);
  EXPECT_EQ(rig.free_chunks(), 0u);
  dk_cxlflash_uvirtual a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.lun_size = 1;
  dk_cxlflash_uvirtual before = a;
  EXPECT_EQ(rig.driver.user_virtual(*rig.lun, a, kParent), errno_error(ENOSPC));
  EXPECT_EQ(std::memcmp(&a, &before, sizeof a), 0);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 2);
  // A vLUN of size 0 needs no chunk.
  EXPECT_FALSE(rig.create(cookie, 0, &h, &last));
  EXPECT_EQ(last, kAllOnes);
}

TEST(VlunUserVirtual, SyncFailureOfTheInitialSizeIsEagainAndLeavesNothingBehind) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  rig.create_ok(cookie, 1);
  rig.afu.inject_sync_failures(1);
  uint64_t h = 0;
  EXPECT_EQ(rig.create(cookie, 4, &h), errno_error(EAGAIN));
  // Pitfall 14 fixed: the chunks came back and the entry is clean for the next open.
  EXPECT_EQ(rig.free_chunks(), 63u);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 1);
  uint64_t last = 0;
  ASSERT_FALSE(rig.create(cookie, 0, &h, &last));
  EXPECT_EQ(h, 1u);
  EXPECT_EQ(last, kAllOnes);
  EXPECT_EQ(rig.io(cookie, h, false, 0, 1, rig.zeros().data()).rc.afu_rc, SISL_AFU_RC_LXT_OUT_OF_BOUNDS);
}

TEST(VlunUserVirtual, BadContextIsEinvalAndLeavesTheLunUnused) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0;
  EXPECT_EQ(rig.create(cookie, 1, &h, nullptr, kStranger), einval());
  EXPECT_EQ(rig.create(cookie ^ 1, 1, &h), einval());
  LunInfo info = rig.driver.lun_info(*rig.lun);
  EXPECT_EQ(info.mode, LunInfo::Mode::none);
  EXPECT_EQ(info.users, 0);
}

TEST(VlunUserVirtual, ModeReturnsToNoneAfterTheLastReleaseAndTheAllocatorStartsFresh) {
  Rig rig(RigOptions{.chunks = 130});
  uint64_t cookie = rig.attach_ok();
  uint64_t big = rig.create_ok(cookie, 64);  // takes bit 63 of word 0: the cursor moves to word 1
  uint64_t keep = rig.create_ok(cookie, 1);
  EXPECT_EQ(rig.chunks_of(cookie, keep), std::vector<uint64_t>{64});
  ASSERT_FALSE(rig.release(cookie, big));
  // Still the same allocator: the cursor stays in word 1.
  uint64_t next = rig.create_ok(cookie, 1);
  EXPECT_EQ(rig.chunks_of(cookie, next), std::vector<uint64_t>{65});
  ASSERT_FALSE(rig.release(cookie, next));
  ASSERT_FALSE(rig.release(cookie, keep));
  LunInfo info = rig.driver.lun_info(*rig.lun);
  EXPECT_EQ(info.mode, LunInfo::Mode::none);
  EXPECT_EQ(info.users, 0);
  EXPECT_EQ(info.total_chunks, 0u);
  // A new allocator: allocation starts at chunk 0 again, and the LUN may now be opened whole.
  uint64_t h = 0;
  ASSERT_FALSE(rig.direct(cookie, &h));
  ASSERT_FALSE(rig.release(cookie, h));
  uint64_t fresh = rig.create_ok(cookie, 2);
  EXPECT_EQ(rig.chunks_of(cookie, fresh), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(rig.free_chunks(), 128u);
}

TEST(VlunUserVirtual, LunTablePlacesMultiPortLunsUpwardAndSinglePortLunsDownward) {
  Rig rig(RigOptions{.chunks = 1});
  Lun& port0 = rig.add_lun(1, 0x1);
  Lun& both = rig.add_lun(1, 0x3);
  Lun& port0b = rig.add_lun(1, 0x1);
  uint64_t cookie = rig.attach_ok();
  for (Lun* l : {&port0, &both, &port0b}) ASSERT_FALSE(rig.reuse(cookie, *l));
  for (Lun* l : {rig.lun, &port0, &both, &port0b}) rig.create_ok(cookie, 1, kParent, 0, l);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).lun_index, 0);
  EXPECT_EQ(rig.driver.lun_info(port0).lun_index, 255);
  EXPECT_EQ(rig.driver.lun_info(both).lun_index, 1);
  EXPECT_EQ(rig.driver.lun_info(port0b).lun_index, 254);
}

TEST(VlunUserVirtual, FullLunTableIsEnospc) {
  Rig rig(RigOptions{.chunks = 1});
  uint64_t cookie = rig.attach_ok();
  rig.create_ok(cookie, 1);  // slot 0
  // Multi-port LUNs count up from 0 and may not pass the single-port slots that count down
  // from 255 (spec §4.9): 256 slots in all.
  std::vector<Lun*> luns;
  for (int i = 1; i < 256; ++i) {
    Lun& l = rig.add_lun(1);
    ASSERT_FALSE(rig.reuse(cookie, l));
    uint64_t h = 0;
    ASSERT_FALSE(rig.create(cookie, 1, &h, nullptr, kParent, 0, &l)) << "LUN " << i;
    EXPECT_EQ(rig.driver.lun_info(l).lun_index, i);
  }
  Lun& extra = rig.add_lun(1);
  ASSERT_FALSE(rig.reuse(cookie, extra));
  uint64_t h = 0;
  EXPECT_EQ(rig.create(cookie, 1, &h, nullptr, kParent, 0, &extra), errno_error(ENOSPC));
  EXPECT_EQ(rig.driver.lun_info(extra).users, 0);
  EXPECT_EQ(rig.driver.lun_info(extra).lun_index, -1);
  Lun& single = rig.add_lun(1, 0x2);
  ASSERT_FALSE(rig.reuse(cookie, single));
  EXPECT_EQ(rig.create(cookie, 1, &h, nullptr, kParent, 0, &single), errno_error(ENOSPC));
}

// ---- VLUN_RESIZE (spec §3.4, §5.4) ----

TEST(VlunResize, GrowsShrinksAndKeepsTheSizeInWholeChunks) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 2);
  uint64_t last = 0;
  ASSERT_FALSE(rig.resize(cookie, h, 5, &last));
  EXPECT_EQ(last, 5u * 16 - 1);
  EXPECT_EQ(rig.free_chunks(), 59u);
  EXPECT_EQ(rig.chunks_of(cookie, h).size(), 5u);
  ASSERT_FALSE(rig.resize(cookie, h, 3, &last));
  EXPECT_EQ(last, 3u * 16 - 1);
  EXPECT_EQ(rig.free_chunks(), 61u);
  ASSERT_FALSE(rig.resize(cookie, h, 3, &last));  // same size: a SYNC only
  EXPECT_EQ(last, 3u * 16 - 1);
  ASSERT_FALSE(rig.resize(cookie, h, 0, &last));
  EXPECT_EQ(last, kAllOnes);
  EXPECT_EQ(rig.free_chunks(), 64u);
  // Partial chunks in 4K units round up.
  dk_cxlflash_resize a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.rsrc_handle = h;
  a.req_size = 33;
  ASSERT_FALSE(rig.driver.vlun_resize(*rig.lun, a, kParent));
  EXPECT_EQ(a.last_lba, 47u);
  EXPECT_EQ(a.hdr.return_flags, 0u);
}

TEST(VlunResize, GrowKeepsTheDataOfTheChunksItAlreadyHad) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 1);
  for (uint64_t b = 0; b < 16; ++b) ASSERT_TRUE(rig.write_block(cookie, h, b, 100 + b));
  ASSERT_FALSE(rig.resize(cookie, h, 20));  // a new, larger LXT array
  for (uint64_t b = 0; b < 16; ++b) EXPECT_EQ(rig.read_block(cookie, h, b), rig.block(100 + b));
  ASSERT_TRUE(rig.write_block(cookie, h, 19 * 16 + 15, 7));
  ASSERT_FALSE(rig.resize(cookie, h, 2));  // a smaller array again
  for (uint64_t b = 0; b < 16; ++b) EXPECT_EQ(rig.read_block(cookie, h, b), rig.block(100 + b));
}

TEST(VlunResize, GrowIsBestEffortWhenFlashIsShort) {
  Rig rig(RigOptions{.chunks = 10});
  uint64_t cookie = rig.attach_ok();
  rig.create_ok(cookie, 6);
  uint64_t h = rig.create_ok(cookie, 1);
  uint64_t last = 0;
  ASSERT_FALSE(rig.resize(cookie, h, 9, &last));  // pitfall 4: 3 more, not 8
  EXPECT_EQ(last, 4u * 16 - 1);
  EXPECT_EQ(rig.free_chunks(), 0u);
  EXPECT_EQ(rig.size_chunks(cookie, h), 4u);
}

TEST(VlunResize, GrowWithNoFreeChunkIsEnospcAndChangesNothing) {
  Rig rig(RigOptions{.chunks = 4});
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 4);
  dk_cxlflash_resize a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.rsrc_handle = h;
  a.req_size = 5 * 16;
  dk_cxlflash_resize before = a;
  EXPECT_EQ(rig.driver.vlun_resize(*rig.lun, a, kParent), errno_error(ENOSPC));
  EXPECT_EQ(std::memcmp(&a, &before, sizeof a), 0);
  EXPECT_EQ(rig.size_chunks(cookie, h), 4u);
  // Shrinking needs no free chunk.
  uint64_t last = 0;
  EXPECT_FALSE(rig.resize(cookie, h, 1, &last));
  EXPECT_EQ(last, 15u);
}

TEST(VlunResize, HugeRequestDoesNotWrapAroundToASmallSize) {
  Rig rig(RigOptions{.chunks = 8});
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 1);
  dk_cxlflash_resize a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.rsrc_handle = h;
  a.req_size = uint64_t{1} << 52;  // × 4096 overflows 64 bits (pitfall 3)
  ASSERT_FALSE(rig.driver.vlun_resize(*rig.lun, a, kParent));
  EXPECT_EQ(a.last_lba, 8u * 16 - 1);  // everything there is
  a.req_size = kAllOnes;
  EXPECT_EQ(rig.driver.vlun_resize(*rig.lun, a, kParent), errno_error(ENOSPC));
}

TEST(VlunResize, SyncFailureIsEagainWithTheGrowAlreadyApplied) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 1);
  rig.afu.inject_sync_failures(1);
  dk_cxlflash_resize a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.rsrc_handle = h;
  a.req_size = 10 * 16;  // 10 chunks: a new LXT array
  dk_cxlflash_resize before = a;
  EXPECT_EQ(rig.driver.vlun_resize(*rig.lun, a, kParent), errno_error(EAGAIN));
  EXPECT_EQ(std::memcmp(&a, &before, sizeof a), 0);  // pitfall 5: no copy-back...
  EXPECT_EQ(rig.size_chunks(cookie, h), 10u);        // ...yet the change happened
  EXPECT_EQ(rig.free_chunks(), 54u);
  EXPECT_TRUE(rig.write_block(cookie, h, 9 * 16, 1));
  // Re-issuing the same size only re-synchronises.
  ASSERT_FALSE(rig.driver.vlun_resize(*rig.lun, a, kParent));
  EXPECT_EQ(a.last_lba, 10u * 16 - 1);
  EXPECT_EQ(rig.free_chunks(), 54u);
}

TEST(VlunResize, SyncFailureIsEagainWithTheShrinkCompleted) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 6);
  rig.afu.inject_sync_failures(1);
  uint64_t last = 0;
  EXPECT_EQ(rig.resize(cookie, h, 2, &last), errno_error(EAGAIN));
  EXPECT_EQ(rig.size_chunks(cookie, h), 2u);
  EXPECT_EQ(rig.free_chunks(), 62u);
  EXPECT_EQ(rig.io(cookie, h, false, 2 * 16, 1, rig.zeros().data()).rc.afu_rc, SISL_AFU_RC_LXT_OUT_OF_BOUNDS);
  rig.afu.inject_sync_failures(1);
  EXPECT_EQ(rig.resize(cookie, h, 2, &last), errno_error(EAGAIN));  // the equal-size SYNC too
  EXPECT_FALSE(rig.resize(cookie, h, 2, &last));
}

TEST(VlunResize, RepeatedSyncFailuresOfAGrowLeaveAUsableVlun) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 1);
  ASSERT_TRUE(rig.write_block(cookie, h, 3, 33));
  rig.afu.inject_sync_failures(2);  // the LW SYNC and the HW SYNC after it both fail
  EXPECT_EQ(rig.resize(cookie, h, 12), errno_error(EAGAIN));
  EXPECT_EQ(rig.size_chunks(cookie, h), 12u);
  EXPECT_EQ(rig.read_block(cookie, h, 3), rig.block(33));
  EXPECT_TRUE(rig.write_block(cookie, h, 11 * 16, 34));
  EXPECT_EQ(rig.read_block(cookie, h, 11 * 16), rig.block(34));
}

// After a failed SYNC the AFU may still be walking the LXT it read before the grow: the driver
// must not free that array until a SYNC has succeeded. The test plays such an AFU, holding on to
// the table the RHT named before the grow.
TEST(VlunResize, OldLxtStaysReadableWhileNoSyncOfTheGrowSucceeded) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 2);
  uint64_t rht = rig.afu.ctrl_mmio(static_cast<int>(cookie & 0xFFFFFFFF)).read64(SISL_CTRL_RHT_START);
  auto* entry = reinterpret_cast<const sisl_rht_entry*>(rht) + h;
  const auto* old_lxt = reinterpret_cast<const uint64_t*>(entry->lxt_start);
  const uint64_t first = old_lxt[0], second = old_lxt[1];
  rig.afu.inject_sync_failures(2);  // the LW SYNC and the HW SYNC after it both fail
  EXPECT_EQ(rig.resize(cookie, h, 12), errno_error(EAGAIN));
  ASSERT_NE(reinterpret_cast<const uint64_t*>(entry->lxt_start), old_lxt);  // a new, larger array
  for (int i = 0; i < 100; ++i) rig.create_ok(cookie, 0);  // allocations that could reuse it
  EXPECT_EQ(old_lxt[0], first);
  EXPECT_EQ(old_lxt[1], second);
}

TEST(VlunResize, ModeContextAndHandleErrorsAreEinval) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  uint64_t cookie = rig.attach_ok();
  ASSERT_FALSE(rig.reuse(cookie, second));
  uint64_t last = 0;
  EXPECT_EQ(rig.resize(cookie, 0, 1, &last), einval());  // the LUN is not in virtual mode
  uint64_t h = rig.create_ok(cookie, 1);
  uint64_t d = 0;
  ASSERT_FALSE(rig.direct(cookie, &d, kParent, &second));
  EXPECT_EQ(rig.resize(cookie, h + 1, 1, &last), einval());      // unused entry
  EXPECT_EQ(rig.resize(cookie, 4096, 1, &last), einval());       // beyond the RHT
  EXPECT_EQ(rig.resize(cookie, kAllOnes, 1, &last), einval());
  EXPECT_EQ(rig.resize(cookie, h, 1, &last, kStranger), einval());
  EXPECT_EQ(rig.resize(cookie + (uint64_t{1} << 32), h, 1, &last), einval());
  // Pitfall 8: a handle works only through the LUN that opened it, and a direct handle is not a
  // vLUN.
  EXPECT_EQ(rig.resize(cookie, d, 1, &last, kParent, &second), einval());
  uint64_t v2 = 0;
  ASSERT_FALSE(rig.release(cookie, d, kParent, &second));
  ASSERT_FALSE(rig.create(cookie, 1, &v2, nullptr, kParent, 0, &second));
  ASSERT_NE(h, v2);
  EXPECT_EQ(rig.resize(cookie, h, 2, &last, kParent, &second), einval());
  EXPECT_EQ(rig.resize(cookie, v2, 2, &last), einval());
  EXPECT_FALSE(rig.resize(cookie, v2, 2, &last, kParent, &second));
}

TEST(VlunResize, Blk512SizesAreIn4KUnitsAndIoInDeviceBlocks) {
  Rig rig(RigOptions{.chunks = 8, .blk_len = 512});
  uint64_t cookie = rig.attach_ok();
  dk_cxlflash_uvirtual a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.lun_size = 1;  // 8 sectors -> one 16-sector chunk = 2 4K units
  ASSERT_FALSE(rig.driver.user_virtual(*rig.lun, a, kParent));
  EXPECT_EQ(a.last_lba, 1u);
  EXPECT_TRUE(rig.write_block(a.context_id, a.rsrc_handle, 15, 1));
  EXPECT_EQ(rig.io(cookie, a.rsrc_handle, false, 16, 1, rig.zeros().data()).rc.afu_rc,
            SISL_AFU_RC_LXT_OUT_OF_BOUNDS);
}

// Spec §5.4 worked example, with the hardware's 2^16-block chunks on a sparse 1 TiB LUN.
TEST(VlunResizeHardware, WorkedExampleOfSpec54) {
  Rig rig(RigOptions{.chunks = 4096, .driver = {}});
  ASSERT_EQ(rig.driver.chunk_shift(), 16u);
  uint64_t cookie = rig.attach_ok();
  dk_cxlflash_uvirtual a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.lun_size = 1;
  ASSERT_FALSE(rig.driver.user_virtual(*rig.lun, a, kParent));
  EXPECT_EQ(a.last_lba, 65535u);  // 1 chunk = 256 MiB
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).total_chunks, 4096u);
  dk_cxlflash_resize r{};
  r.hdr = Rig::hdr();
  r.context_id = cookie;
  r.rsrc_handle = a.rsrc_handle;
  r.req_size = 65537;
  ASSERT_FALSE(rig.driver.vlun_resize(*rig.lun, r, kParent));
  EXPECT_EQ(r.last_lba, 131071u);
  uint64_t other = rig.create_ok(cookie, 94);
  EXPECT_EQ(rig.free_chunks(), 4000u);
  // 5000 chunks asked, 4000 free: success with 4000.
  uint64_t last = 0;
  ASSERT_FALSE(rig.resize(cookie, other, 94 + 5000, &last));
  EXPECT_EQ(last, (94u + 4000) * 65536 - 1);
  EXPECT_EQ(rig.resize(cookie, a.rsrc_handle, 3, &last), errno_error(ENOSPC));
  // I/O at both ends of a hardware chunk.
  EXPECT_TRUE(rig.write_block(cookie, a.rsrc_handle, 131071, 9));
  EXPECT_EQ(rig.read_block(cookie, a.rsrc_handle, 131071), rig.block(9));
  EXPECT_EQ(rig.io(cookie, a.rsrc_handle, false, 131072, 1, rig.zeros().data()).rc.afu_rc,
            SISL_AFU_RC_LXT_OUT_OF_BOUNDS);
}

TEST(VlunResizeHardware, Blk512OneUnitIsOneChunkReportedAs8192Units) {
  Rig rig(RigOptions{.chunks = 4, .blk_len = 512, .driver = {}});
  uint64_t cookie = rig.attach_ok();
  dk_cxlflash_uvirtual a{};
  a.hdr = Rig::hdr();
  a.context_id = cookie;
  a.lun_size = 1;  // nsect 8 -> 1 chunk of 32 MiB
  ASSERT_FALSE(rig.driver.user_virtual(*rig.lun, a, kParent));
  EXPECT_EQ(a.last_lba, 8191u);
  EXPECT_TRUE(rig.write_block(cookie, a.rsrc_handle, 65535, 4));  // vLBAs are 512-byte blocks
  EXPECT_EQ(rig.io(cookie, a.rsrc_handle, false, 65536, 1, rig.zeros().data()).rc.afu_rc,
            SISL_AFU_RC_LXT_OUT_OF_BOUNDS);
}

TEST(VlunSizes, ChunksForReqSizeAndVirtualLastLbaFollowSpec54) {
  EXPECT_EQ(chunks_for_req_size(0, 4096, 16), 0u);
  EXPECT_EQ(chunks_for_req_size(1, 4096, 16), 1u);
  EXPECT_EQ(chunks_for_req_size(65536, 4096, 16), 1u);
  EXPECT_EQ(chunks_for_req_size(65537, 4096, 16), 2u);
  EXPECT_EQ(chunks_for_req_size(1, 512, 16), 1u);
  EXPECT_EQ(chunks_for_req_size(8192, 512, 16), 1u);
  EXPECT_EQ(chunks_for_req_size(8193, 512, 16), 2u);
  EXPECT_EQ(chunks_for_req_size(1, 8192, 16), 0u);  // truncated to 0 sectors first (pitfall 3)
  EXPECT_EQ(chunks_for_req_size(~uint64_t{0}, 4096, 16), uint64_t{UINT32_MAX});
  EXPECT_EQ(virtual_last_lba(0, 4096, 16), kAllOnes);
  EXPECT_EQ(virtual_last_lba(1, 4096, 16), 65535u);
  EXPECT_EQ(virtual_last_lba(2, 4096, 16), 131071u);
  EXPECT_EQ(virtual_last_lba(1, 512, 16), 8191u);
  EXPECT_EQ(virtual_last_lba(3, 4096, 4), 47u);
  EXPECT_EQ(last_lba_to_bytes(kAllOnes), 0u);
  EXPECT_EQ(last_lba_to_bytes(65535), 256u << 20);
}

// ---- RELEASE (spec §3.5) ----

TEST(VlunRelease, VirtualReleaseFreesTheChunksAndTheHandleNumberIsReused) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t a = rig.create_ok(cookie, 3);
  uint64_t b = rig.create_ok(cookie, 2);
  ASSERT_FALSE(rig.release(cookie, a));
  EXPECT_EQ(rig.free_chunks(), 62u);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 1);
  EXPECT_EQ(rig.io(cookie, a, false, 0, 1, rig.zeros().data()).rc.afu_rc, SISL_AFU_RC_RHT_INVALID);
  EXPECT_EQ(rig.create_ok(cookie, 1), a);
  EXPECT_NE(a, b);
}

TEST(VlunRelease, DirectReleaseReturnsTheLunToNone) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0;
  ASSERT_FALSE(rig.direct(cookie, &h));
  ASSERT_FALSE(rig.release(cookie, h));
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).mode, LunInfo::Mode::none);
  EXPECT_EQ(rig.io(cookie, h, false, 0, 1, rig.zeros().data()).rc.afu_rc, SISL_AFU_RC_RHT_INVALID);
}

TEST(VlunRelease, DirectReleaseIgnoresSyncFailures) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0;
  ASSERT_FALSE(rig.direct(cookie, &h));
  rig.afu.inject_sync_failures(1);
  EXPECT_FALSE(rig.release(cookie, h));
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 0);
}

TEST(VlunRelease, UnknownReleasedForeignOrOtherLunsHandleIsEinval) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  uint64_t cookie = rig.attach_ok();
  ASSERT_FALSE(rig.reuse(cookie, second));
  uint64_t h = rig.create_ok(cookie, 1);
  EXPECT_EQ(rig.release(cookie, h + 1), einval());
  EXPECT_EQ(rig.release(cookie, 1u << 20), einval());
  EXPECT_EQ(rig.release(cookie, h, kStranger), einval());
  EXPECT_EQ(rig.release(cookie, h, kParent, &second), einval());
  ASSERT_FALSE(rig.release(cookie, h));
  EXPECT_EQ(rig.release(cookie, h), einval());
}

TEST(VlunRelease, SyncFailureLeavesTheHandleOpenAtSizeZeroUntilARetry) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 4);
  rig.afu.inject_sync_failures(1);
  EXPECT_EQ(rig.release(cookie, h), errno_error(EAGAIN));  // pitfall 15
  EXPECT_EQ(rig.free_chunks(), 64u);
  EXPECT_EQ(rig.size_chunks(cookie, h), 0u);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 1);
  ASSERT_FALSE(rig.release(cookie, h));
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).users, 0);
}

TEST(VlunDetach, SyncFailureWhileReleasingStillReleasesEveryHandle) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  rig.create_ok(cookie, 4);
  rig.create_ok(cookie, 2);
  rig.afu.inject_sync_failures(1);
  EXPECT_FALSE(rig.detach(cookie));  // release errors are ignored (spec §3.6)...
  LunInfo info = rig.driver.lun_info(*rig.lun);
  EXPECT_EQ(info.users, 0);  // ...but no handle is left behind holding the LUN
  EXPECT_EQ(info.mode, LunInfo::Mode::none);
  auto disable = dk_cxlflash_manage_lun{};
  disable.hdr = Rig::hdr(DK_CXLFLASH_MANAGE_LUN_DISABLE_SUPERPIPE);
  disable.wwid[0] = 0x60;
  disable.wwid[14] = 0x10;
  EXPECT_FALSE(rig.driver.manage_lun(*rig.lun, disable));
}

// ---- VERIFY (spec §3.7) ----

dk_cxlflash_verify verify_args(uint64_t cookie, uint64_t handle) {
  dk_cxlflash_verify v{};
  v.hdr = Rig::hdr();
  v.context_id = cookie;
  v.rsrc_handle = handle;
  return v;
}

TEST(VlunVerify, ReportsTheSizeAndNeverChangesIt) {
  Rig rig(RigOptions{.chunks = 16, .extra_blocks = 2});
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 3);
  auto v = verify_args(cookie, h);
  ASSERT_FALSE(rig.driver.verify(*rig.lun, v, kParent));
  EXPECT_EQ(v.last_lba, 47u);
  EXPECT_EQ(v.hdr.return_flags, 0u);
  EXPECT_EQ(rig.free_chunks(), 13u);
  uint64_t zero = rig.create_ok(cookie, 0);
  v = verify_args(cookie, zero);
  ASSERT_FALSE(rig.driver.verify(*rig.lun, v, kParent));
  EXPECT_EQ(v.last_lba, kAllOnes);
}

TEST(VlunVerify, DirectHandleReportsThePhysicalLastLba) {
  Rig rig(RigOptions{.chunks = 16, .extra_blocks = 2});
  uint64_t cookie = rig.attach_ok();
  uint64_t h = 0;
  ASSERT_FALSE(rig.direct(cookie, &h));
  auto v = verify_args(cookie, h);
  ASSERT_FALSE(rig.driver.verify(*rig.lun, v, kParent));
  EXPECT_EQ(v.last_lba, 16u * 16 + 2 - 1);
}

TEST(VlunVerify, BadContextOrHandleIsEinvalAndLeavesTheStructUntouched) {
  Rig rig;
  Lun& second = rig.add_lun(8);
  uint64_t cookie = rig.attach_ok();
  ASSERT_FALSE(rig.reuse(cookie, second));
  uint64_t h = rig.create_ok(cookie, 1);
  for (auto v : {verify_args(cookie, h + 1), verify_args(cookie + (uint64_t{1} << 32), h),
                 verify_args(cookie, 99999)}) {
    auto before = v;
    EXPECT_EQ(rig.driver.verify(*rig.lun, v, kParent), einval());
    EXPECT_EQ(std::memcmp(&v, &before, sizeof v), 0);
  }
  auto v = verify_args(cookie, h);
  EXPECT_EQ(rig.driver.verify(second, v, kParent), einval());
  EXPECT_EQ(rig.driver.verify(*rig.lun, v, kStranger), einval());
}

struct SenseCase {
  const char* name;
  bool descriptor;
  uint8_t key, asc;
  int expected;  // errno, 0 = success
};

class VlunVerifySense : public ::testing::TestWithParam<SenseCase> {};

TEST_P(VlunVerifySense, IsInterpretedBySenseKeyAndAsc) {
  const SenseCase& c = GetParam();
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 2);
  auto v = verify_args(cookie, h);
  v.hint = DK_CXLFLASH_VERIFY_HINT_SENSE;
  if (c.descriptor) {
    v.sense_data[0] = 0x72;
    v.sense_data[1] = c.key;
    v.sense_data[2] = c.asc;
  } else {
    v.sense_data[0] = 0xF0;  // fixed format, current, VALID bit set
    v.sense_data[2] = c.key;
    v.sense_data[7] = 10;
    v.sense_data[12] = c.asc;
  }
  auto before = v;
  std::error_code ec = rig.driver.verify(*rig.lun, v, kParent);
  EXPECT_EQ(ec.value(), c.expected) << ec.message();
  if (c.expected == 0) {
    EXPECT_EQ(v.last_lba, 31u);
  } else {
    EXPECT_EQ(std::memcmp(&v, &before, sizeof v), 0);
  }
  EXPECT_EQ(rig.size_chunks(cookie, h), 2u);  // pitfall 25
}

INSTANTIATE_TEST_SUITE_P(
    Sense, VlunVerifySense,
    ::testing::Values(SenseCase{"FixedNoSense", false, SENSE_NO_SENSE, 0, 0},
                      SenseCase{"FixedRecovered", false, SENSE_RECOVERED_ERROR, 0x17, 0},
                      SenseCase{"FixedNotReady", false, SENSE_NOT_READY, 0x04, 0},
                      SenseCase{"FixedPowerOnReset", false, SENSE_UNIT_ATTENTION, 0x29, 0},
                      SenseCase{"FixedParametersChanged", false, SENSE_UNIT_ATTENTION, 0x2A, 0},
                      SenseCase{"FixedReportedLunsChanged", false, SENSE_UNIT_ATTENTION, 0x3F, 0},
                      SenseCase{"FixedOtherUnitAttention", false, SENSE_UNIT_ATTENTION, 0x28, EIO},
                      SenseCase{"FixedMediumError", false, SENSE_MEDIUM_ERROR, 0x11, EIO},
                      SenseCase{"FixedIllegalRequest", false, SENSE_ILLEGAL_REQUEST, 0x21, EIO},
                      SenseCase{"DescriptorNoSense", true, SENSE_NO_SENSE, 0, 0},
                      SenseCase{"DescriptorNotReady", true, SENSE_NOT_READY, 0x04, 0},
                      SenseCase{"DescriptorPowerOnReset", true, SENSE_UNIT_ATTENTION, 0x29, 0},
                      SenseCase{"DescriptorCapacityChanged", true, SENSE_UNIT_ATTENTION, 0x2A, 0},
                      SenseCase{"DescriptorReportedLunsChanged", true, SENSE_UNIT_ATTENTION, 0x3F, 0},
                      SenseCase{"DescriptorOtherUnitAttention", true, SENSE_UNIT_ATTENTION, 0x3B, EIO},
                      SenseCase{"DescriptorHardwareError", true, 0x4, 0x44, EIO},
                      SenseCase{"DescriptorAbortedCommand", true, 0xB, 0x47, EIO}),
    [](const ::testing::TestParamInfo<SenseCase>& info) { return std::string(info.param.name); });

TEST(VlunVerify, UnparsableSenseIsEinvalButOnlyWithTheHint) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 1);
  for (uint8_t code : {0x00, 0x0F, 0x74, 0x7F}) {
    auto v = verify_args(cookie, h);
    v.sense_data[0] = code;
    v.sense_data[2] = SENSE_NO_SENSE;
    v.hint = DK_CXLFLASH_VERIFY_HINT_SENSE;
    EXPECT_EQ(rig.driver.verify(*rig.lun, v, kParent), einval()) << int(code);
    v.hint = 0;  // sense data present but not to be looked at
    EXPECT_FALSE(rig.driver.verify(*rig.lun, v, kParent)) << int(code);
  }
}

TEST(VlunVerify, UnitAttentionForCapacityRereadsItAndFailsWithEnodevWhenItCannot) {
  Rig rig;
  uint64_t cookie = rig.attach_ok();
  uint64_t h = rig.create_ok(cookie, 1);
  rig.afu.set_port_sel(0);  // READ CAPACITY(16) cannot reach the LUN now
  for (uint8_t asc : {0x29, 0x2A}) {
    auto v = verify_args(cookie, h);
    v.hint = DK_CXLFLASH_VERIFY_HINT_SENSE;
    v.sense_data[0] = 0x70;
    v.sense_data[2] = SENSE_UNIT_ATTENTION;
    v.sense_data[12] = asc;
    EXPECT_EQ(rig.driver.verify(*rig.lun, v, kParent), errno_error(ENODEV)) << int(asc);
  }
  auto v = verify_args(cookie, h);  // 0x3F asks for a rescan, not a capacity read
  v.hint = DK_CXLFLASH_VERIFY_HINT_SENSE;
  v.sense_data[0] = 0x70;
  v.sense_data[2] = SENSE_UNIT_ATTENTION;
  v.sense_data[12] = 0x3F;
  EXPECT_FALSE(rig.driver.verify(*rig.lun, v, kParent));
  rig.afu.set_port_sel(0x3);
  EXPECT_EQ(rig.driver.lun_info(*rig.lun).max_lba, 64u * 16 - 1);
}

}  // namespace
}  // namespace vlunfs::vlun::testing
