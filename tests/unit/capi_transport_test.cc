// The CAPI backend's host transport and error paths under the simulated kernel (spec §3.1-§3.8,
// §4.3, §4.6, §4.7): the same code that runs on POWER, with the kernel's answers simulated.
#include "capi_rig.h"

#include "vlunfs/cxlflash_ioctl.h"
#include "vlunfs/sislite.h"

#include <fcntl.h>
#include <misc/cxl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

namespace vlunfs::afu::capi {
namespace {

using test_rig::Blocks;
using test_rig::CapiRig;
using namespace vlunfs::sisl;

TEST(CapiTransport, OpensTheWholeLunAndMovesData) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  EXPECT_EQ(lun->block_size(), 4096u);
  EXPECT_EQ(lun->last_lba(), (uint64_t{1} << 30) / 4096 - 1);
  Blocks out(8, 0x5A), in(8);
  ASSERT_FALSE(lun->write_blocks(100, 8, out.data()));
  ASSERT_FALSE(lun->read_blocks(100, 8, in.data()));
  EXPECT_EQ(std::memcmp(out.data(), in.data(), 8 * 4096), 0);
  // The bytes reached the LUN's store at the physical LBA (format-1 handle: LBA unchanged).
  std::vector<std::byte> raw(4096);
  ASSERT_FALSE(rig.lun_store->read(100 * 4096, raw));
  EXPECT_EQ(raw[0], std::byte{0x5A});
  EXPECT_EQ(rig.kernel->counters().attaches, 1u);
}

TEST(CapiTransport, DestructorReleasesDetachesAndClosesEverything) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  EXPECT_EQ(rig.kernel->counters().open_contexts, 1u);
  lun.reset();
  EXPECT_EQ(rig.kernel->counters().releases, 1u);
  EXPECT_EQ(rig.kernel->counters().detaches, 1u);
  EXPECT_EQ(rig.kernel->counters().open_contexts, 0u);
  // The LUN left physical mode with its last handle: a vLUN can be made on it now.
  auto again = rig.open();
  EXPECT_TRUE(again);
}

