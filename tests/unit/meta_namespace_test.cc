// apply(): what every record does to a namespace, and that every refused record leaves the
// namespace exactly as it was.

#include "meta_test_support.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <limits>

namespace vlunfs::meta {
namespace {

std::error_code err(int e) { return errno_error(e); }

// root(1) { d(2) { e(3) {}, g(4) }, f(5), s(6) -> "target" }
class ApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ns = make_empty_namespace(10, 0, 0);
    ok(create_record(ns, ROOT_INO, "d", S_IFDIR | 0755, 20));
    ok(create_record(ns, 2, "e", S_IFDIR | 0700, 30));
    ok(create_record(ns, 2, "g", S_IFREG | 0600, 40));
    ok(create_record(ns, ROOT_INO, "f", S_IFREG | 0644, 50));
    ok(create_record(ns, ROOT_INO, "s", S_IFLNK | 0777, 60, "target"));
    ASSERT_TRUE(Consistent(ns));
  }

  void ok(const Record& r) {
    ASSERT_EQ(meta::apply(ns, r), std::error_code()) << "record index " << r.index();
    ASSERT_TRUE(Consistent(ns));
  }

  // The record is refused with `e` and the namespace does not change at all.
  void refused(const Record& r, int e) {
    const Namespace before = ns;
    EXPECT_EQ(meta::apply(ns, r), err(e)) << "record index " << r.index();
    EXPECT_TRUE(SameNamespace(ns, before));
  }

  const Inode& at(uint64_t ino) { return *ns.find(ino); }

  Namespace ns;
};

// ---- make_empty_namespace ----

TEST(EmptyNamespace, HasOnlyTheRootDirectory) {
  const Namespace ns = make_empty_namespace(123, 7, 8);
  ASSERT_EQ(ns.inodes.size(), 1u);
  const Inode* root = ns.find(ROOT_INO);
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->mode, S_IFDIR | 0755u);
  EXPECT_EQ(root->nlink, 2u);
  EXPECT_EQ(root->uid, 7u);
  EXPECT_EQ(root->gid, 8u);
  EXPECT_EQ(root->mtime_ns, 123);
  EXPECT_EQ(root->parent, ROOT_INO);
  EXPECT_EQ(ns.next_ino, ROOT_INO + 1);
  EXPECT_TRUE(Consistent(ns));
}

// ---- Create ----

TEST_F(ApplyTest, CreateFileGetsOneLinkAndAdvancesNextIno) {
  const uint64_t ino = ns.next_ino;
  ok(create_record(ns, ROOT_INO, "new", S_IFREG | 0640, 1000));
  EXPECT_EQ(ns.next_ino, ino + 1);
  const Inode& inode = at(ino);
  EXPECT_EQ(inode.nlink, 1u);
  EXPECT_EQ(inode.mode, S_IFREG | 0640u);
  EXPECT_EQ(inode.uid, 1000u);
  EXPECT_EQ(inode.atime_ns, 1000);
  EXPECT_EQ(inode.ctime_ns, 1000);
  EXPECT_EQ(at(ROOT_INO).entries.at("new"), ino);
  EXPECT_EQ(at(ROOT_INO).mtime_ns, 1000);
  EXPECT_EQ(at(ROOT_INO).ctime_ns, 1000);
}

TEST_F(ApplyTest, CreateDirectoryGetsTwoLinksAndRaisesParentNlink) {
  const uint32_t parent_nlink = at(2).nlink;
  const uint64_t ino = ns.next_ino;
  ok(create_record(ns, 2, "sub", S_IFDIR | 0755, 1000));
  EXPECT_EQ(at(ino).nlink, 2u);
  EXPECT_EQ(at(ino).parent, 2u);
  EXPECT_EQ(at(2).nlink, parent_nlink + 1);
}

TEST_F(ApplyTest, CreateSymlinkStoresTargetAndItsLengthAsSize) {
  const Inode& link = at(6);
  EXPECT_EQ(link.symlink, "target");
  EXPECT_EQ(link.size, 6u);
  EXPECT_EQ(link.nlink, 1u);
}

