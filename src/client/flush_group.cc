#include "client/flush_group.h"

namespace vlunfs::client {

std::error_code FlushGroup::flush() {
  std::unique_lock lock(mu_);
  const uint64_t ticket = next_ticket_++;
  while (busy_) {
    idle_.wait(lock);
    if (covered_ >= ticket) return {};
  }
  // Lead: this flush covers every ticket handed out so far (their writes completed before they
  // asked, and so before now).
  busy_ = true;
  const uint64_t target = next_ticket_ - 1;
  ++issued_;
  lock.unlock();
  std::error_code ec = flush_();
  lock.lock();
  busy_ = false;
  if (!ec && target > covered_) covered_ = target;
  idle_.notify_all();
  return ec;
}

uint64_t FlushGroup::flushes_issued() const {
  std::lock_guard lock(mu_);
  return issued_;
}

}  // namespace vlunfs::client
