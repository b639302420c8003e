// A build without librbd (VLUNFS_WITH_RBD=OFF, or AUTO without librbd-dev): RBD names are still
// recognised, and refused with ENOTSUP so that programs can say how to get them.
#include "store/rbd/rbd_store.h"

namespace vlunfs::store {

bool rbd_supported() { return false; }

Result<std::unique_ptr<BlockStore>> open_rbd_store(const RbdImageName&, const RbdStoreOptions&,
                                                   RbdOpenReport* report) {
  report->detail = "this vlunfs was built without Ceph RBD support (install librbd-dev and rebuild with "
                   "-DVLUNFS_WITH_RBD=ON)";
  return errno_error(ENOTSUP);
}

Result<std::string> break_rbd_lock(const RbdImageName&, const CephClientOptions&, std::string* detail) {
  *detail = "this vlunfs was built without Ceph RBD support";
  return errno_error(ENOTSUP);
}

std::error_code remove_rbd_image(const RbdImageName&, const CephClientOptions&) { return errno_error(ENOTSUP); }

}  // namespace vlunfs::store
