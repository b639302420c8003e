// SQ-mode submission (spec §4.6, §4.7, pitfall 23): when ATTACH returns CONTEXT_SQ_CMD_MODE the
// host copies each IOARCB into a ring in its own memory, names its IOASA at offset 56, advances
// sq_tail, and the RRQ returns IOASA addresses. The host transport (afu/host_queue.cc) against a
// scripted AFU, then the whole backend against the simulated kernel's SQ-mode AFU.
#include "afu/capi/kernel_vluns.h"
#include "capi_rig.h"

#include "vlunfs/afu.h"
#include "vlunfs/cxlflash_ioctl.h"
#include "vlunfs/sislite.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <optional>
#include <thread>

namespace vlunfs::afu::capi {
namespace {

using namespace std::chrono_literals;
using namespace vlunfs::sisl;
using test_rig::Blocks;
using test_rig::CapiRig;

// ---- the host end against a scripted SQ-mode AFU ----

// Records the registers the host programs; the test plays the AFU with fetch() and complete().
class ScriptedSqAfu final : public MmioWindow {
 public:
  uint64_t read64(uint32_t offset) override {
    (void)offset;  // cmd_room reads 0: an IOARRIN-mode host would wait for room forever
    return 0;      // and sq_ctx_reset reads back 0: a reset is acknowledged at once
  }
  void write64(uint32_t offset, uint64_t value) override {
    std::lock_guard lock(mu);
    writes.emplace_back(offset, value);
    if (offset == SISL_HOST_RRQ_START) rrq_start = rrq_cur = value;
    if (offset == SISL_HOST_RRQ_END) rrq_end = value;
    if (offset == SISL_HOST_SQ_START) sq_start = sq_head = sq_tail = value;
    if (offset == SISL_HOST_SQ_END) sq_end = value;
    if (offset == SISL_HOST_SQ_TAIL) sq_tail = value;
  }
  // The next queued IOARCB, as the AFU fetches it (nullopt when the ring is empty).
  std::optional<sisl_ioarcb> fetch() {
    std::lock_guard lock(mu);
    if (sq_head == sq_tail) return std::nullopt;
    sisl_ioarcb rcb = *reinterpret_cast<const sisl_ioarcb*>(sq_head);
    sq_head = sq_head == sq_end ? sq_start : sq_head + sizeof(sisl_ioarcb);
    return rcb;
  }
  // Posts an RRQ entry for a fetched IOARCB: its IOASA's EA with the toggle bit.
  void complete(const sisl_ioarcb& rcb) {
    std::lock_guard lock(mu);
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(rrq_cur)).store(rcb.reserved | toggle, std::memory_order_release);
    rrq_cur += 8;
    if (rrq_cur > rrq_end) {
      rrq_cur = rrq_start;
      toggle ^= 1;
    }
  }
  size_t written(uint32_t offset) {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (auto& [o, v] : writes) n += o == offset;
    return n;
  }

