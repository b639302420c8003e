// Direct LUNs: USER_DIRECT (spec §3.2) opens the whole physical LUN as a format-1 RHT entry, and
// RELEASE closes one (spec §4.4 programming sequences).
#include "vlun/driver_impl.h"

#include <bit>

namespace vlunfs::vlun {

using namespace vlunfs::sisl;

// ---- USER_DIRECT (spec §3.2) ----
std::error_code Driver::user_direct(Lun& lun, dk_cxlflash_udirect& args, const Caller& who) {
  dk_cxlflash_udirect a = args;
  if (!hdr_ok(a.hdr) || !lun.superpipe) return einval();
  {
    std::lock_guard lock(lun.mu);
    if (auto ec = impl_->lun_attach(lun, LunInfo::Mode::physical)) return ec;
  }
  auto opened = impl_->checkout_rhte(a.context_id, lun, who);
  if (!opened) return opened.error();
  Impl::HeldRhte& h = opened.value();
  // Format-1 open sequence (spec §4.4): zero, fp without perms, LUN id, then the second dword.
  auto& f1 = reinterpret_cast<sisl_rht_entry_f1&>(*h.rhte);
  store_release<uint8_t>(f1.fp, SISL_RHT_FP(SISL_RHT_FMT_DIRECT, 0));
  store_release<uint64_t>(f1.lun_id, lun.lun_id);
  store_release<uint8_t>(f1.valid, SISL_RHT_VALID);
  store_release<uint8_t>(f1.fp, SISL_RHT_FP(SISL_RHT_FMT_DIRECT, h.ctx->perms));
  // The port of the channel this sdev was seen on (pitfall 19): the lowest of the LUN's ports.
  store_release<uint8_t>(f1.port_sel, static_cast<uint8_t>(1u << std::countr_zero(lun.port_sel | 0x10)));
  // Spec §3.2: on a SYNC failure the handle is undone and the SYNC's own error returned.
  if (std::error_code sync = impl_->afu_sync(h.ctx->ctxid, h.handle, SISL_AFU_LW_SYNC)) {
    (void)impl_->release_handle(*h.ctx.ctx, h.handle);
    return sync;
  }
  a.rsrc_handle = h.handle;
  a.last_lba = lun.max_lba;
  a.hdr.return_flags = 0;
  args = a;
  return {};
}

// Format-1 close (spec §4.4): valid, LUN id, then the second dword to 0, then a heavyweight SYNC
// whose failure RELEASE ignores, as the driver does.
void Driver::Impl::close_direct(Context& ctx, uint64_t handle) {
  auto& f1 = reinterpret_cast<sisl_rht_entry_f1&>(ctx.rht[handle]);
  store_release<uint8_t>(f1.valid, 0);
  store_release<uint64_t>(f1.lun_id, 0);
  store_release<uint8_t>(f1.fp, 0);
  store_release<uint8_t>(f1.port_sel, 0);
  (void)afu_sync(ctx.ctxid, handle, SISL_AFU_HW_SYNC);
}

}  // namespace vlunfs::vlun
