// One open virtual LUN: its resource handle on a context of the LunClient, its size in chunks,
// its LXT, and READ(16)/WRITE(16) by vLBA through the context's host queue (spec §4.2).
#pragma once

#include "vlunfs/error.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace vlunfs::client {

class LunClient;
struct ContextSlot;

// A write stopped at a chunk mapped without the W bit (a copy-on-write share, or the zero chunk
// of a thin vLUN): the AFU answered LXT_RW_PERM. Blocks before `vlba` were written; the caller
// makes the chunk writable and writes again from `vlba`.
struct WriteFault {
  uint64_t vlba;
};

// What `vlunctl ls` shows of the vLUN's hardware side.
struct Mapping {
  uint64_t context_id = 0;
  uint64_t rsrc_handle = 0;
  uint64_t last_lba = 0;           // 4K units, all-ones for an empty vLUN (pitfall 2)
  std::vector<uint64_t> chunks;    // physical chunk numbers, in vLUN order
};

class Vlun {
 public:
  // Checks the handle in without giving its chunks back (the file lives on in the metadata),
  // unless release() already gave them back.
  ~Vlun();
  Vlun(const Vlun&) = delete;
  Vlun& operator=(const Vlun&) = delete;

  uint64_t context_id() const;
  uint64_t rsrc_handle() const { return handle_; }
  // Chunks the AFU sees in the vLUN's LXT.
  uint64_t chunks() const { return chunks_.load(); }

  // ---- data (buffers 16-byte aligned, as the AFU's data EA must be) ----
  // Errors: EACCES for a permission fault, else EIO; the reason (the IOASA) goes to the log.
  std::error_code read(uint64_t vlba, uint64_t nblocks, std::byte* buf);
  // Either every block is written (nullopt), or the write stopped at a WriteFault, or it failed:
  // EROFS when the context may not write at all (a read-only mount), else EIO with the reason logged.
  Result<std::optional<WriteFault>> write(uint64_t vlba, uint64_t nblocks, const std::byte* buf);
  // WRITE SAME(16)+UNMAP of vLBAs [vlba, vlba + nblocks) through the master; it bypasses the LXT
  // permissions, so shared chunks must be made private first.
  std::error_code zero(uint64_t vlba, uint64_t nblocks);

  // ---- the map ----
  // VLUN_RESIZE to `chunks`, all or nothing: a grow that gets fewer chunks (pitfall 4) or whose
  // SYNC still fails after the one retry (pitfall 5) is undone, and the vLUN keeps its old chunks.
  // Returns the new LXT. A shrink gives chunks back (zeroed at their last owner) and has no undo.
  Result<std::vector<uint64_t>> resize(uint64_t chunks);
  // Appends entries without allocating (thin growth maps the zero chunk, clones map shared
  // chunks). EAGAIN when the AFU's SYNC failed: the entries are published all the same, and only
  // the caller knows whose references they carry, so the caller undoes them.
  std::error_code extend(std::span<const uint64_t> entries);
  // Replaces entries [first, first + entries.size()) in place, then a heavyweight SYNC: no command
  // still runs under an old entry when this returns.
  std::error_code remap(uint64_t first, std::span<const uint64_t> entries);
  // A copy of the current LXT.
  Result<std::vector<uint64_t>> lxt() const;
  Mapping mapping() const;

  // RELEASE: the chunks go back to the pool, zeroed when their last owner lets go.
  std::error_code release();

 private:
  friend class LunClient;
  Vlun(LunClient& client, ContextSlot& slot, uint64_t handle, uint64_t label, uint64_t chunks)
      : client_(client), slot_(slot), handle_(handle), label_(label), chunks_(chunks) {}

  std::error_code undo_growth(uint64_t back_to);

  LunClient& client_;
  ContextSlot& slot_;
  const uint64_t handle_;
  const uint64_t label_;          // for log lines: the owner's name for it (an inode number)
  std::atomic<uint64_t> chunks_;  // the LXT's length, as last set through this object
  bool released_ = false;
};

}  // namespace vlunfs::client
