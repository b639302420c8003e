// MetaStore: format, open, journal replay, checkpoints, group commit and the failure modes a
// running file system meets (full journal, full checkpoint slot, read-only, I/O errors).

#include "meta/checkpoint.h"
#include "meta/coding.h"
#include "meta/crc32c.h"
#include "meta/format.h"
#include "meta/journal_record.h"
#include "meta/record_codec.h"
#include "meta_test_support.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace vlunfs::meta {
namespace {

using store::IoKind;

std::vector<std::byte> read_bytes(store::BlockStore& device, uint64_t offset, size_t n) {
  std::vector<std::byte> bytes(n);
  EXPECT_FALSE(device.read(offset, bytes));
  return bytes;
}

// Appends `n` generated records that apply, waiting for each; returns the last sequence number.
uint64_t append_valid(MetaStore& store, RecordGenerator& generator, int n, bool wait = true) {
  uint64_t seq = 0;
  for (int done = 0, attempts = 0; done < n; attempts++) {
    if (attempts > 50 * n) {
      ADD_FAILURE() << "the generator's records keep failing";
      break;
    }
    const Record r = generator.next(store.ns());
    auto result = store.append(r);
    if (!result) {
      EXPECT_NE(result.error(), errno_error(EIO));
      EXPECT_NE(result.error(), errno_error(ENOSPC));
      continue;
    }
    seq = result.value();
    if (wait) {
      EXPECT_FALSE(store.wait_durable(seq));
    }
    done++;
  }
  return seq;
}

uint64_t create_file(MetaStore& store, const std::string& name, uint64_t parent = ROOT_INO) {
  auto seq = store.append(create_record(store.ns(), parent, name, S_IFREG | 0644));
  EXPECT_TRUE(seq) << name;
  return seq ? seq.value() : 0;
}

// ---- format ----

TEST(Format, ThenOpenGivesAnEmptyRootDirectory) {
  TestDevice device;
  OpenReport report;
  auto store = device.open(&report);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->ns().inodes.size(), 1u);
  const Inode* root = store->ns().find(ROOT_INO);
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->mode, S_IFDIR | 0755u);
  EXPECT_EQ(root->nlink, 2u);
  EXPECT_EQ(report.generation, 1u);
  EXPECT_EQ(report.superblock_used, 1);
  EXPECT_FALSE(report.fell_back);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(report.records_replayed, 0u);
  EXPECT_NE(report.journal_stop_reason.find("zeros"), std::string::npos) << report.journal_stop_reason;
  EXPECT_EQ(store->geometry().chunk_shift, 4u);
  EXPECT_EQ(store->geometry().data_offset % kDataAlignment, 0u);
  EXPECT_GT(store->geometry().data_chunks(), 900u);
}

TEST(Format, RefusesADeviceTooSmallForMetadataPlusOneChunk) {
  // The metadata ends at 1 MiB; a chunk is 64 KiB, and only 32 KiB are left.
  auto memory = store::make_memory_store((1 << 20) + (32 << 10));
  auto g = format(*memory, small_options());
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, errno_error(EINVAL));
  EXPECT_NE(g.error().message.find("one chunk"), std::string::npos) << g.error().message;
  EXPECT_FALSE(has_vlunfs_signature(*memory));
}

TEST(Format, DiscardsTheDataAreaAndClearsAnOldJournal) {
  auto memory = store::make_memory_store(kTestDeviceBytes);
  std::vector<std::byte> junk(1 << 20, std::byte{0x5a});
  for (uint64_t offset = 0; offset < kTestDeviceBytes; offset += junk.size()) ASSERT_FALSE(memory->write(offset, junk));
  auto g = format(*memory, small_options());
  ASSERT_TRUE(g);
  const auto zero = [](const std::vector<std::byte>& v) {
    return std::all_of(v.begin(), v.end(), [](std::byte b) { return b == std::byte{0}; });
  };
  EXPECT_TRUE(zero(read_bytes(*memory, g.value().data_offset, 1 << 20)));
  EXPECT_TRUE(zero(read_bytes(*memory, kTestDeviceBytes - 4096, 4096)));
  EXPECT_TRUE(zero(read_bytes(*memory, g.value().journal_offset, kMetaBlock)));
}

