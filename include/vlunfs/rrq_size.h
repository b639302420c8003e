// The depth of a context's response queue (RRQ): one entry per command that may be in flight
// (spec §4.7). 256 is the driver's for its master queues (NUM_RRQ_ENTRY, spec §2); a user context
// picks its own, and vlunfs's host queues take the same.
#pragma once

namespace vlunfs::afu {

inline constexpr unsigned RRQ_ENTRIES = 256;

}  // namespace vlunfs::afu
