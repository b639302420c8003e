// Namespace operations: names, directories, symlinks, hard links and attributes. Each change is
// one journal record, appended under ns_mu_ and durable before it is answered.
#include "fs/filesystem.h"

#include "fs/log.h"

#include <fcntl.h>

#include <algorithm>
#include <chrono>

namespace vlunfs::fs {

int64_t Filesystem::now_ns() const {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::error_code Filesystem::writable() const {
  return options_.read_only ? errno_error(EROFS) : std::error_code{};
}

std::error_code Filesystem::check_name(const std::string& name) const {
  if (name.size() > meta::MAX_NAME) return errno_error(ENAMETOOLONG);
  if (name.empty() || name.find('/') != std::string::npos) return errno_error(EINVAL);
  return {};
}

Result<uint64_t> Filesystem::commit(const meta::Record& record) {
  auto seq = meta_->append(record);
  if (seq) metrics_.count_journal_record();
  if (!seq && seq.error().value() == EIO) log_error("metadata journal write failed; further changes are refused");
  return seq;
}

std::error_code Filesystem::durable(uint64_t seq) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code waited = meta_->wait_durable(seq);
  metrics_.record_journal_wait(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count()));
  if (auto ec = waited) {
    log_error("metadata journal flush failed: %s", ec.message().c_str());
    return ec;
  }
  return {};
}

Attr Filesystem::attr_of(const meta::Inode& inode) const {
  Attr a;
  struct stat& st = a.st;
  st.st_ino = inode.ino;
  st.st_mode = inode.mode;
  st.st_nlink = inode.nlink;
  st.st_uid = inode.uid;
  st.st_gid = inode.gid;
  st.st_size = static_cast<off_t>(inode.size);
  st.st_blksize = kPreferredIo;
  int64_t mtime = inode.mtime_ns;
  if (file_type(inode.mode) == S_IFREG) {
    auto it = vluns_.find(inode.ino);
    // Provisioned chunks: the zero chunk a thin vLUN maps for unwritten space takes no room.
    uint64_t chunks = static_cast<uint64_t>(
        std::count_if(inode.lxt.begin(), inode.lxt.end(), [&](uint64_t e) { return !maps_zero(e); }));
    if (it != vluns_.end()) {
      st.st_size = static_cast<off_t>(it->second->size.load());
      if (it->second->size_dirty) mtime = std::max(mtime, it->second->mtime_ns.load());
    }
    uint64_t bytes = chunks * geometry_.chunk_bytes();
    // Pages the kernel may hold unwritten could lie anywhere, past this size too (the writeback
    // cache's size runs ahead): never 0, and never less than the size, so that tools that take
    // few blocks for holes (cp, tar --sparse) read the file instead.
    if (it != vluns_.end() && may_hold_unseen_writes(it->second.get())) {
      bytes = std::max({bytes, static_cast<uint64_t>(st.st_size), uint64_t{geometry_.block_size}});
    }
    st.st_blocks = static_cast<blkcnt_t>((bytes + 511) / 512);
  } else if (file_type(inode.mode) == S_IFLNK) {
    st.st_size = static_cast<off_t>(inode.symlink.size());
  } else if (meta::is_special_file(inode.mode)) {
    st.st_size = 0;
    st.st_blocks = 0;
    st.st_rdev = static_cast<dev_t>(inode.rdev);
  } else {
    st.st_size = 4096;
    st.st_blocks = 0;
  }
  auto to_ts = [](int64_t ns) {
    struct timespec ts;
    ts.tv_sec = ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    return ts;
  };
  st.st_atim = to_ts(inode.atime_ns);
  st.st_mtim = to_ts(mtime);
  st.st_ctim = to_ts(std::max(inode.ctime_ns, mtime));
  return a;
}

Result<Attr> Filesystem::lookup(uint64_t parent, const std::string& name) {
  if (name.size() > meta::MAX_NAME) return errno_error(ENAMETOOLONG);
  std::shared_lock lock(ns_mu_);
  const meta::Inode* dir = meta_->ns().find(parent);
  if (!dir) return errno_error(ENOENT);
  if (file_type(dir->mode) != S_IFDIR) return errno_error(ENOTDIR);
  auto it = dir->entries.find(name);
  if (it == dir->entries.end()) return errno_error(ENOENT);
  const meta::Inode* child = meta_->ns().find(it->second);
  if (!child) return errno_error(EIO);
  return attr_of(*child);
}

Result<Attr> Filesystem::getattr(uint64_t ino) {
  std::shared_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(ino);
  if (!inode) return errno_error(ENOENT);
  return attr_of(*inode);
}

