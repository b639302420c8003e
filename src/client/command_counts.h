// AFU commands of the data path counted by their IOASA afu_rc (spec §4.3), for the mount's
// metrics (`vlunctl stats`, GET /metrics). Counted on every READ(16)/WRITE(16), so the counters
// are relaxed atomics in per-thread shards: threads on different cores do not share a cache line.
#pragma once

#include <atomic>
#include <cstdint>

namespace vlunfs::client {

class AfuCommandCounts {
 public:
  static constexpr unsigned kShards = 8;

  void count(uint8_t afu_rc) { shards_[shard()].by_rc[afu_rc].fetch_add(1, std::memory_order_relaxed); }
  uint64_t total(uint8_t afu_rc) const {
    uint64_t sum = 0;
    for (const Shard& s : shards_) sum += s.by_rc[afu_rc].load(std::memory_order_relaxed);
    return sum;
  }

 private:
  struct alignas(64) Shard {
    std::atomic<uint64_t> by_rc[256] = {};
  };
  // A thread keeps the shard it was first given (round robin over the threads that count).
  static unsigned shard() {
    static std::atomic<unsigned> next{0};
    thread_local const unsigned mine = next.fetch_add(1, std::memory_order_relaxed) % kShards;
    return mine;
  }
  Shard shards_[kShards];
};

}  // namespace vlunfs::client
