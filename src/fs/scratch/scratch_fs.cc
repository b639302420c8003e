// The flat in-memory namespace of the kernel-vLUN scratch mount (scratch_fs.h); the FUSE binding
// is scratch_fuse_ops.cc.
#include "fs/scratch/scratch_fs.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>  // RENAME_NOREPLACE, RENAME_EXCHANGE
#include <ctime>

namespace vlunfs::fs::scratch {

namespace {

constexpr size_t kNameMax = 255;
constexpr uint64_t kMaxFiles = uint64_t{1} << 20;  // what statfs offers: names cost only memory

timespec now() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

}  // namespace

ScratchFs::ScratchFs(std::unique_ptr<client::KernelVlunFiles> files)
    : files_(std::move(files)), root_uid_(getuid()), root_gid_(getgid()), mounted_at_(now()) {}

Result<ScratchFs::Node*> ScratchFs::node_locked(fuse_ino_t ino) {
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return errno_error(ENOENT);
  return &it->second;
}

Result<struct stat> ScratchFs::stat_locked(fuse_ino_t ino, const Node& node) {
  struct stat st {};
  st.st_ino = ino;
  st.st_mode = node.mode;
  st.st_nlink = node.name.empty() ? 0 : 1;
  st.st_uid = node.uid;
  st.st_gid = node.gid;
  if (node.file) {
    auto size = files_->size(*node.file);
    if (!size) return size.error();
    st.st_size = static_cast<off_t>(size.value());
  }
  st.st_blksize = 4096;
  st.st_blocks = (st.st_size + 511) / 512;
  st.st_atim = node.atime;
  st.st_mtim = node.mtime;
  st.st_ctim = node.ctime;
  return st;
}

Result<struct stat> ScratchFs::getattr(fuse_ino_t ino) {
  if (ino == FUSE_ROOT_ID) {
    std::lock_guard lock(mu_);
    struct stat st {};
    st.st_ino = FUSE_ROOT_ID;
    st.st_mode = S_IFDIR | 0755;
    st.st_nlink = 2;
    st.st_uid = root_uid_;
    st.st_gid = root_gid_;
    st.st_size = static_cast<off_t>(names_.size());
    st.st_blksize = 4096;
    st.st_atim = st.st_mtim = st.st_ctim = mounted_at_;
    return st;
  }
  std::lock_guard lock(mu_);
  auto node = node_locked(ino);
  if (!node) return node.error();
  return stat_locked(ino, *node.value());
}

Result<ScratchFs::Entry> ScratchFs::lookup(fuse_ino_t parent, const std::string& name) {
  if (parent != FUSE_ROOT_ID) return errno_error(ENOTDIR);
  std::lock_guard lock(mu_);
  auto it = names_.find(name);
  if (it == names_.end()) return errno_error(ENOENT);
  Node& node = nodes_.at(it->second);
  auto st = stat_locked(it->second, node);
  if (!st) return st.error();
  ++node.nlookup;
  return Entry{it->second, st.value()};
}

Result<ScratchFs::Entry> ScratchFs::create(fuse_ino_t parent, const std::string& name, mode_t mode, uid_t uid,
                                           gid_t gid) {
  if (parent != FUSE_ROOT_ID) return errno_error(ENOTDIR);
  if (name.size() > kNameMax) return errno_error(ENAMETOOLONG);
  if (!S_ISREG(mode)) return errno_error(EPERM);
  std::lock_guard lock(mu_);
  if (names_.count(name) != 0) return errno_error(EEXIST);
  auto file = files_->create();  // USER_VIRTUAL of 0 bytes: chunks come with truncate or write
  if (!file) return file.error();
  const fuse_ino_t ino = next_ino_++;
  Node node;
  node.file = file.value();
  node.name = name;
  node.mode = S_IFREG | (mode & 07777);
  node.uid = uid;
  node.gid = gid;
  node.atime = node.mtime = node.ctime = now();
  node.nlookup = 1;
  Node& added = nodes_[ino] = node;
  names_[name] = ino;
  auto st = stat_locked(ino, added);
  if (!st) return st.error();
  return Entry{ino, st.value()};
}

Result<struct stat> ScratchFs::setattr(fuse_ino_t ino, const struct stat& to, int to_set) {
  if (ino == FUSE_ROOT_ID) return errno_error(EPERM);  // the root is the mount's, as it was made
  std::lock_guard lock(mu_);
  auto found = node_locked(ino);
  if (!found) return found.error();
  Node& node = *found.value();
  const timespec t = now();
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (!node.file) return errno_error(ENOENT);
    // VLUN_RESIZE to the chunks that hold the new size; ENOSPC keeps the old size (spec §3.4).
    if (auto ec = files_->truncate(*node.file, static_cast<uint64_t>(to.st_size))) return ec;
    node.mtime = t;
  }
  if (to_set & FUSE_SET_ATTR_MODE) node.mode = S_IFREG | (to.st_mode & 07777);
  if (to_set & FUSE_SET_ATTR_UID) node.uid = to.st_uid;
  if (to_set & FUSE_SET_ATTR_GID) node.gid = to.st_gid;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    node.atime = t;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    node.atime = to.st_atim;
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    node.mtime = t;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    node.mtime = to.st_mtim;
  }
  node.ctime = (to_set & FUSE_SET_ATTR_CTIME) ? to.st_ctim : t;
  return stat_locked(ino, node);
}

