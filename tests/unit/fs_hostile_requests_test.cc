// Bad requests and a failing device, on the Filesystem class (what the FUSE layer cannot reach:
// names with '/', calls on a read-only file system below the kernel's own check, I/O errors on one
// file's chunks, a failing journal, metadata that outgrows its slot, a record larger than the
// journal). Each gets a clear error, changes nothing, and the file system goes on serving.
#include "client/simulated_afu.h"
#include "fs/filesystem.h"
#include "fs/log.h"
#include "testing/fault_injecting_store.h"
#include "tools/fsck.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <gtest/gtest.h>

#include <random>

namespace vlunfs::fs {
namespace {

constexpr unsigned kChunkShift = 4;
constexpr uint64_t kChunk = 4096ull << kChunkShift;

using Bytes = std::vector<std::byte>;

// The errno of a failed call; 0 if it succeeded (so that a success fails the comparison cleanly).
template <typename R>
int err(const R& r) {
  return r ? 0 : r.error().value();
}

Bytes pattern(size_t n, unsigned seed) {
  Bytes v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

class Hostile : public ::testing::Test {
 protected:
  void format(uint64_t device = 64ull << 20, uint64_t journal = 256 << 10, uint64_t checkpoint = 256 << 10) {
    mem_ = store::make_memory_store(device);
    meta::FormatOptions fo;
    fo.chunk_shift = kChunkShift;
    fo.journal_bytes = journal;
    fo.checkpoint_bytes = checkpoint;
    auto g = meta::format(*mem_, fo);
    ASSERT_TRUE(g);
    geometry_ = g.value();
  }
  void SetUp() override {
    log_open("vlunfs-unit", false);
    format();
  }
  std::unique_ptr<Filesystem> mount(bool read_only = false) {
    auto wrapper = std::make_unique<store::FaultInjectingStore>(*mem_);
    fault_ = wrapper.get();
    std::string why;
    MountOptions mo;
    mo.read_only = read_only;
    auto fs = Filesystem::open_store(std::move(wrapper), mo, &why);
    EXPECT_TRUE(fs) << why;
    if (!fs) return nullptr;
    EXPECT_FALSE(fs.value()->start(client::simulated_afu(), &why)) << why;
    return std::move(fs).value();
  }
  // A file with `data`, fsynced; returns its inode.
  uint64_t make_file(Filesystem& fs, const std::string& name, const Bytes& data) {
    auto a = fs.create(meta::ROOT_INO, name, S_IFREG | 0644, {});
    EXPECT_TRUE(a);
    auto h = fs.open_file(a.value().st.st_ino, true).value();
    EXPECT_TRUE(fs.write(h, 0, data));
    EXPECT_FALSE(fs.fsync(h, false));
    fs.release_file(h);
    return a.value().st.st_ino;
  }
  Bytes contents(Filesystem& fs, uint64_t ino) {
    auto attr = fs.getattr(ino);
    EXPECT_TRUE(attr);
    Bytes out(static_cast<size_t>(attr.value().st.st_size));
    auto h = fs.open_file(ino).value();
    auto n = fs.read(h, 0, out);
    EXPECT_TRUE(n);
    fs.release_file(h);
    return out;
  }
  void expect_fsck_clean() {
    fsck::Report r = fsck::check_device(*mem_, "memory", {});
    EXPECT_EQ(r.exit_code, fsck::EXIT_CLEAN) << (r.errors().empty() ? "" : r.errors().front());
  }
  // The chunk (physical, device bytes) range of file `ino`'s first chunk.
  std::pair<uint64_t, uint64_t> first_chunk_bytes(Filesystem& fs, uint64_t ino) {
    for (const VlunReport& r : fs.report()) {
      if (r.ino == ino) return {geometry_.data_offset + r.chunks.at(0) * kChunk, kChunk};
    }
    ADD_FAILURE() << "inode " << ino << " not in the report";
    return {0, 0};
  }

  std::unique_ptr<store::BlockStore> mem_;
  store::FaultInjectingStore* fault_ = nullptr;
  meta::Geometry geometry_;
};

TEST_F(Hostile, NamesWithSlashDotsOrTooLongAreRefusedEverywhere) {
  auto fs = mount();
  const uint64_t ino = make_file(*fs, "f", pattern(100, 1));
  const std::string long_name(256, 'x');
  for (const std::string& bad : {std::string("a/b"), std::string("/"), std::string(""), long_name}) {
    const int want = bad.size() > 255 ? ENAMETOOLONG : EINVAL;
    SCOPED_TRACE("name '" + bad.substr(0, 10) + "'");
    EXPECT_EQ(err(fs->create(meta::ROOT_INO, bad, S_IFREG | 0644, {})), want);
    EXPECT_EQ(err(fs->mkdir(meta::ROOT_INO, bad, 0755, {})), want);
    EXPECT_EQ(err(fs->symlink(meta::ROOT_INO, bad, "f", {})), want);
    EXPECT_EQ(err(fs->link(ino, meta::ROOT_INO, bad)), want);
    EXPECT_EQ(fs->rename(meta::ROOT_INO, "f", meta::ROOT_INO, bad, 0).value(), want);
  }
  for (const std::string& dot : {std::string("."), std::string("..")}) {
    EXPECT_FALSE(fs->create(meta::ROOT_INO, dot, S_IFREG | 0644, {}));
    EXPECT_FALSE(fs->mkdir(meta::ROOT_INO, dot, 0755, {}));
    EXPECT_TRUE(fs->rename(meta::ROOT_INO, "f", meta::ROOT_INO, dot, 0));
  }
  EXPECT_EQ(err(fs->symlink(meta::ROOT_INO, "s", std::string(4096, 't'), {})), ENAMETOOLONG);
  auto entries = fs->readdir(meta::ROOT_INO).value();
  EXPECT_EQ(entries.size(), 3u) << "only ., .. and f";
  EXPECT_EQ(contents(*fs, ino), pattern(100, 1));
  fs->shutdown();
  expect_fsck_clean();
}

TEST_F(Hostile, SizesAndOffsetsOutOfRangeChangeNothing) {
  auto fs = mount();
  const Bytes data = pattern(3 * kChunk + 5, 2);
  const uint64_t ino = make_file(*fs, "f", data);
  make_file(*fs, "other", pattern(10 * kChunk, 4));  // so that a size within the pool is short
  const uint64_t free0 = fs->pool_stats().free_chunks;
  const uint64_t total = fs->pool_stats().total_chunks;
  auto h = fs->open_file(ino, true).value();
  struct stat st {};
  for (uint64_t size : {uint64_t{1} << 62, (uint64_t{1} << 62) + 1, uint64_t{INT64_MAX}}) {
    st.st_size = static_cast<off_t>(size);
    EXPECT_EQ(err(fs->setattr(ino, st, AttrChanges{.size = true}, h)), EFBIG) << size;
  }
  st.st_size = static_cast<off_t>((total - 1) * kChunk);
  EXPECT_EQ(err(fs->setattr(ino, st, AttrChanges{.size = true}, h)), ENOSPC);
  st.st_size = static_cast<off_t>((total + 100) * kChunk);  // more than the pool: never possible
  EXPECT_EQ(err(fs->setattr(ino, st, AttrChanges{.size = true}, h)), EFBIG);
  st.st_size = -1;
  EXPECT_FALSE(fs->setattr(ino, st, AttrChanges{.size = true}, h));
  const Bytes one = pattern(10, 3);
  for (uint64_t off : {uint64_t{1} << 62, (uint64_t{1} << 62) - 5, uint64_t{INT64_MAX} - 3, UINT64_MAX - 3}) {
    EXPECT_EQ(err(fs->write(h, off, one)), EFBIG) << off;
  }
  EXPECT_EQ(err(fs->write(h, (total - 1) * kChunk, one)), ENOSPC);
  EXPECT_EQ(err(fs->write(h, (total + 100) * kChunk, one)), EFBIG);
  for (uint64_t off : {uint64_t{1} << 62, UINT64_MAX - 100}) {
    EXPECT_EQ(fs->fallocate(h, 0, off, 4096), errno_error(EFBIG)) << off;
    EXPECT_EQ(fs->fallocate(h, FALLOC_FL_KEEP_SIZE, off, 4096), errno_error(EFBIG)) << off;
    EXPECT_EQ(fs->fallocate(h, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, 4096), errno_error(EFBIG)) << off;
  }
  EXPECT_EQ(fs->fallocate(h, 0, 100, UINT64_MAX - 50), errno_error(EFBIG));
  EXPECT_EQ(fs->fallocate(h, 0, 0, 0), errno_error(EINVAL));
  EXPECT_EQ(fs->fallocate(h, 0, 0, (total - 1) * kChunk), errno_error(ENOSPC));
  EXPECT_EQ(fs->fallocate(h, 0, 0, (total + 100) * kChunk), errno_error(EFBIG));
  Bytes buf(16);
  EXPECT_EQ(fs->read(h, UINT64_MAX - 4, buf).value(), 0u) << "reads past the end return nothing";
  EXPECT_EQ(err(fs->lseek(h, UINT64_MAX - 4, SEEK_DATA)), ENXIO);
  fs->release_file(h);
  EXPECT_EQ(contents(*fs, ino), data);
  EXPECT_EQ(fs->pool_stats().free_chunks, free0);
  fs->shutdown();
  expect_fsck_clean();
}

TEST_F(Hostile, FullFlashDuringAWriteReachesTheWriterAndSparesTheOthers) {
  auto fs = mount();
  const Bytes keep = pattern(2 * kChunk, 4);
  const uint64_t kept = make_file(*fs, "keep", keep);
  auto a = fs->create(meta::ROOT_INO, "big", S_IFREG | 0644, {});
  auto h = fs->open_file(a.value().st.st_ino, true).value();
  const Bytes block = pattern(kChunk / 2, 5);
  uint64_t off = 0;
  std::error_code last;
  for (;;) {
    auto n = fs->write(h, off, block);
    if (!n) {
      last = n.error();
      break;
    }
    off += n.value();
  }
  EXPECT_EQ(last, errno_error(ENOSPC));
  EXPECT_EQ(fs->pool_stats().free_chunks, 0u);
  EXPECT_EQ(static_cast<uint64_t>(fs->getattr(a.value().st.st_ino).value().st.st_size), off)
      << "the failed write changed the size";
  EXPECT_FALSE(fs->fsync(h, false));
  fs->release_file(h);
  EXPECT_EQ(contents(*fs, kept), keep);
  EXPECT_FALSE(fs->unlink(meta::ROOT_INO, "big"));
  EXPECT_GT(fs->pool_stats().free_chunks, 0u);
  fs->shutdown();
  expect_fsck_clean();
}

TEST_F(Hostile, ReadOnlyFileSystemRefusesEveryChangeWithErofs) {
  uint64_t ino, dir;
  const Bytes data = pattern(kChunk + 3, 6);
  {
    auto fs = mount();
    ino = make_file(*fs, "f", data);
    dir = fs->mkdir(meta::ROOT_INO, "d", 0755, {}).value().st.st_ino;
    fs->shutdown();
  }
  auto fs = mount(/*read_only=*/true);
  auto erofs = [](const auto& r) { return !r && r.error() == errno_error(EROFS); };
  EXPECT_TRUE(erofs(fs->create(meta::ROOT_INO, "n", S_IFREG | 0644, {})));
  EXPECT_TRUE(erofs(fs->mkdir(meta::ROOT_INO, "n", 0755, {})));
  EXPECT_TRUE(erofs(fs->symlink(meta::ROOT_INO, "n", "f", {})));
  EXPECT_TRUE(erofs(fs->link(ino, meta::ROOT_INO, "n")));
  EXPECT_EQ(fs->unlink(meta::ROOT_INO, "f"), errno_error(EROFS));
  EXPECT_EQ(fs->rmdir(meta::ROOT_INO, "d"), errno_error(EROFS));
  EXPECT_EQ(fs->rename(meta::ROOT_INO, "f", dir, "g", 0), errno_error(EROFS));
  struct stat st {};
  st.st_mode = 0600;
  EXPECT_TRUE(erofs(fs->setattr(ino, st, AttrChanges{.mode = true}, nullptr)));
  st.st_size = 10;
  EXPECT_TRUE(erofs(fs->setattr(ino, st, AttrChanges{.size = true}, nullptr)));
  auto h = fs->open_file(ino).value();
  EXPECT_TRUE(erofs(fs->write(h, 0, pattern(10, 7))));
  EXPECT_EQ(fs->fallocate(h, 0, 0, 4 * kChunk), errno_error(EROFS));
  EXPECT_EQ(fs->fallocate(h, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096), errno_error(EROFS));
  EXPECT_FALSE(fs->fsync(h, false)) << "fsync on a read-only file system has nothing to do";
  fs->release_file(h);
  EXPECT_EQ(contents(*fs, ino), data);
  EXPECT_EQ(fs->statfs().f_flag & ST_RDONLY, ST_RDONLY);
  fs->shutdown();
  expect_fsck_clean();
}

TEST_F(Hostile, IoErrorsOnOneFileReachItsCallersAndTheOthersAreServed) {
  auto fs = mount();
  const Bytes a_data = pattern(2 * kChunk, 8), b_data = pattern(2 * kChunk, 9);
  const uint64_t a = make_file(*fs, "a", a_data);
  const uint64_t b = make_file(*fs, "b", b_data);
  auto [bad_off, bad_len] = first_chunk_bytes(*fs, a);
  // The flash fails every read and write of a's first chunk, as a worn-out die would.
  fault_->set_failure([bad_off = bad_off, bad_len = bad_len](store::IoKind kind, uint64_t off, uint64_t len) {
    return (kind == store::IoKind::read || kind == store::IoKind::write) && off < bad_off + bad_len &&
           bad_off < off + len;
  });
  auto ha = fs->open_file(a, true).value();
  Bytes buf(4096);
  EXPECT_EQ(err(fs->read(ha, 0, buf)), EIO);
  EXPECT_EQ(err(fs->write(ha, 100, pattern(10, 10))), EIO);
  EXPECT_TRUE(fs->read(ha, kChunk, buf)) << "a's second chunk is fine";
  fs->release_file(ha);
  EXPECT_EQ(contents(*fs, b), b_data) << "the other file is served";
  EXPECT_TRUE(fs->mkdir(meta::ROOT_INO, "still-working", 0755, {}));
  const uint64_t c = make_file(*fs, "c", pattern(kChunk, 11));
  EXPECT_EQ(contents(*fs, c), pattern(kChunk, 11));
  fault_->clear_failures();
  EXPECT_EQ(contents(*fs, a), a_data) << "a failed write of a whole block changed nothing";
  fs->shutdown();
  expect_fsck_clean();
}

TEST_F(Hostile, JournalWriteFailureRefusesChangesButKeepsServingReads) {
  auto fs = mount();
  const Bytes data = pattern(kChunk + 1, 12);
  const uint64_t ino = make_file(*fs, "f", data);
  const uint64_t j0 = geometry_.journal_offset, j1 = j0 + geometry_.journal_bytes;
  fault_->set_failure([j0, j1](store::IoKind kind, uint64_t off, uint64_t) {
    return kind == store::IoKind::write && off >= j0 && off < j1;
  });
  auto r = fs->mkdir(meta::ROOT_INO, "d", 0755, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errno_error(EIO));
  fault_->clear_failures();
  // The in-memory namespace may be ahead of the disk: every later change is refused...
  EXPECT_FALSE(fs->create(meta::ROOT_INO, "g", S_IFREG | 0644, {}));
  // ...while reads go on.
  EXPECT_EQ(contents(*fs, ino), data);
  fs.reset();
  // What reached the disk is consistent, and the next mount works.
  expect_fsck_clean();
  fs = mount();
  EXPECT_EQ(contents(*fs, fs->lookup(meta::ROOT_INO, "f").value().st.st_ino), data);
  EXPECT_TRUE(fs->create(meta::ROOT_INO, "g", S_IFREG | 0644, {}));
}

// Creates files until the namespace outgrows an 8 KiB checkpoint slot (the journal fills, its
// checkpoint cannot be written): ENOSPC, and nothing that was acknowledged is lost.
std::vector<std::string> fill_metadata(Filesystem& fs, std::error_code* last) {
  std::vector<std::string> made;
  for (int i = 0; i < 1000; i++) {
    std::string name = "file-with-a-rather-long-name-" + std::to_string(i);
    auto a = fs.create(meta::ROOT_INO, name, S_IFREG | 0644, {});
    if (!a) {
      *last = a.error();
      break;
    }
    made.push_back(name);
  }
  return made;
}

TEST_F(Hostile, MetadataLargerThanACheckpointSlotIsEnospcAndNothingIsLost) {
  format(64ull << 20, /*journal=*/8192, /*checkpoint=*/8192);
  auto fs = mount();
  std::error_code last;
  std::vector<std::string> made = fill_metadata(*fs, &last);
  EXPECT_EQ(last, errno_error(ENOSPC)) << "the namespace must outgrow an 8 KiB slot";
  ASSERT_FALSE(made.empty());
  EXPECT_TRUE(fs->lookup(meta::ROOT_INO, made.back()));
  fs.reset();  // the unmount's checkpoint still fits the slot
  expect_fsck_clean();
  fs = mount();
  for (const std::string& name : made) ASSERT_TRUE(fs->lookup(meta::ROOT_INO, name)) << name;
}

// The metadata is full, and so is the journal: removals must still go through (MetaStore keeps the
// namespace within a checkpoint slot, so a full journal can always be folded into one).
TEST_F(Hostile, RemovalsStillWorkWhenTheMetadataIsFull) {
  format(64ull << 20, /*journal=*/8192, /*checkpoint=*/8192);
  auto fs = mount();
  std::error_code last;
  std::vector<std::string> made = fill_metadata(*fs, &last);
  ASSERT_EQ(last, errno_error(ENOSPC));
  // A grow whose LXT entries would not fit the slot is refused too, and gives its chunks back.
  {
    const uint64_t ino = fs->lookup(meta::ROOT_INO, made.front()).value().st.st_ino;
    const uint64_t free_before = fs->pool_stats().free_chunks;
    auto f = fs->open_file(ino, true).value();
    struct stat st {};
    st.st_size = static_cast<off_t>(400 * kChunk);
    EXPECT_EQ(fs->setattr(ino, st, AttrChanges{.size = true}, f).error(), errno_error(ENOSPC));
    fs->release_file(f);
    EXPECT_EQ(fs->getattr(ino).value().st.st_size, 0);
    EXPECT_EQ(fs->pool_stats().free_chunks, free_before);
  }
  // Attribute changes fill the journal without growing the namespace.
  for (int i = 0; i < 300; i++) {
    struct stat st {};
    st.st_mode = (i % 2 == 0) ? 0600 : 0644;
    ASSERT_TRUE(fs->setattr(meta::ROOT_INO, st, AttrChanges{.mode = true}, nullptr)) << i;
  }
  const size_t removed = made.size() / 3;
  for (size_t i = 0; i < removed; i++) ASSERT_FALSE(fs->unlink(meta::ROOT_INO, made[i])) << made[i];
  EXPECT_TRUE(fs->create(meta::ROOT_INO, "after-removals", S_IFREG | 0644, {}));
  fs.reset();
  expect_fsck_clean();
  fs = mount();
  for (size_t i = 0; i < made.size(); i++) EXPECT_EQ(static_cast<bool>(fs->lookup(meta::ROOT_INO, made[i])), i >= removed) << made[i];
  EXPECT_TRUE(fs->lookup(meta::ROOT_INO, "after-removals"));
}

TEST_F(Hostile, ResizeRecordLargerThanTheJournalGoesIntoACheckpoint) {
  // 2400 chunks: a Resize record of about 19 KiB, more than the whole 8 KiB journal.
  format(/*device=*/(2500 * kChunk) + (4 << 20), /*journal=*/8192, /*checkpoint=*/64 << 10);
  uint64_t ino;
  {
    auto fs = mount();
    ino = make_file(*fs, "f", pattern(100, 13));
    struct stat st {};
    st.st_size = static_cast<off_t>(2400 * kChunk);
    ASSERT_TRUE(fs->setattr(ino, st, AttrChanges{.size = true}, nullptr));
    fault_->freeze();  // killed: no unmount checkpoint
  }
  expect_fsck_clean();
  auto fs = mount();
  EXPECT_EQ(static_cast<uint64_t>(fs->getattr(ino).value().st.st_size), 2400 * kChunk);
  Bytes head(100);
  auto h = fs->open_file(ino).value();
  ASSERT_TRUE(fs->read(h, 0, head));
  EXPECT_EQ(head, pattern(100, 13));
  fs->release_file(h);
}

}  // namespace
}  // namespace vlunfs::fs
