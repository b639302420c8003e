// FIFOs, sockets and device nodes (format version 3): inodes without a vLUN that keep their rdev,
// behave as any inode for names and attributes, survive a remount and a crash (journal replay),
// and are clean for fsck; and the size limits of thick and thin vLUNs (EFBIG against ENOSPC).
#include "fs_rig.h"
#include "testing/fault_injecting_store.h"
#include "tools/fsck.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <gtest/gtest.h>

namespace vlunfs::fs {
namespace {

constexpr uint64_t kDevice = 64ull << 20;
constexpr unsigned kChunkShift = 4;  // 64 KiB chunks
constexpr uint64_t kChunk = 4096ull << kChunkShift;

class SpecialFilesTest : public ::testing::Test {
 protected:
  void SetUp() override { mem_ = test_rig::formatted_memory_device(kDevice, kChunkShift); }
  std::unique_ptr<Filesystem> mount(const MountOptions& options = {}) {
    return test_rig::mount_on_simulator(*mem_, options);
  }
  meta::Namespace loaded_namespace() {
    auto m = meta::MetaStore::open(*mem_, {.read_only = true});
    EXPECT_TRUE(m);
    return m.value()->ns();
  }
  fsck::Report fsck_report() {
    return fsck::check_device(*mem_, "memory", {});
  }
  static uint64_t ino_of(const Result<Attr>& a) { return a.value().st.st_ino; }

  std::unique_ptr<store::BlockStore> mem_;
};

TEST_F(SpecialFilesTest, FifosSocketsAndDeviceNodesAreInodesWithoutChunks) {
  auto fs = mount();
  const uint64_t free0 = fs->pool_stats().free_chunks;
  auto fifo = fs->mknod(meta::ROOT_INO, "fifo", S_IFIFO | 0640, 0, {1, 2});
  auto sock = fs->mknod(meta::ROOT_INO, "sock", S_IFSOCK | 0755, 0, {});
  auto chr = fs->mknod(meta::ROOT_INO, "chr", S_IFCHR | 0600, makedev(1, 3), {});
  auto blk = fs->mknod(meta::ROOT_INO, "blk", S_IFBLK | 0600, makedev(259, 70000), {});
  ASSERT_TRUE(fifo && sock && chr && blk);
  EXPECT_EQ(fifo.value().st.st_mode, S_IFIFO | 0640u);
  EXPECT_EQ(fifo.value().st.st_uid, 1u);
  EXPECT_EQ(fifo.value().st.st_rdev, 0u);
  EXPECT_EQ(sock.value().st.st_mode, S_IFSOCK | 0755u);
  EXPECT_EQ(chr.value().st.st_rdev, makedev(1, 3));
  EXPECT_EQ(blk.value().st.st_rdev, makedev(259, 70000));
  EXPECT_EQ(blk.value().st.st_size, 0);
  EXPECT_EQ(blk.value().st.st_blocks, 0);
  EXPECT_EQ(fs->pool_stats().free_chunks, free0) << "a special file takes no chunk";
  auto opened = fs->open_file(ino_of(fifo));
  EXPECT_FALSE(opened) << "a special file has no vLUN to open";
  // A regular file through mknod(2) is a vLUN as through create.
  auto reg = fs->mknod(meta::ROOT_INO, "reg", S_IFREG | 0644, 0, {});
  ASSERT_TRUE(reg);
  auto f = fs->open_file(ino_of(reg), true);
  ASSERT_TRUE(f);
  fs->release_file(f.value(), true);
}

TEST_F(SpecialFilesTest, SpecialFilesAreRenamedLinkedChangedAndRemovedAsAnyInode) {
  auto fs = mount();
  auto dir = fs->mkdir(meta::ROOT_INO, "d", 0755, {});
  auto chr = fs->mknod(meta::ROOT_INO, "chr", S_IFCHR | 0600, makedev(4, 5), {});
  ASSERT_TRUE(dir && chr);
  const uint64_t ino = ino_of(chr);
  struct stat st {};
  st.st_mode = 0644;
  st.st_uid = 7;
  st.st_mtim.tv_sec = 1234;
  auto changed = fs->setattr(ino, st, AttrChanges{.mode = true, .uid = true, .mtime = true}, nullptr);
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed.value().st.st_mode, S_IFCHR | 0644u) << "chmod keeps the type";
  EXPECT_EQ(changed.value().st.st_rdev, makedev(4, 5));
  ASSERT_TRUE(fs->link(ino, ino_of(dir), "second"));
  ASSERT_FALSE(fs->rename(meta::ROOT_INO, "chr", ino_of(dir), "moved", 0));
  auto moved = fs->lookup(ino_of(dir), "moved");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved.value().st.st_nlink, 2u);
  EXPECT_EQ(moved.value().st.st_mtim.tv_sec, 1234);
  ASSERT_FALSE(fs->unlink(ino_of(dir), "moved"));
  ASSERT_FALSE(fs->unlink(ino_of(dir), "second"));
  EXPECT_FALSE(fs->getattr(ino)) << "the last name gone, the inode is freed";
  fs->shutdown();
  EXPECT_EQ(fsck_report().exit_code, fsck::EXIT_CLEAN);
}

