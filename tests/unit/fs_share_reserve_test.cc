// The share reserve (src/fs/share_reserve.h): a thick vLUN never gets ENOSPC on a write inside its
// size, however its chunks were shared (cp through copy_file_range, clones, snapshots); a share
// that cannot get its reserve is refused and changes nothing; df counts the reserve as used; thin
// vLUNs share without one; the reserve is rebuilt from the chunk maps at mount; fsck checks it.
#include "fs_rig.h"
#include "client/simulated_afu.h"
#include "fs/filesystem.h"
#include "tools/fsck.h"

#include <gtest/gtest.h>
#include <linux/falloc.h>

#include <random>

namespace vlunfs::fs {
namespace {

using test_rig::pattern;

constexpr uint64_t kDevice = 16ull << 20;  // a small pool, quick to fill
constexpr unsigned kChunkShift = 4;        // 64 KiB chunks: beyond the hardware, for fast tests
constexpr uint64_t kChunk = 4096ull << kChunkShift;
constexpr uint64_t kFileChunks = 4;

class ShareReserveTest : public ::testing::Test {
 protected:
  void SetUp() override { mem_ = test_rig::formatted_memory_device(kDevice, kChunkShift); }

  std::unique_ptr<Filesystem> mount(bool thin = false) {
    MountOptions o;
    o.thin = thin;
    return test_rig::mount_on_simulator(*mem_, o);
  }


  // A file of `chunks` chunks written with pattern(seed), open for writing.
  FileVlun* make_file(Filesystem& fs, const std::string& name, uint64_t chunks, unsigned seed) {
    auto a = fs.create(meta::ROOT_INO, name, S_IFREG | 0644, {});
    EXPECT_TRUE(a);
    auto f = fs.open_file(a.value().st.st_ino, true).value();
    EXPECT_TRUE(fs.write(f, 0, pattern(chunks * kChunk, seed)));
    return f;
  }

  FileVlun* open_named(Filesystem& fs, const std::string& name) {
    auto a = fs.lookup(meta::ROOT_INO, name);
    EXPECT_TRUE(a) << name;
    return fs.open_file(a.value().st.st_ino, true).value();
  }

  // Grows a thick file chunk by chunk until the pool refuses: every unreserved chunk is taken.
  void fill_pool(Filesystem& fs, const std::string& name) {
    auto a = fs.create(meta::ROOT_INO, name, S_IFREG | 0644, {});
    ASSERT_TRUE(a);
    ASSERT_FALSE(fs.set_thin(name, false));  // a thick filler, also on a thin mount: truncate allocates
    auto f = fs.open_file(a.value().st.st_ino, true).value();
    for (uint64_t n = 1;; ++n) {
      struct stat st {};
      st.st_size = static_cast<off_t>(n * kChunk);
      auto r = fs.setattr(a.value().st.st_ino, st, AttrChanges{.size = true}, f);
      if (!r) {
        EXPECT_EQ(r.error().value(), ENOSPC);
        break;
      }
    }
    fs.release_file(f);
  }

  // Overwrites every byte of the file in place and reads it back.
  void overwrite_and_check(Filesystem& fs, FileVlun* f, uint64_t chunks, unsigned seed) {
    auto data = pattern(chunks * kChunk, seed);
    auto w = fs.write(f, 0, data);
    ASSERT_TRUE(w) << w.error().message();
    std::vector<std::byte> back(data.size());
    ASSERT_TRUE(fs.read(f, 0, back));
    EXPECT_EQ(back, data);
  }

  void expect_fsck_clean(uint64_t reserved) {
    auto m = meta::MetaStore::open(*mem_, {.read_only = true});
    ASSERT_TRUE(m);
    meta::Namespace ns = m.value()->ns();
    fsck::Report r = fsck::check_namespace(ns, m.value()->geometry(), false);
    EXPECT_TRUE(r.errors().empty()) << r.errors().front();
    EXPECT_EQ(r.chunks_reserved, reserved);
  }

