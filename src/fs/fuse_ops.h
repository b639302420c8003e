#pragma once

#include "fs/fuse_tuning.h"

#include <fuse_lowlevel.h>

namespace vlunfs::fs {

// Set once by main() before the session starts.
void set_fuse_tuning(const FuseTuning& tuning);

// The operation table; each request's userdata is the Filesystem.
const fuse_lowlevel_ops& fuse_operations();

}  // namespace vlunfs::fs