TEST_F(SpecialFilesTest, SpecialFilesSurviveRemountAndCrashAndAreCleanForFsck) {
  {
    auto fs = mount();
    ASSERT_TRUE(fs->mknod(meta::ROOT_INO, "fifo", S_IFIFO | 0600, 0, {}));
    ASSERT_TRUE(fs->mknod(meta::ROOT_INO, "blk", S_IFBLK | 0660, makedev(8, 16), {}));
    fs->shutdown();  // a checkpoint: the inodes are in the checkpoint image
  }
  {
    auto fs = mount();
    // No shutdown: this one stays in the journal only, as after a crash.
    ASSERT_TRUE(fs->mknod(meta::ROOT_INO, "sock", S_IFSOCK | 0600, 0, {}));
    ASSERT_TRUE(fs->mknod(meta::ROOT_INO, "chr", S_IFCHR | 0600, makedev(10, 229), {}));
    meta::Namespace ns = loaded_namespace();  // what a mount after a crash replays
    const meta::Inode* root = ns.find(meta::ROOT_INO);
    ASSERT_TRUE(root->entries.count("chr"));
    EXPECT_EQ(ns.find(root->entries.at("chr"))->rdev, makedev(10, 229));
    EXPECT_EQ(ns.find(root->entries.at("sock"))->mode, S_IFSOCK | 0600u);
    EXPECT_EQ(ns.find(root->entries.at("blk"))->rdev, makedev(8, 16));
    EXPECT_EQ(ns.find(root->entries.at("fifo"))->mode, S_IFIFO | 0600u);
    fsck::Report r = fsck_report();
    EXPECT_EQ(r.exit_code, fsck::EXIT_CLEAN);
    EXPECT_EQ(r.inodes, 5u);
  }
  auto fs = mount();
  auto chr = fs->lookup(meta::ROOT_INO, "chr");
  ASSERT_TRUE(chr);
  EXPECT_EQ(chr.value().st.st_rdev, makedev(10, 229));
  EXPECT_EQ(fs->lookup(meta::ROOT_INO, "blk").value().st.st_mode, S_IFBLK | 0660u);
}

TEST_F(SpecialFilesTest, OnlyDeviceNodesKeepADeviceNumber) {
  auto fs = mount();
  auto fifo = fs->mknod(meta::ROOT_INO, "fifo", S_IFIFO | 0600, makedev(1, 1), {});
  ASSERT_TRUE(fifo);
  EXPECT_EQ(fifo.value().st.st_rdev, 0u);
  EXPECT_EQ(fs->mknod(meta::ROOT_INO, "bad", 0170000 | 0600, 0, {}).error().value(), EINVAL);
}

TEST_F(SpecialFilesTest, AThickVlunLargerThanThePoolIsEfbigOneLargerThanItsFreeChunksEnospc) {
  auto fs = mount();
  const uint64_t total = fs->pool_stats().total_chunks;
  auto a = fs->create(meta::ROOT_INO, "a", S_IFREG | 0644, {});
  auto b = fs->create(meta::ROOT_INO, "b", S_IFREG | 0644, {});
  ASSERT_TRUE(a && b);
  struct stat st {};
  st.st_size = static_cast<off_t>((total + 1) * kChunk);
  EXPECT_EQ(fs->setattr(ino_of(a), st, AttrChanges{.size = true}, nullptr).error().value(), EFBIG);
  st.st_size = 999999999999999;
  EXPECT_EQ(fs->setattr(ino_of(a), st, AttrChanges{.size = true}, nullptr).error().value(), EFBIG);
  st.st_size = static_cast<off_t>((total - 1) * kChunk);
  ASSERT_TRUE(fs->setattr(ino_of(a), st, AttrChanges{.size = true}, nullptr));
  st.st_size = static_cast<off_t>(2 * kChunk);
  EXPECT_EQ(fs->setattr(ino_of(b), st, AttrChanges{.size = true}, nullptr).error().value(), ENOSPC);
  EXPECT_EQ(fs->getattr(ino_of(b)).value().st.st_size, 0);
}

TEST_F(SpecialFilesTest, AThinVlunMayPromiseMoreThanThePoolButNotPastTheLxtLimit) {
  auto fs = mount({.thin = true});
  const uint64_t total = fs->pool_stats().total_chunks;
  auto a = fs->create(meta::ROOT_INO, "a", S_IFREG | 0644, {});
  ASSERT_TRUE(a);
  struct stat st {};
  st.st_size = static_cast<off_t>(4 * total * kChunk);
  EXPECT_TRUE(fs->setattr(ino_of(a), st, AttrChanges{.size = true}, nullptr));
  st.st_size = 999999999999999;
  EXPECT_EQ(fs->setattr(ino_of(a), st, AttrChanges{.size = true}, nullptr).error().value(), EFBIG);
}

}  // namespace
}  // namespace vlunfs::fs
