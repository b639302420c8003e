// The software AFU as a mount's backend: the default of the daemon, the tools and the tests.
#pragma once

#include "client/backend.h"
#include "vlunfs/sim_afu.h"

namespace vlunfs::client {

// A SimAfu serving the data region as its one LUN, on both ports. `created`, when given, receives
// the simulator (tests use it for fault injection); it lives as long as the mount that made it.
AfuFactory simulated_afu(afu::SimAfuOptions options = {}, afu::SimAfu** created = nullptr);

}  // namespace vlunfs::client
