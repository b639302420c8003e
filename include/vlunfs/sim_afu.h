// The software AFU: executes IOARCBs exactly as spec §4.10 orders the checks, walks the RHT/LXT
// that the master published in host memory, and moves data to/from the LUNs' stores.
#pragma once

#include "vlunfs/afu.h"
#include "vlunfs/store.h"

#include <memory>

namespace vlunfs::afu {

struct SimAfuOptions {
  unsigned cmd_room = 256;        // IOARCBs a context may have in flight (cmd_room register)
  uint64_t port_sel = 0x3;        // afu_port_sel: two ports, both up
  // Inline execution runs a command on the thread that rings IOARRIN (the fast path). Otherwise
  // a worker thread of the AFU executes commands asynchronously, as hardware would.
  bool inline_execution = true;
};

class SimAfu final : public Afu {
 public:
  explicit SimAfu(SimAfuOptions options = {});
  ~SimAfu() override;

  // Makes a physical LUN reachable through `port_mask` (what FC discovery would do).
  void add_lun(uint64_t lun_id, store::BlockStore& store, unsigned port_mask);
  // Changes afu_port_sel (e.g. 0 = every link down -> NO_CHANNELS).
  void set_port_sel(uint64_t mask);
  // Fault injection: the next `count` AFU SYNC commands time out (afu_rc TIMED_OUT).
  void inject_sync_failures(unsigned count);

  Result<int> start_context() override;
  void stop_context(int ctxid) override;
  MmioWindow& user_mmio(int ctxid) override;
  MmioWindow& ctrl_mmio(int ctxid) override;
  int master_ctxid() const override;
  void set_lun_table(unsigned port, unsigned index, uint64_t lun_id) override;
  uint64_t afu_port_sel() const override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace vlunfs::afu
