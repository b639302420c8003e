// Specifications of the store/ layer: the file store (image files), the memory store, the region
// view and the fault-injecting wrapper that the crash tests rely on.

#include "store/write_behind.h"
#include "store_test_files.h"
#include "testing/fault_injecting_store.h"
#include "vlunfs/store.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vlunfs::store {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

using test_files::pattern;
using test_files::TempDir;

std::vector<std::byte> zeros(size_t length) { return std::vector<std::byte>(length); }

std::vector<std::byte> read_back(BlockStore& store, uint64_t offset, size_t length) {
  std::vector<std::byte> bytes(length, std::byte{0xee});
  EXPECT_FALSE(store.read(offset, bytes));
  return bytes;
}

using test_files::open_or_die;

uint64_t allocated_bytes(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

// ---- FileStore ----

TEST(FileStore, CreatesSparseImageOfRequestedSize) {
  TempDir dir;
  const std::string path = dir.file("lun.img");
  auto store = open_or_die(path, {.create_size = 64 * kMiB});
  ASSERT_TRUE(store);
  EXPECT_EQ(store->size_bytes(), 64 * kMiB);
  EXPECT_EQ(store->block_size(), 4096u);
  EXPECT_EQ(std::filesystem::file_size(path), 64 * kMiB);
  EXPECT_LT(allocated_bytes(path), 64 * kKiB);
  EXPECT_EQ(read_back(*store, 32 * kMiB, 4096), zeros(4096));
}

TEST(FileStore, ReopenedImageReturnsWhatWasWritten) {
  TempDir dir;
  const std::string path = dir.file("lun.img");
  const auto data = pattern(3 * 4096 + 100, 1);
  {
    auto store = open_or_die(path, {.create_size = 4 * kMiB});
    ASSERT_TRUE(store);
    ASSERT_FALSE(store->write(5 * 4096 + 17, data));
    ASSERT_FALSE(store->flush());
  }
  auto store = open_or_die(path, {});
  ASSERT_TRUE(store);
  EXPECT_EQ(store->size_bytes(), 4 * kMiB);
  EXPECT_EQ(read_back(*store, 5 * 4096 + 17, data.size()), data);
}

TEST(FileStore, ExistingImageKeepsItsSizeWhenCreateSizeDiffers) {
  TempDir dir;
  const std::string path = dir.file("lun.img");
  ASSERT_TRUE(open_or_die(path, {.create_size = 1 * kMiB}));
  auto store = open_or_die(path, {.create_size = 2 * kMiB});
  ASSERT_TRUE(store);
  EXPECT_EQ(store->size_bytes(), 1 * kMiB);
}

TEST(FileStore, LargeWriteRoundTrips) {
  TempDir dir;
  auto store = open_or_die(dir.file("lun.img"), {.create_size = 16 * kMiB});
  ASSERT_TRUE(store);
  const auto data = pattern(9 * kMiB, 2);
  ASSERT_FALSE(store->write(4096, data));
  EXPECT_EQ(read_back(*store, 4096, data.size()), data);
}

TEST(FileStore, DiscardedRangeReadsAsZerosAndGivesSpaceBack) {
  TempDir dir;
  const std::string path = dir.file("lun.img");
  auto store = open_or_die(path, {.create_size = 8 * kMiB});
  ASSERT_TRUE(store);
  ASSERT_FALSE(store->write(0, pattern(4 * kMiB, 3)));
  ASSERT_FALSE(store->flush());  // ext4 allocates at writeback; count blocks once they exist
  const uint64_t before = allocated_bytes(path);
  ASSERT_GE(before, 4 * kMiB);

  ASSERT_FALSE(store->discard(1 * kMiB, 2 * kMiB));
  EXPECT_EQ(read_back(*store, 1 * kMiB, 2 * kMiB), zeros(2 * kMiB));
  const auto written = pattern(4 * kMiB, 3);
  EXPECT_EQ(read_back(*store, 0, 1 * kMiB),
            std::vector(written.begin(), written.begin() + 1 * kMiB));
  EXPECT_EQ(read_back(*store, 3 * kMiB, 1 * kMiB),
            std::vector(written.begin() + 3 * kMiB, written.end()));
  EXPECT_LE(allocated_bytes(path), before - 2 * kMiB);
}

TEST(FileStore, DiscardOfPartialBlockZeroesOnlyThatRange) {
  TempDir dir;
  auto store = open_or_die(dir.file("lun.img"), {.create_size = 1 * kMiB});
  ASSERT_TRUE(store);
  auto expected = pattern(3 * 4096, 4);
  ASSERT_FALSE(store->write(0, expected));
  ASSERT_FALSE(store->discard(4096 + 100, 5000));
  std::fill(expected.begin() + 4096 + 100, expected.begin() + 4096 + 100 + 5000, std::byte{0});
  EXPECT_EQ(read_back(*store, 0, expected.size()), expected);
}

TEST(FileStore, ReadOnlyStoreReadsButRefusesWritesAndDiscardsWithEROFS) {
  TempDir dir;
  const std::string path = dir.file("lun.img");
  const auto data = pattern(4096, 5);
  {
    auto store = open_or_die(path, {.create_size = 1 * kMiB});
    ASSERT_TRUE(store);
    ASSERT_FALSE(store->write(0, data));
  }
  auto store = open_or_die(path, {.read_only = true});
  ASSERT_TRUE(store);
  EXPECT_EQ(read_back(*store, 0, 4096), data);
  EXPECT_EQ(store->write(0, pattern(4096, 6)), std::errc::read_only_file_system);
  EXPECT_EQ(store->discard(0, 4096), std::errc::read_only_file_system);
  EXPECT_FALSE(store->flush());
  EXPECT_EQ(read_back(*store, 0, 4096), data);
}

TEST(FileStore, ReadOnlyOpenNeverCreatesTheImage) {
  TempDir dir;
  const std::string path = dir.file("lun.img");
  auto store = open_file_store(path, {.create_size = 1 * kMiB, .read_only = true});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error(), std::errc::no_such_file_or_directory);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(FileStore, SecondExclusiveOpenerGetsEBUSYUntilTheFirstCloses) {
  TempDir dir;
  const std::string path = dir.file("lun.img");
  auto first = open_or_die(path, {.create_size = 1 * kMiB, .exclusive_lock = true});
  ASSERT_TRUE(first);
  // flock locks belong to the open file description, so a second open in this same process
  // conflicts exactly as another process would.
  auto second = open_file_store(path, {.exclusive_lock = true});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), std::errc::device_or_resource_busy);
  first.reset();
  EXPECT_TRUE(open_or_die(path, {.exclusive_lock = true}));
}

