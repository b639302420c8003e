// Commands the driver sends through the master context (the role of main.c's send_afu_cmd and
// afu_sync): AFU SYNC (spec §4.8), and SCSI commands to a physical LUN in LUN-id mode - READ
// CAPACITY(16), WRITE SAME(16) with UNMAP, SYNCHRONIZE CACHE(16), READ(16)/WRITE(16) copies.
#include "vlun/driver_impl.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace vlunfs::vlun {

using namespace vlunfs::sisl;

namespace {
alignas(4096) const std::byte kZeroBlock[4096] = {};
}  // namespace

std::error_code Driver::Impl::execute_master(afu::Command& cmd) {
  master_queue.execute(cmd);
  return afu::ioasa_to_error(cmd.sa);
}

// AFU SYNC (spec §4.8). Any failure is EIO here; resize and clone turn it into EAGAIN.
std::error_code Driver::Impl::afu_sync(int ctxid, uint64_t handle, uint8_t mode) {
  std::lock_guard lock(afu_cmd_mu);
  afu::Command cmd;
  cmd.rcb.ctx_id = static_cast<uint16_t>(afu.master_ctxid());
  cmd.rcb.req_flags = SISL_REQ_FLAGS_AFU_CMD;
  cmd.rcb.msi = 2;
  cmd.rcb.timeout = 5;
  cmd.rcb.cdb[0] = SISL_AFU_CMD_SYNC;
  cmd.rcb.cdb[1] = mode;
  put_be16(cmd.rcb.cdb + 2, static_cast<uint16_t>(ctxid));
  put_be32(cmd.rcb.cdb + 4, static_cast<uint32_t>(handle));
  return execute_master(cmd) ? errno_error(EIO) : std::error_code{};
}

std::error_code Driver::Impl::afu_sync_or_eagain(int ctxid, uint64_t handle, uint8_t mode) {
  return afu_sync(ctxid, handle, mode) ? errno_error(EAGAIN) : std::error_code{};
}

// A SCSI command to the physical LUN in LUN-id mode, through the master context.
std::error_code Driver::Impl::master_scsi(const Lun& lun, const uint8_t (&cdb)[16], void* data, uint32_t len,
                                          bool host_write) {
  afu::Command cmd;
  cmd.rcb.ctx_id = static_cast<uint16_t>(afu.master_ctxid());
  cmd.rcb.req_flags = static_cast<uint16_t>(SISL_REQ_FLAGS_PORT_LUN_ID | (host_write ? SISL_REQ_FLAGS_HOST_WRITE : 0) |
                                            SISL_REQ_FLAGS_SUP_UNDERRUN);
  cmd.rcb.res_hndl = lun.port_sel;
  cmd.rcb.lun_id = lun.lun_id;
  cmd.rcb.data_len = len;
  cmd.rcb.data_ea = reinterpret_cast<uint64_t>(data);
  cmd.rcb.timeout = 30;
  std::memcpy(cmd.rcb.cdb, cdb, 16);
  return execute_master(cmd);
}

std::error_code Driver::Impl::read_capacity(Lun& lun) {
  alignas(16) uint8_t buf[32] = {};
  uint8_t cdb[16] = {SCSI_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16};
  put_be32(cdb + 10, sizeof buf);
  if (auto ec = master_scsi(lun, cdb, buf, sizeof buf, false)) return ec;
  lun.max_lba = get_be64(buf);
  lun.blk_len = get_be32(buf + 8);
  return lun.blk_len == 0 ? errno_error(EIO) : std::error_code{};
}

// WRITE SAME(16) with UNMAP over physical LBAs, split to fit the CDB's 32-bit block count.
std::error_code Driver::Impl::write_same(const Lun& lun, uint64_t plba, uint64_t nblocks) {
  while (nblocks > 0) {
    uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(nblocks, 1u << 30));
    uint8_t cdb[16] = {SCSI_WRITE_SAME_16, SCSI_WRITE_SAME_UNMAP};
    put_be64(cdb + 2, plba);
    put_be32(cdb + 10, n);
    if (auto ec = master_scsi(lun, cdb, const_cast<std::byte*>(kZeroBlock), lun.blk_len, true)) return ec;
    plba += n;
    nblocks -= n;
  }
  return {};
}

// Copies physical blocks with READ(16)/WRITE(16), at most CXLFLASH_MAX_XFER_SIZE a command.
std::error_code Driver::Impl::copy_blocks(const Lun& lun, uint64_t from_plba, uint64_t to_plba, uint64_t nblocks) {
  const uint32_t per_cmd = static_cast<uint32_t>(std::min<uint64_t>(nblocks, CXLFLASH_MAX_XFER_SIZE / lun.blk_len));
  std::unique_ptr<std::byte, decltype(&std::free)> buf(
      static_cast<std::byte*>(std::aligned_alloc(4096, uint64_t{per_cmd} * lun.blk_len)), &std::free);
  if (!buf) return errno_error(ENOMEM);
  for (uint64_t done = 0; done < nblocks; done += per_cmd) {
    uint8_t cdb[16];
    build_rw16(cdb, false, from_plba + done, per_cmd);
    if (auto ec = master_scsi(lun, reinterpret_cast<const uint8_t(&)[16]>(cdb), buf.get(), per_cmd * lun.blk_len, false)) {
      return ec;
    }
    build_rw16(cdb, true, to_plba + done, per_cmd);
    if (auto ec = master_scsi(lun, reinterpret_cast<const uint8_t(&)[16]>(cdb), buf.get(), per_cmd * lun.blk_len, true)) {
      return ec;
    }
  }
  return {};
}

std::error_code Driver::synchronize_cache(Lun& lun) {
  uint8_t cdb[16] = {SCSI_SYNCHRONIZE_CACHE_16};
  return impl_->master_scsi(lun, cdb, nullptr, 0, false);
}

}  // namespace vlunfs::vlun
