// Power loss under the AFU: a FaultInjectingStore as the physical LUN. What was written through a
// vLUN and made durable with SYNCHRONIZE CACHE survives lose_power(); what was not may be gone,
// block by block (LevelDB's fault-injection model, style.md).
#include "testing/fault_injecting_store.h"
#include "vlun_rig.h"

#include <gtest/gtest.h>

namespace vlunfs::vlun::testing {
namespace {

class PowerLoss : public ::testing::Test {
 protected:
  PowerLoss()
      : base_(store::make_memory_store(64 * 16 * 4096)),
        faulty_(*base_),
        rig_(RigOptions{.lun_store = &faulty_}) {
    cookie_ = rig_.attach_ok();
    handle_ = rig_.create_ok(cookie_, 4);
  }

  std::unique_ptr<store::BlockStore> base_;
  store::FaultInjectingStore faulty_;
  Rig rig_;
  uint64_t cookie_ = 0, handle_ = 0;
};

TEST_F(PowerLoss, FlushedWritesSurviveAndUnflushedOnesAreGone) {
  for (uint64_t v = 0; v < 32; ++v) ASSERT_TRUE(rig_.write_block(cookie_, handle_, v, 100 + v));
  ASSERT_FALSE(rig_.driver.synchronize_cache(*rig_.lun));
  EXPECT_EQ(faulty_.unflushed_blocks(), 0u);
  for (uint64_t v = 16; v < 48; ++v) ASSERT_TRUE(rig_.write_block(cookie_, handle_, v, 200 + v));
  EXPECT_EQ(faulty_.unflushed_blocks(), 32u);
  ASSERT_FALSE(faulty_.lose_power());
  for (uint64_t v = 0; v < 32; ++v) EXPECT_EQ(rig_.read_block(cookie_, handle_, v), rig_.block(100 + v)) << v;
  for (uint64_t v = 32; v < 48; ++v) EXPECT_EQ(rig_.read_block(cookie_, handle_, v), rig_.zeros()) << v;
}

TEST_F(PowerLoss, ATornPowerCutKeepsEachUnflushedBlockWholeOldOrWholeNew) {
  for (uint64_t v = 0; v < 64; ++v) ASSERT_TRUE(rig_.write_block(cookie_, handle_, v, 100 + v));
  ASSERT_FALSE(rig_.driver.synchronize_cache(*rig_.lun));
  for (uint64_t v = 0; v < 64; v += 2) ASSERT_TRUE(rig_.write_block(cookie_, handle_, v, 300 + v));
  ASSERT_FALSE(faulty_.lose_power(0.5, 42));
  int kept = 0, lost = 0;
  for (uint64_t v = 0; v < 64; ++v) {
    auto got = rig_.read_block(cookie_, handle_, v);
    if (v % 2 == 1) {
      EXPECT_EQ(got, rig_.block(100 + v)) << v;  // flushed, never rewritten
    } else if (got == rig_.block(300 + v)) {
      kept++;
    } else {
      EXPECT_EQ(got, rig_.block(100 + v)) << v;
      lost++;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(lost, 0);
}

TEST_F(PowerLoss, DataOfAClonedVlunFlushedThroughEitherSideSurvives) {
  uint64_t child = rig_.attach_ok(kChild);
  ASSERT_FALSE(rig_.clone(cookie_, child));
  ASSERT_TRUE(rig_.write_block(child, handle_, 7, 77, kChild));
  ASSERT_FALSE(rig_.driver.synchronize_cache(*rig_.lun));
  ASSERT_TRUE(rig_.write_block(cookie_, handle_, 8, 88));
  ASSERT_FALSE(faulty_.lose_power());
  EXPECT_EQ(rig_.read_block(cookie_, handle_, 7), rig_.block(77));
  EXPECT_EQ(rig_.read_block(child, handle_, 8, kChild), rig_.zeros());
}

TEST_F(PowerLoss, AFailedFlushIsReportedAndLeavesTheWritesUnflushed) {
  ASSERT_TRUE(rig_.write_block(cookie_, handle_, 3, 1));
  faulty_.fail_nth(store::IoKind::flush, 0);
  EXPECT_EQ(rig_.driver.synchronize_cache(*rig_.lun), errno_error(EIO));
  EXPECT_EQ(faulty_.unflushed_blocks(), 1u);
  ASSERT_FALSE(faulty_.lose_power());
  EXPECT_EQ(rig_.read_block(cookie_, handle_, 3), rig_.zeros());
}

TEST_F(PowerLoss, AFailedWriteIsAMediumErrorAndChangesNothing) {
  faulty_.fail_nth(store::IoKind::write, 0);
  auto data = rig_.block(9);
  sisl_ioasa sa = rig_.io(cookie_, handle_, true, 0, 1, data.data());
  EXPECT_EQ(sa.rc.scsi_rc, SISL_SCSI_RC_CHECK);
  EXPECT_EQ(sa.sense_data[2] & 0xF, SENSE_MEDIUM_ERROR);
  EXPECT_EQ(rig_.read_block(cookie_, handle_, 0), rig_.zeros());
}

}  // namespace
}  // namespace vlunfs::vlun::testing
