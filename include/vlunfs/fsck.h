// fsck: checks an unmounted vlunfs device. The chunk allocator is derived from the chunk maps, so
// the checks are on the maps themselves: every LXT entry inside the data area and well formed,
// a chunk named by several entries only when all of them are read-only (shared, copy-on-write),
// reference counts within the hardware's 255 extra owners, sizes within the provisioned chunks,
// link counts, and a directory tree in which every named inode is reachable from the root.
#pragma once

#include "vlunfs/meta.h"

#include <string>
#include <vector>

namespace vlunfs::fsck {

// Exit codes, as e2fsck's.
inline constexpr int EXIT_CLEAN = 0;
inline constexpr int EXIT_FIXED = 1;
inline constexpr int EXIT_ERRORS_LEFT = 4;
inline constexpr int EXIT_OPERATIONAL = 8;

struct Report {
  std::vector<std::string> errors;    // what is wrong (left as is, unless repaired)
  std::vector<std::string> repairs;   // what --repair changed
  std::vector<std::string> notes;     // worth knowing, not wrong (e.g. the journal was replayed)
  uint64_t inodes = 0, files = 0, directories = 0, symlinks = 0;
  uint64_t chunks_total = 0, chunks_used = 0, chunks_shared = 0;
  int exit_code = EXIT_CLEAN;
};

// Checks a namespace against a geometry. With repair, fixes in place what can be fixed without
// guessing: link counts, directory parents, orphans (removed; their chunks listed in *freed).
Report check_namespace(meta::Namespace& ns, const meta::Geometry& geometry, bool repair,
                       std::vector<uint64_t>* freed = nullptr);

struct Options {
  bool repair = false;
  bool progress = false;  // a progress line on stderr
};

// Opens the device (refusing a mounted one), loads its metadata, checks it, and with repair
// writes a new checkpoint and zeroes the chunks of removed orphans.
Report run(const std::string& device, const Options& options);

}  // namespace vlunfs::fsck