  std::unique_ptr<store::BlockStore> mem_;
};

TEST_F(ShareReserveTest, BothThickCopiesOverwriteInPlaceAfterThePoolFills) {
  auto fs = mount();
  FileVlun* a = make_file(*fs, "a", kFileChunks, 1);
  FileVlun* b = make_file(*fs, "b", 0, 0);
  ASSERT_EQ(fs->copy_range(a, 0, b, 0, kFileChunks * kChunk).value(), kFileChunks * kChunk);
  // One chunk per shared chunk: whichever of the two writes first takes it, the other keeps the original.
  EXPECT_EQ(fs->pool_stats().reserved_chunks, kFileChunks);
  EXPECT_EQ(fs->pool_stats().shared_chunks, kFileChunks);
  fill_pool(*fs, "filler");
  EXPECT_EQ(fs->statfs().f_bfree, 0u);
  overwrite_and_check(*fs, a, kFileChunks, 2);
  EXPECT_EQ(fs->pool_stats().reserved_chunks, 0u);  // every share broken: the reserve was used up
  overwrite_and_check(*fs, b, kFileChunks, 3);       // b is the sole owner of the originals now
  fs->release_file(a);
  fs->release_file(b);
  fs->shutdown();
  expect_fsck_clean(0);
}

TEST_F(ShareReserveTest, ACopyThatCannotGetItsReserveGetsEnospcAndChangesNothing) {
  auto fs = mount();
  FileVlun* a = make_file(*fs, "a", kFileChunks, 1);
  FileVlun* b = make_file(*fs, "b", 0, 0);
  fill_pool(*fs, "filler");
  // Give back fewer chunks than the share would reserve.
  auto filler = open_named(*fs, "filler");
  struct stat st {};
  st.st_size = static_cast<off_t>(fs->getattr(filler->ino).value().st.st_size - (kFileChunks - 1) * kChunk);
  ASSERT_TRUE(fs->setattr(filler->ino, st, AttrChanges{.size = true}, filler));
  fs->release_file(filler);
  const PoolStats before = fs->pool_stats();
  auto r = fs->copy_range(a, 0, b, 0, kFileChunks * kChunk);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().value(), ENOSPC);
  const PoolStats after = fs->pool_stats();
  EXPECT_EQ(after.free_chunks, before.free_chunks);
  EXPECT_EQ(after.reserved_chunks, 0u);
  EXPECT_EQ(after.shared_chunks, 0u);
  EXPECT_EQ(fs->getattr(b->ino).value().st.st_size, 0);
  // a still owns its chunks writable: an overwrite takes no chunk.
  overwrite_and_check(*fs, a, kFileChunks, 4);
  EXPECT_EQ(fs->pool_stats().free_chunks, before.free_chunks);
  fs->release_file(a);
  fs->release_file(b);
}

TEST_F(ShareReserveTest, StatfsCountsTheReserveAsUsedAndUnlinkReleasesIt) {
  auto fs = mount();
  FileVlun* a = make_file(*fs, "a", kFileChunks, 1);
  FileVlun* b = make_file(*fs, "b", 0, 0);
  const auto free_before = fs->statfs().f_bfree;
  ASSERT_TRUE(fs->copy_range(a, 0, b, 0, kFileChunks * kChunk));
  EXPECT_EQ(fs->pool_stats().free_chunks, free_before);  // nothing allocated...
  EXPECT_EQ(fs->statfs().f_bfree, free_before - kFileChunks);  // ...but promised
  EXPECT_EQ(fs->statfs().f_bavail, free_before - kFileChunks);
  fs->release_file(b);
  ASSERT_FALSE(fs->unlink(meta::ROOT_INO, "b"));
  EXPECT_EQ(fs->pool_stats().reserved_chunks, 0u);
  EXPECT_EQ(fs->statfs().f_bfree, free_before);
  fs->release_file(a);
}

TEST_F(ShareReserveTest, AShrinkOfASharedChunkReleasesItsReserve) {
  auto fs = mount();
  FileVlun* a = make_file(*fs, "a", kFileChunks, 1);
  FileVlun* b = make_file(*fs, "b", 0, 0);
  ASSERT_TRUE(fs->copy_range(a, 0, b, 0, kFileChunks * kChunk));
  struct stat st {};
  st.st_size = static_cast<off_t>(kChunk);
  ASSERT_TRUE(fs->setattr(b->ino, st, AttrChanges{.size = true}, b));
  EXPECT_EQ(fs->pool_stats().reserved_chunks, 1u);
  EXPECT_EQ(fs->pool_stats().shared_chunks, 1u);
  fs->release_file(a);
  fs->release_file(b);
}

TEST_F(ShareReserveTest, ThinFilesShareWithoutAReserve) {
  auto fs = mount(/*thin=*/true);
  FileVlun* a = make_file(*fs, "a", kFileChunks, 1);
  FileVlun* b = make_file(*fs, "b", 0, 0);
  const auto free_before = fs->statfs().f_bfree;
  ASSERT_EQ(fs->copy_range(a, 0, b, 0, kFileChunks * kChunk).value(), kFileChunks * kChunk);
  EXPECT_EQ(fs->pool_stats().shared_chunks, kFileChunks);
  EXPECT_EQ(fs->pool_stats().reserved_chunks, 0u);
  EXPECT_EQ(fs->statfs().f_bfree, free_before);
  // Thin promises nothing: with the pool full, a write to a shared chunk gets ENOSPC.
  fill_pool(*fs, "filler");
  auto w = fs->write(a, 0, pattern(4096, 5));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().value(), ENOSPC);
  fs->release_file(a);
  fs->release_file(b);
}

