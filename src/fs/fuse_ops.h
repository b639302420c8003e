#pragma once

#include "fs/fuse_tuning.h"

#include <fuse_lowlevel.h>

namespace vlunfs::fs {

// Set once by main() before the session starts.
void set_fuse_tuning(const FuseTuning& tuning);
// The session, for notifications to the kernel (op_lseek), and whether one thread serves it (then a
// notification that makes the kernel send requests would wait for itself). Set before the loop.
void set_fuse_session(fuse_session* se, bool single_thread);

// The operation table; each request's userdata is the Filesystem.
const fuse_lowlevel_ops& fuse_operations();

}  // namespace vlunfs::fs
