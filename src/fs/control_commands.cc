#include "fs/control_commands.h"

#include "fs/report_records.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <deque>
#include <functional>
#include <map>

namespace vlunfs::fs {

// ---------------------------------------------------------------------------------------------
// The records of the answers (report_records.h; the fields are documented in docs/vlunctl-json.md)

namespace {

std::string utc_time(int64_t ns) {
  const time_t seconds = static_cast<time_t>(ns / 1000000000);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string hex(uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(v));
  return text;
}

void add_histogram(RecordWriter& out, const std::string& prefix, const HistogramSnapshot& h) {
  out.number(prefix + "_count", h.count)
      .number(prefix + "_sum_ns", h.sum_ns)
      .number(prefix + "_p50_ns", h.percentile_ns(0.50))
      .number(prefix + "_p99_ns", h.percentile_ns(0.99));
}

void add_counters(RecordWriter& out, const VlunMetricsSnapshot& c) {
  for (unsigned i = 0; i < kOpCount; ++i) {
    const std::string op = op_name(static_cast<Op>(i));
    const OpSnapshot& s = c.ops[i];
    out.number(op + ".requests", s.requests).number(op + ".errors", s.errors).number(op + ".bytes", s.bytes);
    add_histogram(out, op + ".latency", s.latency);
  }
  out.number("cow_breaks", c.cow_breaks);
}

void add_pool_chunks(RecordWriter& out, const PoolStats& p) {
  // The pool as df sees it (the reserve counts as used) and what thin vLUNs may still claim.
  const uint64_t available = p.free_chunks - std::min(p.free_chunks, p.reserved_chunks);
  out.number("chunk_bytes", p.chunk_bytes)
      .number("total_chunks", p.total_chunks)
      .number("mapped_chunks", p.mapped_chunks)
      .number("shared_chunks", p.shared_chunks)
      .number("reserved_chunks", p.reserved_chunks)
      .number("free_chunks", p.free_chunks)
      .number("available_chunks", available);
}

}  // namespace

std::string render_vlun_listing(const std::vector<VlunReport>& vluns) {
  RecordWriter out;
  for (const VlunReport& r : vluns) {
    out.begin("vlun").text("path", r.path).number("ino", r.ino).number("size", r.size);
    out.text("kind", r.snapshot ? "snapshot" : r.thin ? "thin" : "thick");
    out.text("context", hex(r.context_id)).number("handle", r.rsrc_handle).number("chunks", r.chunks.size());
    if (r.last_lba == ~uint64_t{0}) {
      out.null("last_lba");
    } else {
      out.number("last_lba", r.last_lba);
    }
    out.text("physical", chunk_ranges(r.chunks));
    out.number("mapped", r.mapped).number("shared", r.shared).number("reserved", r.reserved);
    if (r.origin == 0) {
      out.null("origin_ino").null("origin");
    } else {
      out.number("origin_ino", r.origin);
      if (r.origin_path.empty()) {
        out.null("origin");  // removed since
      } else {
        out.text("origin", r.origin_path);
      }
    }
    if (r.birth_ns == 0) {
      out.null("created");  // made before format version 2
    } else {
      out.text("created", utc_time(r.birth_ns));
    }
  }
  return out.str();
}

std::string render_pool_stats(const PoolStats& p, std::string_view source) {
  RecordWriter out;
  out.begin("pool").text("source", source).text("device", p.device).number("format_version", p.format_version);
  out.number("device_bytes", p.device_bytes).number("block_size", p.block_size);
  add_pool_chunks(out, p);
  const uint64_t available = p.free_chunks - std::min(p.free_chunks, p.reserved_chunks);
  out.number("files", p.files).number("inodes", p.inodes);
  out.number("thin_bytes", p.thin_bytes).number("thin_unwritten_chunks", p.thin_unwritten_chunks);
  out.number("thin_overcommit_chunks", p.thin_unwritten_chunks > available ? p.thin_unwritten_chunks - available : 0);
  out.number("metadata_bytes", p.metadata_bytes).number("journal_bytes", p.journal_bytes);
  out.number("checkpoint_bytes", p.checkpoint_bytes);
  return out.str();
}

std::string render_stats(const PoolStats& pool, const MetricsReport& m, const std::vector<VlunReport>& visible) {
  RecordWriter out;
  out.begin("pool");
  add_counters(out, m.pool);
  out.number("journal.records", m.journal_records);
  add_histogram(out, "journal.wait", m.journal_wait);
  for (const auto& [rc, n] : m.afu_commands) {
    char key[32];
    std::snprintf(key, sizeof key, "afu_commands.0x%02x", rc);  // as GET /metrics names it
    out.number(key, n);
  }
  add_pool_chunks(out, pool);
  std::map<uint64_t, const VlunMetricsSnapshot*> by_ino;
  for (const auto& [ino, counters] : m.vluns) by_ino[ino] = &counters;
  for (const VlunReport& r : visible) {
    auto it = by_ino.find(r.ino);
    if (it == by_ino.end()) continue;  // gone between the two looks
    out.begin("vlun").text("path", r.path).number("ino", r.ino);
    add_counters(out, *it->second);
    out.number("mapped_chunks", r.mapped).number("shared_chunks", r.shared);
  }
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

std::vector<VlunReport> visible_vluns(Filesystem& fs, const Caller& who) {
  std::vector<VlunReport> all = fs.report();
  if (who.dac_override || who.dac_read_search) return all;  // may read every directory
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
  return visible;
}

std::string list_vluns(Filesystem& fs, const Caller& who) { return render_vlun_listing(visible_vluns(fs, who)); }

std::string pool_info(Filesystem& fs) { return render_pool_stats(fs.pool_stats(), "mount"); }

std::string stats_report(Filesystem& fs, const Caller& who) {
  // The counters first: a file listed is then one they count (or one made since, skipped).
  const MetricsReport m = fs.metrics_report();
  return render_stats(fs.pool_stats(), m, visible_vluns(fs, who));
}

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
