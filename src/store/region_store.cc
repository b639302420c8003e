// A byte range of another store, seen as a store of its own, so that a layer given a region
// cannot reach outside it (the metadata area cannot scribble over the data chunks, and vice versa).

#include "vlunfs/store.h"

#include <cerrno>

namespace vlunfs::store {

namespace {

class RegionStore final : public BlockStore {
 public:
  RegionStore(BlockStore& base, uint64_t offset, uint64_t length, uint32_t block_size)
      : base_(base), offset_(offset), length_(length),
        block_size_(block_size != 0 ? block_size : base.block_size()) {}

  std::error_code read(uint64_t offset, std::span<std::byte> out) override {
    if (!range_ok(offset, out.size())) return errno_error(EINVAL);
    return base_.read(offset_ + offset, out);
  }

  std::error_code write(uint64_t offset, std::span<const std::byte> data) override {
    if (!range_ok(offset, data.size())) return errno_error(EINVAL);
    return base_.write(offset_ + offset, data);
  }

  // Durability is a property of the whole base store; there is no cheaper way to flush a part.
  std::error_code flush() override { return base_.flush(); }

  std::error_code discard(uint64_t offset, uint64_t length) override {
    if (!range_ok(offset, length)) return errno_error(EINVAL);
    return base_.discard(offset_ + offset, length);
  }

  uint64_t size_bytes() const override { return length_; }
  uint32_t block_size() const override { return block_size_; }

 private:
  // The second test keeps offset_ + offset from wrapping around for a window placed near the top
  // of the address space; whether the window lies inside the base is left to the base's own check.
  bool range_ok(uint64_t offset, uint64_t length) const {
    return offset <= length_ && length <= length_ - offset && offset_ <= UINT64_MAX - offset;
  }

  BlockStore& base_;
  const uint64_t offset_;
  const uint64_t length_;
  const uint32_t block_size_;
};

}  // namespace

std::unique_ptr<BlockStore> make_region_store(BlockStore& base, uint64_t offset, uint64_t length,
                                              uint32_t block_size) {
  return std::make_unique<RegionStore>(base, offset, length, block_size);
}

}  // namespace vlunfs::store