TEST_F(ShareReserveTest, AThickCopyOfAThinFileReservesItsUnwrittenChunks) {
  uint64_t a_ino;
  {
    auto fs = mount(/*thin=*/true);
    auto a = fs->create(meta::ROOT_INO, "a", S_IFREG | 0644, {});
    a_ino = a.value().st.st_ino;
    auto f = fs->open_file(a_ino, true).value();
    struct stat st {};
    st.st_size = static_cast<off_t>(kFileChunks * kChunk);
    ASSERT_TRUE(fs->setattr(a_ino, st, AttrChanges{.size = true}, f));  // all four map the zero chunk
    ASSERT_TRUE(fs->write(f, 0, pattern(kChunk, 6)));             // one written
    fs->release_file(f);
    fs->shutdown();
  }
  auto fs = mount();  // new files thick
  FileVlun* a = fs->open_file(a_ino, false).value();
  FileVlun* b = make_file(*fs, "b", 0, 0);
  ASSERT_EQ(fs->copy_range(a, 0, b, 0, kFileChunks * kChunk).value(), kFileChunks * kChunk);
  // Three zero-chunk entries in a thick file, one shared chunk whose one thick owner is b.
  EXPECT_EQ(fs->pool_stats().reserved_chunks, kFileChunks);
  fill_pool(*fs, "filler");
  overwrite_and_check(*fs, b, kFileChunks, 7);
  EXPECT_EQ(fs->pool_stats().reserved_chunks, 0u);
  fs->release_file(a);
  fs->release_file(b);
}

TEST_F(ShareReserveTest, TheReserveIsRebuiltFromTheChunkMapsAtMount) {
  {
    auto fs = mount();
    FileVlun* a = make_file(*fs, "a", kFileChunks, 1);
    FileVlun* b = make_file(*fs, "b", 0, 0);
    ASSERT_TRUE(fs->copy_range(a, 0, b, 0, kFileChunks * kChunk));
    FileVlun* c = make_file(*fs, "c", 0, 0);
    ASSERT_TRUE(fs->copy_range(a, 0, c, 0, 2 * kChunk));  // two chunks with three owners
    EXPECT_EQ(fs->pool_stats().reserved_chunks, kFileChunks + 2);
    fs->release_file(a);
    fs->release_file(b);
    fs->release_file(c);
    fs->shutdown();
  }
  expect_fsck_clean(kFileChunks + 2);
  auto fs = mount();
  EXPECT_EQ(fs->pool_stats().reserved_chunks, kFileChunks + 2);
  fill_pool(*fs, "filler");
  for (const char* name : {"a", "b", "c"}) {
    FileVlun* f = open_named(*fs, name);
    const uint64_t chunks = std::string(name) == "c" ? 2 : kFileChunks;
    overwrite_and_check(*fs, f, chunks, 8);
    fs->release_file(f);
  }
  EXPECT_EQ(fs->pool_stats().reserved_chunks, 0u);
  fs->shutdown();
  expect_fsck_clean(0);
}

