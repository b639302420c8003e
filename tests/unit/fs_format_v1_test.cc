// Format version 1 images (written before creation times and origins existed) still mount and
// fsck, and the first read-write mount rewrites them as the current version. The v1 image is written here
// by an encoder of its own that follows the version 1 layout (docs/format.md, "Versions"), not
// by the code under test.
#include "fs_rig.h"
#include "client/simulated_afu.h"
#include "fs/filesystem.h"
#include "meta/checkpoint.h"
#include "meta/coding.h"
#include "meta/crc32c.h"
#include "meta/format.h"
#include "meta/superblock.h"
#include "tools/fsck.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>

namespace vlunfs::fs {
namespace {

constexpr uint64_t kDevice = 16ull << 20;
constexpr unsigned kChunkShift = 4;
constexpr uint64_t kChunk = 4096ull << kChunkShift;
constexpr uint64_t kFileChunks = 3;

// A version 1 checkpoint image: the header, then per inode every field up to `parent`, the
// symlink, the LXT and the directory entries (no creation time, no origin).
std::vector<std::byte> encode_v1_checkpoint(const meta::Namespace& ns, uint64_t generation, uint64_t first_seq) {
  std::vector<std::byte> image(meta::kCheckpointHeaderBytes);
  std::memcpy(image.data(), "VLUNFSCP", 8);
  meta::store_u32(image.data() + 8, 1);
  meta::store_u32(image.data() + 12, static_cast<uint32_t>(meta::kCheckpointHeaderBytes));
  meta::store_u64(image.data() + 16, generation);
  meta::store_u64(image.data() + 24, ns.inodes.size());
  meta::store_u64(image.data() + 32, ns.next_ino);
  meta::store_u64(image.data() + 40, first_seq);
  std::vector<uint64_t> order;
  for (const auto& [ino, inode] : ns.inodes) order.push_back(ino);
  std::sort(order.begin(), order.end());
  meta::Encoder e(&image);
  for (uint64_t ino : order) {
    const meta::Inode& inode = ns.inodes.at(ino);
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
    e.text16(inode.symlink);
    e.u32(static_cast<uint32_t>(inode.lxt.size()));
    for (uint64_t entry : inode.lxt) e.u64(entry);
    e.u32(static_cast<uint32_t>(inode.entries.size()));
    for (const auto& [name, child] : inode.entries) {
      e.name(name);
      e.u64(child);
    }
  }
  return image;
}

class FormatV1Test : public ::testing::Test {
 protected:
  void SetUp() override { mem_ = test_rig::formatted_memory_device(kDevice, kChunkShift); }

  std::unique_ptr<Filesystem> mount() {
    return test_rig::mount_on_simulator(*mem_);
  }

  // Rewrites both superblock copies and their checkpoints in the version 1 encoding; `change`
  // edits the namespace of the newest one first (what an older program could have written).
  void rewrite_as_v1(const std::function<void(meta::Namespace&)>& change = {}) {
    uint64_t newest_generation = 0;
    for (int copy = 0; copy < 2; ++copy) {
      std::vector<std::byte> block(meta::kSuperblockBytes);
      ASSERT_FALSE(mem_->read(meta::kSuperblockOffset[copy], block));
      const meta::DecodedSuperblock decoded = meta::decode_superblock(block, copy, kDevice);
      if (decoded.state == meta::SuperblockState::valid) {
        newest_generation = std::max(newest_generation, decoded.superblock.generation);
      }
    }
    for (int copy = 0; copy < 2; ++copy) {
      std::vector<std::byte> block(meta::kSuperblockBytes);
      ASSERT_FALSE(mem_->read(meta::kSuperblockOffset[copy], block));
      const meta::DecodedSuperblock decoded = meta::decode_superblock(block, copy, kDevice);
      ASSERT_EQ(decoded.state, meta::SuperblockState::valid) << decoded.error.message;
      meta::Superblock sb = decoded.superblock;
      std::vector<std::byte> image(sb.checkpoint_length);
      ASSERT_FALSE(mem_->read(sb.checkpoint_offset, image));
      auto checkpoint = meta::decode_checkpoint(image, sb.generation, sb.journal_first_seq);
      ASSERT_TRUE(checkpoint) << checkpoint.error().message;
      meta::Namespace ns = std::move(checkpoint).value();
      if (change && sb.generation == newest_generation) change(ns);
      std::vector<std::byte> v1 = encode_v1_checkpoint(ns, sb.generation, sb.journal_first_seq);
      sb.checkpoint_length = v1.size();
      sb.checkpoint_crc = crc32c(v1.data(), v1.size());
      v1.resize((v1.size() + meta::kMetaBlock - 1) / meta::kMetaBlock * meta::kMetaBlock);
      ASSERT_FALSE(mem_->write(sb.checkpoint_offset, v1));
      std::vector<std::byte> sb_block = meta::encode_superblock(sb);
      meta::store_u32(sb_block.data() + meta::superblock_field::kVersion, 1);
      meta::store_u32(sb_block.data() + meta::superblock_field::kCrc,
                      crc32c(sb_block.data(), meta::superblock_field::kCrc));
      ASSERT_FALSE(mem_->write(meta::kSuperblockOffset[copy], sb_block));
    }
  }

