// The kernel-mode superpipe sequence of IBM's capiflash block library, over the Kernel interface.
#include "afu/capi/direct_lun.h"

#include "afu/capi/ioasa_policy.h"
#include "vlunfs/cxlflash_ioctl.h"

#include <fcntl.h>
#include <misc/cxl.h>
#include <linux/fs.h>
#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace vlunfs::afu::capi {

using namespace vlunfs::sisl;

namespace {

constexpr uint64_t kAllOnes = ~uint64_t{0};
constexpr uint64_t kNumInterrupts = 4;          // SISLite LISNs: sync error, RRQ updated, async error
constexpr uint8_t kMsiSyncError = 1;            // SISL_MSI_SYNC_ERROR: intr_status interrupts
constexpr uint8_t kMsiRrqUpdated = 2;           // SISL_MSI_RRQ_UPDATED, raised after each RRQ entry
constexpr uint64_t kEndianBigHost = 0x8000000000000080ULL;  // spec §4.6 endian_ctrl
constexpr uint64_t kIntrUnmasked = 0x1F;        // spec §4.6: the intr_status bits left unmasked

std::string errno_text(int e) { return std::strerror(e); }

std::string hex(uint64_t v) {
  char text[32];
  std::snprintf(text, sizeof text, "%llx", static_cast<unsigned long long>(v));
  return text;
}

}  // namespace

void DirectLun::log(const std::string& message) const {
  if (options_.log) options_.log(path_ + ": " + message);
}

Result<std::unique_ptr<DirectLun>> DirectLun::open_context(Kernel& kernel, const std::string& path,
                                                           const DirectLunOptions& options, std::string* why) {
  std::unique_ptr<DirectLun> lun(new DirectLun(kernel, options));
  lun->path_ = path;
  lun->disk_fd_ = kernel.open(path.c_str(), (options.read_only ? O_RDONLY : O_RDWR) | O_NONBLOCK);
  if (lun->disk_fd_ < 0) {
    const int e = errno;
    *why = path + ": " + errno_text(e) + (e == EACCES ? " (the SCSI node needs read-write access: see docs/hardware.md)" : "");
    return errno_error(e);
  }
  if (auto ec = lun->attach(why)) return ec;  // the destructor detaches what was attached
  if (auto ec = lun->map_and_program(why)) return ec;
  return lun;
}

Result<std::unique_ptr<DirectLun>> DirectLun::open(Kernel& kernel, const std::string& path,
                                                   const DirectLunOptions& options, std::string* why) {
  auto opened = open_context(kernel, path, options, why);
  if (!opened) return opened.error();
  std::unique_ptr<DirectLun> lun = std::move(opened).value();
  dk_cxlflash_udirect u{};
  u.context_id = lun->context_id_;
  if (kernel.ioctl(lun->disk_fd_, DK_CXLFLASH_USER_DIRECT, &u) != 0) {
    const int e = errno;
    *why = path + ": DK_CXLFLASH_USER_DIRECT failed: " + errno_text(e) +
           (e == EINVAL ? " (is the LUN in use as virtual LUNs by another program?)" : "");
    return errno_error(e);
  }
  lun->have_handle_ = true;
  lun->rsrc_handle_ = u.rsrc_handle;
  lun->last_lba_ = u.last_lba;
  return lun;
}

