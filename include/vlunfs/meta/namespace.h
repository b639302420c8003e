// meta/: the namespace in memory, plain data (design.md decision 3): inodes with their LXTs and
// directory entries. Records (meta/record.h) are the only way it changes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace vlunfs::meta {

inline constexpr uint64_t ROOT_INO = 1;
inline constexpr size_t MAX_NAME = 255;
inline constexpr size_t MAX_SYMLINK = 4095;

struct Inode {
  uint64_t ino = 0;
  uint32_t mode = 0;  // S_IFREG / S_IFDIR / S_IFLNK | permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;  // 0 with the inode still present = orphan (unlinked, was open)
  uint64_t size = 0;   // byte-exact st_size
  int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
  uint32_t flags = 0;                      // per-file attributes (INODE_FLAG_*)
  std::string symlink;                     // symlinks only
  std::vector<uint64_t> lxt;               // regular files: one sisl_lxt_entry per chunk, hardware layout
  std::map<std::string, uint64_t> entries; // directories only: name -> ino
  uint64_t parent = 0;                     // directories only: for ".."
  int64_t btime_ns = 0;                    // creation (birth) time; 0 = unknown (made before format 2)
  uint64_t origin = 0;                     // regular files: the inode cloned or snapshotted; 0 = none
};

inline constexpr uint32_t INODE_FLAG_THIN = 0x1;      // reserved for thin vLUNs
inline constexpr uint32_t INODE_FLAG_READONLY = 0x2;  // reserved for snapshots

struct Namespace {
  std::unordered_map<uint64_t, Inode> inodes;
  uint64_t next_ino = ROOT_INO + 1;
  Inode* find(uint64_t ino);
  const Inode* find(uint64_t ino) const;
};

// A fresh namespace: the root directory (ino 1, mode 0755 | S_IFDIR, nlink 2) at time_ns.
Namespace make_empty_namespace(int64_t time_ns, uint32_t uid = 0, uint32_t gid = 0);

}  // namespace vlunfs::meta
