// The encodings of docs/format.md: records, checkpoints, superblocks and the geometry rules. The
// decoders are fed truncated, padded and random input: they must refuse it, never crash.

#include "meta/checkpoint.h"
#include "meta/coding.h"
#include "meta/crc32c.h"
#include "meta/format.h"
#include "meta/record_codec.h"
#include "meta/superblock.h"
#include "meta_test_support.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <random>

namespace vlunfs::meta {
namespace {

std::vector<Record> one_of_each() {
  return {
      CreateRecord{.parent = 1, .name = "file", .ino = 7, .mode = S_IFLNK | 0777, .uid = 3, .gid = 4, .time_ns = -5,
                   .symlink = "some/where"},
      LinkRecord{.ino = 7, .parent = 2, .name = std::string(MAX_NAME, 'l'), .time_ns = 9},
      UnlinkRecord{.parent = 2, .name = "x", .time_ns = 10},
      RenameRecord{.src_parent = 1, .src_name = "a", .dst_parent = 2, .dst_name = "b",
                   .flags = RENAME_FLAG_EXCHANGE, .time_ns = 11},
      SetAttrRecord{.ino = 7, .valid = SET_MODE | SET_CTIME, .mode = 0600, .uid = 1, .gid = 2, .flags = 3,
                    .atime_ns = 4, .mtime_ns = 5, .ctime_ns = 6},
      ResizeRecord{.ino = 7, .size = 1 << 20, .lxt_count = 4, .first_index = 1, .entries = {1, 2, 3},
                   .time_ns = 12},
      MapRecord{.ino = 7, .first_index = 2, .entries = {0xffffffffffffffff, 0}, .time_ns = 13},
      FreeRecord{.ino = 7},
      OriginRecord{.ino = 7, .origin = 3},
  };
}

// Records compare equal if they encode equal: every field is in the encoding.
bool same_record(const Record& a, const Record& b) {
  return a.index() == b.index() && encode_record(a) == encode_record(b);
}

TEST(RecordCodec, EveryRecordTypeRoundTrips) {
  for (const Record& record : one_of_each()) {
    ASSERT_FALSE(check_encodable(record));
    const std::vector<std::byte> payload = encode_record(record);
    auto decoded = decode_record(static_cast<uint8_t>(record_type(record)), payload);
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_TRUE(same_record(record, decoded.value())) << record.index();
    EXPECT_EQ(static_cast<size_t>(record_type(record)), record.index() + 1);
  }
}

TEST(RecordCodec, RefusesEveryTruncationAndTrailingBytes) {
  for (const Record& record : one_of_each()) {
    std::vector<std::byte> payload = encode_record(record);
    const auto type = static_cast<uint8_t>(record_type(record));
    for (size_t n = 0; n < payload.size(); n++) {
      EXPECT_FALSE(decode_record(type, std::span(payload).first(n))) << record.index() << " " << n;
    }
    payload.push_back(std::byte{0});
    auto decoded = decode_record(type, payload);
    ASSERT_FALSE(decoded);
    EXPECT_EQ(decoded.error().value(), EUCLEAN);
    EXPECT_NE(decoded.error().message.find("left over"), std::string::npos) << decoded.error().message;
  }
}

// Format 3: a special file's Create is type 10 and carries the rdev; types 1 and 10 each refuse
// the other's kind of file, so a version 2 reader's Create never names one.
TEST(RecordCodec, ACreateOfASpecialFileIsACreateNodeRecordWithItsRdev) {
  const Record node = CreateRecord{.parent = 1, .name = "dev", .ino = 8, .mode = S_IFBLK | 0600, .time_ns = 3,
                                   .rdev = 0x1234567890};
  ASSERT_EQ(record_type(node), RecordType::create_node);
  const std::vector<std::byte> payload = encode_record(node);
  auto decoded = decode_record(static_cast<uint8_t>(RecordType::create_node), payload);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(std::get<CreateRecord>(decoded.value()).rdev, 0x1234567890u);
  EXPECT_EQ(std::get<CreateRecord>(decoded.value()).mode, S_IFBLK | 0600u);
  auto as_file = decode_record(static_cast<uint8_t>(RecordType::create), std::span(payload).first(payload.size() - 8));
  ASSERT_FALSE(as_file);
  EXPECT_NE(as_file.error().message.find("special file"), std::string::npos) << as_file.error().message;
  const Record file = CreateRecord{.parent = 1, .name = "f", .ino = 8, .mode = S_IFREG | 0600};
  std::vector<std::byte> file_payload = encode_record(file);
  file_payload.resize(file_payload.size() + 8);
  EXPECT_FALSE(decode_record(static_cast<uint8_t>(RecordType::create_node), file_payload));
}

TEST(RecordCodec, RefusesUnknownTypes) {
  EXPECT_FALSE(decode_record(0, {}));
  auto decoded = decode_record(kMaxRecordType + 1, {});
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message.find("unknown record type"), std::string::npos);
}

TEST(RecordCodec, RefusesAnEntryCountLargerThanThePayload) {
  std::vector<std::byte> payload =
      encode_record(MapRecord{.ino = 7, .first_index = 0, .entries = {1}, .time_ns = 1});
  // The count sits right before the one entry.
  store_u32(payload.data() + payload.size() - 12, 0xffffffff);
  EXPECT_FALSE(decode_record(static_cast<uint8_t>(RecordType::map), payload));
}

TEST(RecordCodec, RefusesOverlongNamesAndSymlinksBeforeEncoding) {
  EXPECT_EQ(check_encodable(LinkRecord{.ino = 1, .parent = 1, .name = std::string(256, 'x')}),
            errno_error(ENAMETOOLONG));
  EXPECT_EQ(check_encodable(CreateRecord{.parent = 1, .name = "l", .ino = 2, .mode = S_IFLNK,
                                         .symlink = std::string(MAX_SYMLINK + 1, 'x')}),
            errno_error(ENAMETOOLONG));
}

TEST(RecordCodec, RandomPayloadsNeverCrashTheDecoderOrApply) {
  std::mt19937_64 rng(7);
  Namespace ns = make_empty_namespace(0);
  RecordGenerator generator(3);
  for (int i = 0; i < 50; i++) (void)meta::apply(ns, generator.next(ns));
  for (int i = 0; i < 20000; i++) {
    std::vector<std::byte> payload(rng() % 80);
    for (auto& b : payload) b = static_cast<std::byte>(rng());
    auto result = decode_record(static_cast<uint8_t>(1 + rng() % kMaxRecordType), payload);
    if (result) {
      Record decoded = std::move(result).value();
      Namespace copy = ns;
      if (auto* resize = std::get_if<ResizeRecord>(&decoded)) resize->lxt_count %= 1024;  // MetaStore caps it
      (void)meta::apply(copy, decoded);
      ASSERT_TRUE(Consistent(copy));
    }
  }
}

// ---- Checkpoint ----

Namespace sample_namespace(uint64_t seed, int records) {
  Namespace ns = make_empty_namespace(1, 2, 3);
  RecordGenerator generator(seed);
  for (int i = 0; i < records; i++) (void)meta::apply(ns, generator.next(ns));
  return ns;
}

TEST(Checkpoint, RoundTripsANamespaceWithEveryField) {
  Namespace ns = sample_namespace(11, 500);
  for (auto& [ino, inode] : ns.inodes) {
    inode.btime_ns = static_cast<int64_t>(ino) * 1000 + 7;  // version 2 fields
    if ((inode.mode & S_IFMT) == S_IFREG) inode.origin = ino - 1;
  }
  const std::vector<std::byte> image = encode_checkpoint(ns, 5, 77);
  auto decoded = decode_checkpoint(image, 5, 77);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_TRUE(SameNamespace(ns, decoded.value()));
}

TEST(Checkpoint, EqualNamespacesGiveEqualImages) {
  const Namespace ns = sample_namespace(12, 300);
  auto rebuilt = decode_checkpoint(encode_checkpoint(ns, 1, 1), 1, 1);
  ASSERT_TRUE(rebuilt);
  EXPECT_EQ(encode_checkpoint(ns, 1, 1), encode_checkpoint(rebuilt.value(), 1, 1));
}

TEST(Checkpoint, RefusesTheWrongGenerationOrFirstSequence) {
  const std::vector<std::byte> image = encode_checkpoint(make_empty_namespace(0), 5, 77);
  auto decoded = decode_checkpoint(image, 6, 77);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().value(), EUCLEAN);
  EXPECT_NE(decoded.error().message.find("generation 5"), std::string::npos) << decoded.error().message;
  EXPECT_FALSE(decode_checkpoint(image, 5, 78));
}