TEST(Format, ReformatForgetsTheOldFileSystem) {
  TestDevice device;
  {
    auto store = device.open();
    RecordGenerator generator(1);
    append_valid(*store, generator, 50);
  }
  ASSERT_TRUE(format(device.faulty, small_options()));
  auto store = device.open();
  EXPECT_EQ(store->ns().inodes.size(), 1u);
}

TEST(Format, LeavesASignature) {
  TestDevice device;
  EXPECT_TRUE(has_vlunfs_signature(device.faulty));
  auto blank = store::make_memory_store(kTestDeviceBytes);
  EXPECT_FALSE(has_vlunfs_signature(*blank));
}

// ---- open ----

TEST(Open, RefusesAnUnformattedDevice) {
  auto blank = store::make_memory_store(kTestDeviceBytes);
  auto store = MetaStore::open(*blank, {});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, errno_error(EINVAL));
  EXPECT_NE(store.error().message.find("not formatted"), std::string::npos) << store.error().message;
}

TEST(Open, RefusesAnUnknownFormatVersionSayingWhereAndWhich) {
  TestDevice device;
  for (uint64_t offset : kSuperblockOffset) {
    std::vector<std::byte> block = read_bytes(*device.memory, offset, kSuperblockBytes);
    store_u32(block.data() + superblock_field::kVersion, kFormatVersion + 1);
    store_u32(block.data() + superblock_field::kCrc, crc32c(block.data(), superblock_field::kCrc));
    ASSERT_FALSE(device.memory->write(offset, block));
  }
  auto store = MetaStore::open(*device.memory, {});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, errno_error(EINVAL));
  EXPECT_NE(store.error().message.find("version " + std::to_string(kFormatVersion + 1)), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("at byte 4096"), std::string::npos) << store.error().message;
}

TEST(Open, ReadOnlyRefusesAppendAndCheckpointWithErofs) {
  TestDevice device;
  {
    auto store = device.open();
    create_file(*store, "a");
    ASSERT_FALSE(store->wait_durable(1));
  }
  auto store = device.open(nullptr, /*read_only=*/true);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->ns().find(ROOT_INO)->entries.size(), 1u);
  const uint64_t writes = device.faulty.io_count(IoKind::write);
  auto seq = store->append(create_record(store->ns(), ROOT_INO, "b", S_IFREG | 0644));
  ASSERT_FALSE(seq);
  EXPECT_EQ(seq.error(), errno_error(EROFS));
  EXPECT_EQ(store->checkpoint(), errno_error(EROFS));
  EXPECT_EQ(store->ns().find(ROOT_INO)->entries.size(), 1u);
  EXPECT_EQ(device.faulty.io_count(IoKind::write), writes);
}

// ---- journal ----

TEST(Journal, AppendedRecordsReplayExactly) {
  TestDevice device;
  Namespace expected;
  {
    auto store = device.open();
    RecordGenerator generator(2);
    append_valid(*store, generator, 200);
    expected = store->ns();
  }
  OpenReport report;
  auto store = device.open(&report);
  ASSERT_TRUE(store);
  EXPECT_TRUE(SameNamespace(store->ns(), expected));
  EXPECT_EQ(report.records_replayed, 200u);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_FALSE(report.fell_back);
}

TEST(Journal, RecordsAppendedAfterAReopenFollowTheReplayedOnes) {
  TestDevice device;
  Namespace expected;
  RecordGenerator generator(3);
  for (int round = 0; round < 5; round++) {
    auto store = device.open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(SameNamespace(store->ns(), round == 0 ? store->ns() : expected)) << round;
    append_valid(*store, generator, 7 + round);  // odd counts: the tail block is rewritten mid-record
    expected = store->ns();
  }
  OpenReport report;
  auto store = device.open(&report);
  EXPECT_TRUE(SameNamespace(store->ns(), expected));
  EXPECT_EQ(report.records_replayed, 7u + 8 + 9 + 10 + 11);
}

TEST(Journal, CheckpointThenMoreRecordsReplayOnTopOfIt) {
  TestDevice device;
  Namespace expected;
  {
    auto store = device.open();
    RecordGenerator generator(4);
    append_valid(*store, generator, 60);
    ASSERT_FALSE(store->checkpoint());
    EXPECT_EQ(store->journal_fill(), 0.0);
    append_valid(*store, generator, 40);
    expected = store->ns();
  }
  OpenReport report;
  auto store = device.open(&report);
  EXPECT_TRUE(SameNamespace(store->ns(), expected));
  EXPECT_EQ(report.generation, 2u);
  EXPECT_EQ(report.superblock_used, 0);
  EXPECT_EQ(report.records_replayed, 40u);
}