std::error_code DirectLun::attach(std::string* why) {
  dk_cxlflash_attach a{};
  a.hdr.flags = options_.read_only ? O_RDONLY : O_RDWR;  // spec §3.1: perms = (flags + 1) & 3
  a.num_interrupts = kNumInterrupts;
  if (kernel_.ioctl(disk_fd_, DK_CXLFLASH_ATTACH, &a) != 0) {
    const int e = errno;
    *why = path_ + ": DK_CXLFLASH_ATTACH failed: " + errno_text(e) +
           (e == EINVAL || e == ENOTTY ? " (not a CAPI flash LUN in superpipe mode; see docs/hardware.md)" : "");
    return errno_error(e);
  }
  context_id_ = a.context_id;
  ctxid_ = static_cast<uint16_t>(a.context_id & 0xFFFFFFFF);  // the low 32 bits are the AFU ctxid (spec §3.0)
  adap_fd_ = static_cast<int>(a.adap_fd);
  adap_fd_ours_ = a.hdr.return_flags & DK_CXLFLASH_APP_CLOSE_ADAP_FD;
  mmio_size_ = a.mmio_size;
  block_size_ = static_cast<uint32_t>(a.block_size);
  last_lba_ = a.last_lba;
  max_xfer_ = a.max_xfer ? a.max_xfer : 1;
  sq_mode_ = a.hdr.return_flags & DK_CXLFLASH_CONTEXT_SQ_CMD_MODE;
  if (mmio_size_ < SISL_HOST_MMIO_SIZE || block_size_ == 0) {
    *why = path_ + ": ATTACH returned an MMIO size of " + std::to_string(mmio_size_) + " and block size " +
           std::to_string(block_size_) + "; not a SISLite AFU";
    return errno_error(ENODEV);
  }
  return {};
}

std::error_code DirectLun::map_and_program(std::string* why) {
  void* base = kernel_.mmap(mmio_size_, PROT_READ | PROT_WRITE, MAP_SHARED, adap_fd_, 0);
  if (base == MAP_FAILED) {
    const int e = errno;
    *why = path_ + ": mmap of the adapter fd failed: " + errno_text(e);
    return errno_error(e);
  }
  mmio_base_ = base;
  window_ = std::make_unique<MappedWindow>(kernel_, base);
  // Spec §4.6: tell the AFU the host's byte order, unmask the context's interrupts, route
  // intr_status interrupts to the sync-error LISN; the HostQueue then programs the RRQ.
  window_->write64(SISL_HOST_ENDIAN_CTRL, std::endian::native == std::endian::big ? kEndianBigHost : 0);
  window_->write64(SISL_HOST_INTR_MASK, ~kIntrUnmasked);
  window_->write64(SISL_HOST_CTX_CTRL, kMsiSyncError);
  if (window_->read64(SISL_HOST_CMD_ROOM) == kAllOnes) {
    *why = path_ + ": the adapter's MMIO reads all ones (it is resetting); try again";
    return errno_error(EAGAIN);
  }
  start_queue();
  return {};
}

void DirectLun::start_queue() {
  queue_.reset();  // the old queue clears its ring registers before the new one programs them
  queue_ = std::make_unique<HostQueue>(*window_, options_.rrq_entries,
                                       sq_mode_ ? std::max(options_.sq_entries, 2u) : HostQueue::kIoarrinMode);
}

void DirectLun::unmap_and_close_adapter() {
  queue_.reset();
  window_.reset();
  if (mmio_base_) kernel_.munmap(mmio_base_, mmio_size_);
  mmio_base_ = nullptr;
  // Older drivers close the fd themselves; only APP_CLOSE_ADAP_FD makes it ours (spec §3.6).
  if (adap_fd_ >= 0 && adap_fd_ours_) kernel_.close(adap_fd_);
  adap_fd_ = -1;
}

void DirectLun::teardown() {
  queue_.reset();
  if (have_handle_) {
    dk_cxlflash_release r{};
    r.context_id = context_id_;
    r.rsrc_handle = rsrc_handle_;
    if (kernel_.ioctl(disk_fd_, DK_CXLFLASH_RELEASE, &r) != 0) log("DK_CXLFLASH_RELEASE failed: " + errno_text(errno));
    have_handle_ = false;
  }
  if (context_id_ != 0 || adap_fd_ >= 0) {
    dk_cxlflash_detach d{};
    d.context_id = context_id_;
    if (kernel_.ioctl(disk_fd_, DK_CXLFLASH_DETACH, &d) != 0) log("DK_CXLFLASH_DETACH failed: " + errno_text(errno));
    context_id_ = 0;
  }
  unmap_and_close_adapter();
}

DirectLun::~DirectLun() {
  teardown();
  if (disk_fd_ >= 0) kernel_.close(disk_fd_);
}