TEST(Checkpoint, RefusesAnInodeCountLargerThanTheImage) {
  std::vector<std::byte> image = encode_checkpoint(make_empty_namespace(0), 1, 1);
  store_u64(image.data() + checkpoint_field::kInodeCount, uint64_t{1} << 60);
  auto decoded = decode_checkpoint(image, 1, 1);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message.find("inodes"), std::string::npos) << decoded.error().message;
}

TEST(Checkpoint, RefusesANamespaceThatBreaksItsInvariants) {
  Namespace ns = sample_namespace(13, 100);
  ns.find(ROOT_INO)->entries["dangling"] = 999999;
  auto decoded = decode_checkpoint(encode_checkpoint(ns, 1, 1), 1, 1);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().message.rfind("inconsistent namespace: ", 0), 0u) << decoded.error().message;
}

TEST(Checkpoint, RandomDamageNeverCrashesTheDecoder) {
  const std::vector<std::byte> image = encode_checkpoint(sample_namespace(14, 200), 1, 1);
  std::mt19937_64 rng(99);
  for (int i = 0; i < 3000; i++) {
    std::vector<std::byte> damaged = image;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; f++) damaged[rng() % damaged.size()] ^= static_cast<std::byte>(1 + rng() % 255);
    if (rng() % 4 == 0) damaged.resize(rng() % damaged.size());
    auto decoded = decode_checkpoint(damaged, 1, 1);
    if (decoded) {
      ASSERT_TRUE(Consistent(decoded.value()));
    }
  }
}