TEST_F(ApplyTest, CreateRefusesInvalidRecords) {
  refused(create_record(ns, 99, "x", S_IFREG), ENOENT);
  refused(create_record(ns, 5, "x", S_IFREG), ENOTDIR);
  refused(create_record(ns, ROOT_INO, "f", S_IFREG), EEXIST);
  refused(create_record(ns, ROOT_INO, "", S_IFREG), EINVAL);
  refused(create_record(ns, ROOT_INO, ".", S_IFREG), EINVAL);
  refused(create_record(ns, ROOT_INO, "..", S_IFREG), EINVAL);
  refused(create_record(ns, ROOT_INO, "a/b", S_IFREG), EINVAL);
  refused(create_record(ns, ROOT_INO, std::string("a\0b", 3), S_IFREG), EINVAL);
  refused(create_record(ns, ROOT_INO, std::string(256, 'x'), S_IFREG), ENAMETOOLONG);
  refused(create_record(ns, ROOT_INO, "bad", S_IFMT | 0644), EINVAL);  // no such file type
  CreateRecord fifo_with_rdev = create_record(ns, ROOT_INO, "fifo", S_IFIFO | 0644);
  fifo_with_rdev.rdev = 1;  // only a device node names a device
  refused(fifo_with_rdev, EINVAL);
  refused(create_record(ns, ROOT_INO, "l", S_IFLNK | 0777, 1, ""), EINVAL);
  refused(create_record(ns, ROOT_INO, "l", S_IFLNK | 0777, 1, std::string(MAX_SYMLINK + 1, 'x')), ENAMETOOLONG);
  refused(create_record(ns, ROOT_INO, "r", S_IFREG | 0644, 1, "target"), EINVAL);
  CreateRecord wrong_ino = create_record(ns, ROOT_INO, "x", S_IFREG);
  wrong_ino.ino = ns.next_ino + 1;
  refused(wrong_ino, EINVAL);
  wrong_ino.ino = 5;
  refused(wrong_ino, EINVAL);
}

// Format 3: FIFOs, sockets and device nodes are inodes like symlinks, with no target and, for
// devices, the device number.
TEST_F(ApplyTest, CreateMakesSpecialFilesAndKeepsADeviceNumber) {
  for (uint32_t type : {S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK}) {
    CreateRecord r = create_record(ns, ROOT_INO, "node" + std::to_string(type), type | 0600);
    if (type == S_IFCHR || type == S_IFBLK) r.rdev = 0x0801;
    ok(r);
    const Inode* inode = ns.find(r.ino);
    ASSERT_NE(inode, nullptr);
    EXPECT_EQ(inode->mode, type | 0600u);
    EXPECT_EQ(inode->nlink, 1u);
    EXPECT_EQ(inode->rdev, r.rdev);
    EXPECT_EQ(inode->size, 0u);
  }
}

TEST_F(ApplyTest, CreateAcceptsAMaximalName) {
  ok(create_record(ns, ROOT_INO, std::string(MAX_NAME, 'x'), S_IFREG | 0644));
}

TEST_F(ApplyTest, CreateDirectoryRefusesParentAtMaximumLinkCount) {
  ns.find(2)->nlink = std::numeric_limits<uint32_t>::max();
  refused(create_record(ns, 2, "x", S_IFDIR | 0755), EMLINK);
}

// ---- Link ----

TEST_F(ApplyTest, LinkAddsANameAndALink) {
  LinkRecord r{.ino = 5, .parent = 2, .name = "f2", .time_ns = 777};
  ok(r);
  EXPECT_EQ(at(5).nlink, 2u);
  EXPECT_EQ(at(5).ctime_ns, 777);
  EXPECT_EQ(at(2).entries.at("f2"), 5u);
  EXPECT_EQ(at(2).mtime_ns, 777);
}

