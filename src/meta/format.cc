// format() and has_vlunfs_signature() (meta.h): a fresh file system as docs/format.md lays it out.

#include "meta/checkpoint.h"
#include "meta/crc32c.h"
#include "meta/format.h"
#include "meta/superblock.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/namespace.h"

#include <chrono>
#include <cstring>
#include <random>

namespace vlunfs::meta {

namespace {

Error io_failed(const std::string& what, uint64_t offset, std::error_code ec) {
  return {ec, what + " at byte " + std::to_string(offset) + " failed: " + ec.message()};
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void random_uuid(uint8_t (&uuid)[16]) {
  std::random_device rd;
  for (size_t i = 0; i < sizeof uuid; i += 4) {
    const uint32_t r = rd();
    std::memcpy(uuid + i, &r, 4);
  }
  uuid[6] = static_cast<uint8_t>((uuid[6] & 0x0f) | 0x40);  // RFC 4122 version 4 (random)
  uuid[8] = static_cast<uint8_t>((uuid[8] & 0x3f) | 0x80);  // RFC 4122 variant
}

}  // namespace

Result<Geometry, Error> format(store::BlockStore& device, const FormatOptions& options) {
  auto planned = plan_geometry(device.size_bytes(), options);
  if (!planned) return planned.error();
  Geometry g = planned.value();
  random_uuid(g.uuid);

  // Old superblocks go first, so that a format cut short leaves a device that mounts as nothing
  // rather than an old file system whose checkpoints are half overwritten.
  const std::vector<std::byte> zero_block(kMetaBlock);
  for (uint64_t offset : kSuperblockOffset) {
    if (auto ec = device.write(offset, zero_block)) return io_failed("erasing the old superblock", offset, ec);
  }
  if (auto ec = device.flush()) return io_failed("flushing", 0, ec);

  // Freshly provisioned chunks must read as zeros, and no record of an earlier file system may
  // survive in the journal. The journal's first block is also written explicitly, in case a
  // device's discard is weaker than the BlockStore contract promises.
  if (auto ec = device.discard(g.data_offset, device.size_bytes() - g.data_offset)) {
    return io_failed("discarding the data area", g.data_offset, ec);
  }
  if (auto ec = device.discard(g.journal_offset, g.journal_bytes)) {
    return io_failed("discarding the journal", g.journal_offset, ec);
  }
  if (auto ec = device.write(g.journal_offset, zero_block)) {
    return io_failed("zeroing the journal", g.journal_offset, ec);
  }

  // Generation 0 in slot/copy 0 and generation 1 in slot/copy 1: both superblocks are valid from
  // the start, so a damaged copy always has a fallback. Mount uses generation 1.
  const Namespace ns = make_empty_namespace(now_ns());
  Superblock sbs[2];
  for (uint64_t generation : {uint64_t{0}, uint64_t{1}}) {
    std::vector<std::byte> image = encode_checkpoint(ns, generation, /*first_seq=*/1);
    Superblock& sb = sbs[generation];
    sb.geometry = g;
    sb.generation = generation;
    sb.checkpoint_offset = g.checkpoint_offset[generation];
    sb.checkpoint_length = image.size();
    sb.checkpoint_crc = crc32c(image.data(), image.size());
    sb.journal_epoch = generation;
    sb.journal_first_seq = 1;
    if (image.size() > g.checkpoint_bytes) {  // only a slot smaller than an empty namespace
      return make_error(EINVAL, "checkpoint slots of " + std::to_string(g.checkpoint_bytes) + " bytes are too small");
    }
    image.resize((image.size() + kMetaBlock - 1) / kMetaBlock * kMetaBlock);
    if (auto ec = device.write(sb.checkpoint_offset, image)) {
      return io_failed("writing checkpoint slot " + std::to_string(generation), sb.checkpoint_offset, ec);
    }
  }
  if (auto ec = device.flush()) return io_failed("flushing", 0, ec);
  for (int copy = 0; copy < 2; copy++) {
    if (auto ec = device.write(kSuperblockOffset[copy], encode_superblock(sbs[copy]))) {
      return io_failed("writing superblock copy " + std::to_string(copy), kSuperblockOffset[copy], ec);
    }
  }
  if (auto ec = device.flush()) return io_failed("flushing", 0, ec);
  return g;
}

bool has_vlunfs_signature(store::BlockStore& device) {
  for (uint64_t offset : kSuperblockOffset) {
    std::byte magic[sizeof kSuperblockMagic];
    if (device.size_bytes() < offset + sizeof magic) continue;
    if (device.read(offset, magic)) continue;
    if (std::memcmp(magic, kSuperblockMagic, sizeof magic) == 0) return true;
  }
  return false;
}

}  // namespace vlunfs::meta
