// fdatasync after writes inside the file's size journals nothing and flushes the data; fsync and
// an fdatasync after a write that moved the size journal it. Both stay durable across a power cut.
#include "fs_rig.h"
#include "testing/fault_injecting_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace vlunfs::fs {
namespace {

using test_rig::formatted_memory_device;
using test_rig::mount_on_simulator;
using test_rig::pattern;

constexpr uint64_t kDeviceBytes = 64ull << 20;
constexpr unsigned kChunkShift = 4;
constexpr size_t kFileBytes = 256 << 10;

int64_t mtime_ns(const Attr& a) { return int64_t{a.st.st_mtim.tv_sec} * 1'000'000'000 + a.st.st_mtim.tv_nsec; }

struct Rig {
  std::unique_ptr<store::BlockStore> memory = formatted_memory_device(kDeviceBytes, kChunkShift);
  store::FaultInjectingStore fault{*memory};
  std::unique_ptr<Filesystem> fs = mount_on_simulator(fault);
  uint64_t ino = 0;
  FileVlun* file = nullptr;

  // A file of kFileBytes, written and fsynced.
  void make_file() {
    auto a = fs->create(meta::ROOT_INO, "f", S_IFREG | 0644, {});
    ASSERT_TRUE(a);
    ino = a.value().st.st_ino;
    file = fs->open_file(ino, true).value();
    ASSERT_TRUE(fs->write(file, 0, pattern(kFileBytes, 1)));
    ASSERT_FALSE(fs->fsync(file, false));
  }
  uint64_t writes() const { return fault.io_count(store::IoKind::write); }
  uint64_t flushes() const { return fault.io_count(store::IoKind::flush); }

  // The power goes: nothing after this reaches the device, and what was not flushed is undone.
  std::unique_ptr<Filesystem> power_cut_and_remount() {
    fault.freeze();
    EXPECT_FALSE(fault.lose_power());
    fs.reset();
    fault.thaw();
    return mount_on_simulator(*memory);
  }
};

std::vector<std::byte> read_all(Filesystem& fs, uint64_t ino) {
  auto a = fs.getattr(ino).value();
  auto h = fs.open_file(ino).value();
  std::vector<std::byte> out(static_cast<size_t>(a.st.st_size));
  EXPECT_EQ(fs.read(h, 0, out).value(), out.size());
  fs.release_file(h);
  return out;
}

TEST(DurableWrites, FdatasyncInsideTheSizeJournalsNothingWhereFsyncJournalsTheMtime) {
  Rig rig;
  ASSERT_NO_FATAL_FAILURE(rig.make_file());
  const auto block = pattern(4096, 2);

  uint64_t w = rig.writes(), f = rig.flushes();
  ASSERT_TRUE(rig.fs->write(rig.file, 8192, block));
  ASSERT_FALSE(rig.fs->fsync(rig.file, true));
  const uint64_t datasync_writes = rig.writes() - w;
  EXPECT_EQ(rig.flushes() - f, 1u) << "fdatasync flushes the device once";

  w = rig.writes(), f = rig.flushes();
  ASSERT_TRUE(rig.fs->write(rig.file, 8192, block));
  ASSERT_FALSE(rig.fs->fsync(rig.file, false));
  EXPECT_EQ(rig.writes() - w, datasync_writes + 1) << "fsync writes the journal record that fdatasync skips";
  EXPECT_EQ(rig.flushes() - f, 1u) << "the journal's flush makes the data durable too";
}

TEST(DurableWrites, FdatasyncedBytesSurviveAPowerCutAndTheMtimeIsTheLastJournaledOne) {
  Rig rig;
  ASSERT_NO_FATAL_FAILURE(rig.make_file());
  const int64_t journaled_mtime = mtime_ns(rig.fs->getattr(rig.ino).value());
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  auto expect = pattern(kFileBytes, 1);
  const auto block = pattern(4096, 3);
  std::copy(block.begin(), block.end(), expect.begin() + 12288);
  ASSERT_TRUE(rig.fs->write(rig.file, 12288, block));
  ASSERT_FALSE(rig.fs->fsync(rig.file, true));

  auto again = rig.power_cut_and_remount();
  ASSERT_TRUE(again);
  EXPECT_EQ(read_all(*again, rig.ino), expect) << "fdatasync made the overwrite durable";
  EXPECT_EQ(mtime_ns(again->getattr(rig.ino).value()), journaled_mtime)
      << "fdatasync journaled no record (POSIX lets it leave the mtime to the next fsync)";
}

TEST(DurableWrites, FdatasyncAfterAWriteThatMovedTheSizeJournalsTheSize) {
  Rig rig;
  ASSERT_NO_FATAL_FAILURE(rig.make_file());
  auto expect = pattern(kFileBytes, 1);
  const auto tail = pattern(1000, 4);
  expect.insert(expect.end(), tail.begin(), tail.end());
  ASSERT_TRUE(rig.fs->write(rig.file, kFileBytes, tail));  // inside the last chunk, past the size
  ASSERT_FALSE(rig.fs->fsync(rig.file, true));

  auto again = rig.power_cut_and_remount();
  ASSERT_TRUE(again);
  EXPECT_EQ(read_all(*again, rig.ino), expect) << "the size the write made is durable";
}

TEST(DurableWrites, FdatasyncWaitsForASizeRecordAnotherCloseLeftUnflushed) {
  Rig rig;
  ASSERT_NO_FATAL_FAILURE(rig.make_file());
  // A second handle extends the file and closes: the close journals the size without waiting.
  auto other = rig.fs->open_file(rig.ino, true).value();
  const auto tail = pattern(500, 5);
  ASSERT_TRUE(rig.fs->write(other, kFileBytes, tail));
  rig.fs->release_file(other);
  ASSERT_FALSE(rig.fs->fsync(rig.file, true));

  auto again = rig.power_cut_and_remount();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->getattr(rig.ino).value().st.st_size, static_cast<off_t>(kFileBytes + tail.size()));
}

TEST(DurableWrites, FdatasyncAfterACloseWhoseSizeAnotherFsyncFlushedStillFlushesTheNewData) {
  // The crash workload found this one: the close's size record was durable already, so waiting
  // for it flushed nothing, and the overwrite after it was left unflushed.
  Rig rig;
  ASSERT_NO_FATAL_FAILURE(rig.make_file());
  auto expect = pattern(kFileBytes, 1);
  const auto tail = pattern(700, 6);
  expect.insert(expect.end(), tail.begin(), tail.end());
  ASSERT_TRUE(rig.fs->write(rig.file, kFileBytes, tail));
  rig.fs->release_file(rig.file);  // journals the new size without waiting
  auto g = rig.fs->create(meta::ROOT_INO, "g", S_IFREG | 0644, {});  // flushes the journal
  ASSERT_TRUE(g);
  rig.file = rig.fs->open_file(rig.ino, true).value();
  const auto block = pattern(4096, 7);
  std::copy(block.begin(), block.end(), expect.begin() + 4096);
  ASSERT_TRUE(rig.fs->write(rig.file, 4096, block));
  ASSERT_FALSE(rig.fs->fsync(rig.file, true));

  auto again = rig.power_cut_and_remount();
  ASSERT_TRUE(again);
  EXPECT_EQ(read_all(*again, rig.ino), expect);
}

}  // namespace
}  // namespace vlunfs::fs
