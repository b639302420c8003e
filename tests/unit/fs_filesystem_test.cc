// The filesystem's operations over memory and fault-injecting stores: no FUSE, no root.
#include "fs_rig.h"
#include "client/simulated_afu.h"
#include "fs/filesystem.h"
#include "testing/fault_injecting_store.h"
#include "tools/fsck.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>

#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <random>
#include <thread>

namespace vlunfs::fs {
namespace {

using test_rig::pattern;

constexpr uint64_t kDevice = 256ull << 20;
constexpr unsigned kChunkShift = 4;  // 64 KiB chunks: beyond the hardware, for fast tests
constexpr uint64_t kChunk = 4096ull << kChunkShift;

// A formatted device that outlives the filesystems opened over it.
class FsTest : public ::testing::Test {
 protected:
  void SetUp() override { mem_ = test_rig::formatted_memory_device(kDevice, kChunkShift); }

  // Opens a filesystem over the device (through a fault-injecting store kept in fault_).
  std::unique_ptr<Filesystem> mount() {
    auto wrapper = std::make_unique<store::FaultInjectingStore>(*mem_);
    fault_ = wrapper.get();
    std::string why;
    auto fs = Filesystem::open_store(std::move(wrapper), {}, &why);
    EXPECT_TRUE(fs) << why;
    if (!fs) return nullptr;
    EXPECT_FALSE(fs.value()->start(client::simulated_afu(), &why)) << why;
    return std::move(fs).value();
  }

  meta::Namespace loaded_namespace() {
    auto m = meta::MetaStore::open(*mem_, {.read_only = true});
    EXPECT_TRUE(m);
    return m.value()->ns();
  }


