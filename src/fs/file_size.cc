// File size and fallocate: resize (chunks follow the size, all or nothing), the size journaled after
// writes, zeroing byte ranges, preallocation and hole punching, SEEK_DATA/SEEK_HOLE.
#include "fs/filesystem.h"

#include "fs/bounce_buffer.h"
#include "fs/log.h"
#include "fs/max_file_size.h"
#include "vlunfs/sislite.h"

#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace vlunfs::fs {

Result<uint64_t> Filesystem::resize_locked(FileVlun* file, uint64_t new_size, bool keep_size_chunks_only) {
  const uint64_t chunk_bytes = geometry_.chunk_bytes();
  const uint64_t old_size = file->size;
  const uint64_t old_chunks = file->chunks;
  uint64_t want = keep_size_chunks_only ? std::max(old_chunks, (new_size + chunk_bytes - 1) / chunk_bytes)
                                        : (new_size + chunk_bytes - 1) / chunk_bytes;
  if (new_size > MAX_FILE_BYTES || want > meta::max_lxt_entries(geometry_)) return errno_error(EFBIG);
  // A thick vLUN owns every chunk of its size: one larger than the pool could never be (EFBIG,
  // design decision 6); ENOSPC says only that the pool lacks free chunks now.
  if (!file->thin && want > old_chunks && want > lun_->total_chunks()) return errno_error(EFBIG);
  const uint64_t final_size = keep_size_chunks_only ? old_size : new_size;
  // Bytes between the old end and the new one read as zeros, whatever the chunk held before (a
  // shrink leaves stale bytes past the end; new chunks are zero already). Zeroed and flushed
  // before the new size is journaled: no power cut may keep the size and lose the zeros.
  if (final_size > old_size && std::min(final_size, old_chunks * chunk_bytes) > old_size) {
    if (auto ec = zero_bytes(file, old_size, std::min(final_size, old_chunks * chunk_bytes) - old_size)) return ec;
    if (lun_->synchronize_cache()) return errno_error(EIO);
  }
  std::unique_lock lock(ns_mu_);
  std::vector<uint64_t> lxt;
  uint64_t committed = 0;  // a shrink's record, journaled before the chunks go
  std::vector<ShareReserve::Change> cut;  // a shrink's entries: their reserves go with them
  if (const meta::Inode* inode = meta_->ns().find(file->ino); inode && want < inode->lxt.size()) {
    for (size_t i = want; i < inode->lxt.size(); ++i) {
      cut.push_back({sisl::lxt_aun(inode->lxt[i]), false, file->thick_writable()});
    }
  }
  if (want > old_chunks && file->thin) {
    // Thin: new chunks map the zero chunk read-only; a first write allocates (make_writable).
    std::vector<uint64_t> zeros(want - old_chunks, zero_entry());
    if (auto ec = file->vlun->extend(zeros)) {
      // Published with a failed SYNC: cut them off again (zero-chunk entries free nothing).
      if (ec == std::errc::resource_unavailable_try_again) (void)file->vlun->resize(old_chunks);
      return ec;
    }
    lxt.assign(old_chunks, 0);
    lxt.insert(lxt.end(), zeros.begin(), zeros.end());
  } else if (want != old_chunks) {
    if (want < old_chunks) {
      // A shrink is durable before VLUN_RESIZE zeroes the chunks it gives back: a crash in
      // between must not leave the old size with a zeroed tail.
      auto cut = commit(meta::ResizeRecord{file->ino, final_size, static_cast<uint32_t>(want),
                                           static_cast<uint32_t>(want), {}, now_ns()});
      if (!cut) return cut.error();
      if (auto ec = durable(cut.value())) return ec;
      committed = cut.value();
    }
    // Chunks held back for thick vLUNs' share breaks are not free to grow into.
    if (want > old_chunks && !reserve_.allows(lun_->free_chunks(), static_cast<int64_t>(want - old_chunks))) {
      return errno_error(ENOSPC);
    }
    // All or nothing, undone by the vLUN itself if it cannot be had whole.
    auto table = file->vlun->resize(want);
    if (!table) {
      if (committed && file->vlun->chunks() == want) {
        // A shrink already journaled, whose SYNC failed after the driver cut the LXT and gave
        // the chunks back: the file is what the journal says, and the AFU fault is reported.
        if (!cut.empty()) reserve_.apply(cut);
        file->chunks = want;
        file->size = final_size;
        file->size_dirty = false;
      }
      return table.error();
    }
    if (!cut.empty()) reserve_.apply(cut);
    lxt = std::move(table).value();
  }
  meta::ResizeRecord rec;
  rec.ino = file->ino;
  rec.size = final_size;
  rec.lxt_count = static_cast<uint32_t>(want);
  rec.first_index = static_cast<uint32_t>(std::min(old_chunks, want));
  if (want > old_chunks) rec.entries.assign(lxt.begin() + static_cast<std::ptrdiff_t>(old_chunks), lxt.end());
  rec.time_ns = now_ns();
  if (file->size_dirty) rec.time_ns = std::max(rec.time_ns, file->mtime_ns.load());
  auto seq = committed ? Result<uint64_t>(committed) : commit(rec);
  if (!seq) {
    // The journal refused the change: give the chunks (or the thin entries) back so memory
    // matches the disk.
    if (want > old_chunks) (void)file->vlun->resize(old_chunks);
    return seq.error();
  }
  file->chunks = want;
  file->size = final_size;
  file->size_dirty = false;
  file->size_seq = seq.value();
  lock.unlock();
  return seq.value();
}

