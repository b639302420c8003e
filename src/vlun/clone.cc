// VLUN_CLONE (spec §3.10, §6): a child's context gets the parent's virtual handles, addressing the
// same physical chunks, each chunk with one more reference (ba_clone).
#include "vlun/driver_impl.h"

#include <algorithm>

namespace vlunfs::vlun {

using namespace vlunfs::sisl;

namespace {

// clone_lxt (spec §6 step 4) of source handle i into the same handle of dst: a copy of the LXT,
// a reference on every chunk, published lxt_start then lxt_cnt, a lightweight SYNC. On failure
// the references are dropped again and the entry is checked in.
std::error_code clone_handle(Driver::Impl& impl, Lun& lun, Context& src, Context& dst, unsigned i) {
  const sisl_rht_entry& s = src.rht[i];
  sisl_rht_entry& d = dst.rht[i];
  RhteInfo& to = dst.info[i];
  to.lun = &lun;
  dst.rht_out++;
  if (auto grown = to.lxt.grow(d, src.info[i].lxt.size(), [&](uint64_t k) { return src.info[i].lxt.entries()[k]; });
      !grown) {
    Driver::Impl::rhte_checkin(dst, i);
    return grown.error();
  }
  bool referenced;
  {
    std::lock_guard lock(lun.blka_mu);
    const std::span<const uint64_t> entries = to.lxt.entries();
    uint64_t cloned = 0;
    for (; cloned < entries.size(); ++cloned) {
      if (lun.is_zero(lxt_aun(entries[cloned]))) continue;
      if (!lun.blka->clone(lxt_aun(entries[cloned]))) break;
    }
    referenced = cloned == entries.size();
    if (!referenced) Driver::Impl::drop_references(lun, entries.first(cloned));
  }
  if (!referenced) {
    Driver::Impl::rhte_checkin(dst, i);
    return errno_error(EIO);  // a chunk already has 256 owners
  }
  store_release<uint8_t>(d.fp, SISL_RHT_FP_CLONE(s.fp, dst.perms));
  store_release<uint8_t>(d.nmask, s.nmask);
  if (impl.afu_sync(dst.ctxid, i, SISL_AFU_LW_SYNC)) {
    {
      std::lock_guard lock(lun.blka_mu);
      Driver::Impl::drop_references(lun, to.lxt.entries());
    }
    Driver::Impl::rhte_checkin(dst, i);
    return errno_error(EAGAIN);
  }
  return {};
}

}  // namespace

// ---- VLUN_CLONE (spec §3.10, §6) ----
std::error_code Driver::vlun_clone(Lun& lun, dk_cxlflash_clone& args, const Caller& who) {
  if (!hdr_ok(args.hdr) || !lun.superpipe) return einval();
  if (args.context_id_src == args.context_id_dst) return einval();
  {
    std::lock_guard lock(lun.mu);
    if (lun.mode != LunInfo::Mode::virtual_) return einval();
  }
  // Two context locks: take them in ctxid order so two clones cannot deadlock.
  bool src_first = (args.context_id_src & 0xFFFFFFFF) < (args.context_id_dst & 0xFFFFFFFF);
  Impl::Locked src, dst;
  if (src_first) {
    src = impl_->get_context(args.context_id_src, who, &lun, true);
    if (src) dst = impl_->get_context(args.context_id_dst, who, &lun);
  } else {
    dst = impl_->get_context(args.context_id_dst, who, &lun);
    if (dst) src = impl_->get_context(args.context_id_src, who, &lun, true);
  }
  if (!src || !dst) return einval();
  if (dst->rht_out != 0) return einval();
  const unsigned max_rht = options_.max_rht_per_context;
  // Pitfall 17 fixed: only single-LUN, all-virtual sources are cloned.
  for (unsigned i = 0; i < max_rht; ++i) {
    if (src->rht[i].nmask == 0) continue;
    if (src->info[i].lun != &lun || rht_format(src->rht[i].fp) != SISL_RHT_FMT_VIRTUAL) return einval();
  }
  std::vector<Lun*> pending;
  for (Lun* l : src->luns) {
    if (std::find(dst->luns.begin(), dst->luns.end(), l) == dst->luns.end()) pending.push_back(l);
  }
  for (unsigned i = 0; i < max_rht && dst->rht_out < src->rht_out; ++i) {
    if (src->rht[i].nmask == 0) continue;
    // The same handle number in the destination (spec §6 step 3).
    if (std::error_code ec = clone_handle(*impl_, lun, *src.ctx, *dst.ctx, i)) {
      // Spec §6 step 5: the handles cloned so far are released through the normal path.
      for (unsigned j = 0; j < i; ++j) {
        if (dst->rht[j].nmask != 0) (void)impl_->release_handle(*dst.ctx, j);
      }
      return ec;
    }
    std::lock_guard lock(lun.mu);
    (void)impl_->lun_attach(lun, LunInfo::Mode::virtual_);
  }
  for (Lun* l : pending) {
    dst->luns.push_back(l);
    dst->refs++;  // pitfall 17 fixed: an added attachment holds its reference
  }
  return {};
}

}  // namespace vlunfs::vlun