TEST_F(ShareReserveTest, ASnapshotHoldsNoReserveButItsThickOriginDoes) {
  auto fs = mount();
  FileVlun* a = make_file(*fs, "a", kFileChunks, 1);
  ASSERT_FALSE(fs->clone_file("a", "snap", /*snapshot=*/true));
  EXPECT_EQ(fs->pool_stats().reserved_chunks, kFileChunks);  // for a's writes; none for the snapshot's
  fill_pool(*fs, "filler");
  overwrite_and_check(*fs, a, kFileChunks, 9);
  EXPECT_EQ(fs->pool_stats().reserved_chunks, 0u);
  FileVlun* s = fs->open_file(fs->lookup(meta::ROOT_INO, "snap").value().st.st_ino, false).value();
  std::vector<std::byte> back(kFileChunks * kChunk);
  ASSERT_TRUE(fs->read(s, 0, back));
  EXPECT_EQ(back, pattern(kFileChunks * kChunk, 1));
  fs->release_file(s);
  fs->release_file(a);
}

TEST_F(ShareReserveTest, ACloneThatCannotGetItsReserveIsNotCreated) {
  auto fs = mount();
  FileVlun* a = make_file(*fs, "a", kFileChunks, 1);
  fill_pool(*fs, "filler");
  const PoolStats before = fs->pool_stats();
  EXPECT_EQ(fs->clone_file("a", "clone", false).value(), ENOSPC);
  EXPECT_EQ(fs->clone_file("a", "snap", true).value(), ENOSPC);
  EXPECT_EQ(fs->lookup(meta::ROOT_INO, "clone").error().value(), ENOENT);
  EXPECT_EQ(fs->lookup(meta::ROOT_INO, "snap").error().value(), ENOENT);
  EXPECT_EQ(fs->pool_stats().free_chunks, before.free_chunks);
  EXPECT_EQ(fs->pool_stats().reserved_chunks, 0u);
  overwrite_and_check(*fs, a, kFileChunks, 10);
  fs->release_file(a);
}

