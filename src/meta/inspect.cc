// inspect_metadata(): each superblock copy and each checkpoint slot judged on its own (meta.h). open()
// stops at the first usable superblock/checkpoint pair; fsck must also know about the other pair,
// because that is the fallback the next crash or media error would need.

#include "meta/checkpoint.h"
#include "meta/crc32c.h"
#include "meta/format.h"
#include "meta/superblock.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/inspection.h"
#include "vlunfs/meta/namespace.h"

#include <algorithm>
#include <cstdio>

namespace vlunfs::meta {

namespace {

std::string hex32(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "%08x", v);
  return text;
}

std::string state_name(SuperblockState state) {
  switch (state) {
    case SuperblockState::absent: return "absent (no magic)";
    case SuperblockState::unknown_version: return "unknown format version";
    case SuperblockState::corrupt: return "corrupt";
    case SuperblockState::valid: return "valid";
  }
  return "?";
}

// Not the version: the copy a version 1 image's upgrade did not rewrite still says 1.
bool same_geometry(const Geometry& a, const Geometry& b) {
  return a.block_size == b.block_size && a.chunk_shift == b.chunk_shift &&
         a.device_bytes == b.device_bytes && a.checkpoint_offset[0] == b.checkpoint_offset[0] &&
         a.checkpoint_offset[1] == b.checkpoint_offset[1] && a.checkpoint_bytes == b.checkpoint_bytes &&
         a.journal_offset == b.journal_offset && a.journal_bytes == b.journal_bytes &&
         a.data_offset == b.data_offset && a.data_bytes == b.data_bytes &&
         std::equal(std::begin(a.uuid), std::end(a.uuid), std::begin(b.uuid));
}

}  // namespace

MetadataInspection inspect_metadata(store::BlockStore& device) {
  MetadataInspection out;
  const uint64_t device_bytes = device.size_bytes();
  Superblock sb[2];
  for (int i = 0; i < 2; i++) {
    MetadataCopyReport& copy = out.superblocks[i];
    copy.offset = kSuperblockOffset[i];
    const std::string where = "superblock copy " + std::to_string(i) + " at byte " + std::to_string(copy.offset);
    if (device_bytes < kSuperblockOffset[i] + kSuperblockBytes) {
      copy.problem = "beyond the end of the device (" + std::to_string(device_bytes) + " bytes)";
      out.problems.push_back(where + ": " + copy.problem);
      continue;
    }
    std::vector<std::byte> block(kSuperblockBytes);
    if (auto ec = device.read(copy.offset, block)) {
      copy.problem = "read error: " + ec.message();
      out.read_error = true;
      out.problems.push_back(where + ": " + copy.problem);
      continue;
    }
    DecodedSuperblock decoded = decode_superblock(block, i, device_bytes);
    const SuperblockState state = decoded.state;
    copy.absent = state == SuperblockState::absent;
    if (state != SuperblockState::valid) {
      copy.problem = state_name(state) + (decoded.error.message.empty() ? "" : ": " + decoded.error.message);
      out.problems.push_back(where + ": " + copy.problem);
      continue;
    }
    sb[i] = decoded.superblock;
    copy.valid = true;
    copy.generation = sb[i].generation;
  }

  // Slot i belongs to copy i (generation g lives in copy g % 2 and slot g % 2).
  for (int i = 0; i < 2; i++) {
    MetadataCopyReport& slot = out.checkpoints[i];
    if (!out.superblocks[i].valid) {
      slot.problem = "not checked: superblock copy " + std::to_string(i) + ", which describes it, is not valid";
      continue;  // the superblock's own problem is already listed
    }
    slot.offset = sb[i].checkpoint_offset;
    slot.generation = sb[i].generation;
    const std::string where = "checkpoint slot " + std::to_string(i) + " (generation " +
                              std::to_string(sb[i].generation) + ", " + std::to_string(sb[i].checkpoint_length) +
                              " bytes at byte " + std::to_string(slot.offset) + ")";
    // decode_superblock() has checked the length against the slot size.
    std::vector<std::byte> image(static_cast<size_t>(sb[i].checkpoint_length));
    if (auto ec = device.read(slot.offset, image)) {
      slot.problem = "read error: " + ec.message();
      out.read_error = true;
      out.problems.push_back(where + ": " + slot.problem);
      continue;
    }
    const uint32_t crc = crc32c(image.data(), image.size());
    if (crc != sb[i].checkpoint_crc) {
      slot.problem = "bad CRC32C (superblock says " + hex32(sb[i].checkpoint_crc) + ", computed " + hex32(crc) + ")";
      out.problems.push_back(where + ": " + slot.problem);
      continue;
    }
    auto ns = decode_checkpoint(image, sb[i].generation, sb[i].journal_first_seq);
    if (!ns) {
      slot.problem = ns.error().message;
      out.problems.push_back(where + ": " + slot.problem);
      continue;
    }
    slot.valid = true;
    slot.inodes = ns.value().inodes.size();
  }

  if (out.superblocks[0].valid && out.superblocks[1].valid) {
    if (!same_geometry(sb[0].geometry, sb[1].geometry)) {
      out.copies_disagree = true;
      out.problems.push_back("the two superblock copies describe different file systems (geometry or UUID differ)");
    }
  }
  return out;
}

}  // namespace vlunfs::meta
