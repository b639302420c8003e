// One chunk-shift rule (vlunfs/chunk_shift.h) for every program: mkfs's format, the superblock a
// mount or fsck reads, fsck's own check, the client and the driver all accept the same range and
// refuse the same values just outside it. (Before, format took 0..32, mkfs 4..16 and a mount 1..16:
// mkfs.vlunfs could not make what a mount took, and format() made what no mount could use.)
#include "fs_rig.h"
#include "fuzz/metadata_image.h"
#include "meta/coding.h"
#include "meta/format.h"
#include "tools/fsck.h"
#include "vlunfs/chunk_shift.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/sim_afu.h"
#include "vlunfs/vlun.h"

#include <gtest/gtest.h>

#include <string>

namespace vlunfs {
namespace {

constexpr unsigned kOutOfRange[] = {sisl::MIN_CHUNK_SHIFT - 1, sisl::MAX_CHUNK_SHIFT + 1};

// The populated image of the hostile-metadata tests, its superblocks saying `chunk_shift`.
store::BlockStore& device_claiming(std::unique_ptr<store::BlockStore>& holder, unsigned chunk_shift) {
  hostile::Bytes region = hostile::populated_metadata();
  for (int i = 0; i < 2; i++) {
    meta::store_u32(region.data() + meta::kSuperblockOffset[i] + meta::superblock_field::kChunkShift, chunk_shift);
  }
  hostile::fix_checksums(region, true, false, false);
  holder = store::make_memory_store(hostile::kDeviceBytes);
  EXPECT_FALSE(holder->write(0, region));
  return *holder;
}

TEST(ChunkShiftRule, FormatRefusesWhatNoMountCouldTake) {
  for (unsigned shift : kOutOfRange) {
    auto memory = store::make_memory_store(64 << 20);
    meta::FormatOptions fo;
    fo.chunk_shift = shift;
    auto g = meta::format(*memory, fo);
    ASSERT_FALSE(g) << "chunk shift " << shift;
    EXPECT_NE(g.error().message.find(sisl::chunk_shift_refusal(shift)), std::string::npos) << g.error().message;
  }
}

TEST(ChunkShiftRule, MountAndFsckRefuseTheSameSuperblockValues) {
  for (unsigned shift : kOutOfRange) {
    SCOPED_TRACE("chunk shift " + std::to_string(shift));
    std::unique_ptr<store::BlockStore> holder;
    store::BlockStore& device = device_claiming(holder, shift);

    auto opened = meta::MetaStore::open(device, {.read_only = true});
    ASSERT_FALSE(opened);
    EXPECT_NE(opened.error().message.find(sisl::chunk_shift_refusal(shift)), std::string::npos) << opened.error().message;

    std::string why;

    auto fs = fs::Filesystem::open_store(store::make_region_store(device, 0, device.size_bytes()), {}, &why);
    EXPECT_FALSE(fs) << "a mount took chunk shift " << shift;

    const fsck::Report report = fsck::check_device(device, "image", {});
    EXPECT_NE(report.exit_code, fsck::EXIT_CLEAN);
  }
}

TEST(ChunkShiftRule, EveryLayerTakesBothEndsOfTheRange) {
  for (unsigned shift : {sisl::MIN_CHUNK_SHIFT, sisl::MAX_CHUNK_SHIFT}) {
    SCOPED_TRACE("chunk shift " + std::to_string(shift));
    // 512-byte blocks keep a chunk of 2^16 blocks at 32 MiB: the data area has three.
    auto device = store::make_memory_store(128 << 20, 512);
    meta::FormatOptions fo;
    fo.block_size = 512;
    fo.chunk_shift = shift;
    fo.journal_bytes = 1 << 20;
    fo.checkpoint_bytes = 1 << 20;
    auto g = meta::format(*device, fo);
    ASSERT_TRUE(g) << g.error().message;
    EXPECT_EQ(fsck::check_device(*device, "image", {}).exit_code, fsck::EXIT_CLEAN);
    auto fs = fs::test_rig::mount_on_simulator(*device);
    ASSERT_TRUE(fs);
  }
  afu::SimAfu afu;
  for (unsigned shift : kOutOfRange) {
    EXPECT_FALSE(vlun::Driver::create(afu, {.chunk_shift = shift})) << "the driver took chunk shift " << shift;
  }
}

}  // namespace
}  // namespace vlunfs
