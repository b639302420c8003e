// fs/: the filesystem's operations, independent of FUSE. Every regular file is a vLUN of the
// mount's vLUN client (client/): created empty, resized, read and written by vLBA, released when
// removed. Directories, symlinks and special files (FIFOs, sockets, device nodes) are metadata only. The AFU backend is the program's choice,
// passed to start().
//
// Locks (what each protects is written next to it, and each private function's contract is a
// REQUIRES/EXCLUDES annotation next to it; a `_locked` suffix is only a reminder of that):
//   FileVlun::io_mu  - shared by reads/writes of the file, exclusive for a size or map change
//   ns_mu_           - the namespace, the journal appends, the vLUN table, open counts
// Order: io_mu before ns_mu_. Allocation changes (resize, release) run under ns_mu_ together
// with the append of their record, so the journal's order is the allocator's order.
#pragma once

#include "client/backend.h"
#include "client/lun_client.h"
#include "client/vlun.h"
#include "fs/file_vlun.h"
#include "fs/metrics.h"
#include "fs/share_reserve.h"
#include "fs/thread_annotations.h"
#include "store/rbd/rbd_store.h"
#include "vlunfs/error.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/meta/namespace.h"
#include "vlunfs/meta/record.h"
#include "vlunfs/store.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace vlunfs::fs {

struct MountOptions {
  bool read_only = false;
  bool thin = false;  // new files are thin: unwritten chunks map the zero chunk until written
  // The image's write-behind window (store::FileStoreOptions::write_behind); 0 turns it off.
  // bench/RESULTS.md has the measurement behind the default.
  uint64_t write_behind = uint64_t{8} << 20;
  // Open the image with O_DIRECT (store::FileStoreOptions::direct, -o image_direct).
  bool image_direct = false;
  // An rbd:POOL/IMAGE device: who to be to the Ceph cluster, and whether to take over the lock of
  // a dead daemon (-o ceph_conf=, ceph_id=, takeover; docs/rbd.md).
  store::CephClientOptions ceph;
  bool takeover = false;
  // The kernel caches file data (false with -o direct_io, where no written page waits in it).
  bool page_cache = true;
};

struct Attr {
  struct stat st {};
};

struct DirEntry {
  std::string name;
  uint64_t ino;
  uint32_t mode;
};

// Which attributes a setattr changes (fuse_ops.cc translates FUSE's FUSE_SET_ATTR_* bits).
struct AttrChanges {
  bool size = false;       // attr.st_size, through resize: chunks follow
  bool mode = false;       // the permission bits of attr.st_mode
  bool uid = false;
  bool gid = false;
  bool atime = false;      // attr.st_atim, or now with atime_now
  bool atime_now = false;
  bool mtime = false;      // attr.st_mtim, or now with mtime_now
  bool mtime_now = false;
  bool ctime = false;      // attr.st_ctim; else ctime becomes now whenever anything changes
};

struct Credentials {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// What `vlunctl ls` shows of one file.
struct VlunReport {
  std::string path;
  uint64_t ino = 0;
  uint64_t size = 0;
  uint64_t context_id = 0;
  uint64_t rsrc_handle = 0;
  uint64_t last_lba = 0;  // 4K units, all-ones for an empty vLUN
  std::vector<uint64_t> chunks;  // physical chunk numbers, in vLUN order
  bool thin = false;
  bool snapshot = false;
  uint64_t mapped = 0;    // entries naming a chunk of its own or shared (not the zero chunk)
  uint64_t shared = 0;    // of those, chunks other entries name too
  uint64_t reserved = 0;  // chunks the pool holds back for its writes (share_reserve.h)
  uint64_t origin = 0;    // the inode it was cloned or snapshotted from; 0 for none
  std::string origin_path;  // that inode's path now; empty when it is gone
  int64_t birth_ns = 0;   // creation time; 0 when unknown (made before format version 2)
};

struct PoolStats {
  uint64_t chunk_bytes = 0;
  uint64_t total_chunks = 0;
  uint64_t free_chunks = 0;      // the allocator's, reserve included
  uint64_t reserved_chunks = 0;  // held back for thick vLUNs' share breaks (share_reserve.h)
  uint64_t mapped_chunks = 0;    // chunks some LXT names (total - free)
  uint64_t shared_chunks = 0;    // chunks more than one LXT entry names
  uint64_t thin_bytes = 0;       // the sizes of the thin vLUNs, summed
  uint64_t thin_unwritten_chunks = 0;  // their chunks still mapping the zero chunk: what they may yet claim
  uint64_t files = 0;
  uint64_t inodes = 0;
  // What the device is, for `vlunctl info` (the same fields for a mount and for an image).
  std::string device;
  uint32_t format_version = 0;
  uint32_t block_size = 0;
  uint64_t device_bytes = 0;
  uint64_t metadata_bytes = 0;  // everything before the data region
  uint64_t journal_bytes = 0;
  uint64_t checkpoint_bytes = 0;