TEST(CapiTransport, AFailedUserDirectStillDetachesItsContext) {
  CapiRig rig;
  // Another program holds the LUN as virtual LUNs: USER_DIRECT must fail with EINVAL (spec §3.2).
  int fd = rig.kernel->open(rig.device.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  dk_cxlflash_attach a{};
  a.hdr.flags = O_RDWR;
  ASSERT_EQ(rig.kernel->ioctl(fd, DK_CXLFLASH_ATTACH, &a), 0);
  dk_cxlflash_uvirtual uv{};
  uv.context_id = a.context_id;
  ASSERT_EQ(rig.kernel->ioctl(fd, DK_CXLFLASH_USER_VIRTUAL, &uv), 0);
  std::string why;
  auto lun = DirectLun::open(*rig.kernel, rig.device, {}, &why);
  ASSERT_FALSE(lun);
  EXPECT_EQ(lun.error().value(), EINVAL);
  EXPECT_NE(why.find("USER_DIRECT"), std::string::npos) << why;
  EXPECT_EQ(rig.kernel->counters().open_contexts, 1u);  // only the other program's
}

TEST(CapiTransport, NotACapiLunIsSaidSo) {
  CapiRig rig;
  char path[] = "/tmp/capi-not-a-lun-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::string why;
  auto lun = DirectLun::open(*rig.kernel, path, {}, &why);
  unlink(path);
  ASSERT_FALSE(lun);
  EXPECT_EQ(lun.error().value(), ENOTTY);
  EXPECT_NE(why.find("not a CAPI flash LUN"), std::string::npos) << why;
  EXPECT_FALSE(is_capi_lun(*rig.kernel, "/dev/null"));
  EXPECT_TRUE(is_capi_lun(*rig.kernel, rig.device));
  EXPECT_EQ(rig.kernel->counters().open_contexts, 0u);  // the probe detached
}

TEST(CapiTransport, RrqToggleWrapsManyTimes) {
  CapiRig rig;
  DirectLunOptions o;
  o.rrq_entries = 3;  // wraps every third command: the toggle flips again and again
  auto lun = rig.open(o);
  ASSERT_TRUE(lun);
  for (unsigned i = 0; i < 40; ++i) {
    Blocks out(1, static_cast<uint8_t>(i)), in(1);
    ASSERT_FALSE(lun->write_blocks(i, 1, out.data())) << i;
    ASSERT_FALSE(lun->read_blocks(i, 1, in.data())) << i;
    ASSERT_EQ(in.at(4095), static_cast<uint8_t>(i));
  }
}

TEST(CapiTransport, NoDoorbellWhileCmdRoomIsExhausted) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  rig.kernel->set_cmd_room(0);
  const uint64_t before = rig.kernel->counters().doorbells;
  std::atomic<bool> finished{false};
  std::thread io([&] {
    Blocks b(1);
    EXPECT_FALSE(lun->read_blocks(0, 1, b.data()));
    finished = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(finished);
  EXPECT_EQ(rig.kernel->counters().doorbells, before);  // IOARRIN is not rung without room
  rig.kernel->set_cmd_room(1);
  io.join();
  EXPECT_TRUE(finished);
  EXPECT_EQ(rig.kernel->counters().doorbells, before + 1);
}

TEST(CapiTransport, CompletionsOutOfOrderReachTheirOwnCommands) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  test_rig::expect_reversed_completions_reach_their_commands(rig, *lun, 0x10);
}

TEST(CapiTransport, TransientAfuStatusIsRequeued) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  Blocks b(1, 7);
  rig.kernel->fail_commands(2, SISL_AFU_RC_NO_CHANNELS);
  ASSERT_FALSE(lun->write_blocks(3, 1, b.data()));
  rig.kernel->fail_commands(2, SISL_AFU_RC_OUT_OF_DATA_BUFS);
  ASSERT_FALSE(lun->read_blocks(3, 1, b.data()));
  rig.kernel->fail_commands(1, SISL_AFU_RC_DATA_DMA_ERR, SISL_AFU_EXTRA_PAGE_IN_WAIT);
  ASSERT_FALSE(lun->read_blocks(3, 1, b.data()));
  EXPECT_EQ(lun->stats().requeues, 5u);
  EXPECT_EQ(b.at(0), 7);
}

TEST(CapiTransport, HardAfuStatusFailsWithItsErrnoAndAReason) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  Blocks b(1);
  rig.kernel->fail_commands(1, SISL_AFU_RC_RHT_RW_PERM);
  auto ec = lun->write_blocks(0, 1, b.data());
  EXPECT_EQ(ec.value(), EACCES);
  EXPECT_TRUE(rig.logged("afu_rc 0x05"));
  rig.kernel->fail_commands(1, SISL_AFU_RC_DATA_DMA_ERR, SISL_AFU_EXTRA_INVALID_EA);
  EXPECT_EQ(lun->read_blocks(0, 1, b.data()).value(), EFAULT);
  rig.kernel->fail_commands(1, SISL_AFU_RC_TIMED_OUT);
  EXPECT_EQ(lun->read_blocks(0, 1, b.data()).value(), ETIMEDOUT);
  EXPECT_TRUE(rig.logged("timed out"));
  EXPECT_FALSE(lun->read_blocks(0, 1, b.data()));  // the next command runs normally
}

TEST(CapiTransport, LinkDownIsRequeuedUntilTheLinkIsBack) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  Blocks out(2, 0x33), in(2);
  rig.kernel->link_down(6);
  ASSERT_FALSE(lun->write_blocks(10, 2, out.data()));
  ASSERT_FALSE(lun->read_blocks(10, 2, in.data()));
  EXPECT_EQ(lun->stats().requeues, 6u);
  EXPECT_EQ(in.at(8191), 0x33);
}

TEST(CapiTransport, LinkThatStaysDownFailsWithEio) {
  CapiRig rig;
  DirectLunOptions o;
  o.max_requeues = 3;
  auto lun = rig.open(o);
  ASSERT_TRUE(lun);
  Blocks b(1);
  rig.kernel->link_down(100);
  EXPECT_EQ(lun->read_blocks(0, 1, b.data()).value(), EIO);
  EXPECT_TRUE(rig.logged("FC link down"));
}

