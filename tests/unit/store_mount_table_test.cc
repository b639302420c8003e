// Specifications of the mount table reader and of opening an image that a daemon is releasing
// (mount_table.h, image_release.h): what mount, fsck and vlunctl info rely on.

#include "store_test_files.h"
#include "vlunfs/image_release.h"
#include "vlunfs/mount_table.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace vlunfs::store {
namespace {

// Named for this file's tests, so a directory left behind says who left it.
class TempDir : public test_files::TempDir {
 public:
  TempDir() : test_files::TempDir("/tmp/vlunfs-mount-table-test") {}
};

std::vector<MountEntry> parse(const std::string& text) {
  std::istringstream in(text);
  return parse_mount_table(in);
}

std::string image_of(const TempDir& dir, const std::string& name) {
  std::string path = dir.file(name);
  std::ofstream(path) << std::string(4096, '\0');
  return path;
}

TEST(MountTable, ReadsTypeSourceAndMountpointPastTheOptionalFields) {
  auto table = parse(
      "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n"
      "45 27 0:40 / /tmp/a\\040b fuse.vlunfs rw,relatime - fuse.vlunfs /srv/flash\\040one.img rw,user_id=0\n");
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table[0].device_number, "98:0");
  EXPECT_EQ(table[0].mountpoint, "/mnt2");
  EXPECT_EQ(table[0].type, "ext3");
  EXPECT_EQ(table[0].source, "/dev/root");
  EXPECT_EQ(table[1].mountpoint, "/tmp/a b");  // \040 is a space
  EXPECT_EQ(table[1].type, kVlunfsMountType);
  EXPECT_EQ(table[1].source, "/srv/flash one.img");
}

TEST(MountTable, SkipsLinesThatDoNotParse) {
  auto table = parse("garbage\n1 2 3 4\n36 35 98:0 / /ok rw - ext4 /dev/sda1 rw\n36 35 98:0 / /no rw no-separator\n");
  ASSERT_EQ(table.size(), 1u);
  EXPECT_EQ(table[0].mountpoint, "/ok");
}

TEST(MountTable, TheNewestMountOnADirectoryIsItsLastEntry) {
  auto table = parse(
      "40 1 0:40 / /mnt rw - fuse.vlunfs /a.img rw\n"
      "41 40 0:41 / /mnt rw - ext4 /dev/loop0 rw\n"
      "42 1 0:42 / /other rw - tmpfs tmpfs rw\n");
  auto newest = newest_mount_at(table, "/mnt");
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->type, "ext4");
  EXPECT_FALSE(newest_mount_at(table, "/mnt/sub").has_value());
}

TEST(MountTable, FindsTheVlunfsMountOfAnImageByAnyOfItsNames) {
  TempDir dir;
  const std::string image = image_of(dir, "flash.img");
  const std::string other = image_of(dir, "other.img");
  std::filesystem::create_symlink(image, dir.file("alias.img"));
  auto table = parse("40 1 0:40 / /mnt/a rw - fuse.vlunfs " + other + " rw\n" +
                     "41 1 0:41 / /mnt/b rw - fuse.vlunfs " + image + " rw\n");
  auto mount = vlunfs_mount_of(table, dir.file("alias.img"));
  ASSERT_TRUE(mount.has_value());
  EXPECT_EQ(mount->mountpoint, "/mnt/b");
}

TEST(MountTable, OnlyAbsoluteSourcesOfVlunfsMountsCount) {
  TempDir dir;
  const std::string image = image_of(dir, "flash.img");
  // Another filesystem type with that source, and a relative name (said nothing about where it was).
  auto table = parse("40 1 0:40 / /mnt/a rw - fuse.other " + image + " rw\n" +
                     "41 1 0:41 / /mnt/b rw - fuse.vlunfs flash.img rw\n");
  ASSERT_EQ(::chdir(dir.file("").c_str()), 0);
  EXPECT_FALSE(vlunfs_mount_of(table, image).has_value());
  ASSERT_EQ(::chdir("/"), 0);
}

// The image's lock held by another open file of this process (as mkfs or fsck would hold it).
class HeldLock {
 public:
  explicit HeldLock(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0 || ::flock(fd_, LOCK_EX | LOCK_NB) != 0) std::abort();
  }
  ~HeldLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_;
};

// A process named vlunfs that holds the image's lock for `hold`, as a daemon that is releasing it
// after an unmount (or never lets go, for a long hold).
class DaemonHolding {
 public:
  DaemonHolding(const std::string& path, std::chrono::milliseconds hold) {
    int ready[2];
    if (::pipe(ready) != 0) std::abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_NAME, "vlunfs");
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) ::_exit(1);
      (void)!::write(ready[1], "x", 1);
      ::usleep(static_cast<useconds_t>(hold.count() * 1000));
      ::_exit(0);
    }
    char c;
    ::close(ready[1]);
    if (::read(ready[0], &c, 1) != 1) std::abort();
    ::close(ready[0]);
  }
  ~DaemonHolding() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_;
};

FileStoreOptions small_blocks() {
  FileStoreOptions options;
  options.block_size = 512;
  return options;
}

TEST(ImageRelease, AnOpenRightAfterAnUnmountWaitsForTheDaemonToLetGo) {
  TempDir dir;
  const std::string image = image_of(dir, "flash.img");
  DaemonHolding daemon(image, std::chrono::milliseconds(150));
  int waits = 0;
  ReleaseWait wait;
  wait.on_wait = [&] { ++waits; };
  auto opened = open_file_store_after_release(image, small_blocks(), wait);
  ASSERT_TRUE(opened) << opened.error().message();
  EXPECT_EQ(waits, 1);  // said once that it waits, however many tries it took
}

TEST(ImageRelease, ADaemonThatDoesNotLetGoIsBusyAfterTheLimit) {
  TempDir dir;
  const std::string image = image_of(dir, "flash.img");
  DaemonHolding daemon(image, std::chrono::seconds(30));
  ReleaseWait wait;
  wait.limit = std::chrono::milliseconds(200);
  const auto start = std::chrono::steady_clock::now();
  auto opened = open_file_store_after_release(image, small_blocks(), wait);
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().value(), EBUSY);
  EXPECT_GE(waited, std::chrono::milliseconds(200));
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST(ImageRelease, AnImageHeldByAnotherProgramIsBusyAtOnce) {
  TempDir dir;
  const std::string image = image_of(dir, "flash.img");
  HeldLock mkfs(image);
  int waits = 0;
  ReleaseWait wait;
  wait.on_wait = [&] { ++waits; };
  const auto start = std::chrono::steady_clock::now();
  auto opened = open_file_store_after_release(image, small_blocks(), wait);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().value(), EBUSY);
  EXPECT_EQ(waits, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(ImageRelease, AFreeImageOpensWithoutWaitingAndIsLocked) {
  TempDir dir;
  const std::string image = image_of(dir, "flash.img");
  int waits = 0;
  ReleaseWait wait;
  wait.on_wait = [&] { ++waits; };
  auto opened = open_file_store_after_release(image, small_blocks(), wait);
  ASSERT_TRUE(opened);
  EXPECT_EQ(waits, 0);
  int fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0);  // the store holds the image's lock
  ::close(fd);
}

}  // namespace
}  // namespace vlunfs::store
