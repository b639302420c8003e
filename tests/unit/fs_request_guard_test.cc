// The guard every FUSE request runs under (fs/request_guard.h): no exception reaches libfuse.
#include "fs/request_guard.h"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace vlunfs::fs {
namespace {

TEST(RequestGuard, AHandlerThatReturnsIsZeroAndHasRun) {
  bool ran = false;
  EXPECT_EQ(run_guarded("getattr", [&] { ran = true; }), 0);
  EXPECT_TRUE(ran);
}

TEST(RequestGuard, AnAllocationFailureIsEnomem) {
  EXPECT_EQ(run_guarded("readdir", [] { throw std::bad_alloc(); }), ENOMEM);
}

TEST(RequestGuard, ABrokenInvariantIsEio) {
  std::map<uint64_t, int> vluns;
  EXPECT_EQ(run_guarded("ioctl", [&] { (void)vluns.at(42); }), EIO);  // std::out_of_range
  EXPECT_EQ(run_guarded("lookup", [] { throw std::length_error("name"); }), EIO);
  EXPECT_EQ(run_guarded("lookup", [] { throw std::string("not a std::exception"); }), EIO);
}

}  // namespace
}  // namespace vlunfs::fs