TEST(FileStore, OutOfRangeIoIsEINVAL) {
  TempDir dir;
  auto store = open_or_die(dir.file("lun.img"), {.create_size = 1 * kMiB});
  ASSERT_TRUE(store);
  std::vector<std::byte> buf(4096);
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(store->read(1 * kMiB - 4095, buf), std::errc::invalid_argument);
  EXPECT_EQ(store->write(1 * kMiB, buf), std::errc::invalid_argument);
  EXPECT_EQ(store->write(kMax - 10, buf), std::errc::invalid_argument);  // offset + len wraps
  EXPECT_EQ(store->discard(4096, kMax), std::errc::invalid_argument);
  EXPECT_EQ(store->discard(1 * kMiB - 4096, 8192), std::errc::invalid_argument);
  // The last block and an empty I/O at the very end are inside.
  EXPECT_FALSE(store->write(1 * kMiB - 4096, buf));
  EXPECT_FALSE(store->read(1 * kMiB, std::span<std::byte>()));
  EXPECT_FALSE(store->discard(1 * kMiB, 0));
}

TEST(FileStore, BlockSizeOtherThan512Or4096IsEINVAL) {
  TempDir dir;
  const std::string path = dir.file("lun.img");
  for (uint32_t block_size : {0u, 1024u, 8192u}) {
    auto store = open_file_store(path, {.block_size = block_size, .create_size = 1 * kMiB});
    ASSERT_FALSE(store);
    EXPECT_EQ(store.error(), std::errc::invalid_argument) << block_size;
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  auto store = open_or_die(path, {.block_size = 512, .create_size = 1 * kMiB});
  ASSERT_TRUE(store);
  EXPECT_EQ(store->block_size(), 512u);
}

TEST(FileStore, ImageSizeNotAMultipleOfBlockSizeIsEINVAL) {
  TempDir dir;
  const std::string path = dir.file("odd.img");
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 4096 + 512), 0);
  ::close(fd);
  auto store = open_file_store(path, {});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error(), std::errc::invalid_argument);
  EXPECT_TRUE(open_or_die(path, {.block_size = 512}));

  auto odd_create = open_file_store(dir.file("new.img"), {.create_size = 4097});
  ASSERT_FALSE(odd_create);
  EXPECT_EQ(odd_create.error(), std::errc::invalid_argument);
  EXPECT_FALSE(std::filesystem::exists(dir.file("new.img")));
}