TEST_F(ApplyTest, LinkRefusesInvalidRecords) {
  refused(LinkRecord{.ino = 2, .parent = ROOT_INO, .name = "d2"}, EPERM);
  refused(LinkRecord{.ino = 99, .parent = ROOT_INO, .name = "x"}, ENOENT);
  refused(LinkRecord{.ino = 5, .parent = 99, .name = "x"}, ENOENT);
  refused(LinkRecord{.ino = 5, .parent = 4, .name = "x"}, ENOTDIR);
  refused(LinkRecord{.ino = 5, .parent = ROOT_INO, .name = "s"}, EEXIST);
  refused(LinkRecord{.ino = 5, .parent = ROOT_INO, .name = ""}, EINVAL);
  refused(LinkRecord{.ino = 5, .parent = ROOT_INO, .name = std::string(300, 'y')}, ENAMETOOLONG);
  ns.find(5)->nlink = std::numeric_limits<uint32_t>::max();
  refused(LinkRecord{.ino = 5, .parent = ROOT_INO, .name = "x"}, EMLINK);
}

TEST_F(ApplyTest, LinkRefusesAnOrphan) {
  ok(UnlinkRecord{.parent = ROOT_INO, .name = "f"});
  refused(LinkRecord{.ino = 5, .parent = ROOT_INO, .name = "back"}, ENOENT);
}

// ---- Unlink ----

TEST_F(ApplyTest, UnlinkOfLastNameLeavesAnOrphan) {
  ok(UnlinkRecord{.parent = ROOT_INO, .name = "f", .time_ns = 900});
  ASSERT_NE(ns.find(5), nullptr);
  EXPECT_EQ(at(5).nlink, 0u);
  EXPECT_EQ(at(5).ctime_ns, 900);
  EXPECT_FALSE(at(ROOT_INO).entries.contains("f"));
  EXPECT_EQ(at(ROOT_INO).mtime_ns, 900);
}

TEST_F(ApplyTest, UnlinkOfOneOfTwoNamesKeepsTheInodeLinked) {
  ok(LinkRecord{.ino = 5, .parent = 2, .name = "f2"});
  ok(UnlinkRecord{.parent = ROOT_INO, .name = "f"});
  EXPECT_EQ(at(5).nlink, 1u);
}

TEST_F(ApplyTest, UnlinkOfEmptyDirectoryRemovesItAndLowersParentNlink) {
  const uint32_t parent_nlink = at(2).nlink;
  ok(UnlinkRecord{.parent = 2, .name = "e"});
  EXPECT_EQ(ns.find(3), nullptr);
  EXPECT_EQ(at(2).nlink, parent_nlink - 1);
}

TEST_F(ApplyTest, UnlinkRefusesInvalidRecords) {
  refused(UnlinkRecord{.parent = ROOT_INO, .name = "d"}, ENOTEMPTY);
  refused(UnlinkRecord{.parent = ROOT_INO, .name = "nope"}, ENOENT);
  refused(UnlinkRecord{.parent = 99, .name = "f"}, ENOENT);
  refused(UnlinkRecord{.parent = 5, .name = "f"}, ENOTDIR);
  refused(UnlinkRecord{.parent = ROOT_INO, .name = ".."}, EINVAL);
}

// ---- Rename ----

TEST_F(ApplyTest, RenameMovesAFileBetweenDirectories) {
  ok(RenameRecord{.src_parent = ROOT_INO, .src_name = "f", .dst_parent = 3, .dst_name = "moved", .time_ns = 55});
  EXPECT_FALSE(at(ROOT_INO).entries.contains("f"));
  EXPECT_EQ(at(3).entries.at("moved"), 5u);
  EXPECT_EQ(at(5).ctime_ns, 55);
  EXPECT_EQ(at(3).mtime_ns, 55);
  EXPECT_EQ(at(ROOT_INO).mtime_ns, 55);
}

TEST_F(ApplyTest, RenameOntoItselfChangesNothing) {
  const Namespace before = ns;
  ok(RenameRecord{.src_parent = ROOT_INO, .src_name = "f", .dst_parent = ROOT_INO, .dst_name = "f", .time_ns = 55});
  EXPECT_TRUE(SameNamespace(ns, before));
}

