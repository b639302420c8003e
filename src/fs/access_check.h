// Who sent a control request, and whether the kernel would let them do it: the permission rules of
// generic_permission() (owner, then group, then other bits; root passes the read/write checks and
// searches every directory) applied by the daemon to its own inodes. The kernel checks ordinary
// file operations itself (default_permissions); a control ioctl reaches the daemon with nothing
// checked but the fd, so the daemon checks the caller against the inodes it acts on.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vlunfs::fs {

struct Caller {
  uint32_t uid = 0;  // fsuid, as FUSE reports it (mapped into the daemon's user namespace)
  uint32_t gid = 0;  // fsgid
  std::vector<uint32_t> groups;  // supplementary groups

  bool is_root() const { return uid == 0; }
  bool in_group(uint32_t g) const;
};

// The access a request needs of one inode (the rwx bits of its mode).
enum Access : unsigned { kMayExec = 1, kMayWrite = 2, kMayRead = 4 };

// What the kernel's generic_permission() answers for `want` (an OR of Access) on an inode with
// this mode (file type and permission bits) and owner. Root may read and write anything and
// search any directory, but executes a regular file only if some x bit is set.
bool may_access(const Caller& who, uint32_t mode, uint32_t owner_uid, uint32_t owner_gid, unsigned want);

// Supplementary groups from the text of /proc/PID/status ("Groups:" line), or nothing if the
// "Uid:"/"Gid:" lines' filesystem ids are not uid/gid: the pid then no longer names the caller
// (it exited and the number was reused), and the caller is judged by its own uid/gid alone.
std::vector<uint32_t> groups_from_status(const std::string& status, uint32_t uid, uint32_t gid);

// The caller of a FUSE request: its ids, and its supplementary groups read from /proc (pid as
// FUSE translated it into the daemon's pid namespace; 0 when it has no number there).
Caller caller_of(uint32_t uid, uint32_t gid, pid_t pid);

}  // namespace vlunfs::fs
