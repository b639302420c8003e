// FUSE data-path settings (fuse_tuning.h).

#include "fs/fuse_tuning.h"

#include "vlunfs/mount_table.h"

#include <algorithm>
#include <fstream>
#include <string>

namespace vlunfs::fs {

void apply_init(const FuseTuning& tuning, fuse_conn_info* conn) {
  // 1 MiB requests (libfuse turns max_write into the kernel's max_pages): one AFU command each.
  conn->max_write = 1u << 20;
  conn->max_readahead = 1u << 20;
  // The kernel's default of 12 background requests caps readahead and writeback concurrency.
  const unsigned background = std::max(1u, tuning.max_background);
  conn->max_background = background;
  conn->congestion_threshold = background * 3 / 4;
  // Truncation on open comes as a setattr, through the same resize path as truncate(2).
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
  if (tuning.writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
}

// Only the daemon changes a file's bytes, and every change it makes outside write() (truncate,
// fallocate, copy_file_range) the kernel invalidates itself: what is cached stays valid across
// opens. Without keep_cache each open empties the file's cache (warm 4 KiB reads 10x slower).
// noflush: there is nothing to do at FLUSH (no locks, data goes down at write), so close(2) need
// not wait for a round trip; with the writeback cache the kernel still writes back and flushes.
void apply_open(const FuseTuning& tuning, fuse_file_info* fi) {
  fi->direct_io = tuning.direct_io;
  fi->keep_cache = !tuning.direct_io;
  fi->noflush = 1;
}

// The bdi (/sys/class/bdi/MAJOR:MINOR) is found through /proc/self/mountinfo, since a stat() of
// the mountpoint would wait on the daemon that calls this. The last line for the mountpoint is
// the newest mount there, ours; paths are compared unescaped (store/mount_table.h), so a
// mountpoint with a space in its name is found too.
// - read_ahead_kb: a FUSE mount starts at the default 128 KiB, and INIT's reply only lowers it
//   (the kernel keeps the smaller of the bdi's value and max_readahead), so sequential reads came
//   as 128 KiB requests. Raised here before INIT is answered, INIT then caps it at max_readahead:
//   the mount reads ahead 1 MiB (read_ahead_kb reads 1024 once mounted), one request per AFU
//   command. 4096 is what is written, not what is kept.
// - with the writeback cache, FUSE's strict 1% dirty-page limit (the kernel may not trust its
//   daemon) stalls writers long before the page cache is full; max_ratio 100, no strict_limit.
bool tune_bdi(const char* mountpoint, bool writeback_cache) {
  const auto mount = store::newest_mount_at(store::read_mount_table(), mountpoint);
  if (!mount) return false;
  const std::string bdi = "/sys/class/bdi/" + mount->device_number + "/";
  bool ok = static_cast<bool>(std::ofstream(bdi + "read_ahead_kb") << "4096\n");
  if (writeback_cache) {
    ok = static_cast<bool>(std::ofstream(bdi + "strict_limit") << "0\n") && ok;
    ok = static_cast<bool>(std::ofstream(bdi + "max_ratio") << "100\n") && ok;
  }
  return ok;
}

int run_session(fuse_session* se, const FuseTuning& tuning, bool single_thread) {
  if (single_thread) return fuse_session_loop(se);
  fuse_loop_config* config = fuse_loop_cfg_create();
  // One /dev/fuse descriptor per thread: a request wakes one thread, not all waiting on one fd.
  fuse_loop_cfg_set_clone_fd(config, tuning.clone_fd ? 1 : 0);
  const unsigned threads = std::max(1u, tuning.max_threads);
  fuse_loop_cfg_set_max_threads(config, threads);
  fuse_loop_cfg_set_idle_threads(config, threads);  // no thread churn between bursts
  const int rc = fuse_session_loop_mt(se, config);
  fuse_loop_cfg_destroy(config);
  return rc;
}

}  // namespace vlunfs::fs