bool DirectLun::wait_for_completion() {
  // Sleep on the adapter fd: the AFU raises SISL_MSI_RRQ_UPDATED after posting an RRQ entry and the
  // kernel delivers it as a struct cxl_event. Error events are logged; the IOASA decides the outcome.
  pollfd p{adap_fd_, POLLIN, 0};
  if (kernel_.poll(&p, 1, 1) > 0 && (p.revents & POLLIN)) {
    alignas(8) char buf[4096];
    ssize_t n = kernel_.read(adap_fd_, buf, sizeof buf);
    for (ssize_t at = 0; n > 0 && at + static_cast<ssize_t>(sizeof(cxl_event_header)) <= n;) {
      cxl_event event{};
      std::memcpy(&event, buf + at, std::min<size_t>(sizeof event, static_cast<size_t>(n - at)));
      if (event.header.size == 0) break;
      at += event.header.size;
      switch (event.header.type) {
        case CXL_EVENT_AFU_INTERRUPT: stats_.interrupts++; break;
        case CXL_EVENT_DATA_STORAGE:
          stats_.error_events++;
          log("data storage fault of the AFU at address 0x" + hex(event.fault.addr));
          break;
        case CXL_EVENT_AFU_ERROR:
          stats_.error_events++;
          log("AFU error event 0x" + hex(event.afu_error.error));
          break;
        default: break;
      }
    }
  }
  // Spec §3.8: after an adapter reset every read of the context's window returns all ones.
  return window_->read64(SISL_HOST_CMD_ROOM) != kAllOnes;
}

std::error_code DirectLun::recover(uint64_t generation) {
  std::unique_lock lock(recover_mu_);
  if (generation_ != generation) return {};  // another thread recovered already
  stats_.recoveries++;
  dk_cxlflash_recover_afu r{};
  r.reason = EIO;
  r.context_id = context_id_;
  if (kernel_.ioctl(disk_fd_, DK_CXLFLASH_RECOVER_AFU, &r) != 0) {
    const int e = errno;
    log("adapter reset; DK_CXLFLASH_RECOVER_AFU failed: " + errno_text(e));
    return errno_error(e == EINVAL ? ENODEV : e);
  }
  std::string why;
  if (r.hdr.return_flags & DK_CXLFLASH_RECOVER_AFU_CONTEXT_RESET) {
    // A new hardware context over the same RHT page: the handle survives, the cookie and adapter
    // fd are new; the old mapping and fd are given up (spec §3.8).
    log("adapter reset; context recovered by DK_CXLFLASH_RECOVER_AFU");
    unmap_and_close_adapter();
    context_id_ = r.context_id;
    ctxid_ = static_cast<uint16_t>(r.context_id & 0xFFFFFFFF);
    adap_fd_ = static_cast<int>(r.adap_fd);
    adap_fd_ours_ = r.hdr.return_flags & DK_CXLFLASH_APP_CLOSE_ADAP_FD;
    sq_mode_ = r.hdr.return_flags & DK_CXLFLASH_CONTEXT_SQ_CMD_MODE;  // spec §3.8: the flag comes again
    mmio_size_ = r.mmio_size;
    if (auto ec = map_and_program(&why)) {
      log(why);
      return ec;
    }
  } else {
    // Nothing to recover: the context was not reset; start the queue afresh over the same window,
    // since a command may have been lost.
    start_queue();
  }
  generation_++;
  return {};
}

std::error_code DirectLun::verify(const sisl_ioasa& sa) {
  stats_.verifies++;
  dk_cxlflash_verify v{};
  {
    std::shared_lock lock(recover_mu_);
    v.context_id = context_id_;
  }
  v.rsrc_handle = rsrc_handle_;
  v.hint = DK_CXLFLASH_VERIFY_HINT_SENSE;
  std::memcpy(v.sense_data, sa.sense_data, DK_CXLFLASH_VERIFY_SENSE_LEN);
  if (kernel_.ioctl(disk_fd_, DK_CXLFLASH_VERIFY, &v) != 0) {
    const int e = errno;
    log("unit attention; DK_CXLFLASH_VERIFY failed: " + errno_text(e));
    return errno_error(e);
  }
  last_lba_ = v.last_lba;
  return {};
}

