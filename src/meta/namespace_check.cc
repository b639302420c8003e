// Structural invariants of a Namespace (namespace_check.h).

#include "meta/namespace_check.h"

#include <sys/stat.h>

#include <cerrno>

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

namespace vlunfs::meta {

namespace {

// A namespace that breaks an invariant: the structure needs cleaning (fsck).
Error broken(std::string message) { return make_error(EUCLEAN, std::move(message)); }

std::string ino_str(uint64_t ino) { return "inode " + std::to_string(ino); }

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= MAX_NAME && name != "." && name != ".." &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

}  // namespace

Error check_invariants(const Namespace& ns) {
  const Inode* root = ns.find(ROOT_INO);
  if (root == nullptr) return broken("the root directory (inode 1) is missing");
  if (!S_ISDIR(root->mode)) return broken("the root (inode 1) is not a directory");
  if (root->parent != ROOT_INO) return broken("the root's parent is not the root");

  // Names per inode and subdirectories per directory, counted from the entries.
  std::unordered_map<uint64_t, uint64_t> names;
  std::unordered_map<uint64_t, uint64_t> subdirs;
  for (const auto& [key, inode] : ns.inodes) {
    if (key != inode.ino) return broken(ino_str(key) + " is stored under the wrong number");
    if (inode.ino == 0 || inode.ino >= ns.next_ino) {
      return broken(ino_str(inode.ino) + " is not below next_ino " + std::to_string(ns.next_ino));
    }
    const uint32_t type = inode.mode & S_IFMT;
    if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && !is_special_file(inode.mode)) {
      return broken(ino_str(inode.ino) + " has an unknown file type");
    }
    if (inode.rdev != 0 && type != S_IFCHR && type != S_IFBLK) {
      return broken(ino_str(inode.ino) + " is not a device node but has a device number");
    }
    if (is_special_file(inode.mode) && inode.size != 0) {
      return broken(ino_str(inode.ino) + " is a special file with a size");
    }
    if (type != S_IFDIR && !inode.entries.empty()) return broken(ino_str(inode.ino) + " is not a directory but has entries");
    if (type != S_IFREG && !inode.lxt.empty()) return broken(ino_str(inode.ino) + " is not a regular file but has an LXT");
    if (type == S_IFLNK && (inode.symlink.empty() || inode.symlink.size() > MAX_SYMLINK)) {
      return broken(ino_str(inode.ino) + " is a symlink with an empty or too long target");
    }
    if (type != S_IFLNK && !inode.symlink.empty()) return broken(ino_str(inode.ino) + " is not a symlink but has a target");
    if (type == S_IFDIR) {
      const Inode* parent = ns.find(inode.parent);
      if (parent == nullptr || !S_ISDIR(parent->mode)) {
        return broken("directory " + ino_str(inode.ino) + " has a parent that is not a directory");
      }
    }
    for (const auto& [name, child_ino] : inode.entries) {
      if (!valid_name(name)) return broken("directory " + ino_str(inode.ino) + " holds an invalid name");
      const Inode* child = ns.find(child_ino);
      if (child == nullptr) {
        return broken("\"" + name + "\" in directory " + ino_str(inode.ino) + " names missing " + ino_str(child_ino));
      }
      if (child_ino == ROOT_INO) return broken("directory " + ino_str(inode.ino) + " holds a name for the root");
      names[child_ino]++;
      if (S_ISDIR(child->mode)) {
        if (child->parent != inode.ino) {
          return broken("directory " + ino_str(child_ino) + " is in directory " + ino_str(inode.ino) +
                               " but its \"..\" is " + std::to_string(child->parent));
        }
        subdirs[inode.ino]++;
      }
    }
  }

  for (const auto& [ino, inode] : ns.inodes) {
    const uint64_t n = names.contains(ino) ? names[ino] : 0;
    if (S_ISDIR(inode.mode)) {
      if (ino != ROOT_INO && n != 1) return broken("directory " + ino_str(ino) + " has " + std::to_string(n) + " names");
      const uint64_t expected = 2 + (subdirs.contains(ino) ? subdirs[ino] : 0);
      if (inode.nlink != expected) {
        return broken("directory " + ino_str(ino) + " has nlink " + std::to_string(inode.nlink) + ", expected " +
                             std::to_string(expected));
      }
    } else if (inode.nlink != n) {
      return broken(ino_str(ino) + " has nlink " + std::to_string(inode.nlink) + " but " + std::to_string(n) + " names");
    }
  }

  // Every directory has one name and a matching "..", so the directories form a tree unless some
  // of them form a cycle cut off from the root: count what a walk from the root reaches.
  uint64_t directories = 0;
  for (const auto& [ino, inode] : ns.inodes) directories += S_ISDIR(inode.mode) ? 1 : 0;
  uint64_t reached = 0;
  std::vector<const Inode*> stack{root};
  while (!stack.empty()) {
    const Inode* dir = stack.back();
    stack.pop_back();
    if (++reached > directories) break;  // cannot happen with one name per directory; be safe
    for (const auto& [name, child_ino] : dir->entries) {
      const Inode* child = ns.find(child_ino);
      if (S_ISDIR(child->mode)) stack.push_back(child);
    }
  }
  if (reached != directories) {
    return broken(std::to_string(directories - std::min(reached, directories)) +
                         " directories are not reachable from the root");
  }
  return {};
}

}  // namespace vlunfs::meta
