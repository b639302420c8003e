// Shared pieces of the meta/ tests: namespace comparison, small geometries, and a deterministic
// generator of random (mostly valid) records for crash and fuzz tests.
#pragma once

#include "meta/namespace_check.h"
#include "testing/fault_injecting_store.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/meta/namespace.h"
#include "vlunfs/meta/record.h"
#include "vlunfs/store.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace vlunfs::meta {

inline bool operator==(const Inode& a, const Inode& b) {
  return a.ino == b.ino && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.nlink == b.nlink &&
         a.size == b.size && a.atime_ns == b.atime_ns && a.mtime_ns == b.mtime_ns && a.ctime_ns == b.ctime_ns &&
         a.flags == b.flags && a.symlink == b.symlink && a.lxt == b.lxt && a.entries == b.entries &&
         a.parent == b.parent && a.btime_ns == b.btime_ns && a.origin == b.origin;
}

// Equal namespaces, or a message naming the first difference.
inline ::testing::AssertionResult SameNamespace(const Namespace& a, const Namespace& b) {
  if (a.next_ino != b.next_ino) {
    return ::testing::AssertionFailure() << "next_ino " << a.next_ino << " vs " << b.next_ino;
  }
  if (a.inodes.size() != b.inodes.size()) {
    return ::testing::AssertionFailure() << a.inodes.size() << " inodes vs " << b.inodes.size();
  }
  for (const auto& [ino, inode] : a.inodes) {
    const Inode* other = b.find(ino);
    if (other == nullptr) return ::testing::AssertionFailure() << "inode " << ino << " missing on the right";
    if (!(inode == *other)) return ::testing::AssertionFailure() << "inode " << ino << " differs";
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult Consistent(const Namespace& ns) {
  Error broken = check_invariants(ns);
  if (!broken) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << broken.message;
}

constexpr uint64_t kTestDeviceBytes = uint64_t{64} << 20;

// Small regions so that journals fill and checkpoints happen within a few hundred records.
inline FormatOptions small_options(uint64_t journal_bytes = 64 << 10, uint64_t checkpoint_bytes = 64 << 10) {
  FormatOptions options;
  options.block_size = 4096;
  options.chunk_shift = 4;
  options.checkpoint_bytes = checkpoint_bytes;
  options.journal_bytes = journal_bytes;
  return options;
}

// A memory LUN behind a fault-injecting store, formatted.
struct TestDevice {
  explicit TestDevice(const FormatOptions& options = small_options(), uint64_t bytes = kTestDeviceBytes)
      : memory(store::make_memory_store(bytes)), faulty(*memory) {
    auto g = format(faulty, options);
    EXPECT_TRUE(g) << g.error().message;
    if (g) geometry = g.value();
  }
  std::unique_ptr<MetaStore> open(OpenReport* report = nullptr, bool read_only = false) {
    OpenOptions options;
    options.read_only = read_only;
    auto store = MetaStore::open(faulty, options, report);
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(store.value()) : nullptr;
  }
  std::unique_ptr<store::BlockStore> memory;
  store::FaultInjectingStore faulty;
  Geometry geometry;
};

inline CreateRecord create_record(const Namespace& ns, uint64_t parent, std::string name, uint32_t mode,
                                  int64_t time_ns = 100, std::string symlink = {}) {
  CreateRecord r;
  r.parent = parent;
  r.name = std::move(name);
  r.ino = ns.next_ino;
  r.mode = mode;
  r.uid = 1000;
  r.gid = 100;
  r.time_ns = time_ns;
  r.symlink = std::move(symlink);
  return r;
}

// Random records for a namespace: mostly valid ones (creates, links, renames, resizes ...), with
// some that apply() refuses, so that callers see both. Deterministic for a seed.
class RecordGenerator {
 public:
  explicit RecordGenerator(uint64_t seed, uint32_t max_chunks = 16) : rng_(seed), max_chunks_(max_chunks) {}

  Record next(const Namespace& ns) {
    time_ns_ += 1000;
    std::vector<uint64_t> dirs, files, orphans, all;
    for (const auto& [ino, inode] : ns.inodes) {
      all.push_back(ino);
      if (S_ISDIR(inode.mode)) dirs.push_back(ino);
      if (S_ISREG(inode.mode)) (inode.nlink == 0 ? orphans : files).push_back(ino);
    }
    for (auto* v : {&dirs, &files, &orphans, &all}) std::sort(v->begin(), v->end());
    const uint64_t dir = pick(dirs);
    switch (uniform(0, 11)) {
      case 0:
      case 1:
      case 2: {
        const uint32_t kind = uniform(0, 9);
        const uint32_t mode = kind < 6 ? (S_IFREG | 0644) : kind < 9 ? (S_IFDIR | 0755) : (S_IFLNK | 0777);
        return create_record(ns, dir, name(), mode, time_ns_, S_ISLNK(mode) ? "target/" + name() : "");
      }
      case 3: {
        LinkRecord r;
        r.ino = files.empty() ? pick(all) : pick(files);
        r.parent = dir;
        r.name = name();
        r.time_ns = time_ns_;
        return r;
      }
      case 4: {
        UnlinkRecord r;
        r.parent = dir;
        r.name = existing_name(ns, dir);
        r.time_ns = time_ns_;
        return r;
      }
      case 5: {
        RenameRecord r;
        r.src_parent = dir;
        r.src_name = existing_name(ns, dir);
        r.dst_parent = pick(dirs);
        r.dst_name = uniform(0, 2) == 0 ? existing_name(ns, r.dst_parent) : name();
        const uint32_t f = uniform(0, 5);
        r.flags = f == 0 ? RENAME_FLAG_NOREPLACE : f == 1 ? RENAME_FLAG_EXCHANGE : 0;
        r.time_ns = time_ns_;
        return r;
      }
      case 6: {
        SetAttrRecord r;
        r.ino = pick(all);
        r.valid = uniform(0, 127);
        r.mode = uniform(0, 07777);
        r.uid = uniform(0, 5);
        r.gid = uniform(0, 5);
        r.flags = uniform(0, 3);
        r.atime_ns = r.mtime_ns = r.ctime_ns = time_ns_;
        return r;
      }
      case 7:
      case 8: {
        ResizeRecord r;
        r.ino = files.empty() ? pick(all) : pick(files);
        const Inode* inode = ns.find(r.ino);
        const uint32_t old_count = inode ? static_cast<uint32_t>(inode->lxt.size()) : 0;
        r.lxt_count = uniform(0, max_chunks_);
        r.first_index = std::min(old_count, r.lxt_count);
        for (uint32_t i = r.first_index; i < r.lxt_count; i++) r.entries.push_back(rng_() & 0xffff'ffff'fff3);
        r.size = uint64_t{r.lxt_count} * 65536 - uniform(0, 4095) * (r.lxt_count > 0);
        r.time_ns = time_ns_;
        return r;
      }
      case 9: {
        MapRecord r;
        r.ino = files.empty() ? pick(all) : pick(files);
        const Inode* inode = ns.find(r.ino);
        const uint32_t count = inode ? static_cast<uint32_t>(inode->lxt.size()) : 0;
        r.first_index = count == 0 ? 0 : uniform(0, count - 1);
        const uint32_t n = count == 0 ? 0 : uniform(0, count - r.first_index);
        for (uint32_t i = 0; i < n; i++) r.entries.push_back(rng_() & 0xffff'ffff'fff3);
        r.time_ns = time_ns_;
        return r;
      }
      default: {
        FreeRecord r;
        r.ino = orphans.empty() ? pick(all) : pick(orphans);
        return r;
      }
    }
  }

 private:
  uint32_t uniform(uint32_t lo, uint32_t hi) { return std::uniform_int_distribution<uint32_t>(lo, hi)(rng_); }
  uint64_t pick(const std::vector<uint64_t>& v) { return v.empty() ? ROOT_INO : v[uniform(0, uint32_t(v.size() - 1))]; }
  // Few distinct names, so that collisions (EEXIST, replacing renames) are common.
  std::string name() { return "n" + std::to_string(uniform(0, 40)); }
  std::string existing_name(const Namespace& ns, uint64_t dir) {
    const Inode* d = ns.find(dir);
    if (d == nullptr || d->entries.empty() || uniform(0, 9) == 0) return name();
    auto it = d->entries.begin();
    std::advance(it, uniform(0, uint32_t(d->entries.size() - 1)));
    return it->first;
  }

  std::mt19937_64 rng_;
  uint32_t max_chunks_;
  int64_t time_ns_ = 1'000'000;
};

}  // namespace vlunfs::meta
