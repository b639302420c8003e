// The kernel's table of mounts (/proc/self/mountinfo): what is mounted on a directory, and whether
// an image is mounted. Read rather than stat()ed, because a stat of a FUSE mount waits on its
// daemon, and fails on a mount whose daemon is gone.
#pragma once

#include <istream>
#include <optional>
#include <string>
#include <vector>

namespace vlunfs::store {

// The type a vlunfs daemon's mounts have in the table (FUSE's "fuse" with vlunfs's subtype).
inline constexpr const char* kVlunfsMountType = "fuse.vlunfs";

struct MountEntry {
  std::string device_number;  // "MAJOR:MINOR" of the mounted filesystem (the name of its bdi)
  std::string mountpoint;     // as a path: the table's octal escapes (\040 for a space) undone
  std::string type;           // e.g. "fuse.vlunfs", "ext4"
  std::string source;         // a vlunfs daemon puts the absolute path of its image here
};

// Every mount of a mountinfo text, oldest first: a directory's newest mount is its last entry.
// Lines that do not parse are skipped.
std::vector<MountEntry> parse_mount_table(std::istream& mountinfo);
std::vector<MountEntry> read_mount_table();  // of /proc/self/mountinfo

// The newest mount on `path` (an absolute path, compared as text), if any.
std::optional<MountEntry> newest_mount_at(const std::vector<MountEntry>& table, const std::string& path);

// The vlunfs mount whose source is the same file (or block device) as `image`, if any.
std::optional<MountEntry> vlunfs_mount_of(const std::vector<MountEntry>& table, const std::string& image);

}  // namespace vlunfs::store
