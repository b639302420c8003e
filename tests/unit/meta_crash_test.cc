// Crashes and corruption: power cuts (clean and torn) at any point, interrupted checkpoints,
// damaged superblocks and checkpoints, and random damage anywhere in the metadata. What was
// acknowledged survives; what opens is always a state the file system actually passed through.

#include "meta/coding.h"
#include "meta/crc32c.h"
#include "meta/format.h"
#include "meta_test_support.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <random>

namespace vlunfs::meta {
namespace {

using store::IoKind;

std::vector<std::byte> read_bytes(store::BlockStore& device, uint64_t offset, size_t n) {
  std::vector<std::byte> bytes(n);
  EXPECT_FALSE(device.read(offset, bytes));
  return bytes;
}

void flip_byte(store::BlockStore& device, uint64_t offset, uint8_t mask = 0x10) {
  std::vector<std::byte> byte = read_bytes(device, offset, 1);
  byte[0] ^= std::byte{mask};
  ASSERT_FALSE(device.write(offset, byte));
}

std::string all_problems(const OpenReport& report) {
  std::string text;
  for (const OpenProblem& problem : report.problems) text += problem.text + "\n";
  return text;
}

// The index of the newest state in `states` equal to `ns`, or -1.
int find_state(const std::vector<Namespace>& states, const Namespace& ns) {
  for (int k = static_cast<int>(states.size()) - 1; k >= 0; k--) {
    if (SameNamespace(states[k], ns)) return k;
  }
  return -1;
}

// Runs a random workload with occasional waits and checkpoints, cuts the power (keeping each
// unflushed block with `keep` probability), and checks that the device opens to a state the
// workload passed through, no older than the last acknowledged one. Then checks that the
// recovered file system takes new records correctly (the journal tail after a crash holds
// leftovers that must never come back).
void power_cut_round(uint64_t seed, double keep) {
  SCOPED_TRACE("seed " + std::to_string(seed) + " keep " + std::to_string(keep));
  const uint64_t journal_bytes = seed % 2 ? 16 << 10 : 64 << 10;  // small ones checkpoint on their own
  TestDevice device(small_options(journal_bytes));
  std::mt19937_64 rng(seed);
  std::vector<Namespace> states;
  size_t acknowledged = 0;
  {
    auto store = device.open();
    ASSERT_TRUE(store);
    states.push_back(store->ns());
    RecordGenerator generator(seed);
    const int records = 100 + static_cast<int>(rng() % 300);
    for (int i = 0; i < records; i++) {
      auto result = store->append(generator.next(store->ns()));
      if (!result) continue;
      states.push_back(store->ns());
      if (rng() % 4 == 0) {
        ASSERT_FALSE(store->wait_durable(result.value()));
        acknowledged = states.size() - 1;
      }
      if (rng() % 97 == 0) {
        ASSERT_FALSE(store->checkpoint());
        acknowledged = states.size() - 1;
      }
    }
  }
  ASSERT_FALSE(device.faulty.lose_power(keep, seed));

  OpenReport report;
  auto store = device.open(&report);
  ASSERT_TRUE(store);
  ASSERT_TRUE(Consistent(store->ns()));
  const int found = find_state(states, store->ns());
  ASSERT_GE(found, 0) << "opened a state the file system never was in; " << report.journal_stop_reason;
  EXPECT_GE(static_cast<size_t>(found), acknowledged) << "an acknowledged record was lost";
  EXPECT_TRUE(report.problems.empty()) << all_problems(report);

  // Life goes on: new records after the recovered ones, then a clean power cut.
  RecordGenerator generator(seed + 1000);
  uint64_t last = 0;
  for (int i = 0; i < 60; i++) {
    auto result = store->append(generator.next(store->ns()));
    if (result) last = result.value();
  }
  if (last != 0) {
    ASSERT_FALSE(store->wait_durable(last));
  }
  const Namespace expected = store->ns();
  store.reset();
  ASSERT_FALSE(device.faulty.lose_power(0.0, seed));
  store = device.open(&report);
  ASSERT_TRUE(store);
  EXPECT_TRUE(SameNamespace(store->ns(), expected)) << report.journal_stop_reason;
}

TEST(Crash, AcknowledgedRecordsSurviveAPowerCut) {
  for (uint64_t seed = 1; seed <= 30; seed++) power_cut_round(seed, 0.0);
}

TEST(Crash, TornPowerCutsAlwaysOpenToAStateThatExisted) {
  for (uint64_t seed = 100; seed < 180; seed++) power_cut_round(seed, 0.5);
}

TEST(Crash, PowerCutKeepingEverythingLosesNothing) {
  for (uint64_t seed = 200; seed < 210; seed++) power_cut_round(seed, 1.0);
}

// Where a checkpoint is interrupted.
enum class CutAt { image_write, image_flush_fails, superblock_write, superblock_flush };

void interrupted_checkpoint(CutAt cut, double keep, uint64_t seed) {
  SCOPED_TRACE("cut " + std::to_string(static_cast<int>(cut)) + " keep " + std::to_string(keep));
  TestDevice device;
  auto store = device.open();
  RecordGenerator generator(seed);
  uint64_t last = 0;
  for (int i = 0; i < 80; i++) {
    auto result = store->append(generator.next(store->ns()));
    if (result) last = result.value();
  }
  ASSERT_FALSE(store->wait_durable(last));
  ASSERT_FALSE(store->checkpoint());  // generation 2, slot 0
  for (int i = 0; i < 40; i++) {
    auto result = store->append(generator.next(store->ns()));
    if (result) last = result.value();
  }
  ASSERT_FALSE(store->wait_durable(last));
  const Namespace before = store->ns();

  // The next checkpoint is generation 3: slot 1, superblock copy 1.
  const Geometry g = store->geometry();
  store::FaultInjectingStore& faulty = device.faulty;
  bool superblock_written = false, image_written = false;
  faulty.set_failure([&](IoKind kind, uint64_t offset, uint64_t) {
    const bool in_slot = offset >= g.checkpoint_offset[1] && offset < g.checkpoint_offset[1] + g.checkpoint_bytes;
    switch (cut) {
      case CutAt::image_write:
        if (kind == IoKind::write && in_slot) faulty.freeze();  // freeze() takes no lock
        return false;
      case CutAt::image_flush_fails:
        if (kind == IoKind::write && in_slot) image_written = true;
        return kind == IoKind::flush && image_written;
      case CutAt::superblock_write:
        if (kind == IoKind::write && offset == kSuperblockOffset[1]) faulty.freeze();
        return false;
      case CutAt::superblock_flush:
        if (kind == IoKind::write && offset == kSuperblockOffset[1]) superblock_written = true;
        if (kind == IoKind::flush && superblock_written) faulty.freeze();
        return false;
    }
    return false;
  });
  const std::error_code ec = store->checkpoint();
  EXPECT_EQ(ec, cut == CutAt::image_flush_fails ? errno_error(EIO) : std::error_code());
  // Whatever follows is lost with the power.
  for (int i = 0; i < 10; i++) (void)store->append(generator.next(store->ns()));
  store.reset();
  faulty.clear_failures();
  faulty.thaw();
  ASSERT_FALSE(faulty.lose_power(keep, seed));

  OpenReport report;
  store = device.open(&report);
  ASSERT_TRUE(store);
  EXPECT_TRUE(SameNamespace(store->ns(), before));
  // Only a superblock write that reached the medium makes the new generation current.
  if (cut == CutAt::superblock_flush && keep == 1.0) {
    EXPECT_EQ(report.generation, 3u);
  } else if (cut == CutAt::superblock_flush) {
    EXPECT_TRUE(report.generation == 2 || report.generation == 3) << report.generation;
  } else {
    EXPECT_EQ(report.generation, 2u);
  }
  EXPECT_FALSE(report.fell_back);
}

TEST(Crash, InterruptedCheckpointOpensThePreviousState) {
  uint64_t seed = 1;
  for (CutAt cut : {CutAt::image_write, CutAt::image_flush_fails, CutAt::superblock_write, CutAt::superblock_flush}) {
    for (double keep : {0.0, 0.5, 1.0}) interrupted_checkpoint(cut, keep, seed++);
  }
}

// ---- Damaged superblocks and checkpoints ----

// Three generations: {a} in generation 2 (slot 0), {a, b} in generation 3 (slot 1), and c in
// generation 3's journal.
class DamageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = device.open();
    create("a", *store);
    ASSERT_FALSE(store->checkpoint());
    with_a = store->ns();
    create("b", *store);
    ASSERT_FALSE(store->wait_durable(2));
    ASSERT_FALSE(store->checkpoint());
    create("c", *store);
    ASSERT_FALSE(store->wait_durable(3));
    with_abc = store->ns();
  }
  void create(const std::string& name, MetaStore& store) {
    ASSERT_TRUE(store.append(create_record(store.ns(), ROOT_INO, name, S_IFREG | 0644)));
  }
  bool mentions(const OpenReport& report, const std::string& text) {
    for (const OpenProblem& problem : report.problems) {
      if (problem.text.find(text) != std::string::npos) return true;
    }
    return false;
  }

