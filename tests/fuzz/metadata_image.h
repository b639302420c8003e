// Hostile metadata, shared by the libFuzzer target (meta_open_fuzzer.cc) and the CI mutation test
// (tests/unit/fs_hostile_metadata_test.cc): a small populated image, ways to damage its metadata
// region, CRC fix-ups that let damage get past the checksums into the decoders, and one function
// that puts a damaged image through everything that reads metadata (MetaStore::open, fsck, mount).
#pragma once

#include "client/simulated_afu.h"
#include "fs/filesystem.h"
#include "meta/coding.h"
#include "meta/crc32c.h"
#include "meta/format.h"
#include "testing/fault_injecting_store.h"
#include "tools/fsck.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/inspection.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/meta/namespace.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace vlunfs::hostile {

using Bytes = std::vector<std::byte>;

// A tiny geometry: 8 KiB superblocks, two 8 KiB checkpoint slots, an 8 KiB journal; the data area
// (32 chunks of 64 KiB) starts at 1 MiB.
inline constexpr uint64_t kMetadataBytes = 3 * 8192;
inline constexpr uint64_t kDeviceBytes = (1 << 20) + 32 * (64 << 10);

inline meta::FormatOptions format_options() {
  meta::FormatOptions fo;
  fo.chunk_shift = 4;
  fo.checkpoint_bytes = 8192;
  fo.journal_bytes = 8192;
  return fo;
}

// A populated image: directories, files with chunks and data, a symlink, a hard link, an orphan,
// and a thin vLUN longer than the data area (48 chunks on 32) with a clone and a snapshot of it;
// checkpoints in both slots and records in the journal (the daemon "died": no unmount).
// Returns the first kMetadataBytes of the device.
inline Bytes populated_metadata() {
  auto memory = store::make_memory_store(kDeviceBytes);
  if (!meta::format(*memory, format_options())) std::abort();
  auto owned = std::make_unique<store::FaultInjectingStore>(*memory);
  store::FaultInjectingStore* fault = owned.get();
  std::string why;
  auto fs = fs::Filesystem::open_store(std::move(owned), {}, &why).value();
  if (fs->start(client::simulated_afu(), &why)) std::abort();
  auto file = [&](uint64_t dir, const std::string& name, uint64_t size) {
    auto a = fs->create(dir, name, S_IFREG | 0644, {}).value();
    auto h = fs->open_file(a.st.st_ino, true).value();
    std::vector<std::byte> data(size, std::byte{0x42});
    if (size) (void)fs->write(h, 0, data);
    (void)fs->fsync(h, false);
    return std::make_pair(a.st.st_ino, h);
  };
  auto d = fs->mkdir(meta::ROOT_INO, "dir", 0755, {}).value().st.st_ino;
  auto sub = fs->mkdir(d, "sub", 0700, {}).value().st.st_ino;
  auto [a, ha] = file(meta::ROOT_INO, "a", 3 * (64 << 10) + 17);
  fs->release_file(ha);
  auto [b, hb] = file(d, "b", 5000);
  fs->release_file(hb);
  (void)fs->symlink(sub, "link", "../b", {});
  (void)fs->link(a, d, "a2");
  {
    auto [t, ht] = file(meta::ROOT_INO, "thin", 0);
    (void)fs->set_thin("thin", true);
    fs->release_file(ht);
    ht = fs->open_file(t, true).value();  // reopened: the open vLUN takes the file's new kind
    struct stat grow {};
    grow.st_size = 48 * (64 << 10);
    (void)fs->setattr(t, grow, fs::AttrChanges{.size = true}, ht);
    std::vector<std::byte> data(4096, std::byte{0x17});
    (void)fs->write(ht, 40 * (64 << 10), data);
    (void)fs->fsync(ht, false);
    fs->release_file(ht);
    (void)fs->clone_file("thin", "thin-clone", false);
    (void)fs->clone_file("thin", "thin-snap", true);
  }
  (void)fs->sync_all();  // checkpoint
  auto [c, hc] = file(meta::ROOT_INO, "c", 70000);
  (void)fs->sync_all();  // the other slot
  (void)fs->unlink(meta::ROOT_INO, "c");  // c stays open: an orphan
  struct stat st {};
  st.st_size = 64 << 10;
  (void)fs->setattr(a, st, fs::AttrChanges{.size = true}, nullptr);
  (void)fs->rename(d, "b", meta::ROOT_INO, "b-moved", 0);
  auto [e, he] = file(sub, "e", 1);
  (void)he;
  (void)hc;
  (void)c;
  (void)e;
  fault->freeze();  // the daemon dies here: records stay in the journal, c stays an orphan
  fs.reset();
  Bytes region(kMetadataBytes);
  if (memory->read(0, region)) std::abort();
  return region;
}