TEST_F(ApplyTest, RenameOntoAnotherNameOfTheSameInodeChangesNothing) {
  ok(LinkRecord{.ino = 5, .parent = ROOT_INO, .name = "f2"});
  const Namespace before = ns;
  ok(RenameRecord{.src_parent = ROOT_INO, .src_name = "f", .dst_parent = ROOT_INO, .dst_name = "f2"});
  EXPECT_TRUE(SameNamespace(ns, before));
}

TEST_F(ApplyTest, RenameOverAFileLeavesTheReplacedFileOrphaned) {
  ok(RenameRecord{.src_parent = 2, .src_name = "g", .dst_parent = ROOT_INO, .dst_name = "f", .time_ns = 66});
  EXPECT_EQ(at(ROOT_INO).entries.at("f"), 4u);
  EXPECT_FALSE(at(2).entries.contains("g"));
  EXPECT_EQ(at(5).nlink, 0u);
  EXPECT_EQ(at(5).ctime_ns, 66);
}

TEST_F(ApplyTest, RenameDirectoryOverEmptyDirectoryRemovesTheTarget) {
  ok(create_record(ns, ROOT_INO, "empty", S_IFDIR | 0755));
  const uint64_t empty = ns.next_ino - 1;
  const uint32_t root_nlink = at(ROOT_INO).nlink;
  const uint32_t d_nlink = at(2).nlink;
  ok(RenameRecord{.src_parent = 2, .src_name = "e", .dst_parent = ROOT_INO, .dst_name = "empty"});
  EXPECT_EQ(ns.find(empty), nullptr);
  EXPECT_EQ(at(ROOT_INO).entries.at("empty"), 3u);
  EXPECT_EQ(at(3).parent, ROOT_INO);
  EXPECT_EQ(at(ROOT_INO).nlink, root_nlink);  // lost "empty", gained "e"
  EXPECT_EQ(at(2).nlink, d_nlink - 1);
}

TEST_F(ApplyTest, RenameDirectoryWithinItsParentOverEmptyDirectory) {
  ok(create_record(ns, 2, "empty", S_IFDIR | 0755));
  const uint32_t d_nlink = at(2).nlink;
  ok(RenameRecord{.src_parent = 2, .src_name = "e", .dst_parent = 2, .dst_name = "empty"});
  EXPECT_EQ(at(2).nlink, d_nlink - 1);
}

TEST_F(ApplyTest, RenameDirectoryUpdatesParentAndLinkCounts) {
  const uint32_t root_nlink = at(ROOT_INO).nlink;
  const uint32_t d_nlink = at(2).nlink;
  ok(RenameRecord{.src_parent = 2, .src_name = "e", .dst_parent = ROOT_INO, .dst_name = "e2"});
  EXPECT_EQ(at(3).parent, ROOT_INO);
  EXPECT_EQ(at(ROOT_INO).nlink, root_nlink + 1);
  EXPECT_EQ(at(2).nlink, d_nlink - 1);
}

TEST_F(ApplyTest, RenameRefusesInvalidRecords) {
  ok(create_record(ns, ROOT_INO, "full", S_IFDIR | 0755));
  const uint64_t full = ns.next_ino - 1;
  ok(create_record(ns, full, "child", S_IFREG | 0644));
  // Directory over a non-empty directory, over a file; file over a directory.
  refused(RenameRecord{.src_parent = 2, .src_name = "e", .dst_parent = ROOT_INO, .dst_name = "full"}, ENOTEMPTY);
  refused(RenameRecord{.src_parent = 2, .src_name = "e", .dst_parent = ROOT_INO, .dst_name = "f"}, ENOTDIR);
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "f", .dst_parent = 2, .dst_name = "e"}, EISDIR);
  // Into its own subtree, or onto itself as its own child.
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "d", .dst_parent = 3, .dst_name = "x"}, EINVAL);
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "d", .dst_parent = 2, .dst_name = "x"}, EINVAL);
  // Missing source, missing parents, bad names, bad flags.
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "nope", .dst_parent = 2, .dst_name = "x"}, ENOENT);
  refused(RenameRecord{.src_parent = 99, .src_name = "f", .dst_parent = 2, .dst_name = "x"}, ENOENT);
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "f", .dst_parent = 99, .dst_name = "x"}, ENOENT);
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "f", .dst_parent = 5, .dst_name = "x"}, ENOTDIR);
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "f", .dst_parent = 2, .dst_name = "a/b"}, EINVAL);
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "f", .dst_parent = 2, .dst_name = std::string(256, 'z')},
          ENAMETOOLONG);
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "f", .dst_parent = 2, .dst_name = "x", .flags = 4}, EINVAL);
  refused(RenameRecord{.src_parent = ROOT_INO,
                       .src_name = "f",
                       .dst_parent = 2,
                       .dst_name = "g",
                       .flags = RENAME_FLAG_NOREPLACE | RENAME_FLAG_EXCHANGE},
          EINVAL);
}