TEST(Journal, StaleRecordsOfAnOlderEpochAreNotReplayed) {
  TestDevice device;
  Namespace expected;
  {
    auto store = device.open();
    RecordGenerator generator(5);
    append_valid(*store, generator, 100);  // epoch 1 fills much of the journal
    ASSERT_FALSE(store->checkpoint());
    append_valid(*store, generator, 10);   // epoch 2 overwrites only its beginning
    expected = store->ns();
  }
  OpenReport report;
  auto store = device.open(&report);
  EXPECT_TRUE(SameNamespace(store->ns(), expected));
  EXPECT_EQ(report.records_replayed, 10u);
}

// A file name that makes a Create record exactly 128 bytes long (32 header + 96 payload), so that
// 32 records fill a journal block and records line up with block boundaries.
std::string aligned_name(char tag, int i) {
  std::string number = std::to_string(i);
  return std::string(1, tag) + std::string(56 - number.size(), '-') + number;
}

TEST(Journal, StaleRecordsAreNotReplayedEvenWhenEpochAndSequenceLineUp) {
  // A torn power cut can keep a later journal block and lose an earlier one. The records in the
  // kept block carry the current epoch and the very sequence numbers that new records will reach
  // again, at the very offsets where new records end if their lengths line up. Only the CRC chain
  // tells them apart: they must never be replayed after the new ones.
  TestDevice device;
  auto store = device.open();
  const Geometry g = store->geometry();
  create_file(*store, aligned_name('a', 1));
  ASSERT_FALSE(store->wait_durable(1));
  ASSERT_EQ(store->journal_fill() * g.journal_bytes, 128.0);
  const std::vector<std::byte> first_block = read_bytes(*device.memory, g.journal_offset, kMetaBlock);
  for (int i = 2; i <= 96; i++) create_file(*store, aligned_name('a', i));
  ASSERT_FALSE(store->wait_durable(96));
  store.reset();
  // Block 0 as at the first flush; blocks 1 and 2 (records 33..96) survive.
  ASSERT_FALSE(device.memory->write(g.journal_offset, first_block));

  OpenReport report;
  store = device.open(&report);
  ASSERT_EQ(report.records_replayed, 1u);
  // Different records with the same lengths, ending exactly where old record 65 begins.
  for (int i = 2; i <= 64; i++) create_file(*store, aligned_name('b', i));
  ASSERT_FALSE(store->wait_durable(64));
  ASSERT_EQ(store->journal_fill() * g.journal_bytes, 8192.0);
  const Namespace expected = store->ns();
  store.reset();

  store = device.open(&report);
  EXPECT_EQ(report.records_replayed, 64u);
  EXPECT_TRUE(SameNamespace(store->ns(), expected));
  EXPECT_FALSE(store->ns().find(ROOT_INO)->entries.contains(aligned_name('a', 65)));
  EXPECT_NE(report.journal_stop_reason.find("bad header CRC at journal offset 8192"), std::string::npos)
      << report.journal_stop_reason;
}

TEST(Journal, ReplayStopsAtFirstBadCrc) {
  TestDevice device;
  std::vector<Namespace> states;
  std::vector<uint64_t> offsets;
  {
    auto store = device.open();
    for (int i = 0; i < 20; i++) {
      offsets.push_back(static_cast<uint64_t>(store->journal_fill() * store->geometry().journal_bytes));
      create_file(*store, "f" + std::to_string(i));
      states.push_back(store->ns());
    }
    ASSERT_FALSE(store->wait_durable(20));
  }
  // Damage the payload of record 13 (index 12).
  const uint64_t at = device.geometry.journal_offset + offsets[12] + kRecordHeaderBytes + 3;
  std::vector<std::byte> byte = read_bytes(*device.memory, at, 1);
  byte[0] ^= std::byte{0x40};
  ASSERT_FALSE(device.memory->write(at, byte));
  OpenReport report;
  auto store = device.open(&report);
  EXPECT_EQ(report.records_replayed, 12u);
  EXPECT_TRUE(SameNamespace(store->ns(), states[11]));
  EXPECT_NE(report.journal_stop_reason.find("CRC"), std::string::npos) << report.journal_stop_reason;
  EXPECT_NE(report.journal_stop_reason.find("offset " + std::to_string(offsets[12])), std::string::npos)
      << report.journal_stop_reason;
}

