// Who sent a control request, and whether the kernel would let them do it: the permission rules of
// generic_permission() (owner, then group, then other bits; then CAP_DAC_OVERRIDE and
// CAP_DAC_READ_SEARCH) applied by the daemon to its own inodes. The kernel checks ordinary
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
  // The capabilities that pass permission checks. Counted for uid 0 only: a process of another
  // user with capabilities has them in a user namespace of its own, which does not own our inodes.
  bool dac_override = false;     // CAP_DAC_OVERRIDE: read, write, search anything
  bool dac_read_search = false;  // CAP_DAC_READ_SEARCH: read any file, read and search any directory

  bool is_root() const { return uid == 0; }
  bool in_group(uint32_t g) const;
};

// The access a request needs of one inode (the rwx bits of its mode).
enum Access : unsigned { kMayExec = 1, kMayWrite = 2, kMayRead = 4 };

// What the kernel's generic_permission() answers for `want` (an OR of Access) on an inode with
// this mode (file type and permission bits) and owner. CAP_DAC_OVERRIDE passes everything but
// executing a regular file that no x bit allows; CAP_DAC_READ_SEARCH passes reading a file and
// reading or searching a directory.
bool may_access(const Caller& who, uint32_t mode, uint32_t owner_uid, uint32_t owner_gid, unsigned want);

// Fills who->groups ("Groups:") and, for uid 0, who's capabilities ("CapEff:") from the text of
// /proc/PID/status. False, leaving *who alone, if the "Uid:"/"Gid:" lines' filesystem ids are not
// who's: the pid no longer names the caller (it exited and the number was reused).
bool read_status(const std::string& status, Caller* who);

// The caller of a FUSE request: its ids, and its groups and capabilities read from /proc (pid as
// FUSE translated it into the daemon's pid namespace; 0 when it has no number there). When
// /proc cannot say, uid 0 keeps the classic superuser's rights and others have no extra groups.
Caller caller_of(uint32_t uid, uint32_t gid, pid_t pid);

}  // namespace vlunfs::fs
