// Contexts and their RHT entries (the kernel's superpipe.c): ATTACH, DETACH, RECOVER_AFU, RELEASE,
// context cookies and look-up, RHT checkout and checkin (spec §3.0, §3.1, §3.5, §3.6, §3.8).
#include "vlun/driver_impl.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

namespace vlunfs::vlun {

using namespace vlunfs::sisl;

// get_context (spec §3.0): the full cookie matches, the caller owns it (for a clone source: the
// caller's parent does), and the LUN, when given, is attached.
Driver::Impl::Locked Driver::Impl::get_context(uint64_t cookie, const Caller& who, const Lun* lun, bool clone_source) {
  uint64_t ctxid = cookie & 0xFFFFFFFF;
  if (ctxid >= afu::MAX_CONTEXT) return {};
  std::shared_ptr<Context> ctx;
  {
    std::lock_guard lock(table_mu);
    ctx = table[ctxid];
  }
  if (!ctx || ctx->cookie != cookie) return {};
  std::unique_lock lock(ctx->mu);
  if (ctx->dead) return {};
  if (ctx->owner != (clone_source ? who.parent : who.tgid)) return {};
  if (lun && std::find(ctx->luns.begin(), ctx->luns.end(), lun) == ctx->luns.end()) return {};
  return {std::move(ctx), std::move(lock)};
}

// get_rhte: the handle exists, was opened through this LUN and is in use.
sisl_rht_entry* Driver::Impl::get_rhte(Context& ctx, uint64_t handle, const Lun& lun, unsigned max_rht) {
  if (!ctx.rht || handle >= max_rht) return nullptr;
  if (ctx.info[handle].lun != &lun) return nullptr;
  sisl_rht_entry* e = &ctx.rht[handle];
  return e->nmask != 0 ? e : nullptr;  // byte 15 != 0 means in use (pitfall 16)
}

Result<Driver::Impl::HeldRhte> Driver::Impl::checked_rhte(uint64_t context_id, uint64_t rsrc_handle, const Lun& lun,
                                                          const Caller& who, Format format) {
  Locked ctx = get_context(context_id, who, &lun);
  if (!ctx) return einval();
  sisl_rht_entry* e = get_rhte(*ctx.ctx, rsrc_handle, lun, options.max_rht_per_context);
  if (!e) return einval();
  if (format == Format::virtual_only && rht_format(e->fp) != SISL_RHT_FMT_VIRTUAL) return einval();
  RhteInfo* info = &ctx->info[rsrc_handle];
  return HeldRhte{std::move(ctx), rsrc_handle, e, info};
}

Result<Driver::Impl::HeldRhte> Driver::Impl::checkout_rhte(uint64_t context_id, Lun& lun, const Caller& who) {
  Locked ctx = get_context(context_id, who, &lun);
  if (!ctx) {
    lun_detach(lun);
    return einval();
  }
  uint64_t handle = 0;
  sisl_rht_entry* e = rhte_checkout(*ctx.ctx, lun, options.max_rht_per_context, &handle);
  if (!e) {
    lun_detach(lun);
    return errno_error(EMFILE);
  }
  RhteInfo* info = &ctx->info[handle];
  return HeldRhte{std::move(ctx), handle, e, info};
}

sisl_rht_entry* Driver::Impl::rhte_checkout(Context& ctx, Lun& lun, unsigned max_rht, uint64_t* handle) {
  for (unsigned i = 0; i < max_rht; ++i) {
    if (ctx.rht[i].nmask == 0 && ctx.info[i].lun == nullptr) {
      ctx.info[i].lun = &lun;
      ctx.rht_out++;
      *handle = i;
      return &ctx.rht[i];
    }
  }
  return nullptr;
}

void Driver::Impl::rhte_checkin(Context& ctx, uint64_t handle) {
  sisl_rht_entry& e = ctx.rht[handle];
  store_release<uint8_t>(e.nmask, 0);
  store_release<uint8_t>(e.fp, 0);
  store_release<uint32_t>(e.lxt_cnt, 0);
  store_release<uint64_t>(e.lxt_start, 0);
  ctx.info[handle] = RhteInfo{};
  ctx.rht_out--;
}

// Release of one handle (spec §3.5); the caller holds the context lock.
std::error_code Driver::Impl::release_handle(Context& ctx, uint64_t handle) {
  Lun& lun = *ctx.info[handle].lun;
  if (rht_format(ctx.rht[handle].fp) == SISL_RHT_FMT_VIRTUAL) {
    if (auto ec = shrink_lxt(ctx, handle, 0)) return ec;  // the handle stays open (pitfall 15)
  } else {
    close_direct(ctx, handle);
  }
  rhte_checkin(ctx, handle);
  lun_detach(lun);
  return {};
}

// Drops one LUN attachment of a context; the context dies with its last one (spec §3.6).
void Driver::Impl::detach_lun(Context& ctx, Lun& lun) {
  for (uint64_t h = 0; h < options.max_rht_per_context; ++h) {
    if (ctx.info[h].lun != &lun || ctx.rht[h].nmask == 0) continue;
    // Release errors are ignored (spec §3.6), but the handle goes regardless: a vLUN whose
    // final SYNC failed is already at size 0 (pitfall 15), and left open it would hold the
    // LUN's mode and allocator forever.
    if (release_handle(ctx, h)) {
      rhte_checkin(ctx, h);
      lun_detach(lun);
    }
  }
  std::erase(ctx.luns, &lun);
  if (--ctx.refs > 0) return;
  ctx.dead = true;
  {
    std::lock_guard lock(table_mu);
    table[ctx.ctxid].reset();
  }
  afu::MmioWindow& ctrl = afu.ctrl_mmio(ctx.ctxid);
  ctrl.write64(SISL_CTRL_RHT_START, 0);
  ctrl.write64(SISL_CTRL_RHT_CNT_ID, 0);
  ctrl.write64(SISL_CTRL_CTX_CAP, 0);
  afu.stop_context(ctx.ctxid);
  ctx.rht.reset();
}

// ---- ATTACH (spec §3.1) ----
std::error_code Driver::attach(Lun& lun, dk_cxlflash_attach& args, const Caller& who) {
  dk_cxlflash_attach a = args;
  if (!hdr_ok(a.hdr)) return einval();
  if (!lun.superpipe) return einval();
  if (a.num_interrupts > MAX_CONNUM_INTERRUPTS) return einval();
  {
    std::lock_guard lock(lun.mu);
    if (lun.max_lba == 0 && impl_->read_capacity(lun)) return errno_error(ENODEV);
  }
  const bool reuse = a.hdr.flags & DK_CXLFLASH_ATTACH_REUSE_CONTEXT;
  if (reuse) {
    auto ctx = impl_->get_context(a.context_id, who, nullptr);
    if (!ctx) return einval();
    if (std::find(ctx->luns.begin(), ctx->luns.end(), &lun) != ctx->luns.end()) return einval();
    ctx->luns.push_back(&lun);
    ctx->refs++;
    a.adap_fd = ~uint64_t{0};  // -1 on reuse (pitfall 22)
    a.hdr.return_flags = 0;
  } else {
    auto started = impl_->afu.start_context();
    if (!started) return errno_error(ENODEV);
    const int ctxid_value = started.value();
    const int* ctxid = &ctxid_value;
    if (*ctxid < 0 || *ctxid >= afu::MAX_CONTEXT) return errno_error(EPERM);
    auto ctx = std::make_shared<Context>();
    ctx->ctxid = *ctxid;
    ctx->owner = who.tgid;
    ctx->perms = static_cast<uint8_t>((a.hdr.flags + 1) & 3);  // pitfall 7
    ctx->rht.reset(new (std::nothrow) sisl_rht_entry[options_.max_rht_per_context]());
    if (!ctx->rht) {
      impl_->afu.stop_context(*ctxid);
      return errno_error(ENOMEM);
    }
    ctx->info.resize(options_.max_rht_per_context);
    ctx->adap_fd = eventfd(0, EFD_CLOEXEC);
    if (ctx->adap_fd < 0) {
      impl_->afu.stop_context(*ctxid);
      return errno_error(ENODEV);
    }
    // Program the control MMIO: unlock ctx_cap by reading mbox_r, set the user capabilities and
    // read them back, then the RHT (spec §3.1).
    afu::MmioWindow& ctrl = impl_->afu.ctrl_mmio(*ctxid);
    (void)ctrl.read64(SISL_CTRL_MBOX_R);
    const uint64_t cap = SISL_CTX_CAP_READ_CMD | SISL_CTX_CAP_WRITE_CMD;
    ctrl.write64(SISL_CTRL_CTX_CAP, cap);
    if (ctrl.read64(SISL_CTRL_CTX_CAP) != cap) {
      close(ctx->adap_fd);
      impl_->afu.stop_context(*ctxid);
      return errno_error(EAGAIN);
    }
    ctrl.write64(SISL_CTRL_RHT_START, reinterpret_cast<uint64_t>(ctx->rht.get()));
    ctrl.write64(SISL_CTRL_RHT_CNT_ID, (uint64_t{options_.max_rht_per_context} << 48) |
                                           (static_cast<uint64_t>(impl_->afu.master_ctxid()) << 32));
    ctx->luns.push_back(&lun);
    ctx->refs = 1;
    {
      std::lock_guard lock(impl_->table_mu);
      uint32_t tag = impl_->next_tag++;
      if (impl_->next_tag == 0) impl_->next_tag = 1;
      ctx->cookie = (uint64_t{tag} << 32) | static_cast<uint64_t>(*ctxid);
      impl_->table[*ctxid] = ctx;
    }
    a.context_id = ctx->cookie;
    a.adap_fd = static_cast<uint64_t>(ctx->adap_fd);
    a.hdr.return_flags = DK_CXLFLASH_APP_CLOSE_ADAP_FD;
  }
  a.mmio_size = SISL_HOST_MMIO_SIZE;
  a.block_size = lun.blk_len;
  a.last_lba = lun.max_lba;
  a.max_xfer = CXLFLASH_MAX_SECTORS * 512 / lun.blk_len;
  args = a;
  return {};
}

// ---- RELEASE (spec §3.5) ----
std::error_code Driver::release(Lun& lun, dk_cxlflash_release& args, const Caller& who) {
  if (!hdr_ok(args.hdr) || !lun.superpipe) return einval();
  auto held = impl_->checked_rhte(args.context_id, args.rsrc_handle, lun, who, Impl::Format::any);
  if (!held) return held.error();
  return impl_->release_handle(*held.value().ctx.ctx, args.rsrc_handle);
}

// ---- DETACH (spec §3.6) ----
std::error_code Driver::detach(Lun& lun, dk_cxlflash_detach& args, const Caller& who) {
  if (!hdr_ok(args.hdr) || !lun.superpipe) return einval();
  auto ctx = impl_->get_context(args.context_id, who, &lun);
  if (!ctx) return einval();
  impl_->detach_lun(*ctx.ctx, lun);
  return {};
}

// ---- RECOVER_AFU (spec §3.8): the simulator has no adapter resets, so a valid context never
// awaits recovery and the answer is always "nothing to do".
std::error_code Driver::recover_afu(Lun& lun, dk_cxlflash_recover_afu& args, const Caller& who) {
  dk_cxlflash_recover_afu a = args;
  if (!hdr_ok(a.hdr) || !lun.superpipe) return einval();
  auto ctx = impl_->get_context(a.context_id, who, nullptr);
  if (!ctx) return einval();
  a.mmio_size = SISL_HOST_MMIO_SIZE;
  a.hdr.return_flags = 0;
  args = a;
  return {};
}

afu::MmioWindow* Driver::mmio(uint64_t context_id, const Caller& who) {
  auto ctx = impl_->get_context(context_id, who, nullptr);
  return ctx ? &impl_->afu.user_mmio(ctx->ctxid) : nullptr;
}

void Driver::process_exited(pid_t pid) {
  std::vector<std::shared_ptr<Context>> owned;
  {
    std::lock_guard lock(impl_->table_mu);
    for (auto& c : impl_->table) {
      if (c && c->owner == pid) owned.push_back(c);
    }
  }
  for (auto& ctx : owned) {
    std::lock_guard lock(ctx->mu);
    while (!ctx->dead && !ctx->luns.empty()) impl_->detach_lun(*ctx, *ctx->luns.front());
  }
}

}  // namespace vlunfs::vlun
