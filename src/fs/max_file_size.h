// The rule for the largest file, whatever the geometry: no byte of a file lies at or beyond
// 2^62. Below it, offset + length of any request fits in 64 bits, so the range checks that
// follow cannot overflow. Requests past it fail with EFBIG (write, truncate, fallocate, copy).
#pragma once

#include <cstdint>

namespace vlunfs::fs {

inline constexpr uint64_t MAX_FILE_BYTES = uint64_t{1} << 62;

// Whether [offset, offset + length) ends at or below MAX_FILE_BYTES (without overflowing).
constexpr bool within_max_file_size(uint64_t offset, uint64_t length) {
  return offset <= MAX_FILE_BYTES && length <= MAX_FILE_BYTES - offset;
}

}  // namespace vlunfs::fs
