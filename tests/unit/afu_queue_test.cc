// Specifications of the SISLite queue protocol (spec §4.7): IOARRIN submission limited by
// cmd_room, RRQ completion with the toggle bit (pitfall 23), context reset, and the host end
// (HostQueue) under many threads, against the simulated AFU in both execution modes and against a
// scripted AFU that posts completions only when the test says so.
#include "afu_rig.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

namespace vlunfs::afu::testing {
namespace {

using namespace std::chrono_literals;
constexpr uint32_t kBlk = 4096;

// Writes and reads back `iterations` blocks per thread, each thread in its own LBA range, and
// checks every block.
void hammer(AfuRig& rig, unsigned threads, unsigned iterations) {
  std::vector<std::thread> workers;
  std::atomic<unsigned> failures{0};
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<std::byte> back(kBlk);
      for (unsigned i = 0; i < iterations; ++i) {
        uint64_t lba = t * 64 + i % 64;
        auto data = pattern(t * 100000 + i, 1, kBlk);
        if (rig.rw(0, true, lba, 1, data.data()).ioasc != 0) failures++;
        if (rig.rw(0, false, lba, 1, back.data()).ioasc != 0 || back != data) failures++;
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(failures.load(), 0u);
}

// A lost command leaves its thread waiting forever: fail loudly instead of hanging the run.
void hammer_with_deadline(AfuRig& rig, unsigned threads, unsigned iterations) {
  auto run = std::async(std::launch::async, [&] { hammer(rig, threads, iterations); });
  if (run.wait_for(60s) == std::future_status::timeout) {
    std::fprintf(stderr, "FATAL: commands never completed; intr_status 0x%llx\n",
                 static_cast<unsigned long long>(rig.afu.user_mmio(rig.ctxid).read64(SISL_HOST_INTR_STATUS)));
    std::_Exit(1);
  }
  run.get();
}

TEST(AfuQueue, RrqToggleSurvivesThousandsOfWrapsOfASmallRing) {
  AfuRig rig(AfuRigOptions{.rrq_entries = 4});
  rig.set_direct(0);
  hammer_with_deadline(rig, 1, 3000);
  EXPECT_EQ(rig.queue->completions(), 6000u);  // 1500 wraps
}

TEST(AfuQueue, AsyncAfuCompletesCommandsFromManyThreads) {
  AfuRig rig(AfuRigOptions{.afu = {.inline_execution = false}, .rrq_entries = 4});
  rig.set_direct(0);
  hammer_with_deadline(rig, 8, 300);
  EXPECT_EQ(rig.queue->completions(), 8u * 300 * 2);
  EXPECT_EQ(rig.afu.user_mmio(rig.ctxid).read64(SISL_HOST_INTR_STATUS), 0u);
}

TEST(AfuQueue, InlineAfuCompletesCommandsFromManyThreads) {
  AfuRig rig(AfuRigOptions{.rrq_entries = 8});
  rig.set_direct(0);
  hammer_with_deadline(rig, 8, 300);
  EXPECT_EQ(rig.queue->completions(), 8u * 300 * 2);
}

// A host queue with more RRQ slots than the AFU has command room must never ring IOARRIN when
// there is no room: an overrun drops the command and its thread would wait forever.
TEST(AfuQueue, HostNeverOverrunsASmallCmdRoomAsync) {
  AfuRig rig(AfuRigOptions{.afu = {.cmd_room = 2, .inline_execution = false}, .rrq_entries = 16});
  rig.set_direct(0);
  hammer_with_deadline(rig, 6, 1500);
  EXPECT_EQ(rig.afu.user_mmio(rig.ctxid).read64(SISL_HOST_INTR_STATUS) & SISL_ISTATUS_CMDROOM_OVERRUN, 0u);
}

TEST(AfuQueue, HostNeverOverrunsASmallCmdRoomInline) {
  AfuRig rig(AfuRigOptions{.afu = {.cmd_room = 1}, .rrq_entries = 16});
  rig.set_direct(0);
  hammer_with_deadline(rig, 4, 3000);
  EXPECT_EQ(rig.afu.user_mmio(rig.ctxid).read64(SISL_HOST_INTR_STATUS) & SISL_ISTATUS_CMDROOM_OVERRUN, 0u);
}

// The AFU end, driven by hand: a ring the test owns, IOARRIN written directly.
class RawContext {
 public:
  RawContext(AfuRig& rig, size_t entries) : rig_(rig), ring_(entries, 0), cmds_(new Command[32]) {
    MmioWindow& mmio = rig.afu.user_mmio(rig.ctxid);
    rig.queue.reset();  // the test is the host now
    mmio.write64(SISL_HOST_RRQ_START, reinterpret_cast<uint64_t>(&ring_.front()));
    mmio.write64(SISL_HOST_RRQ_END, reinterpret_cast<uint64_t>(&ring_.back()));
  }
  MmioWindow& mmio() { return rig_.afu.user_mmio(rig_.ctxid); }
  Command& cmd(int i) { return cmds_[i]; }
  // A one-block read of LBA i through handle 0.
  void submit_read(int i) {
    cmds_[i].rcb = sisl_ioarcb{};
    cmds_[i].rcb.req_flags = SISL_REQ_FLAGS_RES_HNDL;
    cmds_[i].rcb.data_ea = reinterpret_cast<uint64_t>(buf_[i % 4]);
    cmds_[i].rcb.data_len = kBlk;
    build_rw16(cmds_[i].rcb.cdb, false, static_cast<uint64_t>(i), 1);
    mmio().write64(SISL_HOST_IOARRIN, reinterpret_cast<uint64_t>(&cmds_[i].rcb));
  }
  uint64_t slot(size_t i) { return std::atomic_ref<uint64_t>(ring_[i]).load(std::memory_order_acquire); }
  uint64_t ea(int i) { return reinterpret_cast<uint64_t>(&cmds_[i].rcb); }
  // Spins until slot i holds a value with toggle t.
  uint64_t wait_slot(size_t i, uint64_t t) {
    for (;;) {
      uint64_t v = slot(i);
      if ((v & SISL_RESP_HANDLE_T_BIT) == t && v != 0) return v;
      std::this_thread::yield();
    }
  }

 private:
  AfuRig& rig_;
  std::vector<uint64_t> ring_;
  std::unique_ptr<Command[]> cmds_;
  alignas(16) std::byte buf_[4][kBlk];
};

TEST(AfuQueue, AfuPostsIoarcbAddressWithToggleThatFlipsOnEveryWrap) {
  AfuRig rig;
  rig.set_direct(0);
  RawContext raw(rig, 3);
  for (int i = 0; i < 9; ++i) {
    raw.submit_read(i);
    uint64_t expected_t = (i / 3) % 2 == 0 ? 1 : 0;  // first pass T=1 (pitfall 23), then 0, then 1
    EXPECT_EQ(raw.slot(i % 3), raw.ea(i) | expected_t) << "command " << i;
    EXPECT_EQ(raw.cmd(i).sa.ioasc, SISL_IOASC_GOOD_COMPLETION);
  }
}

TEST(AfuQueue, CmdRoomCountsAcceptedCommandsAndAnOverrunRaisesAnInterrupt) {
  AfuRig rig(AfuRigOptions{.afu = {.cmd_room = 3, .inline_execution = false}, .gated = true});
  rig.set_direct(0);
  RawContext raw(rig, 8);
  EXPECT_EQ(raw.mmio().read64(SISL_HOST_CMD_ROOM), 3u);
  rig.gate->close();
  for (int i = 0; i < 3; ++i) raw.submit_read(i);
  rig.gate->wait_for_waiters(1);
  EXPECT_EQ(raw.mmio().read64(SISL_HOST_CMD_ROOM), 0u);  // one running, two queued
  EXPECT_EQ(raw.mmio().read64(SISL_HOST_INTR_STATUS), 0u);
  raw.submit_read(3);  // no room: refused
  EXPECT_EQ(raw.mmio().read64(SISL_HOST_INTR_STATUS), SISL_ISTATUS_CMDROOM_OVERRUN);
  rig.gate->open();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(raw.wait_slot(i, 1), raw.ea(i) | 1);
  while (raw.mmio().read64(SISL_HOST_CMD_ROOM) != 3) std::this_thread::yield();
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(raw.slot(3), 0u);  // the refused command never completes
  raw.mmio().write64(SISL_HOST_INTR_CLEAR, SISL_ISTATUS_CMDROOM_OVERRUN);
  EXPECT_EQ(raw.mmio().read64(SISL_HOST_INTR_STATUS), 0u);
}

TEST(AfuQueue, MisalignedIoarcbAddressRaisesReadFault) {
  AfuRig rig;
  RawContext raw(rig, 4);
  raw.mmio().write64(SISL_HOST_IOARRIN, raw.ea(0) + 8);
  EXPECT_EQ(raw.mmio().read64(SISL_HOST_INTR_STATUS), SISL_ISTATUS_IOARCB_READ_FAULT);
  EXPECT_EQ(raw.mmio().read64(SISL_HOST_CMD_ROOM), 256u);
  EXPECT_EQ(raw.slot(0), 0u);
}

TEST(AfuQueue, ContextResetAbortsQueuedCommandsWithoutRrqEntries) {
  AfuRig rig(AfuRigOptions{.afu = {.cmd_room = 8, .inline_execution = false}, .gated = true});
  rig.set_direct(0);
  RawContext raw(rig, 8);
  rig.gate->close();
  for (int i = 0; i < 3; ++i) raw.submit_read(i);
  rig.gate->wait_for_waiters(1);  // command 0 runs, 1 and 2 wait in the AFU's queue
  EXPECT_EQ(raw.mmio().read64(SISL_HOST_CMD_ROOM), 5u);
  raw.mmio().write64(SISL_HOST_IOARRIN, SISL_IOARRIN_CTX_RST);
  EXPECT_EQ(raw.mmio().read64(SISL_HOST_IOARRIN) & SISL_IOARRIN_CTX_RST, 0u);  // reset done
  EXPECT_EQ(raw.mmio().read64(SISL_HOST_CMD_ROOM), 7u);
  rig.gate->open();
  EXPECT_EQ(raw.wait_slot(0, 1), raw.ea(0) | 1);
  while (raw.mmio().read64(SISL_HOST_CMD_ROOM) != 8) std::this_thread::yield();
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(raw.slot(1), 0u);
}

TEST(AfuQueue, HostQueueResetContextIsAcknowledgedAndTheQueueKeepsWorking) {
  AfuRig rig;
  rig.set_direct(0);
  EXPECT_TRUE(rig.queue->reset_context());
  hammer(rig, 1, 4);
}

TEST(AfuQueue, Rw16BuildsAUserIoarcb) {
  AfuRig rig;
  rig.set_virtual(5, {1});
  auto data = pattern(1, 2, kBlk);
  Command cmd;
  afu::rw16(*rig.queue, cmd, static_cast<uint16_t>(rig.ctxid), 5, true, 3, 2, kBlk, data.data());
  EXPECT_EQ(cmd.sa.ioasc, SISL_IOASC_GOOD_COMPLETION);
  EXPECT_EQ(cmd.rcb.ctx_id, rig.ctxid);
  EXPECT_EQ(cmd.rcb.req_flags, SISL_REQ_FLAGS_RES_HNDL | SISL_REQ_FLAGS_HOST_WRITE);
  EXPECT_EQ(cmd.rcb.res_hndl, 5u);
  EXPECT_EQ(cmd.rcb.data_len, 2 * kBlk);
  EXPECT_EQ(cmd.rcb.data_ea, reinterpret_cast<uint64_t>(data.data()));
  EXPECT_EQ(cmd.rcb.cdb[0], SCSI_WRITE_16);
  EXPECT_EQ(get_be64(cmd.rcb.cdb + 2), 3u);
  EXPECT_EQ(get_be32(cmd.rcb.cdb + 10), 2u);
  EXPECT_EQ(rig.read_store(16 + 3, 2), data);
}

// ---- the host end against a scripted AFU ----

// Records what the host programs and posts a completion only when post() is called.
class ScriptedAfu final : public MmioWindow {
 public:
  uint64_t read64(uint32_t offset) override {
    return offset == SISL_HOST_CMD_ROOM ? 64 : 0;
  }
  void write64(uint32_t offset, uint64_t value) override {
    std::lock_guard lock(mu);
    writes.push_back(offset);
    if (offset == SISL_HOST_RRQ_START) start = cur = value;
    if (offset == SISL_HOST_RRQ_END) end = value;
    if (offset == SISL_HOST_IOARRIN) submitted.push_back(value);
  }
  // Posts the next submitted command's completion, as the AFU does: entry = EA | T.
  void post() {
    std::lock_guard lock(mu);
    uint64_t ea = submitted.at(posted++);
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(cur)).store(ea | toggle, std::memory_order_release);
    cur += 8;
    if (cur > end) {
      cur = start;
      toggle ^= 1;
    }
  }
  size_t submitted_count() {
    std::lock_guard lock(mu);
    return submitted.size();
  }

  std::mutex mu;
  std::vector<uint32_t> writes;
  std::vector<uint64_t> submitted;
  size_t posted = 0;
  uint64_t start = 0, end = 0, cur = 0, toggle = 1;
};

TEST(HostQueue, ProgramsAZeroFilledRingStartBeforeEnd) {
  ScriptedAfu afu;
  {
    HostQueue q(afu, 4);
    ASSERT_GE(afu.writes.size(), 2u);
    EXPECT_EQ(afu.writes[0], SISL_HOST_RRQ_START);
    EXPECT_EQ(afu.writes[1], SISL_HOST_RRQ_END);
    EXPECT_EQ((afu.end - afu.start) / 8 + 1, 4u);  // both bounds inclusive
    for (uint64_t p = afu.start; p <= afu.end; p += 8) EXPECT_EQ(*reinterpret_cast<uint64_t*>(p), 0u);
  }
  EXPECT_EQ(afu.writes.back(), SISL_HOST_RRQ_START);  // unprogrammed again at the end
}

// Runs one command and reports whether execute() returned before the AFU posted it.
bool completes_only_when_posted(HostQueue& q, ScriptedAfu& afu, Command& cmd) {
  size_t before = afu.submitted_count();
  auto done = std::async(std::launch::async, [&] { q.execute(cmd); });
  while (afu.submitted_count() == before) std::this_thread::yield();
  bool early = done.wait_for(30ms) != std::future_status::timeout;
  afu.post();
  done.get();
  return !early;
}

TEST(HostQueue, ZeroFilledSlotsAreNotCompletionsBecauseTheFirstPassExpectsToggle1) {
  ScriptedAfu afu;
  HostQueue q(afu, 4);
  Command cmd;
  EXPECT_TRUE(completes_only_when_posted(q, afu, cmd));  // pitfall 23
  EXPECT_EQ(q.completions(), 1u);
}

TEST(HostQueue, StaleEntriesOfThePreviousPassAreNotCompletions) {
  ScriptedAfu afu;
  HostQueue q(afu, 4);
  std::vector<Command> cmds(10);
  for (size_t i = 0; i < cmds.size(); ++i) {
    // From the fifth command on, the slot still holds the previous pass's entry with the other T.
    EXPECT_TRUE(completes_only_when_posted(q, afu, cmds[i])) << "command " << i;
  }
  EXPECT_EQ(q.completions(), 10u);
}

TEST(HostQueue, CompletionsAreMatchedToTheirCommandsWhateverThreadDrains) {
  ScriptedAfu afu;
  HostQueue q(afu, 8);
  std::vector<Command> cmds(4);
  std::vector<std::future<void>> runs;
  for (auto& c : cmds) {
    size_t before = afu.submitted_count();
    runs.push_back(std::async(std::launch::async, [&] { q.execute(c); }));
    while (afu.submitted_count() == before) std::this_thread::yield();
  }
  // The AFU posts in submission order; whichever waiting thread drains an entry, it is the
  // command named in the entry that completes.
  for (size_t i = 0; i < cmds.size(); ++i) {
    afu.post();
    auto* done = reinterpret_cast<Command*>(afu.submitted[i]);
    while (!done->done.load()) std::this_thread::yield();
  }
  for (auto& r : runs) r.get();
  EXPECT_EQ(q.completions(), 4u);
}

}  // namespace
}  // namespace vlunfs::afu::testing
