// vlunctl: administration of vlunfs devices and mounts.
//   vlunctl info IMAGE|MOUNTPOINT      geometry and pool usage
//   vlunctl ls MOUNTPOINT              every vLUN with its handle, chunks, last_lba, physical chunks
//   vlunctl fsck [--repair] IMAGE      check (and repair) an unmounted device
#include "fs/control_socket.h"
#include "tools/size_arg.h"
#include "vlunfs/fsck.h"
#include "vlunfs/meta.h"
#include "vlunfs/image_release.h"
#include "vlunfs/store.h"

#include <CLI/CLI.hpp>
#include <sys/stat.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace {

using namespace vlunfs;

bool canonical(const std::string& path, std::string* out) {
  char buf[PATH_MAX];
  if (!realpath(path.c_str(), buf)) return false;
  *out = buf;
  return true;
}

int ask_daemon(const std::string& mountpoint, const std::string& command) {
  std::string path;
  if (!canonical(mountpoint, &path)) {
    std::fprintf(stderr, "vlunctl: %s: %s\n", mountpoint.c_str(), std::strerror(errno));
    return 1;
  }
  std::string answer;
  if (!fs::control_request(path, command, &answer)) {
    std::fprintf(stderr, "vlunctl: no vlunfs daemon serves %s (is it mounted? for an unmounted image use "
                         "'vlunctl info IMAGE')\n", path.c_str());
    return 1;
  }
  std::fputs(answer.c_str(), stdout);
  return answer.rfind("error:", 0) == 0 ? 1 : 0;
}

// The vlunfs mount holding a path (the longest fuse.vlunfs mountpoint that prefixes it), and
// the path relative to that mount's root.
bool locate(const std::string& path, bool may_not_exist, std::string* mount, std::string* rel) {
  std::string full;
  if (!canonical(path, &full)) {
    if (!may_not_exist) return false;
    auto slash = path.find_last_of('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    if (!canonical(dir, &full)) return false;
    full += "/" + path.substr(slash == std::string::npos ? 0 : slash + 1);
  }
  FILE* f = std::fopen("/proc/self/mounts", "r");
  if (!f) return false;
  char dev[4096], dir[4096], type[256];
  mount->clear();
  while (std::fscanf(f, "%4095s %4095s %255s %*[^\n]", dev, dir, type) == 3) {
    std::string d = dir, t = type;
    if (t != "fuse.vlunfs") continue;
    if ((full == d || full.rfind(d == "/" ? d : d + "/", 0) == 0) && d.size() > mount->size()) *mount = d;
  }
  std::fclose(f);
  if (mount->empty()) return false;
  *rel = full.substr(mount->size());
  return true;
}

int clone_command(const std::string& src, const std::string& dst, const char* verb) {
  std::string m1, r1, m2, r2;
  if (!locate(src, false, &m1, &r1)) {
    std::fprintf(stderr, "vlunctl: %s is not a file on a vlunfs mount\n", src.c_str());
    return 1;
  }
  if (!locate(dst, true, &m2, &r2) || m1 != m2) {
    std::fprintf(stderr, "vlunctl: %s must be on the same vlunfs mount as %s\n", dst.c_str(), src.c_str());
    return 1;
  }
  return ask_daemon(m1, std::string(verb) + " " + r1 + "\t" + r2);
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
  uint64_t files = 0, used = 0;
  for (const auto& [ino, inode] : ns.inodes) {
    if ((inode.mode & S_IFMT) == S_IFREG) {
      files++;
      used += inode.lxt.size();
    }
  }
  std::printf("device        %s\nformat        vlunfs %u, generation %llu\nsize          %s\n"
              "block size    %u\nchunk         %s (2^%u blocks)\nchunks        %llu total, %llu mapped by files\n"
              "files         %llu (%zu inodes)\nmetadata      %s (journal %s, checkpoint slots %s)\n",
              image.c_str(), g.version, static_cast<unsigned long long>(report.generation),
              tools::human_size(g.device_bytes).c_str(), g.block_size, tools::human_size(g.chunk_bytes()).c_str(),
              g.chunk_shift, static_cast<unsigned long long>(g.data_chunks()), static_cast<unsigned long long>(used),
              static_cast<unsigned long long>(files), ns.inodes.size(), tools::human_size(g.data_offset).c_str(),
              tools::human_size(g.journal_bytes).c_str(), tools::human_size(g.checkpoint_bytes).c_str());
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
  auto* ls = app.add_subcommand("ls", "list every vLUN of a mount: resource handle, chunks, last_lba, physical chunks");
  ls->add_option("MOUNTPOINT", mountpoint)->required();

  std::string image;
  bool repair = false;
  auto* fsck_cmd = app.add_subcommand("fsck", "check an unmounted vlunfs device (exit 0 clean, 1 fixed, 4 errors left, 8 failure)");
  fsck_cmd->add_option("IMAGE", image)->required();
  bool progress = false;
  fsck_cmd->add_flag("-r,--repair", repair,
                     "fix what can be fixed without guessing (a damaged superblock copy or checkpoint slot, "
                     "orphans, link counts, parents)");
  fsck_cmd->add_flag("-p,--progress", progress, "a progress line on stderr (the default on a terminal)");

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

  CLI11_PARSE(app, argc, argv);

  if (*clone) return clone_command(src, dst, "clone");
  if (*snapshot) return clone_command(snap_src, snap_dst, "snapshot");
  if (*thin) {
    std::string m, r;
    if (!locate(thin_path, false, &m, &r)) {
      std::fprintf(stderr, "vlunctl: %s is not a file on a vlunfs mount\n", thin_path.c_str());
      return 1;
    }
    return ask_daemon(m, std::string(thick ? "thick " : "thin ") + r);
  }

  if (*info) {
    struct stat st;
    if (::stat(target.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return ask_daemon(target, "stats");
    return info_image(target);
  }
  if (*ls) return ask_daemon(mountpoint, "ls");
  if (*fsck_cmd) {
    fsck::Options options;
    options.repair = repair;
    options.progress = progress || isatty(2);
    fsck::Report r = fsck::run(image, options);
    for (const auto& n : r.notes) std::printf("note: %s\n", n.c_str());
    for (const auto& e : r.errors) std::printf("error: %s\n", e.c_str());
    for (const auto& f : r.repairs) std::printf("fixed: %s\n", f.c_str());
    std::printf("%s: %llu inodes (%llu files, %llu directories, %llu symlinks, %llu orphans), "
                "%llu of %llu chunks mapped (%llu shared), %llu free: %s\n",
                image.c_str(), static_cast<unsigned long long>(r.inodes), static_cast<unsigned long long>(r.files),
                static_cast<unsigned long long>(r.directories), static_cast<unsigned long long>(r.symlinks),
                static_cast<unsigned long long>(r.orphans), static_cast<unsigned long long>(r.chunks_used),
                static_cast<unsigned long long>(r.chunks_total), static_cast<unsigned long long>(r.chunks_shared),
                static_cast<unsigned long long>(r.chunks_free),
                r.exit_code == fsck::EXIT_CLEAN ? "clean"
                : r.exit_code == fsck::EXIT_FIXED ? "errors fixed"
                : r.exit_code == fsck::EXIT_ERRORS_LEFT ? "ERRORS LEFT"
                                                        : "could not check");
    return r.exit_code;
  }
  return 2;
}
