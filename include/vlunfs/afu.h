// afu/: the SISLite command interface. The host drives an AFU through per-context MMIO windows:
// it writes an IOARCB in its memory, rings IOARRIN with its address and reads the completion from
// a response queue (RRQ) with a toggle bit (spec §4.7). The simulator implements these interfaces
// now; a libcxl backend implements the same ones on CAPI hardware.
#pragma once

#include "vlunfs/error.h"
#include "vlunfs/rrq_size.h"
#include "vlunfs/sislite.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <semaphore>
#include <vector>

namespace vlunfs::afu {

inline constexpr int MAX_CONTEXT = 512;  // CXLFLASH_MAX_CONTEXT

// 64-bit register window. Values are host-order; a hardware backend does the big-endian access.
class MmioWindow {
 public:
  virtual ~MmioWindow() = default;
  virtual uint64_t read64(uint32_t offset) = 0;
  virtual void write64(uint32_t offset, uint64_t value) = 0;
};

// What the master (the driver in vlun/) needs of an adapter.
class Afu {
 public:
  virtual ~Afu() = default;
  // Creates a hardware context and returns its ctxid (0..511).
  virtual Result<int> start_context() = 0;
  virtual void stop_context(int ctxid) = 0;
  virtual MmioWindow& user_mmio(int ctxid) = 0;  // sisl_host_map, 64 KiB
  virtual MmioWindow& ctrl_mmio(int ctxid) = 0;  // sisl_ctrl_map, 128 B, trusted
  // The master's own context: AFU commands (SYNC) and LUN-id mode SCSI commands go through it.
  virtual int master_ctxid() const = 0;
  virtual void set_lun_table(unsigned port, unsigned index, uint64_t lun_id) = 0;
  virtual uint64_t afu_port_sel() const = 0;
};

// An IOARCB with its IOASA right behind it: IOARRIN mode finds the IOASA at IOARCB EA + 64.
struct alignas(128) Command {
  sisl::sisl_ioarcb rcb{};
  sisl::sisl_ioasa sa{};
  std::atomic<bool> done{false};
};
static_assert(offsetof(Command, sa) == 64);

// The host end of one context: IOARRIN or SQ submission, RRQ completion with the toggle bit.
// Shared by every thread of a context: a command may be completed (its RRQ entry consumed) by any
// thread.
class HostQueue {
 public:
  // sq_entries of 0 submits through IOARRIN.
  static constexpr unsigned kIoarrinMode = 0;

  // Zero-fills an RRQ of `rrq_entries`, programs rrq_start then rrq_end, starts with toggle 1.
  // With `sq_entries` (at least 2) it submits in SQ mode (spec §4.7): a ring of that many IOARCB
  // slots in host memory, programmed with sq_start then sq_end; each command is copied into the
  // next slot with its IOASA address at offset 56 and sq_tail is advanced past it. At most
  // sq_entries - 1 commands are outstanding, so the tail never catches up with the AFU's head.
  explicit HostQueue(MmioWindow& mmio, unsigned rrq_entries = RRQ_ENTRIES, unsigned sq_entries = kIoarrinMode);
  ~HostQueue();
  HostQueue(const HostQueue&) = delete;
  HostQueue& operator=(const HostQueue&) = delete;

  // Posts cmd.rcb and waits for its completion; cmd.sa then holds the IOASA.
  void execute(Command& cmd);
  // The same, but once the RRQ has stayed empty for a while `idle` is called instead of sleeping
  // (a hardware backend polls its adapter fd for the RRQ-updated interrupt there). When idle
  // returns false the wait is abandoned (an adapter reset) and false is returned; the queue is
  // then unusable and must be replaced.
  bool execute(Command& cmd, const std::function<bool()>& idle);
  // Context reset (write 1 to IOARRIN, or to sq_ctx_reset in SQ mode); true when the AFU
  // acknowledged it.
  bool reset_context();
  uint64_t completions() const { return completions_.load(std::memory_order_relaxed); }
  bool sq_mode() const { return !sq_.empty(); }

 private:
  void drain_rrq();
  void post(Command& cmd);  // IOARRIN doorbell or SQ slot + sq_tail

  MmioWindow& mmio_;
  std::vector<uint64_t> rrq_;                     // guarded by rrq_mu_ (the AFU writes it)
  std::counting_semaphore<1 << 20> credits_;      // one per RRQ slot, at most cmd_room / SQ slots - 1
  std::mutex rrq_mu_;                             // protects rrq_next_ and toggle_
  size_t rrq_next_ = 0;
  uint64_t toggle_ = 1;                           // pitfall 23: the first pass expects T = 1
  std::atomic<uint64_t> completions_{0};
  std::vector<sisl::sisl_ioarcb> sq_;             // SQ mode's ring; empty in IOARRIN mode
  std::mutex sq_mu_;                              // protects sq_next_ and the order of sq_tail writes
  size_t sq_next_ = 0;                            // the slot the next command is copied into
};

// One READ(16)/WRITE(16) on a resource handle, as a user context issues it (spec §4.2): RES_HNDL,
// the direction flag, the virtual LBA in the CDB, data_len = nblocks * block size.
void rw16(HostQueue& queue, Command& cmd, uint16_t ctxid, uint32_t rsrc_handle, bool write,
          uint64_t vlba, uint32_t nblocks, uint32_t block_size, void* data);

// The result of a finished command as an errno, for callers that only need success or not.
std::error_code ioasa_to_error(const sisl::sisl_ioasa& sa);

}  // namespace vlunfs::afu
