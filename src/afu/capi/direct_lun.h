// A whole physical CAPI flash LUN opened the way IBM's kernel-mode block library opens it
// (spec §3.1, §3.2, §4.6, §4.7): open of the LUN's SCSI node, DK_CXLFLASH_ATTACH, mmap of the
// adapter fd's 64 KiB MMIO window, the window programmed (endian control, interrupt mask, context
// control, RRQ), DK_CXLFLASH_USER_DIRECT, then READ(16)/WRITE(16) IOARCBs on that resource handle.
// Error paths: requeue on transient IOASAs, VERIFY after a unit attention, RECOVER_AFU when MMIO
// reads return all ones (adapter reset). The destructor RELEASEs, DETACHes, unmaps and closes on
// every way out.
#pragma once

#include "afu/capi/kernel.h"
#include "vlunfs/afu.h"
#include "vlunfs/error.h"

#include <atomic>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>

namespace vlunfs::afu::capi {

struct DirectLunOptions {
  bool read_only = false;
  unsigned rrq_entries = 64;     // RRQ slots = most commands in flight on the context
  unsigned sq_entries = 64;      // SQ slots, when ATTACH says the AFU submits in SQ mode (spec §4.7)
  unsigned max_requeues = 40;    // transient errors retried this often before EIO
  // Where failures go with their reason (the mount's log).
  std::function<void(const std::string&)> log;
};

// The adapter's per-context window as an afu::MmioWindow, through the kernel interface.
class MappedWindow final : public MmioWindow {
 public:
  MappedWindow(Kernel& kernel, void* base) : kernel_(kernel), base_(base) {}
  uint64_t read64(uint32_t offset) override { return kernel_.mmio_read64(base_, offset); }
  void write64(uint32_t offset, uint64_t value) override { kernel_.mmio_write64(base_, offset, value); }

 private:
  Kernel& kernel_;
  void* base_;
};

struct DirectLunStats {
  std::atomic<uint64_t> requeues{0}, verifies{0}, recoveries{0}, interrupts{0}, error_events{0};
};

class DirectLun {
 public:
  // EINVAL/ENOTTY from ATTACH means the path is not a CAPI LUN in superpipe mode; *why says so.
  static Result<std::unique_ptr<DirectLun>> open(Kernel& kernel, const std::string& path,
                                                 const DirectLunOptions& options, std::string* why);
  // Only the context (ATTACH, mmap, programmed window), no USER_DIRECT: for kernel vLUNs
  // (kernel_vluns.h), whose handles come from USER_VIRTUAL.
  static Result<std::unique_ptr<DirectLun>> open_context(Kernel& kernel, const std::string& path,
                                                         const DirectLunOptions& options, std::string* why);
  ~DirectLun();
  DirectLun(const DirectLun&) = delete;
  DirectLun& operator=(const DirectLun&) = delete;

  uint32_t block_size() const { return block_size_; }
  uint64_t last_lba() const { return last_lba_; }
  uint64_t max_transfer_blocks() const { return max_xfer_; }
  // Blocks [lba, lba + nblocks) to/from `buf`; split at the ATTACH's max transfer.
  std::error_code read_blocks(uint64_t lba, uint64_t nblocks, void* buf);
  std::error_code write_blocks(uint64_t lba, uint64_t nblocks, const void* buf);
  // fsync of the SCSI node: a SYNCHRONIZE CACHE by the kernel's disk driver, since a user context
  // may not issue one itself (it has only READ_CMD | WRITE_CMD, spec §4.6).
  std::error_code flush();
  // Bytes [offset, offset + length) read as zeros afterwards: BLKZEROOUT on the disk node (the
  // kernel's disk driver issues WRITE SAME; a user context may not), else written zeros.
  std::error_code zero_range(uint64_t offset, uint64_t length);
  // In a forked child: a context belongs to the process that attached it (spec §3.0), so the child
  // attaches its own and opens the LUN again; the parent's context goes when the parent closes its
  // adapter fd.
  std::error_code reattach_in_child(std::string* why);
  const DirectLunStats& stats() const { return stats_; }
  // Whether ATTACH (or RECOVER_AFU) returned DK_CXLFLASH_CONTEXT_SQ_CMD_MODE: commands then go
  // through a submission queue in host memory instead of IOARRIN.
  bool sq_mode() const { return sq_mode_; }

  // For kernel vLUNs: the same transport on another resource handle of this context (the AFU
  // checks the vLBA against the vLUN's LXT), and the context's identity for their ioctls.
  std::error_code handle_io(uint64_t handle, uint64_t vlba, uint64_t nblocks, void* buf, bool write);
  uint64_t context_id();
  int disk_fd() const { return disk_fd_; }
  Kernel& kernel() { return kernel_; }
  // reattach_in_child without USER_DIRECT; *parent_cookie receives the inherited context's cookie
  // (the VLUN_CLONE source).
  std::error_code reattach_context_in_child(uint64_t* parent_cookie, std::string* why);

 private:
  DirectLun(Kernel& kernel, const DirectLunOptions& options) : kernel_(kernel), options_(options) {}
  std::error_code attach(std::string* why);
  std::error_code map_and_program(std::string* why);
  void start_queue();  // a fresh HostQueue over window_, in the context's submission mode
  void unmap_and_close_adapter();
  void teardown();
  std::error_code transfer(uint64_t handle, uint64_t lba, uint64_t nblocks, void* buf, bool write);
  std::error_code one_command(uint64_t handle, uint64_t lba, uint32_t nblocks, void* buf, bool write);
  bool wait_for_completion();  // HostQueue idle hook: false once the adapter has reset
  std::error_code recover(uint64_t generation);
  std::error_code verify(const sisl::sisl_ioasa& sa);
  void log(const std::string& message) const;

  Kernel& kernel_;
  DirectLunOptions options_;
  std::string path_;
  int disk_fd_ = -1;
  // Guarded by recover_mu_ (shared for I/O, exclusive to replace the context after a reset).
  std::shared_mutex recover_mu_;
  uint64_t generation_ = 0;
  int adap_fd_ = -1;
  uint64_t context_id_ = 0;
  uint16_t ctxid_ = 0;
  uint64_t mmio_size_ = 0;
  void* mmio_base_ = nullptr;
  bool adap_fd_ours_ = false;  // ATTACH returned APP_CLOSE_ADAP_FD
  bool sq_mode_ = false;       // ATTACH returned CONTEXT_SQ_CMD_MODE
  std::unique_ptr<MappedWindow> window_;
  std::unique_ptr<HostQueue> queue_;
  bool have_handle_ = false;
  uint64_t rsrc_handle_ = 0;
  uint32_t block_size_ = 0;
  uint64_t last_lba_ = 0;
  uint64_t max_xfer_ = 0;
  DirectLunStats stats_;
};

// Whether `path` is a CAPI flash LUN in superpipe mode: the ATTACH ioctl answers it. The probe's
// context is DETACHed and its adapter fd closed before returning.
bool is_capi_lun(Kernel& kernel, const std::string& path);

}  // namespace vlunfs::afu::capi
