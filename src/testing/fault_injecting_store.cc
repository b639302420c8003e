// Crash and I/O-error injection over any store, in the spirit of LevelDB's fault_injection_test:
// remember what every unflushed block held before it was first changed, and on a simulated power
// cut put (some of) those contents back.

#include "testing/fault_injecting_store.h"

#include <algorithm>
#include <cerrno>

namespace vlunfs::store {

FaultInjectingStore::FaultInjectingStore(BlockStore& base) : base_(base) {}

std::error_code FaultInjectingStore::read(uint64_t offset, std::span<std::byte> out) {
  counts_[static_cast<int>(IoKind::read)]++;
  {
    std::lock_guard lock(mu_);
    if (auto ec = maybe_fail(IoKind::read, offset, out.size())) return ec;
  }
  // Outside mu_: reads change nothing that the undo log tracks, and the base is thread-safe.
  return base_.read(offset, out);
}

std::error_code FaultInjectingStore::write(uint64_t offset, std::span<const std::byte> data) {
  counts_[static_cast<int>(IoKind::write)]++;
  std::lock_guard lock(mu_);
  // Injected failures come before the freeze check, so that fail_nth counts the same calls as
  // io_count does, frozen or not.
  if (auto ec = maybe_fail(IoKind::write, offset, data.size())) return ec;
  if (frozen_) return {};
  if (auto ec = save_undo(offset, data.size())) return ec;
  return base_.write(offset, data);
}

std::error_code FaultInjectingStore::flush() {
  counts_[static_cast<int>(IoKind::flush)]++;
  std::lock_guard lock(mu_);
  if (auto ec = maybe_fail(IoKind::flush, 0, 0)) return ec;
  if (frozen_) return {};
  // A failed flush promises nothing, so every block stays undoable.
  if (auto ec = base_.flush()) return ec;
  undo_.clear();
  return {};
}

std::error_code FaultInjectingStore::discard(uint64_t offset, uint64_t length) {
  counts_[static_cast<int>(IoKind::discard)]++;
  std::lock_guard lock(mu_);
  if (auto ec = maybe_fail(IoKind::discard, offset, length)) return ec;
  if (frozen_) return {};
  if (auto ec = save_undo(offset, length)) return ec;
  return base_.discard(offset, length);
}

void FaultInjectingStore::set_failure(
    std::function<bool(IoKind, uint64_t offset, uint64_t length)> predicate) {
  std::lock_guard lock(mu_);
  predicate_ = std::move(predicate);
}

void FaultInjectingStore::fail_nth(IoKind kind, uint64_t n) {
  std::lock_guard lock(mu_);
  fail_nth_[static_cast<int>(kind)] = n;
}

void FaultInjectingStore::clear_failures() {
  std::lock_guard lock(mu_);
  predicate_ = nullptr;
  fail_nth_.clear();
}

std::error_code FaultInjectingStore::lose_power(double keep_probability, uint64_t seed) {
  std::lock_guard lock(mu_);
  // The map is ordered by block number, so one seed always tears the same blocks.
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution keep(std::clamp(keep_probability, 0.0, 1.0));
  std::error_code first_error;
  for (const auto& [block, contents] : undo_) {
    if (keep(rng)) continue;
    // Straight to the base: the power cut is not an I/O of the store under test, so it is neither
    // counted, failed nor dropped by a freeze.
    auto ec = base_.write(block * base_.block_size(), contents);
    if (ec && !first_error) first_error = ec;
  }
  undo_.clear();
  auto ec = base_.flush();
  return first_error ? first_error : ec;
}

uint64_t FaultInjectingStore::unflushed_blocks() const {
  std::lock_guard lock(mu_);
  return undo_.size();
}

// Requires mu_. The predicate is called with mu_ held, so it must not call back into this store.
std::error_code FaultInjectingStore::maybe_fail(IoKind kind, uint64_t offset, uint64_t length) {
  // Counted down on every call of the kind, including calls the predicate fails, so that "the nth
  // next I/O" means the same thing whatever else is injected.
  auto it = fail_nth_.find(static_cast<int>(kind));
  if (it != fail_nth_.end()) {
    if (it->second == 0) {
      fail_nth_.erase(it);
      return errno_error(EIO);
    }
    it->second--;
  }
  if (predicate_ && predicate_(kind, offset, length)) return errno_error(EIO);
  return {};
}

// Requires mu_. Saves the current contents of every block in the range that has not been saved
// since the last flush; the first save is the one that matters, because it is what the medium
// held at the last flush.
std::error_code FaultInjectingStore::save_undo(uint64_t offset, uint64_t length) {
  const uint64_t size = base_.size_bytes();
  // Checked here, not left to the base, because the capture below would otherwise read outside it.
  if (offset > size || length > size - offset) return errno_error(EINVAL);
  if (length == 0) return {};
  const uint64_t block_size = base_.block_size();
  const uint64_t last = (offset + length - 1) / block_size;
  for (uint64_t block = offset / block_size; block <= last; block++) {
    if (undo_.contains(block)) continue;
    const uint64_t begin = block * block_size;
    // The last block of a store whose size is not a multiple of the block size is short.
    std::vector<std::byte> contents(static_cast<size_t>(std::min(block_size, size - begin)));
    if (auto ec = base_.read(begin, contents)) return ec;
    undo_.emplace(block, std::move(contents));
  }
  return {};
}

}  // namespace vlunfs::store
