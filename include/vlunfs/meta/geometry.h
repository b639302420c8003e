// meta/: where things are on the device (docs/format.md): two superblocks, two checkpoint slots,
// the journal, then the data area (the physical LUN the AFU sees); and format(), which writes them.
#pragma once

#include "vlunfs/chunk_shift.h"
#include "vlunfs/error.h"
#include "vlunfs/store.h"

#include <cstdint>
#include <string>

namespace vlunfs::meta {

struct FormatOptions {
  uint32_t block_size = 4096;    // 4096 or 512
  unsigned chunk_shift = sisl::HARDWARE_CHUNK_SHIFT;  // nmask, in vlunfs/chunk_shift.h's range
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
// journal. Refuses (EINVAL, saying why) a device too small for metadata + one chunk; a failed
// write or flush comes back with its own code and says what was being written at which byte.
Result<Geometry, Error> format(store::BlockStore& device, const FormatOptions& options);

// True if the first superblock (or the second) carries our magic, whatever its state.
bool has_vlunfs_signature(store::BlockStore& device);

}  // namespace vlunfs::meta
