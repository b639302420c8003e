#pragma once
// Group commit for device flushes: concurrent fsyncs share one SYNCHRONIZE CACHE.
//
// A flush covers every write that completed before it was issued. A caller takes a ticket when it
// asks (its writes are complete by then); the flush that a leader starts after that ticket was
// taken covers it, so callers that arrive while a flush is in flight wait for the next one and
// share it instead of issuing one each. The journal's wait_durable does the same for metadata.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <system_error>

namespace vlunfs::client {

class FlushGroup {
 public:
  using Flush = std::function<std::error_code()>;
  explicit FlushGroup(Flush flush) : flush_(std::move(flush)) {}

  // Returns once a flush issued after this call began has succeeded, or with the error of the
  // flush this caller issued itself. A failed flush covers nobody else: the callers it would
  // have covered issue their own, so every caller sees an error from a flush that covered it.
  std::error_code flush();

  uint64_t flushes_issued() const;  // for tests and metrics

 private:
  Flush flush_;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  uint64_t next_ticket_ = 1;  // the ticket the next caller gets
  uint64_t covered_ = 0;      // every ticket up to this one is covered by a successful flush
  bool busy_ = false;
  uint64_t issued_ = 0;
};

}  // namespace vlunfs::client
