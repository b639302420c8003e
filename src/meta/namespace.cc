// apply(): the one function that changes a Namespace, live and at journal replay alike (meta.h).
//
// Every function here first checks everything that can fail and only then changes anything, so
// an error leaves the namespace exactly as it was. The checks never trust the namespace either:
// a directory entry naming a missing inode is reported as EIO instead of being dereferenced.

#include "vlunfs/meta/namespace.h"
#include "vlunfs/meta/record.h"

#include <sys/stat.h>

#include <cerrno>
#include <limits>
#include <new>
#include <type_traits>
#include <variant>

namespace vlunfs::meta {

Inode* Namespace::find(uint64_t ino) {
  auto it = inodes.find(ino);
  return it == inodes.end() ? nullptr : &it->second;
}

const Inode* Namespace::find(uint64_t ino) const {
  auto it = inodes.find(ino);
  return it == inodes.end() ? nullptr : &it->second;
}

Namespace make_empty_namespace(int64_t time_ns, uint32_t uid, uint32_t gid) {
  Namespace ns;
  Inode root;
  root.ino = ROOT_INO;
  root.mode = S_IFDIR | 0755;
  root.uid = uid;
  root.gid = gid;
  root.nlink = 2;
  root.atime_ns = root.mtime_ns = root.ctime_ns = time_ns;
  root.parent = ROOT_INO;  // the root's ".." is itself
  ns.inodes.emplace(ROOT_INO, std::move(root));
  ns.next_ino = ROOT_INO + 1;
  return ns;
}

namespace {

constexpr uint32_t kMaxLink = std::numeric_limits<uint32_t>::max();

std::error_code err(int e) { return errno_error(e); }

bool is_dir(const Inode& inode) { return S_ISDIR(inode.mode); }

std::error_code check_name(const std::string& name) {
  if (name.empty()) return err(EINVAL);
  if (name.size() > MAX_NAME) return err(ENAMETOOLONG);
  if (name == "." || name == "..") return err(EINVAL);
  if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos) return err(EINVAL);
  return {};
}

// The directory `ino`, or an error saying why it cannot hold names.
std::error_code find_dir(Namespace& ns, uint64_t ino, Inode** out) {
  Inode* dir = ns.find(ino);
  if (dir == nullptr) return err(ENOENT);
  if (!is_dir(*dir)) return err(ENOTDIR);
  *out = dir;
  return {};
}

// The inode that `name` in `dir` refers to; ENOENT if there is no such name, EIO if the name
// points at a missing inode (a namespace that lost its invariants).
std::error_code find_child(Namespace& ns, const Inode& dir, const std::string& name, Inode** out) {
  auto it = dir.entries.find(name);
  if (it == dir.entries.end()) return err(ENOENT);
  Inode* child = ns.find(it->second);
  if (child == nullptr) return err(EIO);
  *out = child;
  return {};
}

// True if directory `ino` is `dir` or lies below it. Walks ".." links up to the root; a walk longer
// than the number of inodes means a cycle, which only a corrupt namespace has.
std::error_code is_in_subtree(const Namespace& ns, uint64_t ino, uint64_t dir, bool* inside) {
  uint64_t cur = ino;
  for (size_t steps = 0; steps <= ns.inodes.size(); steps++) {
    if (cur == dir) {
      *inside = true;
      return {};
    }
    if (cur == ROOT_INO) {
      *inside = false;
      return {};
    }
    const Inode* inode = ns.find(cur);
    if (inode == nullptr) return err(EIO);
    cur = inode->parent;
  }
  return err(EIO);
}

void touch_dir(Inode& dir, int64_t time_ns) { dir.mtime_ns = dir.ctime_ns = time_ns; }

std::error_code apply_create(Namespace& ns, const CreateRecord& r) {
  if (auto ec = check_name(r.name)) return ec;
  Inode* parent = nullptr;
  if (auto ec = find_dir(ns, r.parent, &parent)) return ec;
  if (parent->entries.contains(r.name)) return err(EEXIST);
  if (r.ino == 0 || r.ino != ns.next_ino || ns.find(r.ino) != nullptr) return err(EINVAL);
  if (r.ino == std::numeric_limits<uint64_t>::max()) return err(EINVAL);  // next_ino would wrap
  const uint32_t type = r.mode & S_IFMT;
  if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK) return err(EINVAL);
  if (type == S_IFLNK) {
    if (r.symlink.empty()) return err(EINVAL);
    if (r.symlink.size() > MAX_SYMLINK) return err(ENAMETOOLONG);
  } else if (!r.symlink.empty()) {
    return err(EINVAL);
  }
  if (type == S_IFDIR && parent->nlink == kMaxLink) return err(EMLINK);

