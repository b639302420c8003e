// The driver's superpipe ioctls over an AFU (spec §3, §5, §6). Deviations are listed in vlun.h.
#include "vlunfs/vlun.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

namespace vlunfs::vlun {

using namespace vlunfs::sisl;

Caller Caller::current() { return {getpid(), getppid()}; }

namespace {
__extension__ typedef unsigned __int128 u128;
}

uint64_t chunks_for_req_size(uint64_t req_size_4k, uint32_t blk_len, unsigned chunk_shift) {
  // nsect = floor(req_size * 4096 / blk_len), then up to whole chunks (spec §5.4). 128-bit, so a
  // huge request cannot wrap around to a small one (pitfall 3).
  u128 nsect = static_cast<u128>(req_size_4k) * CXLFLASH_BLOCK_SIZE / blk_len;
  u128 chunk = uint64_t{1} << chunk_shift;
  u128 chunks = (nsect + chunk - 1) / chunk;
  return chunks > UINT32_MAX ? UINT32_MAX : static_cast<uint64_t>(chunks);  // lxt_cnt is u32
}

uint64_t virtual_last_lba(uint64_t chunks, uint32_t blk_len, unsigned chunk_shift) {
  if (chunks == 0) return ~uint64_t{0};  // pitfall 2
  u128 units = (static_cast<u128>(chunks) << chunk_shift) * blk_len / CXLFLASH_BLOCK_SIZE;
  return static_cast<uint64_t>(units - 1);
}

class Lun {
 public:
  uint64_t lun_id = 0;
  std::array<uint8_t, 16> wwid{};
  unsigned port_sel = 0;
  // Written by MANAGE_LUN under mu; every other ioctl reads it first, without the LUN lock.
  std::atomic<bool> superpipe{false};

  std::mutex mu;  // the LUN lock: capacity, mode, users, allocator creation and destruction
  // Written under mu by READ CAPACITY (ATTACH, VERIFY); the ioctls read them without it.
  std::atomic<uint64_t> max_lba{0};
  std::atomic<uint32_t> blk_len{0};
  LunInfo::Mode mode = LunInfo::Mode::none;
  int users = 0;
  // Set once, under the driver's lun_table_mu, on the first virtual open; read without it.
  std::atomic<int> lun_index{-1};
  // Exists while mode is virtual. A handle holds a user, so it outlives every handle's resize.
  std::unique_ptr<ChunkAllocator> blka;
  // The zero chunk of thin vLUNs (extension): owned for good, never counted, freed or zeroed.
  std::optional<uint64_t> zero_aun;  // guarded by blka_mu

  bool is_zero(uint64_t aun) const { return zero_aun && *zero_aun == aun; }
  mutable std::mutex blka_mu;  // the allocator mutex (spec §5.3)
};

namespace {

struct RhteInfo {
  Lun* lun = nullptr;
  bool write_same = false;
  std::unique_ptr<uint64_t[]> lxt;  // the published LXT array (capacity: whole groups of 8)
  // Arrays replaced by a grow whose SYNCs all failed: the AFU may still be reading them, so they
  // live until a later grow's SYNC succeeds or the entry is checked in.
  std::vector<std::unique_ptr<uint64_t[]>> retired;
};

struct Context {
  uint64_t cookie = 0;
  int ctxid = -1;
  pid_t owner = 0;
  uint8_t perms = 0;
  int adap_fd = -1;
  std::unique_ptr<sisl_rht_entry[]> rht;  // the RHT page, read by the AFU
  std::vector<RhteInfo> info;
  unsigned rht_out = 0;
  std::vector<Lun*> luns;
  int refs = 0;  // one per LUN attachment
  bool dead = false;
  std::mutex mu;  // serialises every ioctl of the context
};

size_t lxt_groups(uint64_t n) { return (n + LXT_GROUP_SIZE - 1) / LXT_GROUP_SIZE; }

bool hdr_ok(const dk_cxlflash_hdr& h) {
  return h.version == DK_CXLFLASH_VERSION_0 && h.rsvd[0] == 0 && h.rsvd[1] == 0 && h.rsvd[2] == 0 &&
         h.return_flags == 0;
}

std::error_code einval() { return errno_error(EINVAL); }

template <class T>
void store_release(T& field, T value) {
  std::atomic_ref<T>(field).store(value, std::memory_order_release);
}
template <class T>
T load_relaxed(const T& field) {
  return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}

alignas(4096) const std::byte kZeroBlock[4096] = {};

}  // namespace

struct Driver::Impl {
  Impl(afu::Afu& a, const DriverOptions& o)
      : afu(a), options(o), master_queue(a.user_mmio(a.master_ctxid()), 16) {}

  afu::Afu& afu;
  DriverOptions options;
  std::vector<std::unique_ptr<Lun>> luns;
  std::mutex luns_mu;