  std::mutex mu;
  std::vector<std::pair<uint32_t, uint64_t>> writes;
  uint64_t rrq_start = 0, rrq_end = 0, rrq_cur = 0, toggle = 1;
  uint64_t sq_start = 0, sq_end = 0, sq_head = 0, sq_tail = 0;
};

TEST(CapiSqMode, HostProgramsTheRingAfterTheRrqAndSubmitsWithoutIoarrin) {
  ScriptedSqAfu afu;
  {
    HostQueue q(afu, 8, 4);
    ASSERT_TRUE(q.sq_mode());
    ASSERT_EQ(afu.writes.size(), 4u);
    EXPECT_EQ(afu.writes[2].first, SISL_HOST_SQ_START);  // start before end, both inclusive
    EXPECT_EQ(afu.writes[3].first, SISL_HOST_SQ_END);
    EXPECT_EQ((afu.sq_end - afu.sq_start) / sizeof(sisl_ioarcb) + 1, 4u);
    Command cmd;
    cmd.rcb.ctx_id = 7;
    cmd.rcb.cdb[0] = SCSI_READ_16;
    auto done = std::async(std::launch::async, [&] { q.execute(cmd); });
    std::optional<sisl_ioarcb> fetched;
    while (!(fetched = afu.fetch())) std::this_thread::yield();
    // The slot is a copy of the IOARCB whose offset 56 names the command's own IOASA.
    EXPECT_EQ(fetched->ctx_id, 7);
    EXPECT_EQ(fetched->cdb[0], SCSI_READ_16);
    EXPECT_EQ(fetched->reserved, reinterpret_cast<uint64_t>(&cmd.sa));
    EXPECT_EQ(afu.sq_tail, afu.sq_start + sizeof(sisl_ioarcb));  // the slot after the IOARCB
    EXPECT_EQ(done.wait_for(20ms), std::future_status::timeout);  // not before its RRQ entry
    afu.complete(*fetched);
    done.get();
    EXPECT_EQ(afu.written(SISL_HOST_IOARRIN), 0u);
    EXPECT_EQ(q.completions(), 1u);
  }
  EXPECT_EQ(afu.writes.back().first, SISL_HOST_RRQ_START);  // everything unprogrammed at the end
  EXPECT_GE(afu.written(SISL_HOST_SQ_START), 2u);
}

TEST(CapiSqMode, RrqEntriesNamingIoasasCompleteTheirOwnCommandsInAnyOrder) {
  ScriptedSqAfu afu;
  HostQueue q(afu, 8, 8);
  Command a, b;
  a.rcb.ctx_id = 1;
  b.rcb.ctx_id = 2;
  auto run_a = std::async(std::launch::async, [&] { q.execute(a); });
  auto run_b = std::async(std::launch::async, [&] { q.execute(b); });
  std::vector<sisl_ioarcb> fetched;
  while (fetched.size() < 2) {
    if (auto rcb = afu.fetch()) fetched.push_back(*rcb);
    std::this_thread::yield();
  }
  const sisl_ioarcb& second = fetched[1];
  Command& second_cmd = second.ctx_id == 1 ? a : b;
  std::future<void>& second_run = second.ctx_id == 1 ? run_a : run_b;
  std::future<void>& first_run = second.ctx_id == 1 ? run_b : run_a;
  second_cmd.sa.rc.afu_rc = SISL_AFU_RC_NO_CHANNELS;  // the AFU stores the IOASA, then posts
  afu.complete(second);
  second_run.get();
  EXPECT_EQ(first_run.wait_for(20ms), std::future_status::timeout);
  afu.complete(fetched[0]);
  first_run.get();
  EXPECT_EQ(second_cmd.sa.rc.afu_rc, SISL_AFU_RC_NO_CHANNELS);
  EXPECT_EQ(q.completions(), 2u);
}

TEST(CapiSqMode, ContextResetGoesToSqCtxResetNotIoarrin) {
  ScriptedSqAfu afu;
  HostQueue q(afu, 8, 4);
  EXPECT_TRUE(q.reset_context());  // reads back 0: acknowledged
  EXPECT_EQ(afu.written(SISL_HOST_SQ_CTX_RESET), 1u);
  EXPECT_EQ(afu.written(SISL_HOST_IOARRIN), 0u);
}

// ---- the backend against the simulated kernel's SQ-mode AFU ----

SimulatedKernelOptions sq_kernel() {
  SimulatedKernelOptions o;
  o.sq_mode = true;
  return o;
}

TEST(CapiSqMode, AttachInSqModeMovesDataThroughTheSq) {
  CapiRig rig(sq_kernel());
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  EXPECT_TRUE(lun->sq_mode());
  Blocks out(8, 0x3C), in(8);
  ASSERT_FALSE(lun->write_blocks(200, 8, out.data()));
  ASSERT_FALSE(lun->read_blocks(200, 8, in.data()));
  EXPECT_EQ(std::memcmp(out.data(), in.data(), 8 * 4096), 0);
  std::vector<std::byte> raw(4096);
  ASSERT_FALSE(rig.lun_store->read(207 * 4096, raw));
  EXPECT_EQ(raw[0], std::byte{0x3C});
  const auto& c = rig.kernel->counters();
  EXPECT_EQ(c.doorbells, 0u);  // nothing through IOARRIN
  EXPECT_EQ(c.sq_fetches, 2u);
  EXPECT_EQ(c.sq_faults, 0u);
  EXPECT_EQ(c.sq_overruns, 0u);
  lun.reset();
  EXPECT_EQ(rig.kernel->counters().open_contexts, 0u);
}

TEST(CapiSqMode, SqWrapsAroundManyTimes) {
  CapiRig rig(sq_kernel());
  DirectLunOptions o;
  o.sq_entries = 3;  // the tail wraps every third command
  o.rrq_entries = 5;
  auto lun = rig.open(o);
  ASSERT_TRUE(lun);
  for (unsigned i = 0; i < 40; ++i) {
    Blocks out(1, static_cast<uint8_t>(i + 1)), in(1);
    ASSERT_FALSE(lun->write_blocks(i, 1, out.data())) << i;
    ASSERT_FALSE(lun->read_blocks(i, 1, in.data())) << i;
    ASSERT_EQ(in.at(4095), static_cast<uint8_t>(i + 1));
  }
  EXPECT_EQ(rig.kernel->counters().sq_fetches, 80u);
  EXPECT_EQ(rig.kernel->counters().sq_faults, 0u);
  EXPECT_EQ(rig.kernel->counters().sq_overruns, 0u);
}

TEST(CapiSqMode, FullSqHoldsSubmittersBackUntilTheAfuFetches) {
  CapiRig rig(sq_kernel());
  DirectLunOptions o;
  o.sq_entries = 4;  // at most 3 queued: a fourth would make tail == head
  auto lun = rig.open(o);
  ASSERT_TRUE(lun);
  constexpr unsigned kThreads = 6;
  for (unsigned i = 0; i < kThreads; ++i) {
    Blocks b(1, static_cast<uint8_t>(0x40 + i));
    ASSERT_FALSE(lun->write_blocks(i * 3, 1, b.data()));
  }
  const uint64_t fetched_before = rig.kernel->counters().sq_fetches;
  rig.kernel->stall_sq(true);
  std::atomic<unsigned> finished{0};
  std::vector<uint8_t> seen(kThreads);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Blocks b(1);
      EXPECT_FALSE(lun->read_blocks(i * 3, 1, b.data()));
      seen[i] = b.at(0);
      finished++;
    });
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(finished, 0u);
  EXPECT_EQ(rig.kernel->sq_queued(), 3u);  // the ring is full; the other submitters wait
  EXPECT_EQ(rig.kernel->counters().sq_overruns, 0u);
  rig.kernel->stall_sq(false);
  for (auto& t : threads) t.join();
  for (unsigned i = 0; i < kThreads; ++i) EXPECT_EQ(seen[i], 0x40 + i);
  EXPECT_EQ(rig.kernel->counters().sq_fetches, fetched_before + kThreads);
  EXPECT_EQ(rig.kernel->counters().sq_overruns, 0u);
  EXPECT_EQ(rig.kernel->sq_queued(), 0u);
}