TEST(FileStore, MissingImageWithoutCreateSizeIsENOENT) {
  TempDir dir;
  auto store = open_file_store(dir.file("missing.img"), {});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error(), std::errc::no_such_file_or_directory);
}

TEST(FileStore, DirectoryIsNotAStore) {
  TempDir dir;
  auto store = open_file_store(dir.file(""), {.read_only = true});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error(), std::errc::invalid_argument);
}

TEST(FileStore, IsBlockDeviceIsFalseForFilesCharacterDevicesAndMissingPaths) {
  TempDir dir;
  const std::string path = dir.file("lun.img");
  ASSERT_TRUE(open_or_die(path, {.create_size = 1 * kMiB}));
  EXPECT_FALSE(is_block_device(path));
  EXPECT_FALSE(is_block_device("/dev/null"));
  EXPECT_FALSE(is_block_device(dir.file("missing")));
}

// Dirty pages of [offset, offset+length) of the file at path, by cachestat(2) (Linux 6.5; the
// structures are spelled out here because Debian 12's kernel headers predate it). nullopt if the
// kernel lacks the call.
std::optional<uint64_t> dirty_pages(const std::string& path, uint64_t offset, uint64_t length) {
  struct {
    uint64_t off, len;
  } range{offset, length};
  struct {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
  } counts{};
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  long rc = ::syscall(451 /* __NR_cachestat on x86-64 and arm64 alike */, fd, &range, &counts, 0);
  ::close(fd);
  if (rc != 0) return std::nullopt;
  return counts.nr_dirty;
}

