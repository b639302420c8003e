#pragma once

#include <fuse_lowlevel.h>

namespace vlunfs::fs {

// The operation table; each request's userdata is the Filesystem.
const fuse_lowlevel_ops& fuse_operations();

}  // namespace vlunfs::fs
