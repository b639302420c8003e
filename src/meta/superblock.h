// The superblock: geometry, generation, and where this generation's checkpoint and journal are
// (format.h, docs/format.md "Superblock").
#pragma once

#include "vlunfs/error.h"
#include "vlunfs/meta/geometry.h"

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace vlunfs::meta {

struct Superblock {
  Geometry geometry;
  uint64_t generation = 0;
  uint64_t checkpoint_offset = 0;  // == geometry.checkpoint_offset[generation % 2]
  uint64_t checkpoint_length = 0;
  uint32_t checkpoint_crc = 0;
  uint64_t journal_epoch = 0;  // == generation
  uint64_t journal_first_seq = 1;
};

// The geometry format() lays out for a device of `device_bytes` (all but the uuid), or EINVAL
// saying which option or size does not fit.
Result<Geometry, Error> plan_geometry(uint64_t device_bytes, const FormatOptions& options);

// Nothing (false) if `g` is a layout this version writes and it fits a device of `device_bytes`;
// otherwise EUCLEAN saying which field is wrong.
Error check_geometry(const Geometry& g, uint64_t device_bytes);

// Exactly kSuperblockBytes.
std::vector<std::byte> encode_superblock(const Superblock& sb);

enum class SuperblockState {
  absent,           // no magic: not ours, or never written
  unknown_version,  // our magic, a version this code does not read
  corrupt,          // bad CRC or fields that contradict each other or the device
  valid,
};

// One superblock copy as decode_superblock() found it.
struct DecodedSuperblock {
  SuperblockState state = SuperblockState::absent;
  Superblock superblock;  // meaningful only when state is valid
  Error error;            // for anything but valid: what is wrong (without where; the caller knows)
};

// Decodes copy `copy` (0 or 1) of a device of `device_bytes`.
DecodedSuperblock decode_superblock(std::span<const std::byte> block, int copy, uint64_t device_bytes);

}  // namespace vlunfs::meta
