#include "afu/capi/kernel_vluns.h"

#include "vlunfs/cxlflash_ioctl.h"

#include <cerrno>
#include <cstring>

namespace vlunfs::afu::capi {

namespace {

constexpr uint64_t k4K = 4096;  // CXLFLASH_BLOCK_SIZE: lun_size, req_size and virtual last_lba unit

// Spec §3.3 / pitfall 2: last_lba in 4K units, all ones for an empty vLUN.
uint64_t bytes_of(uint64_t last_lba) { return last_lba == ~uint64_t{0} ? 0 : (last_lba + 1) * k4K; }

}  // namespace

Result<std::unique_ptr<KernelVluns>> KernelVluns::open(Kernel& kernel, const std::string& path,
                                                       const DirectLunOptions& options, std::string* why) {
  auto context = DirectLun::open_context(kernel, path, options, why);
  if (!context) return context.error();
  return std::unique_ptr<KernelVluns>(new KernelVluns(std::move(context).value()));
}

KernelVluns::~KernelVluns() {
  std::set<uint64_t> open;
  {
    std::lock_guard lock(mu_);
    open = handles_;
  }
  for (uint64_t h : open) (void)release(h);
}

size_t KernelVluns::handles() const {
  std::lock_guard lock(mu_);
  return handles_.size();
}

Result<uint64_t> KernelVluns::create(uint64_t bytes) {
  dk_cxlflash_uvirtual uv{};
  uv.hdr.flags = DK_CXLFLASH_UVIRTUAL_NEED_WRITE_SAME;  // chunks given back are zeroed
  uv.context_id = context_->context_id();
  uv.lun_size = (bytes + k4K - 1) / k4K;
  if (context_->kernel().ioctl(context_->disk_fd(), DK_CXLFLASH_USER_VIRTUAL, &uv) != 0) return errno_error(errno);
  std::lock_guard lock(mu_);
  handles_.insert(uv.rsrc_handle);
  return uv.rsrc_handle;
}

Result<uint64_t> KernelVluns::resize(uint64_t handle, uint64_t bytes) {
  dk_cxlflash_resize r{};
  r.context_id = context_->context_id();
  r.rsrc_handle = handle;
  r.req_size = (bytes + k4K - 1) / k4K;
  if (context_->kernel().ioctl(context_->disk_fd(), DK_CXLFLASH_VLUN_RESIZE, &r) != 0) return errno_error(errno);
  return bytes_of(r.last_lba);
}

std::error_code KernelVluns::release(uint64_t handle) {
  dk_cxlflash_release r{};
  r.context_id = context_->context_id();
  r.rsrc_handle = handle;
  if (context_->kernel().ioctl(context_->disk_fd(), DK_CXLFLASH_RELEASE, &r) != 0) return errno_error(errno);
  std::lock_guard lock(mu_);
  handles_.erase(handle);
  return {};
}

std::error_code KernelVluns::read(uint64_t handle, uint64_t vlba, uint64_t nblocks, void* buf) {
  return context_->handle_io(handle, vlba, nblocks, buf, false);
}

std::error_code KernelVluns::write(uint64_t handle, uint64_t vlba, uint64_t nblocks, const void* buf) {
  return context_->handle_io(handle, vlba, nblocks, const_cast<void*>(buf), true);
}

std::error_code KernelVluns::clone_in_child(std::string* why) {
  uint64_t parent = 0;
  if (auto ec = context_->reattach_context_in_child(&parent, why)) return ec;
  {
    // With no vLUN there is nothing to clone, and on a LUN that has had none yet (not in virtual
    // mode) VLUN_CLONE answers EINVAL (spec §3.10): the child's own context is all it needs.
    std::lock_guard lock(mu_);
    if (handles_.empty()) return {};
  }
  dk_cxlflash_clone c{};
  c.context_id_src = parent;
  c.context_id_dst = context_->context_id();
  if (context_->kernel().ioctl(context_->disk_fd(), DK_CXLFLASH_VLUN_CLONE, &c) != 0) {
    const int e = errno;
    *why = std::string("DK_CXLFLASH_VLUN_CLONE of the parent's context failed: ") + std::strerror(e);
    return errno_error(e);
  }
  return {};
}

}  // namespace vlunfs::afu::capi
