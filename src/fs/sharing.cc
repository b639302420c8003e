// Copy-on-write sharing, thin vLUNs and clones (design decision 5). Sharing uses the hardware's
// own mechanism: a shared chunk is mapped without the LXT W bit in every owner, the AFU answers
// a WRITE with LXT_RW_PERM (0x15), and the filesystem gives the writer a private chunk and
// retries. Thin vLUNs map unwritten chunks to the zero chunk the same way.
#include "fs/filesystem.h"
#include "fs/log.h"
#include "vlunfs/sislite.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <sstream>

namespace vlunfs::fs {

uint64_t Filesystem::zero_entry() const { return lun_->zero_entry(); }

bool Filesystem::maps_zero(uint64_t entry) const { return lun_->maps_zero(entry); }

bool Filesystem::note_trim(FileVlun* file, uint64_t chunk, uint64_t from, uint64_t to) {
  std::lock_guard lock(file->trim_mu);
  auto& ranges = file->trimmed[chunk];
  // Merge [from, to) into the disjoint, sorted ranges.
  auto it = ranges.upper_bound(from);
  if (it != ranges.begin() && std::prev(it)->second >= from) --it;
  while (it != ranges.end() && it->first <= to) {
    from = std::min(from, it->first);
    to = std::max(to, it->second);
    it = ranges.erase(it);
  }
  ranges[from] = to;
  file->has_trims = true;
  if (ranges.size() == 1 && ranges.begin()->first == 0 && ranges.begin()->second >= geometry_.chunk_bytes()) {
    file->trimmed.erase(chunk);
    return true;
  }
  return false;
}

std::error_code Filesystem::write_blocks(FileVlun* file, uint64_t vlba, uint64_t nblocks, std::byte* buf,
                                         std::shared_lock<std::shared_mutex>& shared,
                                         std::unique_lock<std::shared_mutex>& exclusive) {
  const uint32_t bs = geometry_.block_size;
  if (file->has_trims) {
    // Written chunks are no longer (partly) punched.
    std::lock_guard lock(file->trim_mu);
    const unsigned per_chunk = geometry_.chunk_shift;
    for (uint64_t c = vlba >> per_chunk; c <= (vlba + nblocks - 1) >> per_chunk; ++c) file->trimmed.erase(c);
    file->has_trims = !file->trimmed.empty();
  }
  for (;;) {
    auto written = file->vlun->write(vlba, nblocks, buf);
    if (!written) return written.error();
    if (!written.value()) return {};
    const uint64_t fault = written.value()->vlba;
    if (file->read_only) return errno_error(EROFS);
    if (!exclusive.owns_lock()) {
      // Breaking a share changes the file's map: no other I/O of the file may run meanwhile.
      shared.unlock();
      exclusive.lock();
    }
    if (auto e = make_writable(file, fault >> geometry_.chunk_shift)) return e;
    // Blocks before the fault were written; carry on from it.
    buf += (fault - vlba) * bs;
    nblocks -= fault - vlba;
    vlba = fault;
  }
}

std::error_code Filesystem::make_writable(FileVlun* file, uint64_t index) {
  std::unique_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(file->ino);
  if (!inode || index >= inode->lxt.size()) return errno_error(EIO);
  const uint64_t entry = inode->lxt[index];
  if (entry & sisl::LXT_PERM_WRITE) return {};  // someone else already did it
  const uint64_t aun = sisl::lxt_aun(entry);
  uint64_t fresh = 0;
  bool allocated = false, shared = false;
  if (maps_zero(entry)) {
    // A thin vLUN's first write to this chunk: a new chunk, already zero.
    auto a = lun_->alloc_chunk();
    if (!a) return a.error();
    fresh = a.value();
    allocated = true;
  } else if (lun_->chunk_references(aun) <= 1) {
    fresh = aun;  // the last owner of a once-shared chunk: it may simply write again
  } else {
    auto a = lun_->alloc_chunk();
    if (!a) return a.error();
    fresh = a.value();
    allocated = shared = true;
    if (auto ec = lun_->copy_chunk(aun, fresh)) {
      lun_->drop_chunk(fresh, true);
      log_error("inode %llu: copy of shared chunk %llu failed: %s", static_cast<unsigned long long>(file->ino),
                static_cast<unsigned long long>(aun), ec.message().c_str());
      return errno_error(EIO);
    }
  }
  const uint64_t writable = lun_->lxt_entry(fresh, true);
  if (auto ec = file->vlun->remap(index, {&writable, 1})) {
    if (allocated) lun_->drop_chunk(fresh, true);
    return ec;
  }
  meta::MapRecord rec;
  rec.ino = file->ino;
  rec.first_index = static_cast<uint32_t>(index);
  rec.entries = {writable};
  rec.time_ns = inode->mtime_ns;
  auto seq = commit(rec);
  if (!seq) {
    (void)file->vlun->remap(index, {&entry, 1});
    if (allocated) lun_->drop_chunk(fresh, true);
    return seq.error();
  }
  if (shared) lun_->drop_chunk(aun, false);  // the other owners keep it
  lock.unlock();
  return durable(seq.value());
}

std::error_code Filesystem::punch_chunks(FileVlun* file, uint64_t first, uint64_t count) {
  std::unique_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(file->ino);
  if (!inode || first + count > inode->lxt.size()) return errno_error(EIO);
  std::vector<uint64_t> old(inode->lxt.begin() + static_cast<std::ptrdiff_t>(first),
                            inode->lxt.begin() + static_cast<std::ptrdiff_t>(first + count));
  std::vector<uint64_t> zeros(count, zero_entry());
  if (auto ec = file->vlun->remap(first, zeros)) return ec;
  meta::MapRecord rec;
  rec.ino = file->ino;
  rec.first_index = static_cast<uint32_t>(first);
  rec.entries = zeros;
  rec.time_ns = now_ns();
  auto seq = commit(rec);
  if (!seq) {
    (void)file->vlun->remap(first, old);
    return seq.error();
  }
  for (uint64_t e : old) {
    if (!maps_zero(e)) lun_->drop_chunk(sisl::lxt_aun(e), true);
  }
  lock.unlock();
  return durable(seq.value());
}

// ---------------------------------------------------------------------------------------------
// copy_file_range and clones

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
  // The source loses W first, with a heavyweight SYNC: no write to it is still in flight when
  // the destination starts to see the same chunks.
  if (auto ec = src->vlun->remap(src_index, shared)) {
    undo_refs();
    return ec;
  }
  const uint64_t d_count = d_inode->lxt.size();
  const uint64_t overlap = dst_index < d_count ? std::min<uint64_t>(n, d_count - dst_index) : 0;
  std::vector<uint64_t> dst_old(d_inode->lxt.begin() + static_cast<std::ptrdiff_t>(dst_index),
                                d_inode->lxt.begin() + static_cast<std::ptrdiff_t>(dst_index + overlap));
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
  dst->chunks = dst_rec.lxt_count;
  dst->size = dst_rec.size;
  dst->size_dirty = false;
  return s2.value();
}