TEST_F(ShareReserveTest, LsReportsKindSharingReserveOriginAndCreationTime) {
  auto fs = mount();
  FileVlun* a = make_file(*fs, "a", kFileChunks, 1);
  ASSERT_FALSE(fs->clone_file("a", "clone", false));
  ASSERT_FALSE(fs->clone_file("a", "snap", true));
  std::map<std::string, VlunReport> by_path;
  for (VlunReport& r : fs->report()) by_path[r.path] = r;
  const VlunReport& ra = by_path.at("/a");
  const VlunReport& rc = by_path.at("/clone");
  const VlunReport& rs = by_path.at("/snap");
  EXPECT_FALSE(ra.thin || ra.snapshot);
  EXPECT_TRUE(rs.snapshot);
  for (const VlunReport* r : {&ra, &rc, &rs}) {
    EXPECT_EQ(r->mapped, kFileChunks);
    EXPECT_EQ(r->shared, kFileChunks);
    EXPECT_GT(r->birth_ns, int64_t{1'700'000'000} * 1'000'000'000) << r->path;  // a real time, not 1970
  }
  // Three owners, two of them thick: two chunks each; the reserves add up to the pool's.
  EXPECT_EQ(fs->pool_stats().reserved_chunks, 2 * kFileChunks);
  EXPECT_EQ(ra.reserved + rc.reserved + rs.reserved, 2 * kFileChunks);
  EXPECT_EQ(rs.reserved, 0u);
  EXPECT_EQ(rc.origin, ra.ino);
  EXPECT_EQ(rc.origin_path, "/a");
  EXPECT_EQ(rs.origin_path, "/a");
  EXPECT_EQ(ra.origin, 0u);
  // The clone's times are its creation's, not the epoch.
  EXPECT_GT(fs->getattr(rc.ino).value().st.st_mtim.tv_sec, 1'700'000'000);
  fs->release_file(a);
}

// Random cp, clone, snapshot, writes, truncates, punches and unlinks on thick and thin files in a
// small pool: a write inside a thick file's size never gets ENOSPC, and the reserve the daemon
// keeps step by step always equals the one derived from the chunk maps (fsck's count and a
// fresh mount's).
TEST_F(ShareReserveTest, RandomSharingNeverCostsAThickWriteAndTheReserveMatchesTheChunkMaps) {
  std::mt19937 rng(12);
  auto pick = [&](uint64_t n) { return static_cast<uint64_t>(rng() % n); };
  auto fs = mount();
  const std::vector<std::string> names = {"f0", "f1", "f2", "f3", "f4", "f5"};
  auto file_of = [&](const std::string& name) -> FileVlun* {
    auto a = fs->lookup(meta::ROOT_INO, name);
    if (!a) return nullptr;
    auto f = fs->open_file(a.value().st.st_ino, false);
    return f ? f.value() : nullptr;
  };
  unsigned thick_writes = 0, shares = 0, refusals = 0;
  uint64_t most_reserved = 0;
  for (int step = 0; step < 400; ++step) {
    // The pool is full for half of the run.
    if (step % 40 == 10) fill_pool(*fs, "hog");
    if (step % 40 == 30) {
      ASSERT_FALSE(fs->unlink(meta::ROOT_INO, "hog"));
    }
    const std::string& name = names[pick(names.size())];
    const std::string& other = names[pick(names.size())];
    FileVlun* f = file_of(name);
    const unsigned op = static_cast<unsigned>(pick(8));
    if (!f) {
      if (fs->create(meta::ROOT_INO, name, S_IFREG | 0644, {}) && pick(3) == 0) (void)fs->set_thin(name, true);
      continue;
    }
    const uint64_t size = f->size;
    if (op == 0 || op == 1) {
      // A write inside the size (or a little past it).
      const uint64_t off = size > 0 ? pick(size) : 0;
      const uint64_t len = 1 + pick(2 * kChunk);
      auto w = fs->write(f, off, pattern(len, static_cast<unsigned>(step)));
      if (!f->read_only && !f->thin && off + len <= f->chunks * kChunk) {
        ASSERT_TRUE(w) << "step " << step << ": a write inside thick " << name << " got " << w.error().message();
        thick_writes++;
      }
    } else if (op == 2 && !f->read_only) {
      struct stat st {};
      st.st_size = static_cast<off_t>(pick(6 * kChunk));
      (void)fs->setattr(f->ino, st, AttrChanges{.size = true}, nullptr);
    } else if (op == 3 && other != name) {
      FileVlun* g = file_of(other);
      if (g && !g->read_only && size > 0) {
        auto r = fs->copy_range(f, 0, g, 0, size);
        if (r) shares++;
        if (!r && r.error().value() == ENOSPC) refusals++;
      }
      if (g) fs->release_file(g);
    } else if (op == 4 || op == 5) {
      auto ec = fs->clone_file(name, other + "-" + std::to_string(step % 3), op == 5);
      if (!ec) shares++;
      if (ec.value() == ENOSPC) refusals++;
    } else if (op == 6 && f->thin && size > 0) {
      (void)fs->fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pick(size), 1 + pick(2 * kChunk));
    } else if (op == 7) {
      fs->release_file(f);
      f = nullptr;
      (void)fs->unlink(meta::ROOT_INO, name);
    }
    if (f) fs->release_file(f);
    most_reserved = std::max(most_reserved, fs->pool_stats().reserved_chunks);
    if (step % 50 == 49) {
      const uint64_t reserved = fs->pool_stats().reserved_chunks;
      EXPECT_LE(reserved, fs->pool_stats().free_chunks) << "step " << step;
      fs->shutdown();
      expect_fsck_clean(reserved);
      fs = mount();
      ASSERT_EQ(fs->pool_stats().reserved_chunks, reserved) << "step " << step;
    }
  }
  std::printf("thick writes %u, shares %u, refused for want of a reserve %u, most reserved %llu\n", thick_writes,
              shares, refusals, static_cast<unsigned long long>(most_reserved));
  EXPECT_GT(thick_writes, 20u);
  EXPECT_GT(shares, 20u);
  EXPECT_GT(most_reserved, 0u);
  EXPECT_GT(refusals, 0u);
}

}  // namespace
}  // namespace vlunfs::fs