TEST(Journal, ReplayStopsAtARecordThatDoesNotApplyAndReportsIt) {
  TestDevice device;
  {
    auto store = device.open();
    create_file(*store, "a");
    ASSERT_FALSE(store->wait_durable(1));
  }
  // A correctly framed record (epoch 1, seq 2, chained CRC) that apply() refuses.
  const std::vector<std::byte> journal = read_bytes(*device.memory, device.geometry.journal_offset, kMetaBlock);
  const uint32_t chain = load_u32(journal.data() + record_field::kHeaderCrc);
  const uint64_t first_length = kRecordHeaderBytes + load_u32(journal.data() + record_field::kPayloadLength);
  const Record bad = UnlinkRecord{.parent = ROOT_INO, .name = "missing", .time_ns = 1};
  const std::vector<std::byte> payload = encode_record(bad);
  std::vector<std::byte> framed(kRecordHeaderBytes);
  encode_record_header(framed.data(), chain, RecordType::unlink, payload, 1, 2);
  framed.insert(framed.end(), payload.begin(), payload.end());
  ASSERT_FALSE(device.memory->write(device.geometry.journal_offset + first_length, framed));

  OpenReport report;
  auto store = device.open(&report);
  ASSERT_TRUE(store);
  EXPECT_EQ(report.records_replayed, 1u);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].part, OpenProblemPart::journal);
  EXPECT_NE(report.problems[0].text.find("does not apply"), std::string::npos) << report.problems[0].text;
  EXPECT_NE(report.problems[0].text.find("journal record 2"), std::string::npos) << report.problems[0].text;
  // The refused record is overwritten by the next append and never seen again.
  create_file(*store, "b");
  ASSERT_FALSE(store->wait_durable(2));
  const Namespace expected = store->ns();
  store.reset();
  store = device.open(&report);
  EXPECT_TRUE(SameNamespace(store->ns(), expected));
  EXPECT_TRUE(report.problems.empty());
}

TEST(Journal, FullJournalTriggersACheckpointAndLosesNothing) {
  TestDevice device(small_options(/*journal_bytes=*/64 << 10, /*checkpoint_bytes=*/512 << 10));
  Namespace expected;
  {
    auto store = device.open();
    RecordGenerator generator(7);
    double max_fill = 0;
    for (int i = 0; i < 30; i++) {
      append_valid(*store, generator, 100, /*wait=*/i % 2 == 0);
      max_fill = std::max(max_fill, store->journal_fill());
    }
    EXPECT_LE(max_fill, 1.0);
    expected = store->ns();
    // Everything appended is durable through the checkpoints and the last journal write.
    ASSERT_FALSE(store->wait_durable(3000));
  }
  OpenReport report;
  auto store = device.open(&report);
  EXPECT_TRUE(SameNamespace(store->ns(), expected));
  EXPECT_GT(report.generation, 3u) << "3000 records cannot fit a 64 KiB journal without checkpoints";
}

FormatOptions tiny_journal_options() {
  FormatOptions options = small_options(/*journal_bytes=*/8192, /*checkpoint_bytes=*/256 << 10);
  options.chunk_shift = 2;  // 16 KiB chunks: enough of them for an LXT larger than the journal
  return options;
}

TEST(Journal, RecordLargerThanTheJournalIsWrittenInACheckpoint) {
  TestDevice device(tiny_journal_options());
  Namespace expected;
  uint64_t seq = 0;
  {
    auto store = device.open();
    create_file(*store, "big");
    ResizeRecord r{.ino = 2, .size = 1500 * 16384, .lxt_count = 1500, .first_index = 0, .entries = {}, .time_ns = 5};
    for (uint64_t i = 0; i < 1500; i++) r.entries.push_back(i << 16);
    auto result = store->append(r);
    ASSERT_TRUE(result);
    seq = result.value();
    EXPECT_EQ(seq, 2u);
    EXPECT_FALSE(store->wait_durable(seq));
    create_file(*store, "after");
    EXPECT_FALSE(store->wait_durable(seq + 1));
    expected = store->ns();
  }
  auto store = device.open();
  EXPECT_TRUE(SameNamespace(store->ns(), expected));
  EXPECT_EQ(store->ns().find(2)->lxt.size(), 1500u);
}

