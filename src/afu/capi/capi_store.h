// A whole CAPI flash LUN (USER_DIRECT, direct_lun.h) as a store::BlockStore. In the default
// persistent mode the filesystem's own persisted LXTs translate vLBAs on the host (the same
// translation engine the simulator runs) and this store carries the physical I/O to the flash.
#pragma once

#include "afu/capi/direct_lun.h"
#include "vlunfs/store.h"

#include <memory>
#include <mutex>
#include <string>

namespace vlunfs::afu::capi {

class CapiStore final : public store::BlockStore {
 public:
  explicit CapiStore(std::unique_ptr<DirectLun> lun);
  std::error_code read(uint64_t offset, std::span<std::byte> out) override;
  std::error_code write(uint64_t offset, std::span<const std::byte> data) override;
  std::error_code flush() override;
  std::error_code discard(uint64_t offset, uint64_t length) override;
  uint64_t size_bytes() const override;
  uint32_t block_size() const override;
  DirectLun& lun() { return *lun_; }

 private:
  std::unique_ptr<DirectLun> lun_;
  std::mutex rmw_mu_;  // partial-block writes read, patch and write whole blocks
};

Result<std::unique_ptr<CapiStore>> open_capi_store(Kernel& kernel, const std::string& path,
                                                   const DirectLunOptions& options, std::string* why);

}  // namespace vlunfs::afu::capi