  Inode inode;
  inode.ino = r.ino;
  inode.mode = r.mode;
  inode.uid = r.uid;
  inode.gid = r.gid;
  inode.nlink = type == S_IFDIR ? 2 : 1;
  inode.atime_ns = inode.mtime_ns = inode.ctime_ns = inode.btime_ns = r.time_ns;
  if (type == S_IFLNK) {
    inode.symlink = r.symlink;
    inode.size = r.symlink.size();  // st_size of a symlink is the length of its target
  }
  if (type == S_IFDIR) {
    inode.parent = r.parent;
    parent->nlink++;  // the new directory's ".."
  }
  parent->entries.emplace(r.name, r.ino);
  touch_dir(*parent, r.time_ns);
  // unordered_map insertion keeps pointers to other elements valid, but `parent` is not used after.
  ns.inodes.emplace(r.ino, std::move(inode));
  ns.next_ino = r.ino + 1;
  return {};
}

std::error_code apply_link(Namespace& ns, const LinkRecord& r) {
  if (auto ec = check_name(r.name)) return ec;
  Inode* parent = nullptr;
  if (auto ec = find_dir(ns, r.parent, &parent)) return ec;
  Inode* inode = ns.find(r.ino);
  if (inode == nullptr) return err(ENOENT);
  if (is_dir(*inode)) return err(EPERM);
  // As linkat(2) does for a file that has lost its last name: it cannot get one back.
  if (inode->nlink == 0) return err(ENOENT);
  if (parent->entries.contains(r.name)) return err(EEXIST);
  if (inode->nlink == kMaxLink) return err(EMLINK);

  parent->entries.emplace(r.name, r.ino);
  touch_dir(*parent, r.time_ns);
  inode->nlink++;
  inode->ctime_ns = r.time_ns;
  return {};
}

std::error_code apply_unlink(Namespace& ns, const UnlinkRecord& r) {
  if (auto ec = check_name(r.name)) return ec;
  Inode* parent = nullptr;
  if (auto ec = find_dir(ns, r.parent, &parent)) return ec;
  Inode* target = nullptr;
  if (auto ec = find_child(ns, *parent, r.name, &target)) return ec;
  if (is_dir(*target)) {
    if (!target->entries.empty()) return err(ENOTEMPTY);
    if (parent->nlink <= 2) return err(EIO);  // it counts this child; anything less is corrupt
  } else if (target->nlink == 0) {
    return err(EIO);  // a name on an inode that counts none
  }

  parent->entries.erase(r.name);
  touch_dir(*parent, r.time_ns);
  if (is_dir(*target)) {
    parent->nlink--;
    ns.inodes.erase(target->ino);  // a directory is never an orphan: nothing can hold it open past this
  } else {
    // At nlink 0 the inode stays as an orphan until a FreeRecord: the file may still be open.
    target->nlink--;
    target->ctime_ns = r.time_ns;
  }
  return {};
}

std::error_code apply_exchange(Namespace& ns, const RenameRecord& r, Inode& src_parent, Inode& src,
                               Inode& dst_parent, Inode& dst) {
  if (&src == &dst) return {};  // two names of one inode: swapping them changes nothing
  bool inside = false;
  // Neither directory may end up inside itself.
  if (is_dir(src)) {
    if (auto ec = is_in_subtree(ns, dst_parent.ino, src.ino, &inside)) return ec;
    if (inside) return err(EINVAL);
  }
  if (is_dir(dst)) {
    if (auto ec = is_in_subtree(ns, src_parent.ino, dst.ino, &inside)) return ec;
    if (inside) return err(EINVAL);
  }
  // A directory that changes parents moves one ".." link from its old parent to its new one.
  int64_t src_parent_delta = 0, dst_parent_delta = 0;
  if (&src_parent != &dst_parent) {
    const int64_t moved_dirs_to_dst = (is_dir(src) ? 1 : 0) - (is_dir(dst) ? 1 : 0);
    dst_parent_delta = moved_dirs_to_dst;
    src_parent_delta = -moved_dirs_to_dst;
  }
  if (int64_t{src_parent.nlink} + src_parent_delta > kMaxLink ||
      int64_t{dst_parent.nlink} + dst_parent_delta > kMaxLink) {
    return err(EMLINK);
  }
  if (int64_t{src_parent.nlink} + src_parent_delta < 2 || int64_t{dst_parent.nlink} + dst_parent_delta < 2) {
    return err(EIO);
  }

  src_parent.entries[r.src_name] = dst.ino;
  dst_parent.entries[r.dst_name] = src.ino;
  src_parent.nlink = static_cast<uint32_t>(src_parent.nlink + src_parent_delta);
  dst_parent.nlink = static_cast<uint32_t>(dst_parent.nlink + dst_parent_delta);
  if (is_dir(src)) src.parent = dst_parent.ino;
  if (is_dir(dst)) dst.parent = src_parent.ino;
  src.ctime_ns = dst.ctime_ns = r.time_ns;
  touch_dir(src_parent, r.time_ns);
  touch_dir(dst_parent, r.time_ns);
  return {};
}

