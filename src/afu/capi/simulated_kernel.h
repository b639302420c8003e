// A simulated Linux kernel for the CAPI backend: the DK_CXLFLASH ioctls are answered by vlun::Driver
// (which implements the cxlflash driver's rules, spec §3), the mapped MMIO window is backed by the
// software AFU's registers so that a doorbell write executes the command, and AFU interrupts are
// delivered as struct cxl_event records on the adapter fd. One device path (`device_path`) is
// simulated; every other path and fd goes to libc. Fault knobs reproduce what hardware does wrong.
#pragma once

#include "afu/capi/kernel.h"
#include "vlunfs/sislite.h"
#include "vlunfs/store.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace vlunfs::afu::capi {

struct SimulatedKernelOptions {
  std::string device_path = "/dev/sg-vlunfs-sim";
  std::string image_path;                       // the LUN's bytes; or `store` below
  store::BlockStore* store = nullptr;           // used instead of image_path when set (tests)
  uint32_t block_size = 4096;
  unsigned cmd_room = 256;                      // the AFU's cmd_room per context
  // ATTACH answers CONTEXT_SQ_CMD_MODE: IOARCBs come through the host's SQ (sq_start/sq_end/
  // sq_tail) and the RRQ returns IOASA addresses; IOARRIN then refuses commands.
  bool sq_mode = false;
};

struct SimulatedKernelCounters {
  std::atomic<uint64_t> doorbells{0}, attaches{0}, detaches{0}, releases{0}, verifies{0}, recovers{0},
      events_delivered{0}, open_contexts{0},
      sq_fetches{0},   // IOARCBs fetched from an SQ
      sq_overruns{0},  // sq_tail writes that queued more IOARCBs than the ring holds unfetched
      sq_faults{0};    // sq_tail outside the ring, or a fetched IOARCB without an IOASA address
};

class SimulatedKernel final : public Kernel {
 public:
  explicit SimulatedKernel(const SimulatedKernelOptions& options);
  ~SimulatedKernel() override;

  int open(const char* path, int flags) override;
  int close(int fd) override;
  int ioctl(int fd, unsigned long request, void* arg) override;
  void* mmap(size_t length, int prot, int flags, int fd, off_t offset) override;
  int munmap(void* addr, size_t length) override;
  int poll(pollfd* fds, nfds_t count, int timeout_ms) override;
  ssize_t read(int fd, void* buf, size_t count) override;
  int fsync(int fd) override;
  uint64_t mmio_read64(void* window, uint32_t offset) override;
  void mmio_write64(void* window, uint32_t offset, uint64_t value) override;

  // ---- fault knobs ----
  // The next `count` commands complete with this IOASA status instead of running.
  void fail_commands(unsigned count, uint8_t afu_rc, uint8_t afu_extra = 0, uint8_t fc_rc = 0, uint8_t scsi_rc = 0);
  // The next `count` commands complete with fc_rc LINKDOWN (the host must requeue them).
  void link_down(unsigned count);
  // Adapter reset: every mapped window reads all ones and drops stores until RECOVER_AFU.
  void reset_adapter();
  // Every command fails with CHECK CONDITION / UNIT ATTENTION (ASC 0x29) until a VERIFY.
  void unit_attention();
  // cmd_room as the AFU reports it from now on.
  void set_cmd_room(unsigned room);
  // The next `count` completions are held back and then posted in reverse order.
  void hold_completions(unsigned count);
  // An error event (CXL_EVENT_DATA_STORAGE or CXL_EVENT_AFU_ERROR) on every adapter fd.
  void raise_error_event(uint16_t type);
  // SQ mode: the AFU stops fetching from every SQ (true) or fetches what is queued and goes on.
  void stall_sq(bool stalled);
  // IOARCBs queued in the SQs and not yet fetched.
  uint64_t sq_queued() const;
  const SimulatedKernelCounters& counters() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace vlunfs::afu::capi