Result<size_t> Filesystem::copy_range(FileVlun* src, uint64_t off_in, FileVlun* dst, uint64_t off_out,
                                      uint64_t length) {
  if (auto ec = writable()) return ec;
  if (dst->read_only) return errno_error(EROFS);
  if (off_in > (uint64_t{1} << 62) || off_out > (uint64_t{1} << 62) || length > (uint64_t{1} << 62)) {
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
      if (!seq) return seq.error();
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
    if (s->thin) d->thin = true;
    std::unique_lock ls(s->io_mu);
    std::unique_lock ld(d->io_mu);
    uint64_t count = s->chunks;
    if (count > 0) {
      auto seq = share_chunks_locked(s, 0, d, 0, count, s->size);
      if (!seq) result = seq.error();
      else if (seq.value() == 0) result = errno_error(EMLINK);  // chunks at their 256-owner limit
      else result = durable(seq.value());
    }
    if (!result) {
      d->size = s->size.load();
      d->size_dirty = true;
      uint64_t seq = 0;
      result = persist_size(d, &seq);
    }
    if (!result && (snapshot || s->thin)) {
      std::unique_lock lock(ns_mu_);
      meta::SetAttrRecord flags;
      flags.ino = dst_ino;
      flags.valid = meta::SET_FLAGS;
      flags.flags = (snapshot ? meta::INODE_FLAG_READONLY : 0) | (s->thin ? meta::INODE_FLAG_THIN : 0);
      auto seq = commit(flags);
      if (!seq) {
        result = seq.error();
      } else {
        d->read_only = snapshot;
        lock.unlock();
        result = durable(seq.value());
      }
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

// ---------------------------------------------------------------------------------------------
// Fork-safe contexts (spec §6, pitfall 21)

std::error_code Filesystem::adopt_parent_contexts(std::string* why) {
  std::unique_lock lock(ns_mu_);
  const pid_t parent = getppid();
  if (auto ec = lun_->adopt_parent_contexts(why)) return ec;
  log_info("cloned %zu AFU context(s) from the parent process %d", lun_->context_count(), static_cast<int>(parent));
  return {};
}

}  // namespace vlunfs::fs
