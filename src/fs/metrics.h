// The mount's counters (`vlunctl stats`, GET /metrics): requests, bytes and latency by operation
// per vLUN, copy-on-write breaks, journal records and the time callers wait for them to be
// durable, AFU commands by afu_rc. The data path only increments relaxed atomics of its own
// file's VlunMetrics (no lock, no shared cache line between files); the pool's figures are summed
// when asked for, with the counts of removed files folded into PoolMetrics::retired so that the
// pool's counters never go backwards.
#pragma once

#include "client/command_counts.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

namespace vlunfs::fs {

// Latencies in power-of-two buckets of nanoseconds: bucket b counts [2^b, 2^(b+1)) ns (bucket 0
// also counts 0 ns); the last bucket counts everything from 2^(kBuckets-1) ns (9 minutes) up.
struct HistogramSnapshot {
  static constexpr unsigned kBuckets = 40;
  std::array<uint64_t, kBuckets> counts{};
  uint64_t count = 0;
  uint64_t sum_ns = 0;

  // The latency under which a fraction q (0 < q <= 1) of the samples fall, interpolated linearly
  // within the bucket that holds the q-th sample; 0 with no samples.
  uint64_t percentile_ns(double q) const;
  void add(const HistogramSnapshot& other);
  static unsigned bucket_of(uint64_t ns);
  static uint64_t lower_bound_ns(unsigned bucket) { return bucket == 0 ? 0 : uint64_t{1} << bucket; }
  static uint64_t upper_bound_ns(unsigned bucket) { return uint64_t{1} << (bucket + 1); }
};

class LatencyHistogram {
 public:
  void record(uint64_t ns) {
    counts_[HistogramSnapshot::bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  }
  HistogramSnapshot snapshot() const;

 private:
  std::array<std::atomic<uint64_t>, HistogramSnapshot::kBuckets> counts_{};
  std::atomic<uint64_t> sum_ns_{0};
};

enum class Op : unsigned { read, write, fsync };
constexpr unsigned kOpCount = 3;
const char* op_name(Op op);

struct OpSnapshot {
  uint64_t requests = 0, errors = 0, bytes = 0;
  HistogramSnapshot latency;
  void add(const OpSnapshot& other);
};

struct OpCounters {
  std::atomic<uint64_t> requests{0}, errors{0}, bytes{0};
  LatencyHistogram latency;
  OpSnapshot snapshot() const;
};

struct VlunMetricsSnapshot {
  std::array<OpSnapshot, kOpCount> ops;
  uint64_t cow_breaks = 0;  // shared chunks copied so that a write could go ahead (copy_on_write.cc)
  void add(const VlunMetricsSnapshot& other);
};

// One file's counters (a member of its FileVlun).
class VlunMetrics {
 public:
  OpCounters& op(Op o) { return ops_[static_cast<unsigned>(o)]; }
  void count_cow_break() { cow_breaks_.fetch_add(1, std::memory_order_relaxed); }
  VlunMetricsSnapshot snapshot() const;

 private:
  std::array<OpCounters, kOpCount> ops_;
  std::atomic<uint64_t> cow_breaks_{0};
};

// Times one request of the data path: counts it, its latency and (after done) its bytes; a
// request that never reaches done() counts as an error.
class ScopedOp {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ScopedOp(OpCounters& counters) : counters_(counters), start_(Clock::now()) {}
  ~ScopedOp();
  ScopedOp(const ScopedOp&) = delete;
  ScopedOp& operator=(const ScopedOp&) = delete;
  void done(uint64_t bytes) {
    bytes_ = bytes;
    ok_ = true;
  }

 private:
  OpCounters& counters_;
  Clock::time_point start_;
  uint64_t bytes_ = 0;
  bool ok_ = false;
};

// The pool's own counters.
class PoolMetrics {
 public:
  // A file goes away: its counts stay in the pool's.
  void retire(const VlunMetrics& file);
  VlunMetricsSnapshot retired() const;
  void count_journal_record() { journal_records_.fetch_add(1, std::memory_order_relaxed); }
  void record_journal_wait(uint64_t ns) { journal_wait_.record(ns); }
  uint64_t journal_records() const { return journal_records_.load(std::memory_order_relaxed); }
  HistogramSnapshot journal_wait() const { return journal_wait_.snapshot(); }
  client::AfuCommandCounts& afu_commands() { return afu_commands_; }
  const client::AfuCommandCounts& afu_commands() const { return afu_commands_; }

 private:
  mutable std::mutex retired_mu_;  // taken when a file goes and when a report is made, never on I/O
  VlunMetricsSnapshot retired_;
  std::atomic<uint64_t> journal_records_{0};
  LatencyHistogram journal_wait_;
  client::AfuCommandCounts afu_commands_;
};

// Everything counted, at one moment: the pool's totals (live files and removed ones) and each
// live file's.
struct MetricsReport {
  VlunMetricsSnapshot pool;
  std::vector<std::pair<uint64_t, VlunMetricsSnapshot>> vluns;  // by inode number
  uint64_t journal_records = 0;  // records appended to the metadata journal
  HistogramSnapshot journal_wait;  // how long callers waited for a record to be durable
  std::vector<std::pair<unsigned, uint64_t>> afu_commands;  // {afu_rc, commands}, those seen only
};

}  // namespace vlunfs::fs