// Recomputes the checksums a random change breaks, so that it reaches the decoders: each
// superblock's checkpoint CRC (over the length it claims, if that lies inside its slot), each
// superblock's own CRC, and the CRC chain of the newest superblock's journal.
inline void fix_checksums(Bytes& region, bool superblocks, bool checkpoints, bool journal) {
  namespace sf = meta::superblock_field;
  namespace rf = meta::record_field;
  const uint64_t size = region.size();
  uint64_t newest = 0;
  int newest_copy = -1;
  for (int i = 0; i < 2; i++) {
    const uint64_t base = meta::kSuperblockOffset[i];
    if (base + meta::kSuperblockBytes > size) continue;
    std::byte* sb = region.data() + base;
    if (checkpoints) {
      const uint64_t off = meta::load_u64(sb + sf::kCheckpointOffset);
      const uint64_t len = meta::load_u64(sb + sf::kCheckpointLength);
      if (off <= size && len <= size - off) {
        meta::store_u32(sb + sf::kCheckpointCrc, crc32c(region.data() + off, static_cast<size_t>(len)));
      }
    }
    if (superblocks) meta::store_u32(sb + sf::kCrc, crc32c(sb, sf::kCrc));
    const uint64_t generation = meta::load_u64(sb + sf::kGeneration);
    if (newest_copy < 0 || generation > newest) {
      newest = generation;
      newest_copy = i;
    }
  }
  if (!journal || newest_copy < 0) return;
  const std::byte* sb = region.data() + meta::kSuperblockOffset[newest_copy];
  const uint64_t joff = meta::load_u64(sb + sf::kJournalOffset);
  const uint64_t jlen = meta::load_u64(sb + sf::kJournalBytes);
  if (joff > size || jlen > size - joff) return;
  std::byte seed_bytes[32];
  std::memcpy(seed_bytes, sb + sf::kUuid, 16);
  meta::store_u64(seed_bytes + 16, meta::load_u64(sb + sf::kJournalEpoch));
  meta::store_u64(seed_bytes + 24, meta::load_u64(sb + sf::kJournalFirstSeq));
  uint32_t chain = crc32c(seed_bytes, sizeof seed_bytes);
  uint64_t at = 0;
  while (at + meta::kRecordHeaderBytes <= jlen) {
    std::byte* h = region.data() + joff + at;
    if (h[rf::kType] == std::byte{0}) break;  // the end of the records
    const uint64_t n = meta::load_u32(h + rf::kPayloadLength);
    if (n > jlen - at - meta::kRecordHeaderBytes) break;
    meta::store_u32(h + rf::kPayloadCrc, crc32c(h + meta::kRecordHeaderBytes, static_cast<size_t>(n)));
    chain = crc32c(h + 4, meta::kRecordHeaderBytes - 4, chain);
    meta::store_u32(h + rf::kHeaderCrc, chain);
    at += meta::kRecordHeaderBytes + n;
  }
}

// What happened to one damaged image.
struct Verdict {
  bool opened = false;       // MetaStore::open accepted it
  bool mounted = false;      // and the file system started on it
  std::string refusal;       // why open() refused (must not be empty when it did)
  std::string mount_refusal; // why the mount refused (must not be empty when it did)
};

// Puts a device whose first bytes are `region` (and `device_bytes` long) through inspection,
// MetaStore::open, fsck (check and repair, on copies) and a mount that lists and reads every file.
// Everything must end in an answer: a crash, a hang or a sanitizer report is the failure.
inline Verdict exercise(std::span<const std::byte> region, uint64_t device_bytes = kDeviceBytes, bool mount = true) {
  Verdict v;
  auto memory = store::make_memory_store(device_bytes);
  const size_t n = static_cast<size_t>(std::min<uint64_t>(region.size(), device_bytes));
  if (n && memory->write(0, region.first(n))) std::abort();
  (void)meta::inspect_metadata(*memory);

  meta::OpenReport report;
  auto store = meta::MetaStore::open(*memory, {.read_only = true}, &report);
  if (!store) {
    v.refusal = store.error().message;
    return v;
  }
  v.opened = true;
  const meta::Geometry g = store.value()->geometry();
  meta::Namespace ns = store.value()->ns();
  store.value().reset();
  {
    meta::Namespace copy = ns;
    (void)fsck::check_namespace(copy, g, false);
    std::vector<uint64_t> freed;
    (void)fsck::check_namespace(copy, g, true, &freed);
  }
  {
    fsck::Options o;
    o.repair = true;
    auto scratch = store::make_memory_store(device_bytes);
    std::vector<std::byte> all(static_cast<size_t>(std::min<uint64_t>(device_bytes, 1 << 20)));
    if (memory->read(0, all)) std::abort();
    if (scratch->write(0, all)) std::abort();
    (void)fsck::check_device(*scratch, "scratch", o);
  }
  if (!mount) return v;

  std::string why;
  auto fs = fs::Filesystem::open_store(std::make_unique<store::FaultInjectingStore>(*memory), {}, &why);
  if (!fs) {
    v.mount_refusal = why.empty() ? "?" : why;
    return v;
  }
  if (fs.value()->start(client::simulated_afu(), &why)) {
    v.mount_refusal = why;
    return v;
  }
  v.mounted = true;
  // Every file is listed, stat'ed and read (a block at its start and at its end).
  std::vector<uint64_t> todo{meta::ROOT_INO};
  std::vector<std::byte> buf(8192);
  for (size_t guard = 0; !todo.empty() && guard < 10000; guard++) {
    uint64_t dir = todo.back();
    todo.pop_back();
    auto entries = fs.value()->readdir(dir);
    if (!entries) continue;
    for (const auto& e : entries.value()) {
      if (e.name == "." || e.name == "..") continue;
      auto attr = fs.value()->getattr(e.ino);
      if (!attr) continue;
      if (S_ISDIR(attr.value().st.st_mode)) {
        todo.push_back(e.ino);
      } else if (S_ISREG(attr.value().st.st_mode)) {
        auto h = fs.value()->open_file(e.ino);
        if (!h) continue;
        const uint64_t size = static_cast<uint64_t>(attr.value().st.st_size);
        (void)fs.value()->read(h.value(), 0, buf);
        if (size > buf.size()) (void)fs.value()->read(h.value(), size - buf.size(), buf);
        fs.value()->release_file(h.value());
      } else if (S_ISLNK(attr.value().st.st_mode)) {
        (void)fs.value()->readlink(e.ino);
      }
    }
  }
  return v;
}

}  // namespace vlunfs::hostile
