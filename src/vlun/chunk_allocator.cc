#include "vlun/chunk_allocator.h"

#include <bit>
#include <stdexcept>

namespace vlunfs::vlun {

ChunkAllocator::ChunkAllocator(uint64_t total_aus)
    : lun_alloc_map_((total_aus + 63) / 64, ~uint64_t{0}),
      aun_clone_map_(total_aus, 0),
      total_aus_(total_aus),
      free_aun_cnt_(total_aus),
      free_high_idx_(lun_alloc_map_.size()) {
  if (total_aus == 0) throw std::invalid_argument("a LUN needs at least one chunk");
  // Clear the bits past the last chunk in the last word: they are never allocatable.
  if (unsigned used = total_aus % 64) lun_alloc_map_.back() = (uint64_t{1} << used) - 1;
}

std::optional<uint64_t> ChunkAllocator::alloc() {
  if (free_aun_cnt_ == 0) return std::nullopt;
  auto take_from = [&](size_t lo, size_t hi) -> std::optional<uint64_t> {
    for (size_t w = lo; w < hi; ++w) {
      if (lun_alloc_map_[w] == 0) continue;
      unsigned bit = static_cast<unsigned>(std::countr_zero(lun_alloc_map_[w]));
      lun_alloc_map_[w] &= ~(uint64_t{1} << bit);
      --free_aun_cnt_;
      // The cursor stays in this word unless its last bit was taken (spec §5.2).
      free_curr_idx_ = bit == 63 ? w + 1 : w;
      return w * 64 + bit;
    }
    return std::nullopt;
  };
  if (auto aun = take_from(free_curr_idx_, free_high_idx_)) return aun;
  return take_from(free_low_idx_, free_curr_idx_);
}

ChunkAllocator::FreeResult ChunkAllocator::free(uint64_t aun) {
  if (aun >= total_aus_ || is_free(aun)) return FreeResult::already_free;
  if (aun_clone_map_[aun] > 0) {
    --aun_clone_map_[aun];
    return FreeResult::still_shared;
  }
  lun_alloc_map_[aun / 64] |= uint64_t{1} << (aun % 64);
  ++free_aun_cnt_;
  return FreeResult::freed;
}

bool ChunkAllocator::clone(uint64_t aun) {
  if (aun >= total_aus_ || is_free(aun) || aun_clone_map_[aun] == MAX_AUN_CLONE_CNT) return false;
  ++aun_clone_map_[aun];
  return true;
}

bool ChunkAllocator::reserve(uint64_t aun) {
  if (aun >= total_aus_) return false;
  if (!is_free(aun)) return clone(aun);
  lun_alloc_map_[aun / 64] &= ~(uint64_t{1} << (aun % 64));
  --free_aun_cnt_;
  return true;
}

bool ChunkAllocator::is_free(uint64_t aun) const {
  return aun < total_aus_ && (lun_alloc_map_[aun / 64] >> (aun % 64)) & 1;
}

unsigned ChunkAllocator::references(uint64_t aun) const {
  if (aun >= total_aus_ || is_free(aun)) return 0;
  return 1u + aun_clone_map_[aun];
}

}  // namespace vlunfs::vlun
