// Journal appends and group commit (journal_writer.h).

#include "meta/journal_writer.h"

#include "meta/journal_record.h"

#include <algorithm>
#include <cerrno>

namespace vlunfs::meta {

JournalWriter::JournalWriter(store::BlockStore& device, uint64_t journal_offset, uint64_t journal_bytes)
    : device_(device), journal_offset_(journal_offset), journal_bytes_(journal_bytes) {}

void JournalWriter::start(uint64_t epoch, uint64_t next_seq, uint32_t chain, uint64_t end,
                          std::vector<std::byte> tail) {
  std::lock_guard lock(mu_);
  epoch_ = epoch;
  next_seq_ = next_seq;
  durable_seq_ = next_seq - 1;
  chain_ = chain;
  end_ = end;
  buffer_start_ = end / kMetaBlock * kMetaBlock;
  buffer_ = std::move(tail);
  buffer_.resize(end - buffer_start_);
}

bool JournalWriter::fits(size_t payload_bytes) const {
  std::lock_guard lock(mu_);
  return payload_bytes <= journal_bytes_ - end_ && kRecordHeaderBytes <= journal_bytes_ - end_ - payload_bytes;
}

bool JournalWriter::fits_empty(size_t payload_bytes) const {
  return payload_bytes <= journal_bytes_ && kRecordHeaderBytes <= journal_bytes_ - payload_bytes;
}

Result<uint64_t> JournalWriter::add(RecordType type, std::span<const std::byte> payload) {
  std::lock_guard lock(mu_);
  if (failed_) return errno_error(EIO);
  const uint64_t seq = next_seq_;
  const size_t at = buffer_.size();
  buffer_.resize(at + kRecordHeaderBytes + payload.size());
  chain_ = encode_record_header(buffer_.data() + at, chain_, type, payload, epoch_, seq);
  if (!payload.empty()) std::copy(payload.begin(), payload.end(), buffer_.begin() + at + kRecordHeaderBytes);
  end_ += kRecordHeaderBytes + payload.size();
  next_seq_++;
  return seq;
}

std::error_code JournalWriter::wait_durable(uint64_t seq) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (seq <= durable_seq_) return {};
    if (seq >= next_seq_) return errno_error(EINVAL);
    if (failed_) return errno_error(EIO);
    if (!busy_) break;
    idle_.wait(lock);
  }

  // This thread leads: it writes everything added so far, not just up to `seq`.
  busy_ = true;
  const uint64_t target_seq = next_seq_ - 1;
  const uint64_t target_end = end_;
  const uint64_t write_start = buffer_start_;
  const size_t used = static_cast<size_t>(target_end - buffer_start_);
  // Whole blocks: the tail block's bytes past the last record are written as zeros, which also
  // clears whatever an older epoch left there.
  std::vector<std::byte> blocks((used + kMetaBlock - 1) / kMetaBlock * kMetaBlock);
  std::copy(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(used), blocks.begin());
  lock.unlock();

  // add() may run during the I/O; it only appends to buffer_ past target_end.
  std::error_code ec = device_.write(journal_offset_ + write_start, blocks);
  if (!ec) ec = device_.flush();

  lock.lock();
  busy_ = false;
  if (ec) {
    failed_ = true;
    idle_.notify_all();
    return errno_error(EIO);
  }
  durable_seq_ = target_seq;
  const uint64_t new_start = target_end / kMetaBlock * kMetaBlock;
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(new_start - buffer_start_));
  buffer_start_ = new_start;
  idle_.notify_all();
  return {};
}

std::error_code JournalWriter::begin_checkpoint(uint64_t* last_seq) {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return !busy_; });
  if (failed_) return errno_error(EIO);
  busy_ = true;
  *last_seq = next_seq_ - 1;
  return {};
}

void JournalWriter::end_checkpoint_reset(uint64_t epoch, uint64_t first_seq, uint32_t seed) {
  std::lock_guard lock(mu_);
  epoch_ = epoch;
  chain_ = seed;
  next_seq_ = first_seq;
  durable_seq_ = first_seq - 1;
  end_ = 0;
  buffer_start_ = 0;
  buffer_.clear();
  busy_ = false;
  idle_.notify_all();
}

void JournalWriter::end_checkpoint_unchanged() {
  std::lock_guard lock(mu_);
  busy_ = false;
  idle_.notify_all();
}

void JournalWriter::end_checkpoint_failed() {
  std::lock_guard lock(mu_);
  failed_ = true;
  busy_ = false;
  idle_.notify_all();
}

bool JournalWriter::failed() const {
  std::lock_guard lock(mu_);
  return failed_;
}

double JournalWriter::fill() const {
  std::lock_guard lock(mu_);
  return static_cast<double>(end_) / static_cast<double>(journal_bytes_);
}

}  // namespace vlunfs::meta
