// Hostile metadata, in CI: a few thousand deterministic mutations (bit flips, random bytes, zeroed
// ranges, copied blocks, truncated devices) of a populated image's metadata region, half of them
// with their checksums recomputed so that the damage reaches the decoders, each put through
// inspection, MetaStore::open, fsck (check and repair) and a mount that reads every file.
// Nothing may crash, hang or read out of bounds (ASan/UBSan builds run this too); every refusal
// says why. The libFuzzer target (tests/fuzz/meta_open_fuzzer.cc) does the same without limits.
//
// VLUNFS_HOSTILE_MUTATIONS sets the count (default 3000; 600 under sanitizers).
#include "fs/log.h"
#include "fuzz/metadata_image.h"
#include "test_iterations.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

namespace vlunfs::hostile {
namespace {

int mutations() { return testing_support::iterations_from_env("VLUNFS_HOSTILE_MUTATIONS", 3000, 600); }

const Bytes& base() {
  static const Bytes region = populated_metadata();
  return region;
}

TEST(HostileMetadata, TheUndamagedImageOpensAndMounts) {
  Verdict v = exercise(base());
  EXPECT_TRUE(v.opened) << v.refusal;
  EXPECT_TRUE(v.mounted) << v.mount_refusal;
}

// The image the mutations start from is healthy, thin vLUN longer than the data area, its clone
// and its snapshot included: fsck finds nothing wrong, and the thin vLUN's LXT really is longer
// than the data area.
TEST(HostileMetadata, TheUndamagedImageChecksClean) {
  auto memory = store::make_memory_store(kDeviceBytes);
  ASSERT_FALSE(memory->write(0, base()));
  fsck::Report r = fsck::check_device(*memory, "memory", {});
  std::string all;
  for (const auto& e : r.errors()) all += "error: " + e + "\n";
  for (const auto& e : r.notes()) all += "note: " + e + "\n";
  EXPECT_EQ(r.exit_code, fsck::EXIT_CLEAN) << all;
  auto m = meta::MetaStore::open(*memory, {.read_only = true});
  ASSERT_TRUE(m);
  const meta::Namespace& ns = m.value()->ns();
  size_t thin = 0;
  for (const auto& [ino, inode] : ns.inodes) {
    if (inode.flags & meta::INODE_FLAG_THIN) {
      thin++;
      EXPECT_EQ(inode.lxt.size(), 48u) << "inode " << ino;
    }
  }
  EXPECT_EQ(thin, 3u) << "the thin vLUN, its clone and its snapshot";
  EXPECT_GT(48u, m.value()->geometry().data_chunks());
}

// Every input the libFuzzer target ever crashed on (tests/fuzz/regressions/, in its format: a flags
// byte, then the bytes laid over the metadata region) now ends in an answer.
TEST(HostileMetadata, InputsTheFuzzerCrashedOnAreAnswered) {
  fs::log_open("vlunfs-hostile-test", false);
  int replayed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(VLUNFS_FUZZ_REGRESSIONS)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(bytes.empty()) << entry.path();
    const unsigned flags = static_cast<unsigned char>(bytes[0]);
    Bytes region = base();
    const size_t n = std::min(bytes.size() - 1, region.size());
    std::memcpy(region.data(), bytes.data() + 1, n);
    fix_checksums(region, flags & 1, flags & 2, flags & 4);
    SCOPED_TRACE(entry.path().string());
    Verdict v = exercise(region, (flags & 8) ? kMetadataBytes : kDeviceBytes, /*mount=*/true);
    if (!v.opened) {
      EXPECT_FALSE(v.refusal.empty());
    } else if (!v.mounted) {
      EXPECT_FALSE(v.mount_refusal.empty());
    }
    replayed++;
  }
  EXPECT_GT(replayed, 0);
}

TEST(HostileMetadata, ChunkShiftTheDriverCannotTakeIsRefusedAtMount) {
  for (uint32_t shift : {0u, 17u, 20u, 32u}) {
    Bytes region = base();
    for (int i = 0; i < 2; i++) meta::store_u32(region.data() + meta::kSuperblockOffset[i] + meta::superblock_field::kChunkShift, shift);
    fix_checksums(region, true, true, true);
    Verdict v = exercise(region);
    if (v.opened) {
      EXPECT_FALSE(v.mounted) << "chunk shift " << shift;
      EXPECT_NE(v.mount_refusal.find("chunk shift"), std::string::npos) << v.mount_refusal;
    } else {
      EXPECT_FALSE(v.refusal.empty());
    }
  }
}

// One mutation of the region, chosen by `rng`; returns its description and the device size.
std::string mutate(Bytes& region, std::mt19937_64& rng, uint64_t* device_bytes) {
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  // Where: a superblock, a checkpoint slot or the journal, each a third of the time.
  const uint64_t area = pick(3) * 8192;
  auto where = [&]() { return area + (pick(4) == 0 ? pick(8192) : pick(1024)); };  // mostly the used start
  *device_bytes = kDeviceBytes;
  std::string what;
  switch (pick(6)) {
    case 0: {
      int n = 1 + static_cast<int>(pick(4));
      for (int i = 0; i < n; i++) region[where()] ^= static_cast<std::byte>(1u << pick(8));
      what = "bit flips";
      break;
    }
    case 1: {
      int n = 1 + static_cast<int>(pick(8));
      for (int i = 0; i < n; i++) region[where()] = static_cast<std::byte>(pick(256));
      what = "random bytes";
      break;
    }
    case 2: {
      uint64_t at = where(), len = 1 + pick(pick(2) ? 16 : 2048);
      len = std::min<uint64_t>(len, region.size() - at);
      std::fill_n(region.begin() + static_cast<std::ptrdiff_t>(at), len, std::byte{0});
      what = "zeroed range";
      break;
    }
    case 3: {  // a whole 4 KiB block copied over another (a misdirected write)
      uint64_t from = pick(region.size() / 4096) * 4096, to = pick(region.size() / 4096) * 4096;
      std::copy_n(region.begin() + static_cast<std::ptrdiff_t>(from), 4096, region.begin() + static_cast<std::ptrdiff_t>(to));
      what = "misdirected block";
      break;
    }
    case 4: {  // a field (u32 or u64) set to an extreme value: counts, lengths, offsets, shifts
      uint64_t at = where() & ~uint64_t{3};
      if (at + 8 > region.size()) at = region.size() - 8;
      const uint64_t values[] = {0, 1, 17, 33, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFFull, 1ull << 63, 0x7FFFFFFF, 4096, 8192};
      const uint64_t value = values[pick(10)];
      if (pick(2)) {
        meta::store_u64(region.data() + at, value);
      } else {
        meta::store_u32(region.data() + at, static_cast<uint32_t>(value));
      }
      what = "extreme value";
      break;
    }
    default: {  // the device cut short (a truncated image)
      const uint64_t sizes[] = {4096, 8192, 12288, kMetadataBytes, 1 << 20, (1 << 20) + 4096, kDeviceBytes - 65536,
                                kDeviceBytes - 4096};
      *device_bytes = sizes[pick(8)];
      what = "device cut to " + std::to_string(*device_bytes) + " bytes";
      break;
    }
  }
  return what;
}

TEST(HostileMetadata, MutatedImagesNeverCrashAndEveryRefusalSaysWhy) {
  fs::log_open("vlunfs-hostile-test", false);  // thousands of refusals: the mount logs each
  const int count = mutations();
  std::mt19937_64 rng(20260401);
  int opened = 0, mounted = 0, refused = 0, mount_refused = 0, fixed = 0;
  for (int i = 0; i < count; i++) {
    Bytes region = base();
    uint64_t device_bytes = kDeviceBytes;
    std::string what = mutate(region, rng, &device_bytes);
    if (rng() % 2) {  // past the checksums, into the decoders
      fix_checksums(region, true, true, true);
      what += " (checksums fixed)";
      fixed++;
    }
    SCOPED_TRACE("mutation " + std::to_string(i) + ": " + what);
    Verdict v = exercise(region, device_bytes, /*mount=*/i % 2 == 0);
    if (!v.opened) {
      refused++;
      ASSERT_FALSE(v.refusal.empty()) << "a refusal without a message";
      continue;
    }
    opened++;
    if (i % 2 == 0) {
      if (v.mounted) {
        mounted++;
      } else {
        mount_refused++;
        ASSERT_FALSE(v.mount_refusal.empty()) << "a refused mount without a message";
      }
    }
  }
  std::printf("[hostile] %d mutated images (%d with checksums fixed): %d opened (%d of those mounted, %d mounts "
              "refused with a message), %d refused with a message; no crash\n",
              count, fixed, opened, mounted, mount_refused, refused);
}

}  // namespace
}  // namespace vlunfs::hostile
