// Checkpoint images (checkpoint.h).

#include "meta/checkpoint.h"

#include "meta/coding.h"
#include "meta/format.h"
#include "meta/namespace_check.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <variant>

namespace vlunfs::meta {

namespace cf = checkpoint_field;

namespace {

// A checkpoint whose CRC matched but whose contents do not hold together.
Error corrupt(std::string message) { return make_error(EUCLEAN, std::move(message)); }

void encode_inode(Encoder& e, const Inode& inode) {
  e.u64(inode.ino);
  e.u32(inode.mode);
  e.u32(inode.uid);
  e.u32(inode.gid);
  e.u32(inode.nlink);
  e.u64(inode.size);
  e.i64(inode.atime_ns);
  e.i64(inode.mtime_ns);
  e.i64(inode.ctime_ns);
  e.u32(inode.flags);
  e.u64(inode.parent);
  e.i64(inode.btime_ns);
  e.u64(inode.origin);
  e.u64(inode.rdev);
  e.text16(inode.symlink);
  e.u32(static_cast<uint32_t>(inode.lxt.size()));
  for (uint64_t entry : inode.lxt) e.u64(entry);
  e.u32(static_cast<uint32_t>(inode.entries.size()));
  for (const auto& [name, ino] : inode.entries) {
    e.name(name);
    e.u64(ino);
  }
}

// encode_inode()'s length: the fixed fields above, the symlink, the LXT and the entries.
constexpr uint64_t kInodeFixedBytes = kMinEncodedInode;
constexpr uint64_t entry_bytes(size_t name_length) { return 1 + name_length + 8; }

uint64_t inode_size(const Inode& inode) {
  uint64_t bytes = kInodeFixedBytes + inode.symlink.size() + 8 * uint64_t{inode.lxt.size()};
  for (const auto& entry : inode.entries) bytes += entry_bytes(entry.first.size());
  return bytes;
}

// `version` 1 inodes have no creation time and origin (both read as 0); versions 1 and 2 no rdev.
Result<Inode, Error> decode_inode(Decoder& d, uint32_t version) {
  Inode inode;
  inode.ino = d.u64();
  inode.mode = d.u32();
  inode.uid = d.u32();
  inode.gid = d.u32();
  inode.nlink = d.u32();
  inode.size = d.u64();
  inode.atime_ns = d.i64();
  inode.mtime_ns = d.i64();
  inode.ctime_ns = d.i64();
  inode.flags = d.u32();
  inode.parent = d.u64();
  if (version >= 2) {
    inode.btime_ns = d.i64();
    inode.origin = d.u64();
  }
  if (version >= 3) inode.rdev = d.u64();
  const uint16_t symlink_length = d.u16();
  if (d.ok() && symlink_length > MAX_SYMLINK) return corrupt("a symlink target of " + std::to_string(symlink_length) + " bytes");
  inode.symlink = d.text(symlink_length);
  const uint32_t lxt_count = d.u32();
  if (!d.ok() || lxt_count > d.remaining() / 8) return corrupt("an LXT count larger than the bytes left");
  inode.lxt.resize(lxt_count);
  for (uint32_t i = 0; i < lxt_count; i++) inode.lxt[i] = d.u64();
  const uint32_t entry_count = d.u32();
  if (!d.ok() || entry_count > d.remaining() / kMinEncodedEntry) return corrupt("an entry count larger than the bytes left");
  for (uint32_t i = 0; i < entry_count; i++) {
    const uint8_t length = d.u8();
    std::string name = d.text(length);
    const uint64_t ino = d.u64();
    if (!d.ok()) break;
    // Names were written in order; anything else means the same name twice or damage.
    if (!inode.entries.empty() && !(inode.entries.rbegin()->first < name)) {
      return corrupt("directory entries out of order");
    }
    inode.entries.emplace_hint(inode.entries.end(), std::move(name), ino);
  }
  if (!d.ok()) return corrupt("an inode cut short");
  return inode;
}

}  // namespace

std::vector<std::byte> encode_checkpoint(const Namespace& ns, uint64_t generation, uint64_t first_seq) {
  std::vector<std::byte> image(kCheckpointHeaderBytes);
  std::byte* h = image.data();
  std::memcpy(h + cf::kMagic, kCheckpointMagic, sizeof kCheckpointMagic);
  store_u32(h + cf::kVersion, kFormatVersion);
  store_u32(h + cf::kHeaderSize, static_cast<uint32_t>(kCheckpointHeaderBytes));
  store_u64(h + cf::kGeneration, generation);
  store_u64(h + cf::kInodeCount, ns.inodes.size());
  store_u64(h + cf::kNextIno, ns.next_ino);
  store_u64(h + cf::kFirstSeq, first_seq);

  std::vector<uint64_t> order;
  order.reserve(ns.inodes.size());
  for (const auto& [ino, inode] : ns.inodes) order.push_back(ino);
  std::sort(order.begin(), order.end());
  Encoder e(&image);
  for (uint64_t ino : order) encode_inode(e, ns.inodes.at(ino));
  return image;
}

uint64_t checkpoint_size(const Namespace& ns) {
  uint64_t bytes = kCheckpointHeaderBytes;
  for (const auto& entry : ns.inodes) bytes += inode_size(entry.second);
  return bytes;
}

int64_t checkpoint_growth(const Namespace& ns, const Record& record) {
  auto signed_bytes = [](uint64_t n) { return static_cast<int64_t>(n); };
  return std::visit(
      [&](const auto& r) -> int64_t {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, CreateRecord>) {
          return signed_bytes(kInodeFixedBytes + r.symlink.size() + entry_bytes(r.name.size()));
        } else if constexpr (std::is_same_v<T, LinkRecord>) {
          return signed_bytes(entry_bytes(r.name.size()));
        } else if constexpr (std::is_same_v<T, UnlinkRecord>) {
          return -signed_bytes(entry_bytes(r.name.size()));  // an orphan inode stays until its Free
        } else if constexpr (std::is_same_v<T, RenameRecord>) {
          // An exchange keeps both names; a move swaps one name for another (and a replaced
          // target's entry goes too, which only makes the image smaller).
          if ((r.flags & RENAME_FLAG_EXCHANGE) != 0) return 0;
          return signed_bytes(r.dst_name.size()) - signed_bytes(r.src_name.size());
        } else if constexpr (std::is_same_v<T, ResizeRecord>) {
          const Inode* inode = ns.find(r.ino);
          if (inode == nullptr) return 0;  // apply() refuses it
          return 8 * (signed_bytes(r.lxt_count) - signed_bytes(inode->lxt.size()));
        } else if constexpr (std::is_same_v<T, FreeRecord>) {
          const Inode* inode = ns.find(r.ino);
          return inode == nullptr ? 0 : -signed_bytes(inode_size(*inode));
        } else {
          static_assert(std::is_same_v<T, SetAttrRecord> || std::is_same_v<T, MapRecord> ||
                        std::is_same_v<T, OriginRecord>);
          return 0;  // fixed fields, and LXT entries replaced within the LXT's length
        }
      },
      record);
}