  std::unique_ptr<store::BlockStore> mem_;
  store::FaultInjectingStore* fault_ = nullptr;
};

uint64_t ino_of(const Result<Attr>& a) { return a.value().st.st_ino; }

TEST_F(FsTest, FileDataSurvivesRemount) {
  auto data = pattern(3 * kChunk + 123, 1);
  {
    auto fs = mount();
    auto a = fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {});
    ASSERT_TRUE(a);
    auto f = fs->open_file(ino_of(a)).value();
    ASSERT_EQ(fs->write(f, 77, data).value(), data.size());
    fs->release_file(f);
    fs->shutdown();
  }
  auto fs = mount();
  auto a = fs->lookup(meta::ROOT_INO, "f");
  ASSERT_TRUE(a);
  EXPECT_EQ(a.value().st.st_size, static_cast<off_t>(77 + data.size()));
  auto f = fs->open_file(ino_of(a)).value();
  std::vector<std::byte> back(data.size() + 77);
  ASSERT_EQ(fs->read(f, 0, back).value(), back.size());
  EXPECT_TRUE(std::all_of(back.begin(), back.begin() + 77, [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_EQ(0, std::memcmp(back.data() + 77, data.data(), data.size()));
  fs->release_file(f);
}

TEST_F(FsTest, TruncateIsAllOrNothingWhenFlashIsShort) {
  auto fs = mount();
  PoolStats p = fs->pool_stats();
  auto a = fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {});
  struct stat st {};
  st.st_size = static_cast<off_t>(3 * kChunk);
  ASSERT_TRUE(fs->setattr(ino_of(a), st, AttrChanges{.size = true}, nullptr));
  EXPECT_EQ(fs->pool_stats().free_chunks, p.free_chunks - 3);
  // Another file holds chunks, so that a size the pool could have (within its total) is short.
  auto b = fs->create(meta::ROOT_INO, "g", S_IFREG | 0644, {});
  st.st_size = static_cast<off_t>(3 * kChunk);
  ASSERT_TRUE(fs->setattr(ino_of(b), st, AttrChanges{.size = true}, nullptr));
  st.st_size = static_cast<off_t>((p.total_chunks - 1) * kChunk);
  auto r = fs->setattr(ino_of(a), st, AttrChanges{.size = true}, nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().value(), ENOSPC);
  EXPECT_EQ(fs->getattr(ino_of(a)).value().st.st_size, static_cast<off_t>(3 * kChunk));
  EXPECT_EQ(fs->pool_stats().free_chunks, p.free_chunks - 6);
  // Larger than the pool: no thick vLUN could ever be that large (docs/posix.md).
  st.st_size = static_cast<off_t>((p.total_chunks + 5) * kChunk);
  EXPECT_EQ(fs->setattr(ino_of(a), st, AttrChanges{.size = true}, nullptr).error().value(), EFBIG);
  EXPECT_EQ(fs->pool_stats().free_chunks, p.free_chunks - 6);
}

TEST_F(FsTest, UnlinkReleasesChunksAndZeroesThem) {
  auto fs = mount();
  uint64_t free0 = fs->pool_stats().free_chunks;
  auto a = fs->create(meta::ROOT_INO, "secret", S_IFREG | 0644, {});
  auto f = fs->open_file(ino_of(a)).value();
  std::vector<std::byte> ones(2 * kChunk, std::byte{0xAB});
  ASSERT_TRUE(fs->write(f, 0, ones));
  fs->release_file(f);
  ASSERT_FALSE(fs->unlink(meta::ROOT_INO, "secret"));
  EXPECT_EQ(fs->pool_stats().free_chunks, free0);
  auto b = fs->create(meta::ROOT_INO, "new", S_IFREG | 0644, {});
  auto g = fs->open_file(ino_of(b)).value();
  struct stat st {};
  st.st_size = static_cast<off_t>(fs->pool_stats().free_chunks * kChunk);
  ASSERT_TRUE(fs->setattr(ino_of(b), st, AttrChanges{.size = true}, g));
  std::vector<std::byte> buf(kChunk);
  for (uint64_t off = 0; off < static_cast<uint64_t>(st.st_size); off += kChunk) {
    ASSERT_TRUE(fs->read(g, off, buf));
    ASSERT_TRUE(std::all_of(buf.begin(), buf.end(), [](std::byte x) { return x == std::byte{0}; }))
        << "old data at offset " << off;
  }
  fs->release_file(g);
}

TEST_F(FsTest, OpenUnlinkedFileKeepsItsVlunUntilLastClose) {
  auto fs = mount();
  uint64_t free0 = fs->pool_stats().free_chunks;
  auto a = fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {});
  auto f = fs->open_file(ino_of(a)).value();
  auto data = pattern(kChunk, 2);
  ASSERT_TRUE(fs->write(f, 0, data));
  ASSERT_FALSE(fs->unlink(meta::ROOT_INO, "f"));
  EXPECT_EQ(fs->pool_stats().free_chunks, free0 - 1);
  std::vector<std::byte> back(kChunk);
  ASSERT_TRUE(fs->read(f, 0, back));
  EXPECT_EQ(back, data);
  fs->release_file(f);
  EXPECT_EQ(fs->pool_stats().free_chunks, free0);
  EXPECT_FALSE(fs->getattr(ino_of(a)));
}

TEST_F(FsTest, OrphanLeftByACrashIsFreedAtMount) {
  uint64_t free0;
  uint64_t ino;
  {
    auto fs = mount();
    free0 = fs->pool_stats().free_chunks;
    auto a = fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {});
    ino = ino_of(a);
    auto f = fs->open_file(ino).value();
    ASSERT_TRUE(fs->write(f, 0, pattern(kChunk, 3)));
    ASSERT_FALSE(fs->unlink(meta::ROOT_INO, "f"));
    // The daemon dies here with the file still open: no release, no shutdown.
    // Frozen, the store drops everything from here on: what the destructor writes never lands,
    // exactly as if the process had been killed.
    fault_->freeze();
    fs.reset();
  }
  EXPECT_EQ(loaded_namespace().find(ino)->nlink, 0u);
  auto fs = mount();
  EXPECT_EQ(fs->pool_stats().free_chunks, free0);
  EXPECT_FALSE(fs->getattr(ino));
}

TEST_F(FsTest, FsyncedWritesSurvivePowerLossAndFsckIsClean) {
  auto data = pattern(2 * kChunk + 5000, 4);
  {
    auto fs = mount();
    auto a = fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {});
    auto f = fs->open_file(ino_of(a)).value();
    ASSERT_TRUE(fs->write(f, 0, data));
    ASSERT_FALSE(fs->fsync(f, false));
    // Not synced: lost with the power.
    ASSERT_TRUE(fs->write(f, data.size(), pattern(kChunk, 5)));
    ASSERT_TRUE(fs->mkdir(meta::ROOT_INO, "d", 0755, {}));  // durable: namespace changes are
    ASSERT_FALSE(fault_->lose_power());
    fault_->freeze();
    fs.reset();
  }
  meta::Namespace ns = loaded_namespace();
  fsck::Report r = fsck::check_namespace(ns, meta::MetaStore::open(*mem_, {.read_only = true}).value()->geometry(), false);
  EXPECT_TRUE(r.errors().empty()) << r.errors().front();
  auto fs = mount();
  auto a = fs->lookup(meta::ROOT_INO, "f");
  ASSERT_TRUE(a);
  EXPECT_TRUE(fs->lookup(meta::ROOT_INO, "d"));
  ASSERT_GE(a.value().st.st_size, static_cast<off_t>(data.size()));
  auto f = fs->open_file(ino_of(a)).value();
  std::vector<std::byte> back(data.size());
  ASSERT_TRUE(fs->read(f, 0, back));
  EXPECT_EQ(back, data);
  fs->release_file(f);
}

