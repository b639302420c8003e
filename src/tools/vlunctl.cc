// vlunctl: administration of vlunfs devices and mounts.
//   vlunctl info IMAGE|MOUNTPOINT      geometry and pool usage (mapped, shared, reserved, free, thin)
//   vlunctl ls MOUNTPOINT              every vLUN with its handle, chunks, last_lba, physical chunks,
//                                      kind, shared and reserved chunks, origin, creation time
//   vlunctl stats MOUNTPOINT           requests, bytes, latencies, share breaks, journal, AFU commands
// The read commands print tables as lsblk does (-o COLUMNS, -n, -r) or JSON (-J/--json,
// docs/vlunctl-json.md): tools/vlunctl_output.h.
//   vlunctl clone|snapshot SRC DST     DST shares every chunk of SRC (a snapshot is read-only)
//   vlunctl thin [--off] FILE          an empty file becomes thin (or thick)
//   vlunctl sync PATH                  sizes and mtimes of the whole mount made durable
//   vlunctl fsck [-n|-p|-y] IMAGE      check (and repair) an unmounted device, as fsck.vlunfs
// The commands on a mount are ioctls on its own files (vlunfs/control_ioctl.h): they reach the daemon
// serving the path given, and the daemon checks the caller's permissions.
#include "fs/control_commands.h"
#include "fs/report_records.h"
#include "tools/cli_parse.h"
#include "tools/fsck.h"
#include "tools/fsck_cli.h"
#include "tools/size_arg.h"
#include "tools/vlunctl_output.h"
#include "store/rbd/named_store.h"
#include "vlunfs/control_ioctl.h"
#include "vlunfs/image_release.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/meta/namespace.h"
#include "vlunfs/sislite.h"
#include "vlunfs/store.h"
#include "vlunfs/zero_chunk.h"

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace {

using namespace vlunfs;

constexpr decltype(statfs::f_type) kFuseSuperMagic = 0x65735546;  // FUSE_SUPER_MAGIC, linux/magic.h

// An fd on PATH, a file or directory of a vlunfs mount, opened through the kernel: its ioctls go
// to the daemon serving exactly that file, whatever is mounted elsewhere or in which namespace.
int open_on_mount(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0 && errno == EACCES && (flags & O_ACCMODE) == O_RDONLY && !(flags & O_DIRECTORY)) {
    fd = ::open(path.c_str(), (flags & ~O_ACCMODE) | O_WRONLY | O_CLOEXEC);  // a write-only file
    if (fd < 0) errno = EACCES;
  }
  if (fd < 0) {
    std::fprintf(stderr, "vlunctl: %s: %s\n", path.c_str(), std::strerror(errno));
    return -1;
  }
  struct statfs sf {};
  if (::fstatfs(fd, &sf) != 0 || sf.f_type != kFuseSuperMagic) {
    std::fprintf(stderr, "vlunctl: %s is not on a vlunfs mount (for an unmounted image use 'vlunctl info IMAGE')\n",
                 path.c_str());
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends one control request (control_ioctl.h) on fd: 0, or the errno after a message that says
// what went wrong (none for `quiet_errno`, which the caller handles).
template <class Request>
int control_ioctl(int fd, unsigned long command, Request* request, const std::string& what, int quiet_errno = 0) {
  request->header.version = VLUNFS_IOC_VERSION;
  request->header.magic = 0;
  if (::ioctl(fd, command, request) != 0) {
    const int e = errno;
    if (e == quiet_errno) return e;
    if (e == ENOTTY || e == ENOSYS) {
      std::fprintf(stderr, "vlunctl: %s: no vlunfs daemon serves this FUSE mount\n", what.c_str());
    } else if (e == EPROTO) {
      std::fprintf(stderr, "vlunctl: %s: the vlunfs daemon speaks another control version than this vlunctl "
                           "(use the vlunctl built with that vlunfs)\n", what.c_str());
    } else {
      std::fprintf(stderr, "vlunctl: %s: %s\n", what.c_str(), std::strerror(e));
    }
    return e;
  }
  if (request->header.magic != VLUNFS_IOC_MAGIC) {
    std::fprintf(stderr, "vlunctl: %s: no vlunfs daemon serves this FUSE mount\n", what.c_str());
    return EPROTO;
  }
  return 0;
}

// Reads an answer of the daemon (VLUNFS_IOC_REPORT) page by page into *text. An answer that
// changed between two pages (ESTALE) is read again from the start, a few times.
int read_report(const std::string& path, uint32_t what, std::string* out) {
  constexpr int kAttempts = 10;
  int fd = open_on_mount(path, O_RDONLY);
  if (fd < 0) return 1;
  auto request = std::make_unique<vlunfs_ioc_report>();
  std::string text;
  int error = 0;
  for (int attempt = 1;; ++attempt) {
    text.clear();
    uint64_t answer_id = 0;
    do {
      std::memset(request.get(), 0, sizeof *request);
      request->what = what;
      request->offset = text.size();
      request->answer_id = answer_id;
      error = control_ioctl(fd, VLUNFS_IOC_REPORT, request.get(), path, attempt < kAttempts ? ESTALE : 0);
      if (error) break;
      text.append(request->text, std::min<size_t>(request->length, sizeof request->text));
      answer_id = request->answer_id;
    } while (text.size() < request->total && request->length > 0);
    if (error != ESTALE || attempt >= kAttempts) break;
  }
  ::close(fd);
  if (error) return 1;
  *out = std::move(text);
  return 0;
}

// The columns a table shows without -o (the others are there for -o, and in JSON).
const std::vector<std::string> kLsColumns = {"path", "ino",    "size",   "kind",     "context", "handle",  "chunks",
                                             "last_lba", "mapped", "shared", "reserved", "origin",  "created", "physical"};
const std::vector<std::string> kStatsColumns = {
    "path",         "read.requests",          "read.bytes",          "read.latency_p50_ns",
    "read.latency_p99_ns", "write.requests",  "write.bytes",         "write.latency_p50_ns",
    "write.latency_p99_ns", "fsync.requests", "fsync.latency_p99_ns", "cow_breaks",
    "mapped_chunks", "shared_chunks"};

// Renders records (`command` is ls, info or stats) as a table or JSON on stdout.
int print_records(const std::string& command, const std::string& text, const tools::OutputOptions& output) {
  auto parsed = fs::parse_records(text);
  if (!parsed) {
    std::fprintf(stderr, "vlunctl %s: the daemon's answer is not understood (%s); use the vlunctl built with that "
                         "vlunfs\n", command.c_str(), parsed.error().message.c_str());
    return 1;
  }
  const std::vector<fs::Record>* records = &parsed.value();
  if (output.json) {
    std::fputs(tools::document_to_json(command, *records, {"vlun"}).c_str(), stdout);
    return 0;
  }
  Error printed;
  if (command == "info") {
    const fs::Record* pool = nullptr;
    for (const fs::Record& r : *records) {
      if (r.type == "pool") pool = &r;
    }
    if (!pool) {
      std::fprintf(stderr, "vlunctl info: the daemon's answer has no pool record\n");
      return 1;
    }
    printed = tools::print_fields(stdout, *pool, output);
  } else {
    // stats: the pool's row first, as "(pool)", then the vLUNs'.
    std::vector<fs::Record> pool_rows;
    std::vector<const fs::Record*> rows;
    for (const fs::Record& r : *records) {
      if (r.type == "pool") {
        fs::Record row = r;
        row.fields.insert(row.fields.begin(), fs::RecordField{"path", "(pool)", false, false});
        pool_rows.push_back(std::move(row));
      }
    }
    for (const fs::Record& r : pool_rows) rows.push_back(&r);
    for (const fs::Record& r : *records) {
      if (r.type == "vlun") rows.push_back(&r);
    }
    printed = tools::print_table(stdout, rows, command == "ls" ? kLsColumns : kStatsColumns, output);
  }
  if (printed) {
    std::fprintf(stderr, "vlunctl %s: %s\n", command.c_str(), printed.message.c_str());
    return 2;
  }
  return 0;
}

int report_command(const std::string& command, const std::string& path, uint32_t what,
                   const tools::OutputOptions& output) {
  std::string text;
  if (int rc = read_report(path, what, &text)) return rc;
  return print_records(command, text, output);
}

// The directory a new file DST goes in, and its name.
void split_new_path(const std::string& dst, std::string* dir, std::string* name) {
  const auto slash = dst.find_last_of('/');
  *dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : dst.substr(0, slash));
  *name = slash == std::string::npos ? dst : dst.substr(slash + 1);
}

int clone_command(const std::string& src, const std::string& dst, bool snapshot) {
  const std::string what = std::string(snapshot ? "snapshot " : "clone ") + src + " " + dst;
  std::string dir, name;
  split_new_path(dst, &dir, &name);
  if (name.empty() || name.size() >= sizeof(vlunfs_ioc_clone::name)) {
    std::fprintf(stderr, "vlunctl: %s: DST must name the new file (at most 255 bytes)\n", what.c_str());
    return 1;
  }
  int fd = open_on_mount(src, O_RDONLY);
  if (fd < 0) return 1;
  struct stat src_st {}, dir_st {};
  if (::fstat(fd, &src_st) != 0 || ::stat(dir.c_str(), &dir_st) != 0) {
    std::fprintf(stderr, "vlunctl: %s: %s\n", what.c_str(), std::strerror(errno));
    ::close(fd);
    return 1;
  }
  if (!S_ISDIR(dir_st.st_mode) || dir_st.st_dev != src_st.st_dev) {
    std::fprintf(stderr, "vlunctl: %s: %s must be a directory of the same vlunfs mount as %s\n", what.c_str(),
                 dir.c_str(), src.c_str());
    ::close(fd);
    return 1;
  }
  vlunfs_ioc_clone request{};
  request.flags = snapshot ? VLUNFS_CLONE_SNAPSHOT : 0;
  request.dest_dir = dir_st.st_ino;
  std::memcpy(request.name, name.data(), name.size());
  const int error = control_ioctl(fd, VLUNFS_IOC_CLONE, &request, what);
  ::close(fd);
  if (error) return 1;
  std::puts("ok");
  return 0;
}

int thin_command(const std::string& path, bool thin) {
  const std::string what = std::string(thin ? "thin " : "thin --off ") + path;
  int fd = open_on_mount(path, O_RDONLY);
  if (fd < 0) return 1;
  vlunfs_ioc_thin request{};
  request.thin = thin ? 1 : 0;
  const int error = control_ioctl(fd, VLUNFS_IOC_SET_THIN, &request, what);
  ::close(fd);
  if (error) return 1;
  std::puts("ok");
  return 0;
}

int sync_command(const std::string& path) {
  int fd = open_on_mount(path, O_RDONLY);
  if (fd < 0) return 1;
  vlunfs_ioc_sync request{};
  const int error = control_ioctl(fd, VLUNFS_IOC_SYNC, &request, "sync " + path);
  ::close(fd);
  if (error) return 1;
  std::puts("ok");
  return 0;
}

// The -o list of the commands that open an image: ceph_conf= and ceph_id= (and takeover, where
// `takeover_allowed`); false after saying what is wrong.
bool parse_ceph_option_list(const std::string& list, store::CephClientOptions* ceph, bool takeover_allowed,
                            bool* takeover) {
  std::string unknown, why;
  bool asked = false;
  if (!store::take_ceph_options(list, ceph, &asked, &unknown, &why)) {
    std::fprintf(stderr, "vlunctl: %s\n", why.c_str());
    return false;
  }
  if (!unknown.empty() || (asked && !takeover_allowed)) {
    std::fprintf(stderr, "vlunctl: -o %s: unknown option (ceph_conf=PATH, ceph_id=NAME)\n",
                 unknown.empty() ? "takeover" : unknown.c_str());
    return false;
  }
  if (takeover) *takeover = asked;
  return true;
}

// vlunctl takeover rbd:POOL/IMAGE: the daemon that held the pool is dead (or must be stopped from
// writing): break its lock, which blocklists it, so that a new mount can take the pool and replay
// its journal (docs/rbd.md "Fencing").
int takeover_command(const std::string& name, const store::CephClientOptions& ceph) {
  auto image = store::parse_rbd_name(name);
  if (!image || image->pool.empty() || image->image.empty()) {
    std::fprintf(stderr, "vlunctl: takeover needs an RBD image, rbd:POOL/IMAGE (a local image's lock goes with its "
                         "process)\n");
    return 2;
  }
  std::string detail;
  auto broken = store::break_rbd_lock(*image, ceph, &detail);
  if (!broken) {
    std::fprintf(stderr, "vlunctl: %s\n", detail.empty() ? broken.error().message().c_str() : detail.c_str());
    return 1;
  }
  if (broken.value().empty()) {
    std::printf("%s: nobody held its lock; mount it\n", name.c_str());
  } else {
    std::printf("%s: broke the lock of %s, which the cluster now refuses; mount it to replay its journal\n",
                name.c_str(), broken.value().c_str());
  }
  return 0;
}

int info_image(const std::string& image, const store::CephClientOptions& ceph, const tools::OutputOptions& output) {
  store::NamedStoreOptions so;
  so.block_size = 512;
  so.read_only = true;
  so.ceph = ceph;
  // A daemon just unmounted may still be writing its last checkpoint.
  so.wait.on_wait = [&] { std::fprintf(stderr, "vlunctl: waiting for the vlunfs daemon that is releasing %s...\n", image.c_str()); };
  std::string detail;
  auto dev = store::open_named_store(image, so, &detail);
  if (!dev) {
    std::string what_to_do;
    if (!detail.empty()) {
      std::fprintf(stderr, "vlunctl: %s\n", detail.c_str());
      return 1;
    }
    if (dev.error().value() == EBUSY) {
      auto mountpoint = store::vlunfs_mountpoint_of(image);
      what_to_do = mountpoint ? " (mounted: use 'vlunctl info " + *mountpoint + "')"
                              : " (it is not mounted here, but another program holds it: mkfs, fsck, a vlunfs "
                                "daemon that did not let go within 10 s, or one mounted in another mount namespace)";
    }
    std::fprintf(stderr, "vlunctl: %s: %s%s\n", image.c_str(), dev.error().message().c_str(), what_to_do.c_str());
    return 1;
  }
  meta::OpenOptions mo;
  mo.read_only = true;
  meta::OpenReport report;
  auto m = meta::MetaStore::open(*dev.value(), mo, &report);
  if (!m) {
    std::fprintf(stderr, "vlunctl: %s: %s\n", image.c_str(), m.error().message.c_str());
    return 1;
  }
  const meta::Geometry& g = m.value()->geometry();
  const meta::Namespace& ns = m.value()->ns();
  uint64_t files = 0, thin_bytes = 0, thin_unwritten = 0;
  const uint64_t zero_aun = vlun::zero_chunk_aun(g.data_chunks());  // thin vLUNs map their unwritten chunks to it
  for (const auto& [ino, inode] : ns.inodes) {
    if ((inode.mode & S_IFMT) == S_IFREG) {
      files++;
      if (!(inode.flags & meta::INODE_FLAG_THIN)) continue;
      thin_bytes += inode.size;
      thin_unwritten += static_cast<uint64_t>(
          std::count_if(inode.lxt.begin(), inode.lxt.end(), [&](uint64_t e) { return sisl::lxt_aun(e) == zero_aun; }));
    }
  }
  // The pool from the chunk maps, counted as fsck counts it (mapped, shared, free, share reserve).
  meta::Namespace counted = ns;
  const fsck::Report pool = fsck::check_namespace(counted, g, false);
  // The same record as a mount's (fs::render_pool_stats): one format for both.
  fs::PoolStats p;
  p.chunk_bytes = g.chunk_bytes();
  p.total_chunks = vlun::allocatable_chunks(g.data_chunks());  // less the zero chunk, as the mount counts
  p.free_chunks = pool.chunks_free;
  p.mapped_chunks = pool.chunks_used;
  p.shared_chunks = pool.chunks_shared;
  p.reserved_chunks = pool.chunks_reserved;
  p.thin_bytes = thin_bytes;
  p.thin_unwritten_chunks = thin_unwritten;
  p.files = files;
  p.inodes = ns.inodes.size();
  p.device = image;
  p.describe_format(g);
  return print_records("info", fs::render_pool_stats(p, "image"), output);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vlunctl: inspect and check vlunfs flash devices and mounts"};
  app.set_version_flag("-V,--version", "vlunctl 0.1.0");
  app.require_subcommand(1);

  // The output options of every read command, as lsblk and findmnt spell them.
  tools::OutputOptions output;
  auto add_output_options = [&](CLI::App* command, const char* columns_help) {
    command->add_flag("-J,--json", output.json, "JSON, with a schema version (docs/vlunctl-json.md)");
    command->add_flag("-r,--raw", output.raw, "raw output: columns separated by one space, unsafe bytes as \\xHH");
    command->add_flag("-n,--noheadings", output.no_headings, "no heading line");
    command->add_option("-o,--output", output.columns, columns_help);
  };
  std::string target;
  auto* info = app.add_subcommand("info", "geometry and usage of an image/device, or of a mounted vlunfs (the same "
                                          "fields for both)");
  info->add_option("IMAGE_OR_MOUNTPOINT", target)->required();
  add_output_options(info, "the fields to show, comma-separated (e.g. total_chunks,free_chunks)");
  std::string info_options;
  info->add_option("--options", info_options, "for rbd:POOL/IMAGE: ceph_conf=PATH, ceph_id=NAME (-o is the output's columns)");

  std::string takeover_target, takeover_options;
  auto* takeover = app.add_subcommand("takeover", "break the lock of the dead daemon that held rbd:POOL/IMAGE (the "
                                                  "cluster blocklists it), so that a new mount can replay its journal");
  takeover->add_option("rbd:POOL/IMAGE", takeover_target)->required();
  takeover->add_option("-o,--options", takeover_options, "ceph_conf=PATH (default /etc/ceph/ceph.conf), ceph_id=NAME (default admin)");

  std::string mountpoint;
  auto* ls = app.add_subcommand("ls", "list every vLUN of a mount: resource handle, chunks, last_lba, physical chunks "
                                      "(as ranges FIRSTxCOUNT), thick/thin/snapshot, chunks mapped, shared and "
                                      "reserved, origin, creation time");
  ls->add_option("MOUNTPOINT", mountpoint)->required();
  add_output_options(ls, "columns, comma-separated (PATH,INO,SIZE,KIND,CONTEXT,HANDLE,CHUNKS,LAST_LBA,MAPPED,SHARED,"
                         "RESERVED,ORIGIN,ORIGIN_INO,CREATED,PHYSICAL); +COL,... adds to the default ones");

  std::string stats_mountpoint;
  auto* stats = app.add_subcommand("stats", "counters of a mount, for the pool and per vLUN: requests, bytes and "
                                            "latency (p50/p99) by operation, copy-on-write breaks, journal records "
                                            "and waits, AFU commands by afu_rc, chunks");
  stats->add_option("MOUNTPOINT", stats_mountpoint)->required();
  add_output_options(stats, "columns, comma-separated (see --json for every field: READ_REQUESTS, "
                            "WRITE_LATENCY_P99_NS, JOURNAL_RECORDS, ...); +COL,... adds to the default ones");

  tools::FsckCommandLine fsck_command_line;
  auto* fsck_cmd = app.add_subcommand("fsck", "check an unmounted vlunfs device, as fsck.vlunfs does (-n check only, "
                                              "-p preen, -y repair; exit 0 clean, 1 fixed, 4 errors left, 8 failure, "
                                              "16 usage)");
  tools::add_fsck_options(*fsck_cmd, &fsck_command_line);

  std::string src, dst;
  auto* clone = app.add_subcommand("clone", "DST becomes a copy-on-write clone of SRC: every chunk shared, O(1) in data");
  clone->add_option("SRC", src)->required();
  clone->add_option("DST", dst)->required();
  std::string snap_src, snap_dst;
  auto* snapshot = app.add_subcommand("snapshot", "DST becomes a read-only clone of SRC (remove it with rm)");
  snapshot->add_option("SRC", snap_src)->required();
  snapshot->add_option("DST", snap_dst)->required();
  std::string thin_path;
  bool thick = false;
  auto* thin = app.add_subcommand("thin", "make an empty file thin: chunks allocated on first write");
  thin->add_option("FILE", thin_path)->required();
  thin->add_flag("--off", thick, "make it thick again (chunks reserved by truncate)");
  std::string sync_path;
  auto* sync = app.add_subcommand("sync", "make every file's size and mtime on the mount durable (anyone may)");
  sync->add_option("PATH", sync_path, "the mountpoint or any file or directory on it")->required();

  // A usage error exits with 2; in the fsck subcommand with 16, fsck(8)'s code, as fsck.vlunfs.
  if (auto code = tools::parse_command_line(app, argc, argv, 2)) {
    return *code != 0 && fsck_cmd->parsed() ? fsck::EXIT_USAGE : *code;
  }

  if (*clone) return clone_command(src, dst, false);
  if (*snapshot) return clone_command(snap_src, snap_dst, true);
  if (*thin) return thin_command(thin_path, !thick);
  if (*sync) return sync_command(sync_path);

  if (*takeover) {
    store::CephClientOptions ceph;
    if (!parse_ceph_option_list(takeover_options, &ceph, false, nullptr)) return 2;
    return takeover_command(takeover_target, ceph);
  }
  if (*info) {
    struct stat st;
    if (::stat(target.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return report_command("info", target, VLUNFS_REPORT_POOL, output);
    }
    store::CephClientOptions ceph;
    if (!parse_ceph_option_list(info_options, &ceph, false, nullptr)) return 2;
    return info_image(target, ceph, output);
  }
  if (*ls) return report_command("ls", mountpoint, VLUNFS_REPORT_VLUNS, output);
  if (*stats) return report_command("stats", stats_mountpoint, VLUNFS_REPORT_STATS, output);
  if (*fsck_cmd) return tools::run_fsck(fsck_command_line);
  return 2;
}
