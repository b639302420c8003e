#include "fs/metrics.h"

#include <bit>
#include <cmath>

namespace vlunfs::fs {

unsigned HistogramSnapshot::bucket_of(uint64_t ns) {
  if (ns == 0) return 0;
  const unsigned b = static_cast<unsigned>(std::bit_width(ns)) - 1;
  return b < kBuckets ? b : kBuckets - 1;
}

uint64_t HistogramSnapshot::percentile_ns(double q) const {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return 0;
  q = std::min(1.0, std::max(q, 0.0));
  // The rank of the sample asked for, 1-based: the q-th fraction of them, at least the first.
  const double rank = std::max(1.0, std::ceil(q * static_cast<double>(total)));
  uint64_t below = 0;
  for (unsigned b = 0; b < kBuckets; ++b) {
    if (counts[b] == 0) continue;
    if (static_cast<double>(below + counts[b]) >= rank) {
      const double lo = static_cast<double>(lower_bound_ns(b));
      const double hi = static_cast<double>(upper_bound_ns(b));
      const double within = (rank - static_cast<double>(below)) / static_cast<double>(counts[b]);
      return static_cast<uint64_t>(lo + (hi - lo) * within);
    }
    below += counts[b];
  }
  return upper_bound_ns(kBuckets - 1);
}

void HistogramSnapshot::add(const HistogramSnapshot& other) {
  for (unsigned b = 0; b < kBuckets; ++b) counts[b] += other.counts[b];
  count += other.count;
  sum_ns += other.sum_ns;
}

HistogramSnapshot LatencyHistogram::snapshot() const {
  HistogramSnapshot s;
  for (unsigned b = 0; b < HistogramSnapshot::kBuckets; ++b) {
    s.counts[b] = counts_[b].load(std::memory_order_relaxed);
    s.count += s.counts[b];
  }
  s.sum_ns = sum_ns_.load(std::memory_order_relaxed);
  return s;
}

const char* op_name(Op op) {
  switch (op) {
    case Op::read: return "read";
    case Op::write: return "write";
    case Op::fsync: return "fsync";
  }
  return "?";
}

void OpSnapshot::add(const OpSnapshot& other) {
  requests += other.requests;
  errors += other.errors;
  bytes += other.bytes;
  latency.add(other.latency);
}

OpSnapshot OpCounters::snapshot() const {
  OpSnapshot s;
  s.requests = requests.load(std::memory_order_relaxed);
  s.errors = errors.load(std::memory_order_relaxed);
  s.bytes = bytes.load(std::memory_order_relaxed);
  s.latency = latency.snapshot();
  return s;
}

void VlunMetricsSnapshot::add(const VlunMetricsSnapshot& other) {
  for (unsigned i = 0; i < kOpCount; ++i) ops[i].add(other.ops[i]);
  cow_breaks += other.cow_breaks;
}

VlunMetricsSnapshot VlunMetrics::snapshot() const {
  VlunMetricsSnapshot s;
  for (unsigned i = 0; i < kOpCount; ++i) s.ops[i] = ops_[i].snapshot();
  s.cow_breaks = cow_breaks_.load(std::memory_order_relaxed);
  return s;
}

ScopedOp::~ScopedOp() {
  const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
  counters_.requests.fetch_add(1, std::memory_order_relaxed);
  if (ok_) {
    counters_.bytes.fetch_add(bytes_, std::memory_order_relaxed);
  } else {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
  }
  counters_.latency.record(elapsed > 0 ? static_cast<uint64_t>(elapsed) : 0);
}

void PoolMetrics::retire(const VlunMetrics& file) {
  const VlunMetricsSnapshot s = file.snapshot();
  std::lock_guard lock(retired_mu_);
  retired_.add(s);
}

VlunMetricsSnapshot PoolMetrics::retired() const {
  std::lock_guard lock(retired_mu_);
  return retired_;
}

}  // namespace vlunfs::fs
