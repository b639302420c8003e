// The LXT of one virtual (format-0) RHT entry: the array of LXT entries the AFU walks to turn a
// vLBA into a physical LBA (spec §4.4, §4.5). It is the one owner of LXT memory in the driver.
//
// Its capacity is always whole groups of LXT_GROUP_SIZE entries (spec §2, §5.5), and a grow or a
// shrink moves to a new array only when the group count changes. Every change is published to the
// RHT entry in the order of spec §4.4, so that the AFU, which reads lxt_cnt on both sides of
// lxt_start (sim_afu.cc), never pairs a count with an array shorter than it:
// - grow:   the new entries, then lxt_start, then lxt_cnt;
// - shrink: lxt_cnt first, then lxt_start (null at 0 entries); the removed entries and the old
//           array are given back only after the caller's SYNC.
// `Rhte` is sisl_rht_entry in the driver (anything with lxt_start and lxt_cnt: tests watch it).
#pragma once

#include "vlun/release_store.h"
#include "vlunfs/error.h"
#include "vlunfs/vlun.h"

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace vlunfs::vlun {

class LxtArray {
 public:
  // What a grow did with the array lxt_start named: wrote into it, gave an empty LXT its first
  // array, or replaced it with a bigger one (kept, as the AFU may still walk it, until
  // release_replaced()).
  enum class Growth { in_place, first_array, replaced };

  LxtArray() = default;
  LxtArray(LxtArray&&) = default;
  LxtArray& operator=(LxtArray&&) = default;

  // Entries an array holding `count` has room for: whole groups of LXT_GROUP_SIZE, 0 for 0.
  static uint64_t capacity_for(uint64_t count);

  // The entries in use, as last published to the RHT entry (its lxt_cnt).
  uint64_t size() const { return count_; }
  uint64_t capacity() const { return capacity_for(count_); }
  // The array (what lxt_start holds): null while the capacity is 0.
  const uint64_t* data() const { return entries_.get(); }
  std::span<const uint64_t> entries() const { return {entries_.get(), count_}; }

  // Grows to new_count >= size() (spec §4.4 "LXT growth", §5.4): entries [size(), new_count) are
  // entry_at(i), then rhte.lxt_start and rhte.lxt_cnt are published. ENOMEM, with nothing changed
  // and entry_at never called, when a bigger array cannot be had. An array a grow moved away from
  // is kept, since the AFU may still walk it, until release_replaced().
  template <class Rhte, class EntryAt>
  Result<Growth> grow(Rhte& rhte, uint64_t new_count, EntryAt&& entry_at) {
    Result<uint64_t*> room = room_to_grow(new_count);
    if (!room) return room.error();
    for (uint64_t i = count_; i < new_count; ++i) store_release<uint64_t>(room.value()[i], entry_at(i));
    const Growth growth = take_grown(new_count);
    publish_field(rhte.lxt_start, reinterpret_cast<uint64_t>(entries_.get()));
    publish_field(rhte.lxt_cnt, static_cast<uint32_t>(new_count));
    return growth;
  }

  // Frees the arrays earlier grows moved away from: call once a SYNC has completed after them.
  void release_replaced() { replaced_.clear(); }
  size_t replaced_arrays() const { return replaced_.size(); }

  // Shrinks to new_count <= size() (spec §4.4 "LXT shrink", §5.4): rhte.lxt_cnt first, then
  // rhte.lxt_start (a smaller copy when the group count changes, null at 0). Then
  // release(removed) runs with the entries [new_count, old size) - it SYNCs and gives their chunks
  // back - and only after it is the old array freed, or, in place, are the removed slots cleared.
  // ENOMEM, with nothing changed and release never called, when a smaller array cannot be had.
  template <class Rhte, class Release>
  std::error_code shrink(Rhte& rhte, uint64_t new_count, Release&& release) {
    Result<Removed> removed = take_shrunk(new_count);
    if (!removed) return removed.error();
    publish_field(rhte.lxt_cnt, static_cast<uint32_t>(new_count));
    publish_field(rhte.lxt_start, reinterpret_cast<uint64_t>(entries_.get()));
    release(removed.value().entries());
    give_back(removed.value());
    return {};
  }

  // Replaces entries [first, first + with.size()) in place, one 64-bit store each; EINVAL when
  // the range goes beyond size().
  std::error_code overwrite(uint64_t first, std::span<const uint64_t> with);

 private:
  // What a shrink took out of use, kept until the caller's SYNC has completed.
  struct Removed {
    std::unique_ptr<uint64_t[]> moved_from;  // the old array; null when shrunk in place
    uint64_t* array = nullptr;               // where the removed entries are
    uint64_t first = 0, end = 0;
    std::span<const uint64_t> entries() const { return {array + first, end - first}; }
  };

  // The array a grow to new_count writes its new entries into: this one, or a zero-filled bigger
  // one holding a copy of the entries (staged_ until take_grown).
  Result<uint64_t*> room_to_grow(uint64_t new_count);
  // Makes the grown array this one (the old one joins replaced_) and new_count the size.
  Growth take_grown(uint64_t new_count);
  // Makes the array of new_count entries this one; ENOMEM when a smaller copy cannot be had.
  Result<Removed> take_shrunk(uint64_t new_count);
  static void give_back(Removed& removed);
  // A zero-filled array with room for `count` entries holding the first `keep` of this one.
  std::unique_ptr<uint64_t[]> copy_into_new_array(uint64_t count, uint64_t keep) const;

  std::unique_ptr<uint64_t[]> entries_;
  uint64_t count_ = 0;
  std::unique_ptr<uint64_t[]> staged_;
  std::vector<std::unique_ptr<uint64_t[]>> replaced_;
};

}  // namespace vlunfs::vlun
