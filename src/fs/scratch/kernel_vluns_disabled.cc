// -o kernel_vluns in a build without the CAPI backend (VLUNFS_WITH_CAPI=OFF): refused, with why.
#include "fs/scratch/kernel_vluns_mount.h"

#include <cstdio>

namespace vlunfs::fs::scratch {

int serve_kernel_vluns(const KernelVlunsMount& mount) {
  std::fprintf(stderr,
               "vlunfs: cannot mount: -o kernel_vluns needs a CAPI flash LUN, and this vlunfs was built without "
               "the CAPI backend (VLUNFS_WITH_CAPI=OFF); %s was not opened\n",
               mount.device.c_str());
  return 1;
}

}  // namespace vlunfs::fs::scratch
