// Virtual LUNs (the kernel's vlun.c): USER_VIRTUAL (spec §3.3), VLUN_RESIZE (spec §3.4) through
// _cxlflash_vlun_resize's two halves, grow_lxt and shrink_lxt (spec §5.4), and the chunks a
// shrink gives back.
#include "vlun/driver_impl.h"

#include <algorithm>
#include <bit>

namespace vlunfs::vlun {

using namespace vlunfs::sisl;

// _cxlflash_vlun_resize (spec §5.4): the size in chunks actually reached.
Result<uint64_t> Driver::Impl::resize_lxt(Context& ctx, uint64_t handle, uint64_t new_chunks) {
  if (new_chunks > ctx.info[handle].lxt.size()) return grow_lxt(ctx, handle, new_chunks);
  // A resize to the same size is a heavyweight SYNC only: shrink_lxt removing nothing.
  if (auto ec = shrink_lxt(ctx, handle, new_chunks)) return ec;
  return new_chunks;
}

// grow_lxt (spec §5.4): best effort, a grow that does not fully fit still succeeds (pitfall 4).
Result<uint64_t> Driver::Impl::grow_lxt(Context& ctx, uint64_t handle, uint64_t new_chunks) {
  RhteInfo& info = ctx.info[handle];
  Lun& lun = *info.lun;
  const uint64_t old = info.lxt.size();
  uint64_t reached;
  LxtArray::Growth growth;
  {
    std::lock_guard lock(lun.blka_mu);
    const uint64_t avail = lun.blka->space();
    if (avail == 0) return errno_error(ENOSPC);
    reached = old + std::min(new_chunks - old, avail);
    auto grown = info.lxt.grow(ctx.rht[handle], reached, [&](uint64_t) {
      const uint64_t aun = *lun.blka->alloc();  // cannot fail: no more new entries than free chunks
      return make_lxt_entry(aun, static_cast<unsigned>(lun.lun_index), LXT_PERM_READ | LXT_PERM_WRITE, lun.port_sel);
    });
    if (!grown) return grown.error();
    growth = grown.value();
  }
  std::error_code sync = afu_sync(ctx.ctxid, handle, SISL_AFU_LW_SYNC);
  if (!sync) {
    info.lxt.release_replaced();
  } else if (growth == LxtArray::Growth::replaced && !afu_sync(ctx.ctxid, handle, SISL_AFU_HW_SYNC)) {
    // The AFU may still hold the old table after a failed lightweight SYNC; a heavyweight one
    // that completes lets it go. When both fail the old array lives on rather than risk it.
    info.lxt.release_replaced();
  }
  if (sync) return errno_error(EAGAIN);  // spec §5.4: the change is kept
  return reached;
}

// shrink_lxt (spec §5.4): published lxt_cnt first, then a heavyweight SYNC before any chunk or
// the old array is given back; a failed SYNC is EAGAIN, and the shrink still completes.
std::error_code Driver::Impl::shrink_lxt(Context& ctx, uint64_t handle, uint64_t new_chunks) {
  RhteInfo& info = ctx.info[handle];
  std::error_code sync;
  auto shrunk = info.lxt.shrink(ctx.rht[handle], new_chunks, [&](std::span<const uint64_t> removed) {
    sync = afu_sync(ctx.ctxid, handle, SISL_AFU_HW_SYNC);
    free_chunks(*info.lun, removed, info.write_same);
  });
  if (shrunk) return shrunk;
  return sync ? errno_error(EAGAIN) : std::error_code{};
}

// Gives one chunk reference back; with write_same, a chunk whose last owner this was is zeroed
// first, at its own LBAs (pitfall 9 fixed), while it is still allocated so nobody can take it.
void Driver::Impl::free_chunk(Lun& lun, uint64_t aun, bool zero) {
  {
    std::lock_guard lock(lun.blka_mu);
    if (lun.is_zero(aun)) return;
  }
  if (zero) {
    bool last_owner;
    {
      std::lock_guard lock(lun.blka_mu);
      last_owner = lun.blka->references(aun) == 1;
    }
    // Errors are ignored as the driver ignores them: the chunk is given back regardless.
    if (last_owner) (void)write_same(lun, aun << options.chunk_shift, uint64_t{1} << options.chunk_shift);
  }
  std::lock_guard lock(lun.blka_mu);
  lun.blka->free(aun);
}

// Gives back the chunks of `entries`, from the top down, as free_chunk() one by one would, except
// that a run of consecutive chunks whose last owner this was is zeroed with one WRITE SAME rather
// than one per chunk (a deliberate deviation from the driver, which zeroes chunk by chunk; the
// result on the flash and in the allocator is the same, and a 4096-chunk shrink costs a few
// commands rather than thousands).
void Driver::Impl::free_chunks(Lun& lun, std::span<const uint64_t> entries, bool zero) {
  uint64_t i = entries.size();
  while (i > 0) {
    // The run is entries[j, i): AUNs that go up by one with the index, each owned by this vLUN only.
    uint64_t j = i - 1;
    bool alone;
    {
      std::lock_guard lock(lun.blka_mu);
      const uint64_t top = lxt_aun(entries[j]);
      if (lun.is_zero(top)) {
        i = j;
        continue;
      }
      alone = zero && lun.blka->references(top) == 1;
      while (alone && j > 0) {
        const uint64_t below = lxt_aun(entries[j - 1]);
        if (below + 1 != lxt_aun(entries[j]) || lun.is_zero(below) || lun.blka->references(below) != 1) break;
        j--;
      }
    }
    // Errors are ignored as the driver ignores them: the chunks are given back regardless.
    if (alone) (void)write_same(lun, lxt_aun(entries[j]) << options.chunk_shift, (i - j) << options.chunk_shift);
    std::lock_guard lock(lun.blka_mu);
    for (uint64_t k = i; k-- > j;) lun.blka->free(lxt_aun(entries[k]));
    i = j;
  }
}

void Driver::Impl::drop_references(Lun& lun, std::span<const uint64_t> entries) {
  for (uint64_t e : entries) {
    if (!lun.is_zero(lxt_aun(e))) lun.blka->free(lxt_aun(e));
  }
}

// ---- USER_VIRTUAL (spec §3.3) ----
std::error_code Driver::user_virtual(Lun& lun, dk_cxlflash_uvirtual& args, const Caller& who) {
  dk_cxlflash_uvirtual a = args;
  if (!hdr_ok(a.hdr) || !lun.superpipe) return einval();
  if (auto ec = impl_->attach_virtual(lun)) return ec;
  auto opened = impl_->checkout_rhte(a.context_id, lun, who);
  if (!opened) return opened.error();
  Impl::HeldRhte& h = opened.value();
  // Format-0 open (spec §4.4): fp, then nmask; the size is then set through the resize path.
  store_release<uint8_t>(h.rhte->fp, SISL_RHT_FP(SISL_RHT_FMT_VIRTUAL, h.ctx->perms));
  store_release<uint8_t>(h.rhte->nmask, static_cast<uint8_t>(options_.chunk_shift));
  auto reached = impl_->resize_lxt(*h.ctx.ctx, h.handle, chunks_for_req_size(a.lun_size, lun.blk_len, options_.chunk_shift));
  if (!reached) {
    // Pitfall 14 fixed: give back what the failed open allocated and leave a clean entry.
    if (h.info->lxt.size() > 0) (void)impl_->shrink_lxt(*h.ctx.ctx, h.handle, 0);
    Impl::rhte_checkin(*h.ctx.ctx, h.handle);
    impl_->lun_detach(lun);
    return reached.error();
  }
  h.info->write_same = a.hdr.flags & DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME;
  a.rsrc_handle = h.handle;
  a.last_lba = virtual_last_lba(reached.value(), lun.blk_len, options_.chunk_shift);
  a.hdr.return_flags = std::popcount(lun.port_sel) > 1 ? DK_CXLFLASH_ALL_PORTS_ACTIVE : 0;
  args = a;
  return {};
}

// ---- VLUN_RESIZE (spec §3.4) ----
std::error_code Driver::vlun_resize(Lun& lun, dk_cxlflash_resize& args, const Caller& who) {
  dk_cxlflash_resize a = args;
  if (!hdr_ok(a.hdr) || !lun.superpipe) return einval();
  {
    std::lock_guard lock(lun.mu);
    if (lun.mode != LunInfo::Mode::virtual_) return einval();
  }
  uint64_t new_chunks = chunks_for_req_size(a.req_size, lun.blk_len, options_.chunk_shift);
  auto held = impl_->checked_rhte(a.context_id, a.rsrc_handle, lun, who, Impl::Format::virtual_only);
  if (!held) return held.error();
  auto reached = impl_->resize_lxt(*held.value().ctx.ctx, a.rsrc_handle, new_chunks);
  if (!reached) return reached.error();
  a.last_lba = virtual_last_lba(reached.value(), lun.blk_len, options_.chunk_shift);
  a.hdr.return_flags = 0;
  args = a;
  return {};
}

}  // namespace vlunfs::vlun