Result<Attr> Filesystem::make_node(uint64_t parent, const std::string& name, uint32_t mode,
                                   const Credentials& who, const std::string& symlink, uint64_t rdev) {
  if (auto ec = writable()) return ec;
  if (auto ec = check_name(name)) return ec;
  std::unique_lock lock(ns_mu_);
  meta::Namespace& ns = meta_->ns();
  const meta::Inode* dir = ns.find(parent);
  if (!dir) return errno_error(ENOENT);
  if (file_type(dir->mode) != S_IFDIR) return errno_error(ENOTDIR);
  if (dir->entries.count(name)) return errno_error(EEXIST);
  meta::CreateRecord rec;
  rec.parent = parent;
  rec.name = name;
  rec.ino = ns.next_ino;
  rec.mode = mode;
  rec.uid = who.uid;
  // Set-group-ID directories pass their group on (as ext4 does).
  rec.gid = (dir->mode & S_ISGID) ? dir->gid : who.gid;
  if ((dir->mode & S_ISGID) && file_type(mode) == S_IFDIR) rec.mode |= S_ISGID;
  rec.time_ns = now_ns();
  rec.symlink = symlink;
  rec.rdev = rdev;
  FileVlun* file = nullptr;
  if (file_type(mode) == S_IFREG) {
    auto created = new_vlun_locked(rec.ino, 0, {}, true);
    if (!created) return created.error();
    file = created.value();
  }
  auto seq = commit(rec);
  if (!seq) {
    if (file) (void)release_vlun_locked(rec.ino);
    return seq.error();
  }
  if (file && options_.thin) {
    meta::SetAttrRecord flags;
    flags.ino = rec.ino;
    flags.valid = meta::SET_FLAGS;
    flags.flags = meta::INODE_FLAG_THIN;
    if (auto s2 = commit(flags)) {
      seq = s2;
      file->thin = true;
    }
  }
  Attr attr = attr_of(*ns.find(rec.ino));
  lock.unlock();
  if (auto ec = durable(seq.value())) return ec;
  return attr;
}

Result<Attr> Filesystem::create(uint64_t parent, const std::string& name, uint32_t mode, const Credentials& who) {
  if (file_type(mode) != S_IFREG) return errno_error(EPERM);  // mknod() makes the others
  return make_node(parent, name, mode, who, "");
}

Result<Attr> Filesystem::mknod(uint64_t parent, const std::string& name, uint32_t mode, uint64_t rdev,
                               const Credentials& who) {
  if (file_type(mode) == S_IFREG) return make_node(parent, name, mode, who, "");
  if (!meta::is_special_file(mode)) return errno_error(EINVAL);
  const bool device = file_type(mode) == S_IFCHR || file_type(mode) == S_IFBLK;
  return make_node(parent, name, mode, who, "", device ? rdev : 0);
}

Result<Attr> Filesystem::mkdir(uint64_t parent, const std::string& name, uint32_t mode, const Credentials& who) {
  return make_node(parent, name, S_IFDIR | (mode & 07777), who, "");
}

Result<Attr> Filesystem::symlink(uint64_t parent, const std::string& name, const std::string& target,
                                 const Credentials& who) {
  if (target.size() > meta::MAX_SYMLINK) return errno_error(ENAMETOOLONG);
  return make_node(parent, name, S_IFLNK | 0777, who, target);
}

Result<Attr> Filesystem::link(uint64_t ino, uint64_t new_parent, const std::string& new_name) {
  if (auto ec = writable()) return ec;
  if (auto ec = check_name(new_name)) return ec;
  std::unique_lock lock(ns_mu_);
  auto seq = commit(meta::LinkRecord{ino, new_parent, new_name, now_ns()});
  if (!seq) return seq.error();
  Attr attr = attr_of(*meta_->ns().find(ino));
  lock.unlock();
  if (auto ec = durable(seq.value())) return ec;
  return attr;
}

Result<std::string> Filesystem::readlink(uint64_t ino) {
  std::shared_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(ino);
  if (!inode) return errno_error(ENOENT);
  if (file_type(inode->mode) != S_IFLNK) return errno_error(EINVAL);
  return inode->symlink;
}

// unlink and rmdir: one name goes; an inode left with none and not open is freed.
std::error_code Filesystem::remove_name(uint64_t parent, const std::string& name, bool directory) {
  if (auto ec = writable()) return ec;
  std::unique_lock lock(ns_mu_);
  meta::Namespace& ns = meta_->ns();
  const meta::Inode* dir = ns.find(parent);
  if (!dir) return errno_error(ENOENT);
  auto it = dir->entries.find(name);
  if (it == dir->entries.end()) return errno_error(ENOENT);
  const uint64_t ino = it->second;
  const meta::Inode* child = ns.find(ino);
  const bool is_dir = child && file_type(child->mode) == S_IFDIR;
  if (is_dir != directory) return errno_error(directory ? ENOTDIR : EISDIR);
  auto seq = commit(meta::UnlinkRecord{parent, name, now_ns()});
  if (!seq) return seq.error();
  std::vector<uint64_t> seqs{seq.value()};
  const bool deferred = !directory && maybe_free_locked(ino, &seqs, /*defer=*/true);
  return finish_removal(lock, deferred ? ino : 0, seqs);
}

std::error_code Filesystem::unlink(uint64_t parent, const std::string& name) { return remove_name(parent, name, false); }

std::error_code Filesystem::rmdir(uint64_t parent, const std::string& name) { return remove_name(parent, name, true); }

