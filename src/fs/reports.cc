// Reports: statfs, the pool's counts, and what `vlunctl ls` shows of every vLUN.
#include "fs/filesystem.h"

#include <algorithm>
#include <functional>
#include <map>
#include <unordered_map>

namespace vlunfs::fs {

struct statvfs Filesystem::statfs() {
  PoolStats p = pool_stats();
  struct statvfs s {};
  s.f_bsize = kPreferredIo;
  s.f_frsize = static_cast<unsigned long>(p.chunk_bytes);
  s.f_blocks = p.total_chunks;
  // The share reserve counts as used: it is promised to thick vLUNs (share_reserve.h).
  s.f_bfree = p.free_chunks - std::min(p.free_chunks, p.reserved_chunks);
  s.f_bavail = s.f_bfree;
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
  p.mapped_chunks = p.total_chunks - std::min(p.total_chunks, p.free_chunks);
  std::shared_lock lock(ns_mu_);
  p.reserved_chunks = reserve_.reserved();
  p.shared_chunks = reserve_.shared_chunks();
  for (const auto& [ino, file] : vluns_) {
    if (!file->thin) continue;
    p.thin_bytes += file->size;
    if (const meta::Inode* inode = meta_->ns().find(ino)) {
      p.thin_unwritten_chunks += static_cast<uint64_t>(
          std::count_if(inode->lxt.begin(), inode->lxt.end(), [&](uint64_t e) { return maps_zero(e); }));
    }
  }
  p.files = vluns_.size();
  p.inodes = meta_->ns().inodes.size();
  p.device = device_path_;
  p.describe_format(geometry_);
  return p;
}

void PoolStats::describe_format(const meta::Geometry& g) {
  format_version = g.version;
  block_size = g.block_size;
  device_bytes = g.device_bytes;
  metadata_bytes = g.data_offset;
  journal_bytes = g.journal_bytes;
  checkpoint_bytes = g.checkpoint_bytes;
}

MetricsReport Filesystem::metrics_report() {
  MetricsReport m;
  m.pool = metrics_.retired();
  {
    std::shared_lock lock(ns_mu_);
    m.vluns.reserve(vluns_.size());
    for (const auto& [ino, file] : vluns_) {
      m.vluns.emplace_back(ino, file->metrics.snapshot());
      m.pool.add(m.vluns.back().second);
    }
  }
  std::sort(m.vluns.begin(), m.vluns.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  m.journal_records = metrics_.journal_records();
  m.journal_wait = metrics_.journal_wait();
  for (unsigned rc = 0; rc < 256; ++rc) {
    if (uint64_t n = metrics_.afu_commands().total(static_cast<uint8_t>(rc))) m.afu_commands.emplace_back(rc, n);
  }
  return m;
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
  // Who holds the reserve of each shared chunk: every thick owner, except that when all its owners
  // are thick one of them needs none (whoever is left last keeps the chunk); the report names the
  // lowest inode as that one, so that the per-file reserves add up to the pool's.
  struct ChunkOwners {
    uint32_t refs = 0, thick = 0;
    uint64_t lowest_thick = UINT64_MAX;
  };
  std::unordered_map<uint64_t, ChunkOwners> owners;
  for (const auto& [ino, file] : vluns_) {
    const meta::Inode* inode = ns.find(ino);
    if (!inode) continue;
    for (uint64_t e : inode->lxt) {
      if (maps_zero(e)) continue;
      ChunkOwners& o = owners[sisl::lxt_aun(e)];
      o.refs++;
      if (file->thick_writable()) {
        o.thick++;
        o.lowest_thick = std::min(o.lowest_thick, ino);
      }
    }
  }
  std::vector<VlunReport> out;
  for (const auto& [ino, file] : vluns_) {
    VlunReport r;
    r.ino = ino;
    auto p = paths.find(ino);
    r.path = p != paths.end() ? p->second : "(unlinked, open)";
    r.thin = file->thin;
    r.snapshot = file->read_only;
    if (const meta::Inode* inode = ns.find(ino)) {
      r.birth_ns = inode->btime_ns;
      r.origin = inode->origin;
      if (auto o = paths.find(inode->origin); o != paths.end()) r.origin_path = o->second;
      for (uint64_t e : inode->lxt) {
        if (maps_zero(e)) {
          if (file->thick_writable()) r.reserved++;
          continue;
        }
        r.mapped++;
        const ChunkOwners& o = owners[sisl::lxt_aun(e)];
        if (o.refs < 2) continue;
        r.shared++;
        if (file->thick_writable() && (o.thick < o.refs || ino != o.lowest_thick)) r.reserved++;
      }
    }
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