  uint32_t newest_version_on_disk() {
    uint32_t version = 0;
    uint64_t newest = 0;
    for (int copy = 0; copy < 2; ++copy) {
      std::vector<std::byte> block(meta::kSuperblockBytes);
      EXPECT_FALSE(mem_->read(meta::kSuperblockOffset[copy], block));
      const meta::DecodedSuperblock decoded = meta::decode_superblock(block, copy, kDevice);
      if (decoded.state != meta::SuperblockState::valid) continue;
      const meta::Superblock& sb = decoded.superblock;
      if (sb.generation >= newest) {
        newest = sb.generation;
        version = sb.geometry.version;
      }
    }
    return version;
  }

  std::unique_ptr<store::BlockStore> mem_;
};

TEST_F(FormatV1Test, AVersion1ImageMountsFscksAndIsRewrittenAsVersion2) {
  std::vector<std::byte> data(kFileChunks * kChunk);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 7 + 3);
  {
    auto fs = mount();
    auto a = fs->create(meta::ROOT_INO, "a", S_IFREG | 0644, {});
    auto b = fs->create(meta::ROOT_INO, "b", S_IFREG | 0644, {});
    ASSERT_TRUE(fs->mkdir(meta::ROOT_INO, "d", 0755, {}));
    ASSERT_TRUE(fs->symlink(meta::ROOT_INO, "l", "a", {}));
    auto fa = fs->open_file(a.value().st.st_ino, true).value();
    auto fb = fs->open_file(b.value().st.st_ino, true).value();
    ASSERT_TRUE(fs->write(fa, 0, data));
    ASSERT_TRUE(fs->copy_range(fa, 0, fb, 0, data.size()));  // shared thick chunks
    fs->release_file(fa);
    fs->release_file(fb);
    fs->shutdown();
  }
  rewrite_as_v1();
  ASSERT_EQ(newest_version_on_disk(), 1u);

  {
    // Read as it is: a read-only open does not rewrite it.
    auto m = meta::MetaStore::open(*mem_, {.read_only = true});
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m.value()->geometry().version, 1u);
    const meta::Inode* root = m.value()->ns().find(meta::ROOT_INO);
    ASSERT_NE(root, nullptr);
    EXPECT_EQ(root->entries.size(), 4u);
    for (const auto& [ino, inode] : m.value()->ns().inodes) EXPECT_EQ(inode.btime_ns, 0) << ino;  // unknown
  }
  fsck::Report checked = fsck::check_device(*mem_, "v1 image", {});
  EXPECT_EQ(checked.exit_code, fsck::EXIT_CLEAN) << (checked.errors().empty() ? "" : checked.errors().front());
  EXPECT_EQ(checked.chunks_shared, kFileChunks);
  EXPECT_EQ(checked.chunks_reserved, kFileChunks);
  ASSERT_EQ(newest_version_on_disk(), 1u);

  {
    auto fs = mount();
    EXPECT_EQ(newest_version_on_disk(), meta::kFormatVersion);  // rewritten (as version 3) before anything was appended
    EXPECT_EQ(fs->pool_stats().reserved_chunks, kFileChunks);  // derived from the v1 chunk maps
    auto b = fs->lookup(meta::ROOT_INO, "b");
    ASSERT_TRUE(b);
    auto fb = fs->open_file(b.value().st.st_ino, true).value();
    std::vector<std::byte> back(data.size());
    ASSERT_TRUE(fs->read(fb, 0, back));
    EXPECT_EQ(back, data);
    for (const VlunReport& r : fs->report()) EXPECT_EQ(r.birth_ns, 0) << r.path;
    ASSERT_TRUE(fs->write(fb, 0, std::vector<std::byte>(4096, std::byte{1})));
    fs->release_file(fb);
    ASSERT_FALSE(fs->clone_file("a", "c", false));
    fs->shutdown();
  }
  checked = fsck::check_device(*mem_, "upgraded image", {});
  EXPECT_EQ(checked.exit_code, fsck::EXIT_CLEAN) << (checked.errors().empty() ? "" : checked.errors().front());
  auto m = meta::MetaStore::open(*mem_, {.read_only = true});
  ASSERT_TRUE(m);
  EXPECT_EQ(m.value()->geometry().version, meta::kFormatVersion);
  auto a = m.value()->ns().find(m.value()->ns().find(meta::ROOT_INO)->entries.at("a"));
  auto c = m.value()->ns().find(m.value()->ns().find(meta::ROOT_INO)->entries.at("c"));
  EXPECT_EQ(c->origin, a->ino);
  EXPECT_GT(c->btime_ns, 0);
}

