// CRC32C through ISA-L, which picks the fastest implementation the CPU supports at run time.

#include "meta/crc32c.h"

#include <isa-l/crc.h>

#include <algorithm>
#include <climits>

namespace vlunfs {

uint32_t crc32c(const void* data, size_t n, uint32_t seed) {
  // ISA-L's crc32_iscsi neither inverts its initial value nor its result; the standard CRC32C
  // does both. Inverting the seed on the way in and the register on the way out gives the standard
  // value and lets a finished CRC serve as the seed of the next piece.
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));  // ISA-L only reads it
  uint32_t crc = ~seed;
  // crc32_iscsi takes an int length.
  while (n > 0) {
    const size_t piece = std::min<size_t>(n, INT_MAX & ~size_t{4095});
    crc = crc32_iscsi(p, static_cast<int>(piece), crc);
    p += piece;
    n -= piece;
  }
  return ~crc;
}

}  // namespace vlunfs