  TestDevice device;
  Namespace with_a, with_abc;
};

TEST_F(DamageTest, IntactDeviceOpensTheNewestState) {
  OpenReport report;
  auto store = device.open(&report);
  EXPECT_TRUE(SameNamespace(store->ns(), with_abc));
  EXPECT_EQ(report.generation, 3u);
  EXPECT_FALSE(report.fell_back);
}

TEST_F(DamageTest, CorruptNewestSuperblockFallsBackToTheOther) {
  flip_byte(*device.memory, kSuperblockOffset[1] + superblock_field::kDeviceBytes);
  OpenReport report;
  auto store = device.open(&report);
  ASSERT_TRUE(store);
  EXPECT_TRUE(report.fell_back);
  EXPECT_EQ(report.superblock_used, 0);
  EXPECT_EQ(report.generation, 2u);
  EXPECT_TRUE(SameNamespace(store->ns(), with_a));
  EXPECT_TRUE(mentions(report, "superblock copy 1 at byte 4096: bad CRC32C")) << all_problems(report);
  EXPECT_NE(report.journal_stop_reason.find("epoch 3"), std::string::npos) << report.journal_stop_reason;

  // The fallen-back file system works, and its next checkpoint replaces the damaged copy.
  create("d", *store);
  ASSERT_FALSE(store->wait_durable(store->append(create_record(store->ns(), ROOT_INO, "e", S_IFREG)).value()));
  const Namespace expected = store->ns();
  store.reset();
  store = device.open(&report);
  EXPECT_TRUE(report.fell_back);
  EXPECT_TRUE(SameNamespace(store->ns(), expected));
  ASSERT_FALSE(store->checkpoint());
  store.reset();
  store = device.open(&report);
  EXPECT_FALSE(report.fell_back);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(report.superblock_used, 1);
  EXPECT_TRUE(SameNamespace(store->ns(), expected));
}

