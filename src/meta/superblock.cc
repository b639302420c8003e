// Superblock encoding, decoding and the geometry rules (superblock.h).

#include "meta/superblock.h"

#include "meta/coding.h"
#include "meta/crc32c.h"
#include "meta/format.h"
#include "vlunfs/chunk_shift.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace vlunfs::meta {

namespace sf = superblock_field;

namespace {

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }
uint64_t round_down(uint64_t v, uint64_t to) { return v / to * to; }

// A request format() cannot satisfy, and a superblock that contradicts itself or the device.
Error refused(std::string message) { return make_error(EINVAL, std::move(message)); }
Error corrupt(std::string message) { return make_error(EUCLEAN, std::move(message)); }

std::string bytes_str(uint64_t n) { return std::to_string(n) + " bytes"; }

// Where the regions go, given their sizes: the layout is a pure function of the sizes, so a reader
// can check every offset instead of trusting it. Sizes are at most 4 GiB each, so no sum overflows.
void place_regions(Geometry* g) {
  g->checkpoint_offset[0] = kFirstCheckpointOffset;
  g->checkpoint_offset[1] = kFirstCheckpointOffset + g->checkpoint_bytes;
  g->journal_offset = g->checkpoint_offset[1] + g->checkpoint_bytes;
  g->data_offset = round_up(g->journal_offset + g->journal_bytes, kDataAlignment);
}

}  // namespace

Result<Geometry, Error> plan_geometry(uint64_t device_bytes, const FormatOptions& options) {
  Geometry g;
  g.version = kFormatVersion;
  if (options.block_size != 4096 && options.block_size != 512) {
    return refused("block size " + std::to_string(options.block_size) + " is neither 4096 nor 512");
  }
  if (!sisl::chunk_shift_in_range(options.chunk_shift)) return refused(sisl::chunk_shift_refusal(options.chunk_shift));
  g.block_size = options.block_size;
  g.chunk_shift = options.chunk_shift;
  g.device_bytes = device_bytes;

  if (options.checkpoint_bytes == 0) {
    g.checkpoint_bytes = round_down(std::clamp(device_bytes / 128, kDefaultCheckpointMin, kDefaultCheckpointMax), kMetaBlock);
  } else if (options.checkpoint_bytes < kMinCheckpointBytes || options.checkpoint_bytes > kMaxCheckpointBytes) {
    return refused("checkpoint_bytes " + std::to_string(options.checkpoint_bytes) + " is outside [" +
                         std::to_string(kMinCheckpointBytes) + ", " + std::to_string(kMaxCheckpointBytes) + "]");
  } else {
    g.checkpoint_bytes = round_up(options.checkpoint_bytes, kMetaBlock);
  }
  if (options.journal_bytes == 0) {
    g.journal_bytes = round_down(std::clamp(device_bytes / 256, kDefaultJournalMin, kDefaultJournalMax), kMetaBlock);
  } else if (options.journal_bytes < kMinJournalBytes || options.journal_bytes > kMaxJournalBytes) {
    return refused("journal_bytes " + std::to_string(options.journal_bytes) + " is outside [" +
                         std::to_string(kMinJournalBytes) + ", " + std::to_string(kMaxJournalBytes) + "]");
  } else {
    g.journal_bytes = round_up(options.journal_bytes, kMetaBlock);
  }
  place_regions(&g);

  const uint64_t chunk = g.chunk_bytes();
  if (g.data_offset > device_bytes || device_bytes - g.data_offset < chunk) {
    return refused("a device of " + bytes_str(device_bytes) + " cannot hold the metadata (" +
                         bytes_str(g.data_offset) + ") plus one chunk of " + bytes_str(chunk));
  }
  g.data_bytes = round_down(device_bytes - g.data_offset, g.block_size);

  return g;
}

