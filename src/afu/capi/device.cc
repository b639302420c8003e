#include "afu/capi/device.h"

#include "afu/capi/capi_store.h"
#include "afu/capi/simulated_kernel.h"

#include <cstdlib>

namespace vlunfs::afu::capi {

// libc's kernel, unless the test-only environment variable names an image for the simulated one.
Kernel& program_kernel() {
  static Kernel* kernel = [] {
    const char* image = std::getenv(kSimulatedKernelEnv);
    if (image == nullptr || *image == 0) return &libc_kernel();
    SimulatedKernelOptions o;
    o.device_path = kSimulatedDevicePath;
    o.image_path = image;
    const char* sq = std::getenv(kSimulatedKernelSqEnv);
    o.sq_mode = sq != nullptr && *sq != 0 && std::string(sq) != "0";
    return static_cast<Kernel*>(new SimulatedKernel(o));  // lives as long as the program
  }();
  return *kernel;
}

Result<Backend> parse_backend(const std::string& name) {
  if (name == "sim") return Backend::sim;
  if (name == "capi") return Backend::capi;
  if (name == "auto") return Backend::automatic;
  return errno_error(EINVAL);
}

bool use_capi(Backend backend, const std::string& path) {
  if (backend != Backend::automatic) return backend == Backend::capi;
  return is_capi_lun(program_kernel(), path);
}

Result<CapiDevice> open_capi_device(const std::string& path, bool read_only,
                                    std::function<void(const std::string&)> log, std::string* why) {
  DirectLunOptions o;
  o.read_only = read_only;
  o.log = std::move(log);
  auto opened = open_capi_store(program_kernel(), path, o, why);
  if (!opened) return opened.error();
  CapiDevice device;
  CapiStore* store = opened.value().get();
  device.reattach_in_child = [store](std::string* why) { return store->lun().reattach_in_child(why); };
  device.store = std::move(opened).value();
  return device;
}

}  // namespace vlunfs::afu::capi