TEST_F(ApplyTest, RenameNoReplaceRefusesAnExistingTarget) {
  refused(RenameRecord{.src_parent = ROOT_INO,
                       .src_name = "f",
                       .dst_parent = 2,
                       .dst_name = "g",
                       .flags = RENAME_FLAG_NOREPLACE},
          EEXIST);
  ok(RenameRecord{.src_parent = ROOT_INO,
                  .src_name = "f",
                  .dst_parent = 2,
                  .dst_name = "new",
                  .flags = RENAME_FLAG_NOREPLACE});
  EXPECT_EQ(at(2).entries.at("new"), 5u);
}

TEST_F(ApplyTest, RenameExchangeSwapsTwoNamesAndFixesDirectoryParents) {
  const uint32_t root_nlink = at(ROOT_INO).nlink;
  const uint32_t d_nlink = at(2).nlink;
  // Directory d/e <-> file f.
  ok(RenameRecord{.src_parent = 2,
                  .src_name = "e",
                  .dst_parent = ROOT_INO,
                  .dst_name = "f",
                  .flags = RENAME_FLAG_EXCHANGE,
                  .time_ns = 99});
  EXPECT_EQ(at(2).entries.at("e"), 5u);
  EXPECT_EQ(at(ROOT_INO).entries.at("f"), 3u);
  EXPECT_EQ(at(3).parent, ROOT_INO);
  EXPECT_EQ(at(ROOT_INO).nlink, root_nlink + 1);
  EXPECT_EQ(at(2).nlink, d_nlink - 1);
  EXPECT_EQ(at(3).ctime_ns, 99);
  EXPECT_EQ(at(5).ctime_ns, 99);
  EXPECT_EQ(at(5).nlink, 1u);
}

TEST_F(ApplyTest, RenameExchangeOfTwoDirectoriesKeepsLinkCounts) {
  ok(create_record(ns, ROOT_INO, "other", S_IFDIR | 0755));
  const uint64_t other = ns.next_ino - 1;
  const uint32_t root_nlink = at(ROOT_INO).nlink;
  ok(RenameRecord{.src_parent = 2, .src_name = "e", .dst_parent = ROOT_INO, .dst_name = "other",
                  .flags = RENAME_FLAG_EXCHANGE});
  EXPECT_EQ(at(3).parent, ROOT_INO);
  EXPECT_EQ(at(other).parent, 2u);
  EXPECT_EQ(at(ROOT_INO).nlink, root_nlink);
}

TEST_F(ApplyTest, RenameExchangeRefusesMissingNamesAndSubtreeSwaps) {
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "f", .dst_parent = 2, .dst_name = "nope",
                       .flags = RENAME_FLAG_EXCHANGE},
          ENOENT);
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "nope", .dst_parent = 2, .dst_name = "g",
                       .flags = RENAME_FLAG_EXCHANGE},
          ENOENT);
  // d <-> d/e would put d inside itself.
  refused(RenameRecord{.src_parent = ROOT_INO, .src_name = "d", .dst_parent = 2, .dst_name = "e",
                       .flags = RENAME_FLAG_EXCHANGE},
          EINVAL);
  refused(RenameRecord{.src_parent = 2, .src_name = "e", .dst_parent = ROOT_INO, .dst_name = "d",
                       .flags = RENAME_FLAG_EXCHANGE},
          EINVAL);
}