// Polls until [offset, offset+length) has no dirty page, for at most 10 s: a third of the
// kernel's 30 s dirty expiry, so the flusher threads do not clean it on their own first.
bool becomes_clean(const std::string& path, uint64_t offset, uint64_t length) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (dirty_pages(path, offset, length) == 0u) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Write-behind only means something where pages are written back; skips the tests elsewhere.
std::optional<std::string> why_no_writeback(const std::string& dir) {
  struct statfs fs;
  if (::statfs(dir.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC) return "the temp dir is tmpfs";
  if (!dirty_pages("/proc/self/exe", 0, 1)) return "no cachestat(2)";
  return std::nullopt;
}

TEST(FileStore, WriteBehindRangeSendsEachWindowOnceWhenAWriteCompletesIt) {
  const uint64_t w = 8 * kMiB;
  using R = std::pair<uint64_t, uint64_t>;
  // Inside a window, short of its end: nothing.
  EXPECT_EQ(write_behind_range(0, kMiB, w), R(0, 0));
  EXPECT_EQ(write_behind_range(w, w + 4 * kKiB, w), R(0, 0));
  EXPECT_EQ(write_behind_range(w - 8 * kKiB, w - 4 * kKiB, w), R(0, 0));
  // Ending exactly on an edge, or crossing it: the whole window, with what was written before.
  EXPECT_EQ(write_behind_range(w - 4 * kKiB, w, w), R(0, w));
  EXPECT_EQ(write_behind_range(6 * kMiB, 9 * kMiB, w), R(0, w));
  // A write over several windows sends all that it completes, from the window it began in.
  EXPECT_EQ(write_behind_range(2 * w, 5 * w, w), R(2 * w, 5 * w));
  EXPECT_EQ(write_behind_range(w + kMiB, 3 * w + kMiB, w), R(w, 3 * w));
  // Sequential 1 MiB writes send each window exactly once.
  uint64_t sent = 0;
  for (uint64_t off = 0; off < 4 * w; off += kMiB) {
    auto [from, to] = write_behind_range(off, off + kMiB, w);
    if (from == to) continue;
    EXPECT_EQ(from, sent);
    sent = to;
  }
  EXPECT_EQ(sent, 4 * w);
  // Off, or an empty write.
  EXPECT_EQ(write_behind_range(0, w, 0), R(0, 0));
  EXPECT_EQ(write_behind_range(w, w, w), R(0, 0));
}

TEST(FileStore, WriteBehindCleansEachCompletedWindowWithoutAFlush) {
  TempDir dir;
  if (auto why = why_no_writeback(dir.file(""))) GTEST_SKIP() << *why;
  const std::string path = dir.file("lun.img");
  auto store = open_or_die(path, {.create_size = 64 * kMiB, .write_behind = 8 * kMiB});
  ASSERT_TRUE(store);
  // 3 MiB writes from 0 to 9 MiB, then one of 24 MiB from 16 MiB. Without write-behind these
  // pages would stay dirty for the kernel's 30 s expiry (or until someone syncs).
  for (uint64_t off = 0; off < 9 * kMiB; off += 3 * kMiB) ASSERT_FALSE(store->write(off, pattern(3 * kMiB, 1)));
  ASSERT_FALSE(store->write(16 * kMiB, pattern(24 * kMiB, 2)));
  EXPECT_TRUE(becomes_clean(path, 0, 8 * kMiB));
  EXPECT_TRUE(becomes_clean(path, 16 * kMiB, 24 * kMiB));
  // The data is all there, and flush() still makes the rest durable.
  EXPECT_EQ(read_back(*store, 0, 9 * kMiB), [&] {
    std::vector<std::byte> all;
    for (int i = 0; i < 3; i++) {
      auto p = pattern(3 * kMiB, 1);
      all.insert(all.end(), p.begin(), p.end());
    }
    return all;
  }());
  EXPECT_EQ(read_back(*store, 16 * kMiB, 24 * kMiB), pattern(24 * kMiB, 2));
  EXPECT_FALSE(store->flush());
  EXPECT_EQ(dirty_pages(path, 0, 64 * kMiB), 0u);
}

// ---- MemoryStore ----

TEST(MemoryStore, UnwrittenRangesReadAsZeros) {
  auto store = make_memory_store(1024 * 1024 * kMiB);  // 1 TiB costs only its page table
  EXPECT_EQ(store->size_bytes(), 1024 * 1024 * kMiB);
  EXPECT_EQ(store->block_size(), 4096u);
  EXPECT_EQ(read_back(*store, 777 * kMiB, 8192), zeros(8192));
  ASSERT_FALSE(store->write(777 * kMiB + 4096, pattern(4096, 1)));
  EXPECT_EQ(read_back(*store, 777 * kMiB, 4096), zeros(4096));
}

TEST(MemoryStore, WritesRoundTripAcrossPageBoundaries) {
  auto store = make_memory_store(8 * kMiB, 512);
  EXPECT_EQ(store->block_size(), 512u);
  const auto data = pattern(2 * kMiB + 1000, 2);
  ASSERT_FALSE(store->write(kMiB - 300, data));
  EXPECT_EQ(read_back(*store, kMiB - 300, data.size()), data);
  EXPECT_EQ(read_back(*store, 0, kMiB - 300), zeros(kMiB - 300));
}

TEST(MemoryStore, SizeNeedNotBeAWholeNumberOfPages) {
  auto store = make_memory_store(kMiB + 4096);
  ASSERT_FALSE(store->write(kMiB, pattern(4096, 3)));
  EXPECT_EQ(read_back(*store, kMiB, 4096), pattern(4096, 3));
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(store->write(kMiB + 1, buf), std::errc::invalid_argument);
}

TEST(MemoryStore, OutOfRangeIoIsEINVAL) {
  auto store = make_memory_store(kMiB);
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(store->read(kMiB - 4095, buf), std::errc::invalid_argument);
  EXPECT_EQ(store->write(std::numeric_limits<uint64_t>::max() - 1, buf),
            std::errc::invalid_argument);
  EXPECT_EQ(store->discard(kMiB - 4096, 8192), std::errc::invalid_argument);
}

TEST(MemoryStore, ConcurrentWritersToDistinctBlocksAllLand) {
  constexpr int kThreads = 4;
  constexpr uint64_t kBlocks = 4096;  // 16 MiB: every page is raced for by all four writers
  auto store = make_memory_store(kBlocks * 4096);
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; t++) {
    writers.emplace_back([&, t] {
      for (uint64_t block = t; block < kBlocks; block += kThreads) {
        if (store->write(block * 4096, pattern(4096, static_cast<uint8_t>(block)))) failures++;
      }
    });
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(failures.load(), 0);
  for (uint64_t block = 0; block < kBlocks; block++) {
    ASSERT_EQ(read_back(*store, block * 4096, 4096), pattern(4096, static_cast<uint8_t>(block)))
        << "block " << block;
  }
}

TEST(MemoryStore, DiscardedRangeReadsAsZeros) {
  auto store = make_memory_store(4 * kMiB);
  auto expected = pattern(3 * kMiB, 4);
  ASSERT_FALSE(store->write(0, expected));
  ASSERT_FALSE(store->discard(kMiB / 2, 2 * kMiB));
  ASSERT_FALSE(store->discard(3 * kMiB, kMiB));  // never written: nothing to do
  std::fill(expected.begin() + kMiB / 2, expected.begin() + kMiB / 2 + 2 * kMiB, std::byte{0});
  EXPECT_EQ(read_back(*store, 0, expected.size()), expected);
  EXPECT_FALSE(store->flush());
}

// ---- RegionStore ----

TEST(RegionStore, MapsItsOffsetsIntoTheWindowOfTheBase) {
  auto base = make_memory_store(4 * kMiB, 512);
  auto region = make_region_store(*base, kMiB, 64 * kKiB);
  EXPECT_EQ(region->size_bytes(), 64 * kKiB);
  EXPECT_EQ(region->block_size(), 512u);
  const auto data = pattern(8192, 1);
  ASSERT_FALSE(region->write(4096, data));
  EXPECT_EQ(read_back(*base, kMiB + 4096, data.size()), data);
  EXPECT_EQ(read_back(*region, 4096, data.size()), data);
  ASSERT_FALSE(region->discard(4096, 4096));
  EXPECT_EQ(read_back(*base, kMiB + 4096, 4096), zeros(4096));
  EXPECT_FALSE(region->flush());
}

TEST(RegionStore, RefusesIoOutsideTheWindowWithEINVAL) {
  auto base = make_memory_store(4 * kMiB);
  auto region = make_region_store(*base, kMiB, 64 * kKiB);
  std::vector<std::byte> buf(4096, std::byte{0x55});
  EXPECT_EQ(region->write(64 * kKiB - 2048, buf), std::errc::invalid_argument);
  EXPECT_EQ(region->write(std::numeric_limits<uint64_t>::max(), buf), std::errc::invalid_argument);
  EXPECT_EQ(region->read(64 * kKiB, buf), std::errc::invalid_argument);
  EXPECT_EQ(region->discard(0, 64 * kKiB + 1), std::errc::invalid_argument);
  // Nothing leaked into the neighbouring bytes of the base.
  EXPECT_EQ(read_back(*base, kMiB + 64 * kKiB, 4096), zeros(4096));
  EXPECT_FALSE(region->write(64 * kKiB - 4096, buf));
}

// ---- FaultInjectingStore ----

class FaultInjectingStoreTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kBlocks = 256;
  FaultInjectingStoreTest() : base_(make_memory_store(kBlocks * 4096)), store_(*base_) {
    // Everything starts as a flushed "old" generation.
    EXPECT_FALSE(base_->write(0, old_));
  }

  std::vector<std::byte> old_block(uint64_t block) const {
    return {old_.begin() + block * 4096, old_.begin() + (block + 1) * 4096};
  }
  std::vector<std::byte> new_block(uint64_t block) const {
    return {new_.begin() + block * 4096, new_.begin() + (block + 1) * 4096};
  }

  const std::vector<std::byte> old_ = pattern(kBlocks * 4096, 1);
  const std::vector<std::byte> new_ = pattern(kBlocks * 4096, 2);
  std::unique_ptr<BlockStore> base_;
  FaultInjectingStore store_;
};

