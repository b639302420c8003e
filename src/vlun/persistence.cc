// Extensions for a persistent filesystem (not ioctls): the kernel keeps vLUN maps only in memory,
// vlunfs keeps each file's LXT in its metadata and opens the vLUN over it again at mount.
#include "vlun/driver_impl.h"

#include <algorithm>

namespace vlunfs::vlun {

using namespace vlunfs::sisl;

std::error_code Driver::pin_virtual(Lun& lun, const Caller& /*who*/) {
  {
    std::lock_guard lock(lun.mu);
    if (!lun.superpipe || lun.mode == LunInfo::Mode::physical) return einval();
    if (lun.max_lba == 0 && impl_->read_capacity(lun)) return errno_error(ENODEV);
  }
  return impl_->attach_virtual(lun);
}

void Driver::unpin_virtual(Lun& lun) { impl_->lun_detach(lun); }

std::error_code Driver::adopt_chunks(Lun& lun, std::span<const uint64_t> lxt) {
  std::lock_guard lock(lun.blka_mu);
  if (!lun.blka) return einval();
  for (size_t i = 0; i < lxt.size(); ++i) {
    if (lun.is_zero(lxt_aun(lxt[i]))) continue;
    if (!lun.blka->reserve(lxt_aun(lxt[i]))) {
      Impl::drop_references(lun, lxt.first(i));
      return einval();
    }
  }
  return {};
}

std::error_code Driver::open_vlun(Lun& lun, uint64_t context_id, std::span<const uint64_t> lxt,
                                  uint64_t* rsrc_handle, const Caller& who) {
  {
    std::lock_guard lock(lun.mu);
    if (lun.mode != LunInfo::Mode::virtual_) return einval();
    std::lock_guard blka_lock(lun.blka_mu);
    for (uint64_t e : lxt) {
      if (lun.blka->is_free(lxt_aun(e)) || lxt_aun(e) >= lun.blka->total()) return einval();
    }
    if (lxt.size() > UINT32_MAX) return errno_error(EFBIG);
    (void)impl_->lun_attach(lun, LunInfo::Mode::virtual_);
  }
  auto opened = impl_->checkout_rhte(context_id, lun, who);
  if (!opened) return opened.error();
  Impl::HeldRhte& h = opened.value();
  store_release<uint8_t>(h.rhte->fp, SISL_RHT_FP(SISL_RHT_FMT_VIRTUAL, h.ctx->perms));
  if (auto grown = h.info->lxt.grow(*h.rhte, lxt.size(), [&](uint64_t i) { return lxt[i]; }); !grown) {
    Impl::rhte_checkin(*h.ctx.ctx, h.handle);
    impl_->lun_detach(lun);
    return grown.error();
  }
  store_release<uint8_t>(h.rhte->nmask, static_cast<uint8_t>(options_.chunk_shift));
  if (impl_->afu_sync(h.ctx->ctxid, h.handle, SISL_AFU_LW_SYNC)) {
    (void)h.info->lxt.shrink(*h.rhte, 0, [&](std::span<const uint64_t>) {
      (void)impl_->afu_sync(h.ctx->ctxid, h.handle, SISL_AFU_HW_SYNC);
    });
    Impl::rhte_checkin(*h.ctx.ctx, h.handle);
    impl_->lun_detach(lun);
    return errno_error(EAGAIN);
  }
  *rsrc_handle = h.handle;
  return {};
}

std::error_code Driver::set_write_same(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, bool on,
                                      const Caller& who) {
  auto held = impl_->checked_rhte(context_id, rsrc_handle, lun, who, Impl::Format::any);
  if (!held) return held.error();
  held.value().info->write_same = on;
  return {};
}

std::error_code Driver::close_vlun(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, const Caller& who) {
  auto held = impl_->checked_rhte(context_id, rsrc_handle, lun, who, Impl::Format::virtual_only);
  if (!held) return held.error();
  Impl::HeldRhte& h = held.value();
  // Unpublished as a shrink to 0 (spec §4.4), but the chunks stay owned: the file lives on.
  std::error_code sync;
  (void)h.info->lxt.shrink(*h.rhte, 0, [&](std::span<const uint64_t>) {
    sync = impl_->afu_sync_or_eagain(h.ctx->ctxid, rsrc_handle, SISL_AFU_HW_SYNC);
  });
  Impl::rhte_checkin(*h.ctx.ctx, rsrc_handle);
  impl_->lun_detach(lun);
  return sync;
}

Result<std::vector<uint64_t>> Driver::lxt(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, const Caller& who) {
  auto held = impl_->checked_rhte(context_id, rsrc_handle, lun, who, Impl::Format::virtual_only);
  if (!held) return held.error();
  const std::span<const uint64_t> entries = held.value().info->lxt.entries();
  return std::vector<uint64_t>(entries.begin(), entries.end());
}

std::error_code Driver::zero_range(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, uint64_t vlba,
                                   uint64_t nblocks, const Caller& who) {
  auto held = impl_->checked_rhte(context_id, rsrc_handle, lun, who, Impl::Format::virtual_only);
  if (!held) return held.error();
  const std::span<const uint64_t> lxt = held.value().info->lxt.entries();
  const unsigned shift = options_.chunk_shift;
  const uint64_t mask = (uint64_t{1} << shift) - 1;
  uint64_t v = vlba, end = vlba + nblocks;
  if (end < vlba || (nblocks > 0 && ((end - 1) >> shift) >= lxt.size())) return einval();
  while (v < end) {
    uint64_t c = v >> shift;
    uint64_t n = std::min(end, (c + 1) << shift) - v;
    if (auto ec = impl_->write_same(lun, (lxt_aun(lxt[c]) << shift) | (v & mask), n)) return ec;
    v += n;
  }
  return {};
}

std::error_code Driver::zero_free_chunks(Lun& lun) {
  std::vector<std::pair<uint64_t, uint64_t>> runs;  // [first, end) of free chunks
  {
    std::lock_guard lock(lun.blka_mu);
    if (!lun.blka) return einval();
    for (uint64_t aun = 0; aun < lun.blka->total(); ++aun) {
      if (!lun.blka->is_free(aun)) continue;
      if (!runs.empty() && runs.back().second == aun) {
        runs.back().second++;
      } else {
        runs.push_back({aun, aun + 1});
      }
    }
  }
  // Only this process allocates, and it does not while mounting: the runs stay free meanwhile.
  for (auto [first, end] : runs) {
    if (auto ec = impl_->write_same(lun, first << options_.chunk_shift, (end - first) << options_.chunk_shift)) return ec;
  }
  return {};
}

}  // namespace vlunfs::vlun
