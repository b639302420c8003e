// Clones: copy_file_range shares whole chunks (reference counted, mapped read-only in every owner;
// copy_on_write.cc breaks the share at the first write), clone_file makes a file or a snapshot that
// shares every chunk, set_thin changes an empty file's kind.
#include "fs/filesystem.h"

#include "fs/log.h"
#include "fs/max_file_size.h"
#include "vlunfs/sislite.h"

#include <algorithm>
#include <sstream>

namespace vlunfs::fs {

Result<size_t> Filesystem::copy_bytes(FileVlun* src, uint64_t off_in, FileVlun* dst, uint64_t off_out,
                                      uint64_t length) {
  constexpr size_t kStep = 1u << 20;
  std::vector<std::byte> buf(kStep);
  uint64_t done = 0;
  while (done < length) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kStep, length - done));
    auto r = read(src, off_in + done, {buf.data(), n});
    if (!r) return r.error();
    if (r.value() == 0) break;
    auto w = write(dst, off_out + done, {buf.data(), r.value()});
    if (!w) return w.error();
    done += r.value();
  }
  return static_cast<size_t>(done);
}

// Shares src chunks [src_index, +count) into dst at dst_index. Both files' io_mu are held
// exclusively by the caller. Returns the journal sequence to wait for.
Result<uint64_t> Filesystem::share_chunks_locked(FileVlun* src, uint64_t src_index, FileVlun* dst,
                                                 uint64_t dst_index, uint64_t count, uint64_t dst_new_size) {
  std::unique_lock lock(ns_mu_);
  meta::Namespace& ns = meta_->ns();
  const meta::Inode* s_inode = ns.find(src->ino);
  const meta::Inode* d_inode = ns.find(dst->ino);
  if (!s_inode || !d_inode || src_index + count > s_inode->lxt.size() || dst_index > d_inode->lxt.size()) {
    return errno_error(EIO);
  }
  std::vector<uint64_t> src_old(s_inode->lxt.begin() + static_cast<std::ptrdiff_t>(src_index),
                                s_inode->lxt.begin() + static_cast<std::ptrdiff_t>(src_index + count));
  // One more owner per chunk; stop at the first chunk at the 256-owner limit (copied instead).
  uint64_t n = 0;
  for (; n < count; ++n) {
    if (maps_zero(src_old[n])) continue;
    if (!lun_->share_chunk(sisl::lxt_aun(src_old[n]))) break;
  }
  if (n == 0) return uint64_t{0};
  std::vector<uint64_t> shared(n);
  for (uint64_t i = 0; i < n; ++i) shared[i] = src_old[i] & ~sisl::LXT_PERM_WRITE;
  auto undo_refs = [&] {
    for (uint64_t i = 0; i < n; ++i) {
      if (!maps_zero(src_old[i])) lun_->drop_chunk(sisl::lxt_aun(src_old[i]), false);
    }
  };
  const uint64_t d_count = d_inode->lxt.size();
  const uint64_t overlap = dst_index < d_count ? std::min<uint64_t>(n, d_count - dst_index) : 0;
  std::vector<uint64_t> dst_old(d_inode->lxt.begin() + static_cast<std::ptrdiff_t>(dst_index),
                                d_inode->lxt.begin() + static_cast<std::ptrdiff_t>(dst_index + overlap));
  // The share reserve (share_reserve.h): the new entries, then the destination's entries they
  // replace. A share that would leave thick vLUNs unable to break it is refused, and nothing changes.
  std::vector<ShareReserve::Change> changes;
  changes.reserve(n + overlap);
  for (uint64_t i = 0; i < n; ++i) {
    changes.push_back({sisl::lxt_aun(src_old[i]), true, dst->thick_writable(), src->thick_writable()});
  }
  for (uint64_t e : dst_old) changes.push_back({sisl::lxt_aun(e), false, dst->thick_writable()});
  const ShareReserve::Effect effect = reserve_.preview(changes);
  if (!reserve_.allows(lun_->free_chunks(), effect.reserved - static_cast<int64_t>(effect.freed))) {
    undo_refs();
    return errno_error(ENOSPC);
  }
  // The source loses W first, with a heavyweight SYNC: no write to it is still in flight when
  // the destination starts to see the same chunks.
  if (auto ec = src->vlun->remap(src_index, shared)) {
    undo_refs();
    return ec;
  }
  std::error_code ec;
  if (overlap > 0) ec = dst->vlun->remap(dst_index, {shared.data(), overlap});
  if (!ec && n > overlap) {
    ec = dst->vlun->extend({shared.data() + overlap, n - overlap});
  }
  if (ec) {
    if (overlap > 0) (void)dst->vlun->remap(dst_index, dst_old);
    (void)src->vlun->remap(src_index, src_old);
    undo_refs();
    return ec;
  }
  const int64_t now = now_ns();
  meta::MapRecord src_rec;
  src_rec.ino = src->ino;
  src_rec.first_index = static_cast<uint32_t>(src_index);
  src_rec.entries = shared;
  src_rec.time_ns = s_inode->mtime_ns;
  meta::ResizeRecord dst_rec;
  dst_rec.ino = dst->ino;
  dst_rec.size = std::max<uint64_t>(dst->size, dst_new_size);
  dst_rec.lxt_count = static_cast<uint32_t>(std::max(d_count, dst_index + n));
  dst_rec.first_index = static_cast<uint32_t>(dst_index);
  dst_rec.entries = shared;
  dst_rec.time_ns = now;
  auto s1 = commit(src_rec);
  auto s2 = s1 ? commit(dst_rec) : s1;
  if (!s1 || !s2) {
    log_error("journal refused a clone of inode %llu; the clone is undone", static_cast<unsigned long long>(src->ino));
    return (!s1 ? s1 : s2).error();
  }
  for (uint64_t e : dst_old) {
    if (!maps_zero(e)) lun_->drop_chunk(sisl::lxt_aun(e), true);
  }
  reserve_.apply(changes);
  dst->chunks = dst_rec.lxt_count;
  dst->size = dst_rec.size;
  dst->size_dirty = false;
  return s2.value();
}