TEST_F(DamageTest, CorruptOlderSuperblockStillOpensTheNewest) {
  flip_byte(*device.memory, kSuperblockOffset[0] + superblock_field::kGeneration);
  OpenReport report;
  auto store = device.open(&report);
  ASSERT_TRUE(store);
  EXPECT_EQ(report.superblock_used, 1);
  EXPECT_TRUE(SameNamespace(store->ns(), with_abc));
  EXPECT_TRUE(mentions(report, "superblock copy 0 at byte 0"));
}

TEST_F(DamageTest, CorruptCheckpointFallsBackWithAProblemNamingIt) {
  const uint64_t slot1 = device.geometry.checkpoint_offset[1];
  flip_byte(*device.memory, slot1 + 100);
  OpenReport report;
  auto store = device.open(&report);
  ASSERT_TRUE(store);
  EXPECT_TRUE(report.fell_back);
  EXPECT_EQ(report.generation, 2u);
  EXPECT_TRUE(SameNamespace(store->ns(), with_a));
  EXPECT_TRUE(mentions(report, "checkpoint of generation 3 in slot 1 at byte " + std::to_string(slot1)));

  // The next checkpoint must neither overwrite the slot in use nor reuse generation 3, whose
  // journal records may still be on the device.
  create("e", *store);
  ASSERT_FALSE(store->checkpoint());
  const Namespace expected = store->ns();
  store.reset();
  store = device.open(&report);
  EXPECT_FALSE(report.fell_back);
  EXPECT_EQ(report.generation, 5u);
  EXPECT_TRUE(SameNamespace(store->ns(), expected));
}

TEST_F(DamageTest, BothCheckpointsCorruptRefusesToOpenAndSaysWhere) {
  flip_byte(*device.memory, device.geometry.checkpoint_offset[0] + 70);
  flip_byte(*device.memory, device.geometry.checkpoint_offset[1] + 70);
  auto store = MetaStore::open(device.faulty, {});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, errno_error(EINVAL));
  EXPECT_NE(store.error().message.find("slot 0"), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("slot 1"), std::string::npos) << store.error().message;
}

