// Specifications of the simulated AFU's command execution (spec §4.10): every afu_rc it can
// produce, the data-length flags, SCSI errors for LBAs beyond the LUN, and translation through
// the RHT/LXT (spec §4.4, §4.5), with the RHT and LXTs written by hand.
#include "afu_rig.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

namespace vlunfs::afu::testing {
namespace {

constexpr uint32_t kBlk = 4096;

TEST(AfuTranslate, VirtualReadWriteMovesDataThroughTheLxt) {
  AfuRig rig;
  rig.set_virtual(0, {9});
  auto data = pattern(1, 3, kBlk);
  EXPECT_EQ(rig.rw(0, true, 5, 3, data.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  // physical LBA = aun << nmask | offset in chunk
  EXPECT_EQ(rig.read_store(9 * 16 + 5, 3), data);
  std::vector<std::byte> back(3 * kBlk);
  sisl_ioasa sa = rig.rw(0, false, 5, 3, back.data());
  EXPECT_EQ(sa.ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(sa.resid, 0u);
  EXPECT_EQ(back, data);
}

TEST(AfuTranslate, TransferCrossingChunksLandsInEachChunksPhysicalBlocks) {
  AfuRig rig;
  rig.set_virtual(0, {5, 2, 7});
  // vLBAs 4..43: 12 blocks in chunk 0, 16 in chunk 1, 12 in chunk 2.
  auto data = pattern(2, 40, kBlk);
  ASSERT_EQ(rig.rw(0, true, 4, 40, data.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  auto part = [&](size_t first, size_t n) {
    return std::vector<std::byte>(data.begin() + first * kBlk, data.begin() + (first + n) * kBlk);
  };
  EXPECT_EQ(rig.read_store(5 * 16 + 4, 12), part(0, 12));
  EXPECT_EQ(rig.read_store(2 * 16, 16), part(12, 16));
  EXPECT_EQ(rig.read_store(7 * 16, 12), part(28, 12));
  std::vector<std::byte> back(40 * kBlk);
  ASSERT_EQ(rig.rw(0, false, 4, 40, back.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(back, data);
}

TEST(AfuTranslate, HardwareNmask16ReplacesTheLow16BitsOfTheEntry) {
  AfuRig rig(AfuRigOptions{.lun_blocks = 4 * 65536});  // 1 GiB, sparse
  rig.set_virtual(0, {3, 1}, 16);
  auto data = pattern(3, 4, kBlk);
  ASSERT_EQ(rig.rw(0, true, 65534, 4, data.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(rig.read_store(3 * 65536 + 65534, 2),
            std::vector<std::byte>(data.begin(), data.begin() + 2 * kBlk));
  EXPECT_EQ(rig.read_store(1 * 65536, 2), std::vector<std::byte>(data.begin() + 2 * kBlk, data.end()));
}

TEST(AfuTranslate, DirectHandleUsesTheLbaUnchanged) {
  AfuRig rig;
  rig.set_direct(3);
  auto data = pattern(4, 2, kBlk);
  ASSERT_EQ(rig.rw(3, true, 77, 2, data.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(rig.read_store(77, 2), data);
}

TEST(AfuTranslate, UnusedRhtEntryIsRhtInvalid) {
  AfuRig rig;
  std::vector<std::byte> buf(kBlk);
  sisl_ioasa sa = rig.rw(0, false, 0, 1, buf.data());  // all-zero entry: nmask 0
  EXPECT_EQ(sa.rc.afu_rc, SISL_AFU_RC_RHT_INVALID);
}

TEST(AfuTranslate, DirectEntryWithoutValidByteIsRhtInvalid) {
  AfuRig rig;
  rig.set_direct(1, kLunId, SISL_RHT_PERM_RW, 0x1, /*valid=*/0);
  std::vector<std::byte> buf(kBlk);
  EXPECT_EQ(rig.rw(1, false, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_RHT_INVALID);
}

TEST(AfuTranslate, UnknownRhtFormatIsRhtInvalid) {
  AfuRig rig;
  rig.set_virtual(2, {0});
  rig.rht[2].fp = SISL_RHT_FP(2, SISL_RHT_PERM_RW);
  std::vector<std::byte> buf(kBlk);
  EXPECT_EQ(rig.rw(2, false, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_RHT_INVALID);
}

TEST(AfuTranslate, MisalignedRhtStartIsRhtUnaligned) {
  AfuRig rig;
  rig.set_virtual(0, {0});
  rig.afu.ctrl_mmio(rig.ctxid).write64(SISL_CTRL_RHT_START, reinterpret_cast<uint64_t>(rig.rht.get()) + 8);
  std::vector<std::byte> buf(kBlk);
  EXPECT_EQ(rig.rw(0, false, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_RHT_UNALIGNED);
}

TEST(AfuTranslate, NullRhtStartIsRhtDmaErrorWithInvalidEa) {
  AfuRig rig;
  rig.afu.ctrl_mmio(rig.ctxid).write64(SISL_CTRL_RHT_START, 0);
  std::vector<std::byte> buf(kBlk);
  sisl_ioasa sa = rig.rw(0, false, 0, 1, buf.data());
  EXPECT_EQ(sa.rc.afu_rc, SISL_AFU_RC_RHT_DMA_ERR);
  EXPECT_EQ(sa.afu_extra, SISL_AFU_EXTRA_INVALID_EA);
}

TEST(AfuTranslate, HandleAtOrBeyondRhtCountIsRhtOutOfBounds) {
  AfuRig rig;
  rig.set_virtual(kRhtEntries - 1, {0});
  std::vector<std::byte> buf(kBlk);
  EXPECT_EQ(rig.rw(kRhtEntries - 1, false, 0, 1, buf.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(rig.rw(kRhtEntries, false, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_RHT_OUT_OF_BOUNDS);
  EXPECT_EQ(rig.rw(0xFFFFFFFF, false, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_RHT_OUT_OF_BOUNDS);
  // A context whose RHT count is 0 (disabled) has no valid handle at all.
  rig.afu.ctrl_mmio(rig.ctxid).write64(SISL_CTRL_RHT_CNT_ID, 0);
  EXPECT_EQ(rig.rw(0, false, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_RHT_OUT_OF_BOUNDS);
}

TEST(AfuTranslate, MissingRhtPermissionIsRhtRwPerm) {
  AfuRig rig;
  rig.set_virtual(0, {0}, 4, SISL_RHT_PERM_READ);
  rig.set_virtual(1, {1}, 4, SISL_RHT_PERM_WRITE);
  rig.set_virtual(2, {2}, 4, 0);
  rig.set_direct(3, kLunId, SISL_RHT_PERM_READ);
  auto buf = pattern(5, 1, kBlk);
  EXPECT_EQ(rig.rw(0, false, 0, 1, buf.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(rig.rw(0, true, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_RHT_RW_PERM);
  EXPECT_EQ(rig.rw(1, true, 0, 1, buf.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(rig.rw(1, false, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_RHT_RW_PERM);
  EXPECT_EQ(rig.rw(2, false, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_RHT_RW_PERM);
  EXPECT_EQ(rig.rw(2, true, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_RHT_RW_PERM);
  EXPECT_EQ(rig.rw(3, true, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_RHT_RW_PERM);
}

TEST(AfuTranslate, ChunkAtOrBeyondLxtCountIsLxtOutOfBoundsAndMovesNothing) {
  AfuRig rig;
  rig.set_virtual(0, {3, 4});  // vLBAs 0..31
  auto data = pattern(6, 4, kBlk);
  EXPECT_EQ(rig.rw(0, true, 32, 1, data.data()).rc.afu_rc, SISL_AFU_RC_LXT_OUT_OF_BOUNDS);
  // Starts inside, ends outside: refused before any block moves.
  EXPECT_EQ(rig.rw(0, true, 30, 4, data.data()).rc.afu_rc, SISL_AFU_RC_LXT_OUT_OF_BOUNDS);
  EXPECT_EQ(rig.read_store(4 * 16 + 14, 2), std::vector<std::byte>(2 * kBlk));
  // An empty vLUN (lxt_cnt 0, no array) has no addressable block.
  rig.set_virtual(1, {});
  rig.rht[1].lxt_start = 0;
  EXPECT_EQ(rig.rw(1, false, 0, 1, data.data()).rc.afu_rc, SISL_AFU_RC_LXT_OUT_OF_BOUNDS);
}

TEST(AfuTranslate, LxtEntryWithoutWriteBitIsLxtRwPermAndMovesNothing) {
  AfuRig rig;
  uint64_t* lxt = rig.set_virtual(0, {1, 2});
  lxt[1] &= ~LXT_PERM_WRITE;  // chunk 1 read-only, as a copy-on-write FS would mark it (pitfall 18)
  auto data = pattern(7, 2, kBlk);
  EXPECT_EQ(rig.rw(0, true, 16, 1, data.data()).rc.afu_rc, SISL_AFU_RC_LXT_RW_PERM);
  EXPECT_EQ(rig.rw(0, false, 16, 1, data.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(rig.rw(0, true, 0, 1, data.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  // Across the boundary: nothing reaches chunk 0 either.
  auto other = pattern(8, 2, kBlk);
  EXPECT_EQ(rig.rw(0, true, 15, 2, other.data()).rc.afu_rc, SISL_AFU_RC_LXT_RW_PERM);
  EXPECT_EQ(rig.read_store(1 * 16 + 15, 1), std::vector<std::byte>(kBlk));
  lxt[0] &= ~LXT_PERM_READ;
  EXPECT_EQ(rig.rw(0, false, 0, 1, data.data()).rc.afu_rc, SISL_AFU_RC_LXT_RW_PERM);
}

TEST(AfuTranslate, NoUsablePortIsNoChannelsWithMasksInAfuExtra) {
  AfuRig rig;
  rig.set_virtual(0, {0});               // ports 0x3
  rig.set_virtual(1, {1}, 4, SISL_RHT_PERM_RW, LXT_PERM_READ | LXT_PERM_WRITE, 0x2);
  rig.set_direct(2, kLunId, SISL_RHT_PERM_RW, 0x2);
  std::vector<std::byte> buf(kBlk);
  rig.afu.set_port_sel(0x1);
  EXPECT_EQ(rig.rw(0, false, 0, 1, buf.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  sisl_ioasa sa = rig.rw(1, false, 0, 1, buf.data());
  EXPECT_EQ(sa.rc.afu_rc, SISL_AFU_RC_NO_CHANNELS);
  EXPECT_EQ(sa.afu_extra, (0x1 << 2) | 0x2);  // available 01, requested 10
  EXPECT_EQ(rig.rw(2, false, 0, 1, buf.data()).rc.afu_rc, SISL_AFU_RC_NO_CHANNELS);
  rig.afu.set_port_sel(0);  // every link down
  sa = rig.rw(0, false, 0, 1, buf.data());
  EXPECT_EQ(sa.rc.afu_rc, SISL_AFU_RC_NO_CHANNELS);
  EXPECT_EQ(sa.afu_extra, 0x3);
  EXPECT_EQ(afu::ioasa_to_error(sa), errno_error(EAGAIN));  // retryable
  rig.afu.set_port_sel(0x3);
  EXPECT_EQ(rig.rw(1, false, 0, 1, buf.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(rig.rw(1, false, 0, 1, buf.data()).port, 1);
}

TEST(AfuTranslate, UserContextIssuingWriteSameIsCapabilityViolation) {
  AfuRig rig;
  rig.set_virtual(0, {0});
  alignas(16) std::byte zeros[kBlk] = {};
  uint8_t cdb[16] = {SCSI_WRITE_SAME_16, SCSI_WRITE_SAME_UNMAP};
  put_be64(cdb + 2, 0);
  put_be32(cdb + 10, 16);
  sisl_ioasa sa = rig.submit(make_rcb(SISL_REQ_FLAGS_RES_HNDL | SISL_REQ_FLAGS_HOST_WRITE, 0, cdb, zeros, kBlk));
  EXPECT_EQ(sa.rc.afu_rc, SISL_AFU_RC_CAP_VIOLATION);
  EXPECT_EQ(sa.afu_extra, SISL_CTX_CAP_READ_CMD | SISL_CTX_CAP_WRITE_CMD);  // the context's caps
}

TEST(AfuTranslate, UserContextIssuingAnAfuCommandIsCapabilityViolation) {
  AfuRig rig;
  uint8_t cdb[16] = {SISL_AFU_CMD_SYNC, SISL_AFU_HW_SYNC};
  put_be16(cdb + 2, static_cast<uint16_t>(rig.ctxid));
  sisl_ioasa sa = rig.submit(make_rcb(SISL_REQ_FLAGS_AFU_CMD, 0, cdb, nullptr, 0));
  EXPECT_EQ(sa.rc.afu_rc, SISL_AFU_RC_CAP_VIOLATION);
}

TEST(AfuTranslate, UserContextInLunIdModeIsCapabilityViolation) {
  AfuRig rig;
  std::vector<std::byte> buf(kBlk);
  uint8_t cdb[16];
  build_rw16(cdb, false, 0, 1);
  sisl_ioarcb rcb = make_rcb(SISL_REQ_FLAGS_PORT_LUN_ID, 0x1, cdb, buf.data(), kBlk);
  rcb.lun_id = kLunId;
  EXPECT_EQ(rig.submit(rcb).rc.afu_rc, SISL_AFU_RC_CAP_VIOLATION);
  // The master (REAL_MODE) may address the LUN directly.
  EXPECT_EQ(rig.submit(rcb, /*through_master=*/true).ioasc, SISL_IOASC_GOOD_COMPLETION);
}

TEST(AfuTranslate, DirectionFlagContradictingTheCdbIsCapabilityViolation) {
  AfuRig rig;
  rig.set_virtual(0, {0});
  std::vector<std::byte> buf(kBlk);
  uint8_t cdb[16];
  build_rw16(cdb, false, 0, 1);
  EXPECT_EQ(rig.submit(make_rcb(SISL_REQ_FLAGS_RES_HNDL | SISL_REQ_FLAGS_HOST_WRITE, 0, cdb, buf.data(), kBlk)).rc.afu_rc,
            SISL_AFU_RC_CAP_VIOLATION);
  build_rw16(cdb, true, 0, 1);
  EXPECT_EQ(rig.submit(make_rcb(SISL_REQ_FLAGS_RES_HNDL, 0, cdb, buf.data(), kBlk)).rc.afu_rc,
            SISL_AFU_RC_CAP_VIOLATION);
}

TEST(AfuTranslate, ContextWithoutWriteCapabilityCannotWrite) {
  AfuRig rig(AfuRigOptions{.ctx_cap = SISL_CTX_CAP_READ_CMD});
  rig.set_virtual(0, {0});
  std::vector<std::byte> buf(kBlk);
  EXPECT_EQ(rig.rw(0, false, 0, 1, buf.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  sisl_ioasa sa = rig.rw(0, true, 0, 1, buf.data());
  EXPECT_EQ(sa.rc.afu_rc, SISL_AFU_RC_CAP_VIOLATION);
  EXPECT_EQ(sa.afu_extra, SISL_CTX_CAP_READ_CMD);
}

TEST(AfuTranslate, CtxCapIsWriteProtectedUntilMboxRIsRead) {
  AfuRig rig;
  int other = rig.afu.start_context().value();
  MmioWindow& ctrl = rig.afu.ctrl_mmio(other);
  ctrl.write64(SISL_CTRL_CTX_CAP, SISL_CTX_CAP_READ_CMD);
  EXPECT_EQ(ctrl.read64(SISL_CTRL_CTX_CAP), 0u);
  (void)ctrl.read64(SISL_CTRL_MBOX_R);
  ctrl.write64(SISL_CTRL_CTX_CAP, SISL_CTX_CAP_READ_CMD);
  EXPECT_EQ(ctrl.read64(SISL_CTRL_CTX_CAP), SISL_CTX_CAP_READ_CMD);
  rig.afu.stop_context(other);
}

TEST(AfuTranslate, NullOrMisalignedDataBufferIsDataDmaErrorWithInvalidEa) {
  AfuRig rig;
  rig.set_virtual(0, {0});
  sisl_ioasa sa = rig.rw(0, true, 0, 1, nullptr);
  EXPECT_EQ(sa.rc.afu_rc, SISL_AFU_RC_DATA_DMA_ERR);
  EXPECT_EQ(sa.afu_extra, SISL_AFU_EXTRA_INVALID_EA);
  std::vector<std::byte> buf(2 * kBlk);
  sa = rig.rw(0, false, 0, 1, buf.data() + 8);
  EXPECT_EQ(sa.rc.afu_rc, SISL_AFU_RC_DATA_DMA_ERR);
  EXPECT_EQ(sa.afu_extra, SISL_AFU_EXTRA_INVALID_EA);
  EXPECT_EQ(afu::ioasa_to_error(sa), errno_error(EIO));
}

TEST(AfuTranslate, LongerBufferIsUnderrunWithResidUnlessSuppressed) {
  AfuRig rig;
  rig.set_virtual(0, {2});
  auto data = pattern(9, 3, kBlk);
  uint8_t cdb[16];
  build_rw16(cdb, true, 0, 2);
  sisl_ioasa sa = rig.submit(make_rcb(SISL_REQ_FLAGS_RES_HNDL | SISL_REQ_FLAGS_HOST_WRITE, 0, cdb, data.data(), 3 * kBlk));
  EXPECT_EQ(sa.rc.flags, SISL_RC_FLAGS_UNDERRUN);
  EXPECT_EQ(sa.rc.fc_rc, SISL_FC_RC_RESID);
  EXPECT_EQ(sa.rc.afu_rc, 0);
  EXPECT_EQ(sa.resid, kBlk);
  // The two blocks the CDB asked for were written.
  EXPECT_EQ(rig.read_store(2 * 16, 2), std::vector<std::byte>(data.begin(), data.begin() + 2 * kBlk));
  sa = rig.submit(make_rcb(SISL_REQ_FLAGS_RES_HNDL | SISL_REQ_FLAGS_HOST_WRITE | SISL_REQ_FLAGS_SUP_UNDERRUN, 0,
                           cdb, data.data(), 3 * kBlk));
  EXPECT_EQ(sa.ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(sa.resid, 0u);
}

TEST(AfuTranslate, ShorterBufferIsOverrunWithResidAndMovesNothing) {
  AfuRig rig;
  rig.set_virtual(0, {2});
  auto data = pattern(10, 2, kBlk);
  uint8_t cdb[16];
  build_rw16(cdb, true, 0, 2);
  sisl_ioasa sa = rig.submit(make_rcb(SISL_REQ_FLAGS_RES_HNDL | SISL_REQ_FLAGS_HOST_WRITE, 0, cdb, data.data(), kBlk));
  EXPECT_EQ(sa.rc.flags, SISL_RC_FLAGS_OVERRUN);
  EXPECT_EQ(sa.rc.fc_rc, SISL_FC_RC_RESID);
  EXPECT_EQ(sa.resid, kBlk);
  EXPECT_EQ(rig.read_store(2 * 16, 2), std::vector<std::byte>(2 * kBlk));
}

void expect_lba_out_of_range(const sisl_ioasa& sa) {
  EXPECT_EQ(sa.rc.afu_rc, 0);
  EXPECT_EQ(sa.rc.scsi_rc, SISL_SCSI_RC_CHECK);
  EXPECT_TRUE(sa.rc.flags & SISL_RC_FLAGS_SENSE_VALID);
  EXPECT_EQ(sa.sense_data[0] & 0x7F, 0x70);
  EXPECT_EQ(sa.sense_data[2] & 0xF, SENSE_ILLEGAL_REQUEST);
  EXPECT_EQ(sa.sense_data[12], ASC_LBA_OUT_OF_RANGE);
}

TEST(AfuTranslate, LbaPastThePhysicalLunIsCheckConditionIllegalRequest) {
  AfuRig rig;  // 1024 blocks
  rig.set_direct(0);
  auto data = pattern(11, 8, kBlk);
  expect_lba_out_of_range(rig.rw(0, true, 1024, 1, data.data()));
  expect_lba_out_of_range(rig.rw(0, true, 1020, 8, data.data()));  // straddles the end
  EXPECT_EQ(rig.read_store(1020, 4), std::vector<std::byte>(4 * kBlk));
  EXPECT_EQ(rig.rw(0, true, 1016, 8, data.data()).ioasc, SISL_IOASC_GOOD_COMPLETION);
  // A virtual entry pointing at a chunk past the LUN's end fails the same way.
  rig.set_virtual(1, {64});
  expect_lba_out_of_range(rig.rw(1, false, 0, 1, data.data()));
}

TEST(AfuTranslate, UnsupportedOpcodeIsCheckConditionInvalidOpcode) {
  AfuRig rig;
  rig.set_virtual(0, {0});
  uint8_t cdb[16] = {0x28};  // READ(10): only the 16-byte forms are implemented
  sisl_ioasa sa = rig.submit(make_rcb(SISL_REQ_FLAGS_RES_HNDL, 0, cdb, nullptr, 0), true);
  EXPECT_EQ(sa.rc.scsi_rc, SISL_SCSI_RC_CHECK);
  EXPECT_EQ(sa.sense_data[12], ASC_INVALID_OPCODE);
}

TEST(AfuTranslate, HostUseOfTheIoasaIsLeftAlone) {
  AfuRig rig;
  rig.set_virtual(0, {0});
  std::vector<std::byte> buf(kBlk);
  Command cmd;
  cmd.sa.host_use[0] = 0xDEADBEEF;
  cmd.sa.host_use[3] = 42;
  afu::rw16(*rig.queue, cmd, static_cast<uint16_t>(rig.ctxid), 0, false, 0, 1, kBlk, buf.data());
  EXPECT_EQ(cmd.sa.ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(cmd.sa.host_use[0], 0xDEADBEEFu);
  EXPECT_EQ(cmd.sa.host_use[3], 42u);
}

// ---- AFU commands through the master (spec §4.8) ----

sisl_ioarcb sync_rcb(uint8_t mode, int ctxid) {
  uint8_t cdb[16] = {SISL_AFU_CMD_SYNC, mode};
  put_be16(cdb + 2, static_cast<uint16_t>(ctxid));
  return make_rcb(SISL_REQ_FLAGS_AFU_CMD, 0, cdb, nullptr, 0);
}

TEST(AfuSync, EveryModeCompletesGood) {
  AfuRig rig;
  for (uint8_t mode : {SISL_AFU_LW_SYNC, SISL_AFU_HW_SYNC, SISL_AFU_GSYNC}) {
    EXPECT_EQ(rig.submit(sync_rcb(mode, rig.ctxid), true).ioasc, SISL_IOASC_GOOD_COMPLETION) << int(mode);
  }
  EXPECT_EQ(rig.submit(sync_rcb(3, rig.ctxid), true).rc.scsi_rc, SISL_SCSI_RC_CHECK);
}

TEST(AfuSync, InjectedFailuresTimeOutThatManySyncs) {
  AfuRig rig;
  rig.afu.inject_sync_failures(2);
  EXPECT_EQ(rig.submit(sync_rcb(SISL_AFU_LW_SYNC, rig.ctxid), true).rc.afu_rc, SISL_AFU_RC_TIMED_OUT);
  EXPECT_EQ(rig.submit(sync_rcb(SISL_AFU_HW_SYNC, rig.ctxid), true).rc.afu_rc, SISL_AFU_RC_TIMED_OUT);
  EXPECT_EQ(rig.submit(sync_rcb(SISL_AFU_HW_SYNC, rig.ctxid), true).ioasc, SISL_IOASC_GOOD_COMPLETION);
}

TEST(AfuSync, WaitsForCommandsOfTheContextStillRunning) {
  AfuRig rig(AfuRigOptions{.gated = true});
  rig.set_virtual(0, {0});
  rig.gate->close();
  std::vector<std::byte> buf(kBlk);
  std::thread io([&] { rig.rw(0, false, 0, 1, buf.data()); });
  rig.gate->wait_for_waiters(1);
  // The SYNC may complete only once the held command's data transfer has finished (its RRQ
  // entry and the host's wake-up may come later: that is not what SYNC orders).
  auto sync = std::async(std::launch::async, [&] {
    sisl_ioasa sa = rig.submit(sync_rcb(SISL_AFU_HW_SYNC, rig.ctxid), true);
    return std::pair{sa.ioasc, rig.gate->completed() == 1};
  });
  EXPECT_EQ(sync.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  rig.gate->open();
  auto [ioasc, io_finished_first] = sync.get();
  io.join();
  EXPECT_EQ(ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_TRUE(io_finished_first);
}

TEST(AfuIoasa, ErrorsMapToErrnoValues) {
  sisl_ioasa sa{};
  EXPECT_FALSE(afu::ioasa_to_error(sa));
  sa.rc.afu_rc = SISL_AFU_RC_RHT_RW_PERM;
  EXPECT_EQ(afu::ioasa_to_error(sa), errno_error(EACCES));
  sa.rc.afu_rc = SISL_AFU_RC_LXT_RW_PERM;
  EXPECT_EQ(afu::ioasa_to_error(sa), errno_error(EACCES));
  sa.rc.afu_rc = SISL_AFU_RC_LXT_OUT_OF_BOUNDS;
  EXPECT_EQ(afu::ioasa_to_error(sa), errno_error(EINVAL));
  sa.rc.afu_rc = SISL_AFU_RC_OUT_OF_DATA_BUFS;
  EXPECT_EQ(afu::ioasa_to_error(sa), errno_error(EAGAIN));
  sa = sisl_ioasa{};
  sa.rc.scsi_rc = SISL_SCSI_RC_CHECK;
  EXPECT_EQ(afu::ioasa_to_error(sa), errno_error(EIO));
  sa = sisl_ioasa{};
  sa.rc.flags = SISL_RC_FLAGS_UNDERRUN;
  EXPECT_EQ(afu::ioasa_to_error(sa), errno_error(EIO));
}

}  // namespace
}  // namespace vlunfs::afu::testing
