#include "fs/access_check.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace vlunfs::fs {

bool Caller::in_group(uint32_t g) const {
  return g == gid || std::find(groups.begin(), groups.end(), g) != groups.end();
}

bool may_access(const Caller& who, uint32_t mode, uint32_t owner_uid, uint32_t owner_gid, unsigned want) {
  want &= kMayRead | kMayWrite | kMayExec;
  // Only the first class that matches counts: an owner denied by the owner bits is denied even if
  // the group or other bits would allow.
  unsigned granted;
  if (who.uid == owner_uid) {
    granted = (mode >> 6) & 7;
  } else if (who.in_group(owner_gid)) {
    granted = (mode >> 3) & 7;
  } else {
    granted = mode & 7;
  }
  if ((granted & want) == want) return true;
  if (S_ISDIR(mode)) {
    if (who.dac_override) return true;
    return who.dac_read_search && !(want & kMayWrite);
  }
  if (who.dac_override && (!(want & kMayExec) || (mode & (S_IXUSR | S_IXGRP | S_IXOTH)))) return true;
  return who.dac_read_search && want == kMayRead;
}

namespace {

// The 4th id of a "Uid:" or "Gid:" line (real, effective, saved, filesystem).
bool filesystem_id(const std::string& line, uint32_t* id) {
  std::istringstream in(line.substr(line.find(':') + 1));
  uint64_t ids[4];
  for (uint64_t& v : ids) {
    if (!(in >> v)) return false;
  }
  *id = static_cast<uint32_t>(ids[3]);
  return true;
}

constexpr unsigned kCapDacOverride = 1;   // linux/capability.h
constexpr unsigned kCapDacReadSearch = 2;

}  // namespace

bool read_status(const std::string& status, Caller* who) {
  std::istringstream in(status);
  std::string line;
  bool uid_ok = false, gid_ok = false;
  std::vector<uint32_t> groups;
  uint64_t cap_effective = 0;
  while (std::getline(in, line)) {
    uint32_t id;
    if (line.rfind("Uid:", 0) == 0) {
      uid_ok = filesystem_id(line, &id) && id == who->uid;
    } else if (line.rfind("Gid:", 0) == 0) {
      gid_ok = filesystem_id(line, &id) && id == who->gid;
    } else if (line.rfind("Groups:", 0) == 0) {
      std::istringstream list(line.substr(7));
      uint64_t g;
      while (list >> g) groups.push_back(static_cast<uint32_t>(g));
    } else if (line.rfind("CapEff:", 0) == 0) {
      std::istringstream(line.substr(7)) >> std::hex >> cap_effective;
    }
  }
  if (!uid_ok || !gid_ok) return false;
  who->groups = std::move(groups);
  who->dac_override = who->is_root() && (cap_effective >> kCapDacOverride & 1);
  who->dac_read_search = who->is_root() && (cap_effective >> kCapDacReadSearch & 1);
  return true;
}

Caller caller_of(uint32_t uid, uint32_t gid, pid_t pid) {
  Caller who;
  who.uid = uid;
  who.gid = gid;
  who.dac_override = who.dac_read_search = who.is_root();
  if (pid > 0) {
    // /proc/TID works for a thread too (FUSE reports the calling thread's id).
    std::ifstream file("/proc/" + std::to_string(pid) + "/status");
    std::stringstream text;
    text << file.rdbuf();
    read_status(text.str(), &who);
  }
  return who;
}

}  // namespace vlunfs::fs
