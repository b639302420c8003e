// Extensions for copy-on-write sharing and thin vLUNs (not ioctls): the zero chunk, chunks taken,
// shared, dropped and copied one at a time, and LXT entries replaced or appended without a
// resize. See vlun.h for why the LXT permission bits make this work (pitfall 18).
#include "vlun/driver_impl.h"

namespace vlunfs::vlun {

using namespace vlunfs::sisl;

std::error_code Driver::set_zero_chunk(Lun& lun, uint64_t aun) {
  std::lock_guard lock(lun.blka_mu);
  if (!lun.blka || aun >= lun.blka->total()) return einval();
  if (lun.is_zero(aun)) return {};
  if (lun.zero_aun) return errno_error(EBUSY);
  if (!lun.blka->is_free(aun)) return errno_error(EBUSY);
  lun.blka->reserve(aun);
  lun.zero_aun = aun;
  return {};
}

Result<uint64_t> Driver::alloc_chunk(Lun& lun) {
  std::lock_guard lock(lun.blka_mu);
  if (!lun.blka) return einval();
  auto aun = lun.blka->alloc();
  if (!aun) return errno_error(ENOSPC);
  return *aun;
}

bool Driver::share_chunk(Lun& lun, uint64_t aun) {
  std::lock_guard lock(lun.blka_mu);
  if (!lun.blka) return false;
  if (lun.is_zero(aun)) return true;
  return lun.blka->clone(aun);
}

void Driver::drop_chunk(Lun& lun, uint64_t aun, bool zero_if_last) { impl_->free_chunk(lun, aun, zero_if_last); }

std::error_code Driver::copy_chunk(Lun& lun, uint64_t from_aun, uint64_t to_aun) {
  const unsigned shift = options_.chunk_shift;
  return impl_->copy_blocks(lun, from_aun << shift, to_aun << shift, uint64_t{1} << shift);
}

std::error_code Driver::remap_lxt(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, uint64_t first,
                                  std::span<const uint64_t> entries, const Caller& who) {
  auto held = impl_->checked_rhte(context_id, rsrc_handle, lun, who, Impl::Format::virtual_only);
  if (!held) return held.error();
  Impl::HeldRhte& h = held.value();
  if (auto ec = h.info->lxt.overwrite(first, entries)) return ec;
  // Heavyweight: a write that started under a W bit now taken away has finished when this returns.
  return impl_->afu_sync_or_eagain(h.ctx->ctxid, rsrc_handle, SISL_AFU_HW_SYNC);
}

std::error_code Driver::extend_lxt(Lun& lun, uint64_t context_id, uint64_t rsrc_handle,
                                   std::span<const uint64_t> entries, const Caller& who) {
  auto held = impl_->checked_rhte(context_id, rsrc_handle, lun, who, Impl::Format::virtual_only);
  if (!held) return held.error();
  Impl::HeldRhte& h = held.value();
  const uint64_t old = h.info->lxt.size();
  if (entries.size() > UINT32_MAX - old) return errno_error(EFBIG);
  auto grown = h.info->lxt.grow(*h.rhte, old + entries.size(), [&](uint64_t i) { return entries[i - old]; });
  if (!grown) return grown.error();
  // A replaced array may still be walked until a heavyweight SYNC; it is freed once one completes.
  const bool replaced = grown.value() == LxtArray::Growth::replaced;
  if (auto ec = impl_->afu_sync_or_eagain(h.ctx->ctxid, rsrc_handle, replaced ? SISL_AFU_HW_SYNC : SISL_AFU_LW_SYNC)) {
    return ec;
  }
  h.info->lxt.release_replaced();
  return {};
}

}  // namespace vlunfs::vlun
