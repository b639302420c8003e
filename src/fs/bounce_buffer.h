// A buffer aligned for the AFU's data EA (16 bytes; we use a page), reused per thread: the data
// path's partial blocks and unaligned requests go through it.
#pragma once

#include <cstddef>
#include <cstdlib>

namespace vlunfs::fs {

inline std::byte* bounce_buffer(size_t bytes) {
  struct Buffer {
    std::byte* p = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(p); }
  };
  thread_local Buffer buf;
  if (buf.size < bytes) {
    std::free(buf.p);
    buf.size = (bytes + 4095) & ~size_t{4095};
    buf.p = static_cast<std::byte*>(std::aligned_alloc(4096, buf.size));
    if (!buf.p) buf.size = 0;
  }
  return buf.p;
}

}  // namespace vlunfs::fs
