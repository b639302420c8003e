// A simulated AFU driven by hand, without the vlun/ driver: the test plays the master and writes
// the RHT and LXTs itself (spec §4.4, §4.5), so that every field the AFU reads can be set to
// exactly the value a check needs.
#pragma once

#include "vlunfs/afu.h"
#include "vlunfs/sim_afu.h"
#include "vlunfs/sislite.h"
#include "vlunfs/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace vlunfs::afu::testing {

using namespace vlunfs::sisl;

inline constexpr uint64_t kLunId = 0x0001000000000000ULL;
inline constexpr unsigned kLunIndex = 7;  // slot of the LUN in the per-port LUN tables
inline constexpr unsigned kRhtEntries = 16;

struct AfuRigOptions {
  uint64_t lun_blocks = 64 * 16;  // 64 chunks of 16 blocks
  uint32_t blk_len = 4096;
  SimAfuOptions afu{};
  unsigned rrq_entries = 64;
  uint64_t ctx_cap = SISL_CTX_CAP_READ_CMD | SISL_CTX_CAP_WRITE_CMD;  // what the driver grants users
  bool gated = false;  // put a GateStore between the AFU and the LUN's memory
};

// A store whose I/Os wait at a gate while it is closed: holds a command inside the AFU for as
// long as a test needs.
class GateStore final : public store::BlockStore {
 public:
  explicit GateStore(store::BlockStore& base) : base_(base) {}
  void close() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits until `n` I/Os are held at the gate.
  void wait_for_waiters(int n) {
    while (waiting_.load() < n) std::this_thread::yield();
  }

  std::error_code read(uint64_t offset, std::span<std::byte> out) override {
    pass();
    auto ec = base_.read(offset, out);
    completed_++;
    return ec;
  }
  std::error_code write(uint64_t offset, std::span<const std::byte> data) override {
    pass();
    auto ec = base_.write(offset, data);
    completed_++;
    return ec;
  }
  // Reads and writes that went through the gate and finished.
  int completed() const { return completed_.load(); }
  std::error_code flush() override { return base_.flush(); }
  std::error_code discard(uint64_t offset, uint64_t length) override { return base_.discard(offset, length); }
  uint64_t size_bytes() const override { return base_.size_bytes(); }
  uint32_t block_size() const override { return base_.block_size(); }

 private:
  void pass() {
    std::unique_lock lock(mu_);
    waiting_++;
    cv_.wait(lock, [&] { return open_; });
    waiting_--;
  }

  store::BlockStore& base_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  std::atomic<int> waiting_{0};
  std::atomic<int> completed_{0};
};

// One user context with a hand-written RHT of kRhtEntries entries, and the master's queue.
class AfuRig {
 public:
  explicit AfuRig(AfuRigOptions o = {})
      : options(o),
        store(store::make_memory_store(o.lun_blocks * o.blk_len, o.blk_len)),
        gate(o.gated ? std::make_unique<GateStore>(*store) : nullptr),
        afu(o.afu),
        rht(new sisl_rht_entry[kRhtEntries]()) {
    afu.add_lun(kLunId, gate ? static_cast<store::BlockStore&>(*gate) : *store, 0x3);
    afu.set_lun_table(0, kLunIndex, kLunId);
    afu.set_lun_table(1, kLunIndex, kLunId);
    ctxid = afu.start_context().value();
    MmioWindow& ctrl = afu.ctrl_mmio(ctxid);
    (void)ctrl.read64(SISL_CTRL_MBOX_R);
    ctrl.write64(SISL_CTRL_CTX_CAP, o.ctx_cap);
    ctrl.write64(SISL_CTRL_RHT_START, reinterpret_cast<uint64_t>(rht.get()));
    ctrl.write64(SISL_CTRL_RHT_CNT_ID, (uint64_t{kRhtEntries} << 48) |
                                           (static_cast<uint64_t>(afu.master_ctxid()) << 32));
    queue = std::make_unique<HostQueue>(afu.user_mmio(ctxid), o.rrq_entries);
    master_queue = std::make_unique<HostQueue>(afu.user_mmio(afu.master_ctxid()), 16);
  }
  ~AfuRig() {
    queue.reset();
    master_queue.reset();
    afu.stop_context(ctxid);
  }

