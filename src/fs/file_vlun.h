// One regular file's vLUN while mounted: the open-file state the filesystem keeps beside the
// metadata's inode (size and mtime changed by writes and not yet journaled, open count, thin and
// snapshot flags, punched ranges), and the locks that order its I/O against changes of its map.
#pragma once

#include "client/vlun.h"
#include "fs/metrics.h"
#include "fs/thread_annotations.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>

namespace vlunfs::fs {

class FileVlun {
 public:
  FileVlun(uint64_t ino_, std::unique_ptr<client::Vlun> vlun_, uint64_t size_, uint64_t chunks_)
      : ino(ino_), vlun(std::move(vlun_)), size(size_), chunks(chunks_) {}
  FileVlun(const FileVlun&) = delete;
  FileVlun& operator=(const FileVlun&) = delete;

  const uint64_t ino;
  // Its resource handle on one of the mount's contexts. Its data moves under io_mu held shared;
  // its LXT changes under io_mu held exclusively (and Filesystem::ns_mu_, for the journal record).
  const std::unique_ptr<client::Vlun> vlun;

  // Shared by the reads and writes of the file, exclusive for a change of its size or chunk map.
  // Taken before Filesystem::ns_mu_, never after it.
  std::shared_mutex io_mu;
  // Written with io_mu exclusive; atomic because attributes and reports read them under ns_mu_
  // alone.
  std::atomic<uint64_t> size{0};
  std::atomic<uint64_t> chunks{0};  // LXT entries, as journaled
  // Size/mtime changed by writes (io_mu shared) and not yet journaled; cleared by the record
  // that journals them, appended under ns_mu_.
  std::atomic<bool> size_dirty{false};
  std::atomic<int64_t> mtime_ns{0};
  // The last size record journaled without waiting for it (at close): fsync must still wait.
  std::atomic<uint64_t> unsynced_seq{0};
  // The newest record that journaled the size (by persist_size or a resize): an fdatasync that
  // needs no record of its own still waits for this one, which a concurrent fsync may have
  // appended and not yet flushed.
  std::atomic<uint64_t> size_seq{0};

  // Read-modify-write of the partial blocks at a write's edges: one at a time per file.
  std::mutex rmw_mu;

  // Opens (FUSE handles, and pins while a sync or clone uses the file). Guarded by
  // Filesystem::ns_mu_: the last release and an unlink decide under it who frees the vLUN.
  int opens = 0;
  // Of those, FUSE handles opened for writing. While there is one, the kernel may hold written
  // pages the daemon has not seen yet: the writeback cache, or a shared writable mmap (which holds
  // its file open until munmap, and the kernel writes its pages back at munmap and at release).
  std::atomic<int> write_opens{0};

  std::atomic<bool> thin{false};       // unwritten chunks map the zero chunk (set under ns_mu_)
  std::atomic<bool> read_only{false};  // a snapshot (set under ns_mu_)
  // Holds a share reserve for its shared chunks (share_reserve.h).
  bool thick_writable() const { return !thin && !read_only; }

  // Thin vLUNs: byte ranges of each chunk punched since it was last written. Discards arrive in
  // pieces smaller than a chunk (ext4 trims per 128 MiB block group); once they cover a whole
  // chunk it goes back to the pool. Memory only: best effort across remounts.
  std::mutex trim_mu;
  std::map<uint64_t, std::map<uint64_t, uint64_t>> trimmed GUARDED_BY(trim_mu);  // chunk -> {start -> end}
  std::atomic<bool> has_trims{false};  // a hint read without trim_mu: trimmed may be non-empty

  // Its requests, bytes, latencies and share breaks (vlunctl stats); folded into the pool's when it goes.
  VlunMetrics metrics;
};

}  // namespace vlunfs::fs