TEST(CapiSqMode, CompletionsOutOfOrderComeThroughTheRrq) {
  CapiRig rig(sq_kernel());
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  test_rig::expect_reversed_completions_reach_their_commands(rig, *lun, 0x20);
  EXPECT_EQ(rig.kernel->counters().doorbells, 0u);
}

TEST(CapiSqMode, AfuErrorsReachTheIoasaTheHostNamed) {
  CapiRig rig(sq_kernel());
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  Blocks b(1, 9);
  rig.kernel->fail_commands(1, SISL_AFU_RC_RHT_RW_PERM);
  EXPECT_EQ(lun->write_blocks(0, 1, b.data()).value(), EACCES);
  EXPECT_TRUE(rig.logged("afu_rc 0x05"));
  rig.kernel->fail_commands(2, SISL_AFU_RC_NO_CHANNELS);  // transient: requeued, then done
  EXPECT_FALSE(lun->write_blocks(0, 1, b.data()));
  EXPECT_EQ(lun->stats().requeues, 2u);
  rig.kernel->link_down(3);
  EXPECT_FALSE(lun->read_blocks(0, 1, b.data()));
  EXPECT_EQ(b.at(0), 9);
  EXPECT_EQ(lun->stats().requeues, 5u);
}

TEST(CapiSqMode, AnErrorTheAfuFindsItselfComesBackInSqMode) {
  constexpr uint64_t kChunk = uint64_t{256} << 20;
  CapiRig rig(sq_kernel(), 4 * kChunk);
  std::string why;
  auto vluns = KernelVluns::open(*rig.kernel, rig.device, {}, &why);
  ASSERT_TRUE(vluns) << why;
  auto h = vluns.value()->create(kChunk);
  ASSERT_TRUE(h);
  Blocks b(1);
  // One block past the vLUN's only chunk: the AFU's LXT check (afu_rc 0x13, spec §4.10).
  EXPECT_EQ(vluns.value()->read(h.value(), kChunk / 4096, 1, b.data()).value(), EINVAL);
  EXPECT_FALSE(vluns.value()->read(h.value(), 0, 1, b.data()));
  EXPECT_EQ(rig.kernel->counters().doorbells, 0u);
}

