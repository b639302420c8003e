// What mkfs.vlunfs does with the device it formats, apart from the format itself: naming whoever
// holds a block device that it may not claim, and erasing with a progress line.
#pragma once

#include "vlunfs/store.h"

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

namespace vlunfs::tools {

// Who keeps the block device at `path` busy, in words for a message: its mounts (from
// /proc/self/mountinfo, matched by device number, its partitions' included, or for a FUSE mount by
// its source: "mounted on /mnt (ext4)") and its holders (/sys/class/block/NAME/holders: "held by dm-0"). Empty if none is found
// (another process holds it open exclusively).
std::string device_users(const std::string& path);

// Called with (bytes erased, bytes to erase) as the erase goes on.
using EraseProgress = std::function<void(uint64_t done, uint64_t total)>;

// A view of `base` whose discard() works in slices and reports after each one, so that erasing a
// large device that can only be zeroed by writing shows how far it got; all else passes through.
std::unique_ptr<store::BlockStore> with_erase_progress(store::BlockStore& base, EraseProgress progress);

// A progress line on `out` ("\rmkfs.vlunfs: erasing 12.0 GiB of 64.0 GiB (18%)") that appears only
// once an erase has taken longer than a second, and ends with a newline when the erase is done.
EraseProgress erase_progress_line(std::FILE* out);

}  // namespace vlunfs::tools