TEST(Journal, ResizeBeyondTheOvercommitLimitIsRefused) {
  TestDevice device;
  auto store = device.open();
  create_file(*store, "f");
  const Namespace before = store->ns();
  auto result = store->append(ResizeRecord{.ino = 2, .size = 0,
                                           .lxt_count = static_cast<uint32_t>(max_lxt_entries(store->geometry()) + 1),
                                           .first_index = 0, .entries = {}});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errno_error(EFBIG));
  EXPECT_TRUE(SameNamespace(store->ns(), before));
}

TEST(Journal, RefusedRecordIsNotJournaled) {
  TestDevice device;
  auto store = device.open();
  const double fill = store->journal_fill();
  auto result = store->append(UnlinkRecord{.parent = ROOT_INO, .name = "missing"});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errno_error(ENOENT));
  EXPECT_EQ(store->journal_fill(), fill);
  EXPECT_EQ(create_file(*store, "a"), 1u);
}

TEST(Journal, WaitDurableRefusesASequenceNumberNeverHandedOut) {
  TestDevice device;
  auto store = device.open();
  EXPECT_FALSE(store->wait_durable(0));
  EXPECT_EQ(store->wait_durable(1), errno_error(EINVAL));
}

TEST(Journal, WriteFailureFailsTheStoreForGood) {
  TestDevice device;
  auto store = device.open();
  create_file(*store, "durable");
  ASSERT_FALSE(store->wait_durable(1));
  create_file(*store, "lost");
  device.faulty.fail_nth(IoKind::write, 0);
  EXPECT_EQ(store->wait_durable(2), errno_error(EIO));
  EXPECT_FALSE(store->wait_durable(1)) << "what was durable stays durable";
  auto result = store->append(create_record(store->ns(), ROOT_INO, "more", S_IFREG | 0644));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), errno_error(EIO));
  EXPECT_EQ(store->checkpoint(), errno_error(EIO));
  store.reset();
  auto reopened = device.open();
  EXPECT_TRUE(reopened->ns().find(ROOT_INO)->entries.contains("durable"));
}

TEST(Journal, FlushFailureFailsTheStore) {
  TestDevice device;
  auto store = device.open();
  create_file(*store, "a");
  device.faulty.fail_nth(IoKind::flush, 0);
  EXPECT_EQ(store->wait_durable(1), errno_error(EIO));
  EXPECT_EQ(store->wait_durable(1), errno_error(EIO));
  EXPECT_FALSE(store->append(create_record(store->ns(), ROOT_INO, "b", S_IFREG | 0644)));
}

// ---- checkpoint ----

TEST(Checkpoint, GrowthBeyondTheSlotIsEnospcAndRemovalsStillGoThroughAFullJournal) {
  TestDevice device(small_options(/*journal_bytes=*/16 << 10, /*checkpoint_bytes=*/8 << 10));
  auto store = device.open();
  // About 80 files fill an 8 KiB slot; the 16 KiB journal would hold about twice as many records.
  int files = 0;
  std::error_code refused;
  for (; files < 500; files++) {
    const Namespace before = store->ns();
    auto result = store->append(create_record(store->ns(), ROOT_INO, "file-" + std::to_string(files), S_IFREG | 0644));
    if (!result) {
      refused = result.error();
      EXPECT_TRUE(SameNamespace(store->ns(), before)) << "a refused record changes nothing";
      break;
    }
  }
  ASSERT_EQ(refused, errno_error(ENOSPC));
  EXPECT_GT(files, 40);
  EXPECT_LT(files, 120);
  // The namespace still fits its slot, so a checkpoint is always possible.
  ASSERT_FALSE(store->checkpoint());
  // Fill the journal with records that do not grow the namespace, then remove files: each time the
  // journal is full the store folds it into a checkpoint, and nothing is refused.
  for (int i = 0; i < 400; i++) {
    SetAttrRecord touch;
    touch.ino = ROOT_INO;
    touch.valid = SET_MTIME;
    touch.mtime_ns = i;
    ASSERT_TRUE(store->append(touch)) << i;
  }
  EXPECT_GT(store->journal_fill(), 0.0);
  for (int i = 0; i < files / 2; i++) {
    UnlinkRecord unlink;
    unlink.parent = ROOT_INO;
    unlink.name = "file-" + std::to_string(i);
    ASSERT_TRUE(store->append(unlink)) << unlink.name;
    FreeRecord free;
    free.ino = ROOT_INO + 1 + static_cast<uint64_t>(i);
    ASSERT_TRUE(store->append(free)) << unlink.name;
  }
  // The room the removals made is there for new files again.
  for (int i = 0; i < files / 4; i++) create_file(*store, "again-" + std::to_string(i));
  ASSERT_FALSE(store->wait_durable(store->append(SetAttrRecord{.ino = ROOT_INO}).value()));
  const Namespace last = store->ns();
  store.reset();
  auto reopened = device.open();
  ASSERT_TRUE(reopened);
  EXPECT_TRUE(SameNamespace(reopened->ns(), last));
}

