#include "client/vlun.h"

#include "client/lun_client.h"
#include "vlunfs/afu.h"
#include "vlunfs/sislite.h"
#include "vlunfs/vlun.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>

namespace vlunfs::client {

namespace {

// Whole 4K units of a chunk count, as VLUN_RESIZE wants its req_size.
uint64_t req_size_for_chunks(uint64_t chunks, const LunClient& client) {
  return chunks * client.chunk_bytes() / vlun::CXLFLASH_BLOCK_SIZE;
}

}  // namespace

Vlun::~Vlun() {
  if (released_) return;
  (void)client_.driver_->close_vlun(*client_.lun_, slot_.cookie, handle_);
  std::lock_guard lock(client_.pool_mu_);
  slot_.handles.erase(handle_);
}

uint64_t Vlun::context_id() const { return slot_.cookie; }

std::error_code Vlun::release() {
  dk_cxlflash_release r{};
  r.context_id = slot_.cookie;
  r.rsrc_handle = handle_;
  vlun::Driver& drv = *client_.driver_;
  std::error_code ec = drv.release(*client_.lun_, r);
  if (ec == std::errc::resource_unavailable_try_again) ec = drv.release(*client_.lun_, r);  // pitfall 15
  if (ec) return ec;
  released_ = true;
  chunks_ = 0;
  std::lock_guard lock(client_.pool_mu_);
  slot_.handles.erase(handle_);
  return {};
}

namespace {

struct Transfer {
  std::error_code error;
  std::optional<WriteFault> fault;
};

// One command per chunk piece, at most the transfer limit. A failed command's IOASA becomes an
// errno in one place, afu::ioasa_to_error; to the file's user only a permission fault is more
// than EIO (design decision 6: EIO with a logged reason for AFU faults, so that a link down is
// not an EAGAIN that a writer would spin on).
Transfer transfer(const LunClient& client, ContextSlot& slot, uint64_t handle, uint64_t label, bool write,
                  uint64_t vlba, uint64_t nblocks, std::byte* buf, const std::function<void(const std::string&)>& log,
                  AfuCommandCounts* counts) {
  const uint32_t bs = client.block_size();
  const unsigned shift = client.chunk_shift();
  const uint64_t max_blocks = vlun::CXLFLASH_MAX_XFER_SIZE / bs;
  thread_local afu::Command cmd;
  while (nblocks > 0) {
    uint64_t chunk_end = ((vlba >> shift) + 1) << shift;
    uint64_t n = std::min({nblocks, chunk_end - vlba, max_blocks});
    afu::rw16(*slot.queue, cmd, slot.ctxid, static_cast<uint32_t>(handle), write, vlba, static_cast<uint32_t>(n), bs,
              buf);
    if (counts) counts->count(cmd.sa.rc.afu_rc);
    if (std::error_code ec = afu::ioasa_to_error(cmd.sa)) {
      // A shared or zero chunk: the caller breaks the share and writes again from here.
      if (write && cmd.sa.rc.afu_rc == sisl::SISL_AFU_RC_LXT_RW_PERM) return {{}, WriteFault{vlba}};
      char reason[256];
      std::snprintf(reason, sizeof reason,
                    "inode %llu: %s of %llu blocks at vLBA %llu failed (%s): afu_rc 0x%02x scsi_rc 0x%02x "
                    "fc_rc 0x%02x sense key 0x%x",
                    static_cast<unsigned long long>(label), write ? "WRITE(16)" : "READ(16)",
                    static_cast<unsigned long long>(n), static_cast<unsigned long long>(vlba), ec.message().c_str(),
                    cmd.sa.rc.afu_rc, cmd.sa.rc.scsi_rc, cmd.sa.rc.fc_rc, cmd.sa.sense_data[2] & 0xF);
      if (log) log(reason);
      if (ec == std::errc::permission_denied) return {errno_error(write ? EROFS : EACCES), {}};
      return {errno_error(EIO), {}};
    }
    vlba += n;
    nblocks -= n;
    buf += n * bs;
  }
  return {};
}

}  // namespace

std::error_code Vlun::read(uint64_t vlba, uint64_t nblocks, std::byte* buf) {
  return transfer(client_, slot_, handle_, label_, false, vlba, nblocks, buf, client_.options_.log_error,
                  client_.options_.command_counts).error;
}

Result<std::optional<WriteFault>> Vlun::write(uint64_t vlba, uint64_t nblocks, const std::byte* buf) {
  // The AFU only reads a WRITE's buffer; the IOARCB's data EA is not const.
  Transfer t = transfer(client_, slot_, handle_, label_, true, vlba, nblocks, const_cast<std::byte*>(buf),
                        client_.options_.log_error, client_.options_.command_counts);
  if (t.error) return t.error;
  return t.fault;
}

std::error_code Vlun::zero(uint64_t vlba, uint64_t nblocks) {
  return client_.driver_->zero_range(*client_.lun_, slot_.cookie, handle_, vlba, nblocks);
}

std::error_code Vlun::undo_growth(uint64_t back_to) {
  dk_cxlflash_resize back{};
  back.context_id = slot_.cookie;
  back.rsrc_handle = handle_;
  back.req_size = req_size_for_chunks(back_to, client_);
  std::error_code ec = client_.driver_->vlun_resize(*client_.lun_, back);
  // A shrink whose SYNC fails has still cut the LXT and given the chunks back.
  if (ec == std::errc::resource_unavailable_try_again) ec = {};
  if (!ec) chunks_ = back_to;
  return ec;
}

Result<std::vector<uint64_t>> Vlun::resize(uint64_t want) {
  const uint64_t old = chunks_;
  vlun::Driver& drv = *client_.driver_;
  const uint64_t chunk_bytes = client_.chunk_bytes();
  if (want > old) {
    // All-or-nothing: VLUN_RESIZE grows best effort (pitfall 4); a file never does.
    if (client_.free_chunks() < want - old) return errno_error(ENOSPC);
  }
  dk_cxlflash_resize rs{};
  rs.context_id = slot_.cookie;
  rs.rsrc_handle = handle_;
  rs.req_size = req_size_for_chunks(want, client_);
  std::error_code ec = drv.vlun_resize(*client_.lun_, rs);
  if (ec == std::errc::resource_unavailable_try_again) {
    ec = drv.vlun_resize(*client_.lun_, rs);  // pitfall 5: the same size again only re-syncs
  }
  if (ec) {
    client_.log("inode " + std::to_string(label_) + ": VLUN_RESIZE to " + std::to_string(want) +
                " chunks failed: " + ec.message());
    // A grow whose SYNC failed may have taken chunks and published them: give them back. (A
    // shrink whose SYNC failed has still cut the LXT.)
    if (want > old) (void)undo_growth(old);
    if (auto table = lxt()) chunks_ = table.value().size();
    // A SYNC that still fails after the retry is an AFU fault (design decision 6).
    return ec == std::errc::resource_unavailable_try_again ? errno_error(EIO) : ec;
  }
  const uint64_t reached = vlun::last_lba_to_bytes(rs.last_lba) / chunk_bytes;
  chunks_ = reached;
  if (reached != want) {
    (void)undo_growth(old);
    return errno_error(ENOSPC);
  }
  return lxt();
}

std::error_code Vlun::extend(std::span<const uint64_t> entries) {
  std::error_code ec = client_.driver_->extend_lxt(*client_.lun_, slot_.cookie, handle_, entries);
  // EAGAIN: the entries were published but the AFU's SYNC failed; they stay (see vlun.h).
  if (!ec || ec == std::errc::resource_unavailable_try_again) chunks_ += entries.size();
  return ec;
}

std::error_code Vlun::remap(uint64_t first, std::span<const uint64_t> entries) {
  return client_.driver_->remap_lxt(*client_.lun_, slot_.cookie, handle_, first, entries);
}

Result<std::vector<uint64_t>> Vlun::lxt() const { return client_.driver_->lxt(*client_.lun_, slot_.cookie, handle_); }

Mapping Vlun::mapping() const {
  Mapping m;
  m.context_id = slot_.cookie;
  m.rsrc_handle = handle_;
  m.last_lba = vlun::virtual_last_lba(chunks_, client_.block_size(), client_.chunk_shift());
  if (auto table = lxt()) {
    for (uint64_t e : table.value()) m.chunks.push_back(sisl::lxt_aun(e));
  }
  return m;
}

}  // namespace vlunfs::client