Result<size_t> Filesystem::copy_range(FileVlun* src, uint64_t off_in, FileVlun* dst, uint64_t off_out,
                                      uint64_t length) {
  if (auto ec = writable()) return ec;
  if (dst->read_only) return errno_error(EROFS);
  if (off_in > MAX_FILE_BYTES || off_out > MAX_FILE_BYTES || length > MAX_FILE_BYTES) {
    return errno_error(EFBIG);
  }
  {
    std::shared_lock io(src->io_mu);
    if (off_in >= src->size) return size_t{0};
    length = std::min<uint64_t>(length, src->size - off_in);
  }
  const uint64_t cb = geometry_.chunk_bytes();
  // Only chunks that line up on both sides can be shared; a copy within one file is copied.
  if (src == dst || off_in % cb != off_out % cb || length < cb) return copy_bytes(src, off_in, dst, off_out, length);
  uint64_t head = (cb - off_in % cb) % cb;
  if (head > 0) {
    auto r = copy_bytes(src, off_in, dst, off_out, head);
    if (!r) return r.error();
    if (r.value() < head) return r.value();
  }
  uint64_t done = head;
  {
    // Both files exclusively, in inode order so two crossing copies cannot deadlock.
    FileVlun* first = src->ino < dst->ino ? src : dst;
    FileVlun* second = first == src ? dst : src;
    std::unique_lock l1(first->io_mu);
    std::unique_lock l2(second->io_mu);
    const uint64_t src_size = src->size;
    uint64_t whole = (std::min(off_in + length, src_size) - (off_in + head)) / cb;
    // The source's last, partial chunk can be shared too when the copy runs to its end and the
    // destination ends there: what lies past either end reads as zeros in both.
    const uint64_t end_in = off_in + length;
    bool tail_chunk = end_in == src_size && src_size % cb != 0 && off_out + length >= dst->size &&
                      (off_in + head + whole * cb) < src_size;
    uint64_t count = whole + (tail_chunk ? 1 : 0);
    if (count > 0) {
      uint64_t src_index = (off_in + head) / cb;
      uint64_t dst_index = (off_out + head) / cb;
      if (dst_index > dst->chunks) {
        // A gap before the shared chunks: provision it as for any growth.
        auto r = resize_locked(dst, std::max<uint64_t>(dst->size, dst_index * cb), false);
        if (!r) return r.error();
        if (auto ec = durable(r.value())) return ec;
      }
      uint64_t shared_bytes = std::min(count * cb, length - head);
      auto seq = share_chunks_locked(src, src_index, dst, dst_index, count, off_out + head + shared_bytes);
      if (!seq) {
        // ENOSPC: the share reserve is not there. No fallback to copying the bytes: a copy takes
        // at least as many chunks as the share would reserve (docs/format.md, "The share reserve").
        if (head > 0) return static_cast<size_t>(head);
        return seq.error();
      }
      if (seq.value() != 0) {
        if (auto ec = durable(seq.value())) return ec;
        done += shared_bytes;
      }
    }
  }
  if (done > head && length - done < cb) {
    // Only part of a chunk is left, and not the source's end (that one is shared above): return
    // short rather than copy it. The caller asks again from here, chunk-aligned, and that call
    // shares the chunk. The kernel cuts each copy_file_range at 2 GiB - 4 KiB, so without this
    // a cp would copy all but 4 KiB of one chunk per 2 GiB, and then those 4 KiB again.
    return static_cast<size_t>(done);
  }
  if (done < length) {
    auto r = copy_bytes(src, off_in + done, dst, off_out + done, length - done);
    if (!r) return r.error();
    done += r.value();
  }
  return static_cast<size_t>(done);
}