TEST_F(FaultInjectingStoreTest, LosePowerUndoesUnflushedWrites) {
  ASSERT_FALSE(store_.write(10 * 4096 + 100, std::span(new_).subspan(0, 3 * 4096)));
  EXPECT_EQ(store_.unflushed_blocks(), 4u);  // an unaligned 3-block write touches 4 blocks
  ASSERT_FALSE(store_.lose_power());
  EXPECT_EQ(store_.unflushed_blocks(), 0u);
  EXPECT_EQ(read_back(store_, 0, old_.size()), old_);
}

TEST_F(FaultInjectingStoreTest, LosePowerRestoresDiscardedBlocks) {
  ASSERT_FALSE(store_.discard(4 * 4096, 8 * 4096));
  EXPECT_EQ(read_back(store_, 4 * 4096, 8 * 4096), zeros(8 * 4096));
  ASSERT_FALSE(store_.lose_power());
  EXPECT_EQ(read_back(store_, 0, old_.size()), old_);
}

TEST_F(FaultInjectingStoreTest, FlushedWritesSurviveLosePower) {
  ASSERT_FALSE(store_.write(0, std::span(new_).subspan(0, 4 * 4096)));
  ASSERT_FALSE(store_.flush());
  EXPECT_EQ(store_.unflushed_blocks(), 0u);
  ASSERT_FALSE(store_.write(4 * 4096, std::span(new_).subspan(4 * 4096, 4 * 4096)));
  ASSERT_FALSE(store_.lose_power());
  EXPECT_EQ(read_back(store_, 0, 4 * 4096), std::vector(new_.begin(), new_.begin() + 4 * 4096));
  EXPECT_EQ(read_back(store_, 4 * 4096, 4 * 4096),
            std::vector(old_.begin() + 4 * 4096, old_.begin() + 8 * 4096));
}

