// meta/: the persistent namespace and chunk maps (design.md decision 3).
//
// On disk, at the start of the device (docs/format.md): two superblocks (generation + CRC32C),
// two checkpoint slots (the whole namespace with every file's LXT), and an append-only journal of
// records (sequence number + CRC32C each). The data area (the physical LUN the AFU sees) follows.
//
// In memory, the namespace is plain data. Every change is a Record; apply() is the one function
// that changes a Namespace, used both live and when the journal is replayed at mount, so the two
// can never disagree.
#pragma once

#include "vlunfs/error.h"
#include "vlunfs/store.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace vlunfs::meta {

inline constexpr uint64_t ROOT_INO = 1;
inline constexpr size_t MAX_NAME = 255;
inline constexpr size_t MAX_SYMLINK = 4095;

struct Inode {
  uint64_t ino = 0;
  uint32_t mode = 0;  // S_IFREG / S_IFDIR / S_IFLNK / a special file type | permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;  // 0 with the inode still present = orphan (unlinked, was open)
  uint64_t size = 0;   // byte-exact st_size
  int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
  uint32_t flags = 0;                      // per-file attributes (INODE_FLAG_*)
  std::string symlink;                     // symlinks only
  std::vector<uint64_t> lxt;               // regular files: one sisl_lxt_entry per chunk, hardware layout
  std::map<std::string, uint64_t> entries; // directories only: name -> ino
  uint64_t parent = 0;                     // directories only: for ".."
  int64_t btime_ns = 0;                    // creation (birth) time; 0 = unknown (made before format 2)
  uint64_t origin = 0;                     // regular files: the inode cloned or snapshotted; 0 = none
  uint64_t rdev = 0;                       // device nodes: the device number (format 3); 0 otherwise
};

// FIFOs, sockets and device nodes: inodes without a vLUN (no chunks), like symlinks without a target.
bool is_special_file(uint32_t mode);

inline constexpr uint32_t INODE_FLAG_THIN = 0x1;      // reserved for thin vLUNs
inline constexpr uint32_t INODE_FLAG_READONLY = 0x2;  // reserved for snapshots

struct Namespace {
  std::unordered_map<uint64_t, Inode> inodes;
  uint64_t next_ino = ROOT_INO + 1;
  Inode* find(uint64_t ino);
  const Inode* find(uint64_t ino) const;
};

// ---- Records: every change to the namespace ----
struct CreateRecord {  // a new inode and its first name; ino must equal ns.next_ino (then ++)
  uint64_t parent = 0;
  std::string name;
  uint64_t ino = 0;
  uint32_t mode = 0, uid = 0, gid = 0;
  int64_t time_ns = 0;  // atime = mtime = ctime; parent's mtime/ctime too
  std::string symlink;
  uint64_t rdev = 0;    // device nodes only; a special file's Create is journaled as type 10 (format 3)
};
struct LinkRecord {  // a further name for an existing non-directory inode
  uint64_t ino = 0, parent = 0;
  std::string name;
  int64_t time_ns = 0;
};
struct UnlinkRecord {  // removes a name (a directory must be empty); nlink drops
  uint64_t parent = 0;
  std::string name;
  int64_t time_ns = 0;
};
inline constexpr uint32_t RENAME_FLAG_NOREPLACE = 1;  // as renameat2's RENAME_NOREPLACE
inline constexpr uint32_t RENAME_FLAG_EXCHANGE = 2;   // as renameat2's RENAME_EXCHANGE
struct RenameRecord {  // POSIX rename semantics; a replaced target loses one link
  uint64_t src_parent = 0;
  std::string src_name;
  uint64_t dst_parent = 0;
  std::string dst_name;
  uint32_t flags = 0;
  int64_t time_ns = 0;
};
inline constexpr uint32_t SET_MODE = 1, SET_UID = 2, SET_GID = 4, SET_ATIME = 8, SET_MTIME = 16,
                          SET_CTIME = 32, SET_FLAGS = 64;
struct SetAttrRecord {
  uint64_t ino = 0;
  uint32_t valid = 0;  // SET_* bits
  uint32_t mode = 0, uid = 0, gid = 0, flags = 0;
  int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
};
// A size change with the LXT change that goes with it (truncate, write past EOF, fallocate):
// the LXT is cut or extended to lxt_count entries, then entries[i] is stored at first_index + i.
struct ResizeRecord {
  uint64_t ino = 0;
  uint64_t size = 0;
  uint32_t lxt_count = 0;
  uint32_t first_index = 0;
  std::vector<uint64_t> entries;
  int64_t time_ns = 0;  // mtime = ctime
};
// Replaces LXT entries without a size change (copy-on-write remap, clone of a range).
struct MapRecord {
  uint64_t ino = 0;
  uint32_t first_index = 0;
  std::vector<uint64_t> entries;
  int64_t time_ns = 0;
};
struct FreeRecord {  // removes an inode with nlink 0 (its chunks were released)
  uint64_t ino = 0;
};
// Format version 2: names the inode a regular file was cloned or snapshotted from (for vlunctl ls;
// the inode need not exist any more: inode numbers are never reused).
struct OriginRecord {
  uint64_t ino = 0;
  uint64_t origin = 0;
};

using Record = std::variant<CreateRecord, LinkRecord, UnlinkRecord, RenameRecord, SetAttrRecord,
                            ResizeRecord, MapRecord, FreeRecord, OriginRecord>;

// Checks that `record` applies to `ns` and applies it. On error, ns is unchanged. Errors:
// ENOENT (missing inode/name/parent), EEXIST (name taken, or NOREPLACE target exists),
// ENOTDIR, EISDIR, ENOTEMPTY, EINVAL (bad ino, rename of a dir into its own subtree, bad
// LXT range, name empty or containing '/', or "." / ".."), ENAMETOOLONG (> MAX_NAME),
// EMLINK (nlink overflow).
std::error_code apply(Namespace& ns, const Record& record);