  // Fills the fields above but `device` from the format's geometry (a mount's, or an image's).
  void describe_format(const meta::Geometry& g);
};

class Filesystem {
 public:
  // Opens the device or image and loads the metadata: the checks that must fail before the
  // daemon detaches from the terminal (lock, format, corruption). *why explains a refusal.
  static Result<std::unique_ptr<Filesystem>> open(const std::string& device, const MountOptions& options,
                                                  std::string* why);
  // The same over a store already open (memory or fault-injecting stores in tests).
  static Result<std::unique_ptr<Filesystem>> open_store(std::unique_ptr<store::BlockStore> device,
                                                        const MountOptions& options, std::string* why,
                                                        const std::string& name = "device");
  ~Filesystem();

  // Makes the AFU backend over the device's data region (make_afu), attaches the AFU context(s),
  // rebuilds the allocator from the chunk maps and opens every file's vLUN. Contexts belong to
  // their process: a daemon that forks after this calls adopt_parent_contexts in the child.
  std::error_code start(const client::AfuFactory& make_afu, std::string* why);
  // Makes everything durable (sizes, a checkpoint) and detaches. Idempotent.
  void shutdown();

  // ---- namespace ----
  Result<Attr> lookup(uint64_t parent, const std::string& name);
  Result<Attr> getattr(uint64_t ino);
  Result<Attr> create(uint64_t parent, const std::string& name, uint32_t mode, const Credentials& who);
  // A regular file (as create), or a FIFO, socket or device node: an inode without a vLUN that
  // keeps `rdev` (the mount is nodev: the kernel refuses to open a device node on it).
  Result<Attr> mknod(uint64_t parent, const std::string& name, uint32_t mode, uint64_t rdev, const Credentials& who);
  Result<Attr> mkdir(uint64_t parent, const std::string& name, uint32_t mode, const Credentials& who);
  Result<Attr> symlink(uint64_t parent, const std::string& name, const std::string& target, const Credentials& who);
  Result<Attr> link(uint64_t ino, uint64_t new_parent, const std::string& new_name);
  Result<std::string> readlink(uint64_t ino);
  std::error_code unlink(uint64_t parent, const std::string& name);
  std::error_code rmdir(uint64_t parent, const std::string& name);
  std::error_code rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                         const std::string& new_name, unsigned flags);
  Result<std::vector<DirEntry>> readdir(uint64_t ino);

  // Changes the attributes `to_set` names to their values in `attr`; open_file, when the request
  // came through an open file, is that file.
  Result<Attr> setattr(uint64_t ino, const struct stat& attr, const AttrChanges& to_set, FileVlun* open_file);

