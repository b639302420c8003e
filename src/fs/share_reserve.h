// fs/: the share reserve — the chunks the pool holds back so that a thick vLUN never gets ENOSPC
// on a write inside its size, however its chunks are shared (docs/format.md, "The share reserve").
//
// A write to a shared chunk needs a fresh chunk (copy-on-write, design decision 5); so does a write
// to a zero-chunk entry. A thick vLUN was promised all of its chunks when it grew, so the pool keeps
// one chunk back for every such write a thick vLUN may still make. The accounting invariant:
//
//   reserved = Σ over chunks c named by more than one LXT entry of min(thick(c), refs(c) - 1)
//            + the LXT entries of thick vLUNs that map the zero chunk
//   free chunks >= reserved
//
// refs(c) is the number of LXT entries naming c (its reference count in the allocator), thick(c)
// the number of them in thick, writable vLUNs (neither thin nor a snapshot). Why min(thick, refs-1):
// each break of a share takes one fresh chunk and leaves c one owner fewer, and the owner left last
// keeps c itself; so c's thick owners can take at most refs-1 fresh chunks between them, and at most
// one each. Thin vLUNs and snapshots hold no reserve: a thin vLUN promises nothing (its writes may
// get ENOSPC, as documented), a snapshot never writes.
//
// Every change keeps the invariant: a thick owner's break takes one chunk and lowers the reserve by
// exactly one (so it may use a reserved chunk, and needs no check); dropping an entry (unlink,
// shrink, punch, a break by a thin owner) never raises it; everything else that takes chunks (a
// grow, a thin vLUN's first write, a new share) is refused with ENOSPC unless the free chunks still
// cover the reserve after it.
//
// Nothing of it is persisted: rebuild() derives it from the chunk maps at mount (design decision
// 3), and fsck checks the invariant from the same maps.
#pragma once

#include "vlunfs/meta/namespace.h"

#include <cstdint>
#include <span>
#include <unordered_map>

namespace vlunfs::fs {

class ShareReserve {
 public:
  // One LXT entry naming a chunk appears or goes.
  struct Change {
    uint64_t aun = 0;
    bool added = true;       // false: the entry goes
    bool thick = false;      // the entry's vLUN is thick and writable
    // A chunk not shared so far has one owner, whose kind this tracker does not know: an added
    // entry says it (the kind of the vLUN the chunk is shared from).
    bool sole_owner_thick = false;
  };
  struct Effect {
    int64_t reserved = 0;  // the change of reserved()
    uint64_t freed = 0;    // chunks whose last entry went (back to the pool)
  };

  // The chunk thin vLUNs map for unwritten space: not reference counted, held back for thick
  // vLUNs that map it (a thick copy of a thin file).
  void set_zero_chunk(uint64_t aun) { zero_aun_ = aun; }

  // Derives everything from the chunk maps (design decision 3).
  void rebuild(const meta::Namespace& ns);
  // What applying `changes`, in order, would do; nothing changes.
  Effect preview(std::span<const Change> changes) const;
  Effect apply(std::span<const Change> changes);

  // Whether an operation may go ahead that takes `use` chunks of the unreserved pool: chunks it
  // allocates, less chunks it frees, plus its change of the reserve. It may if the free chunks
  // still cover the reserve after it, or if it does not make the pool's shortfall worse (an image
  // written before the reserve existed may start out with less free than reserved).
  bool allows(uint64_t free_chunks, int64_t use) const;

  uint64_t reserved() const { return reserved_; }
  // Chunks named by more than one entry.
  uint64_t shared_chunks() const { return shared_.size(); }
  bool is_shared(uint64_t aun) const { return shared_.count(aun) != 0; }
  // Whether a vLUN with these inode flags holds a reserve for its shared chunks.
  static bool thick_writable(uint32_t inode_flags) {
    return (inode_flags & (meta::INODE_FLAG_THIN | meta::INODE_FLAG_READONLY)) == 0;
  }

 private:
  struct Owners {
    uint32_t refs = 1;
    uint32_t thick = 0;
  };
  static uint64_t reserve_of(const Owners& o) { return o.refs > 1 ? std::min(o.thick, o.refs - 1) : 0; }
  // Applies one change to `owners` (the chunk's state; refs 1 when it was not tracked) and
  // returns the change of the reserve.
  int64_t step(const Change& c, Owners& owners, bool tracked) const;

  std::unordered_map<uint64_t, Owners> shared_;  // chunks with refs > 1
  uint64_t thick_zero_maps_ = 0;
  uint64_t reserved_ = 0;
  uint64_t zero_aun_ = UINT64_MAX;
};

}  // namespace vlunfs::fs
