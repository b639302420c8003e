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

bool mountpoint_usable(const char* mountpoint, std::string* canonical, std::string* why) {
  char resolved[PATH_MAX];
  if (realpath(mountpoint, resolved) == nullptr) {
    *why = errno == ENOTCONN ? dead_mount(mountpoint) : std::string("mountpoint ") + mountpoint + ": " + std::strerror(errno);
    return false;
  }
  *canonical = resolved;
  auto existing = store::newest_mount_at(store::read_mount_table(), *canonical);
  if (!existing || !existing->type.starts_with("fuse")) return true;
  // statfs always asks the daemon (a stat may be answered from the attribute cache, and realpath
  // does not stat the last component), so it tells a dead mount from a live one.
  struct statvfs st;
  if (statvfs(canonical->c_str(), &st) != 0 && errno == ENOTCONN) {
    *why = dead_mount(*canonical);
    return false;
  }
  if (existing->type == store::kVlunfsMountType) {
    *why = *canonical + " already holds a vlunfs mount (of " + existing->source + "): unmount it first (umount " +
           *canonical + ") or choose another directory";
    return false;
  }
  return true;
}

}  // namespace vlunfs::fs
