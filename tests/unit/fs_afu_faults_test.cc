// The filesystem over a simulated AFU whose faults the test injects through the backend it passes
// to Filesystem::start: AFU SYNCs that fail during a resize, a write the AFU fails, every link down.
#include "fs_rig.h"
#include "client/simulated_afu.h"
#include "fs/filesystem.h"
#include "testing/fault_injecting_store.h"
#include "tools/fsck.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace vlunfs::fs {
namespace {

using test_rig::pattern;

constexpr uint64_t kDevice = 256ull << 20;
constexpr unsigned kChunkShift = 4;  // 64 KiB chunks: beyond the hardware, for fast tests
constexpr uint64_t kChunk = 4096ull << kChunkShift;

uint64_t ino_of(const Result<Attr>& a) { return a.value().st.st_ino; }

class FsAfuFaultTest : public ::testing::Test {
 protected:
  void SetUp() override { mem_ = test_rig::formatted_memory_device(kDevice, kChunkShift); }

  // Mounts with the simulator as the AFU backend, serving the data region through data_faults_
  // so that the test can fail the LUN's own I/O; sim_ is the simulator, for AFU faults.
  std::unique_ptr<Filesystem> mount() {
    std::string why;
    auto fs = Filesystem::open_store(std::make_unique<store::FaultInjectingStore>(*mem_), {}, &why);
    EXPECT_TRUE(fs) << why;
    if (!fs) return nullptr;
    auto make_afu = [this](store::BlockStore& data_region) {
      data_faults_ = std::make_unique<store::FaultInjectingStore>(data_region);
      return client::simulated_afu({}, &sim_)(*data_faults_);
    };
    EXPECT_FALSE(fs.value()->start(make_afu, &why)) << why;
    return std::move(fs).value();
  }

  std::vector<std::byte> read_all(Filesystem& fs, FileVlun* f, size_t n) {
    std::vector<std::byte> out(n);
    auto r = fs.read(f, 0, out);
    EXPECT_TRUE(r);
    if (r) out.resize(r.value());
    return out;
  }

  fsck::Report check() { return fsck::check_device(*mem_, "test", {}); }

  std::unique_ptr<store::BlockStore> mem_;
  std::unique_ptr<store::FaultInjectingStore> data_faults_;
  afu::SimAfu* sim_ = nullptr;
};

Result<Attr> truncate(Filesystem& fs, uint64_t ino, FileVlun* f, uint64_t size) {
  struct stat st {};
  st.st_size = static_cast<off_t>(size);
  return fs.setattr(ino, st, AttrChanges{.size = true}, f);
}

TEST_F(FsAfuFaultTest, GrowWhoseSyncKeepsFailingIsEioAndTheFileKeepsItsSizeAndChunks) {
  auto data = pattern(kChunk + 100, 1);
  {
    auto fs = mount();
    auto a = fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {});
    FileVlun* f = fs->open_file(ino_of(a), true).value();
    ASSERT_EQ(fs->write(f, 0, data).value(), data.size());
    const std::vector<VlunReport> before = fs->report();
    ASSERT_EQ(before.size(), 1u);
    ASSERT_EQ(before[0].chunks.size(), 2u);
    const uint64_t free_before = fs->pool_stats().free_chunks;

    // The grow's SYNC fails, and so does the one retry (pitfall 5) and the SYNC of the undo.
    sim_->inject_sync_failures(8);
    auto grown = truncate(*fs, ino_of(a), f, 6 * kChunk);
    sim_->inject_sync_failures(0);
    ASSERT_FALSE(grown);
    EXPECT_EQ(grown.error(), errno_error(EIO));

    EXPECT_EQ(fs->getattr(ino_of(a)).value().st.st_size, static_cast<off_t>(data.size()));
    EXPECT_EQ(fs->pool_stats().free_chunks, free_before);
    const std::vector<VlunReport> after = fs->report();
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].chunks, before[0].chunks);
    EXPECT_EQ(after[0].last_lba, before[0].last_lba);
    EXPECT_EQ(read_all(*fs, f, data.size() + 10), data);

    // Nothing is left half done: the same grow now succeeds, and writes land.
    ASSERT_TRUE(truncate(*fs, ino_of(a), f, 6 * kChunk));
    EXPECT_EQ(fs->pool_stats().free_chunks, free_before - 4);
    ASSERT_TRUE(fs->write(f, 5 * kChunk, pattern(4096, 2)));
    fs->release_file(f);
    fs->shutdown();
  }
  fsck::Report r = check();
  EXPECT_TRUE(r.errors().empty()) << r.errors().front();
  EXPECT_EQ(r.chunks_used, 6u);
}

