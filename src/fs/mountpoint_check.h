// Whether a directory may take a new vlunfs mount (docs/reliability.md "Unmount": mount refusals).
#pragma once

#include "vlunfs/error.h"

#include <string>

namespace vlunfs::fs {

// The canonical path of `mountpoint`. Refused, with a message saying what to do: a directory that
// already holds a vlunfs mount (mounting over it would hide it, and its daemon would go on holding
// its image), and the dead FUSE mount a killed daemon leaves ("Transport endpoint is not
// connected").
Result<std::string, Error> mountpoint_usable(const char* mountpoint);

}  // namespace vlunfs::fs
