// The flat namespace of the -o kernel_vluns scratch mount (fs/scratch/scratch_fs.h) under the
// simulated kernel: when a file's vLUN is RELEASEd (last name and last open gone), rename's
// replace / NOREPLACE / EXCHANGE, statfs in the driver's chunks, and what the flat mode refuses.
#include "fs/scratch/scratch_fs.h"

#include "capi_rig.h"

#include <cstdio>
#include <cstring>
#include <vector>

namespace vlunfs::fs::scratch {
namespace {

using afu::capi::test_rig::CapiRig;

constexpr uint64_t kChunk = uint64_t{256} << 20;  // 2^16 blocks of 4 KiB
constexpr uint64_t kLun = 4 * kChunk;

std::unique_ptr<ScratchFs> open_scratch(CapiRig& rig) {
  std::string why;
  auto files = client::KernelVlunFiles::open(*rig.kernel, rig.device, {}, &why);
  EXPECT_TRUE(files) << why;
  return files ? std::make_unique<ScratchFs>(std::move(files).value()) : nullptr;
}

fuse_ino_t create(ScratchFs& fs, const std::string& name) {
  auto e = fs.create(FUSE_ROOT_ID, name, S_IFREG | 0600, 0, 0);
  EXPECT_TRUE(e) << name;
  return e ? e.value().ino : 0;
}

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

std::string read_string(ScratchFs& fs, fuse_ino_t ino, size_t n) {
  std::vector<std::byte> buf(n);
  auto got = fs.read(ino, 0, buf);
  EXPECT_TRUE(got);
  return got ? std::string(reinterpret_cast<const char*>(buf.data()), got.value()) : "";
}

TEST(ScratchFs, AnUnlinkedOpenFileKeepsItsVlunUntilTheLastRelease) {
  CapiRig rig({}, kLun);
  auto fs = open_scratch(rig);
  ASSERT_TRUE(fs);
  const fuse_ino_t ino = create(*fs, "f");
  ASSERT_FALSE(fs->open(ino));
  ASSERT_FALSE(fs->write(ino, 0, bytes_of("still here")));
  ASSERT_FALSE(fs->unlink(FUSE_ROOT_ID, "f"));
  EXPECT_EQ(fs->lookup(FUSE_ROOT_ID, "f").error().value(), ENOENT);
  EXPECT_EQ(read_string(*fs, ino, 10), "still here");
  EXPECT_EQ(fs->getattr(ino).value().st_nlink, 0u);
  EXPECT_EQ(fs->files().files(), 1u);
  EXPECT_EQ(fs->statfs().f_bfree, 3u);
  ASSERT_FALSE(fs->release(ino));
  EXPECT_EQ(fs->files().files(), 0u);  // RELEASEd: the chunk is back
  EXPECT_EQ(fs->statfs().f_bfree, 4u);
  fs->forget(ino, 1);
  EXPECT_EQ(fs->getattr(ino).error().value(), ENOENT);
}

TEST(ScratchFs, UnlinkOfAClosedFileReleasesItsVlunAtOnce) {
  CapiRig rig({}, kLun);
  auto fs = open_scratch(rig);
  ASSERT_TRUE(fs);
  const fuse_ino_t ino = create(*fs, "f");
  struct stat to {};
  to.st_size = 5 << 20;
  ASSERT_TRUE(fs->setattr(ino, to, FUSE_SET_ATTR_SIZE));
  EXPECT_EQ(fs->getattr(ino).value().st_size, 5 << 20);
  EXPECT_EQ(fs->statfs().f_bfree, 3u);
  ASSERT_FALSE(fs->unlink(FUSE_ROOT_ID, "f"));
  EXPECT_EQ(fs->files().files(), 0u);
  EXPECT_EQ(fs->statfs().f_bfree, 4u);
}

TEST(ScratchFs, StatfsCountsTheLunInChunks) {
  CapiRig rig({}, kLun);
  auto fs = open_scratch(rig);
  ASSERT_TRUE(fs);
  const struct statvfs s = fs->statfs();
  EXPECT_EQ(s.f_frsize, kChunk);
  EXPECT_EQ(s.f_blocks, 4u);
  EXPECT_EQ(s.f_bavail, 4u);
  const fuse_ino_t ino = create(*fs, "big");
  struct stat to {};
  to.st_size = static_cast<off_t>(kChunk + 1);  // two chunks
  ASSERT_TRUE(fs->setattr(ino, to, FUSE_SET_ATTR_SIZE));
  EXPECT_EQ(fs->statfs().f_bfree, 2u);
  to.st_size = static_cast<off_t>(5 * kChunk);  // more than the LUN: ENOSPC, nothing kept
  EXPECT_EQ(fs->setattr(ino, to, FUSE_SET_ATTR_SIZE).error().value(), ENOSPC);
  EXPECT_EQ(fs->getattr(ino).value().st_size, static_cast<off_t>(kChunk + 1));
  EXPECT_EQ(fs->statfs().f_bfree, 2u);
}

TEST(ScratchFs, RenameReplacesTheTargetAndReleasesItsVlun) {
  CapiRig rig({}, kLun);
  auto fs = open_scratch(rig);
  ASSERT_TRUE(fs);
  const fuse_ino_t a = create(*fs, "a");
  create(*fs, "b");
  ASSERT_FALSE(fs->write(a, 0, bytes_of("from a")));
  ASSERT_FALSE(fs->rename(FUSE_ROOT_ID, "a", FUSE_ROOT_ID, "b", 0));
  const auto names = fs->list();
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names.begin()->first, "b");
  EXPECT_EQ(names.begin()->second, a);
  EXPECT_EQ(fs->files().files(), 1u);  // b's vLUN went
  EXPECT_EQ(read_string(*fs, fs->lookup(FUSE_ROOT_ID, "b").value().ino, 6), "from a");
}

TEST(ScratchFs, RenameNoReplaceAndExchange) {
  CapiRig rig({}, kLun);
  auto fs = open_scratch(rig);
  ASSERT_TRUE(fs);
  const fuse_ino_t a = create(*fs, "a");
  const fuse_ino_t b = create(*fs, "b");
  EXPECT_EQ(fs->rename(FUSE_ROOT_ID, "a", FUSE_ROOT_ID, "b", RENAME_NOREPLACE).value(), EEXIST);
  ASSERT_FALSE(fs->rename(FUSE_ROOT_ID, "a", FUSE_ROOT_ID, "b", RENAME_EXCHANGE));
  EXPECT_EQ(fs->list().at("a"), b);
  EXPECT_EQ(fs->list().at("b"), a);
  EXPECT_EQ(fs->rename(FUSE_ROOT_ID, "a", FUSE_ROOT_ID, "c", RENAME_EXCHANGE).value(), ENOENT);
  EXPECT_EQ(fs->files().files(), 2u);
}

TEST(ScratchFs, TheFlatModeRefusesWhatItDoesNotHold) {
  CapiRig rig({}, kLun);
  auto fs = open_scratch(rig);
  ASSERT_TRUE(fs);
  const fuse_ino_t f = create(*fs, "f");
  EXPECT_EQ(fs->create(FUSE_ROOT_ID, "f", S_IFREG | 0600, 0, 0).error().value(), EEXIST);
  EXPECT_EQ(fs->create(FUSE_ROOT_ID, "fifo", S_IFIFO | 0600, 0, 0).error().value(), EPERM);
  EXPECT_EQ(fs->create(f, "below", S_IFREG | 0600, 0, 0).error().value(), ENOTDIR);
  EXPECT_EQ(fs->lookup(f, "x").error().value(), ENOTDIR);
  EXPECT_EQ(fs->create(FUSE_ROOT_ID, std::string(256, 'n'), S_IFREG | 0600, 0, 0).error().value(), ENAMETOOLONG);
  EXPECT_EQ(fs->files().files(), 1u);  // no vLUN was made for a refused create
}

TEST(ScratchFs, SetattrKeepsTheFileRegularAndSetsTimes) {
  CapiRig rig({}, kLun);
  auto fs = open_scratch(rig);
  ASSERT_TRUE(fs);
  const fuse_ino_t f = create(*fs, "f");
  struct stat to {};
  to.st_mode = S_IFDIR | 0750;  // only the permission bits are taken
  to.st_uid = 42;
  to.st_mtim = {1234, 5};
  auto st = fs->setattr(f, to, FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_MTIME);
  ASSERT_TRUE(st);
  EXPECT_EQ(st.value().st_mode, S_IFREG | 0750);
  EXPECT_EQ(st.value().st_uid, 42u);
  EXPECT_EQ(st.value().st_mtim.tv_sec, 1234);
  EXPECT_EQ(fs->setattr(FUSE_ROOT_ID, to, FUSE_SET_ATTR_MODE).error().value(), EPERM);
}

}  // namespace
}  // namespace vlunfs::fs::scratch
