#pragma once

#include <fuse_lowlevel.h>

namespace vlunfs::fs {

// How the kernel is asked to treat the mount's data; set once by main() before the session starts.
// bench/RESULTS.md gives the numbers behind each default.
struct FuseTuning {
  bool direct_io = false;        // -o direct_io: no page cache for file data (FOPEN_DIRECT_IO)
  bool writeback_cache = false;  // -o writeback_cache: the kernel caches writes, flushes them later
  unsigned max_background = 64;  // async requests (readahead, writeback) the kernel keeps in flight
};
void set_fuse_tuning(const FuseTuning& tuning);

// The operation table; each request's userdata is the Filesystem.
const fuse_lowlevel_ops& fuse_operations();

}  // namespace vlunfs::fs
