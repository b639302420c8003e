// How the programs (vlunfs, mkfs.vlunfs, vlunctl) choose and open the device's backend:
// `--backend=sim|capi`, or by default a path whose DK_CXLFLASH_ATTACH answers is CAPI flash and
// anything else (an image file, an ordinary block device) keeps the simulator. The only header the
// programs include from afu/capi/, so that a build without the backend needs no other stub.
#pragma once

#include "vlunfs/error.h"
#include "vlunfs/store.h"

#include <functional>
#include <memory>
#include <string>

namespace vlunfs::afu::capi {

class Kernel;

enum class Backend { automatic, sim, capi };

// "sim", "capi" or "auto"; EINVAL otherwise.
Result<Backend> parse_backend(const std::string& name);

// Whether `path` is opened through the CAPI backend (probes with ATTACH for `automatic`).
bool use_capi(Backend backend, const std::string& path);

struct CapiDevice {
  std::unique_ptr<store::BlockStore> store;  // the whole LUN, opened with USER_DIRECT
  // For a daemon that forks after opening: the child attaches a context of its own (a context
  // belongs to the process that attached it, spec §3.0). *why explains a failure.
  std::function<std::error_code(std::string* why)> reattach_in_child;
};

// Opens the LUN. `log` receives the backend's error reasons (requeues given up, AFU errors).
Result<CapiDevice> open_capi_device(const std::string& path, bool read_only,
                                    std::function<void(const std::string&)> log, std::string* why);

// The kernel the programs talk to: libc's, or the simulated one that kSimulatedKernelEnv names.
// Only in a build with the backend (the kernel-vLUN scratch mount, fs/scratch/, opens its
// contexts on it).
Kernel& program_kernel();

// The test-only environment variable that makes the programs use the simulated kernel: it names an
// image file, served as the CAPI LUN kSimulatedDevicePath (tests/e2e/test_capi_*.sh).
inline constexpr const char* kSimulatedKernelEnv = "VLUNFS_CAPI_SIMULATED_KERNEL";
inline constexpr const char* kSimulatedDevicePath = "/dev/sg-vlunfs-sim";
// With the simulated kernel, a non-empty value other than "0" makes its AFU submit in SQ mode
// (ATTACH returns DK_CXLFLASH_CONTEXT_SQ_CMD_MODE; tests/e2e/test_capi_lifecycle_sq.sh).
inline constexpr const char* kSimulatedKernelSqEnv = "VLUNFS_CAPI_SIMULATED_KERNEL_SQ";

}  // namespace vlunfs::afu::capi