TEST(Checkpoint, FillResetsAfterACheckpoint) {
  TestDevice device;
  auto store = device.open();
  EXPECT_EQ(store->journal_fill(), 0.0);
  create_file(*store, "a");
  EXPECT_GT(store->journal_fill(), 0.0);
  ASSERT_FALSE(store->checkpoint());
  EXPECT_EQ(store->journal_fill(), 0.0);
}

TEST(Checkpoint, AlternatesSlotsAndSuperblockCopies) {
  TestDevice device;
  auto store = device.open();
  for (uint64_t generation = 2; generation < 6; generation++) {
    create_file(*store, "f" + std::to_string(generation));
    ASSERT_FALSE(store->checkpoint());
    OpenReport report;
    auto reopened = device.open(&report, /*read_only=*/true);
    EXPECT_EQ(report.generation, generation);
    EXPECT_EQ(report.superblock_used, static_cast<int>(generation % 2));
    EXPECT_TRUE(SameNamespace(reopened->ns(), store->ns()));
  }
}

// ---- group commit ----

TEST(GroupCommit, ConcurrentWaitersShareWritesAndFlushes) {
  TestDevice device(small_options(/*journal_bytes=*/4 << 20, /*checkpoint_bytes=*/1 << 20));  // 2,000 files
  auto store = device.open();
  std::mutex fs_lock;  // the caller's lock (meta.h): serialises append()
  constexpr int kThreads = 4, kPerThread = 500;
  // A flush that takes a while, as on a real device: appends pile up behind it.
  device.faulty.set_failure([](IoKind kind, uint64_t, uint64_t) {
    if (kind == IoKind::flush) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return false;
  });
  const uint64_t flushes_before = device.faulty.io_count(IoKind::flush);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; i++) {
        uint64_t seq = 0;
        {
          std::lock_guard lock(fs_lock);
          auto result = store->append(create_record(store->ns(), ROOT_INO,
                                                    "t" + std::to_string(t) + "-" + std::to_string(i), S_IFREG | 0644));
          if (!result) {
            failures++;
            continue;
          }
          seq = result.value();
        }
        if (store->wait_durable(seq)) failures++;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  const uint64_t flushes = device.faulty.io_count(IoKind::flush) - flushes_before;
  // Each thread waits for its record before appending the next, so in steady state the threads
  // split into two groups that take turns: one flush carries the records appended during the
  // previous one, about half the threads' worth. Without group commit it would be one per record.
  EXPECT_LT(flushes, uint64_t{kThreads * kPerThread} * 3 / 4) << "group commit should share flushes";
  RecordProperty("flushes", std::to_string(flushes));
  const Namespace expected = store->ns();
  store.reset();
  auto reopened = device.open();
  EXPECT_TRUE(SameNamespace(reopened->ns(), expected));
  EXPECT_EQ(reopened->ns().find(ROOT_INO)->entries.size(), size_t{kThreads * kPerThread});
}

TEST(GroupCommit, OneWaitMakesEveryEarlierRecordDurableWithOneFlush) {
  TestDevice device;
  auto store = device.open();
  for (int i = 0; i < 50; i++) create_file(*store, "f" + std::to_string(i));
  const uint64_t flushes = device.faulty.io_count(IoKind::flush);
  ASSERT_FALSE(store->wait_durable(50));
  EXPECT_EQ(device.faulty.io_count(IoKind::flush), flushes + 1);
  for (uint64_t seq = 1; seq <= 50; seq++) EXPECT_FALSE(store->wait_durable(seq));
  EXPECT_EQ(device.faulty.io_count(IoKind::flush), flushes + 1);
  EXPECT_EQ(device.faulty.unflushed_blocks(), 0u);
}

}  // namespace
}  // namespace vlunfs::meta
