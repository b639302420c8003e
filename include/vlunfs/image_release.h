// Opening an image that a vlunfs daemon may still be releasing.
//
// umount(2) of a FUSE mount returns before its daemon hears of it (the kernel sends FUSE_DESTROY
// only to fuseblk mounts): the daemon then writes its last checkpoint and lets go of the image's
// lock some milliseconds later (docs/reliability.md "Unmount"). A program that opens the image
// right after `umount` or `fusermount3 -u` waits for that, bounded; an image that is still mounted
// is refused at once.
#pragma once

#include "vlunfs/error.h"
#include "vlunfs/store.h"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace vlunfs::store {

struct ReleaseWait {
  std::chrono::milliseconds limit{10000};
  // Called once, when the waiting starts, so that the program can say what it waits for.
  std::function<void()> on_wait;
};

// open_file_store with options.exclusive_lock. EBUSY from the lock is retried for up to
// wait.limit while no vlunfs mount of the image is in the mount table and a process named vlunfs
// has it open (a daemon that is releasing it, or one still starting; each try looks at the table
// again). EBUSY at once if it is mounted, or held by another program (mkfs, fsck).
Result<std::unique_ptr<BlockStore>> open_file_store_after_release(const std::string& path, FileStoreOptions options,
                                                                  const ReleaseWait& wait = {});

// The directory a vlunfs mount of `image` is on, if it is mounted: for the messages of a refusal.
std::optional<std::string> vlunfs_mountpoint_of(const std::string& image);

}  // namespace vlunfs::store