TEST(Checkpoint, HundredThousandFilesFitTheDefaultSlotOfA64GiBImage) {
  auto planned = plan_geometry(uint64_t{64} << 30, FormatOptions{});
  ASSERT_TRUE(planned);
  const Geometry g = planned.value();
  Namespace ns = make_empty_namespace(0);
  for (int d = 0; d < 100; d++) {
    ASSERT_FALSE(meta::apply(ns, create_record(ns, ROOT_INO, "directory-" + std::to_string(d), S_IFDIR | 0755)));
    const uint64_t dir = ns.next_ino - 1;
    for (int f = 0; f < 1000; f++) {
      ASSERT_FALSE(meta::apply(ns, create_record(ns, dir, "a-file-name-of-some-length-" + std::to_string(f),
                                                 S_IFREG | 0644)));
      ASSERT_FALSE(meta::apply(ns, ResizeRecord{.ino = ns.next_ino - 1, .size = 1 << 28, .lxt_count = 1,
                                                .first_index = 0, .entries = {uint64_t(f) << 16}}));
    }
  }
  const size_t bytes = encode_checkpoint(ns, 1, 1).size();
  EXPECT_LT(bytes * 4, g.checkpoint_bytes) << bytes << " bytes for 100,000 files";
}

TEST(Checkpoint, SizeIsExactAndGrowthNeverUnderestimatesWhatAnAppliedRecordAdds) {
  // A random workload of every record type: after each record that applies, checkpoint_size()
  // equals the encoded image's length, and the record's estimated growth is at least the change.
  RecordGenerator generator(/*seed=*/29);
  Namespace ns = make_empty_namespace(0);
  int applied = 0, grew = 0, shrank = 0;
  for (int i = 0; i < 3000; i++) {
    const Record record = generator.next(ns);
    const int64_t estimate = checkpoint_growth(ns, record);
    const uint64_t before = checkpoint_size(ns);
    if (meta::apply(ns, record)) continue;
    applied++;
    const uint64_t after = checkpoint_size(ns);
    ASSERT_EQ(after, encode_checkpoint(ns, 1, 1).size()) << "after record " << i;
    const int64_t change = static_cast<int64_t>(after) - static_cast<int64_t>(before);
    ASSERT_GE(estimate, change) << "record " << i << " of type " << record.index();
    if (std::holds_alternative<CreateRecord>(record) || std::holds_alternative<LinkRecord>(record)) {
      EXPECT_EQ(estimate, change) << "growth must be exact, or the slot fills before it is full";
    }
    grew += change > 0;
    shrank += change < 0;
  }
  EXPECT_GT(applied, 1000);
  EXPECT_GT(grew, 100);
  EXPECT_GT(shrank, 50);
}

