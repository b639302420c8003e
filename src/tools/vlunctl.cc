// vlunctl: administration of vlunfs devices and mounts.
//   vlunctl info IMAGE|MOUNTPOINT      geometry and pool usage (mapped, shared, reserved, free, thin)
//   vlunctl ls MOUNTPOINT              every vLUN with its handle, chunks, last_lba, physical chunks,
//                                      kind, shared and reserved chunks, origin, creation time
//   vlunctl clone|snapshot SRC DST     DST shares every chunk of SRC (a snapshot is read-only)
//   vlunctl thin [--off] FILE          an empty file becomes thin (or thick)
//   vlunctl sync PATH                  sizes and mtimes of the whole mount made durable
//   vlunctl fsck [-n|-p|-y] IMAGE      check (and repair) an unmounted device, as fsck.vlunfs
// The commands on a mount are ioctls on its own files (fs/control_ioctl.h): they reach the daemon
// serving the path given, and the daemon checks the caller's permissions.
#include "fs/control_ioctl.h"
#include "tools/cli_parse.h"
#include "tools/fsck_cli.h"
#include "tools/size_arg.h"
#include "vlunfs/fsck.h"
#include "vlunfs/image_release.h"
#include "vlunfs/meta/geometry.h"
#include "vlunfs/meta/meta_store.h"
#include "vlunfs/meta/namespace.h"
#include "vlunfs/sislite.h"
#include "vlunfs/store.h"

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

// Prints a text answer of the daemon (VLUNFS_IOC_REPORT), read page by page. An answer that
// changed between two pages (ESTALE) is read again from the start, a few times.
int print_report(const std::string& path, uint32_t what) {
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
  std::fputs(text.c_str(), stdout);
  return 0;
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

int info_image(const std::string& image) {
  store::FileStoreOptions fo;
  fo.block_size = 512;
  fo.read_only = true;
  store::ReleaseWait wait;  // a daemon just unmounted may still be writing its last checkpoint
  wait.on_wait = [&] { std::fprintf(stderr, "vlunctl: waiting for the vlunfs daemon that is releasing %s...\n", image.c_str()); };
  auto dev = store::open_file_store_after_release(image, fo, wait);
  if (!dev) {
    std::string what_to_do;
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
  std::string why;
  auto m = meta::MetaStore::open(*dev.value(), mo, &report, &why);
  if (!m) {
    std::fprintf(stderr, "vlunctl: %s: %s\n", image.c_str(), why.c_str());
    return 1;
  }
  const meta::Geometry& g = m.value()->geometry();
  const meta::Namespace& ns = m.value()->ns();
  uint64_t files = 0, thin_bytes = 0, thin_unwritten = 0;
  const uint64_t zero_aun = g.data_chunks() - 1;  // thin vLUNs map their unwritten chunks to it
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
  const uint64_t used = pool.chunks_used;
  std::printf("device        %s\nformat        vlunfs %u, generation %llu\nsize          %s\n"
              "block size    %u\nchunk         %s (2^%u blocks)\nchunks        %llu total, %llu mapped by files\n"
              "files         %llu (%zu inodes)\nmetadata      %s (journal %s, checkpoint slots %s)\n",
              image.c_str(), g.version, static_cast<unsigned long long>(report.generation),
              tools::human_size(g.device_bytes).c_str(), g.block_size, tools::human_size(g.chunk_bytes()).c_str(),
              g.chunk_shift, static_cast<unsigned long long>(g.data_chunks()), static_cast<unsigned long long>(used),
              static_cast<unsigned long long>(files), ns.inodes.size(), tools::human_size(g.data_offset).c_str(),
              tools::human_size(g.journal_bytes).c_str(), tools::human_size(g.checkpoint_bytes).c_str());
  const uint64_t available = pool.chunks_free - std::min(pool.chunks_free, pool.chunks_reserved);
  std::printf("shared        %llu chunks\nreserved      %llu chunks (for thick vLUNs to break their shares)\n"
              "free          %llu chunks, %llu of them not reserved\n"
              "thin          %s of thin vLUNs, %llu unwritten chunks (%llu beyond the unreserved free)\n",
              static_cast<unsigned long long>(pool.chunks_shared), static_cast<unsigned long long>(pool.chunks_reserved),
              static_cast<unsigned long long>(pool.chunks_free), static_cast<unsigned long long>(available),
              tools::human_size(thin_bytes).c_str(), static_cast<unsigned long long>(thin_unwritten),
              static_cast<unsigned long long>(thin_unwritten > available ? thin_unwritten - available : 0));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vlunctl: inspect and check vlunfs flash devices and mounts"};
  app.set_version_flag("-V,--version", "vlunctl 0.1.0");
  app.require_subcommand(1);

  std::string target;
  auto* info = app.add_subcommand("info", "geometry and usage of an image/device, or of a mounted vlunfs");
  info->add_option("IMAGE_OR_MOUNTPOINT", target)->required();

  std::string mountpoint;
  auto* ls = app.add_subcommand("ls", "list every vLUN of a mount: resource handle, chunks, last_lba, physical chunks, "
                              "thick/thin/snapshot, chunks mapped, shared and reserved, origin, creation time");
  ls->add_option("MOUNTPOINT", mountpoint)->required();

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

  if (*info) {
    struct stat st;
    if (::stat(target.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return print_report(target, VLUNFS_REPORT_POOL);
    return info_image(target);
  }
  if (*ls) return print_report(mountpoint, VLUNFS_REPORT_VLUNS);
  if (*fsck_cmd) return tools::run_fsck(fsck_command_line);
  return 2;
}
