// The daemon's permission check for control requests: the kernel's generic_permission() rules.
#include "fs/access_check.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vlunfs::fs {
namespace {

constexpr uint32_t kOwner = 1000, kGroup = 100;
const Caller kRoot{0, 0, {}, true, true};
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

TEST(AccessCheckTest, RootWithoutItsCapabilitiesIsJudgedByTheBits) {
  const Caller no_caps{0, 0, {}, false, false};
  EXPECT_FALSE(may_access(no_caps, S_IFREG | 0644, kOwner, kGroup, kMayWrite));
  EXPECT_TRUE(may_access(no_caps, S_IFREG | 0644, kOwner, kGroup, kMayRead));
  EXPECT_TRUE(may_access(no_caps, S_IFREG | 0600, 0, 0, kMayWrite));  // its own file
  const Caller read_search{0, 0, {}, false, true};
  EXPECT_TRUE(may_access(read_search, S_IFREG | 0000, kOwner, kGroup, kMayRead));
  EXPECT_FALSE(may_access(read_search, S_IFREG | 0000, kOwner, kGroup, kMayRead | kMayWrite));
  EXPECT_TRUE(may_access(read_search, S_IFDIR | 0000, kOwner, kGroup, kMayRead | kMayExec));
  EXPECT_FALSE(may_access(read_search, S_IFDIR | 0555, kOwner, kGroup, kMayWrite | kMayExec));
}

TEST(AccessCheckTest, GroupsAndCapabilitiesComeFromProcStatusOfTheCaller) {
  Caller user{1000, 100, {}};
  ASSERT_TRUE(read_status("Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n"
                          "Groups:\t7 27 100 \nCapEff:\t000001ffffffffff\n",
                          &user));
  EXPECT_EQ(user.groups, (std::vector<uint32_t>{7, 27, 100}));
  // Capabilities of a user other than root are in a user namespace of its own: they do not count.
  EXPECT_FALSE(user.dac_override || user.dac_read_search);
  // The filesystem ids (4th) are the ones FUSE reports.
  Caller setfsuid{1000, 100, {}};
  ASSERT_TRUE(read_status("Uid:\t0\t0\t0\t1000\nGid:\t0\t0\t0\t100\nGroups:\t5\n", &setfsuid));
  EXPECT_EQ(setfsuid.groups, (std::vector<uint32_t>{5}));
  Caller root{0, 0, {}, true, true};
  ASSERT_TRUE(read_status("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nCapEff:\t0000000000000004\n", &root));
  EXPECT_FALSE(root.dac_override);  // dropped: bit 1
  EXPECT_TRUE(root.dac_read_search);
}

TEST(AccessCheckTest, AStatusOfAnotherProcessChangesNothing) {
  // The pid was reused by a process of someone else: its groups must not count for the caller.
  Caller user{1000, 100, {}};
  EXPECT_FALSE(read_status("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t0 4 27\nCapEff:\tffff\n", &user));
  EXPECT_TRUE(user.groups.empty());
  EXPECT_FALSE(user.dac_override);
  EXPECT_FALSE(read_status("", &user));
}

TEST(AccessCheckTest, CallerOfThisProcessReadsItsOwnGroups) {
  const Caller me = caller_of(getuid(), getgid(), getpid());
  std::vector<gid_t> mine(static_cast<size_t>(getgroups(0, nullptr)));
  mine.resize(static_cast<size_t>(getgroups(static_cast<int>(mine.size()), mine.data())));
  EXPECT_EQ(me.groups, std::vector<uint32_t>(mine.begin(), mine.end()));
  // Without a pid to ask, uid 0 is the classic superuser and nobody else has extra groups.
  const Caller unknown_root = caller_of(0, 0, 0);
  EXPECT_TRUE(unknown_root.dac_override && unknown_root.dac_read_search);
  EXPECT_TRUE(caller_of(1000, 100, 0).groups.empty());
}

}  // namespace
}  // namespace vlunfs::fs
