// The life of a file's vLUN: made with its inode (or at mount), opened and released by FUSE opens,
// and freed (RELEASE, then its Free record) once it has no name and no open.
#include "fs/filesystem.h"

#include "fs/log.h"

#include <algorithm>

namespace vlunfs::fs {

Result<FileVlun*> Filesystem::new_vlun_locked(uint64_t ino, uint64_t size, const std::vector<uint64_t>& lxt,
                                              bool fresh) {
  auto vlun = fresh ? lun_->create_vlun(ino) : lun_->open_vlun(ino, lxt);
  if (!vlun) return vlun.error();
  auto file = std::make_unique<FileVlun>(ino, std::move(vlun).value(), size, lxt.size());
  FileVlun* raw = file.get();
  vluns_[ino] = std::move(file);
  return raw;
}

// RELEASE: the chunks go back to the pool, zeroed when their last owner lets go.
std::error_code Filesystem::release_vlun_locked(uint64_t ino) {
  auto it = vluns_.find(ino);
  if (it == vluns_.end()) return {};
  if (auto ec = it->second->vlun->release()) return ec;
  // Its entries go: the reserves held for them (by it, or by the thick owners left) are released.
  if (const meta::Inode* inode = meta_->ns().find(ino)) {
    std::vector<ShareReserve::Change> gone;
    gone.reserve(inode->lxt.size());
    for (uint64_t e : inode->lxt) gone.push_back({sisl::lxt_aun(e), false, it->second->thick_writable()});
    reserve_.apply(gone);
  }
  metrics_.retire(it->second->metrics);
  vluns_.erase(it);
  return {};
}

// An inode with no name left and nobody holding it open is freed: RELEASE, then its record.
bool Filesystem::maybe_free_locked(uint64_t ino, std::vector<uint64_t>* seqs, bool defer) {
  const meta::Inode* inode = meta_->ns().find(ino);
  if (!inode || inode->nlink != 0) return false;
  auto it = vluns_.find(ino);
  if (it != vluns_.end()) {
    if (it->second->opens > 0) return false;  // freed at the last release
    // The name's removal must be durable before RELEASE zeroes the chunks: a crash in between
    // would leave the file in place with its data gone. (If the flush fails, the next mount frees it.)
    // A vLUN without chunks of its own (empty, or thin and never written) loses nothing to RELEASE,
    // and needs no wait.
    const bool owns_chunks =
        std::any_of(inode->lxt.begin(), inode->lxt.end(), [this](uint64_t entry) { return !maps_zero(entry); });
    if (owns_chunks && !seqs->empty()) {
      if (defer) return true;
      if (durable(seqs->back())) return false;
    }
    if (auto ec = release_vlun_locked(ino)) {
      log_error("inode %llu: RELEASE failed (%s); its chunks stay allocated until the next mount",
                static_cast<unsigned long long>(ino), ec.message().c_str());
      return false;
    }
  }
  auto seq = commit(meta::FreeRecord{ino});
  if (seq) seqs->push_back(seq.value());
  return false;
}

std::error_code Filesystem::finish_removal(std::unique_lock<std::shared_mutex>& lock, uint64_t deferred,
                                          std::vector<uint64_t>& seqs) {
  lock.unlock();
  // Other removals append and wait meanwhile, and share this flush.
  if (auto ec = durable(seqs.back())) return ec;
  if (deferred == 0) return {};
  lock.lock();
  // Checked again: nothing can give the inode a name or an open without one, but it costs nothing.
  maybe_free_locked(deferred, &seqs);
  lock.unlock();
  return durable(seqs.back());
}

Result<FileVlun*> Filesystem::open_file(uint64_t ino, bool for_write) {
  std::unique_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(ino);
  if (!inode) return errno_error(ENOENT);
  if (file_type(inode->mode) != S_IFREG) return errno_error(EISDIR);
  if (for_write && (inode->flags & meta::INODE_FLAG_READONLY)) return errno_error(EROFS);
  auto it = vluns_.find(ino);
  if (it == vluns_.end()) return errno_error(EIO);
  it->second->opens++;
  if (for_write) it->second->write_opens++;
  return it->second.get();
}

bool Filesystem::may_hold_unseen_writes(const FileVlun* file) const {
  return options_.page_cache && file->write_opens.load() > 0;
}

void Filesystem::release_file(FileVlun* file, bool for_write) {
  // Decremented only here, after the kernel has written back what the handle left in its cache
  // (at munmap, at flush, and at release with the writeback cache): nothing is unseen past it.
  if (for_write) file->write_opens--;
  uint64_t seq = 0;
  if (file->size_dirty && !options_.read_only) {
    std::unique_lock io(file->io_mu);
    (void)persist_size(file, &seq, false);
  }
  std::unique_lock lock(ns_mu_);
  file->opens--;
  std::vector<uint64_t> seqs;
  if (file->opens == 0) maybe_free_locked(file->ino, &seqs);  // frees `file` if it was an orphan
  lock.unlock();
  if (!seqs.empty()) (void)durable(seqs.back());
}

}  // namespace vlunfs::fs
