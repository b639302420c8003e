// Appends records to the journal and makes them durable with group commit (docs/format.md,
// "Journal" and "Write order").
//
// add() puts a framed record into an in-memory tail buffer; nothing reaches the device until some
// thread calls wait_durable(). The first such thread becomes the leader: it takes every record added
// so far, writes the journal blocks they touch (whole blocks, from the block that holds the durable
// end), flushes, and wakes the others. Threads that arrive meanwhile wait and are then covered by
// that write or lead the next one, so many concurrent waiters share a few flushes.
#pragma once

#include "meta/format.h"
#include "vlunfs/error.h"
#include "vlunfs/store.h"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace vlunfs::meta {

class JournalWriter {
 public:
  JournalWriter(store::BlockStore& device, uint64_t journal_offset, uint64_t journal_bytes);
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Continues a journal of `epoch` whose valid records end at `end`; `tail` holds the bytes of the
  // block that contains `end`, from its start up to `end`, as they are on the device (they are
  // rewritten, unchanged, with the next records). Every record before `next_seq` counts as durable.
  void start(uint64_t epoch, uint64_t next_seq, uint32_t chain, uint64_t end, std::vector<std::byte> tail);

  // Whether a record with this payload fits after the records added so far / in an empty journal.
  bool fits(size_t payload_bytes) const;
  bool fits_empty(size_t payload_bytes) const;

  // Frames and queues a record; returns its sequence number. EIO once the writer has failed.
  // Requires fits(payload.size()). add() calls are serialised by the caller.
  Result<uint64_t> add(RecordType type, std::span<const std::byte> payload);

  // Returns once every record up to `seq` is durable; EIO if the writer failed before that; EINVAL
  // for a sequence number add() has not handed out.
  std::error_code wait_durable(uint64_t seq);

  // A checkpoint takes the journal for itself: begin_checkpoint() waits for a leader's write to
  // finish and keeps new ones from starting (EIO if the writer has failed), and reports the last
  // sequence number handed out. One of the end_ calls gives the journal back:
  std::error_code begin_checkpoint(uint64_t* last_seq);
  // The checkpoint holds every record before first_seq: all of them are durable, and the journal
  // starts over at its beginning with a new epoch.
  void end_checkpoint_reset(uint64_t epoch, uint64_t first_seq, uint32_t seed);
  // Nothing was written (e.g. the namespace did not fit its slot).
  void end_checkpoint_unchanged();
  // A write or flush failed: what is on the device is unknown, so the writer refuses from now on.
  void end_checkpoint_failed();

  bool failed() const;
  double fill() const;

 private:
  store::BlockStore& device_;
  const uint64_t journal_offset_;
  const uint64_t journal_bytes_;

  mutable std::mutex mu_;        // protects every member below
  std::condition_variable idle_;  // signalled when busy_ clears
  bool busy_ = false;             // a leader is writing, or a checkpoint holds the journal
  bool failed_ = false;           // a write or flush failed; nothing becomes durable any more
  uint64_t epoch_ = 0;
  uint32_t chain_ = 0;        // header CRC of the last record added (the seed before the first)
  uint64_t next_seq_ = 1;     // what add() hands out next
  uint64_t durable_seq_ = 0;  // every record up to this one is durable
  uint64_t end_ = 0;          // journal offset where the next record goes
  uint64_t buffer_start_ = 0;  // journal offset of buffer_[0]: the block that holds the durable end
  std::vector<std::byte> buffer_;  // journal bytes [buffer_start_, end_)
};

}  // namespace vlunfs::meta
