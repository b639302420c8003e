// Host side of the SISLite queue protocol (spec §4.7): IOARRIN or SQ submission with credits, RRQ
// completion with the toggle bit.
#include "vlunfs/afu.h"

#include <algorithm>
#include <thread>

namespace vlunfs::afu {

using namespace vlunfs::sisl;

namespace {

// Commands a queue may have outstanding: one per RRQ slot, and never more than the AFU accepts
// (cmd_room, read while nothing is in flight). Two threads that both read a cmd_room of 1 would
// otherwise both ring IOARRIN, and the AFU drops the second (CMDROOM overrun) for good.
// In SQ mode cmd_room does not apply: the ring's size bounds what is outstanding, one slot kept
// empty so that a full ring is not mistaken for an empty one (tail == head).
std::ptrdiff_t initial_credits(MmioWindow& mmio, unsigned rrq_entries, unsigned sq_entries) {
  if (sq_entries != HostQueue::kIoarrinMode) {
    return static_cast<std::ptrdiff_t>(std::clamp<uint64_t>(sq_entries - 1, 1, rrq_entries));
  }
  uint64_t room = mmio.read64(SISL_HOST_CMD_ROOM);
  return static_cast<std::ptrdiff_t>(std::clamp<uint64_t>(room, 1, rrq_entries));
}

uint64_t ea_of(const void* p) { return reinterpret_cast<uint64_t>(p); }

}  // namespace

HostQueue::HostQueue(MmioWindow& mmio, unsigned rrq_entries, unsigned sq_entries)
    : mmio_(mmio), rrq_(rrq_entries, 0),
      credits_(initial_credits(mmio, rrq_entries, sq_entries == kIoarrinMode ? 0 : std::max(sq_entries, 2u))) {
  // The ring is zero-filled and T starts at 1, so no empty slot looks complete (pitfall 23).
  // rrq_start must be written before rrq_end.
  mmio_.write64(SISL_HOST_RRQ_START, ea_of(&rrq_.front()));
  mmio_.write64(SISL_HOST_RRQ_END, ea_of(&rrq_.back()));
  if (sq_entries != kIoarrinMode) {
    // Spec §4.6: the SQ bounds are inclusive and written in the RRQ's order; head = tail = start.
    sq_.assign(std::max(sq_entries, 2u), sisl_ioarcb{});
    mmio_.write64(SISL_HOST_SQ_START, ea_of(&sq_.front()));
    mmio_.write64(SISL_HOST_SQ_END, ea_of(&sq_.back()));
  }
}

HostQueue::~HostQueue() {
  if (sq_mode()) {
    mmio_.write64(SISL_HOST_SQ_END, 0);
    mmio_.write64(SISL_HOST_SQ_START, 0);
  }
  mmio_.write64(SISL_HOST_RRQ_END, 0);
  mmio_.write64(SISL_HOST_RRQ_START, 0);
}

void HostQueue::drain_rrq() {
  std::lock_guard lock(rrq_mu_);
  for (;;) {
    uint64_t entry = std::atomic_ref<uint64_t>(rrq_[rrq_next_]).load(std::memory_order_acquire);
    if ((entry & SISL_RESP_HANDLE_T_BIT) != toggle_) break;
    // Pitfall 23: the entry is the IOARCB's EA in IOARRIN mode, the IOASA's in SQ mode; both lie
    // inside the Command.
    const uint64_t ea = entry & ~SISL_RESP_HANDLE_T_BIT;
    auto* cmd = reinterpret_cast<Command*>(sq_mode() ? ea - offsetof(Command, sa) : ea);
    if (++rrq_next_ == rrq_.size()) {
      rrq_next_ = 0;
      toggle_ ^= SISL_RESP_HANDLE_T_BIT;
    }
    completions_.fetch_add(1, std::memory_order_relaxed);
    credits_.release();
    cmd->done.store(true, std::memory_order_release);
  }
}

void HostQueue::execute(Command& cmd) { (void)execute(cmd, {}); }

void HostQueue::post(Command& cmd) {
  if (!sq_mode()) {
    mmio_.write64(SISL_HOST_IOARRIN, ea_of(&cmd.rcb));
    return;
  }
  // Spec §4.7 SQ mode: the IOARCB goes into the current slot with its IOASA's address at offset 56
  // (pitfall 23: no implicit IOARCB + 64 here), then sq_tail names the slot after it. The slot
  // copy is made visible before the tail store (the kernel's MMIO store orders them); the lock
  // keeps slots and tail writes in one order across threads.
  std::lock_guard lock(sq_mu_);
  sisl_ioarcb& slot = sq_[sq_next_];
  slot = cmd.rcb;
  slot.reserved = ea_of(&cmd.sa);
  if (++sq_next_ == sq_.size()) sq_next_ = 0;
  mmio_.write64(SISL_HOST_SQ_TAIL, ea_of(&sq_[sq_next_]));
}

bool HostQueue::execute(Command& cmd, const std::function<bool()>& idle) {
  cmd.done.store(false, std::memory_order_relaxed);
  credits_.acquire();
  // The AFU may refuse the doorbell when its command room is used up (CMDROOM overrun); ask it
  // first, as the driver does once its local credits run out. SQ mode has no cmd_room: the
  // credits already keep one slot of the ring free.
  for (unsigned spins = 0; !sq_mode() && mmio_.read64(SISL_HOST_CMD_ROOM) == 0; ++spins) {
    if (idle && spins >= 64 && !idle()) return false;
    std::this_thread::yield();
  }
  post(cmd);
  for (unsigned spins = 0; !cmd.done.load(std::memory_order_acquire); ++spins) {
    drain_rrq();
    if (cmd.done.load(std::memory_order_acquire)) break;
    if (spins < 64) {
      std::this_thread::yield();
    } else if (idle) {
      if (!idle()) return false;
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  return true;
}

bool HostQueue::reset_context() {
  const uint32_t reg = sq_mode() ? SISL_HOST_SQ_CTX_RESET : SISL_HOST_IOARRIN;  // spec §4.7
  mmio_.write64(reg, SISL_IOARRIN_CTX_RST);
  auto delay = std::chrono::microseconds(10);
  for (int attempt = 0; attempt < 10; ++attempt) {  // MC_ROOM_RETRY_CNT polls, doubling delay
    if ((mmio_.read64(reg) & SISL_IOARRIN_CTX_RST) == 0) return true;
    std::this_thread::sleep_for(delay);
    delay *= 2;
  }
  return false;
}

void rw16(HostQueue& queue, Command& cmd, uint16_t ctxid, uint32_t rsrc_handle, bool write,
          uint64_t vlba, uint32_t nblocks, uint32_t block_size, void* data) {
  cmd.rcb = sisl_ioarcb{};
  cmd.rcb.ctx_id = ctxid;
  cmd.rcb.req_flags = static_cast<uint16_t>(SISL_REQ_FLAGS_RES_HNDL | SISL_REQ_FLAGS_TIMEOUT_SECS |
                                            (write ? SISL_REQ_FLAGS_HOST_WRITE : SISL_REQ_FLAGS_HOST_READ));
  cmd.rcb.res_hndl = rsrc_handle;
  cmd.rcb.data_len = nblocks * block_size;
  cmd.rcb.data_ea = reinterpret_cast<uint64_t>(data);
  cmd.rcb.msi = 0;  // polled
  cmd.rcb.timeout = 30;
  build_rw16(cmd.rcb.cdb, write, vlba, nblocks);
  queue.execute(cmd);
}

std::error_code ioasa_to_error(const sisl_ioasa& sa) {
  if (sa.ioasc == SISL_IOASC_GOOD_COMPLETION) return {};
  switch (sa.rc.afu_rc) {
    case SISL_AFU_RC_RHT_RW_PERM:
    case SISL_AFU_RC_LXT_RW_PERM:
      return errno_error(EACCES);
    case SISL_AFU_RC_LXT_OUT_OF_BOUNDS:
    case SISL_AFU_RC_RHT_OUT_OF_BOUNDS:
    case SISL_AFU_RC_RHT_INVALID:
      return errno_error(EINVAL);
    case SISL_AFU_RC_NO_CHANNELS:
    case SISL_AFU_RC_OUT_OF_DATA_BUFS:
      return errno_error(EAGAIN);
    default:
      return errno_error(EIO);
  }
}

}  // namespace vlunfs::afu
