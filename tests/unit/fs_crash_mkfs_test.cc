// A crash during mkfs, at every I/O of format() and in each of the three ways (kill, power loss,
// torn power loss), on a blank device and over an existing file system (mkfs --force): the device
// is then either mountable (an empty new file system, or the old one whole; fsck may find a
// superblock copy missing, which --repair writes) or refused with a message; fsck agrees, never
// crashes, and a second mkfs always succeeds.
#include "client/simulated_afu.h"
#include "fs/filesystem.h"
#include "fs/log.h"
#include "testing/fault_injecting_store.h"
#include "tools/fsck.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace vlunfs::fs {
namespace {

constexpr uint64_t kDeviceBytes = 32ull << 20;

enum class Cut { kill, power_loss, torn };

meta::FormatOptions options() {
  meta::FormatOptions fo;
  fo.chunk_shift = 4;
  fo.journal_bytes = 64 << 10;
  fo.checkpoint_bytes = 256 << 10;
  return fo;
}

// An existing file system with one file, "old", 100 bytes of 0x77.
void make_old_file_system(store::BlockStore& device) {
  ASSERT_TRUE(meta::format(device, options()));
  std::string why;
  auto fs = Filesystem::open_store(std::make_unique<store::FaultInjectingStore>(device), {}, &why).value();
  ASSERT_FALSE(fs->start(client::simulated_afu(), &why));
  auto a = fs->create(meta::ROOT_INO, "old", S_IFREG | 0644, {}).value();
  auto h = fs->open_file(a.st.st_ino, true).value();
  ASSERT_TRUE(fs->write(h, 0, std::vector<std::byte>(100, std::byte{0x77})));
  fs->release_file(h);
  fs->shutdown();
}

// Formats with a crash before mutating I/O `crash_at` (0: none); returns format's mutating I/Os.
uint64_t format_with_crash(bool over_old, uint64_t crash_at, Cut cut, uint64_t seed) {
  auto memory = store::make_memory_store(kDeviceBytes);
  if (over_old) make_old_file_system(*memory);
  uint64_t count = 0;
  {
    store::FaultInjectingStore fault(*memory);
    fault.set_failure([&](store::IoKind kind, uint64_t, uint64_t) {
      if (kind != store::IoKind::read && ++count == crash_at) fault.freeze();
      return false;
    });
    auto g = meta::format(fault, options());
    EXPECT_TRUE(g) << g.error().message;  // a frozen device accepts (and drops) every write
    fault.clear_failures();
    if (crash_at == 0 || crash_at > count) return count;
    if (cut != Cut::kill) {
      EXPECT_FALSE(fault.lose_power(cut == Cut::torn ? 0.5 : 0.0, seed));
    }
  }
  SCOPED_TRACE(std::string(over_old ? "mkfs over a file system" : "mkfs of a blank device") + ", crash before I/O " +
               std::to_string(crash_at) + ", cut " + std::to_string(static_cast<int>(cut)) + ", seed " +
               std::to_string(seed));

  auto opened = meta::MetaStore::open(*memory, {.read_only = true});
  fsck::Report report = fsck::check_device(*memory, "memory", {});
  std::string why;
  if (!opened) {
    EXPECT_FALSE(opened.error().message.empty()) << "a refusal must say why";
    EXPECT_NE(report.exit_code, fsck::EXIT_CLEAN);
    EXPECT_FALSE(report.errors().empty());
  } else {
    // Either the new, empty file system or the old one whole; nothing in between.
    const meta::Namespace& ns = opened.value()->ns();
    const meta::Inode* root = ns.find(meta::ROOT_INO);
    EXPECT_NE(root, nullptr);
    if (!root) return count;
    const bool empty = root->entries.empty() && ns.inodes.size() == 1;
    const bool old = over_old && root->entries.count("old") == 1;
    EXPECT_TRUE(empty || old) << ns.inodes.size() << " inodes";
    if (report.exit_code != fsck::EXIT_CLEAN) {
      // Mountable but degraded (a superblock copy not yet written, or the old one's erased):
      // fsck says so, and --repair makes it whole.
      EXPECT_EQ(report.exit_code, fsck::EXIT_ERRORS_LEFT);
      EXPECT_FALSE(report.errors().empty());
      opened.value().reset();
      fsck::Options repair;
      repair.repair = true;
      fsck::Report fixed = fsck::check_device(*memory, "memory", repair);
      EXPECT_EQ(fixed.exit_code, fsck::EXIT_FIXED) << (fixed.errors().empty() ? "" : fixed.errors().front());
      EXPECT_EQ(fsck::check_device(*memory, "memory", {}).exit_code, fsck::EXIT_CLEAN);
    }
    opened.value().reset();
    auto fs = Filesystem::open_store(std::make_unique<store::FaultInjectingStore>(*memory), {}, &why);
    EXPECT_TRUE(fs) << why;
    if (fs) {
      EXPECT_FALSE(fs.value()->start(client::simulated_afu(), &why)) << why;
      if (old) {
        auto a = fs.value()->lookup(meta::ROOT_INO, "old");
        EXPECT_TRUE(a);
        if (a) {
          auto h = fs.value()->open_file(a.value().st.st_ino).value();
          std::vector<std::byte> back(100);
          EXPECT_TRUE(fs.value()->read(h, 0, back));
          EXPECT_EQ(back, std::vector<std::byte>(100, std::byte{0x77}));
          fs.value()->release_file(h);
        }
      }
    }
  }
  // Whatever the crash left, mkfs again works.
  EXPECT_TRUE(meta::format(*memory, options()));
  EXPECT_EQ(fsck::check_device(*memory, "memory", {}).exit_code, fsck::EXIT_CLEAN);
  return count;
}

void crash_at_every_io(bool over_old) {
  log_open("vlunfs-unit", false);
  const uint64_t ios = format_with_crash(over_old, 0, Cut::kill, 0);
  ASSERT_GT(ios, 4u);
  for (uint64_t at = 1; at <= ios; at++) {
    format_with_crash(over_old, at, Cut::kill, 0);
    format_with_crash(over_old, at, Cut::power_loss, 0);
    for (uint64_t seed = 1; seed <= 4; seed++) format_with_crash(over_old, at, Cut::torn, seed);
  }
  std::printf("[crash] mkfs %s: %llu I/Os, each a crash point 6 ways: %llu crash points, all checks passed\n",
              over_old ? "over a file system" : "of a blank device", static_cast<unsigned long long>(ios),
              static_cast<unsigned long long>(6 * ios));
}

TEST(CrashMkfs, CrashAtEveryIoOfFormatOnABlankDevice) { crash_at_every_io(false); }

TEST(CrashMkfs, CrashAtEveryIoOfFormatOverAnExistingFileSystem) { crash_at_every_io(true); }

}  // namespace
}  // namespace vlunfs::fs
