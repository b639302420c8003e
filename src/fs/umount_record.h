// Makes umount(8) run vlunfs's umount helper for a mount (docs/reliability.md "Unmount").
#pragma once

#include "vlunfs/error.h"

#include <string>

namespace vlunfs::fs {

// umount(8) decides whether to look for /sbin/umount.fuse.vlunfs by reading the mount table only
// when util-linux's own table (/run/mount/utab) has an entry for the target; otherwise it takes
// the type from statfs ("fuse", no subtype) and unmounts directly, and the helper that waits for
// this daemon never runs. This records the entry (uhelper=fuse.vlunfs) with `mount --fake`, which
// does not touch the mountpoint, so it is safe before the session serves requests. Root only
// (utab is root's); returns an error saying why when the entry could not be written (EPERM when
// not root), nothing (false) when it was.
Error record_umount_helper(const std::string& image, const std::string& mountpoint);

// Removes the entry once the mount is gone, so that unmounts which do not go through umount(8)
// (fusermount3 -u, umount -i) leave no stale entry behind. Called before the image is released:
// a new mount of it (which waits for the release) then never has its own entry removed.
void forget_umount_helper(const std::string& mountpoint);

}  // namespace vlunfs::fs
