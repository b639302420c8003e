// CRC32C (Castagnoli), the checksum of every vlunfs on-disk structure (design.md decision 3).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vlunfs {

// The standard CRC32C of data[0, n): crc32c("123456789", 9) == 0xE3069283. `seed` is the CRC of
// the bytes before these, so crc32c(b, nb, crc32c(a, na)) is the CRC of a followed by b.
uint32_t crc32c(const void* data, size_t n, uint32_t seed = 0);

}  // namespace vlunfs