// A fresh namespace: the root directory (ino 1, mode 0755 | S_IFDIR, nlink 2) at time_ns.
Namespace make_empty_namespace(int64_t time_ns, uint32_t uid = 0, uint32_t gid = 0);

// ---- On-disk geometry ----
struct FormatOptions {
  uint32_t block_size = 4096;    // 4096 or 512
  unsigned chunk_shift = 16;     // nmask: 2^16 blocks per chunk (hardware); smaller only for the simulator
  uint64_t checkpoint_bytes = 0; // size of one checkpoint slot; 0 = chosen from the device size
  uint64_t journal_bytes = 0;    // 0 = chosen from the device size
};

struct Geometry {
  uint32_t version = 0;
  uint32_t block_size = 0;
  unsigned chunk_shift = 0;
  uint64_t device_bytes = 0;
  uint64_t checkpoint_offset[2] = {0, 0};
  uint64_t checkpoint_bytes = 0;
  uint64_t journal_offset = 0;
  uint64_t journal_bytes = 0;
  uint64_t data_offset = 0;  // the physical LUN the AFU sees starts here (1 MiB aligned)
  uint64_t data_bytes = 0;
  uint8_t uuid[16] = {};
  uint64_t chunk_bytes() const { return uint64_t{block_size} << chunk_shift; }
  uint64_t data_chunks() const { return data_bytes / chunk_bytes(); }
};

// The longest LXT a file may have: thin vLUNs may promise up to this many times the flash.
inline constexpr uint64_t MAX_OVERCOMMIT = 4096;
inline uint64_t max_lxt_entries(const Geometry& g) {
  uint64_t n = g.data_chunks() * MAX_OVERCOMMIT;
  return n > UINT32_MAX ? UINT32_MAX : n;  // lxt_cnt is 32 bits
}

// Writes a fresh file system: both superblocks, an empty namespace as checkpoint, an empty
// journal. Refuses (EINVAL with a message in *why) a device too small for metadata + one chunk.
Result<Geometry> format(store::BlockStore& device, const FormatOptions& options,
                        std::string* why = nullptr);

// True if the first superblock (or the second) carries our magic, whatever its state.
bool has_vlunfs_signature(store::BlockStore& device);

struct OpenOptions {
  bool read_only = false;  // no journal writes; checkpoint() fails with EROFS
};

// What open() found, for messages, fsck and tests.
struct OpenReport {
  int superblock_used = -1;           // 0 or 1
  uint64_t generation = 0;
  bool fell_back = false;             // the newest superblock/checkpoint was unusable
  uint64_t records_replayed = 0;
  std::string journal_stop_reason;    // why replay stopped ("end of journal", "bad CRC at offset N", ...)
  std::vector<std::string> problems;  // every defect noticed, in words that name what and where
};

class MetaStore {
 public:
  // Loads the newest valid superblock, its checkpoint, and replays the journal up to the first
  // invalid record. Refuses with a message (EINVAL, or EIO for read errors; *why says what and
  // where) an unformatted device, an unknown version, or one where no superblock/checkpoint pair
  // is valid. Never crashes or reads out of bounds on a corrupt image.
  static Result<std::unique_ptr<MetaStore>> open(store::BlockStore& device, const OpenOptions& options,
                                                 OpenReport* report = nullptr, std::string* why = nullptr);
  virtual ~MetaStore() = default;

  virtual const Geometry& geometry() const = 0;
  // The namespace. The caller serialises all access to it and to append()/checkpoint() with its
  // own lock; wait_durable() may be called without that lock.
  virtual Namespace& ns() = 0;

  // Applies `record` (see apply()) and queues it for the journal. Returns its sequence number.
  // If the journal is full, takes a checkpoint first (the caller holds its lock, so the namespace
  // is consistent). EROFS on a read-only store; EIO once a journal write has failed (the store
  // then refuses all further changes: the in-memory state may be ahead of the disk).
  virtual Result<uint64_t> append(const Record& record) = 0;
  // Returns once every record up to `seq` is durable (written and flushed). Concurrent callers
  // share writes and flushes (group commit).
  virtual std::error_code wait_durable(uint64_t seq) = 0;
  // Writes the whole namespace to the inactive checkpoint slot, flushes, then the superblock with
  // generation + 1, flushes; the journal starts over. Caller holds its lock.
  virtual std::error_code checkpoint() = 0;
  // Journal use, 0.0 .. 1.0 (callers may checkpoint early, e.g. above 0.75).
  virtual double journal_fill() const = 0;
};


// ---- Inspection, for fsck: every superblock copy and checkpoint slot, not only the pair open() uses ----
struct MetadataCopyReport {
  uint64_t offset = 0;      // device byte
  bool valid = false;
  bool absent = false;      // superblocks: no magic at all
  uint64_t generation = 0;  // when known
  uint64_t inodes = 0;      // checkpoints: inodes in a valid one
  std::string problem;      // empty when valid
};
struct MetadataInspection {
  MetadataCopyReport superblocks[2];
  MetadataCopyReport checkpoints[2];  // slot i, checked against superblock copy i (which describes it)
  bool read_error = false;
  bool copies_disagree = false;       // both superblocks valid, but different geometry or UUID
  std::vector<std::string> problems;  // every defect, in words that name what and where
};
// Reads and checks both superblock copies and both checkpoint slots (CRC, fields, a decodable and
// consistent namespace). Never crashes or reads out of bounds on a corrupt device.
MetadataInspection inspect_metadata(store::BlockStore& device);

}  // namespace vlunfs::meta