TEST_F(FaultInjectingStoreTest, RewrittenBlockIsUndoneToItsContentsAtTheLastFlush) {
  ASSERT_FALSE(store_.write(0, new_block(5)));
  ASSERT_FALSE(store_.write(0, new_block(6)));
  EXPECT_EQ(store_.unflushed_blocks(), 1u);
  ASSERT_FALSE(store_.lose_power());
  EXPECT_EQ(read_back(store_, 0, 4096), old_block(0));
}

TEST_F(FaultInjectingStoreTest, KeepProbabilityOneKeepsEverything) {
  ASSERT_FALSE(store_.write(0, new_));
  ASSERT_FALSE(store_.lose_power(1.0));
  EXPECT_EQ(store_.unflushed_blocks(), 0u);
  EXPECT_EQ(read_back(store_, 0, new_.size()), new_);
}

TEST_F(FaultInjectingStoreTest, TornLossKeepsSomeBlocksWholeAndUndoesOthersWhole) {
  // Writes that straddle blocks, so that a block-atomic loss is distinguishable from a byte-range one.
  ASSERT_FALSE(store_.write(0, std::span(new_).subspan(0, 4096 + 1000)));
  ASSERT_FALSE(store_.write(4096 + 1000, std::span(new_).subspan(4096 + 1000)));
  ASSERT_EQ(store_.unflushed_blocks(), kBlocks);
  ASSERT_FALSE(store_.lose_power(0.5, 42));

  std::vector<bool> kept(kBlocks);
  uint64_t kept_count = 0;
  for (uint64_t block = 0; block < kBlocks; block++) {
    auto contents = read_back(store_, block * 4096, 4096);
    kept[block] = contents == new_block(block);
    ASSERT_TRUE(kept[block] || contents == old_block(block)) << "block " << block << " is torn";
    kept_count += kept[block];
  }
  EXPECT_GT(kept_count, kBlocks / 4);
  EXPECT_LT(kept_count, kBlocks * 3 / 4);

  // The same seed tears the same blocks.
  auto other_base = make_memory_store(kBlocks * 4096);
  ASSERT_FALSE(other_base->write(0, old_));
  FaultInjectingStore other(*other_base);
  ASSERT_FALSE(other.write(0, new_));
  ASSERT_FALSE(other.lose_power(0.5, 42));
  for (uint64_t block = 0; block < kBlocks; block++) {
    EXPECT_EQ(read_back(other, block * 4096, 4096) == new_block(block), kept[block]) << block;
  }
}