std::error_code ScratchFs::open(fuse_ino_t ino) {
  std::lock_guard lock(mu_);
  auto node = node_locked(ino);
  if (!node) return node.error();
  if (!node.value()->file) return errno_error(ENOENT);
  ++node.value()->opens;
  return {};
}

std::error_code ScratchFs::release_if_unused_locked(Node& node) {
  if (!node.name.empty() || node.opens != 0 || !node.file) return {};
  const uint64_t file = *node.file;
  node.file.reset();
  return files_->remove(file);  // RELEASE: the chunks go back to the LUN
}

std::error_code ScratchFs::release(fuse_ino_t ino) {
  std::lock_guard lock(mu_);
  auto node = node_locked(ino);
  if (!node) return node.error();
  if (node.value()->opens > 0) --node.value()->opens;
  return release_if_unused_locked(*node.value());
}

std::error_code ScratchFs::unlink_locked(fuse_ino_t ino) {
  Node& node = nodes_.at(ino);
  names_.erase(node.name);
  node.name.clear();
  node.ctime = now();
  return release_if_unused_locked(node);
}

std::error_code ScratchFs::unlink(fuse_ino_t parent, const std::string& name) {
  if (parent != FUSE_ROOT_ID) return errno_error(ENOTDIR);
  std::lock_guard lock(mu_);
  auto it = names_.find(name);
  if (it == names_.end()) return errno_error(ENOENT);
  return unlink_locked(it->second);
}

std::error_code ScratchFs::rename(fuse_ino_t parent, const std::string& name, fuse_ino_t new_parent,
                                  const std::string& new_name, unsigned flags) {
  if (parent != FUSE_ROOT_ID || new_parent != FUSE_ROOT_ID) return errno_error(ENOTDIR);
  if (new_name.size() > kNameMax) return errno_error(ENAMETOOLONG);
  if (flags & ~unsigned{RENAME_NOREPLACE | RENAME_EXCHANGE}) return errno_error(EINVAL);
  std::lock_guard lock(mu_);
  auto from = names_.find(name);
  if (from == names_.end()) return errno_error(ENOENT);
  const fuse_ino_t moving = from->second;
  auto to = names_.find(new_name);
  if (to != names_.end() && to->second == moving) return {};  // rename(2): the same file, nothing to do
  if ((flags & RENAME_NOREPLACE) && to != names_.end()) return errno_error(EEXIST);
  const timespec t = now();
  if (flags & RENAME_EXCHANGE) {
    if (to == names_.end()) return errno_error(ENOENT);
    const fuse_ino_t other = to->second;
    std::swap(nodes_.at(moving).name, nodes_.at(other).name);
    names_[name] = other;
    names_[new_name] = moving;
    nodes_.at(other).ctime = t;
  } else {
    std::error_code released;
    if (to != names_.end()) released = unlink_locked(to->second);  // the replaced file goes
    names_.erase(name);
    names_[new_name] = moving;
    nodes_.at(moving).name = new_name;
    if (released) return released;
  }
  nodes_.at(moving).ctime = t;
  return {};
}

void ScratchFs::forget(fuse_ino_t ino, uint64_t nlookup) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  Node& node = it->second;
  node.nlookup = nlookup >= node.nlookup ? 0 : node.nlookup - nlookup;
  if (node.nlookup == 0 && node.name.empty()) {
    node.opens = 0;  // the kernel holds no reference any more: nothing can be open
    (void)release_if_unused_locked(node);
    nodes_.erase(it);
  }
}

Result<uint64_t> ScratchFs::vlun_of(fuse_ino_t ino) {
  std::lock_guard lock(mu_);
  auto node = node_locked(ino);
  if (!node) return node.error();
  if (!node.value()->file) return errno_error(ENOENT);
  return *node.value()->file;
}

Result<size_t> ScratchFs::read(fuse_ino_t ino, uint64_t offset, std::span<std::byte> out) {
  // Open files are not RELEASEd (release_if_unused_locked), so the vLUN outlives this read.
  auto file = vlun_of(ino);
  if (!file) return file.error();
  return files_->read(file.value(), offset, out);
}

std::error_code ScratchFs::write(fuse_ino_t ino, uint64_t offset, std::span<const std::byte> in) {
  auto file = vlun_of(ino);
  if (!file) return file.error();
  if (auto ec = files_->write(file.value(), offset, in)) return ec;  // ENOSPC: a grow the LUN cannot hold
  std::lock_guard lock(mu_);
  auto node = node_locked(ino);
  if (node) node.value()->mtime = node.value()->ctime = now();
  return {};
}

std::map<std::string, fuse_ino_t> ScratchFs::list() const {
  std::lock_guard lock(mu_);
  return names_;
}

struct statvfs ScratchFs::statfs() const {
  const auto usage = files_->chunk_usage();
  struct statvfs s {};
  // In the driver's chunks, the unit a vLUN is provisioned in: rm gives whole ones back.
  s.f_bsize = s.f_frsize = usage.chunk_bytes;
  s.f_blocks = usage.total;
  s.f_bfree = s.f_bavail = usage.total > usage.used ? usage.total - usage.used : 0;
  std::lock_guard lock(mu_);
  s.f_files = kMaxFiles;
  s.f_ffree = s.f_favail = kMaxFiles > nodes_.size() ? kMaxFiles - nodes_.size() : 0;
  s.f_namemax = kNameMax;
  return s;
}

}  // namespace vlunfs::fs::scratch
