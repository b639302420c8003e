// The data path: reads and writes by byte offset become READ(16)/WRITE(16) by vLBA on the file's
// vLUN (partial blocks read, patched and written back), and fsync.
#include "fs/filesystem.h"

#include "fs/bounce_buffer.h"
#include "fs/log.h"
#include "fs/max_file_size.h"

#include <algorithm>
#include <cstring>

namespace vlunfs::fs {

Result<size_t> Filesystem::read(FileVlun* file, uint64_t offset, std::span<std::byte> out) {
  ScopedOp counted(file->metrics.op(Op::read));
  std::shared_lock io_lock(file->io_mu);
  const uint64_t size = file->size;
  if (offset >= size || out.empty()) {
    counted.done(0);
    return size_t{0};
  }
  const uint64_t n = std::min<uint64_t>(out.size(), size - offset);
  const uint32_t bs = geometry_.block_size;
  const uint64_t first = offset / bs;
  const uint64_t last = (offset + n + bs - 1) / bs;
  const bool direct = offset % bs == 0 && n % bs == 0 && reinterpret_cast<uintptr_t>(out.data()) % 16 == 0;
  if (direct) {
    if (auto ec = file->vlun->read(first, last - first, out.data())) return ec;
    counted.done(n);
    return static_cast<size_t>(n);
  }
  std::byte* buf = bounce_buffer((last - first) * bs);
  if (!buf) return errno_error(ENOMEM);
  if (auto ec = file->vlun->read(first, last - first, buf)) return ec;
  std::memcpy(out.data(), buf + (offset - first * bs), n);
  counted.done(n);
  return static_cast<size_t>(n);
}

Result<size_t> Filesystem::write(FileVlun* file, uint64_t offset, std::span<const std::byte> data) {
  ScopedOp counted(file->metrics.op(Op::write));
  if (auto ec = writable()) return ec;
  if (data.empty()) {
    counted.done(0);
    return size_t{0};
  }
  const uint64_t len = data.size();
  if (!within_max_file_size(offset, len)) return errno_error(EFBIG);
  const uint64_t end = offset + len;
  const uint32_t bs = geometry_.block_size;

  // A write past the end changes the size: it runs alone on the file. So does a write of partial
  // blocks: its read-modify-write must not upgrade io_mu to break a share while it holds rmw_mu,
  // since a write holding io_mu shared may be waiting for rmw_mu (a deadlock TSan found).
  const bool aligned = offset % bs == 0 && len % bs == 0;
  std::shared_lock shared(file->io_mu, std::defer_lock);
  std::unique_lock exclusive(file->io_mu, std::defer_lock);
  if (end > file->size.load() || !aligned) {
    exclusive.lock();
  } else {
    shared.lock();
    if (end > file->size.load()) {
      shared.unlock();
      exclusive.lock();
    }
  }
  if (exclusive.owns_lock() && end > file->size) {
    const uint64_t old_size = file->size;
    if (end > file->chunks * geometry_.chunk_bytes()) {
      auto r = resize_locked(file, end, false);  // zeroes [old_size, old chunk end)
      if (!r) return r.error();
      if (auto ec = durable(r.value())) return ec;
    } else {
      if (offset > old_size) {
        if (auto ec = zero_bytes(file, old_size, offset - old_size)) return ec;
      }
      file->size = end;
      file->size_dirty = true;
    }
  }

  const uint64_t first = offset / bs;
  const uint64_t last = (end + bs - 1) / bs;
  if (aligned && reinterpret_cast<uintptr_t>(data.data()) % 16 == 0) {
    // Zero copy: the AFU reads straight from the request buffer.
    if (auto ec = write_blocks(file, first, last - first, const_cast<std::byte*>(data.data()), shared, exclusive)) {
      return ec;
    }
  } else {
    std::byte* buf = bounce_buffer((last - first) * bs);
    if (!buf) return errno_error(ENOMEM);
    std::unique_lock<std::mutex> rmw;
    if (!aligned) {
      // Partial blocks at the edges: read, patch, write back, with no other edge update between.
      rmw = std::unique_lock(file->rmw_mu);
      if (offset % bs != 0) {
        if (auto ec = file->vlun->read(first, 1, buf)) return ec;
      }
      if (end % bs != 0 && (last - 1 != first || offset % bs == 0)) {
        if (auto ec = file->vlun->read(last - 1, 1, buf + (last - 1 - first) * bs)) return ec;
      }
    }
    std::memcpy(buf + (offset - first * bs), data.data(), len);
    if (auto ec = write_blocks(file, first, last - first, buf, shared, exclusive)) return ec;
  }
  file->mtime_ns = now_ns();
  file->size_dirty = true;
  counted.done(len);
  return static_cast<size_t>(len);
}

std::error_code Filesystem::fsync(FileVlun* file, bool datasync) {
  ScopedOp counted(file->metrics.op(Op::fsync));
  std::error_code ec = fsync_counted(file, datasync);
  if (!ec) counted.done(0);
  return ec;
}

std::error_code Filesystem::fsync_counted(FileVlun* file, bool datasync) {
  if (options_.read_only) return {};
  // fdatasync keeps the data and what reading it back needs: the size, not the mtime (POSIX
  // fdatasync, "synchronized I/O data integrity"). After writes inside the journaled size it
  // needs no journal record, only the device flush below.
  bool wrote_inside_size = false;
  if (file->size_dirty) {
    if (datasync && size_journaled(file)) {
      wrote_inside_size = true;
    } else {
      uint64_t seq = 0;
      std::unique_lock io(file->io_mu);
      // The journal flush is a flush of the whole device: it makes the data durable too.
      if (auto ec = persist_size(file, &seq)) return ec;
      if (seq) return {};
    }
  }
  // A size journaled at an earlier close may still sit in the journal's buffer: waiting for it
  // writes and flushes the journal, and the flush of the device makes the data durable too. If
  // another flush already took it down, that flush came after every write before the close; a
  // write since then set size_dirty (every write does, for mtime), and was either journaled above
  // or, inside the size, still needs the device flush below.
  if (uint64_t pending = file->unsynced_seq.exchange(0)) {
    if (auto ec = durable(pending)) return ec;
    if (!wrote_inside_size) return {};
  }
  // The size this fdatasync relies on may be in a record a concurrent fsync appended and has
  // not flushed yet.
  if (wrote_inside_size) {
    if (auto ec = durable(file->size_seq.load())) return ec;
  }
  if (auto ec = lun_->synchronize_cache()) {
    log_error("SYNCHRONIZE CACHE failed: %s", ec.message().c_str());
    return errno_error(EIO);
  }
  return {};
}

}  // namespace vlunfs::fs
