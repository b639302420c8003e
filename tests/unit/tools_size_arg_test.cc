// The one size parser of every program (src/tools/size_arg.h).
#include "tools/size_arg.h"

#include <gtest/gtest.h>

namespace vlunfs::tools {
namespace {

constexpr uint64_t kKiB = 1024, kMiB = kKiB << 10, kGiB = kMiB << 10, kTiB = kGiB << 10;

uint64_t size_of(const std::string& text, uint64_t default_unit = 1) {
  auto size = parse_size(text, default_unit);
  EXPECT_TRUE(size) << "'" << text << "' refused: " << (size ? "" : size.error().message);
  return size ? size.value() : 0;
}

std::string refusal_of(const std::string& text) {
  auto size = parse_size(text);
  EXPECT_FALSE(size) << "'" << text << "' accepted as " << (size ? size.value() : 0);
  if (size) return "";
  EXPECT_EQ(size.error().value(), EINVAL);
  EXPECT_FALSE(size.error().message.empty()) << "'" << text << "' refused without a reason";
  return size.error().message;
}

TEST(SizeArg, BytesAndEveryUnitSpelling) {
  EXPECT_EQ(size_of("4096"), 4096u);
  EXPECT_EQ(size_of("4096B"), 4096u);
  EXPECT_EQ(size_of("10G"), 10 * kGiB);
  EXPECT_EQ(size_of("10GiB"), 10 * kGiB);
  EXPECT_EQ(size_of("10GB"), 10 * kGiB) << "powers of 1024, as mkfs.ext4 and truncate read them";
  EXPECT_EQ(size_of("10g"), 10 * kGiB);
  EXPECT_EQ(size_of("10 Gi"), 10 * kGiB);
  EXPECT_EQ(size_of("64K"), 64 * kKiB);
  EXPECT_EQ(size_of("3M"), 3 * kMiB);
  EXPECT_EQ(size_of("2T"), 2 * kTiB);
  EXPECT_EQ(size_of("1P"), kTiB << 10);
  EXPECT_EQ(size_of("1E"), kTiB << 20);
  EXPECT_EQ(size_of(" 8M "), 8 * kMiB);
  EXPECT_EQ(size_of("0"), 0u) << "zero is a size; a program that needs more says so";
  EXPECT_EQ(size_of("010"), 10u) << "decimal, never octal";
}

TEST(SizeArg, DecimalFractionsThatComeToWholeBytes) {
  EXPECT_EQ(size_of("1.5T"), kTiB + kTiB / 2);
  EXPECT_EQ(size_of("0.5G"), kGiB / 2);
  EXPECT_EQ(size_of("2.25M"), 2 * kMiB + kMiB / 4);
  EXPECT_EQ(size_of("1.0"), 1u);
  EXPECT_NE(refusal_of("1.3").find("not a whole number of bytes"), std::string::npos);
  EXPECT_NE(refusal_of("1.0000001K").find("not a whole number of bytes"), std::string::npos);
}

TEST(SizeArg, ABareNumberCountsTheDefaultUnit) {
  EXPECT_EQ(size_of("8", kMiB), 8 * kMiB);
  EXPECT_EQ(size_of("512K", kMiB), 512 * kKiB) << "a unit wins over the default";
  EXPECT_EQ(size_of("4096B", kMiB), 4096u);
}

TEST(SizeArg, NegativeIsRefusedAsNegative) {
  EXPECT_NE(refusal_of("-1").find("'-1' is negative"), std::string::npos);
  EXPECT_NE(refusal_of("-5G").find("negative"), std::string::npos);
  EXPECT_NE(refusal_of(" -1").find("negative"), std::string::npos);
}

TEST(SizeArg, GarbageIsRefusedWithAMessageThatShowsTheForm) {
  for (const char* text : {"abc", "G", "0x10", "1e3", "1,5G", "10 G B x", "1..5G", "+1", "5G5", "."}) {
    const std::string why = refusal_of(text);
    EXPECT_NE(why.find("is not a size"), std::string::npos) << text << ": " << why;
    EXPECT_NE(why.find("e.g. 64G"), std::string::npos) << text << ": " << why;
  }
  EXPECT_NE(refusal_of("").find("empty"), std::string::npos);
  EXPECT_NE(refusal_of("12Q").find("unknown unit 'Q'"), std::string::npos);
  EXPECT_NE(refusal_of("3 bytes").find("unknown unit 'bytes'"), std::string::npos);
}

TEST(SizeArg, SizesBeyond64BitsAreRefused) {
  EXPECT_EQ(size_of("18446744073709551615"), UINT64_MAX);
  EXPECT_NE(refusal_of("18446744073709551616").find("too large"), std::string::npos);
  EXPECT_NE(refusal_of("16E").find("too large"), std::string::npos);
  EXPECT_EQ(size_of("15.5E"), (kTiB << 20) / 2 * 31);
  EXPECT_NE(refusal_of("99999999999999999999999999T").find("too large"), std::string::npos);
}

TEST(SizeArg, HumanSize) {
  EXPECT_EQ(human_size(512), "512 B");
  EXPECT_EQ(human_size(3 * kMiB / 2), "1.5 MiB");
  EXPECT_EQ(human_size(64 * kGiB), "64.0 GiB");
}

}  // namespace
}  // namespace vlunfs::tools
