// client/: the vLUN client between the filesystem and the driver, the role IBM's capiflash block
// library plays over the cxlflash ioctls. One LunClient per mount owns the physical LUN as the
// driver sees it, the AFU contexts with their host queues, and the zero chunk; one Vlun per open
// virtual LUN (client/vlun.h) resizes it, maps it and moves its data by vLBA. The filesystem above
// speaks only to these two and to meta/; the AFU backend below is passed in (client/backend.h).
#pragma once

#include "client/backend.h"
#include "client/command_counts.h"
#include "client/flush_group.h"
#include "vlunfs/afu.h"
#include "vlunfs/chunk_shift.h"
#include "vlunfs/error.h"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace vlunfs::vlun {
class Driver;
class Lun;
}  // namespace vlunfs::vlun

namespace vlunfs::client {

class Vlun;

struct LunOptions {
  unsigned chunk_shift = sisl::HARDWARE_CHUNK_SHIFT;  // nmask (vlunfs/chunk_shift.h)
  uint32_t block_size = 4096;
  bool read_only = false;      // contexts are attached O_RDONLY
  std::array<uint8_t, 16> wwid{};  // the LUN's WWID (the filesystem's UUID)
  // Where failures go with their reason (the mount's log); the client has no log of its own.
  std::function<void(const std::string&)> log_error;
  // Where the data path counts its AFU commands by afu_rc (the mount's metrics); none if null.
  AfuCommandCounts* command_counts = nullptr;
};

// One attached AFU context: its cookie and adapter fd, the ctxid for IOARCBs, the host end of its
// queue, and the resource handles checked out on it. The queue and ctxid change only in
// adopt_parent_contexts, before any I/O is served; the handle set is guarded by the client's pool_mu_.
struct ContextSlot {
  uint64_t cookie = 0;
  int adap_fd = -1;
  uint16_t ctxid = 0;
  std::unique_ptr<afu::HostQueue> queue;
  std::set<uint64_t> handles;
};

class LunClient {
 public:
  // Starts the driver over the backend's adapter, puts the LUN in virtual mode (pinned there while
  // mounted) and reserves the data area's last chunk as the zero chunk (docs/format.md).
  // A refusal's message says what failed.
  static Result<std::unique_ptr<LunClient>, Error> open(AfuBackend backend, const LunOptions& options);
  // Detaches every context and unpins the LUN; every Vlun must be gone by then. Idempotent.
  void shutdown();
  ~LunClient();
  LunClient(const LunClient&) = delete;
  LunClient& operator=(const LunClient&) = delete;

  // ---- the allocator, rebuilt from the persisted chunk maps (design decision 3) ----
  // Marks the chunks of one file's LXT as owned (a chunk named twice gets a clone reference).
  // EINVAL for an entry outside the data area or a chunk shared too often.
  std::error_code adopt(std::span<const uint64_t> lxt);
  // After a crash: every free chunk is zeroed, since chunks written without a durable record are
  // free again and must read as zeros.
  std::error_code zero_free_chunks();

  // ---- vLUNs ----
  // A new, empty vLUN (USER_VIRTUAL of size 0) whose chunks are zeroed when given back. `label`
  // names it in log lines (the filesystem passes the inode number).
  Result<std::unique_ptr<Vlun>> create_vlun(uint64_t label);
  // A persisted vLUN over its LXT, whose chunks adopt() has already marked as owned.
  Result<std::unique_ptr<Vlun>> open_vlun(uint64_t label, std::span<const uint64_t> lxt);

  // ---- chunks outside a resize: copy-on-write sharing and thin vLUNs ----
  Result<uint64_t> alloc_chunk();            // ENOSPC when none is free
  bool share_chunk(uint64_t aun);            // one more owner; false at the 256-owner limit
  void drop_chunk(uint64_t aun, bool zero_if_last);
  unsigned chunk_references(uint64_t aun) const;  // 0 = free
  std::error_code copy_chunk(uint64_t from_aun, uint64_t to_aun);
  // The LXT entry of a chunk of this LUN (its LUN index and ports), read-only or read-write.
  uint64_t lxt_entry(uint64_t aun, bool writable) const;
  // The zero chunk, read-only: what a thin vLUN maps for its unwritten chunks.
  uint64_t zero_entry() const { return lxt_entry(zero_aun_, false); }
  uint64_t zero_aun() const { return zero_aun_; }  // the data area's last chunk, always zero
  bool maps_zero(uint64_t entry) const;

  // SYNCHRONIZE CACHE(16) on the physical LUN; concurrent callers share one (FlushGroup).
  std::error_code synchronize_cache();
  uint64_t cache_syncs_issued() const { return sync_group_.flushes_issued(); }
  // Chunks anyone can be given (the zero chunk is not one of them), and those free now.
  uint64_t total_chunks() const;
  uint64_t free_chunks() const;
  uint64_t chunk_bytes() const { return uint64_t{options_.block_size} << options_.chunk_shift; }
  uint32_t block_size() const { return options_.block_size; }
  unsigned chunk_shift() const { return options_.chunk_shift; }
  size_t context_count() const;

  // In a forked child: attaches a context of its own per context of the parent, VLUN_CLONEs the
  // parent's into it (spec §6: the same resource handles), and lets the parent's go, as the kernel
  // does when the parent's adapter fds close (pitfall 21).
  Error adopt_parent_contexts();

 private:
  friend class Vlun;
  explicit LunClient(const LunOptions& options);

  Result<std::unique_ptr<Vlun>> checkout(uint64_t label, const std::span<const uint64_t>* persisted);
  Result<ContextSlot*> slot_with_room_locked();
  void log(const std::string& message) const;
  std::error_code issue_synchronize_cache();  // one SYNCHRONIZE CACHE(16), not grouped

  LunOptions options_;
  unsigned max_handles_per_context_ = 0;
  std::unique_ptr<afu::Afu> afu_;  // declared before driver_: the driver goes first
  std::unique_ptr<vlun::Driver> driver_;
  vlun::Lun* lun_ = nullptr;
  bool pinned_ = false;
  uint64_t zero_aun_ = 0;
  FlushGroup sync_group_{[this] { return issue_synchronize_cache(); }};
  unsigned lun_index_ = 0;
  unsigned port_sel_ = 0;

  mutable std::mutex pool_mu_;
  std::vector<std::unique_ptr<ContextSlot>> contexts_;  // guarded by pool_mu_ (the list and handle sets)
};

}  // namespace vlunfs::client