// ---- SetAttr ----

TEST_F(ApplyTest, SetAttrChangesOnlyTheFlaggedFields) {
  const Inode before = at(5);
  ok(SetAttrRecord{.ino = 5, .valid = SET_UID | SET_MTIME, .mode = 0777, .uid = 42, .gid = 43, .flags = 1,
                   .atime_ns = 1, .mtime_ns = 2, .ctime_ns = 3});
  EXPECT_EQ(at(5).uid, 42u);
  EXPECT_EQ(at(5).mtime_ns, 2);
  EXPECT_EQ(at(5).gid, before.gid);
  EXPECT_EQ(at(5).mode, before.mode);
  EXPECT_EQ(at(5).atime_ns, before.atime_ns);
  EXPECT_EQ(at(5).ctime_ns, before.ctime_ns);
  EXPECT_EQ(at(5).flags, before.flags);
  ok(SetAttrRecord{.ino = 5, .valid = SET_GID | SET_ATIME | SET_CTIME | SET_FLAGS, .gid = 43, .flags = INODE_FLAG_THIN,
                   .atime_ns = 1, .ctime_ns = 3});
  EXPECT_EQ(at(5).gid, 43u);
  EXPECT_EQ(at(5).atime_ns, 1);
  EXPECT_EQ(at(5).ctime_ns, 3);
  EXPECT_EQ(at(5).flags, INODE_FLAG_THIN);
}

TEST_F(ApplyTest, SetAttrModeKeepsTheFileType) {
  ok(SetAttrRecord{.ino = 2, .valid = SET_MODE, .mode = S_IFREG | 04711});
  EXPECT_EQ(at(2).mode, S_IFDIR | 04711u);
}

TEST_F(ApplyTest, SetAttrRefusesInvalidRecords) {
  refused(SetAttrRecord{.ino = 99, .valid = SET_UID, .uid = 1}, ENOENT);
  refused(SetAttrRecord{.ino = 5, .valid = 128}, EINVAL);
}

// ---- Resize ----

TEST_F(ApplyTest, ResizeGrowsTheLxtWithNewEntries) {
  ok(ResizeRecord{.ino = 5, .size = 100000, .lxt_count = 2, .first_index = 0, .entries = {11, 12}, .time_ns = 5});
  EXPECT_EQ(at(5).lxt, (std::vector<uint64_t>{11, 12}));
  EXPECT_EQ(at(5).size, 100000u);
  EXPECT_EQ(at(5).mtime_ns, 5);
  EXPECT_EQ(at(5).ctime_ns, 5);
  ok(ResizeRecord{.ino = 5, .size = 200000, .lxt_count = 4, .first_index = 2, .entries = {13, 14}});
  EXPECT_EQ(at(5).lxt, (std::vector<uint64_t>{11, 12, 13, 14}));
}

TEST_F(ApplyTest, ResizeShrinksTheLxt) {
  ok(ResizeRecord{.ino = 5, .size = 3, .lxt_count = 3, .first_index = 0, .entries = {1, 2, 3}});
  ok(ResizeRecord{.ino = 5, .size = 1, .lxt_count = 1, .first_index = 1, .entries = {}});
  EXPECT_EQ(at(5).lxt, (std::vector<uint64_t>{1}));
  EXPECT_EQ(at(5).size, 1u);
}

TEST_F(ApplyTest, ResizeRefusesInvalidRecords) {
  refused(ResizeRecord{.ino = 99, .lxt_count = 1, .entries = {1}}, ENOENT);
  refused(ResizeRecord{.ino = 2, .lxt_count = 1, .entries = {1}}, EISDIR);
  refused(ResizeRecord{.ino = 6, .lxt_count = 1, .entries = {1}}, EINVAL);
  // Entries past lxt_count; a first index past the old end (a gap).
  refused(ResizeRecord{.ino = 5, .lxt_count = 1, .first_index = 0, .entries = {1, 2}}, EINVAL);
  refused(ResizeRecord{.ino = 5, .lxt_count = 3, .first_index = 1, .entries = {1, 2}}, EINVAL);
  refused(ResizeRecord{.ino = 5, .lxt_count = std::numeric_limits<uint32_t>::max(),
                       .first_index = std::numeric_limits<uint32_t>::max(), .entries = {1}},
          EINVAL);
}

