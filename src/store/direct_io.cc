// O_DIRECT transfers of any shape (direct_io.h).
#include "store/direct_io.h"

#include "store/positioned_io.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace vlunfs::store {

namespace {

// The most a bounce buffer holds: a FUSE request's largest write (max_write, 1 MiB) in one
// transfer. Larger unaligned I/O (a checkpoint image) goes through it in pieces.
constexpr size_t kBounceBytes = size_t{1} << 20;
constexpr size_t kBounceAlignment = 4096;

bool power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

// One per thread, grown on first need up to kBounceBytes and kept, as the daemon's read buffer
// is: an O_DIRECT write from a FUSE request buffer (whose data starts 80 bytes into it) comes
// here every time.
std::byte* bounce_buffer() {
  struct Freed {
    void operator()(std::byte* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<std::byte, Freed> buffer(
      static_cast<std::byte*>(std::aligned_alloc(kBounceAlignment, kBounceBytes)));
  return buffer.get();
}

}  // namespace

DirectIoAlignment direct_io_alignment(int fd, bool is_device, uint32_t logical_block_size) {
  struct statx stx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN) != 0 &&
      power_of_two(stx.stx_dio_offset_align) && power_of_two(stx.stx_dio_mem_align) &&
      stx.stx_dio_offset_align <= kBounceAlignment && stx.stx_dio_mem_align <= kBounceAlignment) {
    return {stx.stx_dio_offset_align, stx.stx_dio_mem_align};
  }
  if (is_device) return {logical_block_size, logical_block_size};
  return {};
}

namespace {

// The next piece of an unaligned transfer at `offset` with `remaining` bytes to go: the aligned
// blocks around it, at most a bounce buffer's worth.
struct BouncePiece {
  uint64_t block_start;  // where the aligned transfer starts
  size_t skip;           // bytes of the first block before the caller's range
  size_t length;         // bytes of the caller's range in this piece
  size_t span;           // bytes transferred: skip + length rounded up to whole blocks
};

BouncePiece next_piece(uint64_t offset, size_t remaining, uint64_t alignment) {
  BouncePiece p;
  p.block_start = offset / alignment * alignment;
  p.skip = static_cast<size_t>(offset - p.block_start);
  p.length = std::min(remaining, kBounceBytes - p.skip);
  p.span = static_cast<size_t>((p.skip + p.length + alignment - 1) / alignment * alignment);
  return p;
}

}  // namespace

bool DirectIo::aligned(uint64_t offset, size_t length, const void* memory) const {
  return offset % alignment_.offset == 0 && length % alignment_.offset == 0 &&
         reinterpret_cast<uintptr_t>(memory) % alignment_.memory == 0;
}

std::error_code DirectIo::read(uint64_t offset, std::span<std::byte> out) {
  if (aligned(offset, out.size(), out.data())) return pread_fully(fd_, offset, out);
  const uint64_t a = alignment_.offset;
  std::byte* bounce = bounce_buffer();
  if (bounce == nullptr) return errno_error(ENOMEM);
  while (!out.empty()) {
    const BouncePiece p = next_piece(offset, out.size(), a);
    if (auto ec = pread_fully(fd_, p.block_start, {bounce, p.span})) return ec;
    std::memcpy(out.data(), bounce + p.skip, p.length);
    out = out.subspan(p.length);
    offset += p.length;
  }
  return {};
}

std::error_code DirectIo::write(uint64_t offset, std::span<const std::byte> data) {
  const uint64_t a = alignment_.offset;
  const bool partial_blocks = offset % a != 0 || data.size() % a != 0;
  std::shared_lock shared(rmw_mu_, std::defer_lock);
  std::unique_lock exclusive(rmw_mu_, std::defer_lock);
  if (partial_blocks) {
    exclusive.lock();
  } else {
    shared.lock();
    if (aligned(offset, data.size(), data.data())) return pwrite_fully(fd_, offset, data);
  }
  std::byte* bounce = bounce_buffer();
  if (bounce == nullptr) return errno_error(ENOMEM);
  const size_t block = static_cast<size_t>(a);
  while (!data.empty()) {
    const BouncePiece p = next_piece(offset, data.size(), a);
    // The bytes of the first and last block that this write does not cover keep what they hold.
    if (p.skip != 0) {
      if (auto ec = pread_fully(fd_, p.block_start, {bounce, block})) return ec;
    }
    if ((p.skip + p.length) % block != 0 && (p.span > block || p.skip == 0)) {
      if (auto ec = pread_fully(fd_, p.block_start + p.span - block, {bounce + p.span - block, block})) return ec;
    }
    std::memcpy(bounce + p.skip, data.data(), p.length);
    if (auto ec = pwrite_fully(fd_, p.block_start, {bounce, p.span})) return ec;
    data = data.subspan(p.length);
    offset += p.length;
  }
  return {};
}

}  // namespace vlunfs::store