  // ---- open files and data ----
  Result<FileVlun*> open_file(uint64_t ino, bool for_write = false);
  void release_file(FileVlun* file, bool for_write = false);  // for_write as its open_file's
  // True while the kernel may hold pages of the file written and not yet sent here (a handle open
  // for writing, with the page cache on): then lseek's SEEK_DATA/SEEK_HOLE and st_blocks cannot be
  // answered from the chunk map alone (docs/posix.md, "SEEK_DATA and SEEK_HOLE").
  bool may_hold_unseen_writes(const FileVlun* file) const;
  // Reads up to out.size() bytes at offset; returns how many (0 at or past EOF).
  Result<size_t> read(FileVlun* file, uint64_t offset, std::span<std::byte> out);
  Result<size_t> write(FileVlun* file, uint64_t offset, std::span<const std::byte> data);
  std::error_code fsync(FileVlun* file, bool datasync);
  std::error_code fallocate(FileVlun* file, int mode, uint64_t offset, uint64_t length);
  Result<uint64_t> lseek(FileVlun* file, uint64_t offset, int whence);

  struct statvfs statfs();
  PoolStats pool_stats();
  std::vector<VlunReport> report();
  // The counters of the data path, the journal and the AFU (metrics.h), pool and per file.
  MetricsReport metrics_report();
  std::error_code sync_all();

  // ---- sharing (clones.cc; copy-on-write in copy_on_write.cc) ----
  // copy_file_range: whole chunks at the same offset within a chunk on both sides are shared
  // (reference counted, mapped without W so a write faults and copies); the rest is copied.
  Result<size_t> copy_range(FileVlun* src, uint64_t off_in, FileVlun* dst, uint64_t off_out, uint64_t length);
  // A new file DST (path from the mount's root) sharing every chunk of SRC; a snapshot is
  // read-only (EROFS on open for writing, EPERM on truncate) and removable with rm.
  std::error_code clone_file(const std::string& src_path, const std::string& dst_path, bool snapshot);
  // Makes an empty file thin (or thick again).
  std::error_code set_thin(const std::string& path, bool thin);
  // In a forked child: clone every context of the parent (VLUN_CLONE, spec §6) and carry on
  // with the same resource handles; the parent's contexts are then torn down.
  std::error_code adopt_parent_contexts(std::string* why);

  uint32_t block_size() const { return geometry_.block_size; }
  // A good I/O size for the data path (st_blksize).
  static constexpr uint32_t kPreferredIo = 1u << 20;

 private:
  Filesystem() = default;

  static uint32_t file_type(uint32_t mode) { return mode & S_IFMT; }
  Attr attr_of(const meta::Inode& inode) const REQUIRES_SHARED(ns_mu_);
  Result<uint64_t> commit(const meta::Record& record) REQUIRES(ns_mu_);  // the journal's order is ns_mu_'s
  std::error_code durable(uint64_t seq);  // may wait with ns_mu_ held or not
  Result<Attr> make_node(uint64_t parent, const std::string& name, uint32_t mode,
                         const Credentials& who, const std::string& symlink, uint64_t rdev = 0) EXCLUDES(ns_mu_);
  std::error_code check_name(const std::string& name) const;
  std::error_code remove_name(uint64_t parent, const std::string& name, bool directory) EXCLUDES(ns_mu_);
  std::error_code writable() const;
  int64_t now_ns() const;