TEST_F(FsAfuFaultTest, ThinGrowWhoseSyncKeepsFailingIsAnErrorAndLeavesTheMapAsItWas) {
  auto fs = mount();
  auto a = fs->create(meta::ROOT_INO, "t", S_IFREG | 0644, {});
  ASSERT_FALSE(fs->set_thin("/t", true));
  FileVlun* f = fs->open_file(ino_of(a), true).value();
  ASSERT_TRUE(truncate(*fs, ino_of(a), f, 2 * kChunk));
  const uint64_t free_before = fs->pool_stats().free_chunks;
  sim_->inject_sync_failures(8);
  EXPECT_FALSE(truncate(*fs, ino_of(a), f, 5 * kChunk));
  sim_->inject_sync_failures(0);
  EXPECT_EQ(fs->getattr(ino_of(a)).value().st.st_size, static_cast<off_t>(2 * kChunk));
  EXPECT_EQ(fs->pool_stats().free_chunks, free_before);
  const std::vector<VlunReport> after = fs->report();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].chunks.size(), 2u);  // the AFU's LXT, not only the metadata
  EXPECT_EQ(after[0].last_lba, 2 * kChunk / 4096 - 1);
  ASSERT_TRUE(truncate(*fs, ino_of(a), f, 5 * kChunk));
  ASSERT_TRUE(fs->write(f, 4 * kChunk, pattern(4096, 3)));
  fs->release_file(f);
  fs->shutdown();
  fsck::Report r = check();
  EXPECT_TRUE(r.errors().empty()) << r.errors().front();
  EXPECT_EQ(r.chunks_used, 1u);
}

TEST_F(FsAfuFaultTest, ShrinkWhoseSyncKeepsFailingIsEioAndTheFileIsWhatTheJournalSays) {
  auto data = pattern(4 * kChunk, 10);
  {
    auto fs = mount();
    auto a = fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {});
    FileVlun* f = fs->open_file(ino_of(a), true).value();
    ASSERT_TRUE(fs->write(f, 0, data));
    const uint64_t free_before = fs->pool_stats().free_chunks;
    // The shrink is journaled first; then the driver cuts the LXT, gives 3 chunks back, and its
    // SYNC fails, as does the retry's.
    sim_->inject_sync_failures(8);
    auto cut = truncate(*fs, ino_of(a), f, kChunk + 10);
    sim_->inject_sync_failures(0);
    ASSERT_FALSE(cut);
    EXPECT_EQ(cut.error(), errno_error(EIO));
    EXPECT_EQ(fs->getattr(ino_of(a)).value().st.st_size, static_cast<off_t>(kChunk + 10));
    EXPECT_EQ(fs->pool_stats().free_chunks, free_before + 2);
    const std::vector<VlunReport> after = fs->report();
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].chunks.size(), 2u);
    auto head = read_all(*fs, f, 2 * kChunk);
    ASSERT_EQ(head.size(), kChunk + 10);
    EXPECT_EQ(std::memcmp(head.data(), data.data(), head.size()), 0);
    // The file grows again from the size it has, with zeros past its old end.
    ASSERT_TRUE(truncate(*fs, ino_of(a), f, 3 * kChunk));
    auto grown = read_all(*fs, f, 3 * kChunk);
    ASSERT_EQ(grown.size(), 3 * kChunk);
    EXPECT_EQ(grown[kChunk + 10], std::byte{0});
    EXPECT_EQ(grown[3 * kChunk - 1], std::byte{0});
    fs->release_file(f);
    fs->shutdown();
  }
  fsck::Report r = check();
  EXPECT_TRUE(r.errors().empty()) << r.errors().front();
  EXPECT_EQ(r.chunks_used, 3u);
}