std::error_code DirectLun::one_command(uint64_t handle, uint64_t lba, uint32_t nblocks, void* buf, bool write) {
  Command cmd;
  auto delay = std::chrono::microseconds(50);
  unsigned requeues = 0, verifies = 0, recoveries = 0;
  for (;;) {
    bool completed;
    uint64_t generation;
    {
      std::shared_lock lock(recover_mu_);
      generation = generation_;
      cmd.rcb = sisl_ioarcb{};
      cmd.rcb.ctx_id = ctxid_;
      cmd.rcb.req_flags = static_cast<uint16_t>(SISL_REQ_FLAGS_RES_HNDL | SISL_REQ_FLAGS_TIMEOUT_SECS |
                                                (write ? SISL_REQ_FLAGS_HOST_WRITE : SISL_REQ_FLAGS_HOST_READ));
      cmd.rcb.res_hndl = static_cast<uint32_t>(handle);
      cmd.rcb.data_len = nblocks * block_size_;
      cmd.rcb.data_ea = reinterpret_cast<uint64_t>(buf);
      cmd.rcb.msi = kMsiRrqUpdated;
      cmd.rcb.timeout = 30;
      build_rw16(cmd.rcb.cdb, write, lba, nblocks);
      completed = queue_->execute(cmd, [this] { return wait_for_completion(); });
    }
    if (!completed) {
      if (++recoveries > 3) {
        log("the adapter keeps resetting; giving up on the command");
        return errno_error(EIO);
      }
      if (auto ec = recover(generation)) return ec;
      continue;
    }
    IoasaVerdict verdict = classify_ioasa(cmd.sa);
    switch (verdict.action) {
      case IoasaAction::done: return {};
      case IoasaAction::requeue:
        stats_.requeues++;
        if (++requeues > options_.max_requeues) {
          log(verdict.reason + "; still failing after " + std::to_string(requeues - 1) + " retries");
          return errno_error(EIO);
        }
        std::this_thread::sleep_for(delay);
        delay = std::min(delay * 2, std::chrono::microseconds(50000));
        continue;
      case IoasaAction::verify:
        if (++verifies > 3) {
          log(verdict.reason + " after VERIFY, again");
          return errno_error(EIO);
        }
        if (auto ec = verify(cmd.sa)) return ec;
        continue;
      case IoasaAction::fail:
        log((write ? "WRITE(16) of LBA " : "READ(16) of LBA ") + std::to_string(lba) + ": " + verdict.reason);
        return errno_error(verdict.error);
    }
  }
}

std::error_code DirectLun::transfer(uint64_t handle, uint64_t lba, uint64_t nblocks, void* buf, bool write) {
  auto* at = static_cast<char*>(buf);
  while (nblocks > 0) {
    const auto n = static_cast<uint32_t>(std::min<uint64_t>(nblocks, max_xfer_));
    if (auto ec = one_command(handle, lba, n, at, write)) return ec;
    lba += n;
    nblocks -= n;
    at += uint64_t{n} * block_size_;
  }
  return {};
}

std::error_code DirectLun::handle_io(uint64_t handle, uint64_t vlba, uint64_t nblocks, void* buf, bool write) {
  if (write && options_.read_only) return errno_error(EROFS);
  return transfer(handle, vlba, nblocks, buf, write);
}

uint64_t DirectLun::context_id() {
  std::shared_lock lock(recover_mu_);
  return context_id_;
}

std::error_code DirectLun::read_blocks(uint64_t lba, uint64_t nblocks, void* buf) {
  if (nblocks == 0) return {};
  if (lba > last_lba_ || nblocks - 1 > last_lba_ - lba) return errno_error(EINVAL);
  return transfer(rsrc_handle_, lba, nblocks, buf, false);
}

