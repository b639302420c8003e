// The LXT array of one virtual RHT entry (spec §4.4, §5.4): its memory, in whole groups of 8.
#include "vlun/lxt_array.h"

#include <algorithm>
#include <new>

namespace vlunfs::vlun {

namespace {
uint64_t lxt_groups(uint64_t count) { return (count + LXT_GROUP_SIZE - 1) / LXT_GROUP_SIZE; }
}  // namespace

uint64_t LxtArray::capacity_for(uint64_t count) { return lxt_groups(count) * LXT_GROUP_SIZE; }

std::unique_ptr<uint64_t[]> LxtArray::copy_into_new_array(uint64_t count, uint64_t keep) const {
  if (count == 0) return nullptr;
  std::unique_ptr<uint64_t[]> array(new (std::nothrow) uint64_t[capacity_for(count)]());
  if (array) std::copy_n(entries_.get(), keep, array.get());
  return array;
}

Result<uint64_t*> LxtArray::room_to_grow(uint64_t new_count) {
  if (lxt_groups(new_count) == lxt_groups(count_)) return entries_.get();
  staged_ = copy_into_new_array(new_count, count_);
  if (!staged_) return errno_error(ENOMEM);
  return staged_.get();
}

LxtArray::Growth LxtArray::take_grown(uint64_t new_count) {
  Growth growth = Growth::in_place;
  if (staged_) {
    growth = entries_ ? Growth::replaced : Growth::first_array;
    if (entries_) replaced_.push_back(std::move(entries_));
    entries_ = std::move(staged_);
  }
  count_ = new_count;
  return growth;
}

Result<LxtArray::Removed> LxtArray::take_shrunk(uint64_t new_count) {
  Removed removed;
  removed.array = entries_.get();
  removed.first = new_count;
  removed.end = count_;
  if (lxt_groups(new_count) != lxt_groups(count_)) {
    std::unique_ptr<uint64_t[]> smaller = copy_into_new_array(new_count, new_count);
    if (new_count > 0 && !smaller) return errno_error(ENOMEM);
    removed.moved_from = std::move(entries_);
    entries_ = std::move(smaller);
  }
  count_ = new_count;
  return removed;
}

void LxtArray::give_back(Removed& removed) {
  if (removed.moved_from) {
    removed.moved_from.reset();
  } else {
    // Shrunk in place: the slots past the count are zero again, as a grow expects them.
    for (uint64_t i = removed.end; i-- > removed.first;) store_release<uint64_t>(removed.array[i], 0);
  }
}

std::error_code LxtArray::overwrite(uint64_t first, std::span<const uint64_t> with) {
  if (first > count_ || with.size() > count_ - first) return errno_error(EINVAL);
  for (size_t i = 0; i < with.size(); ++i) store_release<uint64_t>(entries_[first + i], with[i]);
  return {};
}

}  // namespace vlunfs::vlun