TEST_F(FsAfuFaultTest, WriteTheAfuFailsIsEioAndDamagesNothingElse) {
  auto one = pattern(2 * kChunk, 4);
  auto other = pattern(2 * kChunk, 5);
  {
    auto fs = mount();
    auto a = fs->create(meta::ROOT_INO, "a", S_IFREG | 0644, {});
    auto b = fs->create(meta::ROOT_INO, "b", S_IFREG | 0644, {});
    FileVlun* fa = fs->open_file(ino_of(a), true).value();
    FileVlun* fb = fs->open_file(ino_of(b), true).value();
    ASSERT_TRUE(fs->write(fa, 0, one));
    ASSERT_TRUE(fs->write(fb, 0, other));
    const std::vector<VlunReport> before = fs->report();
    ASSERT_EQ(before.size(), 2u);
    ASSERT_EQ(before[0].path, "/a");
    // The LUN fails every write to a's second chunk: the AFU answers with a CHECK CONDITION.
    const uint64_t bad = before[0].chunks[1] * kChunk;
    data_faults_->set_failure([bad](store::IoKind kind, uint64_t offset, uint64_t length) {
      return kind == store::IoKind::write && offset < bad + kChunk && offset + length > bad;
    });
    auto w = fs->write(fa, kChunk + 4096, pattern(8192, 6));
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error(), errno_error(EIO));
    data_faults_->clear_failures();

    EXPECT_EQ(read_all(*fs, fa, one.size()), one);
    EXPECT_EQ(read_all(*fs, fb, other.size()), other);
    EXPECT_EQ(fs->getattr(ino_of(a)).value().st.st_size, static_cast<off_t>(one.size()));
    std::vector<VlunReport> after = fs->report();
    ASSERT_EQ(after.size(), 2u);
    EXPECT_EQ(after[0].chunks, before[0].chunks);
    EXPECT_EQ(after[1].chunks, before[1].chunks);
    // And the same write goes through once the LUN takes it.
    ASSERT_TRUE(fs->write(fa, kChunk + 4096, pattern(8192, 6)));
    fs->release_file(fa);
    fs->release_file(fb);
    fs->shutdown();
  }
  fsck::Report r = check();
  EXPECT_TRUE(r.errors().empty()) << r.errors().front();
  EXPECT_EQ(r.chunks_used, 4u);
}

TEST_F(FsAfuFaultTest, EveryLinkDownIsEioAndIoWorksOnceTheLinksAreBack) {
  auto fs = mount();
  auto a = fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {});
  FileVlun* f = fs->open_file(ino_of(a), true).value();
  auto data = pattern(kChunk, 7);
  ASSERT_TRUE(fs->write(f, 0, data));
  ASSERT_FALSE(fs->fsync(f, false));  // the size is journaled: a later fsync only flushes the LUN

  sim_->set_port_sel(0);  // no FC port up: every command ends with afu_rc NO_CHANNELS
  std::vector<std::byte> out(4096);
  auto r = fs->read(f, 0, out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errno_error(EIO));  // not EAGAIN: nobody should spin on a link down
  auto w = fs->write(f, 0, pattern(4096, 8));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), errno_error(EIO));
  EXPECT_EQ(fs->fsync(f, false), errno_error(EIO));  // SYNCHRONIZE CACHE cannot reach the LUN

  sim_->set_port_sel(0x3);
  EXPECT_EQ(read_all(*fs, f, data.size()), data);
  auto fresh = pattern(4096, 9);
  ASSERT_TRUE(fs->write(f, 0, fresh));
  auto back = read_all(*fs, f, 4096);
  EXPECT_EQ(back, fresh);
  EXPECT_FALSE(fs->fsync(f, false));
  fs->release_file(f);
}

}  // namespace
}  // namespace vlunfs::fs