// ---- Map ----

TEST_F(ApplyTest, MapReplacesEntriesWithoutChangingTheSize) {
  ok(ResizeRecord{.ino = 5, .size = 3, .lxt_count = 3, .first_index = 0, .entries = {1, 2, 3}});
  ok(MapRecord{.ino = 5, .first_index = 1, .entries = {20, 30}, .time_ns = 77});
  EXPECT_EQ(at(5).lxt, (std::vector<uint64_t>{1, 20, 30}));
  EXPECT_EQ(at(5).size, 3u);
  EXPECT_EQ(at(5).mtime_ns, 77);
}

TEST_F(ApplyTest, MapRefusesInvalidRecords) {
  ok(ResizeRecord{.ino = 5, .size = 3, .lxt_count = 3, .first_index = 0, .entries = {1, 2, 3}});
  refused(MapRecord{.ino = 5, .first_index = 2, .entries = {1, 2}}, EINVAL);
  refused(MapRecord{.ino = 5, .first_index = 4, .entries = {}}, EINVAL);
  refused(MapRecord{.ino = 99, .entries = {}}, ENOENT);
  refused(MapRecord{.ino = 2, .entries = {}}, EISDIR);
  refused(MapRecord{.ino = 6, .entries = {}}, EINVAL);
}

// ---- Free ----

TEST_F(ApplyTest, FreeRemovesAnOrphan) {
  ok(UnlinkRecord{.parent = ROOT_INO, .name = "f"});
  ok(FreeRecord{.ino = 5});
  EXPECT_EQ(ns.find(5), nullptr);
}

TEST_F(ApplyTest, FreeRefusesLinkedMissingAndRootInodes) {
  refused(FreeRecord{.ino = 5}, EBUSY);
  refused(FreeRecord{.ino = 99}, ENOENT);
  refused(FreeRecord{.ino = ROOT_INO}, EINVAL);
}

// ---- Origin (format version 2) ----

TEST_F(ApplyTest, OriginNamesTheInodeAFileWasClonedFrom) {
  EXPECT_EQ(at(5).origin, 0u);
  ok(OriginRecord{.ino = 5, .origin = 2});
  EXPECT_EQ(at(5).origin, 2u);
}

TEST_F(ApplyTest, OriginRefusesNonFilesItselfAndUnusedInodeNumbers) {
  refused(OriginRecord{.ino = 2, .origin = 5}, EISDIR);
  refused(OriginRecord{.ino = 99, .origin = 5}, ENOENT);
  refused(OriginRecord{.ino = 5, .origin = 5}, EINVAL);
  refused(OriginRecord{.ino = 5, .origin = ns.next_ino}, EINVAL);
}

TEST_F(ApplyTest, CreateSetsTheCreationTime) {
  ok(CreateRecord{.parent = ROOT_INO, .name = "new", .ino = ns.next_ino, .mode = S_IFREG | 0644, .time_ns = 4242});
  EXPECT_EQ(at(ns.next_ino - 1).btime_ns, 4242);
}

// ---- Whole sequences ----

TEST(ApplySequence, RandomRecordsKeepEveryInvariantAndRefusalsChangeNothing) {
  for (uint64_t seed = 1; seed <= 20; seed++) {
    RecordGenerator generator(seed);
    Namespace ns = make_empty_namespace(0);
    int applied = 0;
    for (int i = 0; i < 400; i++) {
      const Record r = generator.next(ns);
      const Namespace before = ns;
      if (meta::apply(ns, r)) {
        ASSERT_TRUE(SameNamespace(ns, before)) << "seed " << seed << " step " << i;
      } else {
        applied++;
        ASSERT_TRUE(Consistent(ns)) << "seed " << seed << " step " << i << " record " << r.index();
      }
    }
    EXPECT_GT(applied, 100) << "the generator should mostly produce valid records";
  }
}

}  // namespace
}  // namespace vlunfs::meta