TEST_F(FsTest, PunchHoleReadsZerosAndKeepsTheSize) {
  auto fs = mount();
  auto a = fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {});
  auto f = fs->open_file(ino_of(a)).value();
  auto data = pattern(3 * kChunk, 6);
  ASSERT_TRUE(fs->write(f, 0, data));
  ASSERT_FALSE(fs->fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, kChunk + 5000));
  std::vector<std::byte> back(data.size());
  ASSERT_TRUE(fs->read(f, 0, back));
  for (size_t i = 0; i < back.size(); ++i) {
    bool hole = i >= 1000 && i < 1000 + kChunk + 5000;
    ASSERT_EQ(back[i], hole ? std::byte{0} : data[i]) << "offset " << i;
  }
  EXPECT_EQ(fs->getattr(ino_of(a)).value().st.st_size, static_cast<off_t>(data.size()));
  fs->release_file(f);
}

TEST_F(FsTest, NamesLongerThan255BytesAreRefused) {
  auto fs = mount();
  auto r = fs->create(meta::ROOT_INO, std::string(256, 'x'), S_IFREG | 0644, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().value(), ENAMETOOLONG);
  EXPECT_TRUE(fs->create(meta::ROOT_INO, std::string(255, 'x'), S_IFREG | 0644, {}));
  auto fifo = fs->create(meta::ROOT_INO, "fifo", S_IFIFO | 0644, {});
  ASSERT_FALSE(fifo);
  EXPECT_EQ(fifo.error().value(), EPERM);
}

}  // namespace
}  // namespace vlunfs::fs