  std::mutex table_mu;  // the context table
  std::array<std::shared_ptr<Context>, afu::MAX_CONTEXT> table;
  uint32_t next_tag = 1;

  std::mutex afu_cmd_mu;  // one AFU command outstanding at a time, as the driver's mutex
  afu::HostQueue master_queue;

  std::mutex lun_table_mu;
  int lun_table_up = 0;          // next multi-port slot, counting up from 0
  std::map<unsigned, int> down;  // per port: next single-port slot, counting down from 255

  struct Locked {
    std::shared_ptr<Context> ctx;
    std::unique_lock<std::mutex> lock;
    explicit operator bool() const { return ctx != nullptr; }
    Context* operator->() const { return ctx.get(); }
  };

  // get_context (spec §3.0): the full cookie matches, the caller owns it (for a clone source: the
  // caller's parent does), and the LUN, when given, is attached.
  Locked get_context(uint64_t cookie, const Caller& who, const Lun* lun, bool clone_source = false) {
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
  static sisl_rht_entry* get_rhte(Context& ctx, uint64_t handle, const Lun& lun, unsigned max_rht) {
    if (!ctx.rht || handle >= max_rht) return nullptr;
    if (ctx.info[handle].lun != &lun) return nullptr;
    sisl_rht_entry* e = &ctx.rht[handle];
    return e->nmask != 0 ? e : nullptr;  // byte 15 != 0 means in use (pitfall 16)
  }

  static sisl_rht_entry* rhte_checkout(Context& ctx, Lun& lun, unsigned max_rht, uint64_t* handle) {
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

  static void rhte_checkin(Context& ctx, uint64_t handle) {
    sisl_rht_entry& e = ctx.rht[handle];
    store_release<uint8_t>(e.nmask, 0);
    store_release<uint8_t>(e.fp, 0);
    store_release<uint32_t>(e.lxt_cnt, 0);
    store_release<uint64_t>(e.lxt_start, 0);
    ctx.info[handle] = RhteInfo{};
    ctx.rht_out--;
  }

  std::error_code lun_attach(Lun& lun, LunInfo::Mode mode) {
    if (lun.mode == LunInfo::Mode::none) {
      lun.mode = mode;
    } else if (lun.mode != mode) {
      return einval();
    }
    lun.users++;
    return {};
  }

  void lun_detach(Lun& lun) {
    std::lock_guard lock(lun.mu);
    if (--lun.users == 0) {
      lun.mode = LunInfo::Mode::none;
      std::lock_guard blka_lock(lun.blka_mu);
      lun.blka.reset();  // spec §5.1: every vLUN map of the LUN is gone with it
    }
  }

  // Creates the allocator when the LUN enters virtual mode (spec §5.1). Caller holds lun.mu.
  std::error_code init_vlun(Lun& lun) {
    if (lun.mode != LunInfo::Mode::none) return {};
    uint64_t total = (lun.max_lba + 1) >> options.chunk_shift;
    if (lun.blk_len == 0 || total == 0) return errno_error(ENOMEM);  // pitfall 11
    std::lock_guard blka_lock(lun.blka_mu);
    lun.blka = std::make_unique<ChunkAllocator>(total);
    return {};
  }

  // Places the LUN in the AFU LUN table on first virtual use (spec §4.9).
  std::error_code place_in_lun_table(Lun& lun) {
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

  std::error_code execute_master(afu::Command& cmd) {
    master_queue.execute(cmd);
    return afu::ioasa_to_error(cmd.sa);
  }

  // AFU SYNC (spec §4.8). Any failure is EIO here; resize and clone turn it into EAGAIN.
  std::error_code afu_sync(int ctxid, uint32_t handle, uint8_t mode) {
    std::lock_guard lock(afu_cmd_mu);
    afu::Command cmd;
    cmd.rcb.ctx_id = static_cast<uint16_t>(afu.master_ctxid());
    cmd.rcb.req_flags = SISL_REQ_FLAGS_AFU_CMD;
    cmd.rcb.msi = 2;
    cmd.rcb.timeout = 5;
    cmd.rcb.cdb[0] = SISL_AFU_CMD_SYNC;
    cmd.rcb.cdb[1] = mode;
    put_be16(cmd.rcb.cdb + 2, static_cast<uint16_t>(ctxid));
    put_be32(cmd.rcb.cdb + 4, handle);
    return execute_master(cmd) ? errno_error(EIO) : std::error_code{};
  }

  // A SCSI command to the physical LUN in LUN-id mode, through the master context.
  std::error_code master_scsi(const Lun& lun, const uint8_t (&cdb)[16], void* data, uint32_t len,
                              bool host_write) {
    afu::Command cmd;
    cmd.rcb.ctx_id = static_cast<uint16_t>(afu.master_ctxid());
    cmd.rcb.req_flags = static_cast<uint16_t>(SISL_REQ_FLAGS_PORT_LUN_ID |
                                              (host_write ? SISL_REQ_FLAGS_HOST_WRITE : 0) |
                                              SISL_REQ_FLAGS_SUP_UNDERRUN);
    cmd.rcb.res_hndl = lun.port_sel;
    cmd.rcb.lun_id = lun.lun_id;
    cmd.rcb.data_len = len;
    cmd.rcb.data_ea = reinterpret_cast<uint64_t>(data);
    cmd.rcb.timeout = 30;
    std::memcpy(cmd.rcb.cdb, cdb, 16);
    return execute_master(cmd);
  }

  std::error_code read_capacity(Lun& lun) {
    alignas(16) uint8_t buf[32] = {};
    uint8_t cdb[16] = {SCSI_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16};
    put_be32(cdb + 10, sizeof buf);
    if (auto ec = master_scsi(lun, cdb, buf, sizeof buf, false)) return ec;
    lun.max_lba = get_be64(buf);
    lun.blk_len = get_be32(buf + 8);
    return lun.blk_len == 0 ? errno_error(EIO) : std::error_code{};
  }

  // WRITE SAME(16) with UNMAP over physical LBAs, split to fit the CDB's 32-bit block count.
  std::error_code write_same(const Lun& lun, uint64_t plba, uint64_t nblocks) {
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

  // Gives one chunk reference back; with write_same, a chunk whose last owner this was is zeroed
  // first, at its own LBAs (pitfall 9 fixed), while it is still allocated so nobody can take it.
  void free_chunk(Lun& lun, uint64_t aun, bool zero) {
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

  // Gives back the chunks of entries[first, end), from the top down, as free_chunk() one by one
  // would, except that a run of consecutive chunks whose last owner this was is zeroed with one
  // WRITE SAME rather than one per chunk (a deliberate deviation from the driver, which zeroes
  // chunk by chunk; the result on the flash and in the allocator is the same, and a 4096-chunk
  // shrink costs a few commands rather than thousands).
  void free_chunks(Lun& lun, const uint64_t* entries, uint64_t first, uint64_t end, bool zero) {
    uint64_t i = end;
    while (i > first) {
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
        while (alone && j > first) {
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

  // _cxlflash_vlun_resize (spec §5.4). *reached is the size in chunks actually reached.
  std::error_code resize(Context& ctx, uint64_t handle, uint64_t new_chunks, uint64_t* reached) {
    sisl_rht_entry& e = ctx.rht[handle];
    RhteInfo& info = ctx.info[handle];
    Lun& lun = *info.lun;
    const uint64_t old = e.lxt_cnt;
    *reached = old;
    if (new_chunks > old) {
      std::unique_ptr<uint64_t[]> old_array;
      {
        std::lock_guard lock(lun.blka_mu);
        uint64_t avail = lun.blka->space();
        if (avail == 0) return errno_error(ENOSPC);
        uint64_t delta = std::min(new_chunks - old, avail);  // best effort (pitfall 4)
        uint64_t* array = info.lxt.get();
        if (lxt_groups(old + delta) != lxt_groups(old)) {
          auto grown = std::unique_ptr<uint64_t[]>(new (std::nothrow) uint64_t[lxt_groups(old + delta) * LXT_GROUP_SIZE]());
          if (!grown) return errno_error(ENOMEM);
          std::copy_n(info.lxt.get(), old, grown.get());
          array = grown.get();
          old_array = std::move(info.lxt);
          info.lxt = std::move(grown);
        }
        for (uint64_t i = old; i < old + delta; ++i) {
          uint64_t aun = *lun.blka->alloc();  // cannot fail: delta <= free chunks
          store_release<uint64_t>(array[i], make_lxt_entry(aun, static_cast<unsigned>(lun.lun_index),
                                                            LXT_PERM_READ | LXT_PERM_WRITE, lun.port_sel));
        }
        // Publish: entries, then lxt_start, then lxt_cnt (spec §4.4).
        store_release<uint64_t>(e.lxt_start, reinterpret_cast<uint64_t>(array));
        store_release<uint32_t>(e.lxt_cnt, static_cast<uint32_t>(old + delta));
        *reached = old + delta;
      }
      std::error_code sync = afu_sync(ctx.ctxid, static_cast<uint32_t>(handle), SISL_AFU_LW_SYNC);
      if (!sync) info.retired.clear();
      if (sync && old_array) {
        // The AFU may still hold the old table: keep the old array alive rather than risk it.
        if (afu_sync(ctx.ctxid, static_cast<uint32_t>(handle), SISL_AFU_HW_SYNC)) {
          info.retired.push_back(std::move(old_array));
        }
      }
      return sync ? errno_error(EAGAIN) : std::error_code{};
    }
    if (new_chunks < old) {
      uint64_t* old_ptr = info.lxt.get();
      std::unique_ptr<uint64_t[]> replaced;
      if (lxt_groups(new_chunks) != lxt_groups(old)) {
        std::unique_ptr<uint64_t[]> smaller;
        if (new_chunks > 0) {
          smaller.reset(new (std::nothrow) uint64_t[lxt_groups(new_chunks) * LXT_GROUP_SIZE]());
          if (!smaller) return errno_error(ENOMEM);
          std::copy_n(old_ptr, new_chunks, smaller.get());
        }
        replaced = std::move(info.lxt);
        info.lxt = std::move(smaller);
      }
      // Publish: lxt_cnt first, then lxt_start (spec §4.4), then a heavyweight SYNC before any
      // chunk or the old array is given back.
      store_release<uint32_t>(e.lxt_cnt, static_cast<uint32_t>(new_chunks));
      store_release<uint64_t>(e.lxt_start, reinterpret_cast<uint64_t>(info.lxt.get()));
      std::error_code sync = afu_sync(ctx.ctxid, static_cast<uint32_t>(handle), SISL_AFU_HW_SYNC);
      free_chunks(lun, old_ptr, new_chunks, old, info.write_same);
      if (!replaced) {
        for (uint64_t i = old; i-- > new_chunks;) store_release<uint64_t>(old_ptr[i], 0);
      }
      *reached = new_chunks;
      return sync ? errno_error(EAGAIN) : std::error_code{};
    }
    return afu_sync(ctx.ctxid, static_cast<uint32_t>(handle), SISL_AFU_HW_SYNC) ? errno_error(EAGAIN)
                                                                                 : std::error_code{};
  }

  // Release of one handle (spec §3.5); the caller holds the context lock.
  std::error_code release_handle(Context& ctx, uint64_t handle) {
    sisl_rht_entry& e = ctx.rht[handle];
    Lun& lun = *ctx.info[handle].lun;
    if (rht_format(e.fp) == SISL_RHT_FMT_VIRTUAL) {
      uint64_t reached = 0;
      if (auto ec = resize(ctx, handle, 0, &reached)) return ec;  // the handle stays open (pitfall 15)
    } else {
      auto& f1 = reinterpret_cast<sisl_rht_entry_f1&>(e);
      store_release<uint8_t>(f1.valid, 0);
      store_release<uint64_t>(f1.lun_id, 0);
      store_release<uint8_t>(f1.fp, 0);
      store_release<uint8_t>(f1.port_sel, 0);
      (void)afu_sync(ctx.ctxid, static_cast<uint32_t>(handle), SISL_AFU_HW_SYNC);
    }
    rhte_checkin(ctx, handle);
    lun_detach(lun);
    return {};
  }

  // Drops one LUN attachment of a context; the context dies with its last one (spec §3.6).
  void detach_lun(Context& ctx, Lun& lun) {
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
};

Driver::Driver(afu::Afu& afu, DriverOptions options)
    : options_(options), impl_(std::make_unique<Impl>(afu, options)) {
  if (options_.chunk_shift == 0 || options_.chunk_shift > MC_CHUNK_SHIFT) {
    throw std::invalid_argument("chunk_shift must be 1..16");
  }
}

Driver::~Driver() {
  // Tear down whatever the users left attached, so the AFU has no context pointing at freed RHTs.
  for (auto& slot : impl_->table) {
    std::shared_ptr<Context> ctx = slot;
    if (!ctx) continue;
    std::lock_guard lock(ctx->mu);
    while (!ctx->dead && !ctx->luns.empty()) impl_->detach_lun(*ctx, *ctx->luns.front());
  }
}

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

// ---- USER_DIRECT (spec §3.2) ----
std::error_code Driver::user_direct(Lun& lun, dk_cxlflash_udirect& args, const Caller& who) {
  dk_cxlflash_udirect a = args;
  if (!hdr_ok(a.hdr) || !lun.superpipe) return einval();
  {
    std::lock_guard lock(lun.mu);
    if (auto ec = impl_->lun_attach(lun, LunInfo::Mode::physical)) return ec;
  }
  auto ctx = impl_->get_context(a.context_id, who, &lun);
  if (!ctx) {
    impl_->lun_detach(lun);
    return einval();
  }
  uint64_t handle = 0;
  sisl_rht_entry* e = Impl::rhte_checkout(*ctx.ctx, lun, options_.max_rht_per_context, &handle);
  if (!e) {
    impl_->lun_detach(lun);
    return errno_error(EMFILE);
  }
  // Format-1 open sequence (spec §4.4): zero, fp without perms, LUN id, then the second dword.
  auto& f1 = reinterpret_cast<sisl_rht_entry_f1&>(*e);
  store_release<uint8_t>(f1.fp, SISL_RHT_FP(SISL_RHT_FMT_DIRECT, 0));
  store_release<uint64_t>(f1.lun_id, lun.lun_id);
  store_release<uint8_t>(f1.valid, SISL_RHT_VALID);
  store_release<uint8_t>(f1.fp, SISL_RHT_FP(SISL_RHT_FMT_DIRECT, ctx->perms));
  // The port of the channel this sdev was seen on (pitfall 19): the lowest of the LUN's ports.
  store_release<uint8_t>(f1.port_sel, static_cast<uint8_t>(1u << std::countr_zero(lun.port_sel | 0x10)));
  // Spec §3.2: on a SYNC failure the handle is undone and the SYNC's own error returned.
  if (std::error_code sync = impl_->afu_sync(ctx->ctxid, static_cast<uint32_t>(handle), SISL_AFU_LW_SYNC)) {
    (void)impl_->release_handle(*ctx.ctx, handle);
    return sync;
  }
  a.rsrc_handle = handle;
  a.last_lba = lun.max_lba;
  a.hdr.return_flags = 0;
  args = a;
  return {};
}

// ---- USER_VIRTUAL (spec §3.3) ----
std::error_code Driver::user_virtual(Lun& lun, dk_cxlflash_uvirtual& args, const Caller& who) {
  dk_cxlflash_uvirtual a = args;
  if (!hdr_ok(a.hdr) || !lun.superpipe) return einval();
  {
    std::lock_guard lock(lun.mu);
    if (lun.mode == LunInfo::Mode::physical) return einval();
    if (auto ec = impl_->init_vlun(lun)) return ec;
    if (auto ec = impl_->lun_attach(lun, LunInfo::Mode::virtual_)) return ec;
  }
  if (auto ec = impl_->place_in_lun_table(lun)) {
    impl_->lun_detach(lun);
    return ec;
  }
  auto ctx = impl_->get_context(a.context_id, who, &lun);
  if (!ctx) {
    impl_->lun_detach(lun);
    return einval();
  }
  uint64_t handle = 0;
  sisl_rht_entry* e = Impl::rhte_checkout(*ctx.ctx, lun, options_.max_rht_per_context, &handle);
  if (!e) {
    impl_->lun_detach(lun);
    return errno_error(EMFILE);
  }
  store_release<uint8_t>(e->fp, SISL_RHT_FP(SISL_RHT_FMT_VIRTUAL, ctx->perms));
  store_release<uint8_t>(e->nmask, static_cast<uint8_t>(options_.chunk_shift));
  uint64_t reached = 0;
  std::error_code ec =
      impl_->resize(*ctx.ctx, handle, chunks_for_req_size(a.lun_size, lun.blk_len, options_.chunk_shift), &reached);
  if (ec) {
    // Pitfall 14 fixed: give back what the failed open allocated and leave a clean entry.
    uint64_t ignored = 0;
    if (e->lxt_cnt > 0) (void)impl_->resize(*ctx.ctx, handle, 0, &ignored);
    Impl::rhte_checkin(*ctx.ctx, handle);
    impl_->lun_detach(lun);
    return ec;
  }
  ctx->info[handle].write_same = a.hdr.flags & DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME;
  a.rsrc_handle = handle;
  a.last_lba = virtual_last_lba(reached, lun.blk_len, options_.chunk_shift);
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
  auto ctx = impl_->get_context(a.context_id, who, &lun);
  if (!ctx) return einval();
  sisl_rht_entry* e = Impl::get_rhte(*ctx.ctx, a.rsrc_handle, lun, options_.max_rht_per_context);
  if (!e || rht_format(e->fp) != SISL_RHT_FMT_VIRTUAL) return einval();
  uint64_t reached = 0;
  if (auto ec = impl_->resize(*ctx.ctx, a.rsrc_handle, new_chunks, &reached)) return ec;
  a.last_lba = virtual_last_lba(reached, lun.blk_len, options_.chunk_shift);
  a.hdr.return_flags = 0;
  args = a;
  return {};
}

// ---- RELEASE (spec §3.5) ----
std::error_code Driver::release(Lun& lun, dk_cxlflash_release& args, const Caller& who) {
  if (!hdr_ok(args.hdr) || !lun.superpipe) return einval();
  auto ctx = impl_->get_context(args.context_id, who, &lun);
  if (!ctx) return einval();
  if (!Impl::get_rhte(*ctx.ctx, args.rsrc_handle, lun, options_.max_rht_per_context)) return einval();
  return impl_->release_handle(*ctx.ctx, args.rsrc_handle);
}

// ---- DETACH (spec §3.6) ----
std::error_code Driver::detach(Lun& lun, dk_cxlflash_detach& args, const Caller& who) {
  if (!hdr_ok(args.hdr) || !lun.superpipe) return einval();
  auto ctx = impl_->get_context(args.context_id, who, &lun);
  if (!ctx) return einval();
  impl_->detach_lun(*ctx.ctx, lun);
  return {};
}

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
  auto undo = [&](unsigned upto) {
    for (unsigned j = 0; j < upto; ++j) {
      if (dst->rht[j].nmask != 0) (void)impl_->release_handle(*dst.ctx, j);
    }
  };
  for (unsigned i = 0; i < max_rht && dst->rht_out < src->rht_out; ++i) {
    const sisl_rht_entry& s = src->rht[i];
    if (s.nmask == 0) continue;
    sisl_rht_entry& d = dst->rht[i];  // the same handle number
    dst->info[i].lun = &lun;
    dst->rht_out++;
    std::unique_ptr<uint64_t[]> copy;
    const uint64_t cnt = s.lxt_cnt;
    if (cnt > 0) {
      copy.reset(new (std::nothrow) uint64_t[lxt_groups(cnt) * LXT_GROUP_SIZE]());
      if (!copy) {
        Impl::rhte_checkin(*dst.ctx, i);
        undo(i);
        return errno_error(ENOMEM);
      }
      std::copy_n(src->info[i].lxt.get(), cnt, copy.get());
    }
    uint64_t cloned = 0;
    {
      std::lock_guard lock(lun.blka_mu);
      for (; cloned < cnt; ++cloned) {
        if (lun.is_zero(lxt_aun(copy[cloned]))) continue;
        if (!lun.blka->clone(lxt_aun(copy[cloned]))) break;
      }
      if (cloned < cnt) {
        for (uint64_t k = 0; k < cloned; ++k) {
          if (!lun.is_zero(lxt_aun(copy[k]))) lun.blka->free(lxt_aun(copy[k]));
        }
      }
    }
    if (cloned < cnt) {
      Impl::rhte_checkin(*dst.ctx, i);
      undo(i);
      return errno_error(EIO);
    }
    dst->info[i].lxt = std::move(copy);
    store_release<uint8_t>(d.fp, SISL_RHT_FP_CLONE(s.fp, dst->perms));
    store_release<uint64_t>(d.lxt_start, reinterpret_cast<uint64_t>(dst->info[i].lxt.get()));
    store_release<uint32_t>(d.lxt_cnt, static_cast<uint32_t>(cnt));
    store_release<uint8_t>(d.nmask, s.nmask);
    if (impl_->afu_sync(dst->ctxid, i, SISL_AFU_LW_SYNC)) {
      {
        std::lock_guard lock(lun.blka_mu);
        for (uint64_t k = 0; k < cnt; ++k) {
          if (!lun.is_zero(lxt_aun(dst->info[i].lxt[k]))) lun.blka->free(lxt_aun(dst->info[i].lxt[k]));
        }
      }
      Impl::rhte_checkin(*dst.ctx, i);
      undo(i);
      return errno_error(EAGAIN);
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

// ---- VERIFY (spec §3.7) ----
std::error_code Driver::verify(Lun& lun, dk_cxlflash_verify& args, const Caller& who) {
  dk_cxlflash_verify a = args;
  if (!hdr_ok(a.hdr) || !lun.superpipe) return einval();
  auto ctx = impl_->get_context(a.context_id, who, &lun);
  if (!ctx) return einval();
  sisl_rht_entry* e = Impl::get_rhte(*ctx.ctx, a.rsrc_handle, lun, options_.max_rht_per_context);
  if (!e) return einval();
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

afu::MmioWindow* Driver::mmio(uint64_t context_id, const Caller& who) {
  auto ctx = impl_->get_context(context_id, who, nullptr);
  return ctx ? &impl_->afu.user_mmio(ctx->ctxid) : nullptr;
}

// ---- extensions for a persistent filesystem ----
std::error_code Driver::pin_virtual(Lun& lun, const Caller& /*who*/) {
  {
    std::lock_guard lock(lun.mu);
    if (!lun.superpipe || lun.mode == LunInfo::Mode::physical) return einval();
    if (lun.max_lba == 0 && impl_->read_capacity(lun)) return errno_error(ENODEV);
    if (auto ec = impl_->init_vlun(lun)) return ec;
    if (auto ec = impl_->lun_attach(lun, LunInfo::Mode::virtual_)) return ec;
  }
  if (auto ec = impl_->place_in_lun_table(lun)) {
    impl_->lun_detach(lun);
    return ec;
  }
  return {};
}

void Driver::unpin_virtual(Lun& lun) { impl_->lun_detach(lun); }

std::error_code Driver::adopt_chunks(Lun& lun, std::span<const uint64_t> lxt) {
  std::lock_guard lock(lun.blka_mu);
  if (!lun.blka) return einval();
  for (size_t i = 0; i < lxt.size(); ++i) {
    if (lun.is_zero(lxt_aun(lxt[i]))) continue;
    if (!lun.blka->reserve(lxt_aun(lxt[i]))) {
      for (size_t k = 0; k < i; ++k) {
        if (!lun.is_zero(lxt_aun(lxt[k]))) lun.blka->free(lxt_aun(lxt[k]));
      }
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
  auto ctx = impl_->get_context(context_id, who, &lun);
  if (!ctx) {
    impl_->lun_detach(lun);
    return einval();
  }
  uint64_t handle = 0;
  sisl_rht_entry* e = Impl::rhte_checkout(*ctx.ctx, lun, options_.max_rht_per_context, &handle);
  if (!e) {
    impl_->lun_detach(lun);
    return errno_error(EMFILE);
  }
  RhteInfo& info = ctx->info[handle];
  if (!lxt.empty()) {
    info.lxt.reset(new (std::nothrow) uint64_t[lxt_groups(lxt.size()) * LXT_GROUP_SIZE]());
    if (!info.lxt) {
      Impl::rhte_checkin(*ctx.ctx, handle);
      impl_->lun_detach(lun);
      return errno_error(ENOMEM);
    }
    std::copy(lxt.begin(), lxt.end(), info.lxt.get());
  }
  store_release<uint8_t>(e->fp, SISL_RHT_FP(SISL_RHT_FMT_VIRTUAL, ctx->perms));
  store_release<uint64_t>(e->lxt_start, reinterpret_cast<uint64_t>(info.lxt.get()));
  store_release<uint32_t>(e->lxt_cnt, static_cast<uint32_t>(lxt.size()));
  store_release<uint8_t>(e->nmask, static_cast<uint8_t>(options_.chunk_shift));
  if (impl_->afu_sync(ctx->ctxid, static_cast<uint32_t>(handle), SISL_AFU_LW_SYNC)) {
    store_release<uint32_t>(e->lxt_cnt, 0);
    (void)impl_->afu_sync(ctx->ctxid, static_cast<uint32_t>(handle), SISL_AFU_HW_SYNC);
    Impl::rhte_checkin(*ctx.ctx, handle);
    impl_->lun_detach(lun);
    return errno_error(EAGAIN);
  }
  *rsrc_handle = handle;
  return {};
}

std::error_code Driver::set_write_same(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, bool on,
                                      const Caller& who) {
  auto ctx = impl_->get_context(context_id, who, &lun);
  if (!ctx) return einval();
  if (!Impl::get_rhte(*ctx.ctx, rsrc_handle, lun, options_.max_rht_per_context)) return einval();
  ctx->info[rsrc_handle].write_same = on;
  return {};
}

std::error_code Driver::close_vlun(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, const Caller& who) {
  auto ctx = impl_->get_context(context_id, who, &lun);
  if (!ctx) return einval();
  sisl_rht_entry* e = Impl::get_rhte(*ctx.ctx, rsrc_handle, lun, options_.max_rht_per_context);
  if (!e || rht_format(e->fp) != SISL_RHT_FMT_VIRTUAL) return einval();
  store_release<uint32_t>(e->lxt_cnt, 0);
  store_release<uint64_t>(e->lxt_start, 0);
  std::error_code sync = impl_->afu_sync(ctx->ctxid, static_cast<uint32_t>(rsrc_handle), SISL_AFU_HW_SYNC);
  Impl::rhte_checkin(*ctx.ctx, rsrc_handle);
  impl_->lun_detach(lun);
  return sync ? errno_error(EAGAIN) : std::error_code{};
}

Result<std::vector<uint64_t>> Driver::lxt(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, const Caller& who) {
  auto ctx = impl_->get_context(context_id, who, &lun);
  if (!ctx) return einval();
  sisl_rht_entry* e = Impl::get_rhte(*ctx.ctx, rsrc_handle, lun, options_.max_rht_per_context);
  if (!e || rht_format(e->fp) != SISL_RHT_FMT_VIRTUAL) return einval();
  const uint64_t* array = ctx->info[rsrc_handle].lxt.get();
  return std::vector<uint64_t>(array, array + e->lxt_cnt);
}

std::error_code Driver::zero_range(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, uint64_t vlba,
                                   uint64_t nblocks, const Caller& who) {
  auto ctx = impl_->get_context(context_id, who, &lun);
  if (!ctx) return einval();
  sisl_rht_entry* e = Impl::get_rhte(*ctx.ctx, rsrc_handle, lun, options_.max_rht_per_context);
  if (!e || rht_format(e->fp) != SISL_RHT_FMT_VIRTUAL) return einval();
  const unsigned shift = options_.chunk_shift;
  const uint64_t mask = (uint64_t{1} << shift) - 1;
  const uint64_t* array = ctx->info[rsrc_handle].lxt.get();
  uint64_t v = vlba, end = vlba + nblocks;
  if (end < vlba || (nblocks > 0 && ((end - 1) >> shift) >= e->lxt_cnt)) return einval();
  while (v < end) {
    uint64_t c = v >> shift;
    uint64_t n = std::min(end, (c + 1) << shift) - v;
    if (auto ec = impl_->write_same(lun, (lxt_aun(array[c]) << shift) | (v & mask), n)) return ec;
    v += n;
  }
  return {};
}

std::error_code Driver::synchronize_cache(Lun& lun) {
  uint8_t cdb[16] = {SCSI_SYNCHRONIZE_CACHE_16};
  return impl_->master_scsi(lun, cdb, nullptr, 0, false);
}

// ---- copy-on-write sharing and thin vLUNs (extensions) ----

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
  const uint64_t chunk_blocks = uint64_t{1} << options_.chunk_shift;
  const uint32_t per_cmd = static_cast<uint32_t>(std::min<uint64_t>(chunk_blocks, CXLFLASH_MAX_XFER_SIZE / lun.blk_len));
  std::unique_ptr<std::byte, decltype(&std::free)> buf(
      static_cast<std::byte*>(std::aligned_alloc(4096, uint64_t{per_cmd} * lun.blk_len)), &std::free);
  if (!buf) return errno_error(ENOMEM);
  for (uint64_t done = 0; done < chunk_blocks; done += per_cmd) {
    uint8_t cdb[16];
    build_rw16(cdb, false, (from_aun << options_.chunk_shift) + done, per_cmd);
    if (auto ec = impl_->master_scsi(lun, reinterpret_cast<const uint8_t(&)[16]>(cdb), buf.get(), per_cmd * lun.blk_len, false)) {
      return ec;
    }
    build_rw16(cdb, true, (to_aun << options_.chunk_shift) + done, per_cmd);
    if (auto ec = impl_->master_scsi(lun, reinterpret_cast<const uint8_t(&)[16]>(cdb), buf.get(), per_cmd * lun.blk_len, true)) {
      return ec;
    }
  }
  return {};
}

std::error_code Driver::remap_lxt(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, uint64_t first,
                                  std::span<const uint64_t> entries, const Caller& who) {
  auto ctx = impl_->get_context(context_id, who, &lun);
  if (!ctx) return einval();
  sisl_rht_entry* e = Impl::get_rhte(*ctx.ctx, rsrc_handle, lun, options_.max_rht_per_context);
  if (!e || rht_format(e->fp) != SISL_RHT_FMT_VIRTUAL) return einval();
  if (first > e->lxt_cnt || entries.size() > e->lxt_cnt - first) return einval();
  uint64_t* array = ctx->info[rsrc_handle].lxt.get();
  for (size_t i = 0; i < entries.size(); ++i) store_release<uint64_t>(array[first + i], entries[i]);
  // Heavyweight: a write that started under a W bit now taken away has finished when this returns.
  return impl_->afu_sync(ctx->ctxid, static_cast<uint32_t>(rsrc_handle), SISL_AFU_HW_SYNC) ? errno_error(EAGAIN)
                                                                                            : std::error_code{};
}

std::error_code Driver::extend_lxt(Lun& lun, uint64_t context_id, uint64_t rsrc_handle,
                                   std::span<const uint64_t> entries, const Caller& who) {
  auto ctx = impl_->get_context(context_id, who, &lun);
  if (!ctx) return einval();
  sisl_rht_entry* e = Impl::get_rhte(*ctx.ctx, rsrc_handle, lun, options_.max_rht_per_context);
  if (!e || rht_format(e->fp) != SISL_RHT_FMT_VIRTUAL) return einval();
  RhteInfo& info = ctx->info[rsrc_handle];
  const uint64_t old = e->lxt_cnt;
  if (entries.size() > UINT32_MAX - old) return errno_error(EFBIG);
  uint64_t* array = info.lxt.get();
  std::unique_ptr<uint64_t[]> old_array;
  if (lxt_groups(old + entries.size()) != lxt_groups(old)) {
    std::unique_ptr<uint64_t[]> grown(new (std::nothrow) uint64_t[lxt_groups(old + entries.size()) * LXT_GROUP_SIZE]());
    if (!grown) return errno_error(ENOMEM);
    std::copy_n(info.lxt.get(), old, grown.get());
    array = grown.get();
    old_array = std::move(info.lxt);
    info.lxt = std::move(grown);
  }
  for (size_t i = 0; i < entries.size(); ++i) store_release<uint64_t>(array[old + i], entries[i]);
  store_release<uint64_t>(e->lxt_start, reinterpret_cast<uint64_t>(array));
  store_release<uint32_t>(e->lxt_cnt, static_cast<uint32_t>(old + entries.size()));
  if (impl_->afu_sync(ctx->ctxid, static_cast<uint32_t>(rsrc_handle), old_array ? SISL_AFU_HW_SYNC : SISL_AFU_LW_SYNC)) {
    return errno_error(EAGAIN);
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
