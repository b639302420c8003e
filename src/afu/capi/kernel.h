// afu/capi/: the hardware backend over the cxlflash superpipe ioctls (spec §3) and the per-context
// MMIO window of the AFU (spec §4.6). Every system call the backend makes, and every load and store
// into the mapped MMIO window, goes through this one interface: the real implementation calls libc
// and touches the mapping; a simulated kernel (simulated_kernel.h) answers the same calls with the
// vLUN driver and the software AFU, so the unchanged hardware code runs in CI on any machine.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace vlunfs::afu::capi {

// The calls of IBM's kernel-mode block library, with libc's conventions: -1 and errno on failure,
// MAP_FAILED from mmap.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual int open(const char* path, int flags) = 0;
  virtual int close(int fd) = 0;
  virtual int ioctl(int fd, unsigned long request, void* arg) = 0;
  virtual void* mmap(size_t length, int prot, int flags, int fd, off_t offset) = 0;
  virtual int munmap(void* addr, size_t length) = 0;
  virtual int poll(pollfd* fds, nfds_t count, int timeout_ms) = 0;
  virtual ssize_t read(int fd, void* buf, size_t count) = 0;
  virtual int fsync(int fd) = 0;
  // One 64-bit MMIO access at `offset` into a window mmap returned. The registers are big-endian
  // whatever the host (spec §4); these take and return host-order values.
  virtual uint64_t mmio_read64(void* window, uint32_t offset) = 0;
  virtual void mmio_write64(void* window, uint32_t offset, uint64_t value) = 0;
};

// The machine's own kernel (libc system calls, volatile big-endian loads and stores).
Kernel& libc_kernel();

}  // namespace vlunfs::afu::capi
