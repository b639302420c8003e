// FlushGroup: concurrent device flushes share one, and each caller is covered by a flush that
// began after it asked.
#include "client/flush_group.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace vlunfs::client {
namespace {

using Clock = std::chrono::steady_clock;

TEST(FlushGroup, ConcurrentCallersShareFlushesAndEachIsCoveredByOneThatBeganAfterItAsked) {
  std::mutex mu;
  std::vector<std::pair<Clock::time_point, Clock::time_point>> flushes;  // begin, end
  FlushGroup group([&] {
    const auto begin = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard lock(mu);
    flushes.emplace_back(begin, Clock::now());
    return std::error_code{};
  });
  constexpr int kCallers = 8;
  std::vector<std::pair<Clock::time_point, Clock::time_point>> calls(kCallers);  // asked, returned
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int i = 0; i < kCallers; i++) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 5; round++) {
        const auto asked = Clock::now();
        if (group.flush()) errors++;
        const auto returned = Clock::now();
        if (round == 4) calls[i] = {asked, returned};
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(group.flushes_issued(), flushes.size());
  EXPECT_LT(flushes.size(), static_cast<size_t>(kCallers * 5)) << "no flush was shared";
  for (const auto& [asked, returned] : calls) {
    bool covered = false;
    for (const auto& [begin, end] : flushes) covered |= begin >= asked && end <= returned;
    EXPECT_TRUE(covered) << "a caller returned without a flush that began after it asked";
  }
}

TEST(FlushGroup, AFailedFlushCoversNobodyElse) {
  std::atomic<int> calls{0};
  std::atomic<bool> release{false};
  FlushGroup group([&] {
    const int n = ++calls;
    if (n == 1) {
      while (!release) std::this_thread::yield();
      return std::make_error_code(std::errc::io_error);
    }
    return std::error_code{};
  });
  std::error_code first;
  std::thread leader([&] { first = group.flush(); });
  while (calls.load() == 0) std::this_thread::yield();
  std::error_code second = std::make_error_code(std::errc::invalid_argument);
  std::thread waiter([&] { second = group.flush(); });  // arrives while the failing flush runs
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  release = true;
  leader.join();
  waiter.join();
  EXPECT_EQ(first, std::make_error_code(std::errc::io_error));
  EXPECT_FALSE(second) << "the waiter issues its own flush, which succeeds";
  EXPECT_EQ(calls.load(), 2);
}

TEST(FlushGroup, ACallerAloneIssuesItsOwnFlushEachTime) {
  int calls = 0;
  FlushGroup group([&] {
    calls++;
    return std::error_code{};
  });
  for (int i = 0; i < 3; i++) EXPECT_FALSE(group.flush());
  EXPECT_EQ(calls, 3);
}

}  // namespace
}  // namespace vlunfs::client