TEST_F(FaultInjectingStoreTest, FailNthFailsExactlyTheChosenIoOnce) {
  store_.fail_nth(IoKind::write, 2);
  EXPECT_FALSE(store_.write(0 * 4096, new_block(0)));
  EXPECT_FALSE(store_.write(1 * 4096, new_block(1)));
  EXPECT_FALSE(store_.read(0, std::span<std::byte>()));  // other kinds do not count
  EXPECT_EQ(store_.write(2 * 4096, new_block(2)), std::errc::io_error);
  EXPECT_FALSE(store_.write(3 * 4096, new_block(3)));
  EXPECT_FALSE(store_.write(4 * 4096, new_block(4)));
  EXPECT_EQ(read_back(store_, 2 * 4096, 4096), old_block(2));  // the failed write did nothing
  EXPECT_EQ(read_back(store_, 3 * 4096, 4096), new_block(3));
  EXPECT_EQ(store_.unflushed_blocks(), 4u);
  EXPECT_EQ(store_.io_count(IoKind::write), 5u);  // failed calls count too

  store_.fail_nth(IoKind::flush, 0);
  EXPECT_EQ(store_.flush(), std::errc::io_error);
  EXPECT_EQ(store_.unflushed_blocks(), 4u);  // a failed flush made nothing durable
  EXPECT_FALSE(store_.flush());
  EXPECT_EQ(store_.unflushed_blocks(), 0u);
}

TEST_F(FaultInjectingStoreTest, FailurePredicateFailsOnlyTheMatchingOffsets) {
  store_.set_failure([](IoKind kind, uint64_t offset, uint64_t) {
    return kind == IoKind::write && offset >= 8 * 4096 && offset < 16 * 4096;
  });
  EXPECT_FALSE(store_.write(7 * 4096, new_block(7)));
  EXPECT_EQ(store_.write(8 * 4096, new_block(8)), std::errc::io_error);
  EXPECT_EQ(store_.write(15 * 4096, new_block(15)), std::errc::io_error);
  EXPECT_FALSE(store_.write(16 * 4096, new_block(16)));
  EXPECT_EQ(read_back(store_, 8 * 4096, 4096), old_block(8));  // reads are not matched
  EXPECT_EQ(store_.unflushed_blocks(), 2u);

  store_.clear_failures();
  EXPECT_FALSE(store_.write(8 * 4096, new_block(8)));
}

TEST_F(FaultInjectingStoreTest, FreezeDropsWritesDiscardsAndFlushes) {
  ASSERT_FALSE(store_.write(0, new_block(0)));
  store_.freeze();
  EXPECT_FALSE(store_.write(1 * 4096, new_block(1)));
  EXPECT_FALSE(store_.discard(2 * 4096, 4096));
  EXPECT_FALSE(store_.flush());
  EXPECT_EQ(read_back(store_, 4096, 2 * 4096),
            std::vector(old_.begin() + 4096, old_.begin() + 3 * 4096));
  EXPECT_EQ(store_.unflushed_blocks(), 1u);  // the dropped flush did not make block 0 durable
  ASSERT_FALSE(store_.lose_power());
  EXPECT_EQ(read_back(store_, 0, 4096), old_block(0));

  store_.thaw();
  ASSERT_FALSE(store_.write(1 * 4096, new_block(1)));
  EXPECT_EQ(read_back(store_, 4096, 4096), new_block(1));
}

TEST_F(FaultInjectingStoreTest, IoCountCountsEveryCallPerKind) {
  std::vector<std::byte> buf(4096);
  ASSERT_FALSE(store_.read(0, buf));
  ASSERT_FALSE(store_.read(4096, buf));
  ASSERT_FALSE(store_.write(0, buf));
  ASSERT_FALSE(store_.discard(0, 4096));
  ASSERT_FALSE(store_.flush());
  EXPECT_EQ(store_.write(kBlocks * 4096, buf), std::errc::invalid_argument);
  EXPECT_EQ(store_.io_count(IoKind::read), 2u);
  EXPECT_EQ(store_.io_count(IoKind::write), 2u);
  EXPECT_EQ(store_.io_count(IoKind::discard), 1u);
  EXPECT_EQ(store_.io_count(IoKind::flush), 1u);
}

TEST_F(FaultInjectingStoreTest, ConcurrentUnflushedWritesAreAllUndone) {
  constexpr int kThreads = 4;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; t++) {
    writers.emplace_back([&, t] {
      for (uint64_t block = t; block < kBlocks; block += kThreads) {
        EXPECT_FALSE(store_.write(block * 4096, new_block(block)));
      }
    });
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(read_back(store_, 0, new_.size()), new_);
  EXPECT_EQ(store_.unflushed_blocks(), kBlocks);
  ASSERT_FALSE(store_.lose_power());
  EXPECT_EQ(read_back(store_, 0, old_.size()), old_);
}

}  // namespace
}  // namespace vlunfs::store