// ---- Geometry and superblock ----

TEST(Geometry, DefaultsScaleWithTheDevice) {
  Geometry g = plan_geometry(uint64_t{64} << 30, FormatOptions{}).value();
  EXPECT_EQ(g.journal_bytes, 256 * kMiB);
  EXPECT_EQ(g.checkpoint_bytes, 512 * kMiB);
  EXPECT_EQ(g.data_offset % kDataAlignment, 0u);
  EXPECT_EQ(g.data_offset, 1281 * kMiB);  // 8 KiB + 2 x 512 MiB + 256 MiB, rounded up to 1 MiB
  g = plan_geometry(uint64_t{1} << 30, FormatOptions{}).value();
  EXPECT_EQ(g.journal_bytes, 4 * kMiB);
  EXPECT_EQ(g.checkpoint_bytes, 8 * kMiB);
  g = plan_geometry(uint64_t{4} << 30, FormatOptions{}).value();
  EXPECT_EQ(g.journal_bytes, 16 * kMiB);
  EXPECT_EQ(g.checkpoint_bytes, 32 * kMiB);
  EXPECT_FALSE(check_geometry(g, uint64_t{4} << 30));
}

TEST(Geometry, RefusesBadOptions) {
  FormatOptions options = small_options();
  options.block_size = 1024;
  EXPECT_FALSE(plan_geometry(kTestDeviceBytes, options));
  options = small_options();
  options.chunk_shift = 40;
  EXPECT_FALSE(plan_geometry(kTestDeviceBytes, options));
  options = small_options(/*journal_bytes=*/100);
  auto planned = plan_geometry(kTestDeviceBytes, options);
  ASSERT_FALSE(planned);
  EXPECT_EQ(planned.error().value(), EINVAL);
  EXPECT_NE(planned.error().message.find("journal_bytes"), std::string::npos) << planned.error().message;
  // Hardware chunks are 256 MiB: a 64 MiB device cannot hold one.
  planned = plan_geometry(kTestDeviceBytes, FormatOptions{});
  ASSERT_FALSE(planned);
  EXPECT_NE(planned.error().message.find("one chunk"), std::string::npos) << planned.error().message;
}

Superblock sample_superblock() {
  Superblock sb;
  auto planned = plan_geometry(kTestDeviceBytes, small_options());
  EXPECT_TRUE(planned);
  if (planned) sb.geometry = planned.value();
  sb.geometry.uuid[0] = 0xab;
  sb.generation = 7;
  sb.checkpoint_offset = sb.geometry.checkpoint_offset[1];
  sb.checkpoint_length = 100;
  sb.checkpoint_crc = 0x1234;
  sb.journal_epoch = 7;
  sb.journal_first_seq = 42;
  return sb;
}