TEST(CapiSqMode, AdapterResetIsRecoveredAndStaysInSqMode) {
  CapiRig rig(sq_kernel());
  auto lun = rig.open();
  ASSERT_TRUE(lun);
  Blocks out(1, 0x77), in(1);
  ASSERT_FALSE(lun->write_blocks(5, 1, out.data()));
  rig.kernel->reset_adapter();
  ASSERT_FALSE(lun->read_blocks(5, 1, in.data()));
  EXPECT_EQ(in.at(0), 0x77);
  EXPECT_EQ(lun->stats().recoveries, 1u);
  EXPECT_TRUE(lun->sq_mode());
  EXPECT_EQ(rig.kernel->counters().doorbells, 0u);
}

TEST(CapiSqMode, AnSqModeAfuRefusesIoarcbsRungThroughIoarrin) {
  // The simulator's rule, so that a host that ignores the SQ flag fails instead of passing.
  CapiRig rig(sq_kernel());
  int fd = rig.kernel->open(rig.device.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  dk_cxlflash_attach a{};
  a.hdr.flags = O_RDWR;
  ASSERT_EQ(rig.kernel->ioctl(fd, DK_CXLFLASH_ATTACH, &a), 0);
  ASSERT_TRUE(a.hdr.return_flags & DK_CXLFLASH_CONTEXT_SQ_CMD_MODE);
  void* base = rig.kernel->mmap(SISL_HOST_MMIO_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, static_cast<int>(a.adap_fd), 0);
  ASSERT_NE(base, MAP_FAILED);
  {
    MappedWindow window(*rig.kernel, base);
    HostQueue ioarrin_queue(window, 8);  // IOARRIN mode against an SQ-mode AFU
    Command cmd;
    std::vector<uint8_t> data(4096 + 16);
    void* aligned = data.data() + (16 - reinterpret_cast<uintptr_t>(data.data()) % 16) % 16;
    rw16(ioarrin_queue, cmd, static_cast<uint16_t>(a.context_id), 0, false, 0, 1, 4096, aligned);
    EXPECT_EQ(cmd.sa.rc.afu_rc, SISL_AFU_RC_CAP_VIOLATION);
  }
  rig.kernel->munmap(base, SISL_HOST_MMIO_SIZE);
  dk_cxlflash_detach d{};
  d.context_id = a.context_id;
  EXPECT_EQ(rig.kernel->ioctl(fd, DK_CXLFLASH_DETACH, &d), 0);
  rig.kernel->close(static_cast<int>(a.adap_fd));
  rig.kernel->close(fd);
}

}  // namespace
}  // namespace vlunfs::afu::capi
