// The rule for the chunk size, one for every program: a chunk is 2^chunk_shift blocks, and
// chunk_shift is the nmask of a format-0 RHT entry (spec §2, §4.4). The hardware's is 16
// (MC_CHUNK_SHIFT: SISLite's minimum chunk is 0x10000 LBAs). Smaller values are beyond the hardware,
// for the simulator (tests, tiny demos), down to 1; never 0, since an entry whose nmask is 0 reads
// as not in use (spec §4.4, §7 pitfall 16). mkfs, the superblock, fsck, the mount and the driver
// all take exactly this range.
#pragma once

#include <string>

namespace vlunfs::sisl {

inline constexpr unsigned HARDWARE_CHUNK_SHIFT = 16;
inline constexpr unsigned MIN_CHUNK_SHIFT = 1;
inline constexpr unsigned MAX_CHUNK_SHIFT = HARDWARE_CHUNK_SHIFT;

constexpr bool chunk_shift_in_range(unsigned chunk_shift) {
  return chunk_shift >= MIN_CHUNK_SHIFT && chunk_shift <= MAX_CHUNK_SHIFT;
}

// Why a chunk shift is refused, in words that say what is accepted.
inline std::string chunk_shift_refusal(unsigned chunk_shift) {
  return "chunk shift " + std::to_string(chunk_shift) + " is outside " + std::to_string(MIN_CHUNK_SHIFT) + ".." +
         std::to_string(MAX_CHUNK_SHIFT) + " (" + std::to_string(HARDWARE_CHUNK_SHIFT) +
         " is the hardware's, smaller values the simulator's only)";
}

}  // namespace vlunfs::sisl
