// Whether a directory may take a new vlunfs mount (docs/reliability.md "Unmount": mount refusals).
#pragma once

#include <string>

namespace vlunfs::fs {

// Resolves `mountpoint` into *canonical. Refused, with *why saying what to do: a directory that
// already holds a vlunfs mount (mounting over it would hide it, and its daemon would go on holding
// its image), and the dead FUSE mount a killed daemon leaves ("Transport endpoint is not
// connected").
bool mountpoint_usable(const char* mountpoint, std::string* canonical, std::string* why);

}  // namespace vlunfs::fs
