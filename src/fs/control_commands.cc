#include "fs/control_commands.h"

#include <algorithm>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <sstream>

namespace vlunfs::fs {

// ---------------------------------------------------------------------------------------------
// The text of the answers

namespace {

// The sharing columns of one `ls` line (after physical_chunks): kind (thick, thin or snapshot),
// chunks mapped, shared, reserved, origin (its path now; "(removed, ino N)"; "-" for none) and
// creation time (UTC; "-" when unknown: made before format version 2).
void append_sharing_columns(std::ostringstream& out, const VlunReport& r) {
  out << '\t' << (r.snapshot ? "snapshot" : r.thin ? "thin" : "thick") << '\t' << r.mapped << '\t' << r.shared << '\t'
      << r.reserved << '\t';
  if (r.origin == 0) {
    out << '-';
  } else if (r.origin_path.empty()) {
    out << "(removed, ino " << r.origin << ')';
  } else {
    out << r.origin_path;
  }
  out << '\t';
  if (r.birth_ns == 0) {
    out << '-';
  } else {
    const time_t seconds = static_cast<time_t>(r.birth_ns / 1000000000);
    struct tm utc {};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    out << text;
  }
}

}  // namespace

std::string render_vlun_listing(const std::vector<VlunReport>& vluns) {
  std::ostringstream out;
  out << "# path\tino\tsize\tcontext\thandle\tchunks\tlast_lba\tphysical_chunks"
      << "\tkind\tmapped\tshared\treserved\torigin\tcreated\n";
  for (const VlunReport& r : vluns) {
    out << r.path << '\t' << r.ino << '\t' << r.size << "\t0x" << std::hex << r.context_id << std::dec << '\t'
        << r.rsrc_handle << '\t' << r.chunks.size() << '\t';
    if (r.last_lba == ~uint64_t{0}) {
      out << "-1";
    } else {
      out << r.last_lba;
    }
    out << '\t';
    for (size_t i = 0; i < r.chunks.size(); ++i) out << (i ? "," : "") << r.chunks[i];
    if (r.chunks.empty()) out << '-';
    append_sharing_columns(out, r);
    out << '\n';
  }
  return out.str();
}

std::string render_pool_stats(const PoolStats& p) {
  std::ostringstream out;
  out << "chunk_bytes " << p.chunk_bytes << "\ntotal_chunks " << p.total_chunks << "\nfree_chunks "
      << p.free_chunks << "\nfiles " << p.files << "\ninodes " << p.inodes << '\n';
  // The pool as df sees it (the reserve counts as used) and what thin vLUNs may still claim.
  const uint64_t available = p.free_chunks - std::min(p.free_chunks, p.reserved_chunks);
  out << "mapped_chunks " << p.mapped_chunks << "\nshared_chunks " << p.shared_chunks << "\nreserved_chunks "
      << p.reserved_chunks << "\navailable_chunks " << available << "\nthin_bytes " << p.thin_bytes
      << "\nthin_unwritten_chunks " << p.thin_unwritten_chunks << "\nthin_overcommit "
      << (p.thin_unwritten_chunks > available ? p.thin_unwritten_chunks - available : 0) << '\n';
  return out.str();
}

// ---------------------------------------------------------------------------------------------
// Paths and the permissions along them

namespace {

bool may(const Caller& who, const struct stat& st, unsigned want) {
  return may_access(who, st.st_mode, st.st_uid, st.st_gid, want);
}

// The path from the mount's root of directory `dir` ("" for the root), walking ".." upwards.
// EACCES unless `who` may search every directory on the way, `dir` included: what a lookup of
// that path by `who` would need.
Result<std::string> searchable_directory_path(Filesystem& fs, const Caller& who, uint64_t dir) {
  std::vector<std::string> names;
  uint64_t ino = dir;
  for (;;) {
    auto attr = fs.getattr(ino);
    if (!attr) return attr.error();
    const struct stat& st = attr.value().st;
    if (!S_ISDIR(st.st_mode)) return errno_error(ENOTDIR);
    if (!may(who, st, kMayExec)) return errno_error(EACCES);
    if (ino == meta::ROOT_INO) break;
    if (names.size() > 4096) return errno_error(ELOOP);  // a damaged namespace, not a real depth
    auto entries = fs.readdir(ino);
    if (!entries) return entries.error();
    uint64_t parent = 0;
    for (const DirEntry& e : entries.value()) {
      if (e.name == "..") parent = e.ino;
    }
    auto siblings = fs.readdir(parent);
    if (!siblings) return siblings.error();
    const std::string* name = nullptr;
    for (const DirEntry& e : siblings.value()) {
      if (e.ino == ino && e.name != "." && e.name != "..") name = &e.name;
    }
    if (!name) return errno_error(ENOENT);  // moved away while we walked
    names.push_back(*name);
    ino = parent;
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += "/" + *it;
  return path;
}

// A path from the mount's root of file `ino` (the first found, breadth first, for a file with
// several links). The commands of Filesystem name files by path.
Result<std::string> path_of_file(Filesystem& fs, uint64_t ino) {
  std::deque<std::pair<uint64_t, std::string>> dirs{{meta::ROOT_INO, ""}};
  while (!dirs.empty()) {
    auto [dir, prefix] = dirs.front();
    dirs.pop_front();
    auto entries = fs.readdir(dir);
    if (!entries) continue;
    for (const DirEntry& e : entries.value()) {
      if (e.name == "." || e.name == "..") continue;
      std::string path = prefix + "/" + e.name;
      if (e.ino == ino) return path;
      if (S_ISDIR(e.mode)) dirs.emplace_back(e.ino, std::move(path));
    }
  }
  return errno_error(ENOENT);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The commands

std::string list_vluns(Filesystem& fs, const Caller& who) {
  std::vector<VlunReport> all = fs.report();
  if (who.dac_override || who.dac_read_search) return render_vlun_listing(all);  // may read every directory
  // Per directory path: may `who` read and search it and every directory above it; its inode.
  struct Dir {
    bool listable = false;
    uint64_t ino = 0;
  };
  std::map<std::string, Dir> dirs;
  std::function<Dir(const std::string&)> dir_at = [&](const std::string& path) -> Dir {
    if (auto it = dirs.find(path); it != dirs.end()) return it->second;
    Dir d;
    if (path.empty()) {
      auto a = fs.getattr(meta::ROOT_INO);
      if (a && may(who, a.value().st, kMayRead | kMayExec)) d = {true, meta::ROOT_INO};
    } else {
      const auto slash = path.find_last_of('/');
      const Dir up = dir_at(path.substr(0, slash));
      if (up.listable) {
        auto a = fs.lookup(up.ino, path.substr(slash + 1));
        if (a && S_ISDIR(a.value().st.st_mode) && may(who, a.value().st, kMayRead | kMayExec)) {
          d = {true, static_cast<uint64_t>(a.value().st.st_ino)};
        }
      }
    }
    return dirs[path] = d;
  };
  std::vector<VlunReport> visible;
  for (VlunReport& r : all) {
    if (r.path.empty() || r.path[0] != '/') continue;  // open but unlinked: no path to see it by
    if (dir_at(r.path.substr(0, r.path.find_last_of('/'))).listable) visible.push_back(std::move(r));
  }
  return render_vlun_listing(visible);
}

std::string pool_info(Filesystem& fs) { return render_pool_stats(fs.pool_stats()); }

std::error_code clone_vlun(Filesystem& fs, const Caller& who, uint64_t src_ino, uint64_t dest_dir,
                           const std::string& name, bool snapshot) {
  auto src = fs.getattr(src_ino);
  if (!src) return src.error();
  const struct stat& src_st = src.value().st;
  if (!S_ISREG(src_st.st_mode)) return errno_error(EINVAL);
  if (!may(who, src_st, kMayRead)) return errno_error(EACCES);
  auto dir_path = searchable_directory_path(fs, who, dest_dir);
  if (!dir_path) return dir_path.error();
  auto dir = fs.getattr(dest_dir);
  if (!dir) return dir.error();
  if (!may(who, dir.value().st, kMayWrite | kMayExec)) return errno_error(EACCES);
  auto src_path = path_of_file(fs, src_ino);
  if (!src_path) return src_path.error();
  if (auto ec = fs.clone_file(src_path.value(), dir_path.value() + "/" + name, snapshot)) return ec;
  if (who.is_root() || (src_st.st_uid == who.uid && src_st.st_gid == who.gid)) return {};
  // The caller made this file: it is theirs (as a copy made with cp would be), without the
  // set-id bits that belonged to the source's owner.
  auto made = fs.lookup(dest_dir, name);
  if (!made) return made.error();
  struct stat owner {};
  owner.st_uid = who.uid;
  owner.st_gid = who.gid;
  owner.st_mode = src_st.st_mode & 0777;
  auto changed = fs.setattr(static_cast<uint64_t>(made.value().st.st_ino), owner,
                            AttrChanges{.mode = true, .uid = true, .gid = true}, nullptr);
  return changed ? std::error_code{} : changed.error();
}

std::error_code set_vlun_thin(Filesystem& fs, const Caller& who, uint64_t ino, bool thin) {
  auto attr = fs.getattr(ino);
  if (!attr) return attr.error();
  if (!S_ISREG(attr.value().st.st_mode)) return errno_error(EINVAL);
  if (!may(who, attr.value().st, kMayWrite)) return errno_error(EACCES);
  auto path = path_of_file(fs, ino);
  if (!path) return path.error();
  return fs.set_thin(path.value(), thin);
}

std::error_code sync_pool(Filesystem& fs) { return fs.sync_all(); }

}  // namespace vlunfs::fs