Result<uint64_t> Filesystem::resolve_path(const std::string& path) const {
  const meta::Namespace& ns = meta_->ns();
  uint64_t ino = meta::ROOT_INO;
  std::stringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part.empty() || part == ".") continue;
    const meta::Inode* dir = ns.find(ino);
    if (!dir || (dir->mode & S_IFMT) != S_IFDIR) return errno_error(ENOTDIR);
    if (part == "..") {
      ino = dir->parent ? dir->parent : ino;
      continue;
    }
    auto it = dir->entries.find(part);
    if (it == dir->entries.end()) return errno_error(ENOENT);
    ino = it->second;
  }
  return ino;
}

std::error_code Filesystem::clone_file(const std::string& src_path, const std::string& dst_path, bool snapshot) {
  if (auto ec = writable()) return ec;
  uint64_t src_ino, parent;
  std::string name;
  uint32_t mode, uid, gid;
  {
    std::shared_lock lock(ns_mu_);
    auto s = resolve_path(src_path);
    if (!s) return s.error();
    src_ino = s.value();
    const meta::Inode* inode = meta_->ns().find(src_ino);
    if ((inode->mode & S_IFMT) != S_IFREG) return errno_error(EINVAL);
    mode = inode->mode;
    uid = inode->uid;
    gid = inode->gid;
    auto slash = dst_path.find_last_of('/');
    name = slash == std::string::npos ? dst_path : dst_path.substr(slash + 1);
    auto p = resolve_path(slash == std::string::npos ? "" : dst_path.substr(0, slash));
    if (!p) return p.error();
    parent = p.value();
  }
  auto created = create(parent, name, mode, {uid, gid});
  if (!created) return created.error();
  const uint64_t dst_ino = created.value().st.st_ino;
  auto src = open_file(src_ino);
  if (!src) return src.error();
  auto dst = open_file(dst_ino);
  if (!dst) {
    release_file(src.value());
    return dst.error();
  }
  std::error_code result;
  {
    FileVlun* s = src.value();
    FileVlun* d = dst.value();
    {
      // The clone's origin, and its kind durable before it shares a chunk: the share reserve
      // rebuilt after a crash counts the same owners as the one that allowed the share.
      std::unique_lock lock(ns_mu_);
      auto seq = commit(meta::OriginRecord{dst_ino, src_ino});
      if (seq && (snapshot || s->thin)) {
        meta::SetAttrRecord flags;
        flags.ino = dst_ino;
        flags.valid = meta::SET_FLAGS;
        flags.flags = (snapshot ? meta::INODE_FLAG_READONLY : 0) | (s->thin ? meta::INODE_FLAG_THIN : 0);
        seq = commit(flags);
        if (seq) {
          d->read_only = snapshot;
          d->thin = s->thin.load();
        }
      }
      lock.unlock();
      result = seq ? durable(seq.value()) : seq.error();
    }
    std::unique_lock ls(s->io_mu);
    std::unique_lock ld(d->io_mu);
    uint64_t count = s->chunks;
    if (!result && count > 0) {
      auto seq = share_chunks_locked(s, 0, d, 0, count, s->size);
      if (!seq) result = seq.error();
      else if (seq.value() == 0) result = errno_error(EMLINK);  // chunks at their 256-owner limit
      else result = durable(seq.value());
    }
    if (!result) {
      d->size = s->size.load();
      d->size_dirty = true;
      d->mtime_ns = now_ns();  // the size record sets mtime: the clone's, not the epoch's
      uint64_t seq = 0;
      result = persist_size(d, &seq);
    }
  }
  release_file(dst.value());
  release_file(src.value());
  if (result) (void)unlink(parent, name);
  return result;
}

std::error_code Filesystem::set_thin(const std::string& path, bool thin) {
  if (auto ec = writable()) return ec;
  std::unique_lock lock(ns_mu_);
  auto ino = resolve_path(path);
  if (!ino) return ino.error();
  const meta::Inode* inode = meta_->ns().find(ino.value());
  if ((inode->mode & S_IFMT) != S_IFREG) return errno_error(EINVAL);
  if (!inode->lxt.empty()) return errno_error(EBUSY);  // only an empty vLUN changes its kind
  meta::SetAttrRecord rec;
  rec.ino = ino.value();
  rec.valid = meta::SET_FLAGS;
  rec.flags = thin ? (inode->flags | meta::INODE_FLAG_THIN) : (inode->flags & ~meta::INODE_FLAG_THIN);
  auto seq = commit(rec);
  if (!seq) return seq.error();
  vluns_.at(ino.value())->thin = thin;
  lock.unlock();
  return durable(seq.value());
}

}  // namespace vlunfs::fs
