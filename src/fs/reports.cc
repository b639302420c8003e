// Reports: statfs, the pool's counts, and what `vlunctl ls` shows of every vLUN.
#include "fs/filesystem.h"

#include <algorithm>
#include <functional>
#include <map>

namespace vlunfs::fs {

struct statvfs Filesystem::statfs() {
  PoolStats p = pool_stats();
  struct statvfs s {};
  s.f_bsize = kPreferredIo;
  s.f_frsize = static_cast<unsigned long>(p.chunk_bytes);
  s.f_blocks = p.total_chunks;
  s.f_bfree = p.free_chunks;
  s.f_bavail = p.free_chunks;
  s.f_files = std::max<uint64_t>(p.inodes, 1u << 20);
  s.f_ffree = s.f_files - p.inodes;
  s.f_favail = s.f_ffree;
  s.f_namemax = meta::MAX_NAME;
  if (options_.read_only) s.f_flag |= ST_RDONLY;
  return s;
}

PoolStats Filesystem::pool_stats() {
  PoolStats p;
  p.chunk_bytes = geometry_.chunk_bytes();
  p.total_chunks = lun_->total_chunks();  // less the zero chunk, which nobody can be given
  p.free_chunks = lun_->free_chunks();
  std::shared_lock lock(ns_mu_);
  p.files = vluns_.size();
  p.inodes = meta_->ns().inodes.size();
  return p;
}

std::vector<VlunReport> Filesystem::report() {
  std::shared_lock lock(ns_mu_);
  const meta::Namespace& ns = meta_->ns();
  std::map<uint64_t, std::string> paths;
  std::function<void(uint64_t, const std::string&)> walk = [&](uint64_t dir_ino, const std::string& prefix) {
    const meta::Inode* dir = ns.find(dir_ino);
    if (!dir) return;
    for (const auto& [name, child] : dir->entries) {
      std::string path = prefix + "/" + name;
      const meta::Inode* c = ns.find(child);
      if (!c) continue;
      if (file_type(c->mode) == S_IFDIR) {
        walk(child, path);
      } else if (file_type(c->mode) == S_IFREG) {
        paths.try_emplace(child, path);
      }
    }
  };
  walk(meta::ROOT_INO, "");
  std::vector<VlunReport> out;
  for (const auto& [ino, file] : vluns_) {
    VlunReport r;
    r.ino = ino;
    auto p = paths.find(ino);
    r.path = p != paths.end() ? p->second : "(unlinked, open)";
    r.size = file->size;
    client::Mapping m = file->vlun->mapping();
    r.context_id = m.context_id;
    r.rsrc_handle = m.rsrc_handle;
    r.last_lba = m.last_lba;
    r.chunks = std::move(m.chunks);
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const VlunReport& a, const VlunReport& b) { return a.path < b.path; });
  return out;
}

}  // namespace vlunfs::fs
