// store/: whole positioned transfers on a descriptor (pread/pwrite until done), shared by the file
// store's buffered path and its O_DIRECT path (direct_io.h).
#pragma once

#include "vlunfs/error.h"

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>

namespace vlunfs::store {

// Reads all of `out` from `offset`. End of file inside the range is EIO: the callers checked the
// range against the size at open, so someone truncated the image under us, and zeros would be a
// silent lie about data we can no longer see.
inline std::error_code pread_fully(int fd, uint64_t offset, std::span<std::byte> out) {
  while (!out.empty()) {
    ssize_t n = ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_errno();
    }
    if (n == 0) return errno_error(EIO);
    out = out.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

// Writes all of `data` at `offset`. pwrite makes no progress only if the medium cannot take more;
// never spin on it.
inline std::error_code pwrite_fully(int fd, uint64_t offset, std::span<const std::byte> data) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_errno();
    }
    if (n == 0) return errno_error(EIO);
    data = data.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

}  // namespace vlunfs::store
