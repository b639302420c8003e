// How the kernel is asked to treat a mount's data: INIT parameters, open flags, the mount's bdi and
// the session loop. Shared by the daemon and by the benchmark's minimal pass-through
// (bench/passthrough_one.cc), so that "the cost of FUSE itself" is measured with vlunfs's own
// settings. bench/RESULTS.md gives the numbers behind each default.
#pragma once

#include <fuse_lowlevel.h>

namespace vlunfs::fs {

struct FuseTuning {
  bool direct_io = false;        // -o direct_io: no page cache for file data (FOPEN_DIRECT_IO)
  bool writeback_cache = false;  // -o writeback_cache: the kernel caches writes, flushes them later
  unsigned max_background = 64;  // async requests (readahead, writeback) the kernel keeps in flight
  unsigned max_threads = 64;     // serving threads: a thread per request in flight (io_uring QD 32)
  bool clone_fd = true;          // a /dev/fuse descriptor per thread
};

// INIT: 1 MiB requests, the background limits, the writeback cache if asked and offered.
void apply_init(const FuseTuning& tuning, fuse_conn_info* conn);
// OPEN/CREATE replies: page cache kept across opens (or direct I/O), no FLUSH on close.
void apply_open(const FuseTuning& tuning, fuse_file_info* fi);
// The mount's bdi: readahead raised (INIT then keeps 1 MiB), and with the writeback cache no strict
// 1% dirty limit. False when the mount or its bdi files could not be found or written (not root).
bool tune_bdi(const char* mountpoint, bool writeback_cache);
// Serves the session until it ends: one thread, or the multithreaded loop as tuned.
int run_session(fuse_session* se, const FuseTuning& tuning, bool single_thread);

}  // namespace vlunfs::fs