bool Filesystem::size_journaled(FileVlun* file) {
  std::shared_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(file->ino);
  return inode && inode->size == file->size;
}

std::error_code Filesystem::persist_size(FileVlun* file, uint64_t* seq_out, bool wait) {
  std::unique_lock lock(ns_mu_);
  if (!file->size_dirty) return {};
  const meta::Inode* inode = meta_->ns().find(file->ino);
  if (!inode) return {};
  meta::ResizeRecord rec;
  rec.ino = file->ino;
  rec.size = file->size;
  rec.lxt_count = static_cast<uint32_t>(inode->lxt.size());
  rec.first_index = rec.lxt_count;
  rec.time_ns = file->mtime_ns;
  auto seq = commit(rec);
  if (!seq) return seq.error();
  file->size_dirty = false;
  file->size_seq = seq.value();
  *seq_out = seq.value();
  if (!wait) file->unsynced_seq = seq.value();
  lock.unlock();
  return wait ? durable(seq.value()) : std::error_code{};
}

// Zeroes a byte range of a file (caller holds io_mu exclusively). Chunk by chunk: the zero
// chunk is zero already; a shared chunk is made private first, since WRITE SAME through the
// master bypasses the LXT permissions and would zero it for every owner.
std::error_code Filesystem::zero_bytes(FileVlun* file, uint64_t offset, uint64_t length) {
  const uint32_t bs = geometry_.block_size;
  const uint64_t chunk_bytes = geometry_.chunk_bytes();
  std::byte* block = bounce_buffer(bs);
  if (!block) return errno_error(ENOMEM);
  const uint64_t end = offset + length;
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t c = pos / chunk_bytes;
    const uint64_t piece_end = std::min(end, (c + 1) * chunk_bytes);
    uint64_t entry;
    {
      std::shared_lock lock(ns_mu_);
      const meta::Inode* inode = meta_->ns().find(file->ino);
      if (!inode || c >= inode->lxt.size()) return errno_error(EIO);
      entry = inode->lxt[c];
    }
    if (maps_zero(entry)) {
      pos = piece_end;
      continue;
    }
    if (!(entry & sisl::LXT_PERM_WRITE)) {
      if (auto ec = make_writable(file, c)) return ec;
    }
    const uint64_t first_full = (pos + bs - 1) / bs * bs;
    const uint64_t last_full = piece_end / bs * bs;
    auto partial = [&](uint64_t block_start, uint64_t from, uint64_t to) -> std::error_code {
      std::lock_guard rmw(file->rmw_mu);
      if (auto ec = file->vlun->read(block_start / bs, 1, block)) return ec;
      std::memset(block + (from - block_start), 0, to - from);
      auto written = file->vlun->write(block_start / bs, 1, block);
      if (!written) return written.error();
      // The chunk was made writable above, under io_mu: only a snapshot's would fault.
      return written.value() ? errno_error(EROFS) : std::error_code{};
    };
    if (first_full > last_full) {
      if (auto ec = partial(pos / bs * bs, pos, piece_end)) return ec;  // inside one block
    } else {
      if (pos < first_full) {
        if (auto ec = partial(first_full - bs, pos, first_full)) return ec;
      }
      if (last_full > first_full) {
        if (auto ec = file->vlun->zero(first_full / bs, (last_full - first_full) / bs)) return ec;
      }
      if (piece_end > last_full) {
        if (auto ec = partial(last_full, last_full, piece_end)) return ec;
      }
    }
    pos = piece_end;
  }
  return {};
}

