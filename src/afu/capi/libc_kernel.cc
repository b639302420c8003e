// The real kernel: system calls straight to libc, MMIO as volatile 64-bit big-endian accesses
// (spec §4: 64-bit accesses only, registers always big-endian).
#include "afu/capi/kernel.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <bit>

namespace vlunfs::afu::capi {

namespace {

uint64_t to_big_endian(uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(v);
  return v;
}

class LibcKernel final : public Kernel {
 public:
  int open(const char* path, int flags) override { return ::open(path, flags | O_CLOEXEC); }
  int close(int fd) override { return ::close(fd); }
  int ioctl(int fd, unsigned long request, void* arg) override { return ::ioctl(fd, request, arg); }
  void* mmap(size_t length, int prot, int flags, int fd, off_t offset) override {
    return ::mmap(nullptr, length, prot, flags, fd, offset);
  }
  int munmap(void* addr, size_t length) override { return ::munmap(addr, length); }
  int poll(pollfd* fds, nfds_t count, int timeout_ms) override { return ::poll(fds, count, timeout_ms); }
  ssize_t read(int fd, void* buf, size_t count) override { return ::read(fd, buf, count); }
  int fsync(int fd) override { return ::fsync(fd); }
  uint64_t mmio_read64(void* window, uint32_t offset) override {
    auto* reg = reinterpret_cast<volatile uint64_t*>(static_cast<char*>(window) + offset);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // earlier stores (an IOARCB) reach memory first
    return to_big_endian(*reg);
  }
  void mmio_write64(void* window, uint32_t offset, uint64_t value) override {
    auto* reg = reinterpret_cast<volatile uint64_t*>(static_cast<char*>(window) + offset);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    *reg = to_big_endian(value);
  }
};

}  // namespace

Kernel& libc_kernel() {
  static LibcKernel kernel;
  return kernel;
}

}  // namespace vlunfs::afu::capi
