// The daemon's permission check for control requests: the kernel's generic_permission() rules.
#include "fs/access_check.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vlunfs::fs {
namespace {

constexpr uint32_t kOwner = 1000, kGroup = 100;
const Caller kRoot{0, 0, {}};
const Caller kTheOwner{kOwner, 2000, {}};
const Caller kGroupMember{1001, kGroup, {}};
const Caller kSupplementaryMember{1002, 3000, {7, kGroup}};
const Caller kStranger{1003, 3000, {7}};

TEST(AccessCheckTest, OwnerIsJudgedByTheOwnerBits) {
  EXPECT_TRUE(may_access(kTheOwner, S_IFREG | 0600, kOwner, kGroup, kMayRead | kMayWrite));
  EXPECT_FALSE(may_access(kTheOwner, S_IFREG | 0400, kOwner, kGroup, kMayWrite));
  // The owner bits alone count for the owner, even where group and other would allow.
  EXPECT_FALSE(may_access(kTheOwner, S_IFREG | 0077, kOwner, kGroup, kMayRead));
}

TEST(AccessCheckTest, GroupMembersAreJudgedByTheGroupBits) {
  EXPECT_TRUE(may_access(kGroupMember, S_IFREG | 0640, kOwner, kGroup, kMayRead));
  EXPECT_FALSE(may_access(kGroupMember, S_IFREG | 0640, kOwner, kGroup, kMayWrite));
  EXPECT_TRUE(may_access(kSupplementaryMember, S_IFREG | 0660, kOwner, kGroup, kMayWrite));
  // A member denied by the group bits is denied even where other would allow.
  EXPECT_FALSE(may_access(kGroupMember, S_IFREG | 0606, kOwner, kGroup, kMayRead));
}

TEST(AccessCheckTest, OthersAreJudgedByTheOtherBits) {
  EXPECT_TRUE(may_access(kStranger, S_IFREG | 0644, kOwner, kGroup, kMayRead));
  EXPECT_FALSE(may_access(kStranger, S_IFREG | 0644, kOwner, kGroup, kMayWrite));
  EXPECT_FALSE(may_access(kStranger, S_IFREG | 0660, kOwner, kGroup, kMayRead));
  EXPECT_FALSE(may_access(kStranger, S_IFDIR | 0754, kOwner, kGroup, kMayExec));
  EXPECT_TRUE(may_access(kStranger, S_IFDIR | 0755, kOwner, kGroup, kMayRead | kMayExec));
  // Every bit asked for must be granted.
  EXPECT_FALSE(may_access(kStranger, S_IFDIR | 0753, kOwner, kGroup, kMayWrite | kMayExec | kMayRead));
}

TEST(AccessCheckTest, RootReadsWritesAndSearchesEverythingButExecutesOnlyExecutables) {
  EXPECT_TRUE(may_access(kRoot, S_IFREG | 0000, kOwner, kGroup, kMayRead | kMayWrite));
  EXPECT_TRUE(may_access(kRoot, S_IFDIR | 0000, kOwner, kGroup, kMayRead | kMayWrite | kMayExec));
  EXPECT_FALSE(may_access(kRoot, S_IFREG | 0666, kOwner, kGroup, kMayExec));
  EXPECT_TRUE(may_access(kRoot, S_IFREG | 0001, kOwner, kGroup, kMayExec));
}

TEST(AccessCheckTest, SupplementaryGroupsComeFromProcStatusOfTheCaller) {
  const std::string status =
      "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nGroups:\t7 27 100 \n";
  EXPECT_EQ(groups_from_status(status, 1000, 100), (std::vector<uint32_t>{7, 27, 100}));
  // The filesystem ids (4th) are the ones FUSE reports.
  const std::string setfsuid = "Uid:\t0\t0\t0\t1000\nGid:\t0\t0\t0\t100\nGroups:\t5\n";
  EXPECT_EQ(groups_from_status(setfsuid, 1000, 100), (std::vector<uint32_t>{5}));
}

TEST(AccessCheckTest, AStatusOfAnotherProcessGivesNoGroups) {
  // The pid was reused by a process of someone else: its groups must not count for the caller.
  const std::string other = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t0 4 27\n";
  EXPECT_TRUE(groups_from_status(other, 1000, 100).empty());
  EXPECT_TRUE(groups_from_status("", 1000, 100).empty());
}

TEST(AccessCheckTest, CallerOfThisProcessReadsItsOwnGroups) {
  const Caller me = caller_of(getuid(), getgid(), getpid());
  std::vector<gid_t> mine(static_cast<size_t>(getgroups(0, nullptr)));
  mine.resize(static_cast<size_t>(getgroups(static_cast<int>(mine.size()), mine.data())));
  EXPECT_EQ(me.groups, std::vector<uint32_t>(mine.begin(), mine.end()));
  EXPECT_TRUE(caller_of(getuid(), getgid(), 0).groups.empty());
}

}  // namespace
}  // namespace vlunfs::fs
