// meta/: every change to the namespace is a Record. apply() is the one function that changes a
// Namespace, used both live and when the journal is replayed at mount, so the two can never disagree.
#pragma once

#include "vlunfs/error.h"
#include "vlunfs/meta/namespace.h"

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace vlunfs::meta {

struct CreateRecord {  // a new inode and its first name; ino must equal ns.next_ino (then ++)
  uint64_t parent = 0;
  std::string name;
  uint64_t ino = 0;
  uint32_t mode = 0, uid = 0, gid = 0;
  int64_t time_ns = 0;  // atime = mtime = ctime; parent's mtime/ctime too
  std::string symlink;
};
struct LinkRecord {  // a further name for an existing non-directory inode
  uint64_t ino = 0, parent = 0;
  std::string name;
  int64_t time_ns = 0;
};
struct UnlinkRecord {  // removes a name (a directory must be empty); nlink drops
  uint64_t parent = 0;
  std::string name;
  int64_t time_ns = 0;
};
inline constexpr uint32_t RENAME_FLAG_NOREPLACE = 1;  // as renameat2's RENAME_NOREPLACE
inline constexpr uint32_t RENAME_FLAG_EXCHANGE = 2;   // as renameat2's RENAME_EXCHANGE
struct RenameRecord {  // POSIX rename semantics; a replaced target loses one link
  uint64_t src_parent = 0;
  std::string src_name;
  uint64_t dst_parent = 0;
  std::string dst_name;
  uint32_t flags = 0;
  int64_t time_ns = 0;
};
inline constexpr uint32_t SET_MODE = 1, SET_UID = 2, SET_GID = 4, SET_ATIME = 8, SET_MTIME = 16,
                          SET_CTIME = 32, SET_FLAGS = 64;
struct SetAttrRecord {
  uint64_t ino = 0;
  uint32_t valid = 0;  // SET_* bits
  uint32_t mode = 0, uid = 0, gid = 0, flags = 0;
  int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
};
// A size change with the LXT change that goes with it (truncate, write past EOF, fallocate):
// the LXT is cut or extended to lxt_count entries, then entries[i] is stored at first_index + i.
struct ResizeRecord {
  uint64_t ino = 0;
  uint64_t size = 0;
  uint32_t lxt_count = 0;
  uint32_t first_index = 0;
  std::vector<uint64_t> entries;
  int64_t time_ns = 0;  // mtime = ctime
};
// Replaces LXT entries without a size change (copy-on-write remap, clone of a range).
struct MapRecord {
  uint64_t ino = 0;
  uint32_t first_index = 0;
  std::vector<uint64_t> entries;
  int64_t time_ns = 0;
};
struct FreeRecord {  // removes an inode with nlink 0 (its chunks were released)
  uint64_t ino = 0;
};
// Format version 2: names the inode a regular file was cloned or snapshotted from (for vlunctl ls;
// the inode need not exist any more: inode numbers are never reused).
struct OriginRecord {
  uint64_t ino = 0;
  uint64_t origin = 0;
};

using Record = std::variant<CreateRecord, LinkRecord, UnlinkRecord, RenameRecord, SetAttrRecord,
                            ResizeRecord, MapRecord, FreeRecord, OriginRecord>;

// Checks that `record` applies to `ns` and applies it. On error, ns is unchanged. Errors:
// ENOENT (missing inode/name/parent), EEXIST (name taken, or NOREPLACE target exists),
// ENOTDIR, EISDIR, ENOTEMPTY, EINVAL (bad ino, rename of a dir into its own subtree, bad
// LXT range, name empty or containing '/', or "." / ".."), ENAMETOOLONG (> MAX_NAME),
// EMLINK (nlink overflow).
std::error_code apply(Namespace& ns, const Record& record);

}  // namespace vlunfs::meta
