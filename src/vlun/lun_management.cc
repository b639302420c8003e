// LUNs (the kernel's lunmgt.c, and the LUN parts of vlun.c and superpipe.c): LUNs as SCSI
// discovery finds them, MANAGE_LUN (spec §3.9), VERIFY (spec §3.7), LUN mode accounting
// (spec §3.0), the allocator's creation (spec §5.1) and the AFU LUN table (spec §4.9).
#include "vlun/driver_impl.h"

#include <bit>
#include <cstring>

namespace vlunfs::vlun {

using namespace vlunfs::sisl;

Lun& Driver::add_lun(uint64_t lun_id, const std::array<uint8_t, 16>& wwid, unsigned port_mask, bool superpipe) {
  std::lock_guard lock(impl_->luns_mu);
  auto lun = std::make_unique<Lun>();
  lun->lun_id = lun_id;
  lun->wwid = wwid;
  lun->port_sel = port_mask & 0xF;
  lun->superpipe = superpipe;
  impl_->luns.push_back(std::move(lun));
  return *impl_->luns.back();
}

LunInfo Driver::lun_info(const Lun& lun_const) const {
  Lun& lun = const_cast<Lun&>(lun_const);
  std::lock_guard lock(lun.mu);
  LunInfo info;
  info.lun_id = lun.lun_id;
  info.max_lba = lun.max_lba;
  info.blk_len = lun.blk_len;
  info.mode = lun.mode;
  info.users = lun.users;
  info.lun_index = lun.lun_index;
  info.port_sel = lun.port_sel;
  std::lock_guard blka_lock(lun.blka_mu);
  if (lun.blka) {
    info.total_chunks = lun.blka->total();
    info.free_chunks = lun.blka->space();
  }
  return info;
}

unsigned Driver::chunk_references(const Lun& lun, uint64_t aun) const {
  std::lock_guard lock(lun.blka_mu);
  return lun.blka ? lun.blka->references(aun) : 0;
}

std::error_code Driver::Impl::lun_attach(Lun& lun, LunInfo::Mode mode) {
  if (lun.mode == LunInfo::Mode::none) {
    lun.mode = mode;
  } else if (lun.mode != mode) {
    return einval();
  }
  lun.users++;
  return {};
}

void Driver::Impl::lun_detach(Lun& lun) {
  std::lock_guard lock(lun.mu);
  if (--lun.users == 0) {
    lun.mode = LunInfo::Mode::none;
    std::lock_guard blka_lock(lun.blka_mu);
    lun.blka.reset();  // spec §5.1: every vLUN map of the LUN is gone with it
  }
}

// Creates the allocator when the LUN enters virtual mode (spec §5.1). Caller holds lun.mu.
std::error_code Driver::Impl::init_vlun(Lun& lun) {
  if (lun.mode != LunInfo::Mode::none) return {};
  uint64_t total = (lun.max_lba + 1) >> options.chunk_shift;
  if (lun.blk_len == 0 || total == 0) return errno_error(ENOMEM);  // pitfall 11
  std::lock_guard blka_lock(lun.blka_mu);
  lun.blka = std::make_unique<ChunkAllocator>(total);
  return {};
}

std::error_code Driver::Impl::attach_virtual(Lun& lun) {
  {
    std::lock_guard lock(lun.mu);
    if (lun.mode == LunInfo::Mode::physical) return einval();
    if (auto ec = init_vlun(lun)) return ec;
    if (auto ec = lun_attach(lun, LunInfo::Mode::virtual_)) return ec;
  }
  if (auto ec = place_in_lun_table(lun)) {
    lun_detach(lun);
    return ec;
  }
  return {};
}

// Places the LUN in the AFU LUN table on first virtual use (spec §4.9).
std::error_code Driver::Impl::place_in_lun_table(Lun& lun) {
  std::lock_guard lock(lun_table_mu);
  if (lun.lun_index >= 0) return {};
  unsigned ports = lun.port_sel & 0xF;
  if (ports == 0) return errno_error(EIO);
  int index;
  if (std::popcount(ports) > 1) {
    index = lun_table_up;
    // A port with no single-port LUN yet still ends at slot 255.
    for (unsigned p = 0; p < 4; ++p) {
      if ((ports & (1u << p)) && down.try_emplace(p, 255).first->second < index) return errno_error(ENOSPC);
    }
    lun_table_up++;
  } else {
    unsigned port = static_cast<unsigned>(std::countr_zero(ports));
    int& next = down.try_emplace(port, 255).first->second;
    if (next < lun_table_up) return errno_error(ENOSPC);
    index = next--;
  }
  for (unsigned p = 0; p < 4; ++p) {
    if (ports & (1u << p)) afu.set_lun_table(p, static_cast<unsigned>(index), lun.lun_id);
  }
  lun.lun_index = index;
  return {};
}

// ---- VERIFY (spec §3.7) ----
std::error_code Driver::verify(Lun& lun, dk_cxlflash_verify& args, const Caller& who) {
  dk_cxlflash_verify a = args;
  if (!hdr_ok(a.hdr) || !lun.superpipe) return einval();
  auto held = impl_->checked_rhte(a.context_id, a.rsrc_handle, lun, who, Impl::Format::any);
  if (!held) return held.error();
  const sisl_rht_entry* e = held.value().rhte;
  if (a.hint & DK_CXLFLASH_VERIFY_HINT_SENSE) {
    const uint8_t* s = a.sense_data;
    uint8_t response = s[0] & 0x7F, key, asc;
    if (response == 0x70 || response == 0x71) {
      key = s[2] & 0xF;
      asc = s[12];
    } else if (response == 0x72 || response == 0x73) {
      key = s[1] & 0xF;
      asc = s[2];
    } else {
      return einval();
    }
    switch (key) {
      case SENSE_NO_SENSE:
      case SENSE_RECOVERED_ERROR:
      case SENSE_NOT_READY:
        break;
      case SENSE_UNIT_ATTENTION:
        if (asc == 0x29 || asc == 0x2A) {
          std::lock_guard lock(lun.mu);
          if (impl_->read_capacity(lun)) return errno_error(ENODEV);
        } else if (asc != 0x3F) {  // 0x3F: a rescan, nothing to do for a simulated host
          return errno_error(EIO);
        }
        break;
      default:
        return errno_error(EIO);
    }
  }
  // Pitfall 25: VERIFY reports; it never changes a vLUN.
  a.last_lba = rht_format(e->fp) == SISL_RHT_FMT_VIRTUAL
                   ? virtual_last_lba(e->lxt_cnt, lun.blk_len, options_.chunk_shift)
                   : lun.max_lba.load();
  a.hdr.return_flags = 0;
  args = a;
  return {};
}

// ---- MANAGE_LUN (spec §3.9) ----
std::error_code Driver::manage_lun(Lun& lun, dk_cxlflash_manage_lun& args) {
  if (!hdr_ok(args.hdr)) return einval();
  std::lock_guard lock(lun.mu);
  if (std::memcmp(args.wwid, lun.wwid.data(), CXLFLASH_WWID_LEN) != 0) return einval();
  if (args.hdr.flags & DK_CXLFLASH_MANAGE_LUN_ENABLE_SUPERPIPE) {
    lun.superpipe = true;
  } else if (args.hdr.flags & DK_CXLFLASH_MANAGE_LUN_DISABLE_SUPERPIPE) {
    if (lun.mode != LunInfo::Mode::none) return errno_error(EBUSY);
    lun.superpipe = false;
  }
  return {};
}

}  // namespace vlunfs::vlun
