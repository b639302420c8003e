// store/: I/O on a descriptor opened with O_DIRECT (FileStoreOptions::direct), where the kernel
// takes only transfers whose offset, length and memory are aligned. Internal to the file store;
// declared here so its unit test can reach it.
#pragma once

#include "vlunfs/error.h"

#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <span>

namespace vlunfs::store {

// What the kernel requires of an O_DIRECT transfer on one file: the offset and the length are
// multiples of `offset`, the buffer's address a multiple of `memory` (both powers of two).
struct DirectIoAlignment {
  uint32_t offset = 4096;
  uint32_t memory = 4096;
};

// Asks the kernel (statx STATX_DIOALIGN, Linux 6.1). Without an answer (older kernels, tmpfs):
// the device's logical block size for a block device, else 4096, which every filesystem that
// takes O_DIRECT accepts.
DirectIoAlignment direct_io_alignment(int fd, bool is_device, uint32_t logical_block_size);

// Positioned reads and writes of any offset, length and buffer on an O_DIRECT descriptor. Aligned
// transfers go straight to the kernel. The others go through a per-thread bounce buffer aligned
// to the page: reads read the aligned blocks around the range and copy the range out; writes whose
// edges fall inside a block read those blocks first and write them back patched
// (read-modify-write). A read-modify-write holds `rmw_mu_` exclusively and every other write
// holds it shared, so no write to a block can land between the read and the write back and be
// undone by it. Safe to call from many threads at once.
class DirectIo {
 public:
  DirectIo(int fd, DirectIoAlignment alignment) : fd_(fd), alignment_(alignment) {}
  DirectIo(const DirectIo&) = delete;
  DirectIo& operator=(const DirectIo&) = delete;

  std::error_code read(uint64_t offset, std::span<std::byte> out);
  std::error_code write(uint64_t offset, std::span<const std::byte> data);
  DirectIoAlignment alignment() const { return alignment_; }

 private:
  bool aligned(uint64_t offset, size_t length, const void* memory) const;

  const int fd_;
  const DirectIoAlignment alignment_;
  std::shared_mutex rmw_mu_;  // exclusive: a read-modify-write; shared: any other write
};

}  // namespace vlunfs::store
