// The vLUN client alone (client/): a LunClient over the simulated AFU and a memory LUN, no
// metadata and no filesystem. What the filesystem relies on: a write that meets a read-only chunk
// is a typed WriteFault, a resize is all or nothing, AFU faults are errors with a reason.
#include "client/lun_client.h"
#include "client/simulated_afu.h"
#include "client/vlun.h"
#include "vlunfs/sislite.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace vlunfs::client {
namespace {

constexpr unsigned kChunkShift = 4;       // 16 blocks of 4 KiB: beyond the hardware, for tests
constexpr uint64_t kChunkBlocks = 1u << kChunkShift;
constexpr uint64_t kLunChunks = 16;

struct Rig {
  Rig() : lun_store(store::make_memory_store(kLunChunks * kChunkBlocks * 4096)) {
    auto backend = simulated_afu({}, &sim)(*lun_store);
    LunOptions o;
    o.chunk_shift = kChunkShift;
    o.log_error = [this](const std::string& m) { errors.push_back(m); };
    auto c = LunClient::open(std::move(backend).value(), o);
    EXPECT_TRUE(c) << (c ? "" : c.error().message);
    client = std::move(c).value();
  }
  std::unique_ptr<Vlun> vlun(uint64_t chunks) {
    auto v = client->create_vlun(7);
    EXPECT_TRUE(v);
    EXPECT_TRUE(v.value()->resize(chunks));
    return std::move(v).value();
  }

  std::unique_ptr<store::BlockStore> lun_store;  // outlives the client
  afu::SimAfu* sim = nullptr;
  std::vector<std::string> errors;
  std::unique_ptr<LunClient> client;
};

std::vector<std::byte> blocks(uint64_t n, unsigned seed) {
  std::vector<std::byte> v(n * 4096);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

TEST(ClientLun, TheZeroChunkIsReservedAndEveryOtherChunkCanBeHad) {
  Rig rig;
  EXPECT_EQ(rig.client->total_chunks(), kLunChunks - 1);
  EXPECT_EQ(rig.client->free_chunks(), kLunChunks - 1);
  EXPECT_TRUE(rig.client->maps_zero(rig.client->zero_entry()));
  EXPECT_FALSE(rig.client->zero_entry() & sisl::LXT_PERM_WRITE);
}

TEST(ClientVlun, AWriteThatMeetsAReadOnlyChunkIsAWriteFaultAfterTheBlocksBeforeIt) {
  Rig rig;
  auto v = rig.vlun(3);
  auto table = v->lxt().value();
  const uint64_t read_only = table[1] & ~sisl::LXT_PERM_WRITE;
  ASSERT_FALSE(v->remap(1, {&read_only, 1}));
  auto data = blocks(2 * kChunkBlocks, 1);
  auto w = v->write(0, 2 * kChunkBlocks, data.data());
  ASSERT_TRUE(w) << w.error().message();
  ASSERT_TRUE(w.value().has_value());
  EXPECT_EQ(w.value()->vlba, kChunkBlocks);
  std::vector<std::byte> back(kChunkBlocks * 4096);
  ASSERT_FALSE(v->read(0, kChunkBlocks, back.data()));
  EXPECT_EQ(std::memcmp(back.data(), data.data(), back.size()), 0);
  EXPECT_TRUE(rig.errors.empty());  // a fault is not an error: nothing logged

  // Writable again, the write from the fault on completes.
  ASSERT_FALSE(v->remap(1, {&table[1], 1}));
  auto rest = v->write(kChunkBlocks, kChunkBlocks, data.data() + back.size());
  ASSERT_TRUE(rest);
  EXPECT_FALSE(rest.value().has_value());
}

TEST(ClientVlun, AGrowThatCannotBeHadWholeIsEnospcAndChangesNothing) {
  Rig rig;
  auto v = rig.vlun(2);
  const uint64_t free_before = rig.client->free_chunks();
  auto r = v->resize(2 + free_before + 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errno_error(ENOSPC));
  EXPECT_EQ(v->chunks(), 2u);
  EXPECT_EQ(v->lxt().value().size(), 2u);
  EXPECT_EQ(rig.client->free_chunks(), free_before);
  EXPECT_TRUE(v->resize(2 + free_before));  // exactly what is free still fits
}

TEST(ClientVlun, AGrowWhoseSyncKeepsFailingIsEioAndGivesItsChunksBack) {
  Rig rig;
  auto v = rig.vlun(1);
  const uint64_t free_before = rig.client->free_chunks();
  rig.sim->inject_sync_failures(8);
  auto r = v->resize(5);
  rig.sim->inject_sync_failures(0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), errno_error(EIO));
  EXPECT_EQ(v->chunks(), 1u);
  EXPECT_EQ(v->lxt().value().size(), 1u);
  EXPECT_EQ(rig.client->free_chunks(), free_before);
  ASSERT_FALSE(rig.errors.empty());
  EXPECT_NE(rig.errors.front().find("VLUN_RESIZE"), std::string::npos) << rig.errors.front();
  EXPECT_TRUE(v->resize(5));
}

TEST(ClientVlun, EveryLinkDownIsEioWithTheIoasaLogged) {
  Rig rig;
  auto v = rig.vlun(1);
  auto data = blocks(1, 2);
  rig.sim->set_port_sel(0);
  EXPECT_EQ(v->read(0, 1, data.data()), errno_error(EIO));
  auto w = v->write(0, 1, data.data());
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error(), errno_error(EIO));
  ASSERT_EQ(rig.errors.size(), 2u);
  EXPECT_NE(rig.errors[0].find("afu_rc 0x20"), std::string::npos) << rig.errors[0];  // NO_CHANNELS
  rig.sim->set_port_sel(0x3);
  EXPECT_FALSE(v->read(0, 1, data.data()));
}

TEST(ClientVlun, ReleaseGivesTheChunksBackAndCloseKeepsThem) {
  Rig rig;
  const uint64_t free0 = rig.client->free_chunks();
  auto kept = rig.vlun(2);
  auto table = kept->lxt().value();
  kept.reset();  // checked in: the chunks stay owned (the file lives on in the metadata)
  EXPECT_EQ(rig.client->free_chunks(), free0 - 2);
  auto reopened = rig.client->open_vlun(8, table);
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened.value()->chunks(), 2u);
  ASSERT_FALSE(reopened.value()->release());
  EXPECT_EQ(rig.client->free_chunks(), free0);
}

}  // namespace
}  // namespace vlunfs::client
