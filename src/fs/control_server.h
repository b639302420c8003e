// The daemon's side of the control protocol (control_ioctl.h): decodes one ioctl that FUSE
// forwarded, runs its command (control_commands.h) for the caller, and encodes the answer.
#pragma once

#include "fs/access_check.h"
#include "fs/filesystem.h"

#include <system_error>
#include <vector>

namespace vlunfs::fs {

// `ino` is the file or directory the ioctl was issued on; `in` holds the in_size bytes the kernel
// copied from the caller. On success *out holds what goes back (at most out_size bytes). ENOTTY for
// a command that is not ours, EINVAL for a malformed one, EPROTO for an unknown version.
std::error_code answer_control_ioctl(Filesystem& fs, const Caller& who, uint64_t ino, unsigned cmd,
                                     const void* in, size_t in_size, size_t out_size, std::vector<char>* out);

}  // namespace vlunfs::fs