TEST(CapiTransport, AdapterResetIsRecoveredWithRecoverAfu) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  Blocks out(4, 0x77), in(4);
  ASSERT_FALSE(lun->write_blocks(40, 4, out.data()));
  rig.kernel->reset_adapter();  // the window reads all ones from now on
  ASSERT_FALSE(lun->read_blocks(40, 4, in.data()));
  EXPECT_EQ(in.at(3 * 4096), 0x77);
  EXPECT_EQ(lun->stats().recoveries, 1u);
  EXPECT_EQ(rig.kernel->counters().recovers, 1u);
  EXPECT_TRUE(rig.logged("recovered by DK_CXLFLASH_RECOVER_AFU"));
  // The new context carries on; the old adapter fd and mapping were given up.
  ASSERT_FALSE(lun->write_blocks(41, 1, out.data()));
  lun.reset();
  EXPECT_EQ(rig.kernel->counters().open_contexts, 0u);
}

TEST(CapiTransport, UnitAttentionIsVerifiedThenRetried) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  Blocks b(1, 9);
  rig.kernel->unit_attention();
  ASSERT_FALSE(lun->write_blocks(5, 1, b.data()));
  EXPECT_EQ(lun->stats().verifies, 1u);
  EXPECT_EQ(rig.kernel->counters().verifies, 1u);
  EXPECT_EQ(lun->last_lba(), (uint64_t{1} << 30) / 4096 - 1);  // VERIFY reported the capacity again
}

TEST(CapiTransport, AfuErrorEventsAreLogged) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  rig.kernel->raise_error_event(CXL_EVENT_DATA_STORAGE);
  rig.kernel->raise_error_event(CXL_EVENT_AFU_ERROR);
  rig.kernel->hold_completions(2);  // both commands wait, so the waiters read the adapter fd
  std::thread t1([&] {
    Blocks b(1);
    EXPECT_FALSE(lun->read_blocks(0, 1, b.data()));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // t1 is asleep on the adapter fd
  std::thread t2([&] {
    Blocks b(1);
    EXPECT_FALSE(lun->read_blocks(1, 1, b.data()));
  });
  t1.join();
  t2.join();
  EXPECT_EQ(lun->stats().error_events, 2u);
  EXPECT_TRUE(rig.logged("data storage fault of the AFU at address 0xdead0000"));
  EXPECT_TRUE(rig.logged("AFU error event 0x42"));
}

TEST(CapiTransport, TransfersAreSplitAtMaxXfer) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  const uint64_t n = lun->max_transfer_blocks() + 3;
  Blocks out(n, 0x44), in(n);
  const uint64_t before = rig.kernel->counters().doorbells;
  ASSERT_FALSE(lun->write_blocks(0, n, out.data()));
  EXPECT_EQ(rig.kernel->counters().doorbells - before, 2u);
  ASSERT_FALSE(lun->read_blocks(0, n, in.data()));
  EXPECT_EQ(in.at((n - 1) * 4096), 0x44);
}

TEST(CapiTransport, RangeBeyondTheLunIsRefusedBeforeAnyCommand) {
  CapiRig rig;
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  Blocks b(2);
  EXPECT_EQ(lun->read_blocks(lun->last_lba(), 2, b.data()).value(), EINVAL);
  EXPECT_FALSE(lun->read_blocks(lun->last_lba(), 1, b.data()));
}

TEST(CapiTransport, ReadOnlyContextRefusesWrites) {
  CapiRig rig;
  DirectLunOptions o;
  o.read_only = true;
  auto lun = rig.open(o);
  ASSERT_TRUE(lun);
  Blocks b(1);
  EXPECT_EQ(lun->write_blocks(0, 1, b.data()).value(), EROFS);
  EXPECT_FALSE(lun->read_blocks(0, 1, b.data()));
}

}  // namespace
}  // namespace vlunfs::afu::capi
