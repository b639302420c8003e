// Specifications of the file store with O_DIRECT (FileStoreOptions::direct, vlunfs -o
// image_direct): any offset, length and buffer round-trips, the image's page cache stays empty,
// and a filesystem that refuses O_DIRECT is refused with EOPNOTSUPP.

#include "store/direct_io.h"
#include "store_test_files.h"
#include "vlunfs/store.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace vlunfs::store {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

using test_files::open_or_die;
using test_files::pattern;

// Under /var/tmp: a disk filesystem on most machines, where /tmp may be tmpfs.
class TempDir : public test_files::TempDir {
 public:
  TempDir() : test_files::TempDir("/var/tmp/vlunfs-direct-test") {}
};

// Pages of the file in the page cache (mincore of a shared mapping), as fincore(1) counts them.
size_t cached_pages(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  struct stat st;
  EXPECT_EQ(::fstat(fd, &st), 0);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t length = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  EXPECT_NE(map, MAP_FAILED);
  std::vector<unsigned char> resident((length + page - 1) / page);
  EXPECT_EQ(::mincore(map, length, resident.data()), 0);
  ::munmap(map, length);
  size_t n = 0;
  for (unsigned char r : resident) n += r & 1;
  return n;
}

bool on_tmpfs(const std::string& path) {
  struct statfs fs;
  return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

// A buffer whose data starts `misalign` bytes past a page boundary, as a FUSE write's data does
// (80 bytes into the request buffer).
struct MisalignedBuffer {
  MisalignedBuffer(const std::vector<std::byte>& contents, size_t misalign)
      : storage(contents.size() + misalign + 4096), data(storage.data() + (4096 - reinterpret_cast<uintptr_t>(storage.data()) % 4096) % 4096 + misalign) {
    std::memcpy(data, contents.data(), contents.size());
  }
  std::vector<std::byte> storage;
  std::byte* data;
};

TEST(DirectFileStore, AlignedWritesRoundTripAndLeaveTheImagePageCacheEmpty) {
  TempDir dir;
  if (on_tmpfs(dir.path())) GTEST_SKIP() << "/var/tmp is tmpfs: its pages are its storage";
  const std::string path = dir.file("lun.img");
  auto store = open_or_die(path, {.create_size = 8 * kMiB, .direct = true});
  ASSERT_NE(store, nullptr);
  const auto data = pattern(4 * kMiB, 3);
  MisalignedBuffer aligned(data, 0);
  ASSERT_FALSE(store->write(kMiB, {aligned.data, data.size()}));
  std::vector<std::byte> back(data.size());
  ASSERT_FALSE(store->read(kMiB, back));
  EXPECT_EQ(back, data);
  ASSERT_FALSE(store->flush());
  EXPECT_LE(cached_pages(path), 4u) << "O_DIRECT I/O must not fill the image's page cache";

  // The same I/O without O_DIRECT caches what it wrote: the assertion above means something.
  const std::string buffered_path = dir.file("buffered.img");
  auto buffered = open_or_die(buffered_path, {.create_size = 8 * kMiB});
  ASSERT_NE(buffered, nullptr);
  ASSERT_FALSE(buffered->write(kMiB, data));
  EXPECT_GE(cached_pages(buffered_path), data.size() / 4096 / 2);
}

TEST(DirectFileStore, UnalignedOffsetsLengthsAndBuffersRoundTripAndReachTheImage) {
  TempDir dir;
  const std::string path = dir.file("lun.img");
  auto store = open_or_die(path, {.create_size = 8 * kMiB, .direct = true});
  ASSERT_NE(store, nullptr);
  std::vector<std::byte> model = pattern(8 * kMiB, 1);
  ASSERT_FALSE(store->write(0, model));

  // Inside one block, across a block edge, a whole block from a misaligned buffer, and more than
  // one bounce buffer's worth starting and ending inside blocks.
  struct Case {
    uint64_t offset;
    size_t length;
    size_t misalign;
  };
  const Case cases[] = {{1000, 7, 0}, {4000, 5000, 16}, {8192, 4096, 80}, {333, 3 * kMiB + 100, 80},
                        {8 * kMiB - 10, 10, 1}, {0, 1, 3}};
  uint8_t seed = 10;
  for (const Case& c : cases) {
    const auto bytes = pattern(c.length, seed++);
    MisalignedBuffer buffer(bytes, c.misalign);
    ASSERT_FALSE(store->write(c.offset, {buffer.data, c.length})) << "write at " << c.offset;
    std::memcpy(model.data() + c.offset, bytes.data(), c.length);
  }
  // Each written range read back with a byte of its neighbours on either side, into a buffer
  // misaligned another way.
  for (const Case& c : cases) {
    const uint64_t from = c.offset == 0 ? 0 : c.offset - 1;
    const uint64_t to = std::min<uint64_t>(c.offset + c.length + 1, 8 * kMiB);
    MisalignedBuffer out(std::vector<std::byte>(to - from), c.misalign + 1);
    ASSERT_FALSE(store->read(from, {out.data, to - from}));
    EXPECT_EQ(std::memcmp(out.data, model.data() + from, to - from), 0) << "read at " << from;
  }
  ASSERT_FALSE(store->flush());
  store.reset();

  // What the image holds, read without O_DIRECT.
  auto buffered = open_or_die(path, {.read_only = true});
  ASSERT_NE(buffered, nullptr);
  std::vector<std::byte> image(8 * kMiB);
  ASSERT_FALSE(buffered->read(0, image));
  EXPECT_TRUE(image == model);
}

TEST(DirectFileStore, ConcurrentPartialBlockWritesToTheSameBlocksAllLand) {
  TempDir dir;
  auto store = open_or_die(dir.file("lun.img"), {.create_size = 1 * kMiB, .direct = true});
  ASSERT_NE(store, nullptr);
  // Four threads, each writing its own 100-byte slots inside the same sixteen blocks: a
  // read-modify-write that let another write in between would undo that write's slot.
  constexpr int kThreads = 4;
  constexpr int kSlotsPerBlock = 40;  // 40 slots of 100 bytes per 4 KiB block
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; round++) {
        for (uint64_t block = 0; block < 16; block++) {
          for (int slot = t; slot < kSlotsPerBlock; slot += kThreads) {
            std::vector<std::byte> bytes(100, static_cast<std::byte>(1 + t + round));
            ASSERT_FALSE(store->write(block * 4096 + slot * 100, bytes));
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<std::byte> back(16 * 4096);
  ASSERT_FALSE(store->read(0, back));
  for (uint64_t block = 0; block < 16; block++) {
    for (int slot = 0; slot < kSlotsPerBlock; slot++) {
      const auto want = static_cast<std::byte>(1 + slot % kThreads + 19);
      for (int i = 0; i < 100; i++) {
        ASSERT_EQ(back[block * 4096 + slot * 100 + i], want) << "block " << block << " slot " << slot;
      }
    }
  }
}

TEST(DirectFileStore, DiscardOfAPartialRangeZeroesOnlyThatRange) {
  TempDir dir;
  auto store = open_or_die(dir.file("lun.img"), {.create_size = 1 * kMiB, .direct = true});
  ASSERT_NE(store, nullptr);
  const auto data = pattern(64 * kKiB, 5);
  ASSERT_FALSE(store->write(0, data));
  ASSERT_FALSE(store->discard(1000, 9000));
  std::vector<std::byte> back(data.size());
  ASSERT_FALSE(store->read(0, back));
  for (size_t i = 0; i < back.size(); i++) {
    ASSERT_EQ(back[i], i >= 1000 && i < 10000 ? std::byte{0} : data[i]) << "byte " << i;
  }
}

TEST(DirectFileStore, AlignmentComesFromTheKernelOrFallsBackTo4096) {
  TempDir dir;
  const std::string path = dir.file("lun.img");
  auto store = open_or_die(path, {.create_size = 1 * kMiB});
  ASSERT_NE(store, nullptr);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const DirectIoAlignment a = direct_io_alignment(fd, false, 512);
  ::close(fd);
  for (uint32_t v : {a.offset, a.memory}) {
    EXPECT_TRUE(v >= 1 && v <= 4096 && (v & (v - 1)) == 0) << v;
  }
}

TEST(DirectFileStore, AFilesystemWithoutDirectIoIsRefusedWithEOPNOTSUPP) {
  // ramfs has no direct I/O at all (tmpfs accepts O_DIRECT since Linux 6.6 and serves it from its
  // own pages); mounting one needs root.
  TempDir dir;
  const std::string mnt = dir.file("ramfs");
  std::filesystem::create_directory(mnt);
  if (::mount("vlunfs-test", mnt.c_str(), "ramfs", 0, nullptr) != 0) {
    GTEST_SKIP() << "cannot mount ramfs here (" << std::strerror(errno) << "): needs root";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const std::string path = mnt + "/lun.img";
  auto made = open_or_die(path, {.create_size = 1 * kMiB});
  ASSERT_NE(made, nullptr);
  made.reset();
  auto direct = open_file_store(path, {.direct = true});
  ASSERT_FALSE(direct);
  EXPECT_EQ(direct.error().value(), EOPNOTSUPP);
  // Without the option the same image opens as before.
  EXPECT_NE(open_or_die(path, {}), nullptr);
}

}  // namespace
}  // namespace vlunfs::store