TEST_F(DamageTest, ReadErrorsRefuseWithEio) {
  device.faulty.set_failure([](IoKind kind, uint64_t, uint64_t) { return kind == IoKind::read; });
  auto store = MetaStore::open(device.faulty, {});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, errno_error(EIO));
  EXPECT_NE(store.error().message.find("read error"), std::string::npos) << store.error().message;
}

// ---- Random damage ----

// Fixes the CRCs that protect damaged fields, so that the decoders behind them see the damage.
void reseal(store::BlockStore& device) {
  for (uint64_t offset : kSuperblockOffset) {
    std::vector<std::byte> block = read_bytes(device, offset, kSuperblockBytes);
    const uint64_t ckpt_offset = load_u64(block.data() + superblock_field::kCheckpointOffset);
    const uint64_t ckpt_length = load_u64(block.data() + superblock_field::kCheckpointLength);
    if (ckpt_length <= (1 << 20) && ckpt_offset < (1 << 20)) {
      std::vector<std::byte> image = read_bytes(device, ckpt_offset, static_cast<size_t>(ckpt_length));
      store_u32(block.data() + superblock_field::kCheckpointCrc, crc32c(image.data(), image.size()));
    }
    store_u32(block.data() + superblock_field::kCrc, crc32c(block.data(), superblock_field::kCrc));
    ASSERT_FALSE(device.write(offset, block));
  }
}

TEST(Corruption, RandomByteFlipsInTheMetadataNeverCrashOpen) {
  // A device with both slots, both superblocks and a journal in use.
  TestDevice original;
  {
    auto store = original.open();
    RecordGenerator generator(77);
    for (int round = 0; round < 3; round++) {
      uint64_t last = 0;
      for (int i = 0; i < 120; i++) {
        auto result = store->append(generator.next(store->ns()));
        if (result) last = result.value();
      }
      ASSERT_FALSE(store->wait_durable(last));
      if (round < 2) {
        ASSERT_FALSE(store->checkpoint());
      }
    }
  }
  const Geometry g = original.geometry;
  const uint64_t metadata_end = g.journal_offset + g.journal_bytes;
  const std::vector<std::byte> image = read_bytes(*original.memory, 0, static_cast<size_t>(metadata_end));
  // Where damage matters: the superblocks' fields, the checkpoint images, the journal's records.
  const uint64_t checkpoint_used = load_u64(image.data() + superblock_field::kCheckpointLength);
  const uint64_t journal_used = 8 << 10;

  int opened = 0;
  for (uint64_t seed = 0; seed < 2000; seed++) {
    std::mt19937_64 rng(seed);
    auto memory = store::make_memory_store(kTestDeviceBytes);
    ASSERT_FALSE(memory->write(0, image));
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; f++) {
      uint64_t at = 0;
      switch (rng() % 4) {
        case 0: at = kSuperblockOffset[rng() % 2] + rng() % superblock_field::kUsedEnd; break;
        case 1: at = g.checkpoint_offset[rng() % 2] + rng() % checkpoint_used; break;
        case 2: at = g.journal_offset + rng() % journal_used; break;
        default: at = rng() % metadata_end; break;
      }
      flip_byte(*memory, at, static_cast<uint8_t>(1 + rng() % 255));
    }
    if (seed % 2 == 1) reseal(*memory);  // half the time, the damage gets past the CRCs

    OpenReport report;
    auto store = MetaStore::open(*memory, {}, &report);
    if (!store) {
      EXPECT_FALSE(store.error().message.empty());
      continue;
    }
    opened++;
    ASSERT_TRUE(Consistent(store.value()->ns())) << "seed " << seed;
    // A damaged but opened file system must still take records.
    if (seed % 10 == 0) {
      auto result = store.value()->append(create_record(store.value()->ns(), ROOT_INO, "after-damage", S_IFREG));
      if (result) {
        EXPECT_FALSE(store.value()->wait_durable(result.value()));
      }
    }
  }
  RecordProperty("opened", opened);
  EXPECT_GT(opened, 1000) << "most damage should be survivable through the second copies";
  EXPECT_LT(opened, 2000) << "some damage must be refused";
}

}  // namespace
}  // namespace vlunfs::meta
