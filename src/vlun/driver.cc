// The Driver object (the part of the kernel's main.c that sets the driver up and tears it down),
// and the size conversions of spec §5.4. The ioctls live in the files named in driver_impl.h;
// the deviations from the driver are listed in vlun.h.
#include "vlun/driver_impl.h"
#include "vlunfs/chunk_shift.h"

#include <unistd.h>

namespace vlunfs::vlun {

Caller Caller::current() { return {getpid(), getppid()}; }

namespace {
__extension__ typedef unsigned __int128 u128;
}

uint64_t chunks_for_req_size(uint64_t req_size_4k, uint32_t blk_len, unsigned chunk_shift) {
  // nsect = floor(req_size * 4096 / blk_len), then up to whole chunks (spec §5.4). 128-bit, so a
  // huge request cannot wrap around to a small one (pitfall 3).
  u128 nsect = static_cast<u128>(req_size_4k) * CXLFLASH_BLOCK_SIZE / blk_len;
  u128 chunk = uint64_t{1} << chunk_shift;
  u128 chunks = (nsect + chunk - 1) / chunk;
  return chunks > UINT32_MAX ? UINT32_MAX : static_cast<uint64_t>(chunks);  // lxt_cnt is u32
}

uint64_t virtual_last_lba(uint64_t chunks, uint32_t blk_len, unsigned chunk_shift) {
  if (chunks == 0) return ~uint64_t{0};  // pitfall 2
  u128 units = (static_cast<u128>(chunks) << chunk_shift) * blk_len / CXLFLASH_BLOCK_SIZE;
  return static_cast<uint64_t>(units - 1);
}

Result<std::unique_ptr<Driver>> Driver::create(afu::Afu& afu, DriverOptions options) {
  if (!sisl::chunk_shift_in_range(options.chunk_shift)) return einval();
  return std::unique_ptr<Driver>(new Driver(afu, options));
}

Driver::Driver(afu::Afu& afu, DriverOptions options)
    : options_(options), impl_(std::make_unique<Impl>(afu, options)) {}

Driver::~Driver() {
  // Tear down whatever the users left attached, so the AFU has no context pointing at freed RHTs.
  for (auto& slot : impl_->table) {
    std::shared_ptr<Context> ctx = slot;
    if (!ctx) continue;
    std::lock_guard lock(ctx->mu);
    while (!ctx->dead && !ctx->luns.empty()) impl_->detach_lun(*ctx, *ctx->luns.front());
  }
}

}  // namespace vlunfs::vlun