namespace vlunfs::fs {
namespace {

class ThinFsTest : public FsTest {
 protected:
  std::unique_ptr<Filesystem> mount_thin() {
    auto wrapper = std::make_unique<store::FaultInjectingStore>(*mem_);
    fault_ = wrapper.get();
    std::string why;
    MountOptions o;
    o.thin = true;
    auto fs = Filesystem::open_store(std::move(wrapper), o, &why);
    EXPECT_TRUE(fs) << why;
    EXPECT_FALSE(fs.value()->start(client::simulated_afu(), &why)) << why;
    return std::move(fs).value();
  }
};

TEST_F(ThinFsTest, PunchesThatTogetherCoverAChunkGiveItBack) {
  auto fs = mount_thin();
  uint64_t free0 = fs->pool_stats().free_chunks;
  auto a = fs->create(meta::ROOT_INO, "t", S_IFREG | 0644, {});
  auto f = fs->open_file(ino_of(a), true).value();
  struct stat st {};
  st.st_size = static_cast<off_t>(4 * kChunk);
  ASSERT_TRUE(fs->setattr(ino_of(a), st, AttrChanges{.size = true}, f));
  EXPECT_EQ(fs->pool_stats().free_chunks, free0);
  ASSERT_TRUE(fs->write(f, 0, pattern(3 * kChunk, 9)));
  EXPECT_EQ(fs->pool_stats().free_chunks, free0 - 3);
  const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  ASSERT_FALSE(fs->fallocate(f, punch, kChunk, kChunk / 2));
  EXPECT_EQ(fs->pool_stats().free_chunks, free0 - 3);
  ASSERT_FALSE(fs->fallocate(f, punch, kChunk + kChunk / 2, kChunk / 2));
  EXPECT_EQ(fs->pool_stats().free_chunks, free0 - 2);
  auto off = fs->lseek(f, kChunk, SEEK_HOLE);
  ASSERT_TRUE(off);
  EXPECT_EQ(off.value(), kChunk);
  fs->release_file(f);
}

TEST_F(ThinFsTest, ConcurrentWritersToOneSharedChunkEachGetTheirOwnCopy) {
  auto fs = mount();
  auto a = fs->create(meta::ROOT_INO, "a", S_IFREG | 0644, {});
  auto b = fs->create(meta::ROOT_INO, "b", S_IFREG | 0644, {});
  auto fa = fs->open_file(ino_of(a), true).value();
  auto fb = fs->open_file(ino_of(b), true).value();
  auto data = pattern(2 * kChunk, 10);
  ASSERT_TRUE(fs->write(fa, 0, data));
  uint64_t free_before = fs->pool_stats().free_chunks;
  ASSERT_EQ(fs->copy_range(fa, 0, fb, 0, data.size()).value(), data.size());
  EXPECT_EQ(fs->pool_stats().free_chunks, free_before);  // shared, not copied
  std::vector<std::thread> writers;
  constexpr int kBlocks = 5;  // blocks 0, 3, ..., 12: all inside chunk 0 (16 blocks)
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      FileVlun* f = t == 0 ? fa : fb;
      for (int i = 0; i < kBlocks; ++i) {
        std::vector<std::byte> block(4096, static_cast<std::byte>(0x10 * (t + 1) + i));
        ASSERT_TRUE(fs->write(f, static_cast<uint64_t>(i) * 4096 * 3, block));
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(fs->pool_stats().free_chunks, free_before - 1);  // one private copy; the other keeps the original
  for (int t = 0; t < 2; ++t) {
    FileVlun* f = t == 0 ? fa : fb;
    std::vector<std::byte> back(data.size());
    ASSERT_TRUE(fs->read(f, 0, back));
    for (size_t i = 0; i < back.size(); ++i) {
      bool written = (i / 4096) % 3 == 0 && i / 4096 / 3 < kBlocks;
      std::byte want = written ? static_cast<std::byte>(0x10 * (t + 1) + i / 4096 / 3) : data[i];
      ASSERT_EQ(back[i], want) << "file " << t << " byte " << i;
    }
  }
  fs->release_file(fa);
  fs->release_file(fb);
  fs->shutdown();
  meta::Namespace ns = loaded_namespace();
  auto geometry = meta::MetaStore::open(*mem_, {.read_only = true}).value()->geometry();
  fsck::Report r = fsck::check_namespace(ns, geometry, false);
  EXPECT_TRUE(r.errors().empty()) << r.errors().front();
  EXPECT_EQ(r.chunks_shared, 1u);  // chunk 1 is still shared; chunk 0 was split
}

}  // namespace
}  // namespace vlunfs::fs

namespace vlunfs::fs {
namespace {

// A crash at every I/O of a copy-on-write break: after remount, fsck is clean and both files read
// exactly as before the write (the write was never acknowledged) or the original still does and
// the clone has the write (it was).
TEST_F(FsTest, CrashAtAnyPointOfACopyOnWriteBreakLosesNothing) {
  auto data = pattern(2 * kChunk, 11);
  std::vector<std::byte> patch(4096, std::byte{0x5A});  // written at block 10: inside shared chunk 0
  uint64_t a_ino, b_ino;
  {
    auto fs = mount();
    auto a = fs->create(meta::ROOT_INO, "a", S_IFREG | 0644, {});
    auto b = fs->create(meta::ROOT_INO, "b", S_IFREG | 0644, {});
    a_ino = ino_of(a);
    b_ino = ino_of(b);
    auto fa = fs->open_file(a_ino, true).value();
    auto fb = fs->open_file(b_ino, true).value();
    ASSERT_TRUE(fs->write(fa, 0, data));
    ASSERT_EQ(fs->copy_range(fa, 0, fb, 0, data.size()).value(), data.size());
    fs->release_file(fa);
    fs->release_file(fb);
    fs->shutdown();
  }
  const auto snapshot = std::make_unique<std::vector<std::byte>>(kDevice);
  ASSERT_FALSE(mem_->read(0, *snapshot));
  unsigned crash_points = 0;
  for (uint64_t crash_after = 0; crash_after < 2000; ++crash_after) {
    ASSERT_FALSE(mem_->write(0, *snapshot));
    bool froze = false;
    {
      auto fs = mount();
      auto mutations = [this] {
        return fault_->io_count(store::IoKind::write) + fault_->io_count(store::IoKind::flush) +
               fault_->io_count(store::IoKind::discard);
      };
      const uint64_t start = mutations();
      fault_->set_failure([&, start](store::IoKind kind, uint64_t, uint64_t) {
        if (kind != store::IoKind::read && mutations() > start + crash_after) {
          fault_->freeze();  // the plug is pulled: this and every later write never lands
          froze = true;
        }
        return false;
      });
      auto fb = fs->open_file(b_ino, true).value();
      (void)fs->write(fb, 10 * 4096, patch);
      (void)fs->fsync(fb, false);
      fault_->clear_failures();
      ASSERT_FALSE(fault_->lose_power());  // whatever was not flushed is gone too
      fault_->freeze();
      fs.reset();
    }
    ++crash_points;
    meta::Namespace ns = loaded_namespace();
    auto geometry = meta::MetaStore::open(*mem_, {.read_only = true}).value()->geometry();
    fsck::Report r = fsck::check_namespace(ns, geometry, false);
    ASSERT_TRUE(r.errors().empty()) << "crash after " << crash_after << " I/Os: " << r.errors().front();
    auto fs = mount();
    auto fa = fs->open_file(a_ino).value();
    auto fb = fs->open_file(b_ino).value();
    std::vector<std::byte> ra(data.size()), rb(data.size());
    ASSERT_TRUE(fs->read(fa, 0, ra));
    ASSERT_TRUE(fs->read(fb, 0, rb));
    EXPECT_EQ(ra, data) << "the original changed; crash after " << crash_after;
    std::vector<std::byte> with_patch = data;
    std::copy(patch.begin(), patch.end(), with_patch.begin() + 10 * 4096);
    EXPECT_TRUE(rb == data || rb == with_patch) << "the clone is neither before nor after; crash after " << crash_after;
    if (!froze) {
      EXPECT_EQ(rb, with_patch) << "an fsynced write was lost";
      fs->release_file(fa);
      fs->release_file(fb);
      break;  // the whole write + fsync ran before the crash point: every point was tried
    }
    fs->release_file(fa);
    fs->release_file(fb);
  }
  EXPECT_GE(crash_points, 4u);  // the copy, the journal record, its flush, the data write
}

}  // namespace
}  // namespace vlunfs::fs

namespace vlunfs::fs {
namespace {

// close journals a size without waiting; an fsync through a later open must still make it durable.
TEST_F(FsTest, FsyncAfterReopenMakesTheSizeJournaledAtCloseDurable) {
  auto data = pattern(kChunk / 2 + 777, 12);
  uint64_t ino;
  {
    auto fs = mount();
    auto a = fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {});
    ino = ino_of(a);
    struct stat st {};
    st.st_size = static_cast<off_t>(kChunk);
    auto f = fs->open_file(ino, true).value();
    ASSERT_TRUE(fs->setattr(ino, st, AttrChanges{.size = true}, f));  // the chunk is durable
    st.st_size = 1;  // keeps the chunk: the write below grows the size inside it
    ASSERT_TRUE(fs->setattr(ino, st, AttrChanges{.size = true}, f));
    ASSERT_TRUE(fs->write(f, 0, data));                        // size changed in memory only
    fs->release_file(f);                                       // journaled, not waited for
    auto g = fs->open_file(ino).value();
    ASSERT_FALSE(fs->fsync(g, false));
    ASSERT_FALSE(fault_->lose_power());
    fault_->freeze();
    fs.reset();
  }
  auto fs = mount();
  EXPECT_EQ(fs->getattr(ino).value().st.st_size, static_cast<off_t>(data.size()));
  auto f = fs->open_file(ino).value();
  std::vector<std::byte> back(data.size());
  ASSERT_TRUE(fs->read(f, 0, back));
  EXPECT_EQ(back, data);
  fs->release_file(f);
}

// The size record of an earlier close can be made durable by someone else's flush before the fsync
// that waits for it; data written after that flush must still be flushed by the fsync (it is,
// because the write marks the file's size and mtime dirty again).
TEST_F(FsTest, FsyncAfterReopenFlushesDataWrittenAfterTheSizeRecordWentDown) {
  auto first = pattern(kChunk / 2, 15);
  auto second = pattern(4096, 16);
  uint64_t ino;
  {
    auto fs = mount();
    ino = ino_of(fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {}));
    auto f = fs->open_file(ino, true).value();
    struct stat st {};
    st.st_size = static_cast<off_t>(kChunk);
    ASSERT_TRUE(fs->setattr(ino, st, AttrChanges{.size = true}, f));  // the chunk is durable
    st.st_size = 1;  // keeps the chunk: the write below grows the size inside it
    ASSERT_TRUE(fs->setattr(ino, st, AttrChanges{.size = true}, f));
    ASSERT_TRUE(fs->write(f, 0, first));  // size changed in memory only
    fs->release_file(f);                  // the size is journaled, not waited for
    auto g = fs->open_file(ino, true).value();
    ASSERT_TRUE(fs->create(meta::ROOT_INO, "other", S_IFREG | 0644, {}));  // flushes the journal
    ASSERT_TRUE(fs->write(g, 0, second));  // in place: no size change, nothing journaled
    ASSERT_FALSE(fs->fsync(g, false));
    ASSERT_FALSE(fault_->lose_power());
    fault_->freeze();
    fs.reset();
  }
  auto fs = mount();
  auto f = fs->open_file(ino).value();
  std::vector<std::byte> back(first.size());
  ASSERT_TRUE(fs->read(f, 0, back));
  auto expected = first;
  std::copy(second.begin(), second.end(), expected.begin());
  EXPECT_TRUE(back == expected) << "fsync returned, and its data is gone";
  fs->release_file(f);
}

// The kernel cuts a copy_file_range at 2 GiB - 4 KiB, which is not a whole number of chunks. A
// caller that loops as cp does (ask for the rest, at most that much, until done) must get every
// chunk shared, none copied: a call that would end inside a chunk returns short before it.
TEST_F(FsTest, CopyRangeCutShortOfAChunkBoundarySharesEveryChunkOverTheLoop) {
  auto fs = mount();
  auto a = fs->create(meta::ROOT_INO, "a", S_IFREG | 0644, {});
  auto b = fs->create(meta::ROOT_INO, "b", S_IFREG | 0644, {});
  auto fa = fs->open_file(ino_of(a), true).value();
  auto fb = fs->open_file(ino_of(b), true).value();
  const auto data = pattern(7 * kChunk + 1000, 14);  // a partial last chunk
  ASSERT_TRUE(fs->write(fa, 0, data));
  const uint64_t free_before = fs->pool_stats().free_chunks;
  const uint64_t cut = 2 * kChunk - 4096;  // as the kernel's cut, scaled to these chunks
  uint64_t done = 0;
  int calls = 0;
  while (done < data.size()) {
    auto r = fs->copy_range(fa, done, fb, done, std::min<uint64_t>(cut, data.size() - done));
    ASSERT_TRUE(r);
    ASSERT_GT(r.value(), 0u);
    EXPECT_EQ((done + r.value()) % kChunk == 0 || done + r.value() == data.size(), true) << done;
    done += r.value();
    ASSERT_LT(++calls, 20);
  }
  EXPECT_EQ(fs->pool_stats().free_chunks, free_before) << "a chunk was copied, not shared";
  std::vector<std::byte> back(data.size());
  ASSERT_TRUE(fs->read(fb, 0, back));
  EXPECT_EQ(back, data);
  EXPECT_EQ(fs->getattr(ino_of(b)).value().st.st_size, static_cast<off_t>(data.size()));
  // A range that ends inside a chunk and is asked for again, in the middle of the file: the rest
  // is copied, since it is less than a chunk.
  auto c = fs->create(meta::ROOT_INO, "c", S_IFREG | 0644, {});
  auto fc = fs->open_file(ino_of(c), true).value();
  auto first = fs->copy_range(fa, 0, fc, 0, kChunk + 10);
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value(), kChunk);
  auto rest = fs->copy_range(fa, kChunk, fc, kChunk, 10);
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest.value(), 10u);
  std::vector<std::byte> head(kChunk + 10);
  ASSERT_TRUE(fs->read(fc, 0, head));
  EXPECT_TRUE(std::equal(head.begin(), head.end(), data.begin()));
  for (FileVlun* f : {fa, fb, fc}) fs->release_file(f);
}