std::error_code apply_rename(Namespace& ns, const RenameRecord& r) {
  if (auto ec = check_name(r.src_name)) return ec;
  if (auto ec = check_name(r.dst_name)) return ec;
  if ((r.flags & ~(RENAME_FLAG_NOREPLACE | RENAME_FLAG_EXCHANGE)) != 0) return err(EINVAL);
  if ((r.flags & RENAME_FLAG_NOREPLACE) && (r.flags & RENAME_FLAG_EXCHANGE)) return err(EINVAL);
  Inode* src_parent = nullptr;
  Inode* dst_parent = nullptr;
  if (auto ec = find_dir(ns, r.src_parent, &src_parent)) return ec;
  if (auto ec = find_dir(ns, r.dst_parent, &dst_parent)) return ec;
  Inode* src = nullptr;
  if (auto ec = find_child(ns, *src_parent, r.src_name, &src)) return ec;
  Inode* dst = nullptr;
  if (auto ec = find_child(ns, *dst_parent, r.dst_name, &dst); ec && ec != err(ENOENT)) return ec;

  if (r.flags & RENAME_FLAG_EXCHANGE) {
    if (dst == nullptr) return err(ENOENT);
    return apply_exchange(ns, r, *src_parent, *src, *dst_parent, *dst);
  }
  if ((r.flags & RENAME_FLAG_NOREPLACE) && dst != nullptr) return err(EEXIST);
  // Renaming a name onto itself, or onto another name of the same inode, does nothing (POSIX).
  if (dst == src) return {};

  if (is_dir(*src)) {
    bool inside = false;
    if (auto ec = is_in_subtree(ns, dst_parent->ino, src->ino, &inside)) return ec;
    if (inside) return err(EINVAL);
  }
  if (dst != nullptr) {
    if (is_dir(*src) && !is_dir(*dst)) return err(ENOTDIR);
    if (!is_dir(*src) && is_dir(*dst)) return err(EISDIR);
    if (is_dir(*dst) && !dst->entries.empty()) return err(ENOTEMPTY);
    if (!is_dir(*dst) && dst->nlink == 0) return err(EIO);
  }
  // Link counts of the parents: src's parent loses src's ".." if src is a directory, dst's parent
  // loses the replaced directory's and gains src's.
  int64_t src_parent_nlink = src_parent->nlink;
  int64_t dst_parent_nlink = dst_parent->nlink;
  if (is_dir(*src)) {
    if (src_parent == dst_parent) {
      if (dst != nullptr) src_parent_nlink--;  // the replaced empty directory goes
      dst_parent_nlink = src_parent_nlink;     // one inode: both names must end up the same
    } else {
      src_parent_nlink--;
      dst_parent_nlink++;
      if (dst != nullptr) dst_parent_nlink--;
    }
  }
  if (src_parent_nlink < 2 || dst_parent_nlink < 2) return err(EIO);
  if (src_parent_nlink > kMaxLink || dst_parent_nlink > kMaxLink) return err(EMLINK);

  src_parent->entries.erase(r.src_name);
  dst_parent->entries[r.dst_name] = src->ino;
  src_parent->nlink = static_cast<uint32_t>(src_parent_nlink);
  dst_parent->nlink = static_cast<uint32_t>(dst_parent_nlink);
  if (is_dir(*src)) src->parent = dst_parent->ino;
  src->ctime_ns = r.time_ns;
  touch_dir(*src_parent, r.time_ns);
  touch_dir(*dst_parent, r.time_ns);
  if (dst != nullptr) {
    if (is_dir(*dst)) {
      ns.inodes.erase(dst->ino);
    } else {
      dst->nlink--;  // at 0 it stays as an orphan, as for unlink
      dst->ctime_ns = r.time_ns;
    }
  }
  return {};
}

