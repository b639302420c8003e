// The error value every layer returns (include/vlunfs/error.h): the errno a caller tests survives
// every hop, and the message composes what failed with where it happened.
#include "vlunfs/error.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <system_error>

namespace vlunfs {
namespace {

TEST(ErrorValue, BareCodeConvertsWithTheCodesOwnMessage) {
  Error e = errno_error(EIO);
  EXPECT_EQ(e.value(), EIO);
  EXPECT_EQ(e.code, std::errc::io_error);
  EXPECT_EQ(e.message, std::error_code(EIO, std::generic_category()).message());
}

TEST(ErrorValue, WithinPrefixesWhereAndKeepsTheErrno) {
  Error e = make_error(EINVAL, "CRC32C mismatch");
  Error outer = e.within("checkpoint slot 1").within("/dev/loop0");
  EXPECT_EQ(outer.message, "/dev/loop0: checkpoint slot 1: CRC32C mismatch");
  EXPECT_EQ(outer.value(), EINVAL);
  EXPECT_EQ(outer.code.category(), std::generic_category());
  EXPECT_EQ(e.message, "CRC32C mismatch");  // the original is left as it was
}

Error check_even(int n) {
  if (n % 2) return make_error(EINVAL, std::to_string(n) + " is odd");
  return {};
}

TEST(ErrorValue, AnEmptyErrorIsSuccessAsAnEmptyCodeIs) {
  EXPECT_FALSE(check_even(4));
  Error odd = check_even(3);
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd.value(), EINVAL);
  EXPECT_EQ(odd.message, "3 is odd");
}

Result<int, Error> parse_positive(int n) {
  if (n <= 0) return make_error(ERANGE, "count " + std::to_string(n) + ": must be positive");
  return n;
}

Result<int, Error> from_a_lower_layer(std::error_code ec) {
  if (ec) return ec;  // a code from below passes up as it is
  return 1;
}

TEST(ErrorValue, ResultCarriesValueOrError) {
  auto ok = parse_positive(3);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok.value(), 3);

  auto bad = parse_positive(-2);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().value(), ERANGE);
  EXPECT_EQ(bad.error().message, "count -2: must be positive");
}

TEST(ErrorValue, LowerLayerCodeBecomesAnErrorWithItsErrno) {
  auto r = from_a_lower_layer(errno_error(ENOSPC));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, std::errc::no_space_on_device);
  EXPECT_FALSE(r.error().message.empty());
}

TEST(ErrorValue, ValueOfAnErrorThrowsSystemErrorWithCodeAndMessage) {
  auto bad = parse_positive(0);
  try {
    (void)bad.value();
    FAIL() << "value() of an error did not throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ERANGE);
    EXPECT_NE(std::string(e.what()).find("count 0: must be positive"), std::string::npos);
  }
}

}  // namespace
}  // namespace vlunfs
