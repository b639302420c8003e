// The per-LUN block allocator of the cxlflash driver (spec §5.1-§5.3): a free bitmap over chunks
// (bit = 1 means free), a per-chunk clone counter (extra references) and the word-granular
// elevator cursor. Not thread-safe: the driver holds the LUN's allocator mutex around every call.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace vlunfs::vlun {

inline constexpr unsigned MAX_AUN_CLONE_CNT = 0xFF;

class ChunkAllocator {
 public:
  explicit ChunkAllocator(uint64_t total_aus);

  // ba_alloc: one chunk, elevator order (spec §5.2); nullopt when none is free.
  std::optional<uint64_t> alloc();

  enum class FreeResult { already_free, still_shared, freed };
  // ba_free: drops one reference; the chunk returns to the free map only with its last owner.
  FreeResult free(uint64_t aun);
  // ba_clone: one more reference; false if the chunk is free or its counter is at 255.
  bool clone(uint64_t aun);
  // Rebuild from persisted maps (not in the driver): marks a chunk owned, or adds a reference if
  // it is owned already. False if out of range or the counter is at 255.
  bool reserve(uint64_t aun);

  uint64_t space() const { return free_aun_cnt_; }  // ba_space
  uint64_t total() const { return total_aus_; }
  bool is_free(uint64_t aun) const;
  // Owners of a chunk: 0 when free, else 1 + its clone counter.
  unsigned references(uint64_t aun) const;

 private:
  std::vector<uint64_t> lun_alloc_map_;
  std::vector<uint8_t> aun_clone_map_;
  uint64_t total_aus_;
  uint64_t free_aun_cnt_;
  size_t free_low_idx_ = 0;
  size_t free_curr_idx_ = 0;
  size_t free_high_idx_;
};

}  // namespace vlunfs::vlun