std::error_code apply_set_attr(Namespace& ns, const SetAttrRecord& r) {
  constexpr uint32_t kKnown = SET_MODE | SET_UID | SET_GID | SET_ATIME | SET_MTIME | SET_CTIME | SET_FLAGS;
  if ((r.valid & ~kKnown) != 0) return err(EINVAL);
  Inode* inode = ns.find(r.ino);
  if (inode == nullptr) return err(ENOENT);
  // chmod changes permissions, never the file type.
  if (r.valid & SET_MODE) inode->mode = (inode->mode & S_IFMT) | (r.mode & 07777);
  if (r.valid & SET_UID) inode->uid = r.uid;
  if (r.valid & SET_GID) inode->gid = r.gid;
  if (r.valid & SET_ATIME) inode->atime_ns = r.atime_ns;
  if (r.valid & SET_MTIME) inode->mtime_ns = r.mtime_ns;
  if (r.valid & SET_CTIME) inode->ctime_ns = r.ctime_ns;
  if (r.valid & SET_FLAGS) inode->flags = r.flags;
  return {};
}

// The file whose LXT a Resize or Map changes.
std::error_code find_regular(Namespace& ns, uint64_t ino, Inode** out) {
  Inode* inode = ns.find(ino);
  if (inode == nullptr) return err(ENOENT);
  if (is_dir(*inode)) return err(EISDIR);
  if (!S_ISREG(inode->mode)) return err(EINVAL);
  *out = inode;
  return {};
}

std::error_code apply_resize(Namespace& ns, const ResizeRecord& r) {
  Inode* inode = nullptr;
  if (auto ec = find_regular(ns, r.ino, &inode)) return ec;
  if (uint64_t{r.first_index} + r.entries.size() > r.lxt_count) return err(EINVAL);
  // New entries continue the LXT; a gap would leave entries nobody described.
  if (r.first_index > inode->lxt.size()) return err(EINVAL);

  try {
    inode->lxt.resize(r.lxt_count, 0);  // strong guarantee: unchanged if it throws
  } catch (const std::bad_alloc&) {
    return err(ENOMEM);
  }
  for (size_t i = 0; i < r.entries.size(); i++) inode->lxt[r.first_index + i] = r.entries[i];
  inode->size = r.size;
  inode->mtime_ns = inode->ctime_ns = r.time_ns;
  return {};
}

std::error_code apply_map(Namespace& ns, const MapRecord& r) {
  Inode* inode = nullptr;
  if (auto ec = find_regular(ns, r.ino, &inode)) return ec;
  if (uint64_t{r.first_index} + r.entries.size() > inode->lxt.size()) return err(EINVAL);

  for (size_t i = 0; i < r.entries.size(); i++) inode->lxt[r.first_index + i] = r.entries[i];
  // A remap is a change of the file's contents (a clone) or follows one (copy-on-write).
  inode->mtime_ns = inode->ctime_ns = r.time_ns;
  return {};
}

std::error_code apply_free(Namespace& ns, const FreeRecord& r) {
  if (r.ino == ROOT_INO) return err(EINVAL);
  const Inode* inode = ns.find(r.ino);
  if (inode == nullptr) return err(ENOENT);
  if (inode->nlink != 0) return err(EBUSY);
  ns.inodes.erase(r.ino);
  return {};
}

std::error_code apply_origin(Namespace& ns, const OriginRecord& r) {
  Inode* inode = nullptr;
  if (auto ec = find_regular(ns, r.ino, &inode)) return ec;
  if (r.origin == r.ino || r.origin >= ns.next_ino) return err(EINVAL);
  inode->origin = r.origin;
  return {};
}

}  // namespace

std::error_code apply(Namespace& ns, const Record& record) {
  return std::visit(
      [&ns](const auto& r) -> std::error_code {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, CreateRecord>) return apply_create(ns, r);
        if constexpr (std::is_same_v<T, LinkRecord>) return apply_link(ns, r);
        if constexpr (std::is_same_v<T, UnlinkRecord>) return apply_unlink(ns, r);
        if constexpr (std::is_same_v<T, RenameRecord>) return apply_rename(ns, r);
        if constexpr (std::is_same_v<T, SetAttrRecord>) return apply_set_attr(ns, r);
        if constexpr (std::is_same_v<T, ResizeRecord>) return apply_resize(ns, r);
        if constexpr (std::is_same_v<T, MapRecord>) return apply_map(ns, r);
        if constexpr (std::is_same_v<T, FreeRecord>) return apply_free(ns, r);
        if constexpr (std::is_same_v<T, OriginRecord>) return apply_origin(ns, r);
      },
      record);
}

}  // namespace vlunfs::meta