// A removal waits for its journal flush with the namespace lock dropped, so that removals and
// creates from many threads share flushes: a flush that stalls must not stall a lookup. A file
// with chunks keeps them until its removal is durable (a crash before must find it whole).
class RemovalFlushTest : public FsTest {
 protected:
  // Stalls every flush from now until go_on(); returns once one is stalled.
  void stall_flushes() {
    fault_->set_failure([this](store::IoKind kind, uint64_t, uint64_t) {
      if (kind != store::IoKind::flush) return false;
      std::unique_lock lock(mu_);
      stalled_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return go_on_; });
      return false;
    });
  }
  bool wait_stalled() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return stalled_; });
  }
  void go_on() {
    {
      std::lock_guard lock(mu_);
      go_on_ = true;
    }
    cv_.notify_all();
  }
  // True if a lookup finishes while the flush is stalled.
  bool lookup_finishes(Filesystem& fs, const std::string& name) {
    auto looked_up = std::async(std::launch::async, [&] { return fs.lookup(meta::ROOT_INO, name); });
    const bool finished = looked_up.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
    if (!finished) go_on();  // let it finish, or the future's destructor waits forever
    return finished && looked_up.get().has_value();
  }
  // A closed file in the root whose bytes [0, length) are written, so it owns chunks.
  static uint64_t written_file(Filesystem& fs, const std::string& name, size_t length, uint8_t seed) {
    const uint64_t ino = ino_of(fs.create(meta::ROOT_INO, name, S_IFREG | 0644, {}));
    auto f = fs.open_file(ino, true).value();
    EXPECT_TRUE(fs.write(f, 0, pattern(length, seed)));
    fs.release_file(f);
    return ino;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stalled_ = false, go_on_ = false;
};

