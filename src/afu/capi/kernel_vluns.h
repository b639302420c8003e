// Kernel vLUNs on a CAPI flash LUN (spec §3.3-§3.6, §3.10, §6): the building block of the scratch
// mode where every file would be a real kernel vLUN. The maps live in the kernel only, so nothing
// survives the context: everything is RELEASEd and DETACHed when this goes (or the process dies).
// One context, many handles; I/O uses the same transport as the direct LUN (direct_lun.h).
#pragma once

#include "afu/capi/direct_lun.h"

#include <mutex>
#include <set>

namespace vlunfs::afu::capi {

class KernelVluns {
 public:
  static Result<std::unique_ptr<KernelVluns>> open(Kernel& kernel, const std::string& path,
                                                   const DirectLunOptions& options, std::string* why);
  ~KernelVluns();  // RELEASE of every handle, then the context's DETACH
  KernelVluns(const KernelVluns&) = delete;
  KernelVluns& operator=(const KernelVluns&) = delete;

  // USER_VIRTUAL of `bytes` (rounded up to whole chunks by the driver); the new handle.
  Result<uint64_t> create(uint64_t bytes);
  // VLUN_RESIZE; the size the driver granted, in bytes (a grow may be truncated, spec §3.4).
  Result<uint64_t> resize(uint64_t handle, uint64_t bytes);
  std::error_code release(uint64_t handle);
  std::error_code read(uint64_t handle, uint64_t vlba, uint64_t nblocks, void* buf);
  std::error_code write(uint64_t handle, uint64_t vlba, uint64_t nblocks, const void* buf);
  uint32_t block_size() const { return context_->block_size(); }
  // The physical LUN's blocks (ATTACH's last_lba + 1), from which the driver carves its chunks.
  uint64_t lun_blocks() const { return context_->last_lba() + 1; }
  // SYNCHRONIZE CACHE through the disk node (a user context cannot issue one, direct_lun.h).
  std::error_code flush() { return context_->flush(); }
  size_t handles() const;

  // In a forked child: a context of its own, into which VLUN_CLONE copies the parent's handles
  // (same handle numbers, chunks shared until written, spec §6).
  std::error_code clone_in_child(std::string* why);

 private:
  explicit KernelVluns(std::unique_ptr<DirectLun> context) : context_(std::move(context)) {}
  std::unique_ptr<DirectLun> context_;
  mutable std::mutex mu_;
  std::set<uint64_t> handles_;  // guarded by mu_
};

}  // namespace vlunfs::afu::capi
