// What each vlunctl command that talks to a mounted vlunfs does in the daemon, and the text its
// answer prints. Every command first checks the caller's credentials against the inodes it acts
// on (access_check.h), as the kernel would for the nearest ordinary operation:
//   clone / snapshot   read on the source; write and search on the destination directory and
//                      search on every directory above it (as creating a file there would). The
//                      new file belongs to the caller (as with cp); a clone made by root keeps the
//                      source's owner, as before.
//   thin / thick       write on the file (as truncate needs)
//   ls                 a vLUN is listed only if the caller may read and search every directory
//                      from the mount's root to it (what `ls -lR` as that user would show);
//                      files open but unlinked are shown to root only (CAP_DAC_READ_SEARCH)
//   stats              the pool's counters to anyone on the mount; a vLUN's only to those who
//                      may list it (as ls)
//   info, sync         anyone holding a descriptor on the mount (as statfs(2) and syncfs(2))
// Pool-wide changes would need root; none of the commands is one today.
#pragma once

#include "fs/access_check.h"
#include "fs/filesystem.h"

#include <string>
#include <string_view>
#include <vector>

namespace vlunfs::fs {

// ---- The answers: records (report_records.h) that vlunctl renders; docs/vlunctl-json.md. ----
// `vlunctl ls`: a "vlun" record per vLUN.
std::string render_vlun_listing(const std::vector<VlunReport>& vluns);
// `vlunctl info`: one "pool" record; source is "mount" or "image" (vlunctl renders an unmounted
// image's with the same function, so both have the same fields).
std::string render_pool_stats(const PoolStats& pool, std::string_view source);
// `vlunctl stats`: a "pool" record with the counters and chunks, a "vlun" record per vLUN listed.
std::string render_stats(const PoolStats& pool, const MetricsReport& metrics, const std::vector<VlunReport>& visible);

// ---- The commands, each checked against `who`. ----
// The listing of the vLUNs `who` may see.
std::vector<VlunReport> visible_vluns(Filesystem& fs, const Caller& who);
std::string list_vluns(Filesystem& fs, const Caller& who);
std::string pool_info(Filesystem& fs);
std::string stats_report(Filesystem& fs, const Caller& who);
// A new file `name` in directory `dest_dir` sharing every chunk of file `src_ino`.
std::error_code clone_vlun(Filesystem& fs, const Caller& who, uint64_t src_ino, uint64_t dest_dir,
                           const std::string& name, bool snapshot);
std::error_code set_vlun_thin(Filesystem& fs, const Caller& who, uint64_t ino, bool thin);
std::error_code sync_pool(Filesystem& fs);

}  // namespace vlunfs::fs
