// The on-disk layout of vlunfs metadata, format version 3 (versions 1 and 2 are still read: below). docs/format.md says the same in prose;
// this header is what the code reads. Everything is little-endian and CRC32C-protected.
//
//   byte 0        superblock copy 0 (4 KiB)
//   byte 4096     superblock copy 1 (4 KiB)
//   byte 8192     checkpoint slot 0 (checkpoint_bytes)
//                 checkpoint slot 1 (checkpoint_bytes)
//                 journal (journal_bytes)
//   data_offset   the data area: the physical LUN the AFU sees (1 MiB aligned)
#pragma once

#include <cstddef>
#include <cstdint>

namespace vlunfs::meta {

// What this code writes, and the oldest it reads. Version 2 added each inode's creation time and
// origin (checkpoint) and the Origin record (journal); version 3 added special files (FIFOs,
// sockets, device nodes): each inode's rdev (checkpoint) and the Create node record (journal). An
// older image is read as it is, and the first read-write open rewrites it as this version (a
// checkpoint) before any record is appended.
inline constexpr uint32_t kFormatVersion = 3;
inline constexpr uint32_t kOldestFormatVersion = 1;

// The unit of every metadata write and the alignment of every metadata region. Writes of one such
// block are assumed atomic per device sector (docs/format.md, "Crash reasoning").
inline constexpr uint64_t kMetaBlock = 4096;
inline constexpr uint64_t kDataAlignment = uint64_t{1} << 20;

inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kGiB = uint64_t{1} << 30;

// Region sizes: the defaults scale with the device; explicit sizes are kept within these limits.
inline constexpr uint64_t kDefaultCheckpointMin = 8 * kMiB, kDefaultCheckpointMax = 512 * kMiB;
inline constexpr uint64_t kDefaultJournalMin = 4 * kMiB, kDefaultJournalMax = 256 * kMiB;
inline constexpr uint64_t kMinCheckpointBytes = kMetaBlock, kMaxCheckpointBytes = 4 * kGiB;
inline constexpr uint64_t kMinJournalBytes = 2 * kMetaBlock, kMaxJournalBytes = 4 * kGiB;

// ---- Superblock: two copies of kSuperblockBytes; generation g lives in copy g % 2 ----
inline constexpr uint64_t kSuperblockBytes = 4096;
inline constexpr uint64_t kSuperblockOffset[2] = {0, kSuperblockBytes};
inline constexpr uint64_t kFirstCheckpointOffset = 2 * kSuperblockBytes;
inline constexpr char kSuperblockMagic[8] = {'V', 'L', 'U', 'N', 'F', 'S', 'S', 'B'};

namespace superblock_field {  // byte offsets inside a superblock
inline constexpr size_t kMagic = 0;               // 8 bytes
inline constexpr size_t kVersion = 8;             // u32
inline constexpr size_t kSize = 12;               // u32, kSuperblockBytes
inline constexpr size_t kUuid = 16;               // 16 bytes
inline constexpr size_t kGeneration = 32;         // u64
inline constexpr size_t kBlockSize = 40;          // u32
inline constexpr size_t kChunkShift = 44;         // u32
inline constexpr size_t kDeviceBytes = 48;        // u64
inline constexpr size_t kCheckpointSlot0 = 56;    // u64
inline constexpr size_t kCheckpointSlot1 = 64;    // u64
inline constexpr size_t kCheckpointBytes = 72;    // u64, size of one slot
inline constexpr size_t kJournalOffset = 80;      // u64
inline constexpr size_t kJournalBytes = 88;       // u64
inline constexpr size_t kDataOffset = 96;         // u64
inline constexpr size_t kDataBytes = 104;         // u64
inline constexpr size_t kCheckpointOffset = 112;  // u64, where this generation's checkpoint is
inline constexpr size_t kCheckpointLength = 120;  // u64
inline constexpr size_t kCheckpointCrc = 128;     // u32, CRC32C of the whole checkpoint image
inline constexpr size_t kFlags = 132;             // u32, 0 in version 1
inline constexpr size_t kJournalEpoch = 136;      // u64, == generation
inline constexpr size_t kJournalFirstSeq = 144;   // u64, sequence number of the first record
inline constexpr size_t kUsedEnd = 152;           // bytes [152, 4092) are zero
inline constexpr size_t kCrc = kSuperblockBytes - 4;  // u32, CRC32C of bytes [0, kCrc)
}  // namespace superblock_field

// ---- Checkpoint: header, then the inodes in ascending ino order ----
inline constexpr char kCheckpointMagic[8] = {'V', 'L', 'U', 'N', 'F', 'S', 'C', 'P'};
inline constexpr size_t kCheckpointHeaderBytes = 64;

namespace checkpoint_field {
inline constexpr size_t kMagic = 0;        // 8 bytes
inline constexpr size_t kVersion = 8;      // u32
inline constexpr size_t kHeaderSize = 12;  // u32, kCheckpointHeaderBytes
inline constexpr size_t kGeneration = 16;  // u64
inline constexpr size_t kInodeCount = 24;  // u64
inline constexpr size_t kNextIno = 32;     // u64
inline constexpr size_t kFirstSeq = 40;    // u64: holds every record with a smaller sequence number
// bytes [48, 64) are zero
}  // namespace checkpoint_field

// An encoded inode is at least this long (every fixed field, every count zero); a count is never
// believed if the bytes left could not hold that many.
inline constexpr size_t kMinEncodedInodeV1 = 8 + 4 * 4 + 8 + 3 * 8 + 4 + 8 + 2 + 4 + 4;
inline constexpr size_t kMinEncodedInodeV2 = kMinEncodedInodeV1 + 8 + 8;  // version 2: btime, origin
inline constexpr size_t kMinEncodedInode = kMinEncodedInodeV2 + 8;         // version 3: rdev
inline constexpr size_t kMinEncodedEntry = 1 + 1 + 8;

// ---- Journal records: a 32-byte header, then the payload ----
inline constexpr size_t kRecordHeaderBytes = 32;

namespace record_field {
// CRC32C of header bytes [4, 32), seeded with the previous record's header CRC (the journal seed
// for the first record): the chain that keeps stale records out (docs/format.md).
inline constexpr size_t kHeaderCrc = 0;      // u32
inline constexpr size_t kPayloadCrc = 4;     // u32, CRC32C of the payload
inline constexpr size_t kPayloadLength = 8;  // u32
inline constexpr size_t kType = 12;          // u8, RecordType; bytes 13..15 are zero
inline constexpr size_t kEpoch = 16;         // u64
inline constexpr size_t kSeq = 24;           // u64
}  // namespace record_field

// Values of the header's type byte: the index of the Record alternative plus one, so that a zeroed
// header is never a valid record.
enum class RecordType : uint8_t {
  create = 1,
  link = 2,
  unlink = 3,
  rename = 4,
  set_attr = 5,
  resize = 6,
  map = 7,
  free = 8,
  origin = 9,  // format version 2
  create_node = 10,  // format version 3: a Create of a FIFO, socket or device node, with its rdev
};
inline constexpr uint8_t kMaxRecordType = 10;

}  // namespace vlunfs::meta
