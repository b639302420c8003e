#include "afu/capi/capi_store.h"

#include <cstring>
#include <vector>

namespace vlunfs::afu::capi {

CapiStore::CapiStore(std::unique_ptr<DirectLun> lun) : lun_(std::move(lun)) {}

uint64_t CapiStore::size_bytes() const { return (lun_->last_lba() + 1) * lun_->block_size(); }
uint32_t CapiStore::block_size() const { return lun_->block_size(); }

namespace {
// data_ea must be 16-byte aligned (spec §4.1); a misaligned caller's buffer goes through a bounce.
bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
}  // namespace

std::error_code CapiStore::read(uint64_t offset, std::span<std::byte> out) {
  if (offset > size_bytes() || out.size() > size_bytes() - offset) return errno_error(EINVAL);
  const uint64_t bs = lun_->block_size();
  if (offset % bs == 0 && out.size() % bs == 0 && aligned(out.data())) {
    return lun_->read_blocks(offset / bs, out.size() / bs, out.data());
  }
  const uint64_t first = offset / bs, last = (offset + out.size() + bs - 1) / bs;
  std::vector<std::byte> bounce((last - first) * bs + 16);
  std::byte* base = bounce.data() + (16 - reinterpret_cast<uintptr_t>(bounce.data()) % 16) % 16;
  if (auto ec = lun_->read_blocks(first, last - first, base)) return ec;
  std::memcpy(out.data(), base + (offset - first * bs), out.size());
  return {};
}

std::error_code CapiStore::write(uint64_t offset, std::span<const std::byte> data) {
  if (offset > size_bytes() || data.size() > size_bytes() - offset) return errno_error(EINVAL);
  const uint64_t bs = lun_->block_size();
  if (offset % bs == 0 && data.size() % bs == 0 && aligned(data.data())) {
    return lun_->write_blocks(offset / bs, data.size() / bs, data.data());
  }
  std::lock_guard lock(rmw_mu_);
  const uint64_t first = offset / bs, last = (offset + data.size() + bs - 1) / bs;
  std::vector<std::byte> bounce((last - first) * bs + 16);
  std::byte* base = bounce.data() + (16 - reinterpret_cast<uintptr_t>(bounce.data()) % 16) % 16;
  if (offset % bs != 0 || (offset + data.size()) % bs != 0) {
    if (auto ec = lun_->read_blocks(first, last - first, base)) return ec;
  }
  std::memcpy(base + (offset - first * bs), data.data(), data.size());
  return lun_->write_blocks(first, last - first, base);
}

std::error_code CapiStore::flush() { return lun_->flush(); }

std::error_code CapiStore::discard(uint64_t offset, uint64_t length) {
  if (offset > size_bytes() || length > size_bytes() - offset) return errno_error(EINVAL);
  const uint64_t bs = lun_->block_size();
  // Whole blocks through the LUN; the partial ends (if any) as written zeros.
  const uint64_t first = (offset + bs - 1) / bs * bs, end = (offset + length) / bs * bs;
  if (first >= end) {
    std::vector<std::byte> zeros(length);
    return write(offset, zeros);
  }
  if (first > offset) {
    std::vector<std::byte> head(first - offset);
    if (auto ec = write(offset, head)) return ec;
  }
  if (offset + length > end) {
    std::vector<std::byte> tail(offset + length - end);
    if (auto ec = write(end, tail)) return ec;
  }
  return lun_->zero_range(first, end - first);
}

Result<std::unique_ptr<CapiStore>> open_capi_store(Kernel& kernel, const std::string& path,
                                                   const DirectLunOptions& options, std::string* why) {
  auto lun = DirectLun::open(kernel, path, options, why);
  if (!lun) return lun.error();
  return std::make_unique<CapiStore>(std::move(lun).value());
}

}  // namespace vlunfs::afu::capi