// A version 1 program shared chunks of thick files without a reserve: the image can start out
// with fewer free chunks than its thick shares need. It mounts (the daemon logs the shortfall);
// writes that do not deepen it go ahead, new shares do not.
TEST_F(FormatV1Test, AnImageSharedBeyondItsFreeChunksMountsAndNewSharesWaitForSpace) {
  uint64_t a_ino, filler_ino;
  {
    auto fs = mount();
    auto a = fs->create(meta::ROOT_INO, "a", S_IFREG | 0644, {});
    a_ino = a.value().st.st_ino;
    auto fa = fs->open_file(a_ino, true).value();
    ASSERT_TRUE(fs->write(fa, 0, std::vector<std::byte>(kFileChunks * kChunk, std::byte{7})));
    fs->release_file(fa);
    auto filler = fs->create(meta::ROOT_INO, "filler", S_IFREG | 0644, {});
    filler_ino = filler.value().st.st_ino;
    auto ff = fs->open_file(filler_ino, true).value();
    for (uint64_t n = 1;; ++n) {
      struct stat st {};
      st.st_size = static_cast<off_t>(n * kChunk);
      if (!fs->setattr(filler_ino, st, AttrChanges{.size = true}, ff)) break;
    }
    fs->release_file(ff);
    ASSERT_EQ(fs->pool_stats().free_chunks, 0u);
    fs->shutdown();
  }
  // b: a thick copy sharing every chunk of a, as cp did before the reserve.
  rewrite_as_v1([&](meta::Namespace& ns) {
    meta::Inode& a = ns.inodes.at(a_ino);
    for (uint64_t& e : a.lxt) e &= ~sisl::LXT_PERM_WRITE;
    meta::Inode b = a;
    b.ino = ns.next_ino++;
    ns.inodes[b.ino] = b;
    ns.find(meta::ROOT_INO)->entries["b"] = b.ino;
  });
  ASSERT_EQ(fsck::check_device(*mem_, "short image", {}).exit_code, fsck::EXIT_ERRORS_LEFT);
  auto fs = mount();
  EXPECT_EQ(fs->pool_stats().reserved_chunks, kFileChunks);
  EXPECT_EQ(fs->statfs().f_bfree, 0u);
  auto fa = fs->open_file(a_ino, true).value();
  // Nothing is free at all: even a thick owner's break must wait.
  EXPECT_EQ(fs->write(fa, 0, std::vector<std::byte>(4096, std::byte{1})).error().value(), ENOSPC);
  // Two chunks freed: a thick owner's break takes one of them; a new share (one more chunk of
  // reserve each) and a grow do not go ahead while the shortfall lasts.
  auto ff = fs->open_file(filler_ino, true).value();
  struct stat st {};
  st.st_size = static_cast<off_t>(fs->getattr(filler_ino).value().st.st_size - 2 * kChunk);
  ASSERT_TRUE(fs->setattr(filler_ino, st, AttrChanges{.size = true}, ff));
  ASSERT_TRUE(fs->write(fa, 0, std::vector<std::byte>(4096, std::byte{1})));
  EXPECT_EQ(fs->pool_stats().reserved_chunks, kFileChunks - 1);
  EXPECT_EQ(fs->pool_stats().free_chunks, 1u);
  EXPECT_EQ(fs->clone_file("a", "c", false).value(), ENOSPC);
  st.st_size += static_cast<off_t>(kChunk);
  EXPECT_EQ(fs->setattr(filler_ino, st, AttrChanges{.size = true}, ff).error().value(), ENOSPC);
  fs->release_file(ff);
  fs->release_file(fa);
}

}  // namespace
}  // namespace vlunfs::fs