std::error_code DirectLun::write_blocks(uint64_t lba, uint64_t nblocks, const void* buf) {
  if (options_.read_only) return errno_error(EROFS);
  if (nblocks == 0) return {};
  if (lba > last_lba_ || nblocks - 1 > last_lba_ - lba) return errno_error(EINVAL);
  return transfer(rsrc_handle_, lba, nblocks, const_cast<void*>(buf), true);
}

std::error_code DirectLun::flush() {
  if (options_.read_only) return {};
  if (kernel_.fsync(disk_fd_) != 0 && errno != EINVAL && errno != EROFS) return errno_error(errno);
  return {};
}

std::error_code DirectLun::zero_range(uint64_t offset, uint64_t length) {
  if (options_.read_only) return errno_error(EROFS);
  uint64_t range[2] = {offset, length};
  if (kernel_.ioctl(disk_fd_, BLKZEROOUT, range) == 0) return {};
  // An sg node has no block layer: write the zeros through our own context.
  const uint64_t bs = block_size_;
  if (offset % bs != 0 || length % bs != 0) return errno_error(EINVAL);
  const uint64_t step_blocks = std::min<uint64_t>(max_xfer_, 256);
  std::vector<uint8_t> zeros(step_blocks * bs + 16, 0);
  void* base = zeros.data() + (16 - reinterpret_cast<uintptr_t>(zeros.data()) % 16) % 16;
  for (uint64_t lba = offset / bs, left = length / bs; left > 0;) {
    const uint64_t n = std::min(step_blocks, left);
    if (auto ec = write_blocks(lba, n, base)) return ec;
    lba += n;
    left -= n;
  }
  return {};
}

std::error_code DirectLun::reattach_context_in_child(uint64_t* parent_cookie, std::string* why) {
  std::unique_lock lock(recover_mu_);
  // The inherited context is the parent's: no ioctl of ours may name it but VLUN_CLONE's source.
  // Drop our view of it and close our copy of its adapter fd (spec §3.10: the child closes its
  // inherited copy).
  if (parent_cookie) *parent_cookie = context_id_;
  queue_.reset();
  window_.reset();
  if (mmio_base_) kernel_.munmap(mmio_base_, mmio_size_);
  mmio_base_ = nullptr;
  if (adap_fd_ >= 0) kernel_.close(adap_fd_);
  adap_fd_ = -1;
  have_handle_ = false;
  context_id_ = 0;
  if (auto ec = attach(why)) return ec;
  if (auto ec = map_and_program(why)) return ec;
  generation_++;
  return {};
}

std::error_code DirectLun::reattach_in_child(std::string* why) {
  if (auto ec = reattach_context_in_child(nullptr, why)) return ec;
  std::unique_lock lock(recover_mu_);
  dk_cxlflash_udirect u{};
  u.context_id = context_id_;
  if (kernel_.ioctl(disk_fd_, DK_CXLFLASH_USER_DIRECT, &u) != 0) {
    const int e = errno;
    *why = path_ + ": DK_CXLFLASH_USER_DIRECT in the daemon failed: " + errno_text(e);
    return errno_error(e);
  }
  have_handle_ = true;
  rsrc_handle_ = u.rsrc_handle;
  return {};
}

bool is_capi_lun(Kernel& kernel, const std::string& path) {
  const int fd = kernel.open(path.c_str(), O_RDONLY | O_NONBLOCK);
  if (fd < 0) return false;
  dk_cxlflash_attach a{};
  a.hdr.flags = O_RDONLY;
  const bool answers = kernel.ioctl(fd, DK_CXLFLASH_ATTACH, &a) == 0;
  if (answers) {
    dk_cxlflash_detach d{};
    d.context_id = a.context_id;
    (void)kernel.ioctl(fd, DK_CXLFLASH_DETACH, &d);
    if (a.hdr.return_flags & DK_CXLFLASH_APP_CLOSE_ADAP_FD) kernel.close(static_cast<int>(a.adap_fd));
  }
  kernel.close(fd);
  return answers;
}

}  // namespace vlunfs::afu::capi
