// vlun/: the cxlflash driver's job as a C++ API shaped like its ioctls (spec §3, §5, §6):
// contexts and cookies, RHT checkout, LUN mode accounting, the chunk allocator, resize, clone.
// Each ioctl method takes the same struct the kernel takes and follows its rules: the header is
// validated, and the struct is written back only on success (spec §3.0 step 5).
//
// Deliberate deviations from the driver, each fixing a bug of spec §7:
// - 7.9:  chunks given back by a shrink are zeroed at the right LBAs ([aun·2^n, (aun+1)·2^n)),
//         and only when their last owner frees them (a chunk still shared with a clone is kept).
// - 7.14: a USER_VIRTUAL whose initial resize fails frees what it allocated and clears the entry.
// - 7.17: VLUN_CLONE refuses (EINVAL) a source with direct (format-1) handles or with handles on
//         another LUN, and LUN attachments added by a clone take their references.
// And one for speed: a shrink zeroes each run of consecutive chunks it frees with one WRITE SAME,
// where the driver issues one per chunk (same flash contents and allocator state after).
// Extensions for a persistent filesystem (the kernel keeps vLUN maps only in memory) are named as
// such below; they are not ioctls.
#pragma once

#include "vlunfs/afu.h"
#include "vlunfs/chunk_shift.h"
#include "vlunfs/cxlflash_ioctl.h"
#include "vlunfs/error.h"
#include "vlunfs/handles_per_context.h"

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace vlunfs::vlun {

inline constexpr unsigned MC_RHT_NMASK = 16;   // spec §2
inline constexpr unsigned MC_CHUNK_SHIFT = 16;
static_assert(MC_CHUNK_SHIFT == sisl::HARDWARE_CHUNK_SHIFT);
inline constexpr uint64_t CXLFLASH_BLOCK_SIZE = 4096;  // unit of lun_size / req_size / virtual last_lba
inline constexpr unsigned MAX_CONNUM_INTERRUPTS = 4;
inline constexpr uint64_t CXLFLASH_MAX_SECTORS = 32768;  // 512-byte units
inline constexpr uint64_t CXLFLASH_MAX_XFER_SIZE = 16u << 20;
inline constexpr unsigned LXT_GROUP_SIZE = 8;

struct DriverOptions {
  // Chunk = 2^chunk_shift blocks (nmask), in the range of vlunfs/chunk_shift.h.
  unsigned chunk_shift = MC_CHUNK_SHIFT;
  // Resource handles per context (vlunfs/handles_per_context.h).
  unsigned max_rht_per_context = MAX_RHT_PER_CONTEXT;
};

// Who issues an ioctl: contexts belong to the process that created them (spec §3.0, pitfall 21).
struct Caller {
  pid_t tgid;
  pid_t parent;
  static Caller current();
};

// A physical LUN as reached through one SCSI device (the "sdev" an ioctl is issued on).
class Lun;

struct LunInfo {
  uint64_t lun_id = 0;
  uint64_t max_lba = 0;     // last LBA of the physical LUN, device blocks (0 until first attach)
  uint32_t blk_len = 0;
  enum class Mode { none, virtual_, physical } mode = Mode::none;
  int users = 0;
  uint64_t total_chunks = 0;  // 0 while no allocator exists
  uint64_t free_chunks = 0;
  int lun_index = -1;         // slot in the AFU LUN table, once placed
  unsigned port_sel = 0;      // ports the LUN is reachable on (LXT entries carry them)
};

class Driver {
 public:
  // A driver over the AFU; EINVAL for options it cannot take (a chunk_shift outside vlunfs/chunk_shift.h's range).
  static Result<std::unique_ptr<Driver>> create(afu::Afu& afu, DriverOptions options = {});
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // SCSI discovery: a LUN with its id, WWID and the ports it is visible on. With
  // `superpipe = true` it is also enabled as MANAGE_LUN(ENABLE_SUPERPIPE) would.
  Lun& add_lun(uint64_t lun_id, const std::array<uint8_t, 16>& wwid, unsigned port_mask,
               bool superpipe = true);

  // ---- the ioctls (spec §3) ----
  std::error_code attach(Lun& lun, dk_cxlflash_attach& args, const Caller& who = Caller::current());
  std::error_code user_direct(Lun& lun, dk_cxlflash_udirect& args, const Caller& who = Caller::current());
  std::error_code user_virtual(Lun& lun, dk_cxlflash_uvirtual& args, const Caller& who = Caller::current());
  std::error_code vlun_resize(Lun& lun, dk_cxlflash_resize& args, const Caller& who = Caller::current());
  std::error_code release(Lun& lun, dk_cxlflash_release& args, const Caller& who = Caller::current());
  std::error_code detach(Lun& lun, dk_cxlflash_detach& args, const Caller& who = Caller::current());
  std::error_code vlun_clone(Lun& lun, dk_cxlflash_clone& args, const Caller& who = Caller::current());
  std::error_code verify(Lun& lun, dk_cxlflash_verify& args, const Caller& who = Caller::current());
  std::error_code recover_afu(Lun& lun, dk_cxlflash_recover_afu& args, const Caller& who = Caller::current());
  std::error_code manage_lun(Lun& lun, dk_cxlflash_manage_lun& args);

  // The context's user MMIO window: what mmap() of the adapter fd gives. nullptr for a cookie
  // the caller does not own.
  afu::MmioWindow* mmio(uint64_t context_id, const Caller& who = Caller::current());
  LunInfo lun_info(const Lun& lun) const;
  unsigned chunk_shift() const { return options_.chunk_shift; }

  // ---- extensions for a persistent filesystem (not ioctls) ----
  // Keeps the LUN in virtual mode with its allocator alive while nothing is open (one "user").
  std::error_code pin_virtual(Lun& lun, const Caller& who = Caller::current());
  void unpin_virtual(Lun& lun);
  // Marks the chunks of a persisted LXT as owned (a chunk named twice gets a clone reference).
  // Called once per file at mount, after pin_virtual. EINVAL for an entry outside the LUN.
  std::error_code adopt_chunks(Lun& lun, std::span<const uint64_t> lxt);
  // Opens a vLUN over an existing LXT whose chunks are already owned (adopt_chunks or an earlier
  // resize): a USER_VIRTUAL that allocates nothing. Entries are used as given.
  std::error_code open_vlun(Lun& lun, uint64_t context_id, std::span<const uint64_t> lxt,
                            uint64_t* rsrc_handle, const Caller& who = Caller::current());
  // Whether a shrink or release of the handle zeroes the chunks it gives back, as USER_VIRTUAL's
  // DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME asks (open_vlun handles start without it).
  std::error_code set_write_same(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, bool on,
                                 const Caller& who = Caller::current());
  // Checks the handle in without giving its chunks back (the file lives on in the metadata).
  std::error_code close_vlun(Lun& lun, uint64_t context_id, uint64_t rsrc_handle,
                             const Caller& who = Caller::current());
  // A copy of the handle's current LXT.
  Result<std::vector<uint64_t>> lxt(Lun& lun, uint64_t context_id, uint64_t rsrc_handle,
                                    const Caller& who = Caller::current());
  // Zeroes vLBAs [vlba, vlba + nblocks) of a vLUN with WRITE SAME(16)+UNMAP through the master,
  // as the driver zeroes chunks (user contexts may not issue WRITE SAME).
  std::error_code zero_range(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, uint64_t vlba,
                             uint64_t nblocks, const Caller& who = Caller::current());
  // SYNCHRONIZE CACHE(16) on the physical LUN through the master.
  std::error_code synchronize_cache(Lun& lun);
  // Chunk references of one chunk (0 = free), for checks and fsck.
  unsigned chunk_references(const Lun& lun, uint64_t aun) const;

  // ---- copy-on-write sharing and thin vLUNs (extensions) ----
  // The driver never uses the LXT permission bits (pitfall 18); a caller that shares chunks maps
  // them without W, the AFU faults a write with LXT_RW_PERM, and the caller remaps.
  //
  // The zero chunk: always zero, mapped read-only by the unwritten chunks of thin vLUNs. It is
  // taken out of the allocator for good and is never freed, shared-counted or zeroed again.
  std::error_code set_zero_chunk(Lun& lun, uint64_t aun);
  // ba_alloc of one chunk outside a resize (ENOSPC when none is free).
  Result<uint64_t> alloc_chunk(Lun& lun);
  // ba_clone: one more owner; false when the chunk is free or already has 256 owners.
  bool share_chunk(Lun& lun, uint64_t aun);
  // ba_free of one reference; the last owner's chunk is zeroed first when zero_if_last.
  void drop_chunk(Lun& lun, uint64_t aun, bool zero_if_last);
  // Copies a whole chunk's blocks with READ(16)/WRITE(16) through the master (LUN-id mode).
  std::error_code copy_chunk(Lun& lun, uint64_t from_aun, uint64_t to_aun);
  // Replaces LXT entries [first, first + entries.size()) of a vLUN in place (one 64-bit store
  // each), then a heavyweight SYNC: no command still runs under an old entry when this returns.
  std::error_code remap_lxt(Lun& lun, uint64_t context_id, uint64_t rsrc_handle, uint64_t first,
                            std::span<const uint64_t> entries, const Caller& who = Caller::current());
  // Appends entries to a vLUN's LXT without allocating (thin growth maps the zero chunk),
  // published as a grow (spec §4.4), then a lightweight SYNC.
  std::error_code extend_lxt(Lun& lun, uint64_t context_id, uint64_t rsrc_handle,
                             std::span<const uint64_t> entries, const Caller& who = Caller::current());
  // Zeroes every free chunk (WRITE SAME through the master): after a crash, chunks taken and
  // written without a durable record are free again and must read as zeros.
  std::error_code zero_free_chunks(Lun& lun);
  // What the kernel does when a process's last adapter fd closes: every context it owned is
  // detached and its handles released. The simulated AFU lives in the process's memory, so a
  // forked child that cloned its parent's contexts (VLUN_CLONE) calls this for the parent.
  void process_exited(pid_t pid);

  struct Impl;

 private:
  Driver(afu::Afu& afu, DriverOptions options);

  DriverOptions options_;
  std::unique_ptr<Impl> impl_;
};

// Sizes: 4K units <-> chunks, following spec §5.4 and pitfalls 2-3 (without the u64 overflow).
uint64_t chunks_for_req_size(uint64_t req_size_4k, uint32_t blk_len, unsigned chunk_shift);
uint64_t virtual_last_lba(uint64_t chunks, uint32_t blk_len, unsigned chunk_shift);
// Bytes of a size reported as last_lba in 4K units (pitfall 2: all-ones means 0).
inline uint64_t last_lba_to_bytes(uint64_t last_lba) {
  return last_lba == ~uint64_t{0} ? 0 : (last_lba + 1) * CXLFLASH_BLOCK_SIZE;
}

}  // namespace vlunfs::vlun
