// A store that fails chosen I/Os and can "lose power": every write not yet flushed is undone, in
// whole blocks, optionally keeping a random subset of them (a torn, block-atomic power cut). This is
// LevelDB's fault-injection model applied to a block device.
#pragma once

#include "vlunfs/store.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <vector>

namespace vlunfs::store {

enum class IoKind { read, write, flush, discard };

class FaultInjectingStore final : public BlockStore {
 public:
  explicit FaultInjectingStore(BlockStore& base);

  std::error_code read(uint64_t offset, std::span<std::byte> out) override;
  std::error_code write(uint64_t offset, std::span<const std::byte> data) override;
  std::error_code flush() override;
  std::error_code discard(uint64_t offset, uint64_t length) override;
  uint64_t size_bytes() const override { return base_.size_bytes(); }
  uint32_t block_size() const override { return base_.block_size(); }

  // Fails every I/O for which the predicate returns true, with EIO.
  void set_failure(std::function<bool(IoKind, uint64_t offset, uint64_t length)> predicate);
  // Fails the nth next I/O of this kind (0 = the very next one), once.
  void fail_nth(IoKind kind, uint64_t n);
  void clear_failures();

  // Undo every block written since the last successful flush. With keep_probability > 0 each
  // unflushed block independently survives with that probability (seeded, reproducible).
  std::error_code lose_power(double keep_probability = 0.0, uint64_t seed = 1);
  // While frozen, writes, discards and flushes are accepted and silently dropped ("the plug was
  // pulled"): nothing after the freeze reaches the base store.
  void freeze() { frozen_ = true; }
  void thaw() { frozen_ = false; }

  uint64_t unflushed_blocks() const;
  uint64_t io_count(IoKind kind) const { return counts_[static_cast<int>(kind)].load(); }

 private:
  std::error_code maybe_fail(IoKind kind, uint64_t offset, uint64_t length);
  std::error_code save_undo(uint64_t offset, uint64_t length);

  BlockStore& base_;
  std::atomic<bool> frozen_{false};
  std::atomic<uint64_t> counts_[4] = {};
  mutable std::mutex mu_;  // protects everything below and orders writes against undo capture
  std::function<bool(IoKind, uint64_t, uint64_t)> predicate_;
  std::map<int, uint64_t> fail_nth_;            // kind -> remaining count before failing
  std::map<uint64_t, std::vector<std::byte>> undo_;  // block number -> contents before first write
};

}  // namespace vlunfs::store
