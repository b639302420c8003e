// `vlunfs -o kernel_vluns DEVICE MOUNTPOINT`: a scratch mount of a CAPI flash LUN in which every
// file is a real kernel vLUN (scratch_fs.h), nothing kept after unmount (docs/hardware.md).
#pragma once

#include "fs/log.h"

#include <fuse_lowlevel.h>

#include <functional>
#include <string>

namespace vlunfs::fs::scratch {

struct KernelVlunsMount {
  std::string device;
  std::string backend = "auto";  // --backend: only capi (or auto finding a CAPI LUN) is served
  const char* mountpoint = nullptr;
  fuse_args* args = nullptr;     // the FUSE options vlunfs's own parsing left
  bool foreground = false;
  LogSetup log;                  // re-applied without stderr once the daemon detaches
  // main.cc's fork: the parent exits with what the child reports on *report_fd (a 0 byte: up;
  // else the reason); false when fork failed.
  std::function<bool(int* report_fd)> fork_daemon;
};

// Serves the mount until it is unmounted; the program's exit code (1 when the device is no CAPI
// LUN, this build has no CAPI backend, or the mount fails).
int serve_kernel_vluns(const KernelVlunsMount& mount);

}  // namespace vlunfs::fs::scratch
