// CRC32C: the checksum of every on-disk structure must be the standard Castagnoli CRC, so that
// other tools (and other implementations of the format) compute the same values.

#include "meta/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace vlunfs {
namespace {

TEST(Crc32c, MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
}

TEST(Crc32c, MatchesKnownVectorsOfZerosAndOnes) {
  // RFC 3720 (iSCSI) appendix B.4 test vectors.
  std::vector<unsigned char> zeros(32, 0x00), ones(32, 0xff), ascending(32);
  for (int i = 0; i < 32; i++) ascending[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(crc32c(ascending.data(), ascending.size()), 0x46DD794Eu);
}

TEST(Crc32c, SeedContinuesACrcAcrossPieces) {
  const char* text = "123456789";
  for (size_t split = 0; split <= 9; split++) {
    EXPECT_EQ(crc32c(text + split, 9 - split, crc32c(text, split)), 0xE3069283u) << split;
  }
}

TEST(Crc32c, EmptyInputReturnsTheSeed) {
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  EXPECT_EQ(crc32c("", 0, 0x12345678), 0x12345678u);
}

}  // namespace
}  // namespace vlunfs
