// A LUN in memory for tests and simulation. Sparse, so a test can give the vLUN layer a 1 TiB
// LUN and pay only for what it writes, and lock-free, so it does not serialize the threads whose
// races the tests are trying to provoke.

#include "vlunfs/store.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace vlunfs::store {

namespace {

// Large enough that the page table of a 1 TiB LUN is 8 MiB, small enough that a test writing a
// superblock and a few chunks stays cheap.
constexpr uint64_t kPageSize = uint64_t{1} << 20;

class MemoryStore final : public BlockStore {
 public:
  MemoryStore(uint64_t size, uint32_t block_size)
      : size_(size), block_size_(block_size), page_count_(size / kPageSize + (size % kPageSize != 0)),
        pages_(std::make_unique<std::atomic<std::byte*>[]>(page_count_)) {}
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;
  ~MemoryStore() override {
    for (uint64_t i = 0; i < page_count_; i++) std::free(pages_[i].load(std::memory_order_relaxed));
  }

  // Like a disk, the store does not order two I/Os that touch the same bytes at the same time;
  // callers that do so get whatever interleaving memcpy produces. I/Os to different bytes never
  // interfere.
  std::error_code read(uint64_t offset, std::span<std::byte> out) override {
    if (!range_ok(offset, out.size())) return errno_error(EINVAL);
    while (!out.empty()) {
      const uint64_t in_page = offset % kPageSize;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), kPageSize - in_page));
      // Acquire pairs with the release in allocate_page: whoever sees the pointer also sees the
      // zeroed memory behind it.
      const std::byte* page = pages_[offset / kPageSize].load(std::memory_order_acquire);
      if (page == nullptr) {
        std::memset(out.data(), 0, n);
      } else {
        std::memcpy(out.data(), page + in_page, n);
      }
      out = out.subspan(n);
      offset += n;
    }
    return {};
  }

  std::error_code write(uint64_t offset, std::span<const std::byte> data) override {
    if (!range_ok(offset, data.size())) return errno_error(EINVAL);
    while (!data.empty()) {
      const uint64_t in_page = offset % kPageSize;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(data.size(), kPageSize - in_page));
      std::byte* page = pages_[offset / kPageSize].load(std::memory_order_acquire);
      if (page == nullptr) {
        page = allocate_page(offset / kPageSize);
        if (page == nullptr) return errno_error(ENOMEM);
      }
      std::memcpy(page + in_page, data.data(), n);
      data = data.subspan(n);
      offset += n;
    }
    return {};
  }

  std::error_code flush() override { return {}; }

  // Zeroes in place instead of freeing whole pages: a reader that loaded the page pointer just
  // before a free would copy from freed memory, and making that safe would need reference counts
  // or epochs on the read path. Tests do not need the memory back.
  std::error_code discard(uint64_t offset, uint64_t length) override {
    if (!range_ok(offset, length)) return errno_error(EINVAL);
    while (length > 0) {
      const uint64_t in_page = offset % kPageSize;
      const uint64_t n = std::min(length, kPageSize - in_page);
      std::byte* page = pages_[offset / kPageSize].load(std::memory_order_acquire);
      if (page != nullptr) std::memset(page + in_page, 0, static_cast<size_t>(n));
      length -= n;
      offset += n;
    }
    return {};
  }

  uint64_t size_bytes() const override { return size_; }
  uint32_t block_size() const override { return block_size_; }

 private:
  bool range_ok(uint64_t offset, uint64_t length) const {
    return offset <= size_ && length <= size_ - offset;
  }

  // Two writers may find the same page missing; both allocate, one installs its page and the other
  // frees its own and uses the winner's. No lock, and no writer ever sees a page change under it.
  std::byte* allocate_page(uint64_t index) {
    // calloc rather than new + memset: a page this large usually comes straight from mmap, already
    // zero, so an untouched part of it costs nothing.
    auto* fresh = static_cast<std::byte*>(std::calloc(1, kPageSize));
    if (fresh == nullptr) return nullptr;
    std::byte* expected = nullptr;
    if (pages_[index].compare_exchange_strong(expected, fresh, std::memory_order_acq_rel,
                                              std::memory_order_acquire)) {
      return fresh;
    }
    std::free(fresh);
    return expected;
  }

  const uint64_t size_;
  const uint32_t block_size_;
  const uint64_t page_count_;
  // Page i holds bytes [i * kPageSize, (i + 1) * kPageSize); null means "all zeros". An entry goes
  // from null to a page once and never changes again until the store is destroyed.
  const std::unique_ptr<std::atomic<std::byte*>[]> pages_;
};

}  // namespace

std::unique_ptr<BlockStore> make_memory_store(uint64_t size_bytes, uint32_t block_size) {
  return std::make_unique<MemoryStore>(size_bytes, block_size);
}

}  // namespace vlunfs::store