TEST_F(RemovalFlushTest, UnlinkOfAnEmptyFileDoesNotHoldTheNamespaceAcrossAFlush) {
  auto fs = mount();
  const uint64_t ino = ino_of(fs->create(meta::ROOT_INO, "empty", S_IFREG | 0644, {}));
  ASSERT_TRUE(fs->create(meta::ROOT_INO, "other", S_IFREG | 0644, {}));
  stall_flushes();
  std::thread unlinker([&] { EXPECT_FALSE(fs->unlink(meta::ROOT_INO, "empty")); });
  ASSERT_TRUE(wait_stalled());
  EXPECT_TRUE(lookup_finishes(*fs, "other")) << "a lookup waited for another thread's journal flush";
  go_on();
  unlinker.join();
  fault_->clear_failures();
  EXPECT_FALSE(fs->getattr(ino));
}

TEST_F(RemovalFlushTest, UnlinkOfAFileWithChunksFreesThemOnlyAfterItsFlushAndWithoutTheLock) {
  auto fs = mount();
  const uint64_t ino = written_file(*fs, "full", 2 * kChunk, 17);
  ASSERT_TRUE(fs->create(meta::ROOT_INO, "other", S_IFREG | 0644, {}));
  const uint64_t free_before = fs->pool_stats().free_chunks;
  stall_flushes();
  std::thread unlinker([&] { EXPECT_FALSE(fs->unlink(meta::ROOT_INO, "full")); });
  ASSERT_TRUE(wait_stalled());
  EXPECT_TRUE(lookup_finishes(*fs, "other")) << "a lookup waited for another thread's journal flush";
  EXPECT_EQ(fs->pool_stats().free_chunks, free_before) << "chunks freed before the removal was durable";
  go_on();
  unlinker.join();
  fault_->clear_failures();
  EXPECT_FALSE(fs->getattr(ino));
  EXPECT_EQ(fs->pool_stats().free_chunks, free_before + 2);
  fs.reset();
  fsck::Report r = fsck::check_device(*mem_, "image", {});
  EXPECT_EQ(r.exit_code, fsck::EXIT_CLEAN) << (r.errors().empty() ? "" : r.errors().front());
  EXPECT_EQ(r.orphans, 0u);
}

TEST_F(RemovalFlushTest, RenameOverAFileWithChunksFreesThemOnlyAfterItsFlush) {
  auto fs = mount();
  const uint64_t victim = written_file(*fs, "victim", kChunk, 18);
  ASSERT_TRUE(fs->create(meta::ROOT_INO, "newer", S_IFREG | 0644, {}));
  const uint64_t free_before = fs->pool_stats().free_chunks;
  stall_flushes();
  std::thread renamer([&] { EXPECT_FALSE(fs->rename(meta::ROOT_INO, "newer", meta::ROOT_INO, "victim", 0)); });
  ASSERT_TRUE(wait_stalled());
  EXPECT_TRUE(lookup_finishes(*fs, "victim")) << "a lookup waited for another thread's journal flush";
  EXPECT_EQ(fs->pool_stats().free_chunks, free_before) << "chunks freed before the rename was durable";
  go_on();
  renamer.join();
  fault_->clear_failures();
  EXPECT_FALSE(fs->getattr(victim));
  EXPECT_EQ(fs->pool_stats().free_chunks, free_before + 1);
}

}  // namespace
}  // namespace vlunfs::fs