std::error_code Filesystem::rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                                   const std::string& new_name, unsigned flags) {
  if (auto ec = writable()) return ec;
  if (auto ec = check_name(new_name)) return ec;
  uint32_t rflags = 0;
  if (flags & RENAME_NOREPLACE) rflags |= meta::RENAME_FLAG_NOREPLACE;
  if (flags & RENAME_EXCHANGE) rflags |= meta::RENAME_FLAG_EXCHANGE;
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE | RENAME_EXCHANGE)) return errno_error(EINVAL);
  std::unique_lock lock(ns_mu_);
  meta::Namespace& ns = meta_->ns();
  uint64_t replaced = 0;
  if (const meta::Inode* dst_dir = ns.find(new_parent)) {
    auto it = dst_dir->entries.find(new_name);
    if (it != dst_dir->entries.end()) replaced = it->second;
  }
  auto seq = commit(meta::RenameRecord{parent, name, new_parent, new_name, rflags, now_ns()});
  if (!seq) return seq.error();
  std::vector<uint64_t> seqs{seq.value()};
  const bool deferred =
      replaced && !(rflags & meta::RENAME_FLAG_EXCHANGE) && maybe_free_locked(replaced, &seqs, /*defer=*/true);
  return finish_removal(lock, deferred ? replaced : 0, seqs);
}

Result<std::vector<DirEntry>> Filesystem::readdir(uint64_t ino) {
  std::shared_lock lock(ns_mu_);
  const meta::Namespace& ns = meta_->ns();
  const meta::Inode* dir = ns.find(ino);
  if (!dir) return errno_error(ENOENT);
  if (file_type(dir->mode) != S_IFDIR) return errno_error(ENOTDIR);
  std::vector<DirEntry> out;
  out.reserve(dir->entries.size() + 2);
  out.push_back({".", ino, S_IFDIR});
  out.push_back({"..", dir->parent ? dir->parent : ino, S_IFDIR});
  for (const auto& [name, child] : dir->entries) {
    const meta::Inode* c = ns.find(child);
    out.push_back({name, child, c ? c->mode : 0});
  }
  return out;
}

Result<Attr> Filesystem::setattr(uint64_t ino, const struct stat& attr, const AttrChanges& to_set,
                                 FileVlun* open_file) {
  if (auto ec = writable()) return ec;
  const int64_t now = now_ns();
  if (to_set.size) {
    FileVlun* file = open_file;
    if (!file) {
      std::shared_lock lock(ns_mu_);
      const meta::Inode* inode = meta_->ns().find(ino);
      if (!inode) return errno_error(ENOENT);
      if (file_type(inode->mode) == S_IFDIR) return errno_error(EISDIR);
      auto it = vluns_.find(ino);
      if (it == vluns_.end()) return errno_error(EINVAL);
      file = it->second.get();
    }
    if (attr.st_size < 0) return errno_error(EINVAL);
    if (file->read_only) return errno_error(EPERM);  // a snapshot keeps its size
    std::unique_lock io(file->io_mu);
    auto r = resize_locked(file, static_cast<uint64_t>(attr.st_size), false);
    if (!r) return r.error();
    if (auto ec = durable(r.value())) return ec;
  }
  meta::SetAttrRecord rec;
  rec.ino = ino;
  if (to_set.mode) {
    rec.valid |= meta::SET_MODE;
    rec.mode = attr.st_mode;
  }
  if (to_set.uid) {
    rec.valid |= meta::SET_UID;
    rec.uid = attr.st_uid;
  }
  if (to_set.gid) {
    rec.valid |= meta::SET_GID;
    rec.gid = attr.st_gid;
  }
  auto ns_of = [](const struct timespec& ts) { return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec; };
  if (to_set.atime) {
    rec.valid |= meta::SET_ATIME;
    rec.atime_ns = to_set.atime_now ? now : ns_of(attr.st_atim);
  }
  if (to_set.mtime) {
    rec.valid |= meta::SET_MTIME;
    rec.mtime_ns = to_set.mtime_now ? now : ns_of(attr.st_mtim);
  }
  if (rec.valid != 0 || to_set.ctime) {
    rec.valid |= meta::SET_CTIME;
    rec.ctime_ns = to_set.ctime ? ns_of(attr.st_ctim) : now;
  }
  std::unique_lock lock(ns_mu_);
  const meta::Inode* inode = meta_->ns().find(ino);
  if (!inode) return errno_error(ENOENT);
  if (rec.valid & meta::SET_MODE) rec.mode = file_type(inode->mode) | (rec.mode & 07777);
  if (rec.valid & meta::SET_MTIME) {
    // An explicit mtime replaces whatever writes left pending.
    auto it = vluns_.find(ino);
    if (it != vluns_.end()) it->second->mtime_ns = rec.mtime_ns;
  }
  uint64_t seq = 0;
  if (rec.valid != 0) {
    auto s = commit(rec);
    if (!s) return s.error();
    seq = s.value();
  }
  Attr result = attr_of(*meta_->ns().find(ino));
  lock.unlock();
  if (seq) {
    if (auto ec = durable(seq)) return ec;
  }
  return result;
}

}  // namespace vlunfs::fs