  // A format-0 entry over the given chunks, every LXT entry with the same perms and ports.
  uint64_t* set_virtual(unsigned handle, const std::vector<uint64_t>& auns, unsigned nmask = 4,
                        uint8_t perm = SISL_RHT_PERM_RW,
                        uint64_t lxt_perm = LXT_PERM_READ | LXT_PERM_WRITE, unsigned ports = 0x3) {
    auto lxt = std::make_unique<uint64_t[]>(auns.size() + 1);
    for (size_t i = 0; i < auns.size(); ++i) lxt[i] = make_lxt_entry(auns[i], kLunIndex, lxt_perm, ports);
    sisl_rht_entry& e = rht[handle];
    e.lxt_start = reinterpret_cast<uint64_t>(lxt.get());
    e.lxt_cnt = static_cast<uint32_t>(auns.size());
    e.fp = SISL_RHT_FP(SISL_RHT_FMT_VIRTUAL, perm);
    e.nmask = static_cast<uint8_t>(nmask);
    lxts.push_back(std::move(lxt));
    return lxts.back().get();
  }

  // A format-1 entry: the whole LUN, LBAs used unchanged.
  void set_direct(unsigned handle, uint64_t lun_id = kLunId, uint8_t perm = SISL_RHT_PERM_RW,
                  uint8_t port_sel = 0x1, uint8_t valid = SISL_RHT_VALID) {
    auto& f1 = reinterpret_cast<sisl_rht_entry_f1&>(rht[handle]);
    f1 = sisl_rht_entry_f1{};
    f1.lun_id = lun_id;
    f1.valid = valid;
    f1.fp = SISL_RHT_FP(SISL_RHT_FMT_DIRECT, perm);
    f1.port_sel = port_sel;
  }

  // A READ(16)/WRITE(16) on a resource handle; the IOASA tells how it ended.
  sisl_ioasa rw(unsigned handle, bool write, uint64_t vlba, uint32_t nblocks, void* data) {
    Command cmd;
    afu::rw16(*queue, cmd, static_cast<uint16_t>(ctxid), handle, write, vlba, nblocks, options.blk_len, data);
    return cmd.sa;
  }

  // Any IOARCB, as given, through the user context (or the master's queue).
  sisl_ioasa submit(const sisl_ioarcb& rcb, bool through_master = false) {
    Command cmd;
    cmd.rcb = rcb;
    (through_master ? *master_queue : *queue).execute(cmd);
    return cmd.sa;
  }

  std::vector<std::byte> read_store(uint64_t plba, uint64_t nblocks) {
    std::vector<std::byte> out(nblocks * options.blk_len);
    EXPECT_FALSE(store->read(plba * options.blk_len, out));
    return out;
  }

  AfuRigOptions options;
  std::unique_ptr<store::BlockStore> store;
  std::unique_ptr<GateStore> gate;
  SimAfu afu;
  int ctxid = -1;
  std::unique_ptr<sisl_rht_entry[]> rht;
  std::vector<std::unique_ptr<uint64_t[]>> lxts;
  std::unique_ptr<HostQueue> queue;
  std::unique_ptr<HostQueue> master_queue;
};

// Blocks whose every 8-byte word names (seed, block, word), so a block in the wrong place shows.
inline std::vector<std::byte> pattern(uint64_t seed, uint64_t nblocks, uint32_t blk_len) {
  std::vector<std::byte> out(nblocks * blk_len);
  for (uint64_t b = 0; b < nblocks; ++b) {
    for (uint32_t w = 0; w < blk_len / 8; ++w) {
      uint64_t v = (seed << 40) ^ (b << 16) ^ w ^ 0x5A5A000000000000ULL;
      std::memcpy(out.data() + b * blk_len + w * 8, &v, 8);
    }
  }
  return out;
}

inline sisl_ioarcb make_rcb(uint16_t flags, uint32_t res_hndl, const uint8_t (&cdb)[16], void* data,
                            uint32_t data_len) {
  sisl_ioarcb rcb{};
  rcb.req_flags = flags;
  rcb.res_hndl = res_hndl;
  rcb.data_ea = reinterpret_cast<uint64_t>(data);
  rcb.data_len = data_len;
  std::memcpy(rcb.cdb, cdb, 16);
  return rcb;
}

}  // namespace vlunfs::afu::testing