Error check_geometry(const Geometry& g, uint64_t device_bytes) {
  if (g.block_size != 4096 && g.block_size != 512) return corrupt("block size " + std::to_string(g.block_size));
  if (!sisl::chunk_shift_in_range(g.chunk_shift)) return corrupt(sisl::chunk_shift_refusal(g.chunk_shift));
  if (g.device_bytes > device_bytes) {
    return corrupt("the file system spans " + bytes_str(g.device_bytes) + " but the device has only " +
                         bytes_str(device_bytes));
  }
  if (g.checkpoint_bytes < kMinCheckpointBytes || g.checkpoint_bytes > kMaxCheckpointBytes ||
      g.checkpoint_bytes % kMetaBlock != 0) {
    return corrupt("checkpoint slot size " + std::to_string(g.checkpoint_bytes));
  }
  if (g.journal_bytes < kMinJournalBytes || g.journal_bytes > kMaxJournalBytes || g.journal_bytes % kMetaBlock != 0) {
    return corrupt("journal size " + std::to_string(g.journal_bytes));
  }
  Geometry expected = g;
  place_regions(&expected);
  if (g.checkpoint_offset[0] != expected.checkpoint_offset[0] || g.checkpoint_offset[1] != expected.checkpoint_offset[1] ||
      g.journal_offset != expected.journal_offset || g.data_offset != expected.data_offset) {
    return corrupt("region offsets do not follow from the region sizes");
  }
  if (g.data_offset > g.device_bytes || g.data_bytes > g.device_bytes - g.data_offset) {
    return corrupt("the data area (" + bytes_str(g.data_bytes) + " at byte " + std::to_string(g.data_offset) +
                         ") runs past the end of the file system (" + bytes_str(g.device_bytes) + ")");
  }
  if (g.data_bytes < g.chunk_bytes()) return corrupt("the data area is smaller than one chunk");
  return {};
}

std::vector<std::byte> encode_superblock(const Superblock& sb) {
  std::vector<std::byte> block(kSuperblockBytes);
  std::byte* p = block.data();
  const Geometry& g = sb.geometry;
  std::memcpy(p + sf::kMagic, kSuperblockMagic, sizeof kSuperblockMagic);
  store_u32(p + sf::kVersion, kFormatVersion);
  store_u32(p + sf::kSize, static_cast<uint32_t>(kSuperblockBytes));
  std::memcpy(p + sf::kUuid, g.uuid, sizeof g.uuid);
  store_u64(p + sf::kGeneration, sb.generation);
  store_u32(p + sf::kBlockSize, g.block_size);
  store_u32(p + sf::kChunkShift, g.chunk_shift);
  store_u64(p + sf::kDeviceBytes, g.device_bytes);
  store_u64(p + sf::kCheckpointSlot0, g.checkpoint_offset[0]);
  store_u64(p + sf::kCheckpointSlot1, g.checkpoint_offset[1]);
  store_u64(p + sf::kCheckpointBytes, g.checkpoint_bytes);
  store_u64(p + sf::kJournalOffset, g.journal_offset);
  store_u64(p + sf::kJournalBytes, g.journal_bytes);
  store_u64(p + sf::kDataOffset, g.data_offset);
  store_u64(p + sf::kDataBytes, g.data_bytes);
  store_u64(p + sf::kCheckpointOffset, sb.checkpoint_offset);
  store_u64(p + sf::kCheckpointLength, sb.checkpoint_length);
  store_u32(p + sf::kCheckpointCrc, sb.checkpoint_crc);
  store_u32(p + sf::kFlags, 0);
  store_u64(p + sf::kJournalEpoch, sb.journal_epoch);
  store_u64(p + sf::kJournalFirstSeq, sb.journal_first_seq);
  store_u32(p + sf::kCrc, crc32c(p, sf::kCrc));
  return block;
}

