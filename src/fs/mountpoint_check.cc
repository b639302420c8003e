// Refusals of a mountpoint (mountpoint_check.h).

#include "fs/mountpoint_check.h"

#include "vlunfs/mount_table.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace vlunfs::fs {

namespace {

std::string dead_mount(const std::string& mountpoint) {
  return mountpoint + " is a dead FUSE mount (its daemon is gone): unmount the dead mount first: umount " + mountpoint;
}

}  // namespace

Result<std::string, Error> mountpoint_usable(const char* mountpoint) {
  char resolved[PATH_MAX];
  if (realpath(mountpoint, resolved) == nullptr) {
    const int e = errno;
    return make_error(e, e == ENOTCONN ? dead_mount(mountpoint)
                                       : std::string("mountpoint ") + mountpoint + ": " + std::strerror(e));
  }
  std::string canonical = resolved;
  auto existing = store::newest_mount_at(store::read_mount_table(), canonical);
  if (!existing || !existing->type.starts_with("fuse")) return canonical;
  // statfs always asks the daemon (a stat may be answered from the attribute cache, and realpath
  // does not stat the last component), so it tells a dead mount from a live one.
  struct statvfs st;
  if (statvfs(canonical.c_str(), &st) != 0 && errno == ENOTCONN) return make_error(ENOTCONN, dead_mount(canonical));
  if (existing->type == store::kVlunfsMountType) {
    return make_error(EBUSY, canonical + " already holds a vlunfs mount (of " + existing->source +
                                 "): unmount it first (umount " + canonical + ") or choose another directory");
  }
  return canonical;
}

}  // namespace vlunfs::fs
