// Reading /proc/self/mountinfo (mount_table.h). A line is
//   ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS
// (proc(5)); paths have a space, tab, newline or backslash written as a backslash and three octal
// digits.

#include "vlunfs/mount_table.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace vlunfs::store {

namespace {

std::string unescape(const std::string& field) {
  auto octal = [&](size_t i) { return i < field.size() && field[i] >= '0' && field[i] <= '7'; };
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

// Same file or same device: a block device may be named by several nodes (/dev/sdb and a
// /dev/disk/by-id link), an image by several paths.
bool same_storage(const struct stat& a, const struct stat& b) {
  if (S_ISBLK(a.st_mode) && S_ISBLK(b.st_mode)) return a.st_rdev == b.st_rdev;
  return !S_ISBLK(a.st_mode) && !S_ISBLK(b.st_mode) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

}  // namespace

std::vector<MountEntry> parse_mount_table(std::istream& mountinfo) {
  std::vector<MountEntry> table;
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, root, options, field;
    MountEntry entry;
    if (!(fields >> id >> parent >> entry.device_number >> root >> entry.mountpoint >> options)) continue;
    while (fields >> field && field != "-") {
    }
    if (field != "-" || !(fields >> entry.type >> entry.source)) continue;
    entry.mountpoint = unescape(entry.mountpoint);
    entry.source = unescape(entry.source);
    table.push_back(std::move(entry));
  }
  return table;
}

std::vector<MountEntry> read_mount_table() {
  std::ifstream mountinfo("/proc/self/mountinfo");
  return parse_mount_table(mountinfo);
}

std::optional<MountEntry> newest_mount_at(const std::vector<MountEntry>& table, const std::string& path) {
  for (auto it = table.rbegin(); it != table.rend(); ++it) {
    if (it->mountpoint == path) return *it;
  }
  return std::nullopt;
}

std::optional<MountEntry> vlunfs_mount_of(const std::vector<MountEntry>& table, const std::string& image) {
  struct stat wanted;
  if (::stat(image.c_str(), &wanted) != 0) return std::nullopt;
  for (auto it = table.rbegin(); it != table.rend(); ++it) {
    if (it->type != kVlunfsMountType) continue;
    struct stat st;
    // Only an absolute source can be compared: a relative one says nothing about our directory.
    if (it->source.empty() || it->source[0] != '/' || ::stat(it->source.c_str(), &st) != 0) continue;
    if (same_storage(st, wanted)) return *it;
  }
  return std::nullopt;
}

}  // namespace vlunfs::store