  // One file's vLUN comes and goes.
  Result<FileVlun*> new_vlun_locked(uint64_t ino, uint64_t size, const std::vector<uint64_t>& lxt, bool fresh)
      REQUIRES(ns_mu_);
  std::error_code release_vlun_locked(uint64_t ino) REQUIRES(ns_mu_);
  // Frees an inode left with no name and no open: RELEASE, then its Free record (appended to
  // *seqs). An inode that owns chunks is freed only once the removal, seqs->back(), is durable.
  // With `defer`, rather than wait for that under ns_mu_, it does nothing and returns true: the
  // caller calls finish_removal(), which waits with the lock dropped.
  bool maybe_free_locked(uint64_t ino, std::vector<uint64_t>* seqs, bool defer = false) REQUIRES(ns_mu_);
  // Ends a removal begun under `lock` (ns_mu_, exclusive; released here): waits for seqs.back(),
  // frees `deferred` (when maybe_free_locked returned true for it) and waits for that too.
  std::error_code finish_removal(std::unique_lock<std::shared_mutex>& lock, uint64_t deferred,
                                 std::vector<uint64_t>& seqs) RELEASE(ns_mu_);
  // Changes the file's size; chunks follow (ENOSPC leaves the file as it was).
  Result<uint64_t> resize_locked(FileVlun* file, uint64_t new_size, bool keep_size_chunks_only)
      REQUIRES(file->io_mu) EXCLUDES(ns_mu_);
  // Journals a size/mtime changed by writes; waits for it to be durable unless !wait (a close
  // promises nothing about durability: fsync does).
  std::error_code persist_size(FileVlun* file, uint64_t* seq, bool wait = true) REQUIRES(file->io_mu) EXCLUDES(ns_mu_);
  // Whether the size in the journal is the file's size now (writes since then stayed inside it).
  bool size_journaled(FileVlun* file) EXCLUDES(ns_mu_);
  // Writes with the file's io_mu held (shared or exclusive: `shared` or `exclusive` owns it),
  // breaking shares on a write fault, for which a shared hold is traded for an exclusive one.
  std::error_code write_blocks(FileVlun* file, uint64_t vlba, uint64_t nblocks, std::byte* buf,
                               std::shared_lock<std::shared_mutex>& shared, std::unique_lock<std::shared_mutex>& exclusive)
      REQUIRES_SHARED(file->io_mu) EXCLUDES(ns_mu_);
  // Gives the file a writable entry for chunk `index`: a fresh chunk for the zero chunk, the
  // W bit for a chunk it alone owns, else a private copy (allocate, copy, remap, journal).
  std::error_code make_writable(FileVlun* file, uint64_t index) REQUIRES(file->io_mu) EXCLUDES(ns_mu_);
  // Thin: gives chunks [first, first + count) back, mapping the zero chunk there.
  std::error_code punch_chunks(FileVlun* file, uint64_t first, uint64_t count) REQUIRES(file->io_mu) EXCLUDES(ns_mu_);
  // Records a punched range of one chunk; true once punches cover the whole chunk.
  bool note_trim(FileVlun* file, uint64_t chunk, uint64_t from, uint64_t to) EXCLUDES(file->trim_mu);
  Result<size_t> copy_bytes(FileVlun* src, uint64_t off_in, FileVlun* dst, uint64_t off_out, uint64_t length)
      EXCLUDES(src->io_mu, dst->io_mu);
  Result<uint64_t> share_chunks_locked(FileVlun* src, uint64_t src_index, FileVlun* dst, uint64_t dst_index,
                                       uint64_t count, uint64_t dst_new_size)
      REQUIRES(src->io_mu, dst->io_mu) EXCLUDES(ns_mu_);
  uint64_t zero_entry() const;
  bool maps_zero(uint64_t entry) const;
  Result<uint64_t> resolve_path(const std::string& path) const REQUIRES_SHARED(ns_mu_);
  std::error_code fsync_counted(FileVlun* file, bool datasync);  // fsync without its counting
  std::error_code zero_bytes(FileVlun* file, uint64_t offset, uint64_t length) REQUIRES(file->io_mu) EXCLUDES(ns_mu_);

  std::string device_path_;
  MountOptions options_;
  std::unique_ptr<store::BlockStore> device_;
  std::unique_ptr<store::BlockStore> data_lun_;  // the region the AFU sees as the physical LUN
  std::unique_ptr<meta::MetaStore> meta_;
  meta::Geometry geometry_;
  // Counted by the data path and the journal; outlives lun_, which counts AFU commands into it.
  PoolMetrics metrics_;
  // The LUN, its contexts and the zero chunk (the data area's last chunk: always zero, thin vLUNs
  // map it). Outlives every FileVlun's vLUN (declared before vluns_) and is outlived by data_lun_.
  std::unique_ptr<client::LunClient> lun_;
  bool started_ = false;
  bool unclean_ = false;        // the journal held records at mount: the last stop was a crash

  mutable std::shared_mutex ns_mu_;
  ShareReserve reserve_ GUARDED_BY(ns_mu_);
  std::unordered_map<uint64_t, std::unique_ptr<FileVlun>> vluns_ GUARDED_BY(ns_mu_);
};

}  // namespace vlunfs::fs
