// meta/: the persistent namespace and chunk maps (design.md decision 3): the newest valid superblock
// and checkpoint, plus an append-only journal of records (sequence number + CRC32C each).
#pragma once

#include "vlunfs/error.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/namespace.h"
#include "vlunfs/meta/record.h"
#include "vlunfs/store.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vlunfs::meta {

struct OpenOptions {
  bool read_only = false;  // no journal writes; checkpoint() fails with EROFS
};

// What a problem open() noticed is about. fsck reports the superblock copies and checkpoint slots
// itself (inspect_metadata); the others only open() sees.
enum class OpenProblemPart {
  superblock_copy,  // one superblock copy
  checkpoint,       // the checkpoint one superblock copy names
  uuid,             // the two copies against each other
  journal,          // replay stopped at a record that is intact but cannot be used
};

struct OpenProblem {
  OpenProblemPart part;
  std::string text;  // names what and where
};

// What open() found, for messages, fsck and tests.
struct OpenReport {
  int superblock_used = -1;           // 0 or 1
  uint64_t generation = 0;
  bool fell_back = false;             // the newest superblock/checkpoint was unusable
  uint64_t records_replayed = 0;
  std::string journal_stop_reason;    // why replay stopped ("end of journal", "bad CRC at offset N", ...)
  std::vector<OpenProblem> problems;  // every defect noticed
};

class MetaStore {
 public:
  // Loads the newest valid superblock, its checkpoint, and replays the journal up to the first
  // invalid record. Refuses (EINVAL, or EIO for read errors, with a message that says what and
  // where) an unformatted device, an unknown version, or one where no superblock/checkpoint pair
  // is valid. Never crashes or reads out of bounds on a corrupt image.
  static Result<std::unique_ptr<MetaStore>, Error> open(store::BlockStore& device, const OpenOptions& options,
                                                        OpenReport* report = nullptr);
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

}  // namespace vlunfs::meta