TEST(Superblock, RoundTrips) {
  const Superblock sb = sample_superblock();
  const std::vector<std::byte> block = encode_superblock(sb);
  ASSERT_EQ(block.size(), kSuperblockBytes);
  const DecodedSuperblock result = decode_superblock(block, 1, kTestDeviceBytes);
  ASSERT_EQ(result.state, SuperblockState::valid) << result.error.message;
  EXPECT_FALSE(result.error);
  const Superblock& decoded = result.superblock;
  EXPECT_EQ(decoded.generation, 7u);
  EXPECT_EQ(decoded.journal_first_seq, 42u);
  EXPECT_EQ(decoded.checkpoint_crc, 0x1234u);
  EXPECT_EQ(decoded.geometry.uuid[0], 0xab);
  EXPECT_EQ(decoded.geometry.data_offset, sb.geometry.data_offset);
  EXPECT_EQ(encode_superblock(decoded), block);
}

TEST(Superblock, RefusesTheWrongCopyABadCrcAnUnknownVersionAndAShortDevice) {
  const std::vector<std::byte> block = encode_superblock(sample_superblock());
  DecodedSuperblock decoded = decode_superblock(block, 0, kTestDeviceBytes);
  EXPECT_EQ(decoded.state, SuperblockState::corrupt);
  EXPECT_EQ(decoded.error.value(), EUCLEAN);
  EXPECT_NE(decoded.error.message.find("copy 0"), std::string::npos) << decoded.error.message;

  std::vector<std::byte> damaged = block;
  damaged[200] ^= std::byte{1};
  decoded = decode_superblock(damaged, 1, kTestDeviceBytes);
  EXPECT_EQ(decoded.state, SuperblockState::corrupt);
  EXPECT_NE(decoded.error.message.find("CRC"), std::string::npos) << decoded.error.message;

  damaged = block;
  store_u32(damaged.data() + superblock_field::kVersion, kFormatVersion + 1);
  decoded = decode_superblock(damaged, 1, kTestDeviceBytes);
  EXPECT_EQ(decoded.state, SuperblockState::unknown_version);
  EXPECT_NE(decoded.error.message.find("version " + std::to_string(kFormatVersion + 1)), std::string::npos)
      << decoded.error.message;

  decoded = decode_superblock(block, 1, kTestDeviceBytes / 2);
  EXPECT_EQ(decoded.state, SuperblockState::corrupt);
  EXPECT_EQ(decoded.error.message.rfind("bad geometry: ", 0), 0u) << decoded.error.message;
  EXPECT_NE(decoded.error.message.find("device has only"), std::string::npos) << decoded.error.message;

  EXPECT_EQ(decode_superblock(std::vector<std::byte>(kSuperblockBytes), 1, kTestDeviceBytes).state,
            SuperblockState::absent);
}

TEST(Superblock, RefusesInconsistentFieldsEvenWithAValidCrc) {
  const std::vector<std::byte> block = encode_superblock(sample_superblock());
  std::mt19937_64 rng(5);
  int refused = 0;
  for (int i = 0; i < 2000; i++) {
    std::vector<std::byte> damaged = block;
    damaged[rng() % superblock_field::kUsedEnd] ^= static_cast<std::byte>(1 + rng() % 255);
    store_u32(damaged.data() + superblock_field::kCrc, crc32c(damaged.data(), superblock_field::kCrc));
    const DecodedSuperblock result = decode_superblock(damaged, 1, kTestDeviceBytes);
    const Superblock& decoded = result.superblock;
    if (result.state == SuperblockState::valid) {
      EXPECT_FALSE(check_geometry(decoded.geometry, kTestDeviceBytes));
      EXPECT_LE(decoded.checkpoint_length, decoded.geometry.checkpoint_bytes);
    } else {
      refused++;
    }
  }
  EXPECT_GT(refused, 1000);  // most fields are cross-checked; the uuid, checkpoint CRC and first sequence are not
}

}  // namespace
}  // namespace vlunfs::meta