DecodedSuperblock decode_superblock(std::span<const std::byte> block, int copy, uint64_t device_bytes) {
  if (block.size() != kSuperblockBytes) {
    return {SuperblockState::corrupt, {}, corrupt("short superblock")};
  }
  const std::byte* p = block.data();
  if (std::memcmp(p + sf::kMagic, kSuperblockMagic, sizeof kSuperblockMagic) != 0) {
    return {SuperblockState::absent, {}, make_error(EINVAL, "no vlunfs magic")};
  }
  // The version comes before the CRC: a later version may protect its superblock differently.
  const uint32_t version = load_u32(p + sf::kVersion);
  if (version < kOldestFormatVersion || version > kFormatVersion) {
    return {SuperblockState::unknown_version, {},
            make_error(EINVAL, "format version " + std::to_string(version) + ", but this program reads only versions " +
                                   std::to_string(kOldestFormatVersion) + " to " + std::to_string(kFormatVersion))};
  }
  const uint32_t stored_crc = load_u32(p + sf::kCrc);
  const uint32_t actual_crc = crc32c(p, sf::kCrc);
  if (stored_crc != actual_crc) {
    char text[96];
    std::snprintf(text, sizeof text, "bad CRC32C (stored %08x, computed %08x)", stored_crc, actual_crc);
    return {SuperblockState::corrupt, {}, corrupt(text)};
  }

  Superblock sb;
  Geometry& g = sb.geometry;
  g.version = version;
  std::memcpy(g.uuid, p + sf::kUuid, sizeof g.uuid);
  sb.generation = load_u64(p + sf::kGeneration);
  g.block_size = load_u32(p + sf::kBlockSize);
  g.chunk_shift = load_u32(p + sf::kChunkShift);
  g.device_bytes = load_u64(p + sf::kDeviceBytes);
  g.checkpoint_offset[0] = load_u64(p + sf::kCheckpointSlot0);
  g.checkpoint_offset[1] = load_u64(p + sf::kCheckpointSlot1);
  g.checkpoint_bytes = load_u64(p + sf::kCheckpointBytes);
  g.journal_offset = load_u64(p + sf::kJournalOffset);
  g.journal_bytes = load_u64(p + sf::kJournalBytes);
  g.data_offset = load_u64(p + sf::kDataOffset);
  g.data_bytes = load_u64(p + sf::kDataBytes);
  sb.checkpoint_offset = load_u64(p + sf::kCheckpointOffset);
  sb.checkpoint_length = load_u64(p + sf::kCheckpointLength);
  sb.checkpoint_crc = load_u32(p + sf::kCheckpointCrc);
  sb.journal_epoch = load_u64(p + sf::kJournalEpoch);
  sb.journal_first_seq = load_u64(p + sf::kJournalFirstSeq);
  const uint32_t size = load_u32(p + sf::kSize);
  const uint32_t flags = load_u32(p + sf::kFlags);

  Error wrong;
  if (size != kSuperblockBytes) {
    wrong = corrupt("superblock size field " + std::to_string(size));
  } else if (flags != 0) {
    wrong = corrupt("unknown flags " + std::to_string(flags));
  } else if (auto geometry_error = check_geometry(g, device_bytes)) {
    wrong = geometry_error.within("bad geometry");
  } else if (sb.generation % 2 != static_cast<uint64_t>(copy)) {
    wrong = corrupt("generation " + std::to_string(sb.generation) + " does not belong in copy " + std::to_string(copy));
  } else if (sb.checkpoint_offset != g.checkpoint_offset[sb.generation % 2]) {
    wrong = corrupt("checkpoint at byte " + std::to_string(sb.checkpoint_offset) + " is not in slot " +
                  std::to_string(sb.generation % 2));
  } else if (sb.checkpoint_length < kCheckpointHeaderBytes || sb.checkpoint_length > g.checkpoint_bytes) {
    wrong = corrupt("checkpoint length " + std::to_string(sb.checkpoint_length) + " does not fit its slot");
  } else if (sb.journal_epoch != sb.generation) {
    wrong = corrupt("journal epoch " + std::to_string(sb.journal_epoch) + " differs from generation " +
                  std::to_string(sb.generation));
  } else if (sb.journal_first_seq == 0 || sb.journal_first_seq == UINT64_MAX) {
    wrong = corrupt("journal first sequence number " + std::to_string(sb.journal_first_seq));
  } else {
    return {SuperblockState::valid, sb, {}};
  }
  return {SuperblockState::corrupt, {}, std::move(wrong)};
}

}  // namespace vlunfs::meta
