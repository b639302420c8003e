// Copy-on-write and thin vLUNs (design decision 5), with the hardware's own mechanism: a shared
// chunk is mapped without the LXT W bit in every owner, the AFU answers a WRITE with LXT_RW_PERM
// (0x15), which the vLUN client returns as a WriteFault, and the filesystem gives the writer a
// private chunk and writes again. Thin vLUNs map unwritten chunks to the zero chunk the same way.
#include "fs/filesystem.h"

#include "fs/log.h"
#include "vlunfs/sislite.h"

#include <algorithm>

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
  // The entry the write leaves behind, for the share reserve: a thick writer's break takes the
  // chunk reserved for it, anyone else's must leave the reserve covered (share_reserve.h).
  const ShareReserve::Change left{aun, false, file->thick_writable()};
  const bool needs_chunk = maps_zero(entry) || lun_->chunk_references(aun) > 1;
  if (needs_chunk) {
    const int64_t use = 1 + reserve_.preview({&left, 1}).reserved;
    if (!reserve_.allows(lun_->free_chunks(), use)) return errno_error(ENOSPC);
  }
  if (maps_zero(entry)) {
    // A thin vLUN's first write to this chunk (or a thick copy's of a thin one): a new chunk, already zero.
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
  if (shared) {
    lun_->drop_chunk(aun, false);  // the other owners keep it
    file->metrics.count_cow_break();
  }
  if (needs_chunk) reserve_.apply({&left, 1});
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
  std::vector<ShareReserve::Change> changes;
  for (uint64_t e : old) {
    if (!maps_zero(e)) lun_->drop_chunk(sisl::lxt_aun(e), true);
    changes.push_back({sisl::lxt_aun(e), false, file->thick_writable()});
    changes.push_back({lun_->zero_aun(), true, file->thick_writable()});
  }
  reserve_.apply(changes);
  lock.unlock();
  return durable(seq.value());
}

}  // namespace vlunfs::fs
