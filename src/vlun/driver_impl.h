// The driver's private state, shared by the files of vlun/ that implement Driver (each is one of
// the kernel cxlflash driver's concerns; see the comment at the top of each):
//   driver.cc            the Driver object itself and the size conversions
//   lun_management.cc    LUNs, MANAGE_LUN, VERIFY, mode accounting, the AFU LUN table (lunmgt.c)
//   contexts.cc          ATTACH, DETACH, RECOVER_AFU, RELEASE, cookies, RHT checkout (superpipe.c)
//   virtual_lun.cc       USER_VIRTUAL, VLUN_RESIZE: grow_lxt, shrink_lxt, chunk give-back (vlun.c)
//   direct_lun.cc        USER_DIRECT and the format-1 close
//   clone.cc             VLUN_CLONE (spec §6)
//   master_commands.cc   commands through the master context: SYNC, READ CAPACITY, WRITE SAME,
//                        SYNCHRONIZE CACHE, chunk copies (main.c's send_afu_cmd / afu_sync role)
//   persistence.cc       extensions for a persistent filesystem (pin, adopt, open, close, ...)
//   sharing.cc           extensions for copy-on-write sharing and thin vLUNs
#pragma once

#include "vlun/chunk_allocator.h"
#include "vlun/lxt_array.h"
#include "vlun/release_store.h"
#include "vlunfs/vlun.h"

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

namespace vlunfs::vlun {

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

// What the driver keeps beside one RHT entry (the entry itself is in the page the AFU reads).
struct RhteInfo {
  Lun* lun = nullptr;
  bool write_same = false;
  LxtArray lxt;  // a virtual entry's LXT, as published in lxt_start / lxt_cnt
};

struct Context {
  uint64_t cookie = 0;
  int ctxid = -1;
  pid_t owner = 0;
  uint8_t perms = 0;
  int adap_fd = -1;
  std::unique_ptr<sisl::sisl_rht_entry[]> rht;  // the RHT page, read by the AFU
  std::vector<RhteInfo> info;
  unsigned rht_out = 0;
  std::vector<Lun*> luns;
  int refs = 0;  // one per LUN attachment
  bool dead = false;
  std::mutex mu;  // serialises every ioctl of the context
};

// Spec §3.0 step 4: version 0, reserved fields and return_flags 0.
inline bool hdr_ok(const dk_cxlflash_hdr& h) {
  return h.version == DK_CXLFLASH_VERSION_0 && h.rsvd[0] == 0 && h.rsvd[1] == 0 && h.rsvd[2] == 0 &&
         h.return_flags == 0;
}

inline std::error_code einval() { return errno_error(EINVAL); }

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

  // ---- contexts and handles (contexts.cc) ----
  struct Locked {
    std::shared_ptr<Context> ctx;
    std::unique_lock<std::mutex> lock;
    explicit operator bool() const { return ctx != nullptr; }
    Context* operator->() const { return ctx.get(); }
  };
  // An RHT entry of a context whose lock is held for as long as this lives.
  struct HeldRhte {
    Locked ctx;
    uint64_t handle = 0;
    sisl::sisl_rht_entry* rhte = nullptr;
    RhteInfo* info = nullptr;
  };
  enum class Format { any, virtual_only };

  Locked get_context(uint64_t cookie, const Caller& who, const Lun* lun, bool clone_source = false);
  static sisl::sisl_rht_entry* get_rhte(Context& ctx, uint64_t handle, const Lun& lun, unsigned max_rht);
  // The preamble of every call on an open handle: get_context, get_rhte, and for the calls that
  // only virtual handles take, the format (spec §3.0); EINVAL when any of them fails.
  Result<HeldRhte> checked_rhte(uint64_t context_id, uint64_t rsrc_handle, const Lun& lun, const Caller& who,
                                Format format);
  // The preamble of every open, after its lun_attach: get_context, then a free RHT entry checked
  // out. On failure (EINVAL, EMFILE) the LUN user the open took is dropped again (lun_detach).
  Result<HeldRhte> checkout_rhte(uint64_t context_id, Lun& lun, const Caller& who);
  static sisl::sisl_rht_entry* rhte_checkout(Context& ctx, Lun& lun, unsigned max_rht, uint64_t* handle);
  static void rhte_checkin(Context& ctx, uint64_t handle);
  std::error_code release_handle(Context& ctx, uint64_t handle);
  void detach_lun(Context& ctx, Lun& lun);

  // ---- LUN mode accounting and the LUN table (lun_management.cc) ----
  std::error_code lun_attach(Lun& lun, LunInfo::Mode mode);
  void lun_detach(Lun& lun);
  std::error_code init_vlun(Lun& lun);
  std::error_code place_in_lun_table(Lun& lun);
  // lun_attach in virtual mode, with the allocator and LUN table slot it needs (USER_VIRTUAL, pin).
  std::error_code attach_virtual(Lun& lun);

  // ---- virtual LUNs (virtual_lun.cc) ----
  Result<uint64_t> resize_lxt(Context& ctx, uint64_t handle, uint64_t new_chunks);
  Result<uint64_t> grow_lxt(Context& ctx, uint64_t handle, uint64_t new_chunks);
  std::error_code shrink_lxt(Context& ctx, uint64_t handle, uint64_t new_chunks);
  void free_chunk(Lun& lun, uint64_t aun, bool zero);
  void free_chunks(Lun& lun, std::span<const uint64_t> entries, bool zero);
  // Drops one reference to each chunk the entries name, without zeroing (undoing a clone or an
  // adoption). Caller holds lun.blka_mu.
  static void drop_references(Lun& lun, std::span<const uint64_t> entries);

  // ---- direct LUNs (direct_lun.cc) ----
  void close_direct(Context& ctx, uint64_t handle);

  // ---- commands through the master context (master_commands.cc) ----
  std::error_code execute_master(afu::Command& cmd);
  std::error_code afu_sync(int ctxid, uint64_t handle, uint8_t mode);
  // afu_sync as resize, clone and the LXT extensions report it: any failure is EAGAIN.
  std::error_code afu_sync_or_eagain(int ctxid, uint64_t handle, uint8_t mode);
  std::error_code master_scsi(const Lun& lun, const uint8_t (&cdb)[16], void* data, uint32_t len, bool host_write);
  std::error_code read_capacity(Lun& lun);
  std::error_code write_same(const Lun& lun, uint64_t plba, uint64_t nblocks);
  std::error_code copy_blocks(const Lun& lun, uint64_t from_plba, uint64_t to_plba, uint64_t nblocks);
};

}  // namespace vlunfs::vlun
