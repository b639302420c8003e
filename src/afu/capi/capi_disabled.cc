// The programs' side of the backend in a build without it (VLUNFS_WITH_CAPI=OFF, or AUTO without
// <misc/cxl.h>): --backend still parses, and capi is refused with the reason.
#include "afu/capi/device.h"

namespace vlunfs::afu::capi {

Result<Backend> parse_backend(const std::string& name) {
  if (name == "sim") return Backend::sim;
  if (name == "capi") return Backend::capi;
  if (name == "auto") return Backend::automatic;
  return errno_error(EINVAL);
}

bool use_capi(Backend backend, const std::string&) { return backend == Backend::capi; }

Result<CapiDevice> open_capi_device(const std::string& path, bool, std::function<void(const std::string&)>,
                                    std::string* why) {
  *why = path + ": this vlunfs was built without the CAPI flash backend (VLUNFS_WITH_CAPI=OFF)";
  return errno_error(ENOTSUP);
}

}  // namespace vlunfs::afu::capi