Result<Namespace, Error> decode_checkpoint(std::span<const std::byte> image, uint64_t generation, uint64_t first_seq) {
  if (image.size() < kCheckpointHeaderBytes) return corrupt("shorter than its header");
  const std::byte* h = image.data();
  if (std::memcmp(h + cf::kMagic, kCheckpointMagic, sizeof kCheckpointMagic) != 0) return corrupt("no checkpoint magic");
  const uint32_t version = load_u32(h + cf::kVersion);
  if (version < kOldestFormatVersion || version > kFormatVersion) {
    return corrupt("format version " + std::to_string(version) + ", but this program reads only versions " +
                        std::to_string(kOldestFormatVersion) + " to " + std::to_string(kFormatVersion));
  }
  if (load_u32(h + cf::kHeaderSize) != kCheckpointHeaderBytes) return corrupt("unexpected header size");
  const uint64_t stored_generation = load_u64(h + cf::kGeneration);
  if (stored_generation != generation) {
    return corrupt("holds generation " + std::to_string(stored_generation) + ", expected " + std::to_string(generation));
  }
  if (load_u64(h + cf::kFirstSeq) != first_seq) {
    return corrupt("covers records before " + std::to_string(load_u64(h + cf::kFirstSeq)) +
                        ", but the superblock's journal starts at " + std::to_string(first_seq));
  }
  const uint64_t inode_count = load_u64(h + cf::kInodeCount);

  Decoder d(image.subspan(kCheckpointHeaderBytes));
  const size_t min_inode = version >= 3 ? kMinEncodedInode : version == 2 ? kMinEncodedInodeV2 : kMinEncodedInodeV1;
  if (inode_count > d.remaining() / min_inode) {
    return corrupt("claims " + std::to_string(inode_count) + " inodes, more than its " +
                        std::to_string(d.remaining()) + " bytes can hold");
  }
  Namespace ns;
  ns.next_ino = load_u64(h + cf::kNextIno);
  ns.inodes.reserve(inode_count);
  uint64_t previous = 0;
  for (uint64_t i = 0; i < inode_count; i++) {
    auto decoded = decode_inode(d, version);
    if (!decoded) {
      return decoded.error().within("inode #" + std::to_string(i) + " at byte " +
                                    std::to_string(kCheckpointHeaderBytes + d.position()));
    }
    Inode inode = std::move(decoded).value();
    if (inode.ino <= previous) return corrupt("inode numbers not in ascending order at inode #" + std::to_string(i));
    previous = inode.ino;
    ns.inodes.emplace(inode.ino, std::move(inode));
  }
  if (d.remaining() != 0) return corrupt(std::to_string(d.remaining()) + " bytes after the last inode");
  if (Error broken = check_invariants(ns)) return broken.within("inconsistent namespace");
  return ns;
}

}  // namespace vlunfs::meta