std::error_code Filesystem::fallocate(FileVlun* file, int mode, uint64_t offset, uint64_t length) {
  if (auto ec = writable()) return ec;
  if (length == 0) return errno_error(EINVAL);
  if (!within_max_file_size(offset, length)) return errno_error(EFBIG);
  const uint64_t end = offset + length;
  std::unique_lock io(file->io_mu);
  if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
    const bool keep = mode & FALLOC_FL_KEEP_SIZE;
    if (!keep && end <= file->size) return {};
    if (keep && end <= file->chunks * geometry_.chunk_bytes()) return {};
    auto r = resize_locked(file, keep ? end : std::max<uint64_t>(end, file->size), keep);
    if (!r) return r.error();
    return durable(r.value());
  }
  if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) || mode == FALLOC_FL_ZERO_RANGE ||
      mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)) {
    // Thick vLUNs keep their chunks: the range is zeroed in place (WRITE SAME + UNMAP).
    uint64_t limit = (mode & FALLOC_FL_KEEP_SIZE) ? file->size.load() : end;
    if (!(mode & FALLOC_FL_KEEP_SIZE) && end > file->size) {
      if (end > file->chunks * geometry_.chunk_bytes()) {
        auto r = resize_locked(file, end, false);
        if (!r) return r.error();
        if (auto ec = durable(r.value())) return ec;
      } else {
        if (auto ec = zero_bytes(file, file->size, end - file->size)) return ec;
        file->size = end;
        file->size_dirty = true;
      }
    }
    uint64_t zend = std::min(end, limit);
    if (zend > offset && (mode & FALLOC_FL_PUNCH_HOLE) && file->thin) {
      // Thin: whole chunks of the hole go back to the pool; the edges are zeroed in place.
      const uint64_t cb = geometry_.chunk_bytes();
      uint64_t first = (offset + cb - 1) / cb;
      uint64_t last = std::min(zend / cb, file->chunks.load());
      if (zend == file->size && zend % cb != 0) last = std::min((zend + cb - 1) / cb, file->chunks.load());
      // The edges: zeroed in place, and a chunk whose punches now cover it goes back too.
      auto edge = [&](uint64_t from, uint64_t to) -> std::error_code {
        if (to <= from) return {};
        if (auto ec = zero_bytes(file, from, to - from)) return ec;
        uint64_t c = from / cb;
        if (c < file->chunks && note_trim(file, c, from - c * cb, to - c * cb)) return punch_chunks(file, c, 1);
        return {};
      };
      if (last > first) {
        if (auto ec = edge(offset, first * cb)) return ec;
        if (auto ec = punch_chunks(file, first, last - first)) return ec;
        if (auto ec = edge(last * cb, zend)) return ec;
      } else {
        // Within one or two chunks: each piece is an edge.
        for (uint64_t pos = offset; pos < zend;) {
          uint64_t piece_end = std::min(zend, (pos / cb + 1) * cb);
          if (auto ec = edge(pos, piece_end)) return ec;
          pos = piece_end;
        }
      }
      zend = offset;  // done
    }
    if (zend > offset) {
      if (auto ec = zero_bytes(file, offset, zend - offset)) return ec;
    }
    file->mtime_ns = now_ns();
    file->size_dirty = true;
    return {};
  }
  return errno_error(EOPNOTSUPP);
}

Result<uint64_t> Filesystem::lseek(FileVlun* file, uint64_t offset, int whence) {
  std::shared_lock io(file->io_mu);
  const uint64_t size = file->size;
  if (offset >= size) return errno_error(ENXIO);
  // Chunks mapped to the zero chunk (unwritten parts of a thin vLUN) are holes; so is the end.
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return errno_error(EINVAL);
  const uint64_t cb = geometry_.chunk_bytes();
  std::shared_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(file->ino);
  if (!inode) return errno_error(ENOENT);
  for (uint64_t c = offset / cb; c * cb < size; ++c) {
    bool hole = c >= inode->lxt.size() || maps_zero(inode->lxt[c]);
    if (hole == (whence == SEEK_HOLE)) return std::max(offset, c * cb);
  }
  if (whence == SEEK_HOLE) return size;
  return errno_error(ENXIO);
}

}  // namespace vlunfs::fs
